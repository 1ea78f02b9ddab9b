//! `borderlane generate`: seeded, deterministic partners and manifests as NDJSON (optionally with malformed
//! records of every dead-letter kind), generated in parallel and written in index order. With `--outcomes`,
//! also the exam outcomes the field would record for them: each manifest decided by the policy (in filing
//! order, with the party history of earlier outcomes), and every examined one given what an exam finds
//! under the generator's hidden ground truth (`traffic::gen::field_outcomes`) — labelled data for
//! `train --outcomes`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use rayon::prelude::*;

use borderlane_core::table::PartnerTable;
use borderlane_core::wire::Manifest;

use crate::traffic::gen::{field_outcomes, partner_lines, GenConfig, Generator, Record};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Size of the party pools (about this many partner records).
    #[arg(long, default_value_t = 20_000)]
    pub partners: usize,
    #[arg(long, default_value_t = 100_000)]
    pub manifests: u64,
    /// Share of malformed records.
    #[arg(long, default_value_t = 0.0)]
    pub bad_share: f64,
    /// Partner records file.
    #[arg(long)]
    pub out_partners: Option<PathBuf>,
    /// Manifests file; `-` or absent for stdout.
    #[arg(long)]
    pub out_manifests: Option<PathBuf>,
    /// Policy whose port table and watch list the traffic uses (default: the embedded policy); with
    /// `--outcomes`, also the policy that decides which manifests are examined.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Length of the filing window in days (manifests are filed uniformly over it).
    #[arg(long, default_value_t = 1)]
    pub span_days: u32,
    /// Also write the exam outcomes (NDJSON, complete records as in docs/wire.md "Exam outcome") of the
    /// manifests the policy examines, against the generated partner table.
    #[arg(long)]
    pub outcomes: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let policy = match &args.policy {
        Some(p) => crate::load::policy::load(p)?,
        None => crate::load::policy::default_policy(),
    };
    let g = Generator::new(
        GenConfig {
            seed: args.seed,
            partners: args.partners,
            bad_share: args.bad_share,
            span_secs: i64::from(args.span_days.max(1)) * 86_400,
            ..GenConfig::default()
        },
        &policy,
    );
    if let Some(p) = &args.out_partners {
        let mut w =
            BufWriter::new(File::create(p).with_context(|| format!("creating {}", p.display()))?);
        for line in partner_lines(&g) {
            w.write_all(&line)?;
            w.write_all(b"\n")?;
        }
        w.flush()?;
        eprintln!("{} partners written to {}", g.partners().len(), p.display());
    }
    let mut out: Box<dyn Write> = match &args.out_manifests {
        Some(p) if p.as_os_str() != "-" => Box::new(BufWriter::with_capacity(
            1 << 20,
            File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        _ => Box::new(BufWriter::with_capacity(1 << 20, std::io::stdout().lock())),
    };
    const BATCH: u64 = 16_384;
    let (mut good, mut bad) = (0u64, 0u64);
    let mut kept: Vec<Manifest> = Vec::new();
    let mut start = 0u64;
    while start < args.manifests {
        let end = (start + BATCH).min(args.manifests);
        let keep = args.outcomes.is_some();
        let batch: Vec<(Option<Manifest>, bool, Vec<u8>)> = (start..end)
            .into_par_iter()
            .map(|i| {
                let r = g.record(i);
                let bytes = r.to_bytes();
                match r {
                    Record::Good(m) => (keep.then_some(*m), true, bytes),
                    Record::Bad { .. } => (None, false, bytes),
                }
            })
            .collect();
        for (m, is_good, bytes) in batch {
            kept.extend(m);
            if is_good {
                good += 1;
            } else {
                bad += 1;
            }
            out.write_all(&bytes)?;
            out.write_all(b"\n")?;
        }
        start = end;
    }
    out.flush()?;
    eprintln!(
        "{} manifests written ({good} good, {bad} malformed)",
        good + bad
    );
    if let Some(path) = &args.outcomes {
        let table = PartnerTable::new();
        for p in g.partners() {
            table.upsert(p.clone());
        }
        let outcomes = field_outcomes(&g, &policy, &table, &kept);
        let mut w = BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        );
        let hits = outcomes.iter().filter(|o| o.result.is_hit()).count();
        for o in &outcomes {
            serde_json::to_writer(&mut w, o)?;
            w.write_all(b"\n")?;
        }
        w.flush()?;
        eprintln!(
            "{} exam outcomes written to {} ({hits} discrepancies or seizures; {} of {good} manifests examined)",
            outcomes.len(),
            path.display(),
            outcomes.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
