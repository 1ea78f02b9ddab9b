//! Exam outcomes as labels (issue 16 item 4): labelled data from generated traffic decided by the real
//! policy (`generate --outcomes`), `train --outcomes` with the selection correction, `evaluate --outcomes`.
//!
//! The ranking test judges the trained model against the generator's hidden ground truth on held-out
//! manifests — all of them, examined or not — so it can fail: a model that learnt nothing about the planted
//! violators (the truth is per importer) ranks them at AUC ≈ 0.5.

use std::path::{Path, PathBuf};
use std::process::Command;

use borderlane::learn::outcomes::{load, Weighting};
use borderlane::learn::train::{auc, train, Params};
use borderlane::load::policy::default_policy;
use borderlane::traffic::gen::{field_outcomes, partner_lines, GenConfig, Generator, Record};
use borderlane_core::model::Model;
use borderlane_core::table::PartnerTable;
use borderlane_core::wire::Manifest;

struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("borderlane-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn p(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

fn write_lines<T: serde::Serialize>(path: &Path, items: impl IntoIterator<Item = T>) {
    let mut text = Vec::new();
    for i in items {
        serde_json::to_writer(&mut text, &i).unwrap();
        text.push(b'\n');
    }
    std::fs::write(path, text).unwrap();
}

/// Generated traffic decided by the embedded policy: (generator, every manifest, outcomes file written,
/// partners file written).
fn field(
    d: &Dir,
    seed: u64,
    partners: usize,
    manifests: u64,
    days: u32,
) -> (Generator, Vec<Manifest>) {
    let policy = default_policy();
    let g = Generator::new(
        GenConfig {
            seed,
            partners,
            span_secs: i64::from(days) * 86_400,
            ..GenConfig::default()
        },
        &policy,
    );
    let ms: Vec<Manifest> = (0..manifests)
        .filter_map(|i| match g.record(i) {
            Record::Good(m) => Some(*m),
            Record::Bad { .. } => None,
        })
        .collect();
    let table = PartnerTable::new();
    for p in g.partners() {
        table.upsert(p.clone());
    }
    let outcomes = field_outcomes(&g, &policy, &table, &ms);
    write_lines(&d.p("outcomes.ndjson"), &outcomes);
    let mut text = Vec::new();
    for l in partner_lines(&g) {
        text.extend(l);
        text.push(b'\n');
    }
    std::fs::write(d.p("partners.ndjson"), text).unwrap();
    (g, ms)
}

/// A manifest's model score: its riskiest line's probability.
fn score(model: &Model, m: &Manifest) -> f64 {
    m.shipments
        .iter()
        .filter_map(|s| model.riskiest_line(m, s).map(|(_, p)| p))
        .fold(f64::NEG_INFINITY, f64::max)
}

#[test]
fn outcome_trained_model_ranks_planted_violators_on_held_out_manifests() {
    let d = Dir::new("labels-rank");
    let (g, ms) = field(&d, 7, 4_000, 40_000, 7);
    // Held out: every other manifest; its outcomes stay in the file and are ignored (no manifest).
    let (train_ms, held): (Vec<_>, Vec<_>) = ms.iter().enumerate().partition(|(i, _)| i % 2 == 0);
    write_lines(&d.p("train.ndjson"), train_ms.iter().map(|(_, m)| m));
    let (data, sel, report) = load(
        &d.p("train.ndjson"),
        &d.p("outcomes.ndjson"),
        &default_policy(),
        &d.p("partners.ndjson"),
        Weighting::Ipw,
    )
    .unwrap();
    eprint!("{}", report.render());
    // Only examined manifests are labelled; the held-out half's outcomes have no manifest here.
    assert_eq!(
        report.rows + report.manifests_unlabelled,
        train_ms.len() as u64
    );
    assert_eq!(
        report.rows + report.outcomes_without_manifest,
        report.outcome_records
    );
    assert!(report.outcomes_without_manifest > 0);
    assert_eq!(report.random_mismatches, 0, "re-decided draws agree");
    // Random-only exams carry 1/rate of their stratum, everything else 1.
    use borderlane::learn::outcomes::Selected;
    for i in 0..data.manifests.len() {
        let want = match sel.selected[i] {
            Selected::RandomOnly => 1.0 / sel.rate[i],
            _ => 1.0,
        };
        assert_eq!(data.weights[i], want, "row {i}: {:?}", sel.selected[i]);
        assert_eq!(
            sel.rate[i] == 0.0,
            sel.stratum[i].ends_with("/validated"),
            "{}",
            sel.stratum[i]
        );
    }
    assert!(report.random_only > 0);
    // Validated importers are exempt: no random exam in their strata.
    for (name, st) in &report.strata {
        if name.ends_with("/validated") {
            assert_eq!((st.random, st.rate), (0, 0.0), "{name}");
            assert!(st.ipw_estimate().is_none());
        }
    }
    assert!(report.effective_sample_size < report.rows as f64);
    let params = Params {
        trees: 60,
        party_tables: true,
        ..Params::default()
    };
    let trained = train(&data, &params, false).unwrap();
    let scores: Vec<f64> = held.iter().map(|(_, m)| score(&trained.model, m)).collect();
    let planted: Vec<u8> = held
        .iter()
        .map(|(_, m)| u8::from(g.truth(m).is_some()))
        .collect();
    let rogue: Vec<u8> = held
        .iter()
        .map(|(_, m)| u8::from(g.has_rogue_importer(m)))
        .collect();
    let (a_planted, a_rogue) = (auc(&scores, &planted), auc(&scores, &rogue));
    eprintln!(
        "{} rows; held-out {} manifests (examined or not): AUC planted violations {a_planted:.4} ({} planted), \
         rogue importer {a_rogue:.4}",
        data.manifests.len(),
        held.len(),
        planted.iter().filter(|p| **p == 1).count(),
    );
    // Measured 0.608 and 0.656 at this seed (debug and release agree: single-threaded, seeded); a model
    // that learnt nothing about the planted violators sits at 0.5.
    assert!(a_planted > 0.56, "AUC planted violations {a_planted}");
    assert!(a_rogue > 0.6, "AUC rogue importers {a_rogue}");
}

#[test]
fn outcome_training_is_deterministic_by_seed_and_replaced_outcomes_count_once() {
    let d = Dir::new("labels-det");
    let (_, ms) = field(&d, 11, 1_000, 4_000, 2);
    write_lines(&d.p("m.ndjson"), &ms);
    // A corrected record for the first outcome: replaces it (label from the later one).
    let text = std::fs::read_to_string(d.p("outcomes.ndjson")).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let mut fixed = first.clone();
    let hit = first["result"] != "no_discrepancy";
    fixed["result"] = serde_json::json!(if hit { "no_discrepancy" } else { "seizure" });
    fixed["findings"] = serde_json::json!(if hit { vec![] } else { vec!["CONTRABAND"] });
    std::fs::write(
        d.p("outcomes.ndjson"),
        format!("{text}{}\n", serde_json::to_string(&fixed).unwrap()),
    )
    .unwrap();
    let policy = default_policy();
    let (data, _, report) = load(
        &d.p("m.ndjson"),
        &d.p("outcomes.ndjson"),
        &policy,
        &d.p("partners.ndjson"),
        Weighting::Ipw,
    )
    .unwrap();
    assert_eq!(report.outcomes_replaced, 1);
    assert_eq!(report.outcome_records, text.lines().count() as u64 + 1);
    assert_eq!(report.rows, text.lines().count() as u64);
    assert_eq!(report.outcomes_without_manifest, 0);
    assert_eq!(report.manifests_unlabelled, ms.len() as u64 - report.rows);
    let i = data
        .manifests
        .iter()
        .position(|m| m.manifest_id.as_str() == first["manifest_id"].as_str().unwrap())
        .unwrap();
    assert_eq!(data.labels[i], u8::from(!hit), "the later record wins");

    let params = Params {
        trees: 10,
        party_tables: true,
        ..Params::default()
    };
    let a = serde_json::to_string(&train(&data, &params, false).unwrap().doc).unwrap();
    let b = serde_json::to_string(&train(&data, &params, false).unwrap().doc).unwrap();
    assert!(a == b, "two trainings with seed {} differ", params.seed);
    let c = serde_json::to_string(
        &train(
            &data,
            &Params {
                seed: params.seed + 1,
                ..params.clone()
            },
            false,
        )
        .unwrap()
        .doc,
    )
    .unwrap();
    assert_ne!(a, c, "the seed must matter");
    assert!(a.contains("\"importer\""), "party tables are in the model");
}

fn bin(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_borderlane"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn cli_generate_train_evaluate_with_outcomes() {
    let d = Dir::new("labels-cli");
    let s = |f: &str| d.p(f).to_str().unwrap().to_string();
    let out = bin(&[
        "generate",
        "--seed",
        "5",
        "--partners",
        "1000",
        "--manifests",
        "3000",
        "--span-days",
        "2",
        "--out-partners",
        &s("p.ndjson"),
        "--out-manifests",
        &s("m.ndjson"),
        "--outcomes",
        &s("o.ndjson"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outcomes = std::fs::read_to_string(d.p("o.ndjson")).unwrap();
    let n = outcomes.lines().count();
    assert!(n > 100 && n < 3000, "{n} outcomes of 3000 manifests");
    let out = bin(&[
        "train",
        "--outcomes",
        &s("o.ndjson"),
        "--partners",
        &s("p.ndjson"),
        "--manifests",
        &s("m.ndjson"),
        "--out",
        &s("model.json"),
        "--trees",
        "10",
        "--quiet",
        "--report",
        &s("report.json"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(&format!("{n} labelled rows")), "{err}");
    assert!(err.contains("n/a (exempt)"), "{err}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.p("report.json")).unwrap()).unwrap();
    assert_eq!(report["rows"], n);
    assert_eq!(report["manifests_unlabelled"], 3000 - n);
    assert_eq!(
        report["strata"]["truck/validated"]["random_estimate"],
        "n/a (exempt)"
    );
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.p("model.json")).unwrap()).unwrap();
    assert_eq!(model["name"], "outcomes-gbt");
    assert_eq!(model["training"]["labels"]["source"], "exam outcomes");
    let out = bin(&[
        "evaluate",
        "--outcomes",
        &s("o.ndjson"),
        "--partners",
        &s("p.ndjson"),
        "--manifests",
        &s("m.ndjson"),
        "--model",
        &s("model.json"),
        "--json",
        &s("eval.json"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("random-exam subset"), "{text}");
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.p("eval.json")).unwrap()).unwrap();
    assert_eq!(eval["all_examined"]["rows"], n);
    assert_eq!(eval["random_exams"]["rows"], report["random"]);
    // The KCS path is unchanged: --labels and --outcomes are exclusive.
    let out = bin(&[
        "train",
        "--labels",
        &s("o.ndjson"),
        "--outcomes",
        &s("o.ndjson"),
        "--partners",
        &s("p.ndjson"),
        "--manifests",
        &s("m.ndjson"),
        "--out",
        &s("x.json"),
    ]);
    assert!(!out.status.success());
}

#[test]
fn a_malformed_outcome_file_reports_every_error_with_its_line() {
    let d = Dir::new("labels-bad");
    let good = r#"{"manifest_id": "M1", "revision": 0, "result": "seizure", "findings": ["CONTRABAND"], "examined_at": "2026-06-01T00:00:00Z", "port": "2304", "officer": "o1", "parties": [{"role": "importer", "id": "I1"}], "causes": ["band"]}"#;
    std::fs::write(
        d.p("o.ndjson"),
        format!(
            "{good}\n{{\"manifest_id\": 1, \"result\": \"lost\"}}\n\n{{not json\n{}\n",
            good.replace("\"band\"", "\"hunch\"")
        ),
    )
    .unwrap();
    std::fs::write(d.p("m.ndjson"), "").unwrap();
    std::fs::write(d.p("p.ndjson"), "").unwrap();
    let err = load(
        &d.p("m.ndjson"),
        &d.p("o.ndjson"),
        &default_policy(),
        &d.p("p.ndjson"),
        Weighting::Ipw,
    )
    .err()
    .expect("a malformed file fails the load")
    .to_string();
    assert!(err.starts_with("3 malformed outcome record(s)"), "{err}");
    assert!(!err.contains("line 1:"), "{err}");
    assert!(
        err.matches("line 2:").count() >= 3,
        "every error of line 2: {err}"
    );
    assert!(
        err.contains("manifest_id") && err.contains("result"),
        "{err}"
    );
    assert!(err.contains("line 4:"), "{err}");
    assert!(err.contains("line 5:") && err.contains("causes"), "{err}");
    // The CLI says the same and fails.
    let out = bin(&[
        "train",
        "--outcomes",
        d.p("o.ndjson").to_str().unwrap(),
        "--partners",
        d.p("p.ndjson").to_str().unwrap(),
        "--manifests",
        d.p("m.ndjson").to_str().unwrap(),
        "--out",
        d.p("x.json").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 5:"), "{stderr}");
}
