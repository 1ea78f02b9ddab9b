//! Analysis of decisions: the what-if replay of a candidate policy against a baseline, and tallies by action,
//! lane, port and CTPAT standing (the favouring in numbers), and the history study of `demo`.

pub mod history_study;
pub mod summary;
pub mod whatif;
