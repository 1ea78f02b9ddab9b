//! `borderlane import-kcs FILE.csv --out-manifests M.ndjson --out-labels L.ndjson`: KCS declarations into
//! manifests and labels (mappings in `docs/model.md`); every row converts or the command fails.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// KCS CSV (header row, the dataset's column names).
    pub file: PathBuf,
    /// Manifests, one JSON object per line.
    #[arg(long)]
    pub out_manifests: PathBuf,
    /// Labels `{"manifest_id", "fraud", "critical"}`, one per line, same order.
    #[arg(long)]
    pub out_labels: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let input =
        File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
    let create = |p: &PathBuf| {
        File::create(p)
            .map(|f| BufWriter::with_capacity(1 << 20, f))
            .with_context(|| format!("creating {}", p.display()))
    };
    let report = crate::learn::kcs::import(
        input,
        create(&args.out_manifests)?,
        create(&args.out_labels)?,
    )
    .with_context(|| format!("converting {}", args.file.display()))?;
    eprintln!(
        "{}: {} rows → {} manifests, {} labels ({} fraud); origin ZZ → departure {}, → KR {}; departure ZZ {}; \
         offices without a port of their own {}",
        args.file.display(),
        report.rows,
        report.manifests,
        report.labels,
        report.frauds,
        report.origin_from_departure,
        report.origin_domestic,
        report.departure_unknown,
        report.other_offices
    );
    Ok(ExitCode::SUCCESS)
}
