//! Golden rule cases as data: every `tests/golden/*.toml` file holds cases (a manifest, partners, policy
//! overrides and the expected decision) that one driver, [`check`], runs through the real parser, partner
//! table, policy compiler and scorer, comparing the decision's wire JSON field by field.
//!
//! Case format (see any file in `tests/golden/` for examples):
//!
//! ```toml
//! [[case]]
//! name = "origin_colombia"                 # unique within the file
//! description = "why the case exists"
//! base = "south_truck"                     # tests/golden/bases/<base>.json; or `manifest = '''{…}'''`
//! patch = '''{"carrier": null}'''          # optional RFC 7396 JSON merge patch, applied first
//! partners = ["imp_cert", { partner_id = "X", … }]  # names in bases/partners.toml, or inline records
//! [case.set]                               # optional: JSON path → value, applied after the patch
//! "shipments[0].origin_country" = "CO"
//! remove = ["shipments[0].importer"]       # optional: JSON paths deleted last (put before [case.set])
//! [case.policy]                            # optional: deep-merged into config/policy.toml
//! random.rates.truck.non_partner = 1.0
//! [case.expect]                            # every field is required
//! score = 45
//! band = "low"
//! action = "release"
//! lane = "standard"
//! fast = { eligible = false, missing = ["carrier_ctpat"] }
//! front_of_line = false
//! random_exam = false
//! watchlist_hit = false
//! reasons = [["origin.country", 45]]       # exact multiset of (rule, points)
//! parties = [["importer", "12-3456789AB", "none"]]  # exact multiset of (role, id, standing)
//! details = [["origin.country", "CO"]]     # optional: (rule, substring of that reason's detail)
//! priority = 1                             # optional: the decision's `priority`; absent = must be absent
//! ```
//!
//! A case may give business-resumption declarations in force, passed to `process_with`:
//! `resumptions = [{ port = "2304", declared_at = "2026-11-28T00:00:00Z", until = "2026-11-29T00:00:00Z" }]`.
//!
//! Party history (`golden/history.toml`): `outcomes = [{ manifest_id = …, result = …, parties = […], … }]`
//! (complete exam-outcome records, at positions 0, 1, … of partition 0), `history_as_of = "0:1"` (default:
//! every outcome), `policy_without = ["history"]` (sections dropped from config/policy.toml), and
//! `expect.history_as_of = "0:2"` (or `"none"`: absent).
//!
//! A case may instead carry `expect_policy_errors = [{ path = "…", contains = "…" }]` (the exact set of error
//! paths the merged policy must be rejected with; `[]` means it must be accepted).
//!
//! `GOLDEN_CASE=<name>` runs only the cases of that name.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use borderlane_core::codes::PortCode;
use borderlane_core::outcome::{parse_outcome, Form};
use borderlane_core::time::Timestamp;
use borderlane_core::wire::parse_partner;
use borderlane_core::{
    process_json, process_with, CompiledPolicy, Declaration, History, HistoryAsOf, Limits, Lookups,
    PartnerTable, Position, Resumptions, Watermark,
};
use serde::Deserialize;
use serde_json::Value as Json;
use toml::Value as Toml;

const DEFAULT_POLICY: &str = include_str!("../../../config/policy.toml");

/// Every rule id a decision can carry; the corpus must exercise each one.
const ALL_RULES: &[&str] = &[
    "origin.country",
    "routing.transit_country",
    "routing.circuitous",
    "commodity.hts_chapter",
    "commodity.hts_heading",
    "commodity.vague_description",
    "commodity.value_per_kg",
    "commodity.zero_weight",
    "seal.missing",
    "seal.not_high_security",
    "filing.late",
    "parties.importer_missing",
    "watchlist.id",
    "watchlist.name",
    "ctpat.importer",
    "ctpat.carrier",
    "ctpat.manufacturer",
    "ctpat.shipper",
    "ctpat.broker",
    "random.compliance",
    "ctpat.credit_cap",
    "ctpat.credit_unused",
    "history.discrepancy",
    "history.seizure",
    "history.clean",
];

