//! A cache prefetch hint: one of the core's two `unsafe` blocks (the other is `swar::lanes16`'s SSE2
//! compares), and it dereferences nothing.
//!
//! Loading a large partner table inserts into hash maps far larger than the caches, so nearly every insert
//! waits twice on memory (the probe group's control bytes, then the bucket). The follower knows the next
//! records' keys long before it inserts them, so it asks the CPU to start those loads early
//! ([`crate::PartnerTable::prefetch`]); docs/performance.md has the measurement.

/// Asks the CPU to start loading the cache line holding `p`. A prefetch is a hint with no architectural
/// effect: it never faults, so `p` may be dangling, stale or out of bounds. A no-op off x86-64.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 reads no memory architecturally and cannot fault on any address (Intel SDM,
    // "PREFETCHh"); nothing is dereferenced here.
    #[allow(unsafe_code)]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
