//! `--backlog` against the real broker (started through `scripts/kafka start`, or `KAFKA_BOOTSTRAP`):
//! both systems drain the same backlog, every manifest gets exactly one output, the malformed ones as
//! dead letters from the service, and the report carries a rate, a ratio and the CPU split. A broker that
//! cannot be started or reached fails this test; it never skips. No assertion on timing beyond order (the
//! first output is not after the last).

mod common;

use loadtest::payload::Templates;
use loadtest::target::Kind;
use loadtest::{backlog, kafka};

#[test]
fn both_systems_drain_a_backlog_once_each() {
    let bootstrap = common::broker();
    let scenario = common::smoke();
    let base = kafka::base_config(None, &bootstrap).unwrap();
    // Six times round the scenario's templates: the service's dead letters are six times their bad ones.
    let rounds = 6;
    let n = rounds * scenario.templates as u64;
    let report = backlog::run(&base, &scenario, n, true).unwrap();
    println!("{}", report.table());

    let policy = borderlane::service::load_policy(&base).unwrap();
    let templates = Templates::generate(
        &policy,
        scenario.seed,
        scenario.partners,
        scenario.bad_share,
        scenario.templates,
    );
    assert!(templates.bad > 0, "the smoke mix has malformed manifests");
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
    assert_eq!(
        report.pipeline.dead_letters,
        rounds * templates.bad as u64,
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
