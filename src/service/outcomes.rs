//! Exam outcomes in the service: the party [`History`] every pipeline reads as of a watermark, the window of
//! recent decisions an officer may record an outcome for, the hit rates (the targeting unit's KPI), the
//! recorder that writes an outcome (the outcomes topic with Kafka, in process for `demo`), and `POST
//! /outcomes` on the officers' listener.
//!
//! One applier ([`HistoryFeed`]) takes every outcome record with its position — from the outcomes-topic
//! follower (`kafka/outcomes.rs`) or, in `demo`, from the in-process recorder — inserts it into the history,
//! counts it in the hit rates, and only then raises the published watermark, so a decision scored against
//! the watermark it loaded reads exactly the records below it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context};
use arc_swap::ArcSwap;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use borderlane_core::codes::PortCode;
use borderlane_core::decision::{Action, Decision, Role};
use borderlane_core::history::{History, Position, Watermark};
use borderlane_core::outcome::{
    causes_from, parse_outcome, Cause, ExamResult, FieldError, Form, Outcome, OutcomeParty,
    Selection,
};
use borderlane_core::policy::{CompiledPolicy, PolicyDoc};
use borderlane_core::wire::{decision_limits, parse_decision_facts, ErrorKind, Limits, Str};
use hashbrown::hash_table::{Entry, HashTable};
use serde::Serialize;
use serde_json::{json, Value};
use smallvec::SmallVec;
use tracing::{info, warn};

use crate::analysis::summary::standing_group;
use crate::service::admin::auth::Permission;
use crate::service::metrics::Metrics;
use crate::service::officers::Reader;

/// The outcome key.
pub type Key = (Str, u32);

/// The outcomes-topic key of an outcome: `<manifest_id>/<revision>`. Every version of one outcome has the
/// same key, so all of them are in one partition, in order — the history's "highest position replaces"
/// needs that.
pub fn topic_key(manifest_id: &str, revision: u32) -> String {
    format!("{manifest_id}/{revision}")
}

// ---------------------------------------------------------------------------------------------------------
// The decision window

/// What an outcome needs of the decision it examined: its parties (with their shipments), its selection
/// causes, and the importer's CTPAT standing group (for the hit rates).
///
/// The window holds up to `service.outcome_window.decisions` of these (200 000 by default) for hours, so
/// one is kept compact: every shipment id and party id end to end in one string, the parties as indexes
/// into it — three heap blocks with the window's `Arc` for up to four shipments, whatever the number or
/// length of the ids (vectors of owned parties and shipments were ~13 blocks for a generated decision,
/// whose 28-byte shipment ids do not fit inline).
#[derive(Debug, Clone, PartialEq)]
pub struct Examined {
    pub port: PortCode,
    pub action: Action,
    /// [`standing_group`] of the decision's `importer_standing`.
    pub standing: &'static str,
    causes: Causes,
    /// The shipment ids (sorted, each once), then the party ids, end to end.
    text: Box<str>,
    /// Where each shipment id ends in `text` (inline up to four shipments).
    shipment_ends: SmallVec<[u32; 4]>,
    /// Every party (sorted by role, id and shipment, each once).
    parties: Box<[Party]>,
}

/// A party of an [`Examined`]: its id is `text[start..end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Party {
    role: Role,
    /// Index of its shipment in the shipments; [`NO_SHIPMENT`] for a conveyance-level party.
    shipment: u32,
    start: u32,
    end: u32,
}

const NO_SHIPMENT: u32 = u32::MAX;

/// Selection causes as a set, a bit per [`Cause::ALL`] entry (a decision has each at most once, and
/// `causes_from` lists them in `Cause::ALL`'s order, which [`Causes::to_vec`] keeps; a test holds both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Causes(u8);

const _: () = assert!(Cause::ALL.len() <= 8, "a cause past the set's eight bits");

impl Causes {
    fn of(causes: &[Cause]) -> Causes {
        Causes(causes.iter().fold(0, |set, c| {
            set | Cause::ALL.iter().position(|x| x == c).map_or(0, |i| 1 << i)
        }))
    }

    fn to_vec(self) -> Vec<Cause> {
        Cause::ALL
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, c)| *c)
            .collect()
    }
}

/// The standing group of a decision's `importer_standing` string (the names of `Standing::as_str`).
fn group_of(standing: &str) -> &'static str {
    match standing {
        "validated_tier3" => "validated_tier3",
        "validated" => "validated",
        "certified" => "certified",
        "suspended" | "removed" => "suspended_or_removed",
        _ => "none",
    }
}

