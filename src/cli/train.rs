//! `borderlane train --manifests … --labels … --out model.json [--seed S]`: fit the learned risk model and
//! write the self-contained model file; with `--valid-*`, report the protocol's metrics on a held-out set.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;

use crate::learn::train::{features_of, train, write_features_csv, Dataset, Labelled, Params};

#[derive(clap::Args)]
pub struct Args {
    /// The training data.
    #[command(flatten)]
    pub data: Labelled,
    /// Model file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the fold assignment and the booster: same data and seed, same file.
    #[arg(long, default_value_t = Params::default().seed)]
    pub seed: u64,
    /// Boosting rounds.
    #[arg(long, default_value_t = Params::default().trees)]
    pub trees: usize,
    /// Shrinkage per tree.
    #[arg(long, default_value_t = Params::default().learning_rate)]
    pub learning_rate: f32,
    /// Deepest tree.
    #[arg(long, default_value_t = Params::default().max_depth)]
    pub max_depth: usize,
    /// Share of rows per tree.
    #[arg(long, default_value_t = Params::default().subsample)]
    pub subsample: f32,
    /// Share of features per tree.
    #[arg(long, default_value_t = Params::default().colsample)]
    pub colsample: f64,
    /// Pseudo-count of the target-rate smoothing.
    #[arg(long, default_value_t = Params::default().smoothing)]
    pub smoothing: f64,
    /// Booster threads; more than 1 is faster but the float summation order (and so the file) may vary.
    #[arg(long, default_value_t = Params::default().threads)]
    pub threads: usize,
    /// Model name shown in reasons.
    #[arg(long, default_value_t = Params::default().name)]
    pub name: String,
    /// Held-out manifests to report metrics on after training (never used for fitting).
    #[arg(long, requires = "valid_labels")]
    pub valid_manifests: Option<PathBuf>,
    #[arg(long, requires = "valid_manifests")]
    pub valid_labels: Option<PathBuf>,
    /// Write the feature matrices (train out-of-fold, and valid) as CSV with this prefix, to compare
    /// libraries on identical inputs.
    #[arg(long)]
    pub dump_features: Option<PathBuf>,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let data = args.data.load()?;
    let params = Params {
        seed: args.seed,
        trees: args.trees,
        learning_rate: args.learning_rate,
        max_depth: args.max_depth,
        subsample: args.subsample,
        colsample: args.colsample,
        smoothing: args.smoothing,
        threads: args.threads.max(1),
        name: args.name.clone(),
        ..Params::default()
    };
    let trained = train(&data, &params, !args.quiet)?;
    let text = serde_json::to_string(&trained.doc)?;
    std::fs::write(&args.out, &text).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "wrote {} ({} trees, {} features, {:.0} KiB) in {:.2} s",
        args.out.display(),
        trained.model.n_trees(),
        trained.model.n_features(),
        text.len() as f64 / 1024.0,
        started.elapsed().as_secs_f64()
    );
    if let Some(prefix) = &args.dump_features {
        let p = |s: &str| PathBuf::from(format!("{}{s}", prefix.display()));
        write_features_csv(
            &p("train.csv"),
            &trained.train_features,
            &trained.train_labels,
        )?;
    }
    if let (Some(vm), Some(vl)) = (&args.valid_manifests, &args.valid_labels) {
        let valid = Dataset::load(vm, vl)?;
        let model = borderlane_core::model::Model::parse(text.as_bytes())
            .map_err(|e| anyhow::anyhow!("written model does not load: {e:?}"))?;
        let metrics = crate::cli::evaluate::model_metrics(&model, &valid);
        eprint!(
            "{}",
            crate::learn::ranking::render(&[("valid (model)", &metrics)])
        );
        if let Some(prefix) = &args.dump_features {
            let (f, labels) = features_of(&model, &valid);
            write_features_csv(
                &PathBuf::from(format!("{}valid.csv", prefix.display())),
                &f,
                &labels,
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
