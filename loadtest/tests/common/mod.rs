//! What the load generator's Kafka tests share.

use std::path::Path;

use loadtest::kafka;
use loadtest::scenario::Scenario;

/// The broker the tests use: `KAFKA_BOOTSTRAP`, else the one `scripts/kafka start` starts (or reuses). One
/// that cannot be started or reached fails the test — locally and in CI — it never skips it.
pub fn broker() -> String {
    kafka::bootstrap(None).unwrap_or_else(|e| {
        panic!(
            "a real Kafka broker is required (CI={:?}): {e:#}",
            std::env::var("CI").ok()
        )
    })
}

/// The smoke scenario (`scenarios/smoke.toml`): small and quick.
#[allow(dead_code)] // not every test file runs it
pub fn smoke() -> Scenario {
    Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/smoke.toml")).unwrap()
}
