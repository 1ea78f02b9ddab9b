//! The smoke scenario against the real broker (started through `scripts/kafka start`, or
//! `KAFKA_BOOTSTRAP`), service and passthrough baseline both: every manifest gets exactly one output and
//! the report carries every figure. A broker that cannot be started or reached fails this test — locally
//! and in CI — it never skips. No assertion on timing (the one bound on a timestamp below allows for the
//! clocks: it checks the column holds the output's time, not how long anything took).

mod common;

use loadtest::{kafka, Options};

#[test]
fn smoke_scenario_runs_against_the_real_broker() {
    let bootstrap = common::broker();
    let scenario = common::smoke();
    let base = kafka::base_config(None, &bootstrap).unwrap();
    let report = loadtest::run_scenario(
        &base,
        &scenario,
        &Options {
            progress: true,
            ..Options::default()
        },
    )
    .unwrap();
    // The broker's pauses, from the GC log scripts/kafka writes (CI's broker is that one).
    let mut report = report;
    match kafka::local_gc_log(&bootstrap) {
        Some(log) => {
            let gc = loadtest::gc::read(&log).unwrap();
            assert_eq!(gc.unread, 0, "every pause line of {log:?} read");
            assert!(
                !gc.pauses.is_empty(),
                "a broker that ran has paused: {log:?}"
            );
            loadtest::gc::attribute_report(&mut report, &gc);
        }
        None => println!("not the broker scripts/kafka started: no GC log to read"),
    }
    println!("{}", report.table());

    let expected = ((scenario.warmup_s + scenario.duration_s) * scenario.rate).round() as u64;
    let b = report
        .passthrough
        .as_ref()
        .expect("the smoke scenario runs the baseline");
    for r in [&report.pipeline, b] {
        assert_eq!(r.sent, expected, "{r:?}");
        assert_eq!((r.produce_failed, r.undelivered), (0, 0), "{r:?}");
        assert_eq!(r.received, r.sent, "{r:?}");
        assert_eq!((r.lost, r.duplicated), (0, 0), "{r:?}");
        assert!(
            r.measured > 0 && r.p50_ms <= r.p99_ms && r.p99_ms <= r.max_ms,
            "{r:?}"
        );
        // Every manifest's latency is kept (`--latencies`): one CSV line each after the header.
        let with_output = r.arrivals.by_seq.iter().flatten().count() as u64;
        assert_eq!(with_output, r.received, "{r:?}");
        let mut csv = Vec::new();
        r.arrivals.write_csv(&mut csv).unwrap();
        let csv = String::from_utf8(csv).unwrap();
        let rows: Vec<Vec<f64>> = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(|f| f.parse().unwrap()).collect())
            .collect();
        assert_eq!(rows.len() as u64, r.received);
        // Every manifest once, in order; the slowest measured one is the histogram's max (three
        // significant digits); each arrived after its scheduled send, within the run.
        let t0 = r.arrivals.t0_unix_ms;
        let mut max_us = 0.0f64;
        for (i, row) in rows.iter().enumerate() {
            let [seq, due_ms, _partition, us, arrived, output_ts] = row[..] else {
                panic!("{row:?}")
            };
            assert_eq!(seq, i as f64);
            assert!(
                (arrived - (t0 + due_ms + us / 1000.0)).abs() < 0.01,
                "{row:?}"
            );
            // The output was produced after its manifest's scheduled send and before it arrived. Kafka
            // timestamps are whole milliseconds, cut down, from the system clock, while `t0`, `due_ms`
            // and `arrived` come from a monotonic clock lined up with it once at the start: a few
            // milliseconds either way.
            assert!(
                t0 + due_ms - 5.0 <= output_ts && output_ts <= arrived + 5.0,
                "{row:?}"
            );
            assert!(arrived <= t0 + r.elapsed_s * 1000.0 + 1.0, "{row:?} {r:?}");
            if seq as u64 >= r.arrivals.measured_from {
                max_us = max_us.max(us);
            }
        }
        assert!(
            (max_us / 1000.0 - r.max_ms).abs() <= r.max_ms * 0.002,
            "{max_us} µs against max {} ms",
            r.max_ms
        );
        if let Some(gc) = r.broker_gc {
            assert!(gc.in_flight <= r.measured, "{gc:?} {r:?}");
            assert!(gc.p999_outside_ms <= r.max_ms, "{gc:?} {r:?}");
        }
        // Where the run's CPU went (Linux): the process's groups add up to the process, within it the
        // machine's; the wall time covers the run.
        let cpu = r.cpu.as_ref().expect("/proc is readable here");
        let groups: f64 = cpu.groups.iter().map(|g| g.cpu_s).sum();
        assert!((groups - cpu.process_s).abs() < 1e-6, "{cpu:?}");
        assert!(
            cpu.process_s > 0.0 && cpu.wall_s >= r.elapsed_s * 0.99,
            "{cpu:?} {r:?}"
        );
    }
    assert!(
        json_has_cpu(&report),
        "the JSON report carries the CPU figures"
    );

    let json = serde_json::to_value(&report).unwrap();
    for key in [
        "sent",
        "received",
        "lost",
        "duplicated",
        "throughput_per_s",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "p999_ms",
        "max_ms",
    ] {
        assert!(json[key].is_number(), "top-level {key} missing: {json}");
        assert!(
            json["passthrough"][key].is_number(),
            "passthrough.{key} missing: {json}"
        );
    }
    assert!(json["ratio"]["p99"].is_number(), "{json}");
}

fn json_has_cpu(report: &loadtest::report::Report) -> bool {
    let json = serde_json::to_value(report).unwrap();
    json["cpu"]["groups"].is_array() && json["passthrough"]["cpu"]["machine_busy_s"].is_number()
}
