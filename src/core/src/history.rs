//! Party history: what exams of earlier manifests found about a party (importer, shipper, manufacturer,
//! carrier, broker), built from exam-outcome records and read by scoring (policy `[history]`).
//!
//! Filled by an adapter (the outcomes-topic follower, or `score --outcomes FILE`), read concurrently by the
//! scorer. Every version of an outcome is kept with its **position** (topic partition and offset; in a
//! file, partition 0 and the line index), and every read is made **as of a watermark** (per partition, the
//! next position not yet counted). So a decision depends only on (the records before its watermark, its
//! manifest's `filed_at`): what the follower applies later, or out of order, cannot change it, and a replay
//! of the same records up to the same watermark reproduces it exactly.
//!
//! Outcomes are keyed by `(manifest_id, revision)`: of the versions of a key visible at a watermark, the one
//! at the highest position (the outcomes topic is keyed by `manifest_id`, so all versions of a key are in
//! one partition, in order) **replaces** every earlier one — it never counts twice, and its parties, result
//! and date are the ones that count.

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use dashmap::DashMap;
use smallvec::SmallVec;

use crate::codes::PortCode;
pub use crate::decision::Recalled;
use crate::decision::Role;
use crate::outcome::{ExamResult, Outcome};
use crate::time::Timestamp;
pub use crate::watermark::{Position, Watermark};
use crate::wire::Str;

/// How many entries ahead [`History::recall`] starts loading an entry's versions.
const PREFETCH_AHEAD: usize = 4;

/// The outcome key: `(manifest_id, revision)`.
pub type OutcomeKey = (Str, u32);

/// One stored version of an outcome: what scoring needs of it.
#[derive(Debug, Clone, PartialEq)]
struct Version {
    pos: Position,
    result: ExamResult,
    examined_at: Timestamp,
    port: PortCode,
}

/// The per-party exam history. Concurrent: the adapter inserts while scorers read (`&self` throughout);
/// reads are exact because they count only positions their watermark covers, and an adapter advances its
/// watermark only after inserting every record below it.
#[derive(Debug, Default)]
pub struct History {
    /// Every version of every outcome, ascending by position.
    versions: DashMap<OutcomeKey, Versions, foldhash::fast::RandomState>,
    /// For each (role, party id), the outcomes that name it.
    by_party: DashMap<(Role, Str), Vec<Named>, foldhash::fast::RandomState>,
}

/// One outcome key and its versions, ascending by position; shared by the key's entry and every party entry
/// naming it, so that a recall reads them without looking the key up again (and the key is held once, not
/// by each party entry).
#[derive(Debug)]
struct Cell {
    key: OutcomeKey,
    versions: RwLock<SmallVec<[Version; 1]>>,
}

type Versions = Arc<Cell>;

/// A party's entry: the version that names the party (its position and examination date) and its key's
/// cell.
#[derive(Debug)]
struct Named {
    pos: Position,
    /// The named version's: the entry counts only if that version wins, so a date outside a recall's window
    /// rules the entry out without reading the cell.
    examined_at: Timestamp,
    cell: Versions,
}

/// Reads a key's versions; a panic elsewhere while one held the lock leaves them as they were (a version is
/// inserted whole or not at all), so poisoning is ignored.
fn read(c: &Cell) -> RwLockReadGuard<'_, SmallVec<[Version; 1]>> {
    c.versions.read().unwrap_or_else(PoisonError::into_inner)
}

/// The distinct outcomes of a set of parties within a time window, as of a watermark.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recall {
    pub exams: u32,
    pub discrepancies: u32,
    pub seizures: u32,
    /// The latest outcome of each result (index: [`ExamResult`] as usize).
    pub latest: [Option<Recalled>; 3],
}

impl Recall {
    pub fn latest(&self, r: ExamResult) -> Option<&Recalled> {
        self.latest[r as usize].as_ref()
    }
    /// The latest outcome of any result.
    pub fn latest_exam(&self) -> Option<&Recalled> {
        self.latest
            .iter()
            .flatten()
            .fold(None, |best: Option<&Recalled>, r| match best {
                Some(b) if !r.later(b) => Some(b),
                _ => Some(r),
            })
    }
}

