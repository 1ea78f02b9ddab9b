//! `borderlane replay`: the what-if report offline over any history file — a candidate policy against a
//! baseline on the same manifests and partner table, as text, JSON and an HTML report with charts.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use borderlane_core::history::{History, HistoryAsOf};
use borderlane_core::score::{check_port, Lookups};
use borderlane_core::table::PartnerTable;
use borderlane_core::wire::{parse_manifest, Limits, Manifest};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use crate::analysis::whatif;

#[derive(clap::Args)]
pub struct Args {
    /// The candidate policy.
    #[arg(long)]
    pub policy: PathBuf,
    /// The policy it is compared with.
    #[arg(long, default_value = "config/policy.toml")]
    pub baseline: PathBuf,
    /// Partner records (NDJSON).
    #[arg(long)]
    pub partners: Option<PathBuf>,
    /// Manifests (NDJSON); lines that do not parse are counted and skipped.
    #[arg(long)]
    pub input: PathBuf,
    /// Exam outcomes (NDJSON, complete records as on the outcomes topic): both policies decide with this
    /// party history, and the report judges them against the recorded results (hit rates, known
    /// violations released).
    #[arg(long)]
    pub outcomes: Option<PathBuf>,
    /// Also write the report as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also write an HTML report with charts.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Suggest the high-risk threshold that gives this share of high-risk exams (e.g. 0.05).
    #[arg(long)]
    pub target_exam_rate: Option<f64>,
    /// How many changed decisions to include, with both sets of reasons.
    #[arg(long, default_value_t = 20)]
    pub sample: usize,
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let baseline = crate::load::policy::load(&args.baseline)?;
    let candidate = crate::load::policy::load(&args.policy)?;
    let limits = Limits::default();
    let table = PartnerTable::new();
    if let Some(p) = &args.partners {
        let r = crate::load::partners::load(p, &table, &limits)?;
        eprintln!(
            "partners: {} loaded, {} rejected",
            r.upserts,
            r.rejected.len()
        );
    }
    // Loaded once, then only read: lookups without locks.
    let table = table.freeze();
    let history = History::new();
    let known = match &args.outcomes {
        Some(p) => {
            let r = crate::load::outcomes::load(p, &history, &limits)?;
            for (line, errors) in r.rejected.iter().take(5) {
                eprintln!("  outcomes line {line}: {errors}");
            }
            eprintln!(
                "outcomes: {} stored ({} manifests with a result), {} rejected; history as of {}",
                r.inserted,
                r.results.len(),
                r.rejected.len(),
                r.watermark
            );
            Some((std::sync::Arc::new(r.watermark), r.results))
        }
        None => None,
    };
    let file = std::fs::File::open(&args.input)
        .with_context(|| format!("opening {}", args.input.display()))?;
    let lines: Vec<Vec<u8>> = BufReader::new(file)
        .split(b'\n')
        .collect::<Result<_, _>>()?;
    let lines: Vec<Vec<u8>> = lines
        .into_iter()
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .collect();
    let n = lines.len() as u64;
    let started = Instant::now();
    let parsed = bar(n, "parse");
    let manifests: Vec<Option<Manifest>> = lines
        .par_iter()
        .map(|l| {
            parsed.inc(1);
            // A manifest the baseline cannot decide is skipped on both sides.
            parse_manifest(l, &limits)
                .ok()
                .filter(|m| check_port(&baseline, m).is_ok())
        })
        .collect();
    parsed.finish_and_clear();
    let skipped = manifests.iter().filter(|m| m.is_none()).count();
    let manifests: Vec<Manifest> = manifests.into_iter().flatten().collect();
    let done = AtomicU64::new(0);
    let pb = bar(manifests.len() as u64, "score");
    let report = std::thread::scope(|s| {
        let h = s.spawn(|| {
            let lookups = Lookups::new(
                &table,
                known.as_ref().map(|(as_of, _)| HistoryAsOf {
                    history: &history,
                    as_of,
                }),
            );
            whatif::compare_with(
                &manifests,
                lookups,
                &baseline,
                &candidate,
                &whatif::Options {
                    sample_size: args.sample,
                    target: args.target_exam_rate,
                    progress: Some(&done),
                    results: known.as_ref().map(|(_, r)| r),
                },
            )
        });
        while !h.is_finished() {
            pb.set_position(done.load(Ordering::Relaxed));
            std::thread::sleep(Duration::from_millis(100));
        }
        h.join()
    })
    .map_err(|_| anyhow::anyhow!("the comparison panicked"))?;
    pb.finish_and_clear();
    print!("{}", whatif::render(&report));
    if skipped > 0 {
        println!("\n{skipped} input lines were skipped (not decidable under the baseline)");
    }
    println!(
        "\nreplayed {} manifests under two policies in {:.2} s",
        manifests.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &args.html {
        std::fs::write(p, whatif::render_html(&report))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
