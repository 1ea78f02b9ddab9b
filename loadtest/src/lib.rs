//! loadtest: the open-loop load generator and performance harness of `borderlane serve` on Kafka — a
//! fixed-rate run of the service and of a passthrough baseline on the same broker, a max-throughput
//! search, a backlog drain of both, and the partner-table load benchmark. `src/main.rs` is the command line; the smoke test drives
//! [`run_scenario`] directly.

pub mod backlog;
pub mod cpu;
pub mod driver;
pub mod gc;
pub mod kafka;
pub mod partner_load;
pub mod payload;
pub mod report;
pub mod scenario;
pub mod search;
pub mod target;

use std::time::Duration;

use borderlane::service::config::Config;
use borderlane_core::policy::CompiledPolicy;

use crate::driver::{RunSpec, RunStats};
use crate::payload::Templates;
use crate::report::{Environment, FindMaxReport, Ratios, Report, Step};
use crate::scenario::Scenario;
use crate::search::Search;
use crate::target::{Kind, Target};

/// What to do with a scenario.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Replaces the scenario's rate.
    pub rate: Option<f64>,
    /// Replaces the scenario's measured duration.
    pub duration_s: Option<f64>,
    /// Search the highest sustainable rate first, then measure latency at half of it.
    pub find_max: bool,
    /// Print the progress line.
    pub progress: bool,
}

/// The data of a scenario, generated once and shared by every run of an invocation.
pub(crate) struct Data {
    /// Partner records for the service's partner topic.
    pub(crate) partners: Vec<(String, Vec<u8>)>,
    /// The cycled manifests.
    pub(crate) templates: Templates,
}

impl Data {
    /// The scenario's partners and manifests, from its seed, under `policy`.
    pub(crate) fn of(policy: &CompiledPolicy, scenario: &Scenario) -> Data {
        Data {
            partners: payload::partner_records(policy, scenario.seed, scenario.partners),
            templates: Templates::generate(
                policy,
                scenario.seed,
                scenario.partners,
                scenario.bad_share,
                scenario.templates,
            ),
        }
    }
}

/// Runs one system once at `rate` on fresh topics.
fn run_one(
    kind: Kind,
    base: &Config,
    scenario: &Scenario,
    data: &Data,
    spec: &RunSpec,
) -> anyhow::Result<RunStats> {
    Target::start(kind, base, scenario.partitions, &data.partners)?.run_then_stop(|target| {
        driver::run(target, &data.templates, spec).map(|mut stats| {
            stats.commits = target.commit_stats();
            stats.pipeline_steps = target.pipeline_steps();
            stats
        })
    })
}

/// The highest sustainable rate of `kind`, with every step.
fn find_max(
    kind: Kind,
    base: &Config,
    scenario: &Scenario,
    data: &Data,
    progress: bool,
) -> anyhow::Result<(Option<f64>, Vec<Step>)> {
    let f = &scenario.find_max;
    let mut search = Search::new(f.start_rate, f.max_rate, f.precision);
    let mut steps = Vec::new();
    while let Some(rate) = search.next_rate() {
        let spec = RunSpec {
            rate,
            warmup: Duration::from_secs_f64(f.step_warmup_s),
            duration: Duration::from_secs_f64(f.step_duration_s),
            drain_timeout: Duration::from_secs_f64(scenario.drain_timeout_s),
            partitions: scenario.partitions,
            progress,
        };
        let mut sustainable = false;
        for attempt in 0..=f.retries {
            let mut stats = run_one(kind, base, scenario, data, &spec)?;
            // Only the latency run's manifests are reported one by one (`--latencies`, the GC share).
            stats.arrivals = driver::Arrivals::default();
            let verdict = search::judge(&stats, f.max_p99_ms);
            eprintln!(
                "find-max {}: {rate:.0}/s (try {}) -> {} ({})",
                kind.as_str(),
                attempt + 1,
                if verdict.sustainable {
                    "sustainable"
                } else {
                    "not sustainable"
                },
                verdict.reason
            );
            sustainable = verdict.sustainable;
            steps.push(Step {
                rate,
                verdict,
                stats,
            });
            if sustainable {
                break;
            }
        }
        search.record(rate, sustainable);
    }
    Ok((search.best(), steps))
}

