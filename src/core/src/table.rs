//! The in-memory CTPAT partner table: partners indexed by every `(identifier kind, value)` they hold, safe to
//! update from the partner-topic follower while scoring threads read it.
//!
//! Semantics (wire.md): an upsert replaces a partner's identifiers; a tombstone deletes the partner and
//! all its identifiers; each `(kind, value)` belongs to at most one partner (the latest upsert wins).
//! Effective standing is judged at the manifest's `filed_at`, never at the wall clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;

use crate::time::Date;
use crate::wire::{Entity, IdKind, Partner, Status, Str};

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
    /// Name used on decisions and in reports.
    pub fn as_str(self) -> &'static str {
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

/// What one party resolved to, for one manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    pub partner_id: Str,
    pub status: Status,
    pub tier: Option<u8>,
    pub standing: Standing,
    /// A validation older than the revalidation period, counted as certified only.
    pub lapsed: bool,
    pub mra_program: Option<Str>,
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

/// Concurrent partner table. Writers are the partner-topic follower (or a file loader); readers score.
pub struct PartnerTable {
    /// partner_id → record; the source of truth for which identifiers a partner holds.
    by_id: DashMap<Str, Arc<Partner>, Hasher>,
    /// One index per identifier kind, so a lookup hashes the bare value without building a composite key.
    by_ident: Vec<DashMap<Str, Arc<Partner>, Hasher>>,
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
        PartnerTable {
            by_id: DashMap::with_hasher(Hasher::default()),
            by_ident: (0..IdKind::COUNT)
                .map(|_| DashMap::with_hasher(Hasher::default()))
                .collect(),
            updates: AtomicU64::new(0),
        }
    }

    /// Inserts or replaces a partner. New identifiers are indexed before stale ones are dropped, so a
    /// concurrent reader sees either the old or the new record for an identifier both hold, never neither.
    pub fn upsert(&self, partner: Partner) {
        let new = Arc::new(partner);
        let old = self.by_id.insert(new.partner_id.clone(), new.clone());
        for id in &new.identifiers {
            self.by_ident[id.kind.index()].insert(id.value.clone(), new.clone());
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

    /// Applies a tombstone: deletes the partner and every identifier still pointing at it.
    pub fn remove(&self, partner_id: &str) -> bool {
        self.updates.fetch_add(1, Ordering::Relaxed);
        match self.by_id.remove(partner_id) {
            Some((_, old)) => {
                for id in &old.identifiers {
                    self.unindex(id.kind, &id.value, partner_id);
                }
                true
            }
            None => false,
        }
    }

    fn unindex(&self, kind: IdKind, value: &str, owner: &str) {
        self.by_ident[kind.index()].remove_if(value, |_, p| p.partner_id == owner);
    }

    /// The partner holding `(kind, value)`, if any.
    #[inline]
    pub fn get(&self, kind: IdKind, value: &str) -> Option<Arc<Partner>> {
        self.by_ident[kind.index()]
            .get(value)
            .map(|r| r.value().clone())
    }

    /// Finds the first partner that holds `value` under one of `kinds` and whose entity is accepted, and
    /// judges its standing on `filed`. Runs `f` under the map's read guard: no reference-count traffic.
    #[inline]
    pub fn resolve(
        &self,
        kinds: &[IdKind],
        accept: impl Fn(Entity) -> bool,
        value: &str,
        filed: Date,
        revalidation_days: i32,
    ) -> Option<Resolution> {
        for kind in kinds {
            if let Some(p) = self.by_ident[kind.index()].get(value) {
                let p = p.value();
                if accept(p.entity) {
                    let (standing, lapsed) = effective_standing(p, filed, revalidation_days);
                    return Some(Resolution {
                        partner_id: p.partner_id.clone(),
                        status: p.status,
                        tier: p.tier,
                        standing,
                        lapsed,
                        mra_program: p.mra_program.clone(),
                    });
                }
            }
        }
        None
    }

    /// Number of partners.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Number of indexed identifiers.
    pub fn identifier_count(&self) -> usize {
        self.by_ident.iter().map(DashMap::len).sum()
    }

    /// Upserts and deletes applied since creation.
    pub fn updates_applied(&self) -> u64 {
        self.updates.load(Ordering::Relaxed)
    }

    /// A snapshot of every partner (order unspecified).
    pub fn partners(&self) -> Vec<Arc<Partner>> {
        self.by_id.iter().map(|r| r.value().clone()).collect()
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

    #[test]
    fn upsert_replaces_identifiers_and_tombstone_deletes() {
        let t = PartnerTable::new();
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
