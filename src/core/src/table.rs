//! The in-memory CTPAT partner table: partners indexed by every `(identifier kind, value)` they hold, safe to
//! update from the partner-topic follower while scoring threads read it.
//!
//! Semantics (wire.md): an upsert replaces a partner's identifiers; a tombstone deletes the partner and
//! all its identifiers; each `(kind, value)` belongs to at most one partner (the latest upsert wins).
//! Effective standing is judged at the manifest's `filed_at`, never at the wall clock.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use dashmap::{DashMap, ReadOnlyView};

use crate::time::Date;
use crate::wire::{Entity, IdKind, Identifier, Identifiers, Partner, Status, Str};

/// foldhash: a fast, minimally DoS-resistant hasher (hashbrown's default); SipHash costs ~2x per lookup.
type Hasher = foldhash::fast::RandomState;

/// A partner's CTPAT standing as it counts for one manifest, weakest first.
///
/// `Mra` is a foreign company certified under a Mutual Recognition Arrangement; it is recognised only in the
/// roles the policy grants MRA credit to (shippers and manufacturers by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Standing {
    Removed,
    Suspended,
    None,
    Applicant,
    Mra,
    Certified,
    Validated { tier: u8 },
}

impl Standing {
    /// Every standing but `Validated`, whose tier varies.
    pub const UNTIERED: [Standing; 6] = [
        Standing::Removed,
        Standing::Suspended,
        Standing::None,
        Standing::Applicant,
        Standing::Mra,
        Standing::Certified,
    ];

    /// Name used on decisions and in reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Standing::Removed => "removed",
            Standing::Suspended => "suspended",
            Standing::None => "none",
            Standing::Applicant => "applicant",
            Standing::Mra => "mra",
            Standing::Certified => "certified",
            Standing::Validated { tier: 3 } => "validated_tier3",
            Standing::Validated { .. } => "validated",
        }
    }

    /// Certified or validated: the standings that earn CTPAT benefits.
    pub fn is_ctpat(self) -> bool {
        matches!(self, Standing::Certified | Standing::Validated { .. })
    }
}

/// Judges a partner's effective standing on the day a manifest was filed.
pub fn effective_standing(p: &Partner, filed: Date, revalidation_days: i32) -> (Standing, bool) {
    let certified_by = |d: Option<Date>| d.is_none_or(|d| d <= filed);
    let standing = match p.status {
        Status::Removed => return (Standing::Removed, false),
        Status::Suspended => return (Standing::Suspended, false),
        Status::Applicant => return (Standing::Applicant, false),
        Status::Certified if !certified_by(p.certified_on) => return (Standing::Applicant, false),
        Status::Certified => Standing::Certified,
        Status::Validated => match p.validated_on {
            Some(v) if v > filed => {
                if certified_by(p.certified_on) {
                    Standing::Certified
                } else {
                    return (Standing::Applicant, false);
                }
            }
            // A validation without a date still needs a certification by the filing day.
            None if !certified_by(p.certified_on) => return (Standing::Applicant, false),
            Some(v) if v.days_until(filed) > revalidation_days => {
                return (
                    if p.entity == Entity::MraForeign {
                        Standing::Mra
                    } else {
                        Standing::Certified
                    },
                    true,
                )
            }
            _ => Standing::Validated {
                tier: p.tier.unwrap_or(2).clamp(2, 3),
            },
        },
    };
    if p.entity == Entity::MraForeign {
        (Standing::Mra, false)
    } else {
        (standing, false)
    }
}

/// Hashes an index key (a partner id or an identifier value).
type KeyHash = fn(&str) -> u64;

fn xxh3(key: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key.as_bytes())
}

/// What an index's keys are and how they hash.
#[derive(Clone, Copy)]
struct Keys {
    /// `None`: the key is the partner id; `Some(kind)`: an identifier of that kind.
    kind: Option<IdKind>,
    hash: KeyHash,
}

impl Keys {
    /// Whether the slot of `key`'s hash, holding `p`, is `key`'s: `p` holds `key`, and no other key of
    /// this index with the same hash. A partner holding two keys whose hashes collide is never put in a
    /// slot (both keys go to the spill), so a slot's partner always names its key; without that, a slot
    /// set for one key would answer for the other, and replacing it for one would lose the other.
    #[inline(always)]
    fn holds(&self, p: &Partner, key: &str, hash: u64) -> bool {
        match self.kind {
            None => p.partner_id == key,
            Some(kind) => {
                // Most partners hold one identifier.
                if let [only] = &p.identifiers[..] {
                    return only.kind == kind && only.value == key;
                }
                // One pass; another identifier of the kind is hashed only in the rare partner with two.
                let mut found = false;
                for i in p.identifiers.iter().filter(|i| i.kind == kind) {
                    if i.value == key {
                        found = true;
                    } else if (self.hash)(&i.value) == hash {
                        return false;
                    }
                }
                found
            }
        }
    }
}

/// A concurrent index from a string key to the partner holding it, keyed by the key's 64-bit hash: a
/// 16-byte entry instead of 32 (the string is stored once, in the partner), which is most of a large
/// table's memory. A key whose hash collides with a *different* key already present goes to `spill`,
/// keyed by the string; a key lives in exactly one of the two, so a collision costs only speed.
struct Index {
    keys: Keys,
    by_hash: DashMap<u64, Arc<Partner>, Hasher>,
    spill: DashMap<Str, Arc<Partner>, Hasher>,
    /// Set before the first key ever goes to `spill` (never reset): until then no lookup touches it
    /// (`DashMap::is_empty` would lock every shard).
    spilled: AtomicBool,
}

