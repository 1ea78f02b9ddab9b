//! `scripts/speed-table` — issue 17's before/after table: its summariser (`scripts/speed-table.py`) run on the
//! outputs the tools write (criterion's text, `/usr/bin/time`, loadtest's JSON reports, `scripts/bench-serve`'s
//! text), checked figure by figure; and the script refusing bad arguments before it builds anything. The
//! measurements themselves take a broker and two release builds (minutes), so they are not run here.

use std::path::{Path, PathBuf};
use std::process::Command;

fn scripts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts")
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write fixture");
}

/// The row of `table` whose first cell is `label`, as its cells.
fn row<'a>(table: &'a str, label: &str) -> Vec<&'a str> {
    let line = table
        .lines()
        .find(|l| l.starts_with(&format!("| {label} |")))
        .unwrap_or_else(|| panic!("no row {label:?} in:\n{table}"));
    line.trim_matches('|').split(" | ").map(str::trim).collect()
}

/// A half-load report of loadtest (e83af72's, 2026-12-06 11:01), trimmed to the keys the summary reads: the
/// pipeline's figures at the top level, the passthrough's under "passthrough", each with its share of the
/// broker's GC pauses.
const HALF_LOAD: &str = r#"{"throughput_per_s": 1999.8671414548542, "p50_ms": 3.083, "p99_ms": 11.255, "p999_ms": 101.695, "ratio": {"max": 3.1333875352524196, "max_rate": null, "p50": 1.1568480300187618, "p90": 1.1788799108386736, "p99": 2.3850392032210213, "p999": 5.6250345704961555, "throughput": 0.9999953923061061}, "broker_gc": {"in_flight": 524, "p999_outside_ms": 40.319, "p99_outside_ms": 5.479, "pause_max_ms": 15.357, "pause_total_ms": 147.495, "pauses": 16}, "passthrough": {"throughput_per_s": 1999.8763562729296, "p50_ms": 2.665, "p99_ms": 4.719, "p999_ms": 18.079, "broker_gc": {"in_flight": 394, "p999_outside_ms": 13.831, "p99_outside_ms": 4.383, "pause_max_ms": 14.314, "pause_total_ms": 135.186, "pauses": 15}}}"#;

/// Another (11:21), from a loadtest that also reads the broker's concurrent GC cycles.
const HALF_LOAD_CYCLES: &str = r#"{"throughput_per_s": 1999.7902823359125, "p50_ms": 3.253, "p99_ms": 15.263, "p999_ms": 139.647, "broker_gc": {"cycle_max_ms": 215.861, "cycles": 3, "in_cycle": 537, "in_flight": 954, "p999_outside_all_ms": 7.531, "p999_outside_ms": 7.971, "p99_outside_all_ms": 5.383, "p99_outside_ms": 5.427, "pause_max_ms": 16.735, "pause_total_ms": 181.57000000000002, "pauses": 20}, "ratio": {"p99": 2.347070582807935, "throughput": 0.9999678879961517}, "passthrough": {"throughput_per_s": 1999.8545016713663, "p50_ms": 2.907, "p99_ms": 6.503, "p999_ms": 36.255, "broker_gc": {"cycle_max_ms": 174.462, "cycles": 3, "in_cycle": 856, "in_flight": 497, "p999_outside_all_ms": 6.707, "p999_outside_ms": 21.551, "p99_outside_all_ms": 4.775, "p99_outside_ms": 4.911, "pause_max_ms": 18.135, "pause_total_ms": 177.22400000000002, "pauses": 18}}}"#;

const CRITERION: &str = "\
Benchmarking core/parse: Analyzing
core/parse              time:   [1.9493 µs 2.0584 µs 2.1757 µs]
                        thrpt:  [459.63 Kelem/s 485.81 Kelem/s 513.00 Kelem/s]
                 change:
                        time:   [+21.132% +29.259% +38.380%] (p = 0.00 < 0.05)
                        thrpt:  [−27.735% −22.636% −17.445%]
                        Performance has regressed.
core/parse_serde        time:   [9.0000 µs 9.5000 µs 9.9000 µs]
core/lookups            time:   [270.00 ns 281.20 ns 290.00 ns]
core/score              time:   [1.4000 µs 1.5100 µs 1.6000 µs]
core/serialize          time:   [3.2000 µs 3.2600 µs 3.3000 µs]
core/core_path          time:   [3.2243 µs 3.3703 µs 3.5320 µs]
";

