//! `loadtest`: the command line of the load generator and performance harness.
//!
//! `cargo run --release -p loadtest -- --scenario loadtest/scenarios/<name>.toml [--json FILE]
//! [--find-max] [--backlog [N] [--service-bin BIN]] [--partner-load [N]] [--bootstrap HOST:PORT]`. Without
//! `--bootstrap` (or `KAFKA_BOOTSTRAP`) the broker is started with `scripts/kafka start`; the service runs
//! in-process (with `--service-bin`, another build's `serve` as a child process). See
//! `docs/performance-kafka.md`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use loadtest::partner_load::{self, Mode};
use loadtest::report::Environment;
use loadtest::scenario::Scenario;
use loadtest::target::Launch;
use loadtest::{kafka, Options};

#[derive(Parser, Debug)]
#[command(
    name = "loadtest",
    about = "Open-loop load generator and performance harness for borderlane serve",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// Scenario file (TOML).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/default.toml"))]
    scenario: PathBuf,
    /// Broker to use instead of starting the local one with scripts/kafka (also: KAFKA_BOOTSTRAP).
    #[arg(long)]
    bootstrap: Option<String>,
    /// Base service configuration (TOML, with BORDERLANE_* overrides); its topics, group and HTTP address
    /// are replaced per run. Default: the built-in defaults plus BORDERLANE_* overrides.
    #[arg(long)]
    service_config: Option<PathBuf>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Find the highest sustainable rate (service and baseline), then measure latency at half of it.
    #[arg(long)]
    find_max: bool,
    /// Partner-table load benchmark with N partners (default: the scenario's, 1 000 000) instead of a
    /// load run.
    #[arg(long, num_args = 0..=1, default_missing_value = "0")]
    partner_load: Option<usize>,
    /// Saturation as a drain instead of a load run: N manifests (default 300 000) written to each
    /// system's input before it starts, the passthrough's then the service's, and the rate each drains
    /// them at, from its outputs' timestamps.
    #[arg(long, num_args = 0..=1, default_missing_value = "300000", value_name = "N",
          conflicts_with_all = ["find_max", "partner_load", "rate", "duration", "latencies", "broker_gc_log"])]
    backlog: Option<u64>,
    /// With --backlog: the pipeline is `BIN serve`, run as a child process on `--service-config` (or that
    /// build's defaults) with the run's topics, group and broker as BORDERLANE_* overrides, instead of this
    /// build's service hosted in-process — to drain any two builds under the same harness.
    #[arg(long, value_name = "BIN", requires = "backlog")]
    service_bin: Option<PathBuf>,
    /// Override the scenario's rate (manifests per second).
    #[arg(long)]
    rate: Option<f64>,
    /// Override the scenario's measured duration (seconds).
    #[arg(long)]
    duration: Option<f64>,
    /// Skip the passthrough baseline even if the scenario asks for it.
    #[arg(long)]
    no_passthrough: bool,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
    /// Also write every manifest's latency of the latency run (not the find-max steps) as CSV:
    /// `<PREFIX>-pipeline.csv` and `<PREFIX>-passthrough.csv`, one line per manifest with an output
    /// (`seq,due_ms,partition,latency_us,arrived_unix_ms,output_ts_ms`, warm-up included) — to see whether a tail is
    /// a few stalls or spread out, and when.
    #[arg(long, value_name = "PREFIX")]
    latencies: Option<PathBuf>,
    /// The broker's JVM GC log (unified logging with the `utctime` decoration): the report then says how
    /// many measured manifests were in flight during a stop-the-world pause, and the percentiles of the
    /// rest. Default: the log `scripts/kafka` writes, when the broker in use is the one it started.
    #[arg(long, value_name = "FILE")]
    broker_gc_log: Option<PathBuf>,
    /// Internal subcommands (the partner-load child processes).
    #[command(subcommand)]
    child: Option<Child>,
}

