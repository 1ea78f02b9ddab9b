//! What the benches share.

use borderlane::traffic::gen::GenConfig;

/// The generator's configuration: its default, with the seed from `BORDERLANE_BENCH_SEED` when set
/// (scripts/pgo-train runs the benches on another seed than the one they are measured on; one that does
/// not parse stops the bench rather than running it on the default).
pub fn gen_config() -> GenConfig {
    let mut config = GenConfig::default();
    if let Ok(seed) = std::env::var("BORDERLANE_BENCH_SEED") {
        config.seed = seed
            .parse()
            .unwrap_or_else(|_| panic!("BORDERLANE_BENCH_SEED={seed:?} is not a u64"));
    }
    config
}
