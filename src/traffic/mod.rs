//! Traffic: the seeded generator of partners and manifests, and the producer that loads them (or files)
//! into the Kafka topics.

pub mod gen;
pub mod produce;
