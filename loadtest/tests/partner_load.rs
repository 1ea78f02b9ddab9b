//! The partner-load benchmark against the real broker (started through `scripts/kafka start`, or
//! `KAFKA_BOOTSTRAP`), small: every mode — the plain raw consume, the batched raw consume and the service's
//! own table load (the follower's batched consumption) — sees every partner record, or the benchmark fails
//! (its children count the records and the partners in the table); each load reports its CPU account. No
//! assertion on timing.

mod common;

use std::process::Command;

#[test]
fn every_mode_reads_every_partner_record() {
    let bootstrap = common::broker();
    let dir = std::env::temp_dir().join(format!("partner-load-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("report.json");
    let partners = 5000;
    let out = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(["--partner-load", &partners.to_string(), "--bootstrap"])
        .arg(&bootstrap)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(report["partners"], partners);
    for mode in ["raw", "raw_batch", "table"] {
        let runs = report[mode].as_array().unwrap();
        assert!(!runs.is_empty(), "{mode}: {report}");
        for r in runs {
            assert_eq!(r["records"], partners, "{mode}: {r}");
        }
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let tick_slack_s = 2.0 * 0.01 * cpus as f64;
    // Each load accounts its CPU (Linux: /proc) by thread group. A 5 000-partner load is too short for
    // per-thread ticks (10 ms) to show every group, but the table's (a service started) shows CPU.
    for mode in ["raw", "raw_batch", "table"] {
        for r in report[mode].as_array().unwrap() {
            let cpu = &r["cpu"];
            let process = cpu["process_s"]
                .as_f64()
                .unwrap_or_else(|| panic!("{mode}: {r}"));
            let groups: f64 = cpu["groups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["cpu_s"].as_f64().unwrap())
                .sum();
            assert!((groups - process).abs() < 1e-6, "{mode}: {cpu}");
            // The machine's and the process's counters are read a moment apart, each in 10 ms ticks
            // per CPU: the machine may show up to a tick per CPU at each end less than the process
            // (seen: machine 0.01 s, process 0.02 s over a 42 ms load).
            assert!(
                cpu["machine_busy_s"].as_f64().unwrap() + tick_slack_s >= process,
                "{mode}: {cpu}"
            );
            if mode == "table" {
                assert!(process > 0.0, "{mode}: {cpu}");
            }
        }
    }
    // The raw consumes count the bytes they read: both read the same topic.
    let bytes = |mode: &str| report[mode][0]["bytes"].as_u64().unwrap();
    assert!(bytes("raw") > 0);
    assert_eq!(bytes("raw"), bytes("raw_batch"));
}
