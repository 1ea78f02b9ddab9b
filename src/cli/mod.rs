//! Subcommands of the `borderlane` binary, one module each.

pub mod check_policy;
pub mod evaluate;
pub mod import_kcs;
pub mod score;
pub mod train;
