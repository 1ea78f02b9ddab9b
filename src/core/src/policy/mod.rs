//! The operator-tunable policy: its TOML document ([`doc`]), whole-document validation ([`validate`]),
//! content-hash versioning, the credit formula and what it lets a manifest reach ([`credit`]), and compilation into the lookup tables the scorer reads ([`compile`]).

pub mod compile;
pub mod credit;
pub mod doc;
pub mod terms;
pub mod validate;

pub use compile::*;
pub use credit::*;
pub use doc::*;
pub use validate::*;
