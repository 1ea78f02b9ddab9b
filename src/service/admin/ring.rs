//! The bounded window of recently decided manifests that the what-if replay scores. It is bounded by the
//! estimated memory of the manifests it holds ([`manifest_bytes`]: the struct plus every vector and every
//! string that does not fit inline), not by their count, so large manifests cannot grow it past its budget
//! (`[admin] replay_window_bytes`). It exists only when the admin API runs.

use std::collections::VecDeque;
use std::mem::size_of;
use std::sync::{Arc, Mutex};

use borderlane_core::wire::{Manifest, Party, Str};

struct Inner {
    /// Oldest first, each with its estimated bytes.
    q: VecDeque<(Arc<Manifest>, usize)>,
    bytes: usize,
}

pub struct ManifestRing {
    inner: Mutex<Inner>,
    /// Budget in estimated bytes; 0 keeps nothing.
    max_bytes: usize,
}

/// What the allocator takes for a request of `n` bytes: glibc's chunk (the request plus an 8-byte header,
/// rounded up to 16, at least 32 bytes); nothing for an empty request. tests/ring_memory.rs checks the
/// estimate against glibc's own count of the heap in use.
fn chunk(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        ((n + 8 + 15) & !15).max(32)
    }
}

/// Heap bytes of a string that does not fit inline.
fn s(x: &Str) -> usize {
    if x.is_heap_allocated() {
        chunk(x.capacity())
    } else {
        0
    }
}

/// Heap bytes of a vector's buffer.
fn v<T>(x: &Vec<T>) -> usize {
    chunk(x.capacity() * size_of::<T>())
}

fn o(x: &Option<Str>) -> usize {
    x.as_ref().map_or(0, s)
}

fn party(p: &Option<Party>) -> usize {
    p.as_ref().map_or(0, |p| s(&p.id) + o(&p.name))
}

/// Estimated memory of one parsed manifest: the struct, its vectors' capacity and its heap strings.
pub fn manifest_bytes(m: &Manifest) -> usize {
    // The Arc: its counters and the struct, one allocation.
    let mut n = chunk(2 * size_of::<usize>() + size_of::<Manifest>()) + s(&m.manifest_id);
    if let Some(c) = &m.carrier {
        n += s(&c.scac) + o(&c.name);
    }
    if let Some(c) = &m.conveyance {
        n += o(&c.id) + o(&c.trip_number);
    }
    n += v(&m.drivers);
    for d in &m.drivers {
        n += s(&d.name) + o(&d.fast_card);
    }
    n += v(&m.equipment);
    for e in &m.equipment {
        n += s(&e.id) + v(&e.seals);
        n += e.seals.iter().map(|x| s(&x.number)).sum::<usize>();
    }
    n += v(&m.shipments);
    for sh in &m.shipments {
        n += s(&sh.shipment_id);
        for p in [
            &sh.importer,
            &sh.consignee,
            &sh.shipper,
            &sh.manufacturer,
            &sh.broker,
        ] {
            n += party(p);
        }
        n += v(&sh.transit_countries);
        n += v(&sh.commodities);
        for c in &sh.commodities {
            n += s(&c.description)
                + o(&c.unit)
                + o(&c.entry_type)
                + o(&c.process_type)
                + o(&c.import_use)
                + o(&c.payment_type)
                + o(&c.duty_type)
                + o(&c.origin_preference);
        }
    }
    n
}

impl ManifestRing {
    /// A window of at most `max_bytes` estimated bytes.
    pub fn new(max_bytes: usize) -> ManifestRing {
        ManifestRing {
            inner: Mutex::new(Inner {
                q: VecDeque::new(),
                bytes: 0,
            }),
            max_bytes,
        }
    }

    /// Remembers a manifest, dropping the oldest ones until the window fits its budget. One short lock;
    /// what leaves the window is freed after it.
    pub fn push(&self, m: Arc<Manifest>) {
        let b = manifest_bytes(&m);
        let mut evicted = Vec::new();
        self.push_sized(m, b, &mut evicted);
    }

    /// [`ManifestRing::push`] of a manifest whose [`manifest_bytes`] the caller has; the manifests that
    /// leave the window are appended to `evicted` with their bytes, for the caller to free where it
    /// chooses (a manifest is ~15 blocks built on a scoring thread: freeing them on the thread that built
    /// them keeps glibc's per-thread cache working, see `Watchers::keep_evicted`). A manifest larger than
    /// the whole budget is not kept (it goes to `evicted` too).
    pub fn push_sized(
        &self,
        m: Arc<Manifest>,
        b: usize,
        evicted: &mut Vec<(Arc<Manifest>, usize)>,
    ) {
        if self.max_bytes == 0 || b > self.max_bytes {
            evicted.push((m, b));
            return;
        }
        let mut i = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while i.bytes + b > self.max_bytes {
            match i.q.pop_front() {
                Some((old, old_bytes)) => {
                    i.bytes -= old_bytes;
                    evicted.push((old, old_bytes));
                }
                None => break,
            }
        }
        i.bytes += b;
        i.q.push_back((m, b));
    }

