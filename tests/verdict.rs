//! The counts-only path agrees with the full decision: on generated traffic (`traffic::gen`), for the
//! default policy and a candidate that moves the high band and the revalidation period (each with and
//! without the party history), and for the default policy plus the learned model (`policy-kcs.toml`),
//! `score::verdict` gives every field the what-if replay and the tallies read (action, lane, band, score,
//! front of line, random exam, watch-list hit, FAST conditions, importer standing, history points,
//! business-resumption priority) exactly as the `Decision` of `score::decide`. And a watch-list and
//! vague-term screen recorded under one policy (`score::Screen`, what the replay shares between its two
//! policies) changes no decision under another, whether or not that one's tables are the same.

use std::path::Path;
use std::sync::Arc;

use borderlane::load::policy::{default_policy, load, DEFAULT_POLICY};
use borderlane::traffic::gen::{field_outcomes, GenConfig, Generator, Record};
use borderlane_core::decision::{Action, Lane, Rule};
use borderlane_core::history::{History, HistoryAsOf, Position, Watermark};
use borderlane_core::policy::CompiledPolicy;
use borderlane_core::resumption::{self, Declaration, Resumptions};
use borderlane_core::score::{
    decide, decide_with, evaluate_points, evaluate_screened, process_json, resolve, verdict,
    Lookups, PartyFact, PartyFacts, Screen,
};
use borderlane_core::table::PartnerTable;
use borderlane_core::time::Timestamp;
use borderlane_core::wire::{Limits, Manifest};

struct Traffic {
    manifests: Vec<Manifest>,
    table: PartnerTable,
    history: History,
    as_of: Arc<Watermark>,
    /// Declarations at the busiest ports over the first half of the window.
    resumptions: Resumptions,
}

fn traffic(policy: &CompiledPolicy) -> Traffic {
    let g = Generator::new(
        GenConfig {
            seed: 17,
            partners: 3_000,
            span_secs: 20 * 86_400,
            ..GenConfig::default()
        },
        policy,
    );
    let manifests: Vec<Manifest> = (0..6_000)
        .filter_map(|i| match g.record(i) {
            Record::Good(m) => Some(*m),
            Record::Bad { .. } => None,
        })
        .collect();
    let table = g.partner_table();
    let history = History::new();
    let mut as_of = Watermark::default();
    for (i, o) in field_outcomes(&g, policy, &table, &manifests)
        .iter()
        .enumerate()
    {
        history.insert(
            Position {
                partition: 0,
                offset: i as u64,
            },
            o,
        );
        as_of.advance(0, i as u64 + 1);
    }
    let ts = |s| Timestamp::parse(s).expect("timestamp");
    let resumptions = Resumptions::new(manifests.iter().take(200).map(|m| Declaration {
        port: m.port_of_entry,
        declared_at: ts("2026-11-28T00:00:00Z"),
        until: ts("2026-12-08T00:00:00Z"),
        reason: "test".into(),
        declared_by: "test".into(),
    }));
    Traffic {
        manifests,
        table,
        history,
        as_of: Arc::new(as_of),
        resumptions,
    }
}

/// What the traffic exercised, so that agreement is not agreement on nothing.
#[derive(Default, Debug)]
struct Seen {
    exams: usize,
    fast: usize,
    watch: usize,
    random: usize,
    front: usize,
    history: usize,
    model: usize,
    priority: usize,
}

