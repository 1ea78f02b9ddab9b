//! `borderlane score --outcomes FILE [--history-as-of W]`: the party history from a file of exam outcomes,
//! and the exact reproduction of a decision from its `history_as_of` watermark — including one made by an
//! instance whose history came from several topic partitions and already held later records.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use borderlane::load::policy::default_policy;
use borderlane_core::history::{History, HistoryAsOf, Position, Watermark};
use borderlane_core::outcome::{parse_outcome, Form};
use borderlane_core::score::{process, Lookups};
use borderlane_core::table::PartnerTable;
use borderlane_core::wire::Limits;

const MANIFEST: &str = include_str!("../src/core/tests/golden/bases/south_truck.json");

fn record(id: &str, result: &str, day: &str) -> String {
    format!(
        r#"{{"manifest_id": "{id}", "revision": 0, "result": "{result}", "examined_at": "2026-{day}T10:00:00Z", "port": "2304", "officer": "o1", "parties": [{{"role": "importer", "id": "12-3456789AB"}}], "causes": ["band"]}}"#
    )
}

struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir(name: &str) -> Dir {
    let d = std::env::temp_dir().join(format!("borderlane-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    Dir(d)
}

/// Runs `score --no-timestamp` on the base manifest with `extra` arguments; returns the decision line.
fn score(d: &Dir, extra: &[&str]) -> String {
    let manifest = d.0.join("m.ndjson");
    std::fs::write(
        &manifest,
        serde_json::to_string(&serde_json::from_str::<serde_json::Value>(MANIFEST).unwrap())
            .unwrap()
            + "\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_borderlane"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["score", "--no-timestamp", "--input"])
        .arg(&manifest)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim_end()
        .to_string()
}

#[test]
fn score_reads_outcomes_and_replays_a_watermark() {
    let d = dir("score-outcomes");
    let file = d.0.join("outcomes.ndjson");
    // A discrepancy, a bad line, then a seizure.
    std::fs::write(
        &file,
        format!(
            "{}\n{{\"manifest_id\": 1}}\n{}\n",
            record("P-1", "discrepancy", "03-01"),
            record("P-2", "seizure", "04-01")
        ),
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let all: serde_json::Value = serde_json::from_str(&score(&d, &["--outcomes", path])).unwrap();
    assert_eq!(all["history_as_of"], serde_json::json!({"0": 3}));
    assert_eq!(all["score"], 160);
    let first: serde_json::Value =
        serde_json::from_str(&score(&d, &["--outcomes", path, "--history-as-of", "0:1"])).unwrap();
    assert_eq!(first["history_as_of"], serde_json::json!({"0": 1}));
    assert_eq!(first["score"], 40);
    // Without outcomes, a policy with [history] reads an empty history and says so.
    let none: serde_json::Value = serde_json::from_str(&score(&d, &[])).unwrap();
    assert_eq!(none["history_as_of"], serde_json::json!({}));
    assert_eq!(none["score"], 0);
}

#[test]
fn a_topic_export_reproduces_an_instances_decision_byte_for_byte() {
    // An instance follows three partitions; when it decides, it has applied more than its watermark says
    // it counted (records arriving while it scored): only the watermark matters.
    let policy = default_policy();
    let history = History::new();
    let records = [
        (
            Position {
                partition: 0,
                offset: 0,
            },
            record("P-1", "discrepancy", "01-10"),
        ),
        (
            Position {
                partition: 2,
                offset: 5,
            },
            record("P-2", "no_discrepancy", "02-10"),
        ),
        (
            Position {
                partition: 1,
                offset: 3,
            },
            record("P-3", "seizure", "03-10"),
        ),
        // Applied, but after the decision's watermark.
        (
            Position {
                partition: 1,
                offset: 4,
            },
            record("P-4", "seizure", "04-10"),
        ),
        (
            Position {
                partition: 0,
                offset: 1,
            },
            record("P-1", "seizure", "01-10"),
        ),
    ];
    for (pos, r) in &records {
        let o = parse_outcome(r.as_bytes(), &Limits::default(), Form::Record).unwrap();
        history.insert(*pos, &o);
    }
    let as_of = Arc::new(Watermark::parse("0:1,1:4,2:6").unwrap());
    let table = PartnerTable::new();
    let (_, decision) = process(
        &policy,
        Lookups::new(
            &table,
            Some(HistoryAsOf {
                history: &history,
                as_of: &as_of,
            }),
        ),
        MANIFEST.as_bytes(),
        &Limits::default(),
    )
    .unwrap();
    let live = serde_json::to_string(&decision).unwrap();
    assert!(
        live.contains("\"history_as_of\":{\"0\":1,\"1\":4,\"2\":6}"),
        "{live}"
    );
    // P-3's seizure and P-1's discrepancy count; P-4 and P-1's correction are beyond the watermark.
    assert_eq!(decision.score, 160, "{live}");

    // The topic export: every record with its position, in any order.
    let d = dir("score-export");
    let file = d.0.join("export.ndjson");
    let text: String = records
        .iter()
        .rev()
        .map(|(p, r)| {
            r.replacen(
                '{',
                &format!(
                    r#"{{"position": {{"partition": {}, "offset": {}}}, "#,
                    p.partition, p.offset
                ),
                1,
            ) + "\n"
        })
        .collect();
    std::fs::write(&file, text).unwrap();
    let w = decision.history_as_of.as_ref().unwrap();
    let replay = score(
        &d,
        &[
            "--outcomes",
            file.to_str().unwrap(),
            "--history-as-of",
            &serde_json::to_string(&**w).unwrap(),
        ],
    );
    assert_eq!(replay, live);
    // The whole export counts the correction and P-4 too: a different decision.
    let everything = score(&d, &["--outcomes", file.to_str().unwrap()]);
    assert_ne!(everything, live);
}
