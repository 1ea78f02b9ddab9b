//! `borderlane produce`: loads partners and manifests (NDJSON files) into the topics named by the
//! `serve` configuration, so the service can be seen working in two commands.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::produce::{manifest_key, ndjson_lines, partner_record, Loader};
use crate::serve::config::Config;

#[derive(clap::Args)]
pub struct Args {
    /// The `serve` configuration: brokers, topic names and client properties come from it.
    #[arg(long, short, default_value = "config/borderlane.toml")]
    pub config: PathBuf,
    /// Partner records, one JSON object per line, keyed by `partner_id`; a line
    /// `{"partner_id": "…", "tombstone": true}` is sent as a tombstone. Sent before the manifests.
    #[arg(long)]
    pub partners: Option<PathBuf>,
    /// Manifests, one per line, sent as-is (bad lines included) and keyed by `manifest_id` where readable.
    #[arg(long)]
    pub manifests: Option<PathBuf>,
    /// Send manifests at most this many per second (0: as fast as the broker takes them).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
}

/// Sleeps as needed so that `sent` records take at least `sent / rate` seconds from `started`.
fn pace(started: Instant, sent: u64, rate: u64) {
    if rate == 0 {
        return;
    }
    let due = Duration::from_secs_f64(sent as f64 / rate as f64);
    if let Some(wait) = due.checked_sub(started.elapsed()) {
        if wait >= Duration::from_millis(1) {
            std::thread::sleep(wait);
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: {e}", args.config.display());
            return Ok(ExitCode::from(1));
        }
    };
    if args.partners.is_none() && args.manifests.is_none() {
        eprintln!("nothing to produce: give --partners and/or --manifests");
        return Ok(ExitCode::from(2));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(crate::serve::topics::ensure(&config))?;
    let timeout = Duration::from_secs(120);
    let mut loader = Loader::new(&config)?;
    let started = Instant::now();
    if let Some(path) = &args.partners {
        let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let (mut upserts, mut tombstones) = (0u64, 0u64);
        for (n, line) in ndjson_lines(&data) {
            let (key, value) = partner_record(n, line);
            match value {
                Some(_) => upserts += 1,
                None => tombstones += 1,
            }
            loader.send(&config.kafka.topics.partners, Some(&key), value, None)?;
        }
        // Partners first: a service that is already running sees them before the manifests.
        loader.flush(timeout)?;
        eprintln!(
            "partners: {upserts} records and {tombstones} tombstones to {}",
            config.kafka.topics.partners
        );
    }
    if let Some(path) = &args.manifests {
        let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let (mut total, mut unkeyed) = (0u64, 0u64);
        let paced_from = Instant::now();
        for (_, line) in ndjson_lines(&data) {
            pace(paced_from, total, args.rate);
            let key = manifest_key(line);
            total += 1;
            unkeyed += u64::from(key.is_none());
            loader.send(
                &config.kafka.topics.manifests,
                key.as_deref(),
                Some(line),
                None,
            )?;
        }
        loader.flush(timeout)?;
        eprintln!(
            "manifests: {total} records ({unkeyed} without a readable manifest_id) to {}",
            config.kafka.topics.manifests
        );
    }
    let d = loader.flush(timeout)?;
    eprintln!(
        "delivered {} records in {:.2} s",
        d.delivered,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