impl Examined {
    /// From its parts: `parties` as (role, id, shipment id), `reason_shipments` the shipments the reasons
    /// name (a shipment may be named without a party). Order and repeats do not matter.
    pub fn new<'a>(
        port: PortCode,
        action: Action,
        standing: &'static str,
        causes: &[Cause],
        parties: impl IntoIterator<Item = (Role, &'a str, Option<&'a str>)>,
        reason_shipments: impl IntoIterator<Item = &'a str>,
    ) -> Examined {
        let mut parties: SmallVec<[(Role, &str, Option<&str>); 16]> = parties.into_iter().collect();
        parties.sort_unstable();
        parties.dedup();
        let mut shipments: SmallVec<[&str; 8]> = parties
            .iter()
            .filter_map(|p| p.2)
            .chain(reason_shipments)
            .collect();
        shipments.sort_unstable();
        shipments.dedup();
        let len = shipments
            .iter()
            .chain(parties.iter().map(|p| &p.1))
            .map(|s| s.len())
            .sum();
        let mut text = String::with_capacity(len);
        // Where `s` starts and ends once appended (a record is far below 4 GiB: the decisions topic's
        // message size bounds it).
        let mut append = |s: &str| {
            let start = text.len();
            text.push_str(s);
            (start as u32, text.len() as u32)
        };
        let shipment_ends = shipments.iter().map(|s| append(s).1).collect();
        let parties = parties
            .iter()
            .map(|&(role, id, shipment)| {
                let (start, end) = append(id);
                Party {
                    role,
                    shipment: shipment
                        .and_then(|s| shipments.binary_search(&s).ok())
                        .map_or(NO_SHIPMENT, |i| i as u32),
                    start,
                    end,
                }
            })
            .collect();
        Examined {
            port,
            action,
            standing,
            causes: Causes::of(causes),
            text: text.into_boxed_str(),
            shipment_ends,
            parties,
        }
    }

    /// From a decision scored in process (`demo`).
    pub fn of_decision(d: &Decision, policy: &PolicyDoc) -> Examined {
        Examined::new(
            d.port_of_entry,
            d.action,
            standing_group(d.importer_standing),
            &borderlane_core::outcome::causes_of(d, policy),
            d.parties
                .iter()
                .map(|p| (p.role, p.id.as_str(), p.shipment.as_deref())),
            d.reasons.iter().filter_map(|r| r.shipment.as_deref()),
        )
    }

    /// From a decision record as the `decisions` topic carries it (docs/wire.md); the selection causes are
    /// derived under `policy` (the policy in force when the window indexes the record).
    pub fn of_record(bytes: &[u8], policy: &PolicyDoc) -> Result<(Key, Examined), String> {
        let r = parse_decision_facts(bytes, &decision_limits())
            .map_err(|e| format!("not a decision record: {e}"))?;
        let history_points = r.reasons.iter().any(|x| {
            x.points > 0 && matches!(x.rule.as_str(), "history.discrepancy" | "history.seizure")
        });
        let causes = causes_from(
            Selection {
                action: r.action,
                score: r.score,
                watchlist_hit: r.watchlist_hit,
                random_exam: r.random_exam,
                history_points,
            },
            policy,
        );
        let e = Examined::new(
            r.port_of_entry,
            r.action,
            group_of(&r.importer_standing),
            &causes,
            r.parties
                .iter()
                .map(|p| (p.role, p.id.as_str(), p.shipment_id.as_deref())),
            r.reasons.iter().filter_map(|x| x.shipment_id.as_deref()),
        );
        Ok(((r.manifest_id, r.revision), e))
    }

    /// Every shipment the decision names (on a party or a reason), sorted.
    pub fn shipments(&self) -> impl Iterator<Item = &str> + '_ {
        let mut start = 0;
        self.shipment_ends.iter().map(move |&end| {
            let s = &self.text[start as usize..end as usize];
            start = end;
            s
        })
    }

    fn shipment(&self, i: u32) -> Option<&str> {
        self.shipments().nth(i as usize)
    }

    /// Every party (conveyance-level ones without a shipment), each once, sorted.
    pub fn parties(&self) -> impl Iterator<Item = OutcomeParty> + '_ {
        self.parties.iter().map(|p| OutcomeParty {
            role: p.role,
            id: Str::from(&self.text[p.start as usize..p.end as usize]),
            shipment_id: self.shipment(p.shipment).map(Str::from),
        })
    }

    /// The selection causes, in `Cause::ALL`'s order (the order `causes_from` gives them).
    pub fn causes(&self) -> Vec<Cause> {
        self.causes.to_vec()
    }

    /// Attaches the parties an outcome counts against — with a `shipment_id`, that shipment's and the
    /// conveyance's (as `borderlane_core::outcome::parties_of`); without, every party — and the causes.
    pub fn enrich(&self, o: &mut Outcome) -> Result<(), FieldError> {
        if let Some(s) = o.shipment_id.as_deref() {
            if !self.shipments().any(|x| x == s) {
                return Err(FieldError {
                    path: "shipment_id".into(),
                    kind: ErrorKind::BadValue,
                    message: format!(
                        "shipment_id {s:?} is not a shipment of manifest {} revision {}",
                        o.manifest_id, o.revision
                    ),
                });
            }
        }
        o.parties = self
            .parties()
            .filter(
                |p| match (o.shipment_id.as_deref(), p.shipment_id.as_deref()) {
                    (Some(s), Some(ps)) => s == ps,
                    _ => true,
                },
            )
            .collect();
        o.causes = self.causes();
        Ok(())
    }
}

/// A decision held in the window.
struct Held {
    key: Key,
    /// Its insertion sequence (unique: a re-decided key gets a new one).
    seq: u64,
    /// Its record time (Unix ms).
    at: i64,
    examined: Arc<Examined>,
}

#[derive(Default)]
struct WindowInner {
    /// The decisions held, found by the hash of their key.
    held: HashTable<Held>,
    hasher: foldhash::fast::RandomState,
    /// Insertion order: key hash, sequence, record time (Unix ms) — an entry is found again by its hash
    /// and sequence, so the key (usually a heap string: a manifest id is longer than 24 bytes) is held
    /// once.
    order: VecDeque<(u64, u64, i64)>,
    seq: u64,
}

/// The hash a key is held and found by.
fn key_hash(hasher: &foldhash::fast::RandomState, manifest_id: &str, revision: u32) -> u64 {
    hasher.hash_one((manifest_id, revision))
}

/// The recent decisions, by `(manifest_id, revision)`, bounded by age and count.
pub struct DecisionWindow {
    inner: Mutex<WindowInner>,
    max_decisions: usize,
    max_age_ms: i64,
}