/// The parts of a `loadtest --backlog` JSON report the table reads (figures from two real runs — the
/// pipeline's of one, the passthrough's of another — other fields left out; the scoring threads' CPU split
/// across two groups to check they are summed).
const DRAIN: &str = r#"{
  "backlog": 300000,
  "pipeline": {"target": "pipeline", "answered": 300000, "rate": 66283.2,
    "cpu": {"process_s": 4.64, "other_processes_s": 4.09,
      "groups": [{"name": "scoring", "threads": 1, "cpu_s": 1.2}, {"name": "rdk:broker", "threads": 22, "cpu_s": 1.21},
                 {"name": "scoring", "threads": 1, "cpu_s": 1.17}]}},
  "passthrough": {"target": "passthrough", "answered": 300000, "rate": 198150.4,
    "cpu": {"process_s": 1.59, "other_processes_s": 1.72, "groups": []}},
  "ratio": 0.3345
}"#;

fn loadtest(pipeline: f64, passthrough: f64, p99: (f64, f64), p999: f64) -> String {
    format!(
        r#"{{"throughput_per_s": {pipeline}, "p50_ms": 3.1, "p99_ms": {}, "p999_ms": {p999},
            "passthrough": {{"throughput_per_s": {passthrough}, "p50_ms": 2.9, "p99_ms": {}, "p999_ms": 40.0}},
            "ratio": {{"throughput": {}, "p99": {}}}}}"#,
        p99.0,
        p99.1,
        pipeline / passthrough,
        p99.0 / p99.1
    )
}

