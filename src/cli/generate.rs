//! `borderlane generate`: seeded, deterministic partners and manifests as NDJSON (optionally with malformed
//! records of every dead-letter kind), generated in parallel and written in index order.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use rayon::prelude::*;

use crate::traffic::gen::{partner_lines, GenConfig, Generator, Record};

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
    /// Policy whose port table and watch list the traffic uses (default: the embedded policy).
    #[arg(long)]
    pub policy: Option<PathBuf>,
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
    let mut start = 0u64;
    while start < args.manifests {
        let end = (start + BATCH).min(args.manifests);
        let batch: Vec<(bool, Vec<u8>)> = (start..end)
            .into_par_iter()
            .map(|i| {
                let r = g.record(i);
                (matches!(r, Record::Good(_)), r.to_bytes())
            })
            .collect();
        for (is_good, bytes) in batch {
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
    Ok(ExitCode::SUCCESS)
}