/// The base configuration with the scenario's `delivery` (exactly-once also needs an instance id: one
/// in-process service per run, on its own group, so a fixed one is unique).
pub fn with_delivery(base: &Config, scenario: &Scenario) -> anyhow::Result<Config> {
    use borderlane::service::kafka::clients::DeliveryMode;
    let mut config = base.clone();
    match scenario.delivery.as_deref() {
        None => {}
        Some("at_least_once") => config.kafka.delivery = DeliveryMode::AtLeastOnce,
        Some("exactly_once") => config.kafka.delivery = DeliveryMode::ExactlyOnce,
        Some(other) => anyhow::bail!(
            "scenario delivery {other:?}: must be \"at_least_once\" or \"exactly_once\""
        ),
    }
    if config.kafka.delivery == DeliveryMode::ExactlyOnce && config.kafka.instance_id.is_none() {
        config.kafka.instance_id = Some("loadtest-1".into());
    }
    Ok(config)
}

/// Runs a scenario: optionally the max-throughput search, then the latency run of the service and (when
/// the scenario says so) of the passthrough baseline at the same rate on the same broker.
pub fn run_scenario(
    base: &Config,
    scenario: &Scenario,
    options: &Options,
) -> anyhow::Result<Report> {
    let base = &with_delivery(base, scenario)?;
    let mut environment = Environment::capture(&base.kafka.bootstrap_servers);
    let policy = borderlane::service::load_policy(base)?;
    let data = Data::of(&policy, scenario);
    let mut find = None;
    let mut rate = options.rate.unwrap_or(scenario.rate);
    let mut mode = "fixed".to_string();
    if options.find_max {
        let (pipeline_max, pipeline_steps) =
            find_max(Kind::Pipeline, base, scenario, &data, options.progress)?;
        let (passthrough_max, passthrough_steps) = if scenario.passthrough {
            find_max(Kind::Passthrough, base, scenario, &data, options.progress)?
        } else {
            (None, Vec::new())
        };
        let max = pipeline_max
            .ok_or_else(|| anyhow::anyhow!("no sustainable rate found for the pipeline"))?;
        rate = (max / 2.0).round();
        mode = "half_max".into();
        find = Some(FindMaxReport {
            max_p99_ms: scenario.find_max.max_p99_ms,
            step_duration_s: scenario.find_max.step_duration_s,
            pipeline_max_rate: pipeline_max,
            passthrough_max_rate: passthrough_max,
            pipeline_steps,
            passthrough_steps,
        });
    }
    let duration_s = options.duration_s.unwrap_or(scenario.duration_s);
    let spec = RunSpec {
        rate,
        warmup: Duration::from_secs_f64(scenario.warmup_s),
        duration: Duration::from_secs_f64(duration_s),
        drain_timeout: Duration::from_secs_f64(scenario.drain_timeout_s),
        partitions: scenario.partitions,
        progress: options.progress,
    };
    let passthrough = if scenario.passthrough {
        Some(run_one(Kind::Passthrough, base, scenario, &data, &spec)?)
    } else {
        None
    };
    let pipeline = run_one(Kind::Pipeline, base, scenario, &data, &spec)?;
    let max_rate_ratio = find.as_ref().and_then(|f| {
        f.pipeline_max_rate
            .zip(f.passthrough_max_rate)
            .map(|(p, b)| p / b)
    });
    let ratio = passthrough
        .as_ref()
        .map(|b| Ratios::of(&pipeline, b, max_rate_ratio));
    environment.finish();
    Ok(Report {
        scenario: scenario.name.clone(),
        mode,
        delivery: base.kafka.delivery.as_str().to_string(),
        bad_share: scenario.bad_share,
        partners: scenario.partners,
        partitions: scenario.partitions,
        duration_s,
        warmup_s: scenario.warmup_s,
        environment,
        pipeline,
        passthrough,
        ratio,
        find_max: find,
    })
}