impl Index {
    fn new(kind: Option<IdKind>, hash: KeyHash) -> Index {
        Index {
            keys: Keys { kind, hash },
            by_hash: DashMap::with_hasher(Hasher::default()),
            spill: DashMap::with_hasher(Hasher::default()),
            spilled: AtomicBool::new(false),
        }
    }

    #[inline]
    fn may_spill(&self) -> bool {
        self.spilled.load(Ordering::Acquire)
    }

    /// Points `key` at `p` (which holds it); returns the partner it pointed at before.
    fn insert(&self, key: &str, p: Arc<Partner>) -> Option<Arc<Partner>> {
        let hash = (self.keys.hash)(key);
        match self.by_hash.entry(hash) {
            // The slot is this key's: `p` takes it, unless `p` holds another key of this hash.
            dashmap::Entry::Occupied(mut o) if self.keys.holds(o.get(), key, hash) => {
                if self.keys.holds(&p, key, hash) {
                    return Some(o.insert(p));
                }
                // Into the spill before the slot goes (same lock order as every path: slot, then spill),
                // so a reader finds the old partner or the new one, never neither.
                self.spilled.store(true, Ordering::Release);
                self.spill.insert(Str::from(key), p);
                Some(o.remove())
            }
            dashmap::Entry::Occupied(o) => {
                drop(o);
                self.spilled.store(true, Ordering::Release);
                self.spill.insert(Str::from(key), p)
            }
            dashmap::Entry::Vacant(v) if self.keys.holds(&p, key, hash) => {
                v.insert(p);
                // It may have lived in the spill while another key held the slot.
                if self.may_spill() {
                    self.spill.remove(key).map(|(_, old)| old)
                } else {
                    None
                }
            }
            dashmap::Entry::Vacant(v) => {
                drop(v);
                self.spilled.store(true, Ordering::Release);
                self.spill.insert(Str::from(key), p)
            }
        }
    }

    /// Removes `key` if it points at a partner `owner` accepts; returns that partner.
    fn remove_if(&self, key: &str, owner: impl Fn(&Partner) -> bool) -> Option<Arc<Partner>> {
        let hash = (self.keys.hash)(key);
        let removed = self
            .by_hash
            .remove_if(&hash, |_, p| self.keys.holds(p, key, hash) && owner(p));
        if let Some((_, p)) = removed {
            return Some(p);
        }
        if !self.may_spill() {
            return None;
        }
        self.spill.remove_if(key, |_, p| owner(p)).map(|(_, p)| p)
    }

    fn len(&self) -> usize {
        self.by_hash.len() + self.spill.len()
    }

    /// Makes room for `additional` more keys, spread over the shards as keys are, so that growing to them
    /// rehashes nothing (a shard that grows rehashes every entry it holds, under its write lock).
    fn reserve(&self, additional: usize) {
        if additional == 0 {
            return;
        }
        let shards = self.by_hash.shards();
        let per_shard = additional.div_ceil(shards.len());
        for shard in shards {
            shard
                .write()
                .reserve(per_shard, |(k, _)| self.by_hash.hash_usize(k) as u64);
        }
    }

    /// Where dashmap and hashbrown start probing for a key with this hash: the shard's control bytes
    /// at the probe position and the bucket there (hashbrown's first probe position is
    /// `h1(hash) & bucket_mask`; its control bytes start at `data_end`, the `i`-th bucket lies just
    /// below `data_end - i`). Read under the shard's read lock, which a writer may take right after (the
    /// addresses are then stale: a hint's loss, never an error); `None` while the shard is being written
    /// (never waited for).
    #[inline]
    fn probe_start(&self, hash: u64) -> Option<(*const u8, *const u8)> {
        let h = self.by_hash.hash_usize(&hash);
        let shard = self.by_hash.shards()[self.by_hash.determine_shard(h)].try_read()?;
        let pos = h & (shard.buckets() - 1);
        let end = shard.data_end().as_ptr();
        Some((
            end.cast::<u8>().cast_const().wrapping_add(pos),
            end.wrapping_sub(pos + 1).cast::<u8>().cast_const(),
        ))
    }

    /// Starts loading what an insert or removal of `key` touches first: the probe group's control bytes
    /// and the bucket at the probe position. Only a start: a key lands in the first free slot of the
    /// 16-slot group, whose bucket may lie a line or more below (a bucket is 16 bytes), an existing key
    /// anywhere in the group, and a group may cross a line; those loads still miss.
    #[inline]
    fn prefetch(&self, key: &str) {
        if let Some((ctrl, bucket)) = self.probe_start((self.keys.hash)(key)) {
            crate::prefetch::prefetch(ctrl);
            crate::prefetch::prefetch(bucket);
        }
    }
}

/// An index a lookup reads: live ([`Index`]) or frozen ([`FrozenIndex`]).
trait Find {
    fn keys(&self) -> &Keys;

