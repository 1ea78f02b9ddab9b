//! Subcommands of the `borderlane` binary, one module each.

pub mod check_policy;
pub mod demo;
pub mod generate;
pub mod produce;
pub mod replay;
pub mod score;
pub mod serve;
