//! Loading from files: policies with the models their `[model]` section names (the one policy loader every
//! path uses), and partner tables from NDJSON.

pub mod partners;
pub mod policy;
