//! The bounded ring of recently decided manifests that the what-if replay scores. Memory: one parsed
//! `Manifest` is ~250 bytes inline plus its vectors (~1–2 KB for a typical 1–3 shipment manifest), so the
//! default 100 k manifests cost roughly 100–200 MB; size it with `[admin] replay_window`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use borderlane_core::wire::Manifest;

pub struct ManifestRing {
    /// Oldest first; the newest `capacity` manifests.
    inner: Mutex<VecDeque<Arc<Manifest>>>,
    capacity: usize,
}

impl ManifestRing {
    pub fn new(capacity: usize) -> ManifestRing {
        ManifestRing {
            inner: Mutex::new(VecDeque::with_capacity(capacity.min(1 << 20))),
            capacity,
        }
    }

    /// Remembers a manifest, dropping the oldest when full. O(1), one short lock.
    pub fn push(&self, m: Arc<Manifest>) {
        if self.capacity == 0 {
            return;
        }
        let mut q = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() == self.capacity {
            q.pop_front();
        }
        q.push_back(m);
    }

    /// A copy of the window, oldest first.
    pub fn snapshot(&self) -> Vec<Arc<Manifest>> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}
