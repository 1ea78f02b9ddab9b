//! The operator-tunable policy: its TOML document ([`doc`]), whole-document validation ([`validate`]),
//! content-hash versioning, and compilation into the lookup tables the scorer reads ([`compile`]).

pub mod compile;
pub mod doc;
pub mod validate;

pub use compile::*;
pub use doc::*;
pub use validate::*;
