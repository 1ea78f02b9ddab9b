//! `--backlog` against the real broker (started through `scripts/kafka start`, or `KAFKA_BOOTSTRAP`):
//! both systems drain the same backlog, every manifest gets exactly one output, the malformed ones as
//! dead letters from the service, and the report carries a rate, a ratio and the CPU split. A broker that
//! cannot be started or reached fails this test; it never skips. No assertion on timing beyond order (the
//! first output is not after the last).

mod common;

use borderlane::service::config::Config;
use loadtest::payload::Templates;
use loadtest::scenario::Scenario;
use loadtest::target::{Kind, Launch};
use loadtest::{backlog, kafka};

/// The scenario's malformed templates, generated again here (independently of the run) from its seed.
fn malformed_templates(base: &Config, scenario: &Scenario) -> u64 {
    let policy = borderlane::service::load_policy(base).unwrap();
    Templates::generate(
        &policy,
        scenario.seed,
        scenario.partners,
        scenario.bad_share,
        scenario.templates,
    )
    .bad as u64
}

/// The smoke scenario without the passthrough, on the broker's base configuration.
fn pipeline_only() -> (Scenario, Config) {
    let bootstrap = common::broker();
    let mut scenario = common::smoke();
    scenario.passthrough = false;
    (scenario, kafka::base_config(None, &bootstrap).unwrap())
}

#[test]
fn both_systems_drain_a_backlog_once_each() {
    let bootstrap = common::broker();
    let scenario = common::smoke();
    let base = kafka::base_config(None, &bootstrap).unwrap();
    // Six times round the scenario's templates: the service's dead letters are six times their bad ones.
    let rounds = 6;
    let n = rounds * scenario.templates as u64;
    let report = backlog::run(&base, &scenario, n, &Launch::InProcess, true).unwrap();
    println!("{}", report.table());

    let bad = malformed_templates(&base, &scenario);
    assert!(bad > 0, "the smoke mix has malformed manifests");
    let b = report
        .passthrough
        .as_ref()
        .expect("the smoke scenario runs the baseline");
    assert_eq!(
        (b.target, report.pipeline.target),
        (Kind::Passthrough, Kind::Pipeline)
    );
    for r in [&report.pipeline, b] {
        assert_eq!((r.backlog, r.answered), (n, n), "{r:?}");
        assert_eq!((r.duplicated, r.missing), (0, 0), "{r:?}");
        assert!(r.fill_s > 0.0, "{r:?}");
        assert!(r.first_output_unix_ms > 0, "{r:?}");
        assert!(r.first_output_unix_ms <= r.last_output_unix_ms, "{r:?}");
        assert!(r.rate > 0.0 && r.rate.is_finite(), "{r:?}");
        let cpu = r.cpu.as_ref().expect("/proc is readable on Linux");
        assert!(cpu.process_s > 0.0, "{r:?}");
    }
    assert_eq!(
        b.dead_letters, 0,
        "the passthrough copies every record as it is"
    );
    // The hosted service's pipeline thread, step by step: it polled batches and emitted them.
    let steps = &report.pipeline.pipeline_steps;
    for step in ["collect", "emit"] {
        let st = steps.iter().find(|s| s.step == step);
        assert!(st.is_some_and(|s| s.count > 0), "{step}: {steps:?}");
    }
    assert!(b.pipeline_steps.is_empty(), "{b:?}");
    assert_eq!(
        report.pipeline.dead_letters,
        rounds * bad,
        "each malformed manifest is a dead letter"
    );
    let ratio = report.ratio.expect("both ran");
    assert!(
        (ratio - report.pipeline.rate / b.rate).abs() < 1e-9,
        "{ratio}"
    );
    // The JSON report holds the same figures.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["backlog"], n);
    assert_eq!(json["pipeline"]["answered"], n);
    assert_eq!(json["passthrough"]["target"], "passthrough");
    assert!(json["pipeline"]["cpu"]["groups"].is_array());
}

/// This build's `borderlane` binary, next to the test binary's directory (`cargo test --workspace` builds
/// it for the root package's tests, as `scripts/test` runs them).
fn borderlane_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("borderlane"))
        .unwrap();
    assert!(
        bin.is_file(),
        "{} is missing: run the tests with `cargo test --workspace` (scripts/test does)",
        bin.display()
    );
    bin
}

/// `--service-bin`: the pipeline is a `borderlane serve` child process. It drains the backlog as the hosted
/// service does (every manifest once, the malformed ones as dead letters), the report names it, and its
/// CPU is counted with the harness's (the `borderlane` group: its main thread and runtime workers, named
/// after the binary; no thread of the test process has that name).
#[test]
fn a_child_service_drains_a_backlog_once() {
    let (scenario, base) = pipeline_only();
    let rounds = 4;
    let n = rounds * scenario.templates as u64;
    let bin = borderlane_bin();
    let launch = Launch::Binary {
        bin: bin.clone(),
        config: None,
    };
    let report = backlog::run(&base, &scenario, n, &launch, true).unwrap();
    println!("{}", report.table());
    assert!(report.passthrough.is_none());
    assert_eq!(
        report.service,
        format!("{} serve (child process)", bin.display())
    );
    let r = &report.pipeline;
    assert_eq!((r.backlog, r.answered), (n, n), "{r:?}");
    assert_eq!((r.duplicated, r.missing), (0, 0), "{r:?}");
    assert_eq!(
        r.dead_letters,
        rounds * malformed_templates(&base, &scenario),
        "{r:?}"
    );
    assert!(r.pipeline_steps.is_empty(), "not read from a child: {r:?}");
    let cpu = r.cpu.as_ref().expect("/proc is readable on Linux");
    let main = cpu
        .groups
        .iter()
        .find(|g| g.name == "borderlane")
        .unwrap_or_else(|| panic!("the child's threads are counted: {cpu:?}"));
    assert!(main.cpu_s > 0.0, "{cpu:?}");
}

/// A child that cannot start is a start-up error that carries its output, not a hang or a drain of nothing:
/// `ls` stands in for a binary without `serve` (it refuses `--config` and exits 2).
#[test]
fn a_child_service_that_exits_at_once_is_a_start_error() {
    let (scenario, base) = pipeline_only();
    let launch = Launch::Binary {
        bin: "/bin/ls".into(),
        config: None,
    };
    let e = backlog::run(&base, &scenario, 10, &launch, false).unwrap_err();
    let text = format!("{e:#}");
    assert!(
        text.contains("/bin/ls serve stopped while starting"),
        "{text}"
    );
    assert!(
        text.contains("--config"),
        "its output is in the error: {text}"
    );
}