    /// Runs `f` on the partner holding `key`, whose hash (by the index's [`Keys`]) the caller has: every
    /// index of a table hashes alike, so a value tried under several identifier kinds is hashed once.
    fn with_hashed<R>(&self, hash: u64, key: &str, f: impl FnOnce(&Arc<Partner>) -> R)
        -> Option<R>;

    /// Runs `f` on the partner holding `key`.
    #[inline]
    fn with<R>(&self, key: &str, f: impl FnOnce(&Arc<Partner>) -> R) -> Option<R> {
        self.with_hashed((self.keys().hash)(key), key, f)
    }
}

impl Find for Index {
    fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Under the map's read guard.
    #[inline]
    fn with_hashed<R>(
        &self,
        hash: u64,
        key: &str,
        f: impl FnOnce(&Arc<Partner>) -> R,
    ) -> Option<R> {
        if let Some(p) = self.by_hash.get(&hash) {
            if self.keys.holds(&p, key, hash) {
                return Some(f(&p));
            }
        }
        if !self.may_spill() {
            return None;
        }
        self.spill.get(key).map(|p| f(&p))
    }
}

/// An [`Index`] that no longer changes: the same maps, read without their locks. A live lookup takes and
/// releases its shard's read lock (two atomic read-modify-writes, most of a lookup's cost when the probe
/// hits the cache); a frozen one only reads.
struct FrozenIndex {
    keys: Keys,
    by_hash: ReadOnlyView<u64, Arc<Partner>, Hasher>,
    spill: ReadOnlyView<Str, Arc<Partner>, Hasher>,
    /// Whether any key lives in `spill`.
    spilled: bool,
}

impl Find for FrozenIndex {
    fn keys(&self) -> &Keys {
        &self.keys
    }

    #[inline]
    fn with_hashed<R>(
        &self,
        hash: u64,
        key: &str,
        f: impl FnOnce(&Arc<Partner>) -> R,
    ) -> Option<R> {
        if let Some(p) = self.by_hash.get(&hash) {
            if self.keys.holds(p, key, hash) {
                return Some(f(p));
            }
        }
        if !self.spilled {
            return None;
        }
        self.spill.get(key).map(f)
    }
}

/// One party's join: the value, the identifier kinds its role tries in order, and the day its standing is
/// judged on.
struct Join<'a> {
    kinds: &'a [IdKind],
    value: &'a str,
    filed: Date,
    revalidation_days: i32,
}

impl Join<'_> {
    /// The join over a table's identifier indexes (one per kind, in [`IdKind::ALL`] order), whose keys
    /// hash with `hash`: see [`Partners::resolve_with`].
    #[inline(always)]
    fn run<I: Find, R>(
        &self,
        by_ident: &[I],
        hash: KeyHash,
        accept: impl Fn(Entity) -> bool,
        mut f: impl FnMut(&Partner, Standing, bool) -> R,
    ) -> Option<R> {
        // One hash for every kind tried (all indexes share the table's key hash).
        let hash = hash(self.value);
        for kind in self.kinds {
            let found = by_ident[kind.index()].with_hashed(hash, self.value, |p| {
                accept(p.entity).then(|| {
                    let (standing, lapsed) =
                        effective_standing(p, self.filed, self.revalidation_days);
                    f(p, standing, lapsed)
                })
            });
            if let Some(Some(r)) = found {
                return Some(r);
            }
        }
        None
    }
}

/// Stripes of the writer lock (a power of two).
const WRITER_STRIPES: usize = 64;

/// Concurrent partner table. Writers are the partner-topic follower (or a file loader); readers score.
///
/// Writers may run concurrently (the follower applies partitions in parallel): an upsert or tombstone is
/// several index operations, so writers of the same partner id are serialised by a striped lock, which
/// readers never take. Writers of different partners interleave freely; each index entry changes
/// atomically and is removed only by the partner it points at, so an identifier two partners claim at
/// once ends with one of them, as with some order of the two writes.
pub struct PartnerTable {
    /// partner_id → record; the source of truth for which identifiers a partner holds.
    by_id: Index,
    /// One index per identifier kind, so a lookup hashes the bare value without building a composite key.
    by_ident: Vec<Index>,
    /// Writer lock stripes, by the partner id's hash.
    writers: Box<[Mutex<()>]>,
    /// Upserts and deletes applied since creation (a metric).
    updates: AtomicU64,
}

impl Default for PartnerTable {
    fn default() -> Self {
        PartnerTable::new()
    }
}

impl std::fmt::Debug for PartnerTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerTable")
            .field("partners", &self.len())
            .finish()
    }
}

impl PartnerTable {
    pub fn new() -> PartnerTable {
        PartnerTable::with_key_hash(xxh3)
    }

    /// A table whose indexes hash keys with `hash` (tests force collisions with a constant one).
    fn with_key_hash(hash: KeyHash) -> PartnerTable {
        PartnerTable {
            by_id: Index::new(None, hash),
            by_ident: IdKind::ALL
                .iter()
                .map(|k| Index::new(Some(*k), hash))
                .collect(),
            writers: (0..WRITER_STRIPES).map(|_| Mutex::new(())).collect(),
            updates: AtomicU64::new(0),
        }
    }