#[derive(Subcommand, Debug)]
enum Child {
    /// Internal: one partner-load measurement in its own process (prints one JSON line).
    #[command(hide = true)]
    PartnerChild {
        /// The parent's broker.
        #[arg(long)]
        bootstrap: String,
        /// Prefix of the topics the parent filled (the partner topic is `<prefix>-partners`).
        #[arg(long)]
        prefix: String,
        /// What to measure.
        #[arg(long, value_enum)]
        mode: Mode,
        /// The parent's `--service-config`, so both use the same client properties.
        #[arg(long)]
        service_config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadtest: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(Child::PartnerChild {
        bootstrap,
        prefix,
        mode,
        service_config,
    }) = cli.child
    {
        return partner_load::child_main(&bootstrap, &prefix, mode, service_config);
    }
    let mut scenario = Scenario::load(&cli.scenario)?;
    if cli.no_passthrough {
        scenario.passthrough = false;
    }
    let bootstrap = kafka::bootstrap(cli.bootstrap.as_deref())?;
    let base = kafka::base_config(cli.service_config.as_deref(), &bootstrap)?;
    // A drain with manifests left unanswered still reports, then fails.
    let mut unanswered = 0;
    let (table, json) = if let Some(n) = cli.backlog {
        let launch = match cli.service_bin {
            Some(bin) => Launch::Binary {
                bin,
                config: cli.service_config.clone(),
            },
            None => Launch::InProcess,
        };
        let r = loadtest::backlog::run(&base, &scenario, n, &launch, !cli.quiet)?;
        unanswered = r.missing();
        (r.table(), serde_json::to_value(&r)?)
    } else if let Some(n) = cli.partner_load {
        let n = if n == 0 {
            scenario.partner_load.partners
        } else {
            n
        };
        let mut env = Environment::capture(&bootstrap);
        let r = partner_load::run(&base, &scenario, n, cli.service_config.as_deref())?;
        env.finish();
        let mut json = serde_json::to_value(&r)?;
        json["environment"] = serde_json::to_value(&env)?;
        (r.table(&env), json)
    } else {
        let options = Options {
            rate: cli.rate,
            duration_s: cli.duration,
            find_max: cli.find_max,
            progress: !cli.quiet,
        };
        let mut r = loadtest::run_scenario(&base, &scenario, &options)?;
        // After a run of minutes, a missing log or an unwritable CSV is a warning, not a lost report.
        let gc_log = cli
            .broker_gc_log
            .clone()
            .or_else(|| kafka::local_gc_log(&bootstrap));
        if let Some(path) = gc_log {
            match loadtest::gc::read(&path) {
                Ok(log) => {
                    if log.unread > 0 {
                        eprintln!(
                            "loadtest: {} pause or cycle lines of {} without a readable time (write the log with \
                             -Xlog:gc:file=F:utctime)",
                            log.unread,
                            path.display()
                        );
                    }
                    let run_start = r.pipeline.arrivals.t0_unix_ms;
                    if !log.pauses.iter().any(|p| p.end_unix_ms >= run_start) {
                        eprintln!(
                            "loadtest: {} has no pause since the run began: is it this broker's log?",
                            path.display()
                        );
                    }
                    loadtest::gc::attribute_report(&mut r, &log);
                }
                Err(e) => eprintln!("loadtest: no GC share: {e:#}"),
            }
        }
        if let Some(prefix) = &cli.latencies {
            for stats in std::iter::once(&r.pipeline).chain(r.passthrough.as_ref()) {
                let path = PathBuf::from(format!(
                    "{}-{}.csv",
                    prefix.display(),
                    stats.target.as_str()
                ));
                let written = std::fs::File::create(&path).and_then(|f| {
                    let mut out = std::io::BufWriter::new(f);
                    stats.arrivals.write_csv(&mut out)?;
                    out.flush()
                });
                if let Err(e) = written {
                    eprintln!("loadtest: writing {}: {e}", path.display());
                }
            }
        }
        (r.table(), serde_json::to_value(&r)?)
    };
    print!("{table}");
    if let Some(path) = &cli.json {
        std::fs::write(path, serde_json::to_string_pretty(&json)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("loadtest: JSON report written to {}", path.display());
    }
    if unanswered > 0 {
        anyhow::bail!("{unanswered} manifests of the backlog got no output");
    }
    Ok(())
}