#[test]
fn the_summary_reads_every_tools_output() {
    let dir = std::env::temp_dir().join(format!("bl-speed-table-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Round 1 of the "before" build ("aaaaaaa"), rounds 1 and 2 of the "after" one ("bbbbbbb"); the after
    // build's second replay failed (no estimate in its text).
    write(
        &dir,
        "core-aaaaaaa-1.txt",
        &CRITERION.replace("3.3703 µs", "11.000 µs"),
    );
    write(
        &dir,
        "core-bbbbbbb-1.txt",
        &format!("{CRITERION}core/verdict            time:   [500.00 ns 510.00 ns 520.00 ns]\n"),
    );
    write(
        &dir,
        "core-bbbbbbb-2.txt",
        &CRITERION.replace("3.3703 µs", "3.1000 µs"),
    );
    write(
        &dir,
        "replay-bbbbbbb-1.txt",
        "whatif/compare_1000000_manifests_two_policies\n                        time:   [1.4000 s 1.4400 s 1.5000 s]\n",
    );
    write(&dir, "replay-bbbbbbb-2.txt", "error: the bench failed\n");
    write(
        &dir,
        "score-bbbbbbb-1-one.time",
        "wall 2.00 s, user 3.00 s, sys 0.50 s, peak 51200 KB\n",
    );
    write(&dir, "score-bbbbbbb-1-one.count", "800000\n");
    write(
        &dir,
        "saturation-bbbbbbb-1.json",
        &loadtest(30000.0, 120000.0, (7.0, 7.0), 21.0),
    );
    write(
        &dir,
        "half-bbbbbbb-1.json",
        &loadtest(2000.0, 2000.0, (8.0, 6.4), 20.0),
    );
    write(&dir, "half-bbbbbbb-2.json", HALF_LOAD);
    write(&dir, "half-aaaaaaa-1.json", HALF_LOAD_CYCLES);
    // A saturation round whose loadtest failed before writing its report: only its load file exists, and
    // the round keeps its place.
    write(
        &dir,
        "saturation-bbbbbbb-2.load",
        "load_before 1.00 1.00 1.00\nload_after 1.00 1.00 1.00\n",
    );
    // A `score` run that failed: /usr/bin/time still wrote its line (and the script keeps the file aside);
    // a rate from it would be a partial output's.
    write(
        &dir,
        "score-bbbbbbb-2-one.time",
        "Command exited with non-zero status 1\nwall 0.50 s, user 0.40 s, sys 0.05 s, peak 40000 KB\n",
    );
    write(&dir, "score-bbbbbbb-2-one.count", "1000\n");
    write(
        &dir,
        "backlog-bbbbbbb-1.txt",
        "backlog: 300000 outcomes in 9.50 s from start (partner load and group join included): 31579/s\n\
         serve after the backlog: VmHWM: 62 MiB  VmRSS: 58 MiB  cpu 12.2 s\n",
    );
    write(
        &dir,
        "partners-bbbbbbb-1.json",
        r#"{"raw_s": 1.0, "raw_batch_s": 0.65, "table_s": 1.25, "rate_ratio": 0.8, "batch_ratio": 0.52, "table_peak_rss_mib": 275.4}"#,
    );
    write(&dir, "core-bbbbbbb-1.load", "load_before 0.50 0.60 0.70\n");
    // `loadtest --backlog`'s report (the drain line): the after build's round 1; its round 2 and the
    // before build (whose loadtest has no --backlog) wrote only a text file.
    write(&dir, "drain-bbbbbbb-1.json", DRAIN);
    write(
        &dir,
        "drain-bbbbbbb-2.txt",
        "loadtest: error: no output for 60 s\n",
    );
    write(
        &dir,
        "drain-aaaaaaa-1.txt",
        "this build's loadtest has no --backlog\n",
    );

    let out = Command::new("python3")
        .arg(scripts().join("speed-table.py"))
        .arg(&dir)
        .args(["aaaaaaa", "bbbbbbb"])
        .output()
        .expect("python3 runs");
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{table}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert!(table.starts_with("| line (target) | aaaaaaa (before) | bbbbbbb (after) |"));
    // Criterion's middle estimate, in µs whatever its unit; rounds in order; `core/parse` is not taken
    // from `core/parse_serde`.
    assert_eq!(
        row(&table, "`core/parse` (µs)"),
        ["`core/parse` (µs)", "2.058", "2.058 / 2.058"]
    );
    assert_eq!(
        row(&table, "`core/lookups`, 5 parties (µs; ≤ 0.3)")[2],
        "0.281 / 0.281"
    );
    // A bench the before build does not have (`core/verdict` is newer than 917ca7d).
    assert_eq!(
        row(
            &table,
            "`core/verdict`, the rules alone (µs; scoring ≤ 0.1)"
        )[1..],
        ["–", "0.510 / –"]
    );
    assert_eq!(
        row(&table, "**core path** (µs; ≤ 2 = 500 k/s a core)")[1..],
        ["11.000", "3.370 / 3.100"]
    );
    // A build without a figure shows "–"; a failed round too.
    assert_eq!(
        row(
            &table,
            "replay 1 M × 2 policies, 2 cores, as `replay` reads the table (s; ≤ 2)"
        )[1..],
        ["–", "1.44 / –"]
    );
    // No file at all for a row: the row is left out.
    assert!(!table.contains("~1.74 KB"), "{table}");
    // The after build's figures of round 1 (and 2 where it has one), row by row.
    for (label, value) in [
        // /usr/bin/time: rate from the decisions counted and the wall time, CPU = user + sys, peak KB → MiB.
        (
            "`borderlane score`, ~1.12 KB, 2 cores (k manifests/s; ≥ 500)",
            "400 / –",
        ),
        ("… CPU seconds (~1.12 KB)", "3.50 / –"),
        ("… peak RSS (~1.12 KB, MiB)", "50 / –"),
        ("saturation, 150 000/s offered: pipeline (/s)", "30000 / –"),
        ("… passthrough (/s)", "120000 / –"),
        ("… pipeline ÷ passthrough (≥ 0.9)", "0.25 / –"),
        // The real report's figures (round 2), beside the hand-made one (round 1, without GC figures).
        ("half load 2 000/s: pipeline p50 (ms)", "3.10 / 3.08"),
        ("half load 2 000/s: pipeline p99 (ms)", "8.00 / 11.26"),
        ("… passthrough p99 (ms)", "6.40 / 4.72"),
        ("half load 2 000/s: pipeline p99.9 (ms)", "20.00 / 101.69"),
        ("… passthrough p99.9 (ms)", "40.00 / 18.08"),
        ("… p99 ÷ passthrough's (≤ 1.1)", "1.25 / 2.39"),
        ("… p99.9 ÷ p99 (≤ 3)", "2.50 / 9.04"),
    ] {
        assert_eq!(row(&table, label)[2], value, "{label}");
    }
    for (label, value) in [
        (
            "… pipeline p99 outside the broker's GC pauses (ms)",
            "– / 5.48",
        ),
        (
            "… passthrough p99 outside the broker's GC pauses (ms)",
            "– / 4.38",
        ),
        (
            "… pipeline p99.9 outside the broker's GC pauses (ms)",
            "– / 40.32",
        ),
        (
            "… passthrough p99.9 outside the broker's GC pauses (ms)",
            "– / 13.83",
        ),
        (
            "… outside the pauses: p99 ÷ passthrough's (≤ 1.1)",
            "– / 1.25",
        ),
        ("… outside the pauses: p99.9 ÷ p99 (≤ 3)", "– / 7.36"),
        (
            "… manifests in flight during a broker GC pause (pipeline)",
            "– / 524",
        ),
    ] {
        assert_eq!(row(&table, label)[2], value, "{label}");
    }
    // The concurrent cycles: only the report that has them fills these rows.
    for (label, value) in [
        (
            "… longest broker concurrent GC cycle in the pipeline's run (ms)",
            "216",
        ),
        (
            "… manifests in flight during a cycle and no pause (pipeline)",
            "537",
        ),
        ("… pipeline p99 outside the pauses and cycles (ms)", "5.38"),
        (
            "… passthrough p99 outside the pauses and cycles (ms)",
            "4.78",
        ),
        (
            "… pipeline p99.9 outside the pauses and cycles (ms)",
            "7.53",
        ),
        (
            "… passthrough p99.9 outside the pauses and cycles (ms)",
            "6.71",
        ),
        (
            "… outside the pauses and cycles: p99 ÷ passthrough's (≤ 1.1)",
            "1.13",
        ),
        ("… outside the pauses and cycles: p99.9 ÷ p99 (≤ 3)", "1.40"),
    ] {
        assert_eq!(row(&table, label)[1..], [value, "– / –"], "{label}");
    }
    assert_eq!(row(&table, "… p99 ÷ passthrough's (≤ 1.1)")[1], "2.35");
    for (label, value) in [
        (
            "backlog 300 000 (7 139 partners), `config/borderlane.toml`: serve peak RSS (MiB; ≤ 190)",
            "62",
        ),
        (
            "… backlog rate (/s, partner load and group join included)",
            "31579",
        ),
        ("… serve CPU (s)", "12.2"),
        ("1 M partners: raw consume, median (s)", "1.00"),
        ("… batched raw consume, median (s)", "0.65"),
        ("… table load, median (s)", "1.25"),
        ("… table ÷ raw (≥ 0.8)", "0.80"),
        ("… table ÷ batched raw (≥ 0.8)", "0.52"),
        ("… table load peak RSS (MiB; ≤ 286)", "275"),
    ] {
        assert_eq!(row(&table, label)[2], value, "{label}");
    }
    // The drain: rates and their ratio as loadtest wrote them; CPU µs a manifest answered (300 000),
    // the scoring threads' groups summed.
    for (label, value) in [
        (
            "saturation as a drain, 300 000 written first: pipeline (/s)",
            "66283",
        ),
        ("… passthrough's drain (/s)", "198150"),
        ("… drain: pipeline ÷ passthrough (≥ 0.9)", "0.33"),
        ("… drain: pipeline's process CPU (µs a manifest)", "15.5"),
        (
            "… drain: of which the scoring threads (µs a manifest)",
            "7.9",
        ),
        ("… drain: passthrough's process CPU (µs a manifest)", "5.3"),
        (
            "… drain: other processes (the broker, mostly) during the pipeline's (µs a manifest)",
            "13.6",
        ),
        (
            "… drain: other processes during the passthrough's (µs a manifest)",
            "5.7",
        ),
    ] {
        assert_eq!(
            row(&table, label)[1..],
            ["–", &format!("{value} / –")],
            "{label}"
        );
    }
    assert!(
        table.contains("- core-bbbbbbb-1: 0.50 0.60 0.70"),
        "{table}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every case exits 2 before any git worktree or cargo build is made (a bad second commit too, and a line
/// name that is not one); a case that slipped through would start building here.
#[test]
fn the_script_refuses_bad_arguments_before_building() {
    for args in [
        &["917ca7d"][..],
        &["--rounds", "0", "917ca7d", "HEAD"],
        &["--frobnicate", "917ca7d", "HEAD"],
        &["a", "b", "c"],
        &["--rounds"],
        &["--only", "cor", "917ca7d", "HEAD"],
        &["--only", "", "917ca7d", "HEAD"],
        &["917ca7d", "no-such-commit"],
    ] {
        let out = Command::new(scripts().join("speed-table"))
            .args(args)
            .output()
            .expect("scripts/speed-table runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
