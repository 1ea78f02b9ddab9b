//! Subcommands of the `borderlane` binary, one module each.

pub mod check_policy;
pub mod demo;
pub mod evaluate;
pub mod generate;
pub mod import_kcs;
pub mod produce;
pub mod replay;
pub mod score;
pub mod serve;
pub mod train;
