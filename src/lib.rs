//! borderlane: the adapters around `borderlane-core` — command line, files, Kafka, HTTP, clocks, metrics.
//! The core decides; this crate moves bytes in and out.

pub mod admin;
pub mod cli;
pub mod feed;
pub mod gen;
pub mod kcs;
pub mod partners_file;
pub mod policy_file;
pub mod produce;
pub mod ranking;
pub mod serve;
pub mod summary;
pub mod train;
pub mod whatif;
