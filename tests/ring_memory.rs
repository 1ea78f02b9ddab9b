//! The what-if window is bounded by the estimated memory of the manifests it holds
//! (`service::admin::ring::manifest_bytes`). This checks the estimate against the heap itself: glibc's
//! `mallinfo2` counts the bytes of every chunk in use, so parsing and keeping generated manifests must
//! grow it by about what the estimate says (its own process: no other test allocates meanwhile).

#![cfg(all(target_os = "linux", target_env = "gnu"))]

use std::sync::Arc;

use borderlane::load::policy::default_policy;
use borderlane::service::admin::ring::manifest_bytes;
use borderlane::traffic::gen::{GenConfig, Generator};
use borderlane_core::wire::{parse_manifest, Limits, Manifest};

fn heap_in_use() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    unsafe { libc::mallinfo2() }.uordblks
}

#[test]
fn the_window_estimate_is_the_heap_the_manifests_use() {
    let policy = default_policy();
    let g = Generator::new(
        GenConfig {
            seed: 11,
            partners: 2000,
            bad_share: 0.0,
            ..GenConfig::default()
        },
        &policy,
    );
    let inputs: Vec<Vec<u8>> = (0..20_000u64).map(|i| g.record(i).to_bytes()).collect();
    let limits = Limits::default();
    let mut kept: Vec<Arc<Manifest>> = Vec::with_capacity(inputs.len());
    let before = heap_in_use();
    for bytes in &inputs {
        if let Ok(m) = parse_manifest(bytes, &limits) {
            kept.push(Arc::new(m));
        }
    }
    let real = heap_in_use() - before;
    let estimated: usize = kept.iter().map(|m| manifest_bytes(m)).sum();
    let ratio = estimated as f64 / real as f64;
    println!(
        "{} manifests: heap {real} B ({} B each), estimated {estimated} B ({} B each), ratio {ratio:.3}",
        kept.len(),
        real / kept.len(),
        estimated / kept.len()
    );
    assert!(kept.len() > 19_000);
    assert!(
        (0.98..=1.02).contains(&ratio),
        "estimate ÷ heap = {ratio:.3}"
    );
}
