//! borderlane-core: the pure engine. A manifest, the partner table and a compiled policy go in; a decision
//! comes out. No async runtime, no Kafka, no HTTP, no file I/O — and no fallible step after parsing.

// One exception, a cache hint that dereferences nothing: `prefetch`.
#![deny(unsafe_code)]

pub mod codes;
pub mod decision;
mod decision_json;
pub mod history;
pub mod json;
pub mod model;
pub mod outcome;
pub mod policy;
mod prefetch;
pub mod resumption;
pub mod schema;
pub mod score;
mod swar;
pub mod table;
pub mod time;
pub mod watermark;
pub mod wire;

pub use decision::{Action, Band, Role};
pub use decision::{Decision, Lane, Reason, Rule};
pub use history::{History, HistoryAsOf, Position, Watermark};
pub use policy::{CompiledPolicy, PolicyDoc};
pub use resumption::{Declaration, Resumptions};
pub use schema::PathError;
pub use score::{decide, process, process_json, process_with, Lookups};
pub use table::{FrozenTable, PartnerTable, Partners, Standing};
pub use wire::{BadInput, ErrorKind, Limits, Manifest, Partner};