impl History {
    pub fn new() -> History {
        History::default()
    }

    /// Adds the outcome read at `pos`. Idempotent: a position already stored (a record read again after a
    /// restart or rebalance) is ignored and `false` returned.
    pub fn insert(&self, pos: Position, o: &Outcome) -> bool {
        let key: OutcomeKey = (o.manifest_id.clone(), o.revision);
        let cell = self
            .versions
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Cell {
                    key,
                    versions: RwLock::default(),
                })
            })
            .clone();
        {
            let mut versions = cell
                .versions
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            match versions.binary_search_by_key(&pos, |v| v.pos) {
                Ok(_) => return false,
                Err(at) => versions.insert(
                    at,
                    Version {
                        pos,
                        result: o.result,
                        examined_at: o.examined_at,
                        port: o.port,
                    },
                ),
            }
        }
        // Each party once per version, even if the record lists it under two shipments.
        let mut seen: SmallVec<[(Role, &str); 8]> = SmallVec::new();
        for p in &o.parties {
            if seen.contains(&(p.role, p.id.as_str())) {
                continue;
            }
            seen.push((p.role, p.id.as_str()));
            self.by_party
                .entry((p.role, p.id.clone()))
                .or_default()
                .push(Named {
                    pos,
                    examined_at: o.examined_at,
                    cell: cell.clone(),
                });
        }
        true
    }

    /// Whether any version of the outcome `(manifest_id, revision)` is stored (any watermark).
    pub fn contains(&self, manifest_id: &str, revision: u32) -> bool {
        self.versions
            .contains_key(&(Str::from(manifest_id), revision))
    }

    /// The result of the outcome `(manifest_id, revision)` as of `as_of`: its highest version the watermark
    /// covers (later versions replace earlier ones); `None` when no version is visible.
    pub fn result_as_of(
        &self,
        manifest_id: &str,
        revision: u32,
        as_of: &Watermark,
    ) -> Option<ExamResult> {
        let cell = self
            .versions
            .get(&(Str::from(manifest_id), revision))?
            .clone();
        let versions = read(&cell);
        versions
            .iter()
            .rev()
            .find(|v| as_of.covers(v.pos))
            .map(|v| v.result)
    }

    /// Number of outcome keys stored (any version, any watermark).
    pub fn len(&self) -> usize {
        self.versions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    /// The distinct outcomes, as of `as_of`, that name any of `parties` and were examined in
    /// `[from, until)`. An outcome counts once however many of the parties it names; a key counts in its
    /// visible winning version only, and only for the parties that version names.
    pub fn recall<'p>(
        &self,
        as_of: &Watermark,
        parties: impl IntoIterator<Item = (Role, &'p str)>,
        from: Timestamp,
        until: Timestamp,
    ) -> Recall {
        let mut out = Recall::default();
        // The outcomes counted so far, each named by its versions cell (one per key, shared by every entry
        // naming the key, never removed while the history lives: the cell's address names the key for the
        // whole call, and comparing it reads no string). One party's entries name each outcome in at most
        // one counted entry (only the winning version's), so a party's entries are compared only with the
        // outcomes counted for the parties before it (`counted[..earlier]`) — through a hash set once they
        // are many (a party with a long record must not make every outcome of the next one scan them all).
        let mut counted: SmallVec<[usize; 16]> = SmallVec::new();
        for (role, id) in parties {
            let Some(entries) = self.by_party.get(&(role, Str::from(id))) else {
                continue;
            };
            let earlier = counted.len();
            let earlier_set: Option<HashSet<usize, foldhash::fast::FixedState>> =
                (earlier > 16).then(|| counted.iter().copied().collect());
            let in_window = |e: &Named| from <= e.examined_at && e.examined_at < until;
            for (i, e) in entries.iter().enumerate() {
                // Each entry's cell is its own allocation, rarely in cache in a long record: start loading
                // a later entry's while this one is read (only one the window keeps).
                if let Some(ahead) = entries.get(i + PREFETCH_AHEAD).filter(|a| in_window(a)) {
                    crate::prefetch::prefetch(&raw const ahead.cell.versions);
                }
                // The entry counts only if its own version wins, with its own date: one outside the window
                // never counts (the cell is not read).
                if !in_window(e) || !as_of.covers(e.pos) {
                    continue;
                }
                let versions = read(&e.cell);
                // The winning version: the highest position the watermark covers. It counts for this party
                // only if it is the version that names the party.
                let Some(win) = versions.iter().rev().find(|v| as_of.covers(v.pos)) else {
                    continue;
                };
                if win.pos != e.pos {
                    continue;
                }
                debug_assert_eq!(win.examined_at, e.examined_at);
                let cell = Arc::as_ptr(&e.cell).addr();
                let seen = match &earlier_set {
                    Some(set) => set.contains(&cell),
                    None => counted[..earlier].contains(&cell),
                };
                if seen {
                    continue;
                }
                counted.push(cell);
                out.exams += 1;
                match win.result {
                    ExamResult::NoDiscrepancy => {}
                    ExamResult::Discrepancy => out.discrepancies += 1,
                    ExamResult::Seizure => out.seizures += 1,
                }
                // Built only when it is the latest of its result so far (the ids copied only then).
                let key = &e.cell.key;
                let slot = &mut out.latest[win.result as usize];
                if slot
                    .as_ref()
                    .is_none_or(|s| (win.examined_at, &key.0, key.1) > s.order())
                {
                    *slot = Some(Recalled {
                        manifest_id: key.0.clone(),
                        revision: key.1,
                        result: win.result,
                        examined_at: win.examined_at,
                        port: win.port,
                        role,
                        party: Str::from(id),
                    });
                }
            }
        }
        out
    }
}

