//! Analysis of decisions: the what-if replay of a candidate policy against a baseline, and tallies by action,
//! lane, port and CTPAT standing (the favouring in numbers).

pub mod summary;
pub mod whatif;
