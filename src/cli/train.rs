//! `borderlane train --manifests … --labels … --out model.json [--seed S] [--policy P]`: fit the learned
//! risk model and write the self-contained model file; with `--policy`, also fit the `[model] curve` that
//! puts the model's log-odds on the policy rules' point scale (printed as a `[model]` snippet and recorded
//! in the file's `training.curve`); with `--valid-*`, report the protocol's metrics on a held-out set.
//!
//! `borderlane train --outcomes O --partners P --manifests M --out model.json [--policy P] [--weighting
//! ipw|none]`: the same pipeline and file format, labels from recorded exam outcomes (see
//! `learn::outcomes`): examined manifests only, weighted for the selection, party target-rate tables
//! added, and the selection bias reported. `--policy` is then the policy that selected the exams (default:
//! the embedded one); no curve is fitted on outcome labels (the rules chose the rows, so a stacking fit
//! on them measures the selection, not the risk).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;

use crate::learn::outcomes::Weighting;
use crate::learn::train::{
    features_of, fit_curve, oof_logits, rules_scores, train, write_features_csv, Dataset, Labelled,
    Params,
};

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
    /// Policy whose rules the `[model] curve` is fitted against (its own `[model]` is ignored): fits the
    /// logistic regression of the label on (rules-only score, out-of-fold model log-odds) on the training
    /// manifests and prints the curve.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// The curve's anchor: the model alone reaches the policy's high band at this probability.
    #[arg(long, default_value_t = 0.9, requires = "policy")]
    pub curve_high_probability: f64,
    /// The training AUC rules + curve may lose against the model alone (the flattest such curve is chosen).
    #[arg(long, default_value_t = 0.005, requires = "policy")]
    pub curve_tolerance: f64,
    /// The curve's cap is its value at this probability.
    #[arg(long, default_value_t = 0.999, requires = "policy")]
    pub curve_max_probability: f64,
    /// Training weights with `--outcomes`: `ipw` weighs exams selected by the random draw alone by the
    /// inverse of their stratum's random rate; `none` leaves the selection bias in.
    #[arg(long, value_enum, default_value = "ipw", requires = "outcomes")]
    pub weighting: Weighting,
    /// Write the join counts and the selection-bias report as JSON here (with `--outcomes`).
    #[arg(long, requires = "outcomes")]
    pub report: Option<PathBuf>,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let outcomes_mode = args.data.outcomes.is_some();
    let selecting = match (&args.policy, outcomes_mode) {
        (Some(p), true) => Some(crate::load::policy::load(p)?),
        _ => None,
    };
    let (data, info) = args.data.load(selecting.as_ref(), args.weighting)?;
    if let Some((_, report)) = &info {
        eprint!("{}", report.render());
        if let Some(path) = &args.report {
            std::fs::write(
                path,
                serde_json::to_string_pretty(&report.to_json())? + "\n",
            )
            .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    let name = if outcomes_mode && args.name == Params::default().name {
        "outcomes-gbt".to_string()
    } else {
        args.name.clone()
    };
    let params = Params {
        seed: args.seed,
        trees: args.trees,
        learning_rate: args.learning_rate,
        max_depth: args.max_depth,
        subsample: args.subsample,
        colsample: args.colsample,
        smoothing: args.smoothing,
        threads: args.threads.max(1),
        name,
        party_tables: outcomes_mode,
        ..Params::default()
    };
    let mut trained = train(&data, &params, !args.quiet)?;
    if let Some((_, report)) = &info {
        trained.doc.training.insert(
            "labels".into(),
            serde_json::json!({
                "source": "exam outcomes",
                "weighting": report.weighting,
                "rows": report.rows,
                "positives": report.positives,
                "random_rows": report.random,
                "effective_sample_size": report.effective_sample_size,
            }),
        );
        trained.model = borderlane_core::model::Model::from_doc(&trained.doc)
            .map_err(|e| anyhow::anyhow!("model is invalid: {e:?}"))?;
    }
    let mut stack = None;
    if let (Some(path), false) = (&args.policy, outcomes_mode) {
        let policy = crate::load::policy::load(path)?;
        let rules = rules_scores(&policy, &data)?;
        let logits = oof_logits(&data, &trained, &params)?;
        let fit = fit_curve(
            &rules,
            &logits,
            &data.labels,
            (args.curve_high_probability, policy.doc.bands.high),
            args.curve_tolerance,
            args.curve_max_probability,
        )?;
        eprintln!(
            "curve fitted on {} training manifests (rules of {}, out-of-fold model log-odds): regression \
             logit P = {:.4} + {:.3e}·rules + {:.4}·log-odds; AUC model {:.4}, rules {:.4}, rules + curve \
             {:.4}; {} points per unit of log-odds from p0 = {:.4}, {} points at p = {}, cap {} (p = {})",
            fit.manifests,
            path.display(),
            fit.intercept,
            fit.w_rules,
            fit.w_model,
            fit.auc_model,
            fit.auc_rules,
            fit.auc_combined,
            fit.scale,
            fit.p0,
            fit.high_points,
            fit.high_probability,
            fit.max_points,
            fit.max_probability
        );
        let file = args
            .out
            .file_name()
            .map_or("model.json".into(), |f| f.to_string_lossy().into_owned());
        print!("{}", fit.snippet(&file));
        trained
            .doc
            .training
            .insert("curve".into(), serde_json::to_value(&fit)?);
        stack = Some((policy, rules, logits));
    }
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
        if let Some((_, rules, logits)) = &stack {
            write_stack(&p("stack-train.csv"), &data, rules, logits)?;
        }
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
            if let Some((policy, _, _)) = &stack {
                let rules = rules_scores(policy, &valid)?;
                let logits: Vec<f64> = valid
                    .manifests
                    .iter()
                    .map(|m| {
                        let p = m
                            .shipments
                            .iter()
                            .filter_map(|s| model.riskiest_line(m, s).map(|(_, p)| p))
                            .fold(f64::NEG_INFINITY, f64::max);
                        (p / (1.0 - p)).ln()
                    })
                    .collect();
                write_stack(
                    &PathBuf::from(format!("{}stack-valid.csv", prefix.display())),
                    &valid,
                    &rules,
                    &logits,
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The curve's stacking data as CSV: manifest id, label, rules-only score, model log-odds.
fn write_stack(
    path: &std::path::Path,
    data: &Dataset,
    rules: &[f64],
    logits: &[f64],
) -> anyhow::Result<()> {
    let mut text = String::from("manifest_id,label,rules,logit\n");
    for (i, m) in data.manifests.iter().enumerate() {
        text.push_str(&format!(
            "{},{},{},{}\n",
            m.manifest_id, data.labels[i], rules[i], logits[i]
        ));
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