    /// The writer lock of `partner_id`'s stripe (a panicked writer's poison is ignored: the lock guards
    /// no data of its own).
    fn write_lock(&self, partner_id: &str) -> MutexGuard<'_, ()> {
        let stripe = (self.by_id.keys.hash)(partner_id) as usize & (WRITER_STRIPES - 1);
        self.writers[stripe]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Inserts or replaces a partner. New identifiers are indexed before stale ones are dropped, so a
    /// concurrent reader sees either the old or the new record for an identifier both hold, never neither.
    pub fn upsert(&self, mut partner: Partner) {
        // Identifiers that spilled to the heap may keep growth capacity (4 after a third push). A fresh
        // exact allocation (or back inside the partner), not a shrink in place: the freed block is the size
        // the next parse needs, where a shrunk one would leave a hole nothing fills. (`collect` from the
        // drain would not do: it allocates at least 4.)
        let ids = &mut partner.identifiers;
        if ids.spilled() && ids.capacity() > ids.len() {
            let mut exact: Vec<Identifier> = Vec::with_capacity(ids.len());
            exact.extend(ids.drain(..));
            *ids = Identifiers::from_vec(exact);
        }
        let new = Arc::new(partner);
        let _writing = self.write_lock(&new.partner_id);
        let old = self.by_id.insert(&new.partner_id, new.clone());
        for id in &new.identifiers {
            self.by_ident[id.kind.index()].insert(&id.value, new.clone());
        }
        if let Some(old) = old {
            for id in old
                .identifiers
                .iter()
                .filter(|i| !new.identifiers.contains(i))
            {
                self.unindex(id.kind, &id.value, &new.partner_id);
            }
        }
        self.updates.fetch_add(1, Ordering::Relaxed);
    }

    /// Makes room in the partner-id index for the table to grow to about `partners` partners without
    /// rehashing it. For a loader that knows how many records are coming (the partner follower's start-up
    /// read). The identifier indexes grow as they fill: how the coming partners spread over identifier
    /// kinds cannot be told from the first records (a topic written one entity kind after another starts
    /// with importers only).
    pub fn reserve_for(&self, partners: usize) {
        self.by_id
            .reserve(partners.saturating_sub(self.by_id.len()));
    }

    /// The partner-id index's buckets, every shard's together: room for 7/8 as many partners before it
    /// next grows (for tests and diagnostics of [`PartnerTable::reserve_for`]).
    pub fn id_index_buckets(&self) -> usize {
        self.by_id
            .by_hash
            .shards()
            .iter()
            .map(|s| s.read().buckets())
            .sum()
    }

    /// Starts loading what upserting `p` will touch first in each index (see [`Index::prefetch`]): a
    /// writer that knows its next records (the partner follower) calls this a few records ahead, so the
    /// misses of a table larger than the caches overlap instead of following one another.
    pub fn prefetch(&self, p: &Partner) {
        self.by_id.prefetch(&p.partner_id);
        for id in &p.identifiers {
            self.by_ident[id.kind.index()].prefetch(&id.value);
        }
    }

    /// [`PartnerTable::prefetch`] for a tombstone of `partner_id`.
    pub fn prefetch_id(&self, partner_id: &str) {
        self.by_id.prefetch(partner_id);
    }

    /// Applies a tombstone: deletes the partner and every identifier still pointing at it.
    pub fn remove(&self, partner_id: &str) -> bool {
        let _writing = self.write_lock(partner_id);
        self.updates.fetch_add(1, Ordering::Relaxed);
        match self.by_id.remove_if(partner_id, |_| true) {
            Some(old) => {
                for id in &old.identifiers {
                    self.unindex(id.kind, &id.value, partner_id);
                }
                true
            }
            None => false,
        }
    }

    fn unindex(&self, kind: IdKind, value: &str, owner: &str) {
        self.by_ident[kind.index()].remove_if(value, |p| p.partner_id == owner);
    }

    /// The partner holding `(kind, value)`, if any.
    #[inline]
    pub fn get(&self, kind: IdKind, value: &str) -> Option<Arc<Partner>> {
        self.by_ident[kind.index()].with(value, Arc::clone)
    }

    /// The table as it stands, for readers only: the same contents behind lookups that take no lock
    /// ([`FrozenTable`]). For a table that no longer changes once loaded (`score`, `replay`).
    pub fn freeze(self) -> FrozenTable {
        let freeze = |i: Index| {
            let spilled = i.may_spill();
            FrozenIndex {
                keys: i.keys,
                by_hash: i.by_hash.into_read_only(),
                spill: i.spill.into_read_only(),
                spilled,
            }
        };
        FrozenTable {
            by_id: freeze(self.by_id),
            by_ident: self.by_ident.into_iter().map(freeze).collect(),
        }
    }

    /// Number of partners.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of indexed identifiers.
    pub fn identifier_count(&self) -> usize {
        self.by_ident.iter().map(Index::len).sum()
    }

    /// Upserts and deletes applied since creation.
    pub fn updates_applied(&self) -> u64 {
        self.updates.load(Ordering::Relaxed)
    }

    /// A snapshot of every partner (order unspecified).
    pub fn partners(&self) -> Vec<Arc<Partner>> {
        let by_id = &self.by_id;
        by_id
            .by_hash
            .iter()
            .map(|r| r.value().clone())
            .chain(by_id.spill.iter().map(|r| r.value().clone()))
            .collect()
    }
}