fn check(policy: &CompiledPolicy, t: &Traffic, with_history: bool) -> Seen {
    let lookups = Lookups::new(
        &t.table,
        with_history.then_some(HistoryAsOf {
            history: &t.history,
            as_of: &t.as_of,
        }),
    );
    let mut seen = Seen::default();
    for m in &t.manifests {
        let d = decide_with(policy, lookups, m, &t.resumptions);
        let v = verdict(policy, lookups, m);
        let id = &m.manifest_id;
        assert_eq!(v.action, d.action, "{id}: action");
        assert_eq!(v.lane, d.lane, "{id}: lane");
        assert_eq!(v.band, d.band, "{id}: band");
        assert_eq!(v.score, d.score, "{id}: score");
        assert_eq!(v.front_of_line, d.front_of_line, "{id}: front of line");
        assert_eq!(v.random_exam, d.random_exam, "{id}: random exam");
        assert_eq!(v.watchlist_hit, d.watchlist_hit, "{id}: watch list");
        assert_eq!(v.fast_missing, d.fast_missing, "{id}: FAST conditions");
        assert_eq!(v.importer_standing, d.importer_standing, "{id}: importer");
        let history_points = d.reasons.iter().any(|r| {
            r.points > 0 && matches!(r.rule, Rule::HistoryDiscrepancy | Rule::HistorySeizure)
        });
        assert_eq!(v.history_points, history_points, "{id}: history points");
        // The rule of docs/wire.md, from the decision's own importer standing.
        let priority = t
            .resumptions
            .applies(m.port_of_entry, &m.filed_at)
            .map(|_| resumption::priority(d.importer_standing));
        assert_eq!(d.priority, priority, "{id}: priority");
        assert_eq!(
            v.priority(m, &t.resumptions),
            priority,
            "{id}: verdict's priority"
        );
        // What `score` and `serve` emit (`process_json`, no decision built) is the decision's JSON byte for
        // byte, appended to what the buffer holds, with the decision's verdict.
        let bytes = serde_json::to_vec(m).expect("manifest serialises");
        let at = Timestamp::parse("2026-12-05T12:00:00.123456Z").expect("timestamp");
        let mut stamped = d.clone();
        stamped.decided_at = Some(at);
        let mut want = b"earlier".to_vec();
        stamped.write_json(&mut want);
        let mut got = b"earlier".to_vec();
        let (parsed, written) = process_json(
            policy,
            lookups,
            &bytes,
            &Limits::default(),
            &t.resumptions,
            Some(&at),
            &mut got,
        )
        .expect("a generated manifest is decided");
        assert!(got == want, "{id}: process_json's bytes differ");
        assert_eq!(&parsed, m, "{id}: process_json's manifest");
        assert_eq!(written, v, "{id}: process_json's verdict");
        // The reasons still sum to the score (the decision is built from the same evaluation).
        assert_eq!(
            d.reasons.iter().map(|r| r.points).sum::<i32>(),
            d.score,
            "{id}"
        );
        seen.exams += (d.action != Action::Release) as usize;
        seen.fast += (d.lane == Lane::Fast) as usize;
        seen.watch += d.watchlist_hit as usize;
        seen.random += d.random_exam as usize;
        seen.front += d.front_of_line as usize;
        seen.history += history_points as usize;
        seen.model += d.reasons.iter().any(|r| r.rule == Rule::Model) as usize;
        seen.priority += d.priority.is_some() as usize;
    }
    seen
}

fn exercised(seen: &Seen) {
    assert!(
        seen.exams > 0
            && seen.fast > 0
            && seen.watch > 0
            && seen.random > 0
            && seen.front > 0
            && seen.priority > 0,
        "{seen:?}"
    );
}

#[test]
fn verdict_agrees_with_the_decision_default_and_candidate() {
    let baseline = default_policy();
    let candidate = CompiledPolicy::from_toml(
        &DEFAULT_POLICY
            .replace("high = 190", "high = 200")
            .replace("revalidation_days = 1461", "revalidation_days = 900"),
    )
    .expect("candidate policy");
    assert_ne!(baseline.version, candidate.version, "the candidate differs");
    let t = traffic(&baseline);
    for policy in [&baseline, &candidate] {
        for with_history in [false, true] {
            let seen = check(policy, &t, with_history);
            exercised(&seen);
            assert_eq!(seen.history > 0, with_history, "{seen:?}");
        }
    }
}

#[test]
fn verdict_agrees_with_the_decision_with_the_model() {
    let policy = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policy-kcs.toml"))
        .expect("policy-kcs.toml");
    let t = traffic(&policy);
    // policy-kcs.toml has no [history] section: the history is given and not read.
    let seen = check(&policy, &t, true);
    exercised(&seen);
    assert!(seen.model > 0 && seen.history == 0, "{seen:?}");
}

/// Decides every manifest under `candidate` reading a screen recorded under `baseline`, against
/// `decide`; returns how many decisions had a watch-list hit and how many a vague description.
fn screened_agrees(
    baseline: &CompiledPolicy,
    candidate: &CompiledPolicy,
    t: &Traffic,
) -> (usize, usize) {
    let (mut watch, mut vague) = (0, 0);
    for m in &t.manifests {
        let mut screen = Screen::recording();
        let mut cand = None;
        // The baseline records the screen, the candidate reads it.
        for (policy, which) in [(baseline, "baseline"), (candidate, "candidate")] {
            let views = resolve(policy, &t.table, m);
            let facts: PartyFacts = views.iter().map(PartyFact::from).collect();
            let d = evaluate_screened(policy, m, &facts, None, &mut screen)
                .into_decision(policy, m, views, None);
            assert_eq!(d, decide(policy, &t.table, m), "{}: {which}", m.manifest_id);
            cand = Some(d);
        }
        let cand = cand.expect("the candidate's decision");
        watch += cand.watchlist_hit as usize;
        vague += cand
            .reasons
            .iter()
            .any(|r| r.rule == Rule::VagueDescription) as usize;
    }
    (watch, vague)
}