impl DecisionWindow {
    pub fn new(max_decisions: usize, max_age: Duration) -> DecisionWindow {
        DecisionWindow {
            inner: Mutex::default(),
            max_decisions: max_decisions.max(1),
            max_age_ms: i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX),
        }
    }

    pub fn from_config(c: &crate::service::config::OutcomeWindowConfig) -> DecisionWindow {
        DecisionWindow::new(c.decisions, Duration::from_secs(c.hours * 3600))
    }

    /// The age limit in milliseconds.
    pub fn max_age_ms(&self) -> i64 {
        self.max_age_ms
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WindowInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds the decision `key` (a later record of the same key replaces it), recorded at `at_ms`; then
    /// drops what is beyond the bounds as of `now_ms`.
    pub fn insert(&self, key: Key, e: Examined, at_ms: i64, now_ms: i64) {
        let mut guard = self.lock();
        let w = &mut *guard;
        w.seq += 1;
        let seq = w.seq;
        let hash = key_hash(&w.hasher, &key.0, key.1);
        let examined = Arc::new(e);
        let hasher = &w.hasher;
        match w.held.entry(
            hash,
            |h| h.key == key,
            |h| key_hash(hasher, &h.key.0, h.key.1),
        ) {
            Entry::Occupied(mut o) => {
                let h = o.get_mut();
                (h.seq, h.at, h.examined) = (seq, at_ms, examined);
            }
            Entry::Vacant(v) => {
                v.insert(Held {
                    key,
                    seq,
                    at: at_ms,
                    examined,
                });
            }
        }
        w.order.push_back((hash, seq, at_ms));
        self.evict(w, now_ms);
    }

    fn evict(&self, w: &mut WindowInner, now_ms: i64) {
        let oldest = now_ms.saturating_sub(self.max_age_ms);
        while let Some(&(hash, seq, at)) = w.order.front() {
            if w.order.len() <= self.max_decisions && at >= oldest {
                break;
            }
            w.order.pop_front();
            // A key inserted again since has a later sequence and stays.
            if let Ok(e) = w.held.find_entry(hash, |h| h.seq == seq) {
                e.remove();
            }
        }
    }

    /// The decision `(manifest_id, revision)` when it is in the window as of `now_ms`. Eviction follows
    /// insertion order, and records read from several partitions are not in time order, so each entry's own
    /// time is checked too.
    pub fn get(&self, manifest_id: &str, revision: u32, now_ms: i64) -> Option<Arc<Examined>> {
        let mut w = self.lock();
        self.evict(&mut w, now_ms);
        let oldest = now_ms.saturating_sub(self.max_age_ms);
        let hash = key_hash(&w.hasher, manifest_id, revision);
        w.held
            .find(hash, |h| h.key.0 == manifest_id && h.key.1 == revision)
            .filter(|h| h.at >= oldest)
            .map(|h| h.examined.clone())
    }

    /// Decisions held.
    pub fn len(&self) -> usize {
        self.lock().held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// ---------------------------------------------------------------------------------------------------------
// Hit rates

/// What one counted outcome contributes.
#[derive(Debug, Clone)]
struct Counted {
    pos: Position,
    result: ExamResult,
    causes: Vec<Cause>,
    port: PortCode,
    standing: &'static str,
}

/// Exams and what they found, in one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Hits {
    pub exams: u64,
    pub discrepancies: u64,
    pub seizures: u64,
    /// Discrepancies (seizures not included) per exam; `null` without exams.
    pub discrepancy_rate: Option<f64>,
    pub seizure_rate: Option<f64>,
}

impl Hits {
    fn add(&mut self, r: ExamResult) {
        self.exams += 1;
        match r {
            ExamResult::NoDiscrepancy => {}
            ExamResult::Discrepancy => self.discrepancies += 1,
            ExamResult::Seizure => self.seizures += 1,
        }
    }
    fn finish(&mut self) {
        if self.exams > 0 {
            self.discrepancy_rate = Some(self.discrepancies as f64 / self.exams as f64);
            self.seizure_rate = Some(self.seizures as f64 / self.exams as f64);
        }
    }
}

/// The random-exam estimate of one stratum's violation rate (discrepancy or seizure): random exams are an
/// unbiased sample of the stratum's manifests, so their hit rate estimates the rate among all of them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Estimate {
    /// The stratum's random exams so far and the share that found a violation (`null` before the first).
    Sampled {
        random_exams: u64,
        violations: u64,
        violation_rate: Option<f64>,
    },
    /// `"n/a (exempt)"`: the policy never examines this stratum at random.
    Exempt(&'static str),
}

/// The hit rates as `/api/stats` shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HitRatesView {
    /// Distinct outcomes counted (a replaced version counts once, in its latest form).
    pub outcomes: u64,
    pub overall: Hits,
    /// By selection cause (`band`, `escalation`, `watch_list`, `random`, `history`; an exam of a released
    /// manifest — an officer's own referral — under `referral`). An exam with two causes counts under both.
    pub by_cause: BTreeMap<&'static str, Hits>,
    pub by_port: BTreeMap<String, Hits>,
    /// By the examined decision's importer standing group (`unknown` when the decision was not in this
    /// instance's window when the outcome was read).
    pub by_standing: BTreeMap<&'static str, Hits>,
    /// Per standing group, the random-exam estimate of the violation rate.
    pub random_estimate: BTreeMap<&'static str, Estimate>,
}

/// The standing groups of the hit rates, in display order.
pub const STANDINGS: [&str; 5] = [
    "none",
    "suspended_or_removed",
    "certified",
    "validated",
    "validated_tier3",
];

/// The standing group of an outcome whose decision was not in the window.
pub const UNKNOWN: &str = "unknown";