/// A [`PartnerTable`] that no longer changes ([`PartnerTable::freeze`]): the same answers, from lookups that
/// take no lock. docs/performance.md has the measurement.
pub struct FrozenTable {
    by_id: FrozenIndex,
    by_ident: Vec<FrozenIndex>,
}

impl std::fmt::Debug for FrozenTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrozenTable")
            .field("partners", &self.len())
            .finish()
    }
}

impl FrozenTable {
    /// [`PartnerTable::get`].
    pub fn get(&self, kind: IdKind, value: &str) -> Option<Arc<Partner>> {
        self.by_ident[kind.index()].with(value, Arc::clone)
    }

    /// Number of partners (dashmap counts each shard under its lock: not for a hot path).
    pub fn len(&self) -> usize {
        self.by_id.by_hash.len() + self.by_id.spill.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The partner table a decision joins against: the live one, or one frozen for a run that never changes
/// it (whose lookups take no lock).
#[derive(Debug, Clone, Copy)]
pub enum Partners<'a> {
    Live(&'a PartnerTable),
    Frozen(&'a FrozenTable),
}

impl Partners<'_> {
    /// Finds the first partner that holds `value` under one of `kinds` and whose entity is accepted, judges
    /// its standing on `filed`, and hands the partner, the standing and the lapse flag to `f` — under the
    /// map's read guard for the live table, with no lock for a frozen one: no reference-count traffic, and
    /// a caller copies only what it keeps.
    #[inline]
    pub fn resolve_with<R>(
        self,
        kinds: &[IdKind],
        accept: impl Fn(Entity) -> bool,
        value: &str,
        filed: Date,
        revalidation_days: i32,
        f: impl FnMut(&Partner, Standing, bool) -> R,
    ) -> Option<R> {
        let join = Join {
            kinds,
            value,
            filed,
            revalidation_days,
        };
        match self {
            Partners::Live(t) => join.run(&t.by_ident, t.by_id.keys.hash, accept, f),
            Partners::Frozen(t) => join.run(&t.by_ident, t.by_id.keys.hash, accept, f),
        }
    }

    /// [`PartnerTable::get`].
    pub fn get(self, kind: IdKind, value: &str) -> Option<Arc<Partner>> {
        match self {
            Partners::Live(t) => t.get(kind, value),
            Partners::Frozen(t) => t.get(kind, value),
        }
    }

    /// Number of partners.
    pub fn len(self) -> usize {
        match self {
            Partners::Live(t) => t.len(),
            Partners::Frozen(t) => t.len(),
        }
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

impl<'a> From<&'a PartnerTable> for Partners<'a> {
    fn from(t: &'a PartnerTable) -> Self {
        Partners::Live(t)
    }
}

impl<'a> From<&'a Arc<PartnerTable>> for Partners<'a> {
    fn from(t: &'a Arc<PartnerTable>) -> Self {
        Partners::Live(t)
    }
}

impl<'a> From<&'a FrozenTable> for Partners<'a> {
    fn from(t: &'a FrozenTable) -> Self {
        Partners::Frozen(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Identifier;

    fn partner(id: &str, idents: &[(IdKind, &str)], status: Status) -> Partner {
        Partner {
            partner_id: id.into(),
            entity: Entity::Importer,
            identifiers: idents
                .iter()
                .map(|(k, v)| Identifier {
                    kind: *k,
                    value: (*v).into(),
                })
                .collect(),
            status,
            tier: None,
            certified_on: Date::parse("2019-03-04"),
            validated_on: None,
            trade_compliance: false,
            mra_program: None,
            updated_at: None,
        }
    }

    /// Stored identifiers hold no growth room: inside the partner for one, an exact allocation for more.
    #[test]
    fn stored_identifiers_are_exact() {
        let t = PartnerTable::new();
        let kinds = [
            IdKind::Ior,
            IdKind::Ein,
            IdKind::Duns,
            IdKind::Fmc,
            IdKind::Iata,
        ];
        for n in 1..=kinds.len() {
            let mut p = partner(&format!("P{n}"), &[], Status::Certified);
            for kind in &kinds[..n] {
                // Pushed one by one, as a reader does: capacity grows 1, 2, 4, 8.
                p.identifiers.push(Identifier {
                    kind: *kind,
                    value: format!("V{n}").into(),
                });
            }
            t.upsert(p);
            let stored = t.get(IdKind::Ior, &format!("V{n}")).unwrap();
            assert_eq!(stored.identifiers.len(), n);
            assert_eq!(stored.identifiers.capacity(), n, "{n} identifiers");
            assert_eq!(stored.identifiers.spilled(), n > 1);
        }
    }

    /// Room made for the coming partners keeps every partner found (the entries already held are
    /// rehashed by the map's own hash), and growing to them does not rehash the partner-id index again.
    #[test]
    fn reserved_room_keeps_every_partner_and_is_grown_into_without_rehashing() {
        let t = PartnerTable::new();
        let add = |range: std::ops::Range<usize>| {
            for i in range {
                let (id, ior) = (format!("P{i}"), format!("IOR-{i}"));
                t.upsert(partner(&id, &[(IdKind::Ior, &ior)], Status::Certified));
            }
        };
        add(0..1000);
        let before = t.id_index_buckets();
        t.reserve_for(20_000);
        let reserved = t.id_index_buckets();
        assert!(reserved > before, "{before} -> {reserved}");
        let capacity: usize = t
            .by_id
            .by_hash
            .shards()
            .iter()
            .map(|s| s.read().capacity())
            .sum();
        assert!(capacity >= 20_000, "{capacity}");
        for i in 0..1000 {
            let id = format!("P{i}");
            let by_id = t.by_id.with(&id, |p| p.partner_id.clone());
            assert_eq!(by_id.as_deref(), Some(id.as_str()), "found by id");
            let p = t
                .get(IdKind::Ior, &format!("IOR-{i}"))
                .expect("found by identifier");
            assert_eq!(p.partner_id, id);
        }
        // Three quarters of the room: each shard's share of the keys varies, and a shard that drew more
        // than its share of the room would grow (it has slack from rounding up to a power of two).
        add(1000..15_000);
        assert_eq!(t.id_index_buckets(), reserved, "grown into, not rehashed");
        assert_eq!((t.len(), t.identifier_count()), (15_000, 15_000));
        // Each tombstone finds its partner and its identifier.
        for i in (0..15_000).step_by(7) {
            assert!(t.remove(&format!("P{i}")), "P{i}");
            assert!(t.get(IdKind::Ior, &format!("IOR-{i}")).is_none());
        }
        // A guess at or below what the table holds changes nothing.
        let held = t.id_index_buckets();
        t.reserve_for(10);
        assert_eq!(t.id_index_buckets(), held);
    }

    #[test]
    fn upsert_replaces_identifiers_and_tombstone_deletes() {
        upsert_and_tombstone(PartnerTable::new());
    }

    /// Every key hashing alike: every second key lives in the spill, and the semantics must not change.
    #[test]
    fn hash_collisions_change_nothing() {
        upsert_and_tombstone(PartnerTable::with_key_hash(|_| 7));
        let t = PartnerTable::with_key_hash(|_| 7);
        for i in 0..50 {
            let id = format!("P{i}");
            let ior = format!("IOR-{i}");
            t.upsert(partner(&id, &[(IdKind::Ior, &ior)], Status::Certified));
        }
        assert_eq!((t.len(), t.identifier_count()), (50, 50));
        for i in (0..50).step_by(3) {
            assert!(t.remove(&format!("P{i}")));
        }
        for i in 0..50 {
            let got = t.get(IdKind::Ior, &format!("IOR-{i}"));
            assert_eq!(got.is_some(), i % 3 != 0, "IOR-{i}");
            if let Some(p) = got {
                assert_eq!(p.partner_id, format!("P{i}"));
            }
        }
        // Re-inserted keys come back whichever map they land in, exactly once.
        for i in (0..50).step_by(3) {
            let (id, ior) = (format!("P{i}"), format!("IOR-{i}"));
            t.upsert(partner(&id, &[(IdKind::Ior, &ior)], Status::Validated));
        }
        assert_eq!((t.len(), t.identifier_count()), (50, 50));
        assert_eq!(t.partners().len(), 50);
        assert!((0..50).all(|i| t.get(IdKind::Ior, &format!("IOR-{i}")).is_some()));

        // One partner holding two keys whose hashes collide, then another claiming one of them: the
        // other stays its first owner's (a slot set for one key used to answer for both, and the claim
        // replaced it for both, losing B; found by the model test below).
        let t = PartnerTable::with_key_hash(|_| 7);
        t.upsert(partner(
            "P0",
            &[(IdKind::Ein, "A"), (IdKind::Ein, "B")],
            Status::Certified,
        ));
        t.upsert(partner("P1", &[(IdKind::Ein, "A")], Status::Certified));
        assert_eq!(t.get(IdKind::Ein, "A").unwrap().partner_id, "P1");
        assert_eq!(t.get(IdKind::Ein, "B").unwrap().partner_id, "P0");
        assert_eq!(t.identifier_count(), 2);
        assert!(t.remove("P0"));
        assert_eq!(t.get(IdKind::Ein, "A").unwrap().partner_id, "P1");
        assert!(t.get(IdKind::Ein, "B").is_none());
    }

    fn upsert_and_tombstone(t: PartnerTable) {
        t.upsert(partner(
            "P1",
            &[(IdKind::Ior, "A"), (IdKind::Ein, "B")],
            Status::Certified,
        ));
        assert!(t.get(IdKind::Ior, "A").is_some());
        assert!(t.get(IdKind::Ein, "B").is_some());
        assert!(t.get(IdKind::Scac, "A").is_none());
        t.upsert(partner("P1", &[(IdKind::Ior, "C")], Status::Certified));
        assert!(t.get(IdKind::Ior, "A").is_none());
        assert!(t.get(IdKind::Ein, "B").is_none());
        assert_eq!(t.get(IdKind::Ior, "C").unwrap().partner_id, "P1");
        // Identifier moves to another partner: latest wins, and deleting the old owner keeps it.
        t.upsert(partner("P2", &[(IdKind::Ior, "C")], Status::Validated));
        assert_eq!(t.get(IdKind::Ior, "C").unwrap().partner_id, "P2");
        assert!(t.remove("P1"));
        assert_eq!(t.get(IdKind::Ior, "C").unwrap().partner_id, "P2");
        assert!(t.remove("P2"));
        assert!(t.get(IdKind::Ior, "C").is_none());
        assert!(!t.remove("P2"));
        assert_eq!((t.len(), t.identifier_count()), (0, 0));
        assert_eq!(t.updates_applied(), 6);
    }

    /// An upsert (`true`) or tombstone of partner `P{n}`, with the upsert's identifiers: (EIN, else IOR;
    /// value `V{n}`).
    type Op = (bool, u8, Vec<(bool, u8)>);

    /// A model of the semantics (wire.md): identifier → owner, the latest upsert claiming it wins; an upsert
    /// drops the identifiers its partner no longer holds, a tombstone all of them, each only where that
    /// partner still owns it. Any sequence of upserts and tombstones leaves `get` and `len` equal to the
    /// model's, for every identifier ever used (removed ones included), under the real key hash, one that
    /// leaves few bits varying, and one that collides keys outright.
    fn follows_the_model(hash: KeyHash, ops: &[Op]) {
        use std::collections::HashMap;
        let t = PartnerTable::with_key_hash(hash);
        let kind = |ein: bool| if ein { IdKind::Ein } else { IdKind::Ior };
        let mut owner: HashMap<(IdKind, String), String> = HashMap::new();
        let mut held: HashMap<String, Vec<(IdKind, String)>> = HashMap::new();
        for (upsert, who, idents) in ops {
            let id = format!("P{who}");
            let idents: Vec<(IdKind, String)> = idents
                .iter()
                .map(|(ein, v)| (kind(*ein), format!("V{v}")))
                .collect();
            let was = held.remove(&id);
            for key in was.iter().flatten() {
                if (!*upsert || !idents.contains(key)) && owner.get(key) == Some(&id) {
                    owner.remove(key);
                }
            }
            if *upsert {
                let refs: Vec<(IdKind, &str)> =
                    idents.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let p = partner(&id, &refs, Status::Certified);
                // A hint only: it must change nothing (an empty table, colliding hashes).
                t.prefetch(&p);
                t.upsert(p);
                for key in &idents {
                    owner.insert(key.clone(), id.clone());
                }
                held.insert(id, idents);
            } else {
                t.prefetch_id(&id);
                assert_eq!(t.remove(&id), was.is_some(), "{id}");
            }
        }
        // The live table, then the same table frozen: the same answers.
        let check = |table: Partners<'_>| {
            assert_eq!(table.len(), held.len(), "{table:?}");
            for ein in [false, true] {
                for v in 0..12u8 {
                    let key = (kind(ein), format!("V{v}"));
                    let got = table.get(key.0, &key.1).map(|p| p.partner_id.to_string());
                    assert_eq!(got.as_ref(), owner.get(&key), "{table:?} {key:?}");
                    // Tried under both kinds, the value's owner under the first kind holding it.
                    let joined = table.resolve_with(
                        &[IdKind::Ior, IdKind::Ein],
                        |_| true,
                        &key.1,
                        Date::parse("2024-01-01").unwrap(),
                        365,
                        |p, _, _| p.partner_id.to_string(),
                    );
                    let want = owner
                        .get(&(IdKind::Ior, key.1.clone()))
                        .or(owner.get(&(IdKind::Ein, key.1.clone())));
                    assert_eq!(joined.as_ref(), want, "{table:?} {key:?}");
                }
            }
        };
        check(Partners::Live(&t));
        check(Partners::Frozen(&t.freeze()));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        #[test]
        fn upserts_and_tombstones_follow_the_model(
            ops in proptest::collection::vec(
                (
                    proptest::bool::weighted(0.75),
                    0u8..6,
                    proptest::collection::vec((proptest::bool::ANY, 0u8..12), 0..4),
                ),
                0..40,
            ),
        ) {
            follows_the_model(xxh3, &ops);
            follows_the_model(|k| xxh3(k) & (u64::MAX >> 62 << 62 | 0xffff), &ops);
            follows_the_model(|k| k.len() as u64, &ops);
        }
    }

    /// `probe_start` names the shard and probe position dashmap and hashbrown use: every key is found in
    /// the shard whose layout it reads, and nearly every key's bucket lies in the 16-slot group at the
    /// position it gives (a table below its load factor; a wrong hash or shard would put ~16 of every
    /// `buckets` keys there).
    #[test]
    fn prefetch_addresses_are_where_the_keys_are() {
        let t = PartnerTable::new();
        let n = 5000;
        for i in 0..n {
            let ior = format!("I{i}");
            t.upsert(partner(
                &format!("P{i}"),
                &[(IdKind::Ior, &ior)],
                Status::Certified,
            ));
        }
        for (index, prefix) in [(&t.by_id, "P"), (&t.by_ident[IdKind::Ior.index()], "I")] {
            let mut in_first_group = 0;
            for i in 0..n {
                let hash = (index.keys.hash)(&format!("{prefix}{i}"));
                let (ctrl, bucket) = index.probe_start(hash).expect("no writer holds a shard");
                let h = index.by_hash.hash_usize(&hash);
                let shard = index.by_hash.shards()[index.by_hash.determine_shard(h)].read();
                let found = shard
                    .find(h as u64, |(k, _)| *k == hash)
                    .expect("the key is in the shard whose layout was read");
                let end = shard.data_end().as_ptr() as usize;
                let entry = std::mem::size_of::<(u64, dashmap::SharedValue<Arc<Partner>>)>();
                let pos = (end - bucket as usize) / entry - 1;
                let slot = (end - found.as_ptr() as usize) / entry - 1;
                assert_eq!(
                    ctrl as usize,
                    end + pos,
                    "control bytes at the probe position"
                );
                if slot.wrapping_sub(pos) & (shard.buckets() - 1) < 16 {
                    in_first_group += 1;
                }
            }
            assert!(
                in_first_group * 10 >= n * 9,
                "{prefix}: {in_first_group} of {n}"
            );
        }
    }

    /// Writers on several threads — upserts and tombstones of the same partners racing, identifiers claimed
    /// by several partners — leave the indexes consistent: every identifier entry points at the record the
    /// id index holds for its partner, which holds that identifier; and a partner only one thread writes
    /// ends as that thread's last write.
    #[test]
    fn concurrent_writers_keep_the_indexes_consistent() {
        let t = PartnerTable::new();
        let rounds = 20_000;
        std::thread::scope(|s| {
            for w in 0..4usize {
                let t = &t;
                s.spawn(move || {
                    for round in 0..rounds {
                        let shared = format!("P{}", round % 2);
                        let own = format!("W{w}-{}", round % 40);
                        let (ior, ein) =
                            (format!("S{}", (round + w) % 11), format!("E{}", round % 5));
                        let (duns, mid) = (format!("D{}", round % 3), format!("M{round}"));
                        match (round + w) % 4 {
                            0 => {
                                let p = partner(
                                    &shared,
                                    &[
                                        (IdKind::Ior, &ior),
                                        (IdKind::Ein, &ein),
                                        (IdKind::Duns, &duns),
                                        (IdKind::Mid, &mid),
                                    ],
                                    Status::Certified,
                                );
                                // Prefetching while others write (shards locked, tables growing).
                                t.prefetch(&p);
                                t.upsert(p)
                            }
                            1 => {
                                t.prefetch_id(&shared);
                                t.remove(&shared);
                            }
                            2 => t.upsert(partner(
                                &shared,
                                &[(IdKind::Ior, &ior)],
                                Status::Validated,
                            )),
                            _ => t.upsert(partner(
                                &own,
                                &[(IdKind::Scac, &format!("{own}-{round}"))],
                                Status::Certified,
                            )),
                        }
                    }
                });
            }
        });
        let mut entries = 0;
        for index in &t.by_ident {
            let kind = index.keys.kind.unwrap();
            for e in index.by_hash.iter() {
                entries += 1;
                let p = e.value();
                let current = t.by_id.with(&p.partner_id, Arc::clone).unwrap_or_else(|| {
                    panic!("{kind:?} entry of {} not in the table", p.partner_id)
                });
                assert!(
                    Arc::ptr_eq(&current, p),
                    "{kind:?} entry of {} is stale",
                    p.partner_id
                );
                assert!(
                    p.identifiers
                        .iter()
                        .any(|i| i.kind == kind && xxh3(&i.value) == *e.key()),
                    "{} does not hold its {kind:?} entry",
                    p.partner_id
                );
            }
        }
        assert_eq!(entries, t.identifier_count());
        // Each thread's own partners: that thread's last write of them.
        for w in 0..4usize {
            for slot in 0..40 {
                let last = (0..rounds)
                    .rev()
                    .find(|r| r % 40 == slot && (r + w) % 4 == 3);
                let id = format!("W{w}-{slot}");
                let got = t.by_id.with(&id, |p| p.identifiers[0].value.clone());
                assert_eq!(got, last.map(|r| format!("{id}-{r}").into()), "{id}");
            }
        }
    }

    #[test]
    fn standing_is_judged_at_filing() {
        let d = |s| Date::parse(s).unwrap();
        let mut p = partner("P", &[], Status::Validated);
        p.tier = Some(3);
        p.validated_on = Some(d("2022-01-10"));
        assert_eq!(
            effective_standing(&p, d("2025-01-01"), 1461),
            (Standing::Validated { tier: 3 }, false)
        );
        // Lapsed after the revalidation period: certified only.
        assert_eq!(
            effective_standing(&p, d("2026-01-11"), 1461),
            (Standing::Certified, true)
        );
        // Validation in the future of the filing: certified at the time.
        assert_eq!(
            effective_standing(&p, d("2021-01-01"), 1461),
            (Standing::Certified, false)
        );
        // Not even certified yet.
        assert_eq!(
            effective_standing(&p, d("2019-01-01"), 1461),
            (Standing::Applicant, false)
        );
        // Validated without a validation date, certified after the filing: not a partner yet.
        let mut undated = p.clone();
        undated.validated_on = None;
        assert_eq!(
            effective_standing(&undated, d("2019-01-01"), 1461),
            (Standing::Applicant, false)
        );
        p.status = Status::Suspended;
        assert_eq!(
            effective_standing(&p, d("2025-01-01"), 1461).0,
            Standing::Suspended
        );
        p.status = Status::Certified;
        p.entity = Entity::MraForeign;
        assert_eq!(
            effective_standing(&p, d("2025-01-01"), 1461).0,
            Standing::Mra
        );
    }
}