    /// A copy of the window, oldest first.
    pub fn snapshot(&self) -> Vec<Arc<Manifest>> {
        self.newest(usize::MAX)
    }

    /// The newest `n` manifests of the window, oldest first.
    pub fn newest(&self, n: usize) -> Vec<Arc<Manifest>> {
        let i = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let skip = i.q.len().saturating_sub(n);
        i.q.iter().skip(skip).map(|(m, _)| m.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).q.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Estimated bytes held now.
    pub fn bytes(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }

    /// The budget in estimated bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::gen::{GenConfig, Generator};

    fn generated(n: u64) -> Vec<Arc<Manifest>> {
        let policy = crate::load::policy::default_policy();
        let g = Generator::new(
            GenConfig {
                seed: 7,
                partners: 2000,
                bad_share: 0.0,
                ..GenConfig::default()
            },
            &policy,
        );
        (0..n)
            .filter_map(|i| {
                let bytes = g.record(i).to_bytes();
                borderlane_core::wire::parse_manifest(
                    &bytes,
                    &borderlane_core::wire::Limits::default(),
                )
                .ok()
            })
            .map(Arc::new)
            .collect()
    }

    /// The measurement behind the default `replay_window_bytes` (docs/serve.md): average estimated bytes
    /// of generated manifests. Run with `--nocapture` to see it.
    #[test]
    fn typical_generated_manifests_are_measured() {
        let ms = generated(20_000);
        let total: usize = ms.iter().map(|m| manifest_bytes(m)).sum();
        let avg = total / ms.len();
        let max = ms.iter().map(|m| manifest_bytes(m)).max().unwrap();
        println!(
            "{} generated manifests: average {avg} B, largest {max} B estimated",
            ms.len()
        );
        assert!(avg > size_of::<Manifest>() && avg < 16 * 1024, "{avg}");
    }

    #[test]
    fn the_window_is_bounded_by_bytes_and_keeps_the_newest() {
        let ms = generated(500);
        let budget = ms
            .iter()
            .take(100)
            .map(|m| manifest_bytes(m))
            .sum::<usize>();
        let ring = ManifestRing::new(budget);
        for m in &ms {
            ring.push(m.clone());
            assert!(ring.bytes() <= budget);
        }
        let kept = ring.snapshot();
        assert!(kept.len() > 20 && kept.len() < 500, "{}", kept.len());
        assert_eq!(
            kept.last().unwrap().manifest_id,
            ms.last().unwrap().manifest_id
        );
        let newest = ring.newest(3);
        assert_eq!(newest.len(), 3);
        assert_eq!(newest[2].manifest_id, ms.last().unwrap().manifest_id);
        let off = ManifestRing::new(0);
        off.push(ms[0].clone());
        assert!(off.is_empty());
    }

    /// What leaves the window is handed to the caller, oldest first: pushed = kept + handed over, and the
    /// handed-over ones are exactly the oldest pushed; a manifest larger than the budget is handed back.
    #[test]
    fn what_leaves_the_window_is_handed_back_oldest_first() {
        let ms = generated(300);
        let budget = ms.iter().take(50).map(|m| manifest_bytes(m)).sum::<usize>();
        let ring = ManifestRing::new(budget);
        let mut evicted = Vec::new();
        for m in &ms {
            ring.push_sized(m.clone(), manifest_bytes(m), &mut evicted);
        }
        let kept = ring.snapshot();
        assert!(!evicted.is_empty());
        assert_eq!(kept.len() + evicted.len(), ms.len());
        let ids = |v: &[Arc<Manifest>]| v.iter().map(|m| m.manifest_id.clone()).collect::<Vec<_>>();
        let all = ids(&ms);
        let (evicted, bytes): (Vec<Arc<Manifest>>, Vec<usize>) = evicted.into_iter().unzip();
        assert_eq!(ids(&evicted), all[..evicted.len()]);
        assert_eq!(ids(&kept), all[evicted.len()..]);
        assert!(evicted
            .iter()
            .zip(&bytes)
            .all(|(m, b)| manifest_bytes(m) == *b));
        let mut back = Vec::new();
        ManifestRing::new(10).push_sized(ms[0].clone(), 11, &mut back);
        assert_eq!(back.len(), 1);
        assert_eq!(
            (back[0].0.manifest_id.clone(), back[0].1),
            (all[0].clone(), 11)
        );
    }
}