/// Whether the policy never examines a standing group at random (validated importers are always exempt;
/// other groups when every mode's rate for them is 0).
pub fn exempt(policy: &PolicyDoc, group: &str) -> bool {
    let r = &policy.random.rates;
    let rates = [&r.truck, &r.rail, &r.ocean, &r.air];
    match group {
        "validated" | "validated_tier3" => true,
        "certified" => rates.iter().all(|x| x.certified <= 0.0),
        _ => rates.iter().all(|x| x.non_partner <= 0.0),
    }
}

/// Hit rates over every outcome counted, each key in its latest version.
#[derive(Default)]
pub struct HitRates {
    by_key: Mutex<HashMap<Key, Counted>>,
}

impl HitRates {
    pub fn new() -> HitRates {
        HitRates::default()
    }

    /// Gives the outcomes counted with an `unknown` standing the one `standing_of` knows now (the decision
    /// reached the window after the outcome was read, e.g. at start-up, when the outcomes topic is read
    /// while the decision window is still filling).
    pub fn resolve_unknown(&self, standing_of: impl Fn(&Key) -> Option<&'static str>) {
        let mut m = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        for (key, c) in m.iter_mut() {
            if c.standing == UNKNOWN {
                if let Some(s) = standing_of(key) {
                    c.standing = s;
                }
            }
        }
    }

    /// Counts the outcome read at `pos` (a version at a higher position of the same key replaces it).
    pub fn apply(&self, pos: Position, o: &Outcome, standing: &'static str) {
        let mut m = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        let key = (o.manifest_id.clone(), o.revision);
        if m.get(&key).is_some_and(|c| c.pos >= pos) {
            return;
        }
        m.insert(
            key,
            Counted {
                pos,
                result: o.result,
                causes: o.causes.clone(),
                port: o.port,
                standing,
            },
        );
    }

    pub fn view(&self, policy: &PolicyDoc) -> HitRatesView {
        let m = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        let mut v = HitRatesView::default();
        let mut random: HashMap<&'static str, (u64, u64)> = HashMap::new();
        for c in m.values() {
            v.outcomes += 1;
            v.overall.add(c.result);
            if c.causes.is_empty() {
                v.by_cause.entry("referral").or_default().add(c.result);
            }
            for cause in &c.causes {
                v.by_cause.entry(cause.as_str()).or_default().add(c.result);
            }
            v.by_port
                .entry(c.port.to_string())
                .or_default()
                .add(c.result);
            v.by_standing.entry(c.standing).or_default().add(c.result);
            if c.causes.contains(&Cause::Random) {
                let e = random.entry(c.standing).or_default();
                e.0 += 1;
                e.1 += u64::from(c.result != ExamResult::NoDiscrepancy);
            }
        }
        drop(m);
        v.overall.finish();
        for h in v
            .by_cause
            .values_mut()
            .chain(v.by_port.values_mut())
            .chain(v.by_standing.values_mut())
        {
            h.finish();
        }
        for g in STANDINGS {
            let est = match random.get(g) {
                Some(&(n, hits)) => Estimate::Sampled {
                    random_exams: n,
                    violations: hits,
                    violation_rate: Some(hits as f64 / n as f64),
                },
                None if exempt(policy, g) => Estimate::Exempt("n/a (exempt)"),
                None => Estimate::Sampled {
                    random_exams: 0,
                    violations: 0,
                    violation_rate: None,
                },
            };
            v.random_estimate.insert(g, est);
        }
        v
    }
}

// ---------------------------------------------------------------------------------------------------------
// The applier

/// Applies outcome records, in order per partition, to the history and the hit rates, and publishes the
/// watermark the pipelines read the history at.
pub struct HistoryFeed {
    pub history: Arc<History>,
    /// Per partition the next position not applied; raised only after the records below it are applied.
    pub watermark: Arc<ArcSwap<Watermark>>,
    pub hit_rates: Arc<HitRates>,
    /// Where an outcome's importer standing is looked up (for the hit rates by standing).
    pub window: Arc<DecisionWindow>,
    pub metrics: Arc<Metrics>,
}

impl HistoryFeed {
    pub fn new(window: Arc<DecisionWindow>, metrics: Arc<Metrics>) -> HistoryFeed {
        HistoryFeed {
            history: Arc::new(History::new()),
            watermark: Arc::new(ArcSwap::from_pointee(Watermark::default())),
            hit_rates: Arc::new(HitRates::new()),
            window,
            metrics,
        }
    }

    /// Inserts a valid record read at `pos` (the watermark is not moved: see [`HistoryFeed::advance`]).
    pub fn apply(&self, pos: Position, o: &Outcome) {
        if self.history.insert(pos, o) {
            let standing = self
                .window
                .get(&o.manifest_id, o.revision, crate::clock::unix_millis())
                .map_or(UNKNOWN, |e| e.standing);
            self.hit_rates.apply(pos, o, standing);
            self.metrics.history_outcomes(self.history.len());
        }
    }

    /// Every record of `partition` below `next` has been applied (or skipped as bad).
    /// A partition with nothing below `next = 0` stays unnamed (it counts nothing either way), so an empty
    /// topic's watermark is `{}`, as a decision without any outcome says.
    pub fn advance(&self, partition: u32, next: u64) {
        if next == 0 {
            return;
        }
        let current = self.watermark.load();
        if current.0.get(&partition).is_some_and(|n| *n >= next) {
            return;
        }
        let mut w = Watermark::clone(&current);
        w.advance(partition, next);
        self.watermark.store(Arc::new(w));
    }

    /// The hit rates now, unknown standings first looked up again in the window.
    pub fn hit_rates(&self, policy: &PolicyDoc) -> HitRatesView {
        let now = crate::clock::unix_millis();
        self.hit_rates
            .resolve_unknown(|(id, rev)| self.window.get(id, *rev, now).map(|e| e.standing));
        self.hit_rates.view(policy)
    }