#[test]
fn a_screen_changes_no_decision() {
    let baseline = default_policy();
    let t = traffic(&baseline);
    let candidate = |text: String| CompiledPolicy::from_toml(&text).expect("candidate policy");
    // Same watch list and vague terms: the candidate reads the baseline's matches.
    let same = candidate(DEFAULT_POLICY.replace("high = 190", "high = 200"));
    assert_eq!(same.screening_key, baseline.screening_key);
    let (watch, vague) = screened_agrees(&baseline, &same, &t);
    assert!(watch > 0 && vague > 0, "watch {watch}, vague {vague}");
    // A listed name removed, a vague term removed, the vague terms reordered: each matches differently,
    // so the screen must not be read.
    let unlisted = candidate(DEFAULT_POLICY.replace(
        r#"{ name = "Fantasma Exports S.A.", why = "shell exporter named in a seizure" },"#,
        "",
    ));
    let fewer_terms = candidate(DEFAULT_POLICY.replace(r#""FAK", "#, ""));
    let reordered = candidate(DEFAULT_POLICY.replace(
        r#"vague_terms = ["FAK", "freight of all kinds", "#,
        r#"vague_terms = ["freight of all kinds", "FAK", "#,
    ));
    for (other, differs) in [(&unlisted, true), (&fewer_terms, true), (&reordered, false)] {
        assert_ne!(other.screening_key, baseline.screening_key);
        let (w, v) = screened_agrees(&baseline, other, &t);
        screened_agrees(other, &baseline, &t);
        // The traffic has what the candidate matches differently (a reused screen would have shown).
        assert_eq!(
            (w, v) != (watch, vague),
            differs,
            "{w} {v} against {watch} {vague}"
        );
    }
}

/// A candidate that moves only what concludes (bands, actions, ports, random compliance, its name) scores
/// every manifest alike: its verdicts concluded from the baseline's points (what the replay does) are its
/// own; one that moves a weight does not share them.
#[test]
fn points_shared_by_a_candidate_that_only_concludes_differently() {
    let baseline = default_policy();
    let t = traffic(&baseline);
    let candidate = |text: String| CompiledPolicy::from_toml(&text).expect("candidate policy");
    let concluding = [
        DEFAULT_POLICY.replace("high = 190", "high = 200"),
        DEFAULT_POLICY.replace("medium = 100", "medium = 60"),
        DEFAULT_POLICY.replace(r#"medium = "document_review""#, r#"medium = "nii_scan""#),
        DEFAULT_POLICY.replace("{ at = 280, ", "{ at = 250, "),
        DEFAULT_POLICY.replace(
            r#"name = "Laredo", border = "south", fast_lanes = true"#,
            r#"name = "Laredo", border = "south", fast_lanes = false"#,
        ),
        DEFAULT_POLICY.replace(
            "rates.truck = { non_partner = 0.03, certified = 0.015 }",
            "rates.truck = { non_partner = 0.2, certified = 0.1 }",
        ),
        DEFAULT_POLICY.replace("seed = 20261128", "seed = 7"),
        DEFAULT_POLICY.replace(r#"name = "borderlane default""#, r#"name = "what if""#),
    ];
    let scoring = [
        DEFAULT_POLICY.replace("vague_points = 35", "vague_points = 40"),
        DEFAULT_POLICY.replace(
            r#"{ name = "Fantasma Exports S.A.", why = "shell exporter named in a seizure" },"#,
            "",
        ),
    ];
    for (text, shares) in concluding
        .into_iter()
        .map(|t| (t, true))
        .chain(scoring.into_iter().map(|t| (t, false)))
    {
        let cand = candidate(text);
        assert_ne!(cand.version, baseline.version, "the candidate differs");
        assert_eq!(baseline.same_points(&cand), shares, "{}", cand.version);
        if !shares {
            continue;
        }
        let mut moved = 0;
        for m in &t.manifests {
            let facts = borderlane_core::score::resolve_facts(&baseline, &t.table, m);
            let points = evaluate_points(&baseline, m, &facts, None, &mut Screen::default());
            let own = verdict(&cand, &t.table, m);
            assert_eq!(points.verdict(&cand, m, &facts), own, "{}", m.manifest_id);
            moved += (own != verdict(&baseline, &t.table, m)) as usize;
        }
        // The change shows on this traffic (so agreement is not agreement on nothing); a new name moves
        // nothing.
        assert_eq!(
            moved > 0,
            cand.doc.meta.name == baseline.doc.meta.name,
            "{}",
            cand.version
        );
    }
}
