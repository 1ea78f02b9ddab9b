//! Loading from files: policies with the models their `[model]` section names (the one policy loader every
//! path uses), partner tables and exam outcomes (party history) from NDJSON.

pub mod outcomes;
pub mod partners;
pub mod policy;
