//! Subcommands of the `borderlane` binary, one module each.

pub mod check_policy;
pub mod demo;
#[cfg(feature = "learn")]
pub mod evaluate;
pub mod generate;
#[cfg(feature = "learn")]
pub mod import_kcs;
pub mod produce;
pub mod replay;
pub mod score;
pub mod serve;
#[cfg(feature = "learn")]
pub mod train;