/// Every FAST condition that can be reported missing; the corpus must show each one unmet.
const ALL_FAST_CONDITIONS: &[&str] = &[
    "truck_mode",
    "fast_lane_port",
    "release",
    "driver_fast_card",
    "carrier_ctpat",
    "importer_ctpat",
    "manufacturer_ctpat",
    "manufacturer_seal",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    case: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    description: String,
    #[serde(default)]
    base: Option<String>,
    #[serde(default)]
    manifest: Option<String>,
    #[serde(default)]
    patch: Option<String>,
    #[serde(default)]
    set: BTreeMap<String, Toml>,
    #[serde(default)]
    remove: Vec<String>,
    #[serde(default)]
    partners: Vec<Toml>,
    #[serde(default)]
    policy: Option<Toml>,
    /// Top-level policy sections dropped from config/policy.toml before `policy` is merged (`["history"]`).
    #[serde(default)]
    policy_without: Vec<String>,
    /// Exam-outcome records (the complete form of docs/wire.md), inserted into the party history at
    /// positions 0, 1, … of partition 0.
    #[serde(default)]
    outcomes: Vec<Toml>,
    /// The watermark the decision reads the history at (`Watermark::parse`); default: every outcome.
    #[serde(default)]
    history_as_of: Option<String>,
    #[serde(default)]
    expect: Option<Expect>,
    #[serde(default)]
    expect_policy_errors: Option<Vec<ExpectPolicyError>>,
    /// Business-resumption declarations in force (`process_with`).
    #[serde(default)]
    resumptions: Vec<ResumptionCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResumptionCase {
    port: String,
    declared_at: String,
    until: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    score: i64,
    band: String,
    action: String,
    lane: String,
    fast: ExpectFast,
    front_of_line: bool,
    random_exam: bool,
    watchlist_hit: bool,
    reasons: Vec<(String, i64)>,
    parties: Vec<(String, String, String)>,
    #[serde(default)]
    details: Vec<(String, String)>,
    /// The decision's `priority`; absent means the decision must carry none.
    #[serde(default)]
    priority: Option<u8>,
    /// The decision's `history_as_of` (`"0:2"`; `"none"`: the field is absent). Checked when given.
    #[serde(default)]
    history_as_of: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectFast {
    eligible: bool,
    missing: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectPolicyError {
    path: String,
    #[serde(default)]
    contains: String,
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------------------
// Value plumbing: TOML → JSON, deep merge, JSON merge patch, path edits.

fn toml_to_json(v: &Toml) -> Json {
    match v {
        Toml::String(s) => Json::String(s.clone()),
        Toml::Integer(i) => Json::from(*i),
        Toml::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .unwrap_or(Json::Null),
        Toml::Boolean(b) => Json::Bool(*b),
        Toml::Datetime(d) => Json::String(d.to_string()),
        Toml::Array(a) => Json::Array(a.iter().map(toml_to_json).collect()),
        Toml::Table(t) => Json::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// Deep merge of TOML documents: tables merge key by key, anything else (arrays included) is replaced.
fn merge_toml(base: &mut Toml, over: &Toml) {
    match (base, over) {
        (Toml::Table(b), Toml::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(bv) if bv.is_table() && v.is_table() => merge_toml(bv, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// RFC 7396 JSON merge patch.
fn merge_patch(target: &mut Json, patch: &Json) {
    let Json::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Json::Object(Default::default());
    }
    let t = target.as_object_mut().expect("made an object above");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Json::Null), v);
        }
    }
}

#[derive(Debug)]
enum Seg {
    Key(String),
    Index(usize),
}

/// `shipments[0].commodities[1].hts` → segments.
fn parse_path(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        if !key.is_empty() {
            out.push(Seg::Key(key.to_string()));
        }
        while let Some(end) = rest.find(']') {
            let i = rest[1..end]
                .parse()
                .unwrap_or_else(|_| panic!("bad index in path {path:?}"));
            out.push(Seg::Index(i));
            rest = &rest[end + 1..];
        }
    }
    out
}

/// The value at `segs` (creating objects on the way); an index equal to the array length appends.
fn slot<'a>(root: &'a mut Json, segs: &[Seg], path: &str) -> &'a mut Json {
    let mut cur = root;
    for s in segs {
        cur = match s {
            Seg::Key(k) => {
                if cur.is_null() {
                    *cur = Json::Object(Default::default());
                }
                cur.as_object_mut()
                    .unwrap_or_else(|| panic!("{path}: {k} is not inside an object"))
                    .entry(k.clone())
                    .or_insert(Json::Null)
            }
            Seg::Index(i) => {
                let a = cur
                    .as_array_mut()
                    .unwrap_or_else(|| panic!("{path}: [{i}] is not inside an array"));
                if *i == a.len() {
                    a.push(Json::Null);
                }
                a.get_mut(*i)
                    .unwrap_or_else(|| panic!("{path}: index {i} out of bounds"))
            }
        };
    }
    cur
}

fn remove_path(root: &mut Json, path: &str) {
    let segs = parse_path(path);
    let (last, init) = segs.split_last().expect("empty path");
    let parent = slot(root, init, path);
    let removed = match (parent, last) {
        (Json::Object(o), Seg::Key(k)) => o.remove(k).is_some(),
        (Json::Array(a), Seg::Index(i)) if *i < a.len() => {
            a.remove(*i);
            true
        }
        _ => false,
    };
    assert!(removed, "remove: nothing at {path}");
}

// ---------------------------------------------------------------------------------------------------------
// Building the inputs of a case.

struct Fixtures {
    partners: toml::Table,
}

impl Fixtures {
    fn load() -> Fixtures {
        let text = read(&golden_dir().join("bases/partners.toml"));
        Fixtures {
            partners: text.parse().expect("bases/partners.toml is valid TOML"),
        }
    }
}

fn build_policy(case: &Case) -> Result<CompiledPolicy, Vec<borderlane_core::PathError>> {
    let mut doc = Toml::Table(DEFAULT_POLICY.parse().expect("default policy is TOML"));
    if let Toml::Table(t) = &mut doc {
        for section in &case.policy_without {
            t.remove(section);
        }
    }
    if let Some(over) = &case.policy {
        merge_toml(&mut doc, over);
    }
    let text = toml::to_string(&doc).expect("merged policy serialises");
    CompiledPolicy::from_toml(&text)
}

fn build_manifest(case: &Case) -> Result<Json, String> {
    let mut m: Json = match (&case.base, &case.manifest) {
        (Some(base), None) => {
            let path = golden_dir().join(format!("bases/{base}.json"));
            serde_json::from_str(&read(&path)).map_err(|e| format!("base {base}: {e}"))?
        }
        (None, Some(text)) => serde_json::from_str(text).map_err(|e| format!("manifest: {e}"))?,
        _ => return Err("give exactly one of `base` and `manifest`".into()),
    };
    if let Some(patch) = &case.patch {
        let p: Json = serde_json::from_str(patch).map_err(|e| format!("patch: {e}"))?;
        merge_patch(&mut m, &p);
    }
    for (path, v) in &case.set {
        *slot(&mut m, &parse_path(path), path) = toml_to_json(v);
    }
    for path in &case.remove {
        remove_path(&mut m, path);
    }
    Ok(m)
}

fn build_resumptions(case: &Case) -> Result<Resumptions, String> {
    let mut out = Vec::new();
    for r in &case.resumptions {
        let port = PortCode::parse(&r.port).ok_or_else(|| format!("bad port {:?}", r.port))?;
        let ts = |s: &str| Timestamp::parse(s).ok_or_else(|| format!("bad timestamp {s:?}"));
        out.push(Declaration {
            port,
            declared_at: ts(&r.declared_at)?,
            until: ts(&r.until)?,
            reason: "golden case".into(),
            declared_by: "golden".into(),
        });
    }
    Ok(Resumptions::new(out))
}

fn build_table(case: &Case, fx: &Fixtures) -> Result<PartnerTable, String> {
    let table = PartnerTable::new();
    for p in &case.partners {
        let record = match p {
            Toml::String(name) => fx
                .partners
                .get(name)
                .ok_or_else(|| format!("no partner fixture named {name:?}"))?,
            t @ Toml::Table(_) => t,
            other => {
                return Err(format!(
                    "a partner is a fixture name or a table, not {other}"
                ))
            }
        };
        let bytes = serde_json::to_vec(&toml_to_json(record)).expect("serialise partner");
        let partner = parse_partner(&bytes, &Limits::default())
            .map_err(|e| format!("partner {p} is rejected: {e}"))?;
        table.upsert(partner);
    }
    Ok(table)
}

fn build_history(case: &Case) -> Result<(History, Arc<Watermark>), String> {
    let history = History::new();
    for (i, o) in case.outcomes.iter().enumerate() {
        let bytes = serde_json::to_vec(&toml_to_json(o)).expect("serialise outcome");
        let outcome = parse_outcome(&bytes, &Limits::default(), Form::Record)
            .map_err(|e| format!("outcomes[{i}] is rejected: {e}"))?;
        history.insert(
            Position {
                partition: 0,
                offset: i as u64,
            },
            &outcome,
        );
    }
    let as_of = match &case.history_as_of {
        Some(w) => Watermark::parse(w).map_err(|e| format!("history_as_of: {e}"))?,
        None => Watermark::parse(&case.outcomes.len().to_string()).expect("a count parses"),
    };
    Ok((history, Arc::new(as_of)))
}

// ---------------------------------------------------------------------------------------------------------
// The one check.

/// What the corpus exercised, for the coverage assertions.
#[derive(Default)]
struct Coverage {
    rules: BTreeSet<String>,
    fast_missing: BTreeSet<String>,
    priorities: BTreeSet<u64>,
    cases: usize,
}

fn multiset<T: Ord + Clone>(items: &[T]) -> BTreeMap<T, usize> {
    let mut m = BTreeMap::new();
    for i in items {
        *m.entry(i.clone()).or_insert(0) += 1;
    }
    m
}

/// Items of `a` not matched in `b`, counting duplicates.
fn minus<T: Ord + Clone>(a: &BTreeMap<T, usize>, b: &BTreeMap<T, usize>) -> Vec<T> {
    let mut out = Vec::new();
    for (k, n) in a {
        for _ in *b.get(k).unwrap_or(&0)..*n {
            out.push(k.clone());
        }
    }
    out
}

fn s(v: &Json) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

/// Runs one case; returns its problems (empty when it passes).
fn check(case: &Case, fx: &Fixtures, cov: &mut Coverage) -> Vec<String> {
    let mut errs = Vec::new();
    let policy = build_policy(case);

    if let Some(expected) = &case.expect_policy_errors {
        if case.expect.is_some() {
            errs.push("give `expect` or `expect_policy_errors`, not both".into());
        }
        let got = match &policy {
            Ok(_) => Vec::new(),
            Err(e) => e.clone(),
        };
        let want: BTreeSet<&str> = expected.iter().map(|e| e.path.as_str()).collect();
        let have: BTreeSet<&str> = got.iter().map(|e| e.path.as_str()).collect();
        if want != have {
            errs.push(format!(
                "policy error paths: expected {want:?}, got {have:?}\n    errors: {got:#?}"
            ));
        }
        for e in expected {
            let hit = got
                .iter()
                .any(|g| g.path == e.path && g.message.contains(&e.contains));
            if !hit {
                errs.push(format!(
                    "no policy error at {} whose message contains {:?}",
                    e.path, e.contains
                ));
            }
        }
        return errs;
    }

    let Some(expect) = &case.expect else {
        return vec!["the case has neither `expect` nor `expect_policy_errors`".into()];
    };
    let policy = match policy {
        Ok(p) => p,
        Err(e) => return vec![format!("the case's policy is rejected: {e:#?}")],
    };
    let manifest = match build_manifest(case) {
        Ok(m) => m,
        Err(e) => return vec![e],
    };
    let table = match build_table(case, fx) {
        Ok(t) => t,
        Err(e) => return vec![e],
    };
    let (history, as_of) = match build_history(case) {
        Ok(h) => h,
        Err(e) => return vec![e],
    };
    let lookups = Lookups::new(
        &table,
        Some(HistoryAsOf {
            history: &history,
            as_of: &as_of,
        }),
    );
    let bytes = serde_json::to_vec(&manifest).expect("serialise manifest");
    let resumptions = match build_resumptions(case) {
        Ok(r) => r,
        Err(e) => return vec![e],
    };
    let decision = match process_with(&policy, lookups, &bytes, &Limits::default(), &resumptions) {
        Ok((_, d)) => d,
        Err(e) => return vec![format!("the manifest is dead-lettered: {e}")],
    };
    let d = serde_json::to_value(&decision).expect("decision serialises");
    cov.cases += 1;
    // The direct writer (what the adapters emit) writes the serde serialiser's bytes, also with a
    // `decided_at` (tests/json_writer.rs does the same on generated decisions).
    let mut stamped = decision.clone();
    for at in [None, Timestamp::from_unix_nanos(1_795_838_400_123_456_700)] {
        stamped.decided_at = at;
        let mut direct = Vec::new();
        stamped.write_json(&mut direct);
        let want = serde_json::to_vec(&stamped).expect("decision serialises");
        if direct != want {
            errs.push(format!(
                "write_json differs from serde_json:\n  {}\n  {}",
                String::from_utf8_lossy(&direct),
                String::from_utf8_lossy(&want)
            ));
        }
        // `process_json` (what `score` and `serve` run) writes the same bytes without building the
        // decision, appending to what the buffer holds, and returns its verdict.
        let mut written = b"before".to_vec();
        match process_json(
            &policy,
            lookups,
            &bytes,
            &Limits::default(),
            &resumptions,
            at.as_ref(),
            &mut written,
        ) {
            Ok((m, v)) => {
                if written[6..] != want[..] || !written.starts_with(b"before") {
                    errs.push(format!(
                        "process_json differs from the decision's JSON:\n  {}\n  {}",
                        String::from_utf8_lossy(&written),
                        String::from_utf8_lossy(&want)
                    ));
                }
                let from_decision = (
                    decision.score,
                    decision.band,
                    decision.action,
                    decision.lane,
                    decision.front_of_line,
                    decision.random_exam,
                    decision.watchlist_hit,
                    decision.fast_missing,
                    decision.importer_standing,
                    decision.priority,
                );
                let from_verdict = (
                    v.score,
                    v.band,
                    v.action,
                    v.lane,
                    v.front_of_line,
                    v.random_exam,
                    v.watchlist_hit,
                    v.fast_missing,
                    v.importer_standing,
                    v.priority(&m, &resumptions),
                );
                if from_decision != from_verdict {
                    errs.push(format!(
                        "process_json's verdict {from_verdict:?} is not the decision's {from_decision:?}"
                    ));
                }
            }
            Err(e) => errs.push(format!("process_json dead-letters the manifest: {e}")),
        }
    }
    cov.priorities.extend(d["priority"].as_u64());

    let mut field = |name: &str, want: Json, got: &Json| {
        if &want != got {
            errs.push(format!("{name}: expected {want}, got {got}"));
        }
    };
    field("score", Json::from(expect.score), &d["score"]);
    field("band", Json::from(expect.band.as_str()), &d["band"]);
    field("action", Json::from(expect.action.as_str()), &d["action"]);
    field("lane", Json::from(expect.lane.as_str()), &d["lane"]);
    field(
        "fast.eligible",
        Json::from(expect.fast.eligible),
        &d["fast"]["eligible"],
    );
    field(
        "front_of_line",
        Json::from(expect.front_of_line),
        &d["front_of_line"],
    );
    field(
        "random_exam",
        Json::from(expect.random_exam),
        &d["random_exam"],
    );
    field(
        "watchlist_hit",
        Json::from(expect.watchlist_hit),
        &d["watchlist_hit"],
    );
    field(
        "manifest_id",
        manifest["manifest_id"].clone(),
        &d["manifest_id"],
    );
    field(
        "port_of_entry",
        manifest["port_of_entry"].clone(),
        &d["port_of_entry"],
    );
    field(
        "policy_version",
        Json::from(&*policy.version),
        &d["policy_version"],
    );
    field(
        "priority",
        expect.priority.map_or(Json::Null, Json::from),
        &d["priority"],
    );

    if let Some(w) = &expect.history_as_of {
        let got = d.get("history_as_of");
        let want = (w != "none").then(|| {
            serde_json::to_value(Watermark::parse(w).expect("expect.history_as_of parses"))
                .expect("a watermark serialises")
        });
        if got != want.as_ref() {
            errs.push(format!("history_as_of: expected {want:?}, got {got:?}"));
        }
    }

    let missing: Vec<String> = d["fast"]["missing"]
        .as_array()
        .map(|a| a.iter().map(s).collect())
        .unwrap_or_default();
    let want_missing: BTreeSet<&str> = expect.fast.missing.iter().map(String::as_str).collect();
    let have_missing: BTreeSet<&str> = missing.iter().map(String::as_str).collect();
    if want_missing != have_missing || missing.len() != have_missing.len() {
        errs.push(format!(
            "fast.missing: expected {want_missing:?}, got {missing:?}"
        ));
    }
    cov.fast_missing.extend(missing.iter().cloned());

    let reasons = d["reasons"].as_array().cloned().unwrap_or_default();
    let got_reasons: Vec<(String, i64)> = reasons
        .iter()
        .map(|r| (s(&r["rule"]), r["points"].as_i64().unwrap_or(i64::MIN)))
        .collect();
    let (want_r, have_r) = (multiset(&expect.reasons), multiset(&got_reasons));
    if want_r != have_r {
        errs.push(format!(
            "reasons: missing {:?}, unexpected {:?}",
            minus(&want_r, &have_r),
            minus(&have_r, &want_r)
        ));
    }
    cov.rules.extend(got_reasons.iter().map(|r| r.0.clone()));
    let sum: i64 = got_reasons.iter().map(|r| r.1).sum();
    if d["score"].as_i64() != Some(sum) {
        errs.push(format!(
            "reasons' points sum to {sum}, but score is {}",
            d["score"]
        ));
    }
    for (rule, text) in &expect.details {
        let hit = reasons
            .iter()
            .any(|r| s(&r["rule"]) == *rule && s(&r["detail"]).contains(text.as_str()));
        if !hit {
            errs.push(format!("no {rule} reason whose detail contains {text:?}"));
        }
    }

    let got_parties: Vec<(String, String, String)> = d["parties"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| (s(&p["role"]), s(&p["id"]), s(&p["standing"])))
        .collect();
    let (want_p, have_p) = (multiset(&expect.parties), multiset(&got_parties));
    if want_p != have_p {
        errs.push(format!(
            "parties: missing {:?}, unexpected {:?}",
            minus(&want_p, &have_p),
            minus(&have_p, &want_p)
        ));
    }

    if !errs.is_empty() {
        errs.push(format!(
            "decision: {}",
            serde_json::to_string_pretty(&d).unwrap_or_default()
        ));
    }
    errs
}

#[test]
fn golden_cases() {
    let only = std::env::var("GOLDEN_CASE").ok();
    let fx = Fixtures::load();
    let mut files: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("tests/golden exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no case files in tests/golden");

    let mut cov = Coverage::default();
    let mut report = String::new();
    let (mut ran, mut failed) = (0, 0);
    for file in &files {
        let rel = file.strip_prefix(golden_dir()).unwrap_or(file).display();
        let parsed: CaseFile = match toml::from_str(&read(file)) {
            Ok(c) => c,
            Err(e) => {
                failed += 1;
                let _ = writeln!(report, "\n=== golden/{rel}: not a valid case file: {e}");
                continue;
            }
        };
        let mut names = BTreeSet::new();
        for case in &parsed.case {
            if !names.insert(case.name.as_str()) {
                failed += 1;
                let _ = writeln!(
                    report,
                    "\n=== golden/{rel}: duplicate case name {}",
                    case.name
                );
            }
            if only.as_deref().is_some_and(|n| n != case.name) {
                continue;
            }
            ran += 1;
            let problems = check(case, &fx, &mut cov);
            if !problems.is_empty() {
                failed += 1;
                let _ = writeln!(
                    report,
                    "\n=== golden/{rel} :: {} — {}",
                    case.name,
                    case.description.trim()
                );
                for p in problems {
                    let _ = writeln!(report, "  {}", p.replace('\n', "\n  "));
                }
            }
        }
    }
    assert!(ran > 0, "no golden case ran (GOLDEN_CASE={only:?})");
    assert!(
        failed == 0,
        "{failed} of {ran} golden cases failed:\n{report}"
    );
    if only.is_none() {
        let uncovered: Vec<_> = ALL_RULES
            .iter()
            .filter(|r| !cov.rules.contains(**r))
            .collect();
        assert!(
            uncovered.is_empty(),
            "no golden case produces the rules {uncovered:?}"
        );
        let unmet: Vec<_> = ALL_FAST_CONDITIONS
            .iter()
            .filter(|c| !cov.fast_missing.contains(**c))
            .collect();
        assert!(
            unmet.is_empty(),
            "no golden case reports the FAST conditions {unmet:?} as missing"
        );
        assert_eq!(
            cov.priorities,
            BTreeSet::from([1, 2, 3, 4]),
            "the golden cases must give every resumption priority"
        );
    }
    eprintln!("{ran} golden cases passed ({} decided)", cov.cases);
}

#[test]
fn driver_helpers_work() {
    // The plumbing the cases rely on: merge patch, path edits, TOML deep merge.
    let mut m = serde_json::json!({"a": {"b": 1, "c": [1, 2]}, "d": 4});
    merge_patch(
        &mut m,
        &serde_json::json!({"a": {"b": null, "e": 5}, "d": [9]}),
    );
    assert_eq!(m, serde_json::json!({"a": {"c": [1, 2], "e": 5}, "d": [9]}));
    *slot(&mut m, &parse_path("a.c[1]"), "a.c[1]") = Json::from(7);
    *slot(&mut m, &parse_path("a.c[2]"), "a.c[2]") = Json::from(8);
    *slot(&mut m, &parse_path("x.y"), "x.y") = Json::from("z");
    remove_path(&mut m, "a.c[0]");
    assert_eq!(
        m,
        serde_json::json!({"a": {"c": [7, 8], "e": 5}, "d": [9], "x": {"y": "z"}})
    );
    let mut t: Toml = "[a]\nb = 1\nc = [1]\n[a.d]\ne = 2"
        .parse::<toml::Table>()
        .unwrap()
        .into();
    let o: Toml = "[a]\nc = [2]\n[a.d]\nf = 3"
        .parse::<toml::Table>()
        .unwrap()
        .into();
    merge_toml(&mut t, &o);
    let want: Toml = "[a]\nb = 1\nc = [2]\n[a.d]\ne = 2\nf = 3"
        .parse::<toml::Table>()
        .unwrap()
        .into();
    assert_eq!(t, want);
}