    /// Mirrors the hit rates into `/metrics`.
    pub fn publish_gauges(&self, policy: &PolicyDoc) {
        self.metrics.hit_rates(&self.hit_rates(policy));
    }

    /// Whether the record at `pos` has been applied.
    pub fn covers(&self, pos: Position) -> bool {
        self.watermark.load().covers(pos)
    }
}

// ---------------------------------------------------------------------------------------------------------
// The recorder

/// Where a recorded outcome goes.
pub enum Recorder {
    /// `demo`: applied in process at the next position of partition 0.
    InProcess(Mutex<u64>),
    /// The outcomes topic. An idempotent producer (`acks=all`, `enable.idempotence`), never transactional:
    /// one record per request, no input offsets to commit with it, so a transaction would only add a round
    /// trip and a `transactional.id` per instance to fence. Idempotence keeps a producer retry from writing
    /// the record twice; a client that repeats its request writes a second version of the same key, which
    /// replaces the first — an outcome never counts twice by design.
    Kafka {
        producer: rdkafka::producer::FutureProducer,
        topic: String,
        /// Budget for the broker's acknowledgement, then for this instance's follower to apply the record.
        timeout: Duration,
    },
}

impl Recorder {
    pub fn kafka(config: &crate::service::config::Config) -> anyhow::Result<Recorder> {
        use crate::service::kafka::clients::{client_config, Role};
        // No statistics, whatever `[kafka.producer]` says: nothing reads them, and the default context
        // would log each report whole.
        let producer = client_config(&config.kafka, Role::Loader)
            .set("statistics.interval.ms", "0")
            .create()
            .map_err(|e| anyhow!("creating the outcomes producer: {e}"))?;
        Ok(Recorder::Kafka {
            producer,
            topic: config.kafka.topics.outcomes.clone(),
            timeout: Duration::from_millis(config.kafka.startup_timeout_ms),
        })
    }

    /// Writes the complete record; returns its position and whether this instance applied it already.
    pub async fn record(
        &self,
        feed: &HistoryFeed,
        o: &Outcome,
    ) -> anyhow::Result<(Position, bool)> {
        match self {
            Recorder::InProcess(next) => {
                let mut n = next.lock().unwrap_or_else(|e| e.into_inner());
                let pos = Position {
                    partition: 0,
                    offset: *n,
                };
                feed.apply(pos, o);
                *n += 1;
                feed.advance(0, *n);
                Ok((pos, true))
            }
            Recorder::Kafka {
                producer,
                topic,
                timeout,
            } => {
                use rdkafka::producer::FutureRecord;
                let key = topic_key(&o.manifest_id, o.revision);
                let value = serde_json::to_vec(o).context("encoding an outcome")?;
                let delivery = producer
                    .send(
                        FutureRecord::<str, [u8]>::to(topic)
                            .key(&key)
                            .payload(&value),
                        *timeout,
                    )
                    .await
                    .map_err(|(e, _)| anyhow!("{e}"))
                    .with_context(|| format!("writing outcome {key} to {topic}"))?;
                let pos = Position {
                    partition: u32::try_from(delivery.partition).unwrap_or(0),
                    offset: u64::try_from(delivery.offset).unwrap_or(0),
                };
                // Wait (bounded) until this instance's follower applied it, so that the answer means "the
                // next decision here counts it".
                let deadline = tokio::time::Instant::now() + *timeout;
                while !feed.covers(pos) {
                    if tokio::time::Instant::now() >= deadline {
                        return Ok((pos, false));
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Ok((pos, true))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// POST /outcomes

/// Everything `POST /outcomes` needs.
#[derive(Clone)]
pub struct OutcomeApi {
    pub window: Arc<DecisionWindow>,
    pub feed: Arc<HistoryFeed>,
    pub recorder: Arc<Recorder>,
    pub policy: Arc<ArcSwap<CompiledPolicy>>,
    pub limits: Limits,
}

/// Request bodies are small records.
const OUTCOME_BODY: usize = 64 * 1024;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

fn errors(errs: &[FieldError]) -> Response {
    let list: Vec<Value> = errs
        .iter()
        .map(|e| json!({"path": e.path, "kind": e.kind.as_str(), "message": e.message}))
        .collect();
    (StatusCode::BAD_REQUEST, Json(json!({"errors": list}))).into_response()
}

/// The body of `POST /outcomes` as the core parser must see it, with the officer bound to the logged-in
/// identity `name`: a JSON object without `officer` gets `"officer": name` added in front, every other byte
/// kept (so the parser still sees and reports whatever else the body holds, a repeated key included); a
/// body naming another officer is refused with the message for the 403. Anything else is passed through
/// for the parser to report.
pub fn officer_body(body: &[u8], name: &str) -> Result<Vec<u8>, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(obj)) => match obj.get("officer") {
            None => Ok(with_officer(body, name)),
            Some(Value::String(o)) if *o != name => Err(format!(
                "officer {o:?} is not the logged-in identity {name:?}: an outcome is recorded by the \
                 officer who sends it (omit \"officer\" to have it filled in)"
            )),
            Some(_) => Ok(body.to_vec()),
        },
        _ => Ok(body.to_vec()),
    }
}

fn with_officer(body: &[u8], name: &str) -> Vec<u8> {
    let Some(open) = body.iter().position(|b| *b == b'{') else {
        return body.to_vec();
    };
    let rest = &body[open + 1..];
    let empty = rest
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'}');
    let mut out = Vec::with_capacity(body.len() + name.len() + 16);
    out.extend_from_slice(&body[..=open]);
    out.extend_from_slice(b"\"officer\":");
    out.extend_from_slice(&serde_json::to_vec(name).unwrap_or_default());
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    out
}

/// `POST /outcomes`: see docs/serve.md. The officer is the logged-in identity: a body without `officer`
/// gets the reader's token name, a body naming another officer is refused (403).
async fn post_outcome(
    State(api): State<OutcomeApi>,
    Extension(reader): Extension<Reader>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !reader.role.allows(Permission::RecordOutcomes) {
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "token {:?} has the {} role, which may not record exam outcomes",
                reader.name,
                reader.role.as_str()
            ),
        );
    }
    if reader.via == "session" && !crate::service::officers::same_origin(&headers) {
        return error(StatusCode::FORBIDDEN, "cross-site request refused");
    }
    // The officer: filled from the session, or checked against it.
    let body = match officer_body(&body, &reader.name) {
        Ok(b) => b,
        Err(message) => return error(StatusCode::FORBIDDEN, message),
    };
    let mut o = match parse_outcome(&body, &api.limits, Form::Request) {
        Ok(o) => o,
        Err(e) => return errors(&e.0),
    };
    let Some(examined) = api
        .window
        .get(&o.manifest_id, o.revision, crate::clock::unix_millis())
    else {
        return error(
            StatusCode::NOT_FOUND,
            format!(
                "no decision for manifest {} revision {} in the outcome window (service.outcome_window)",
                o.manifest_id, o.revision
            ),
        );
    };
    if let Err(e) = examined.enrich(&mut o) {
        return errors(&[e]);
    }
    let replaced = api.feed.history.contains(&o.manifest_id, o.revision);
    match api.recorder.record(&api.feed, &o).await {
        Ok((pos, applied)) => {
            api.feed.metrics.outcome_recorded();
            // The gauges walk the whole history: off the async threads, not awaited.
            let (feed, policy) = (api.feed.clone(), api.policy.load_full());
            tokio::task::spawn_blocking(move || feed.publish_gauges(&policy.doc));
            info!(
                target: crate::service::officers::ACCESS_TARGET,
                reader = %reader.name,
                manifest_id = %o.manifest_id,
                revision = o.revision,
                result = o.result.as_str(),
                partition = pos.partition,
                offset = pos.offset,
                applied,
                "exam outcome recorded"
            );
            let status = if replaced {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            (
                status,
                [(header::CACHE_CONTROL, "no-store")],
                Json(serde_json::to_value(&o).unwrap_or(Value::Null)),
            )
                .into_response()
        }
        Err(e) => {
            warn!(error = %format!("{e:#}"), "recording an exam outcome failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the outcome was not recorded: {e:#}"),
            )
        }
    }
}

