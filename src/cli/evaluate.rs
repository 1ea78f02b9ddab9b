//! `borderlane evaluate --manifests … --labels … [--model …] [--policy …] [--json FILE]`: rank every
//! manifest by risk and report the KCS protocol's precision and recall at 1/2/5/10 % and the AUC, for the
//! model alone and for the full policy (rules + model).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use borderlane_core::model::Model;
use borderlane_core::score::decide;
use borderlane_core::table::PartnerTable;
use serde_json::json;

use crate::learn::ranking::{evaluate, render, Metrics, Scored};
use crate::learn::train::{Dataset, Labelled};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub data: Labelled,
    /// Model file to rank by alone (default: the policy's model, if it has one).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Policy to rank by its decision score (rules + its model), with an empty partner table.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Also write the metrics as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// A manifest's model score: the probability of its riskiest line.
pub fn model_metrics(model: &Model, data: &Dataset) -> Metrics {
    let mut items: Vec<Scored> = data
        .manifests
        .iter()
        .zip(&data.labels)
        .map(|(m, &label)| Scored {
            score: m
                .shipments
                .iter()
                .filter_map(|s| model.riskiest_line(m, s).map(|(_, p)| p))
                .fold(f64::NEG_INFINITY, f64::max),
            id: m.manifest_id.to_string(),
            label,
        })
        .collect();
    evaluate(&mut items)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.model.is_none() && args.policy.is_none() {
        bail!("nothing to evaluate: give --model, --policy or both");
    }
    let data = args.data.load()?;
    let policy = args
        .policy
        .as_ref()
        .map(|p| crate::load::policy::load(p))
        .transpose()?;
    let model: Option<(String, std::sync::Arc<Model>)> = match (&args.model, &policy) {
        (Some(path), _) => Some((
            path.display().to_string(),
            std::sync::Arc::new(crate::load::policy::load_model(path)?),
        )),
        (None, Some(p)) => p
            .model
            .as_ref()
            .map(|r| ("policy's model".to_string(), r.model.clone())),
        (None, None) => None,
    };
    let mut columns: Vec<(&str, Metrics)> = Vec::new();
    let mut out = serde_json::Map::new();
    out.insert(
        "manifests".into(),
        json!(args.data.manifests.display().to_string()),
    );
    out.insert("rows".into(), json!(data.manifests.len()));
    out.insert(
        "positives".into(),
        json!(data.labels.iter().filter(|l| **l == 1).count()),
    );
    if let Some((name, model)) = &model {
        let m = model_metrics(model, &data);
        out.insert(
            "model".into(),
            json!({"file": name, "version": &*model.version, "metrics": &m}),
        );
        columns.push(("model", m));
    }
    if let Some(policy) = &policy {
        let table = PartnerTable::new();
        let mut items = Vec::with_capacity(data.manifests.len());
        for (m, &label) in data.manifests.iter().zip(&data.labels) {
            if borderlane_core::score::check_port(policy, m).is_err() {
                bail!(
                    "{}: port {} is not in the policy's port table",
                    m.manifest_id,
                    m.port_of_entry
                );
            }
            let d = decide(policy, &table, m);
            items.push(Scored {
                score: f64::from(d.score),
                id: m.manifest_id.to_string(),
                label,
            });
        }
        let m = evaluate(&mut items);
        out.insert(
            "policy".into(),
            json!({
                "file": args.policy.as_ref().map(|p| p.display().to_string()),
                "version": &*policy.version,
                "model_version": policy.model.as_ref().map(|r| r.model.version.to_string()),
                "metrics": &m,
            }),
        );
        columns.push(("rules + model", m));
    }
    let refs: Vec<(&str, &Metrics)> = columns.iter().map(|(n, m)| (*n, m)).collect();
    println!(
        "{} manifests, {} frauds ({:.1} %)",
        data.manifests.len(),
        data.labels.iter().filter(|l| **l == 1).count(),
        100.0 * data.labels.iter().filter(|l| **l == 1).count() as f64
            / data.manifests.len().max(1) as f64
    );
    print!("{}", render(&refs));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&out)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
