//! The `borderlane` command line.

fn main() {}
