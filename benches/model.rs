//! Criterion bench of the learned model (filled in below once the shipped model exists).
fn main() {}
