//! Learning: ranking metrics (precision and recall at the top n %, AUC) for `evaluate`, and, with the
//! `learn` feature, the KCS customs import and the gradient-boosted model trainer (their dependencies,
//! forust-ml and csv, stay out of the service's build).

pub mod kcs;
#[cfg(feature = "learn")]
pub mod outcomes;
pub mod ranking;
#[cfg(feature = "learn")]
pub mod train;