/// A history and the watermark a decision reads it at: the history input of [`crate::score::process`].
#[derive(Debug, Clone, Copy)]
pub struct HistoryAsOf<'a> {
    pub history: &'a History,
    pub as_of: &'a Arc<Watermark>,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::outcome::{Cause, OutcomeParty};

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn outcome(
        id: &str,
        rev: u32,
        result: ExamResult,
        at: &str,
        parties: &[(Role, &str)],
    ) -> Outcome {
        Outcome {
            manifest_id: id.into(),
            revision: rev,
            shipment_id: None,
            result,
            findings: Vec::new(),
            examined_at: ts(at),
            port: PortCode::parse("2304").unwrap(),
            officer: "o1".into(),
            parties: parties
                .iter()
                .map(|(role, id)| OutcomeParty {
                    role: *role,
                    id: (*id).into(),
                    shipment_id: None,
                })
                .collect(),
            causes: vec![Cause::Band],
        }
    }

    fn pos(offset: u64) -> Position {
        Position {
            partition: 0,
            offset,
        }
    }

    fn upto(n: u64) -> Watermark {
        Watermark(BTreeMap::from([(0, n)]))
    }

    const FROM: &str = "2026-01-01T00:00:00Z";
    const UNTIL: &str = "2026-12-01T00:00:00Z";

    fn recall(h: &History, w: &Watermark, parties: &[(Role, &str)]) -> Recall {
        h.recall(w, parties.iter().copied(), ts(FROM), ts(UNTIL))
    }

    #[test]
    fn an_outcomes_result_is_its_highest_visible_version() {
        let h = History::new();
        let imp = [(Role::Importer, "IMP")];
        h.insert(pos(0), &outcome("M1", 0, ExamResult::Seizure, FROM, &imp));
        h.insert(
            pos(3),
            &outcome("M1", 0, ExamResult::NoDiscrepancy, FROM, &imp),
        );
        assert_eq!(h.result_as_of("M1", 0, &upto(0)), None);
        assert_eq!(h.result_as_of("M1", 0, &upto(1)), Some(ExamResult::Seizure));
        assert_eq!(
            h.result_as_of("M1", 0, &upto(4)),
            Some(ExamResult::NoDiscrepancy)
        );
        assert_eq!(h.result_as_of("M1", 1, &upto(4)), None);
        assert_eq!(h.result_as_of("M2", 0, &upto(4)), None);
    }

    #[test]
    fn counts_distinct_outcomes_in_the_window_as_of_the_watermark() {
        let h = History::new();
        let imp = (Role::Importer, "IMP");
        let car = (Role::Carrier, "CAR");
        h.insert(
            pos(0),
            &outcome(
                "M1",
                0,
                ExamResult::Seizure,
                "2026-05-01T00:00:00Z",
                &[imp, car],
            ),
        );
        h.insert(
            pos(1),
            &outcome(
                "M2",
                0,
                ExamResult::Discrepancy,
                "2026-06-01T00:00:00Z",
                &[imp],
            ),
        );
        h.insert(
            pos(2),
            &outcome(
                "M3",
                0,
                ExamResult::NoDiscrepancy,
                "2025-06-01T00:00:00Z",
                &[imp],
            ),
        );
        h.insert(
            pos(3),
            &outcome("M4", 0, ExamResult::Seizure, "2026-12-01T00:00:00Z", &[imp]),
        );
        // M1 names both parties: counted once.
        let r = recall(&h, &upto(10), &[imp, car]);
        assert_eq!((r.exams, r.discrepancies, r.seizures), (2, 1, 1));
        assert_eq!(r.latest(ExamResult::Seizure).unwrap().manifest_id, "M1");
        assert_eq!(r.latest(ExamResult::Seizure).unwrap().role, Role::Importer);
        assert_eq!(r.latest_exam().unwrap().manifest_id, "M2");
        // As of position 1, only M1 counts.
        let r = recall(&h, &upto(1), &[imp]);
        assert_eq!((r.exams, r.discrepancies, r.seizures), (1, 0, 1));
        // Another partition's watermark counts nothing here.
        let r = recall(&h, &Watermark(BTreeMap::from([(1, 10)])), &[imp]);
        assert_eq!(r, Recall::default());
        // Re-reading a position is ignored.
        assert!(!h.insert(
            pos(0),
            &outcome("M1", 0, ExamResult::Seizure, "2026-05-01T00:00:00Z", &[imp])
        ));
        assert_eq!(recall(&h, &upto(10), &[imp]).seizures, 1);
    }

    #[test]
    fn a_later_version_replaces_the_earlier_one_as_of_its_watermark() {
        let h = History::new();
        let a = (Role::Importer, "A");
        let b = (Role::Importer, "B");
        h.insert(
            pos(0),
            &outcome(
                "M1",
                0,
                ExamResult::Discrepancy,
                "2026-05-01T00:00:00Z",
                &[a],
            ),
        );
        h.insert(
            pos(5),
            &outcome("M1", 0, ExamResult::Seizure, "2026-05-01T00:00:00Z", &[b]),
        );
        // Before the correction: A has the discrepancy, B nothing.
        let before = upto(5);
        assert_eq!(recall(&h, &before, &[a]).discrepancies, 1);
        assert_eq!(recall(&h, &before, &[b]).exams, 0);
        // After: the correction replaced it; A has nothing, B the seizure, and together it counts once.
        let after = upto(6);
        assert_eq!(recall(&h, &after, &[a]).exams, 0);
        assert_eq!(recall(&h, &after, &[b]).seizures, 1);
        let both = recall(&h, &after, &[a, b]);
        assert_eq!((both.exams, both.seizures, both.discrepancies), (1, 1, 0));
        // A different revision is a different outcome.
        h.insert(
            pos(6),
            &outcome(
                "M1",
                1,
                ExamResult::Discrepancy,
                "2026-05-02T00:00:00Z",
                &[b],
            ),
        );
        assert_eq!(recall(&h, &upto(7), &[b]).exams, 2);
    }

    #[test]
    fn watermarks_parse_and_print() {
        let w = Watermark::parse("0:12, 3:40").unwrap();
        assert_eq!(w.to_string(), "0:12,3:40");
        assert_eq!(Watermark::parse("{\"0\": 12, \"3\": 40}").unwrap(), w);
        assert_eq!(Watermark::parse("7").unwrap(), upto(7));
        assert_eq!(serde_json::to_string(&w).unwrap(), "{\"0\":12,\"3\":40}");
        assert!(Watermark::parse("0:1,0:2").is_err());
        assert!(Watermark::parse("x:1").is_err());
        assert!(w.covers(Position {
            partition: 3,
            offset: 39
        }));
        assert!(!w.covers(Position {
            partition: 3,
            offset: 40
        }));
        let mut w = w;
        w.advance(3, 10);
        w.advance(1, 4);
        assert_eq!(w.to_string(), "0:12,1:4,3:40");
    }

    /// Parties with long shared records: an outcome naming several of them counts once, whether the
    /// earlier parties' outcomes are compared one by one or through the hash set (past 16).
    #[test]
    fn long_shared_records_count_each_outcome_once() {
        for shared in [3u64, 40] {
            let h = History::new();
            let (imp, shp, mfr) = (
                (Role::Importer, "IMP"),
                (Role::Shipper, "SHP"),
                (Role::Manufacturer, "MFR"),
            );
            let mut n = 0;
            let mut add = |parties: &[(Role, &str)], result, at| {
                h.insert(pos(n), &outcome(&format!("M{n}"), 0, result, at, parties));
                n += 1;
            };
            let inside = "2026-05-01T00:00:00Z";
            for _ in 0..shared {
                add(&[imp, shp], ExamResult::NoDiscrepancy, inside);
            }
            add(&[imp, shp, mfr], ExamResult::Seizure, inside);
            add(&[shp], ExamResult::Discrepancy, inside);
            add(&[mfr], ExamResult::Discrepancy, inside);
            add(&[shp, mfr], ExamResult::Discrepancy, "2025-05-01T00:00:00Z");
            let r = recall(&h, &upto(n), &[imp, shp, mfr]);
            assert_eq!(
                (r.exams, r.discrepancies, r.seizures),
                (shared as u32 + 3, 2, 1),
                "{shared}"
            );
            let r = recall(&h, &upto(n), &[mfr, shp, imp]);
            assert_eq!(
                (r.exams, r.discrepancies, r.seizures),
                (shared as u32 + 3, 2, 1)
            );
        }
    }

    /// An entry is judged by the date of the version it was inserted with, whatever order the versions
    /// of its key arrive in (a later position inserted first).
    #[test]
    fn an_entry_is_judged_by_its_own_versions_date_inserted_in_any_order() {
        let h = History::new();
        let a = (Role::Importer, "A");
        h.insert(
            pos(5),
            &outcome("M1", 0, ExamResult::Seizure, "2025-05-01T00:00:00Z", &[a]),
        );
        h.insert(
            pos(0),
            &outcome(
                "M1",
                0,
                ExamResult::Discrepancy,
                "2026-05-01T00:00:00Z",
                &[a],
            ),
        );
        let r = recall(&h, &upto(5), &[a]);
        assert_eq!((r.exams, r.discrepancies), (1, 1));
        assert_eq!(recall(&h, &upto(6), &[a]), Recall::default());
        h.insert(
            pos(9),
            &outcome("M2", 0, ExamResult::Seizure, "2026-06-01T00:00:00Z", &[a]),
        );
        h.insert(
            pos(7),
            &outcome(
                "M2",
                0,
                ExamResult::Discrepancy,
                "2025-06-01T00:00:00Z",
                &[a],
            ),
        );
        assert_eq!(recall(&h, &upto(9), &[a]).exams, 0);
        let r = recall(&h, &upto(10), &[a]);
        assert_eq!((r.exams, r.seizures), (1, 1));
    }

    /// Outcomes of one result examined at the same instant: the latest is the greatest key, whatever
    /// order they were inserted or their parties asked in.
    #[test]
    fn latest_breaks_equal_dates_by_key_whatever_the_order() {
        let at = "2026-05-01T00:00:00Z";
        let (a, b) = ((Role::Importer, "A"), (Role::Shipper, "B"));
        let specs = [("M1", 0, a), ("M2", 0, b), ("M2", 1, a)];
        for order in [[0, 1, 2], [2, 1, 0]] {
            let h = History::new();
            for (n, i) in order.into_iter().enumerate() {
                let (id, rev, p) = specs[i];
                h.insert(
                    pos(n as u64),
                    &outcome(id, rev, ExamResult::Seizure, at, &[p]),
                );
            }
            for asked in [[a, b], [b, a]] {
                let l = recall(&h, &upto(3), &asked)
                    .latest(ExamResult::Seizure)
                    .cloned()
                    .unwrap();
                assert_eq!(
                    (l.manifest_id.as_str(), l.revision, l.party.as_str()),
                    ("M2", 1, "A")
                );
            }
        }
    }
}