/// `POST /outcomes`, to be placed behind the officers' authentication layer.
pub fn router(api: OutcomeApi) -> Router {
    Router::new()
        .route("/outcomes", post(post_outcome))
        .layer(DefaultBodyLimit::max(OUTCOME_BODY))
        .with_state(api)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn examined(standing: &'static str) -> Examined {
        Examined::new(
            PortCode::parse("2304").unwrap(),
            Action::NiiScan,
            standing,
            &[Cause::Random],
            [
                (Role::Importer, "I2", Some("S2")),
                (Role::Carrier, "C", None),
                (Role::Importer, "I1", Some("S1")),
                (Role::Carrier, "C", None),
            ],
            ["S2", "S1"],
        )
    }

    #[test]
    fn the_officer_is_added_and_every_other_byte_kept() {
        assert_eq!(
            with_officer(br#" {"a": 1, "a": 2}"#, "olga"),
            br#" {"officer":"olga","a": 1, "a": 2}"#
        );
        assert_eq!(with_officer(b"{ }", "o\"1"), br#"{"officer":"o\"1" }"#);
        let dup = parse_outcome(
            &with_officer(
                br#"{"manifest_id":"M","manifest_id":"M","revision":0,"result":"seizure","examined_at":"2026-06-01T00:00:00Z","port":"2304"}"#,
                "olga",
            ),
            &Limits::default(),
            Form::Request,
        )
        .unwrap_err();
        assert_eq!(dup.0[0].kind, ErrorKind::DuplicateField);
    }

    #[test]
    fn the_window_is_bounded_by_count_and_age_and_a_redecision_replaces() {
        let w = DecisionWindow::new(2, Duration::from_secs(10));
        w.insert(("A".into(), 0), examined("none"), 0, 0);
        w.insert(("B".into(), 0), examined("none"), 1_000, 1_000);
        assert!(w.get("A", 0, 1_000).is_some());
        w.insert(("C".into(), 0), examined("none"), 2_000, 2_000);
        assert!(w.get("A", 0, 2_000).is_none(), "count bound");
        assert!(w.get("B", 0, 2_000).is_some());
        // A re-decided B replaces, and the old entry's eviction does not drop the new one.
        w.insert(("B".into(), 0), examined("certified"), 3_000, 3_000);
        w.insert(("D".into(), 0), examined("none"), 3_500, 3_500);
        assert_eq!(w.len(), 2);
        assert_eq!(w.get("B", 0, 3_500).unwrap().standing, "certified");
        assert!(w.get("B", 1, 3_500).is_none(), "another revision");
        // Age bound, by the re-decision's time (3 000; the first one's, 1 000, is out at 12 000).
        assert!(w.get("B", 0, 12_000).is_some());
        assert!(w.get("B", 0, 13_001).is_none());
        assert!(w.get("D", 0, 13_001).is_some());
        assert_eq!(w.len(), 1);
    }

    /// Enough keys for the table to grow many times (its rehash must hash a held key as a looked-up one),
    /// every third re-decided: each key finds its latest entry, and a re-decided key counts once.
    #[test]
    fn a_growing_window_finds_every_key_and_its_latest_entry() {
        let w = DecisionWindow::new(10_000, Duration::from_secs(10));
        let key = |i: u32| (Str::from(format!("TRK-2304-20261128-{i:07}")), i % 3);
        for i in 0..3_000 {
            w.insert(key(i), examined("none"), 1_000, 1_000);
        }
        for i in (0..3_000).step_by(3) {
            w.insert(key(i), examined("certified"), 2_000, 2_000);
        }
        assert_eq!(w.len(), 3_000);
        for i in 0..3_000 {
            let (id, revision) = key(i);
            let want = if i % 3 == 0 { "certified" } else { "none" };
            assert_eq!(w.get(&id, revision, 2_000).unwrap().standing, want, "{i}");
            assert!(w.get(&id, revision + 1, 2_000).is_none());
        }
    }

    /// Every set of causes comes back in `Cause::ALL`'s order, which is `causes_from`'s.
    #[test]
    fn causes_come_back_in_the_order_causes_from_gives_them() {
        for bits in 0u32..(1 << Cause::ALL.len()) {
            let v: Vec<Cause> = Cause::ALL
                .iter()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .map(|(_, c)| *c)
                .collect();
            let mut shuffled = v.clone();
            shuffled.reverse();
            assert_eq!(Causes::of(&shuffled).to_vec(), v);
        }
        let policy = CompiledPolicy::from_toml(crate::load::policy::DEFAULT_POLICY).unwrap();
        let position = |c: &Cause| Cause::ALL.iter().position(|x| x == c).unwrap();
        for action in Action::ALL {
            for score in [-50, 0, 40, 80, 120, 160, 200, 400] {
                for flags in 0..8u8 {
                    let causes = causes_from(
                        Selection {
                            action,
                            score,
                            watchlist_hit: flags & 1 != 0,
                            random_exam: flags & 2 != 0,
                            history_points: flags & 4 != 0,
                        },
                        &policy.doc,
                    );
                    assert!(causes.windows(2).all(|p| position(&p[0]) < position(&p[1])));
                }
            }
        }
    }

    #[test]
    fn an_entry_older_than_the_window_is_not_found_whatever_its_insertion_order() {
        // Records of several partitions arrive out of time order: E (newer) first, then F (older).
        let w = DecisionWindow::new(100, Duration::from_secs(10));
        w.insert(("E".into(), 0), examined("none"), 5_000, 5_000);
        w.insert(("F".into(), 0), examined("none"), 1_000, 5_000);
        assert!(w.get("F", 0, 10_000).is_some());
        // At 11 001 F is older than 10 s while E, ahead of it in insertion order, is not.
        assert!(w.get("F", 0, 11_001).is_none());
        assert!(w.get("E", 0, 11_001).is_some());
    }

    /// The window reads a decision record from the topic exactly as it indexes the decision in process.
    #[test]
    fn a_decision_record_reads_as_the_decision() {
        let policy = CompiledPolicy::from_toml(crate::load::policy::DEFAULT_POLICY).unwrap();
        let text = r#"{"manifest_id":"M-9","filed_at":"2026-11-28T04:00:00Z","mode":"truck","port_of_entry":"2304",
            "carrier":{"scac":"ABCD","name":"Acme"},
            "shipments":[{"shipment_id":"S1","importer":{"id":"I-1"},"origin_country":"KP",
              "commodities":[{"hts":"930200","description":"parts"}]},
              {"shipment_id":"S2","importer":{"id":"I-2"},"origin_country":"MX",
              "commodities":[{"hts":"847130","description":"laptops"}]}]}"#;
        let m = borderlane_core::wire::parse_manifest(text.as_bytes(), &Limits::default()).unwrap();
        let d = borderlane_core::score::decide(
            &policy,
            &borderlane_core::table::PartnerTable::new(),
            &m,
        );
        assert!(d.action.is_exam());
        let json = serde_json::to_vec(&d).unwrap();
        let (key, from_topic) = Examined::of_record(&json, &policy.doc).unwrap();
        assert_eq!(key, (Str::from("M-9"), 0));
        let in_process = Examined::of_decision(&d, &policy.doc);
        assert_eq!(from_topic, in_process);
        assert!(!in_process.causes().is_empty());
        assert!(in_process.parties().any(|p| p.role == Role::Carrier));
        assert_eq!(in_process.shipments().collect::<Vec<_>>(), ["S1", "S2"]);
        assert!(Examined::of_record(b"{}", &policy.doc).is_err());
    }

    /// The compact entry gives back exactly what vectors of owned parties and shipments held (sorted, each
    /// once), for generated decisions and for ids past the 24 bytes a `Str` keeps inline, repeated
    /// parties, a conveyance-level party and a shipment only a reason names; and the record read from the
    /// topic equals the decision indexed in process.
    #[test]
    fn an_entry_holds_its_parties_shipments_and_causes_as_owned_vectors_would() {
        fn sorted_unique<T: Ord>(mut v: Vec<T>) -> Vec<T> {
            v.sort();
            v.dedup();
            v
        }
        fn check(
            e: &Examined,
            parties: Vec<OutcomeParty>,
            reason_shipments: Vec<Str>,
            causes: &[Cause],
        ) {
            let shipments = sorted_unique(
                parties
                    .iter()
                    .filter_map(|p| p.shipment_id.clone())
                    .chain(reason_shipments)
                    .collect(),
            );
            assert_eq!(e.parties().collect::<Vec<_>>(), sorted_unique(parties));
            assert_eq!(e.shipments().map(Str::from).collect::<Vec<_>>(), shipments);
            assert_eq!(e.causes(), causes);
        }
        let long = |s: &str| Str::from(format!("{s}-{}", "x".repeat(40)));
        let parties = vec![
            OutcomeParty {
                role: Role::Shipper,
                id: long("P9"),
                shipment_id: Some(long("S2")),
            },
            OutcomeParty {
                role: Role::Carrier,
                id: "C".into(),
                shipment_id: None,
            },
            OutcomeParty {
                role: Role::Importer,
                id: long("I1"),
                shipment_id: Some(long("S1")),
            },
            OutcomeParty {
                role: Role::Shipper,
                id: long("P9"),
                shipment_id: Some(long("S2")),
            },
            OutcomeParty {
                role: Role::Shipper,
                id: long("P9"),
                shipment_id: Some(long("S1")),
            },
            OutcomeParty {
                role: Role::Importer,
                id: "".into(),
                shipment_id: Some("".into()),
            },
        ];
        let reasons = vec![long("S3"), long("S1")];
        let causes = [Cause::Band, Cause::WatchList, Cause::History];
        let e = Examined::new(
            PortCode::parse("2304").unwrap(),
            Action::Intensive,
            "none",
            &causes,
            parties
                .iter()
                .map(|p| (p.role, p.id.as_str(), p.shipment_id.as_deref())),
            reasons.iter().map(|s| s.as_str()),
        );
        check(&e, parties, reasons, &causes);

        let policy = CompiledPolicy::from_toml(crate::load::policy::DEFAULT_POLICY).unwrap();
        let generator = crate::traffic::gen::Generator::seeded(7, 0.0, &policy);
        let table = borderlane_core::table::PartnerTable::new();
        for p in generator.partners() {
            table.upsert(p.clone());
        }
        let mut exams = 0;
        for i in 0..400 {
            let crate::traffic::gen::Record::Good(m) = generator.record(i) else {
                continue;
            };
            let d = borderlane_core::score::decide(&policy, &table, &m);
            exams += usize::from(d.action.is_exam());
            let e = Examined::of_decision(&d, &policy.doc);
            check(
                &e,
                d.parties.iter().map(OutcomeParty::from).collect(),
                d.reasons
                    .iter()
                    .filter_map(|r| r.shipment.as_deref())
                    .map(Str::from)
                    .collect(),
                &borderlane_core::outcome::causes_of(&d, &policy.doc),
            );
            let mut json = Vec::new();
            d.write_json(&mut json);
            let (key, from_topic) = Examined::of_record(&json, &policy.doc).unwrap();
            assert_eq!(
                (key.0.as_str(), key.1),
                (d.manifest_id.as_str(), d.revision)
            );
            assert_eq!(from_topic, e);
        }
        assert!(
            exams > 0,
            "some generated decisions are exams (with causes)"
        );
    }

    #[test]
    fn enrich_keeps_the_examined_shipment_and_the_conveyance() {
        let e = examined("none");
        let mut o = parse_outcome(
            br#"{"manifest_id":"M","revision":0,"shipment_id":"S2","result":"seizure","examined_at":"2026-06-01T00:00:00Z","port":"2304","officer":"o"}"#,
            &Limits::default(),
            Form::Request,
        )
        .unwrap();
        e.enrich(&mut o).unwrap();
        let ids: Vec<&str> = o.parties.iter().map(|p| p.id.as_str()).collect();
        // In the window's order: by role (importers first), then id.
        assert_eq!(ids, ["I2", "C"]);
        assert_eq!(o.causes, [Cause::Random]);
        o.shipment_id = Some("S9".into());
        assert_eq!(e.enrich(&mut o).unwrap_err().path, "shipment_id");
        o.shipment_id = None;
        e.enrich(&mut o).unwrap();
        assert_eq!(o.parties.len(), 3);
    }

    #[test]
    fn hit_rates_count_the_latest_version_once_and_estimate_by_random_exams() {
        let policy = CompiledPolicy::from_toml(crate::load::policy::DEFAULT_POLICY).unwrap();
        let h = HitRates::new();
        let mut o = parse_outcome(
            br#"{"manifest_id":"M","revision":0,"result":"discrepancy","examined_at":"2026-06-01T00:00:00Z","port":"2304","officer":"o","parties":[],"causes":["band","random"]}"#,
            &Limits::default(),
            Form::Record,
        )
        .unwrap();
        let p = |offset| Position {
            partition: 0,
            offset,
        };
        h.apply(p(1), &o, "none");
        o.result = ExamResult::NoDiscrepancy;
        h.apply(p(0), &o, "none"); // an older version read late: ignored
        let v = h.view(&policy.doc);
        assert_eq!((v.outcomes, v.overall.discrepancies), (1, 1));
        h.apply(p(2), &o, "none"); // the correction replaces
        let v = h.view(&policy.doc);
        assert_eq!(v.outcomes, 1);
        assert_eq!(v.overall.discrepancies, 0);
        assert_eq!(v.by_cause["band"].exams, 1);
        assert_eq!(v.by_cause["random"].exams, 1);
        assert_eq!(v.by_port["2304"].exams, 1);
        assert_eq!(
            v.random_estimate["none"],
            Estimate::Sampled {
                random_exams: 1,
                violations: 0,
                violation_rate: Some(0.0)
            }
        );
        assert_eq!(
            v.random_estimate["validated"],
            Estimate::Exempt("n/a (exempt)")
        );
        assert_eq!(
            v.random_estimate["certified"],
            Estimate::Sampled {
                random_exams: 0,
                violations: 0,
                violation_rate: None
            }
        );
        // An outcome read before its decision reached the window counts as `unknown` until it does.
        o.manifest_id = "M2".into();
        h.apply(p(3), &o, UNKNOWN);
        assert_eq!(h.view(&policy.doc).by_standing[UNKNOWN].exams, 1);
        h.resolve_unknown(|k| (k.0 == "M2").then_some("certified"));
        let v = h.view(&policy.doc);
        assert!(!v.by_standing.contains_key(UNKNOWN));
        assert_eq!(v.by_standing["certified"].exams, 1);
    }
}
