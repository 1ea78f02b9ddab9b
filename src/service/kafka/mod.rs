//! The service's Kafka adapters: every librdkafka property and `[kafka]` configuration rule (`clients`),
//! topic creation (`topics`), the partner follower (`partners`), the control follower (`control`: business-resumption
//! declarations) and what followers share (`follow`), the watch for a client left without any broker
//! (`cutoff`, librdkafka#5301), the manifest pipeline (`pipeline`), the
//! sinks (`sink`: at-least-once; `txn`: exactly-once transactions) and its per-partition acknowledgement tracker (`ack`).

pub mod ack;
pub mod clients;
pub mod control;
pub mod cutoff;
pub mod fetch;
pub mod follow;
pub mod outcome_dlq;
pub mod outcomes;
pub mod partners;
pub mod pipeline;
pub mod sink;
pub mod topics;
pub mod txn;
