//! borderlane: the adapters around `borderlane-core` — command line, files, Kafka, HTTP, clocks, metrics.
//! The core decides; this crate moves bytes in and out.
//!
//! - [`service`] — the running service (`serve` on Kafka, `demo` on generated traffic): one lifecycle with
//!   its Kafka adapters, admin API, officers' feed and console, health and metrics.
//! - [`load`] — policies (with their models) and partner tables from files: the one policy loader.
//! - [`analysis`] — what-if replay and summaries of decisions.
//! - [`traffic`] — the seeded generator and the producer that loads topics.
//! - [`learn`] — ranking metrics; with the `learn` feature, the KCS import and model training.
//! - [`cli`] — one module per subcommand.

#![deny(unsafe_code)]

pub mod analysis;
pub mod cli;
pub mod clock;
pub mod learn;
pub mod load;
pub mod service;
pub mod traffic;
