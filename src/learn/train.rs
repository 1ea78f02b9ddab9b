//! Training the learned risk model: labelled manifests in, a self-contained `model.json` out (feature recipe
//! with category tables learnt on the training rows, gradient-boosted trees exported into the core's flat
//! format). Features are computed by the core's own [`Model::features`], so training and scoring agree.
//!
//! Target rates of the training rows are out-of-fold (each fold's rows see tables learnt on the other
//! folds), so the trees never learn from a rate that already contains the row's own label.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use borderlane_core::model::{
    category, FeatureDoc, Input, Line, Model, ModelDoc, Numeric, TableDoc, TreeDoc, FORMAT,
    MAX_FEATURES,
};
use borderlane_core::policy::CompiledPolicy;
use borderlane_core::score::{check_port, decide};
use borderlane_core::table::PartnerTable;
use borderlane_core::wire::{parse_manifest, Limits, Manifest};
use forust_ml::objective::ObjectiveType;
use forust_ml::{GradientBooster, Matrix};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::learn::kcs::Label;

/// Labelled manifests: the unit of labels and of ranking.
pub struct Dataset {
    pub manifests: Vec<Manifest>,
    /// Fraud label of each manifest, same order.
    pub labels: Vec<u8>,
    /// Training weight of each manifest, same order (1 for KCS labels; see `learn::outcomes`).
    pub weights: Vec<f64>,
}

/// Labelled manifests on the command line (`train`, `evaluate`): KCS labels (one per manifest) or exam
/// outcomes (labels for the examined manifests only).
#[derive(Debug, Clone, clap::Args)]
pub struct Labelled {
    /// Manifests (NDJSON).
    #[arg(long)]
    pub manifests: PathBuf,
    /// Labels (NDJSON `{"manifest_id", "fraud", …}`), one per manifest.
    #[arg(
        long,
        required_unless_present = "outcomes",
        conflicts_with = "outcomes"
    )]
    pub labels: Option<PathBuf>,
    /// Exam outcomes (NDJSON complete records, docs/wire.md "Exam outcome") as labels: discrepancy or
    /// seizure = positive; manifests without an outcome were not examined and are ignored.
    #[arg(long, requires = "partners")]
    pub outcomes: Option<PathBuf>,
    /// Partner records (NDJSON) the outcomes' decisions were made with: gives each manifest's random
    /// compliance stratum (weakest importer standing) for the selection correction.
    #[arg(long, requires = "outcomes")]
    pub partners: Option<PathBuf>,
}

/// Outcome-labelled data: the selection facts and the join/bias report.
pub type OutcomeInfo = (
    crate::learn::outcomes::Selection,
    crate::learn::outcomes::JoinReport,
);

impl Labelled {
    /// Loads the data; with `--outcomes`, `policy` (the one that selected the exams) gives the random
    /// rates and `weighting` the training weights.
    pub fn load(
        &self,
        policy: Option<&CompiledPolicy>,
        weighting: crate::learn::outcomes::Weighting,
    ) -> anyhow::Result<(Dataset, Option<OutcomeInfo>)> {
        match (&self.labels, &self.outcomes, &self.partners) {
            (Some(labels), None, _) => Ok((Dataset::load(&self.manifests, labels)?, None)),
            (None, Some(outcomes), Some(partners)) => {
                let default;
                let policy = match policy {
                    Some(p) => p,
                    None => {
                        default = crate::load::policy::default_policy();
                        &default
                    }
                };
                let (data, sel, report) = crate::learn::outcomes::load(
                    &self.manifests,
                    outcomes,
                    policy,
                    partners,
                    weighting,
                )?;
                Ok((data, Some((sel, report))))
            }
            _ => bail!("give --labels, or --outcomes with --partners"),
        }
    }
}

impl Dataset {
    /// Reads NDJSON manifests and labels and joins them by `manifest_id`. A manifest without a label, a
    /// label without a manifest, a duplicate or a line that does not parse is an error: evaluation on a
    /// silently shrunken set would be a lie.
    pub fn load(manifests: &Path, labels: &Path) -> anyhow::Result<Dataset> {
        let mut by_id: HashMap<String, u8> = HashMap::new();
        let file = std::fs::File::open(labels)
            .with_context(|| format!("opening labels {}", labels.display()))?;
        for (i, line) in BufReader::new(file).lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let l: Label = serde_json::from_str(&line)
                .with_context(|| format!("{} line {}", labels.display(), i + 1))?;
            if by_id.insert(l.manifest_id.clone(), l.fraud).is_some() {
                bail!(
                    "{} line {}: duplicate label for {}",
                    labels.display(),
                    i + 1,
                    l.manifest_id
                );
            }
        }
        let limits = Limits::default();
        let file = std::fs::File::open(manifests)
            .with_context(|| format!("opening manifests {}", manifests.display()))?;
        let mut out = Dataset {
            manifests: Vec::new(),
            labels: Vec::new(),
            weights: Vec::new(),
        };
        let mut seen = std::collections::HashSet::new();
        for (i, line) in BufReader::new(file).lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let m = parse_manifest(line.as_bytes(), &limits)
                .map_err(|e| anyhow::anyhow!("{} line {}: {e}", manifests.display(), i + 1))?;
            let Some(label) = by_id.get(m.manifest_id.as_str()) else {
                bail!(
                    "{} line {}: no label for {}",
                    manifests.display(),
                    i + 1,
                    m.manifest_id
                );
            };
            if !seen.insert(m.manifest_id.clone()) {
                bail!(
                    "{} line {}: duplicate manifest {}",
                    manifests.display(),
                    i + 1,
                    m.manifest_id
                );
            }
            out.labels.push(*label);
            out.weights.push(1.0);
            out.manifests.push(m);
        }
        if out.manifests.len() != by_id.len() {
            bail!(
                "{} labels but {} manifests: every label needs its manifest",
                by_id.len(),
                out.manifests.len()
            );
        }
        Ok(out)
    }

    /// The rows where `keep` is true.
    pub fn subset(&self, keep: &[bool]) -> Dataset {
        let mut out = Dataset {
            manifests: Vec::new(),
            labels: Vec::new(),
            weights: Vec::new(),
        };
        for (i, _) in keep.iter().enumerate().filter(|(_, k)| **k) {
            out.manifests.push(self.manifests[i].clone());
            out.labels.push(self.labels[i]);
            out.weights.push(self.weights[i]);
        }
        out
    }

    /// Every commodity line as (manifest, shipment, commodity) indices, with its manifest's label.
    pub fn lines(&self) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        for (m, manifest) in self.manifests.iter().enumerate() {
            for (s, shipment) in manifest.shipments.iter().enumerate() {
                for c in 0..shipment.commodities.len() {
                    out.push((m, s, c));
                }
            }
        }
        out
    }

    fn line(&self, (m, s, c): (usize, usize, usize)) -> Line<'_> {
        let manifest = &self.manifests[m];
        let shipment = &manifest.shipments[s];
        Line {
            manifest,
            shipment,
            commodity: &shipment.commodities[c],
        }
    }
}

/// Training settings.
#[derive(Debug, Clone)]
pub struct Params {
    /// Seeds the fold assignment and the booster's row and column sampling.
    pub seed: u64,
    /// Boosting rounds (trees).
    pub trees: usize,
    /// Shrinkage applied to every tree.
    pub learning_rate: f32,
    /// Deepest tree (depth-wise growth).
    pub max_depth: usize,
    /// Minimum hessian sum in a leaf.
    pub min_leaf_weight: f32,
    /// L2 regularisation of leaf weights.
    pub l2: f32,
    /// Share of rows each tree sees.
    pub subsample: f32,
    /// Share of features each tree sees.
    pub colsample: f64,
    /// Folds for the out-of-fold target rates of the training rows.
    pub folds: usize,
    /// Pseudo-count of the target-rate smoothing.
    pub smoothing: f64,
    /// Booster threads (1 keeps the floating-point summation order, hence the model, reproducible).
    pub threads: usize,
    /// Name written into the model file (shown in reasons).
    pub name: String,
    /// Also learn target-rate tables of the parties (importer, shipper, manufacturer, broker, carrier):
    /// for outcome labels, where risk sits with parties; KCS data carries no party ids.
    pub party_tables: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            seed: 20_261_128,
            trees: 100,
            learning_rate: 0.15,
            max_depth: 6,
            min_leaf_weight: 1.0,
            l2: 1.0,
            subsample: 0.8,
            colsample: 0.7,
            folds: 5,
            smoothing: 20.0,
            threads: 1,
            name: "kcs-gbt".into(),
            party_tables: false,
        }
    }
}

/// The feature recipe: category tables (name, key) and the features over them and the numeric inputs;
/// with `parties`, also one table per party role.
pub fn recipe(parties: bool) -> (Vec<(&'static str, Vec<Input>)>, Vec<FeatureDoc>) {
    use Input::*;
    let mut tables: Vec<(&'static str, Vec<Input>)> = vec![
        ("hts6_origin", vec![Hts6, Origin]),
        ("hts6", vec![Hts6]),
        ("hts4", vec![Hts4]),
        ("hts2", vec![Hts2]),
        ("hts4_origin", vec![Hts4, Origin]),
        ("origin", vec![Origin]),
        ("departure", vec![Departure]),
        ("departure_origin", vec![Departure, Origin]),
        ("hts6_departure", vec![Hts6, Departure]),
        ("hts4_departure", vec![Hts4, Departure]),
        ("hts6_origin_departure", vec![Hts6, Origin, Departure]),
        ("port", vec![Port]),
        ("mode", vec![Mode]),
        ("entry_type", vec![EntryType]),
        ("import_use", vec![ImportUse]),
        ("payment_type", vec![PaymentType]),
        ("duty_type", vec![DutyType]),
        ("origin_preference", vec![OriginPreference]),
        ("duty_type_origin", vec![DutyType, Origin]),
        ("hts6_duty_type", vec![Hts6, DutyType]),
    ];
    if parties {
        tables.extend([
            ("importer", vec![Importer]),
            ("shipper", vec![Shipper]),
            ("manufacturer", vec![Manufacturer]),
            ("broker", vec![Broker]),
            ("carrier", vec![Carrier]),
        ]);
    }
    let mut features = Vec::new();
    for (name, _) in &tables {
        features.push(FeatureDoc::Rate {
            name: format!("{name} rate"),
            table: (*name).into(),
        });
        features.push(FeatureDoc::Count {
            name: format!("{name} count"),
            table: (*name).into(),
        });
    }
    features.extend([
        FeatureDoc::Value {
            name: "weight kg".into(),
            input: Numeric::WeightKg,
        },
        FeatureDoc::Value {
            name: "value usd".into(),
            input: Numeric::ValueUsd,
        },
        FeatureDoc::Log {
            name: "log weight".into(),
            input: Numeric::WeightKg,
        },
        FeatureDoc::Log {
            name: "log value".into(),
            input: Numeric::ValueUsd,
        },
        FeatureDoc::LogRatio {
            name: "log value per kg".into(),
            num: Numeric::ValueUsd,
            den: Numeric::WeightKg,
        },
        FeatureDoc::Value {
            name: "duty rate".into(),
            input: Numeric::DutyRate,
        },
        FeatureDoc::Value {
            name: "hts chapter".into(),
            input: Numeric::HtsChapter,
        },
        FeatureDoc::Value {
            name: "hts heading".into(),
            input: Numeric::HtsHeading,
        },
        FeatureDoc::Round {
            name: "round weight".into(),
            input: Numeric::WeightKg,
            step: 1.0,
        },
    ]);
    (tables, features)
}

/// Learns every table on `rows`, scaling counts by `scale` (out-of-fold tables see (k−1)/k of the rows;
/// scaling keeps their counts on the full tables' scale). Entries sorted, so the file is deterministic.
fn fit_tables(
    data: &Dataset,
    lines: &[(usize, usize, usize)],
    rows: &[usize],
    specs: &[(&'static str, Vec<Input>)],
    smoothing: f64,
    scale: f64,
) -> Vec<TableDoc> {
    let positives: f64 = rows
        .iter()
        .map(|&r| f64::from(data.labels[lines[r].0]))
        .sum();
    let prior = if rows.is_empty() {
        0.0
    } else {
        positives / rows.len() as f64
    };
    specs
        .iter()
        .map(|(name, key)| {
            let mut counts: BTreeMap<Vec<String>, (f64, f64)> = BTreeMap::new();
            for &r in rows {
                let line = data.line(lines[r]);
                let parts: Vec<String> = key
                    .iter()
                    .map(|k| String::from_utf8_lossy(category(*k, &line)).into_owned())
                    .collect();
                let e = counts.entry(parts).or_default();
                e.0 += f64::from(data.labels[lines[r].0]);
                e.1 += 1.0;
            }
            TableDoc {
                name: (*name).into(),
                key: key.clone(),
                prior,
                smoothing,
                entries: counts
                    .into_iter()
                    .map(|(k, (p, n))| (k, p * scale, n * scale))
                    .collect(),
            }
        })
        .collect()
}

/// A model with tables and features but no trees: what computes features.
fn featurizer(tables: Vec<TableDoc>, features: &[FeatureDoc]) -> anyhow::Result<Model> {
    let doc = ModelDoc {
        format: FORMAT.into(),
        name: "featurizer".into(),
        description: String::new(),
        training: BTreeMap::new(),
        tables,
        features: features.to_vec(),
        base_score: 0.0,
        trees: Vec::new(),
    };
    Model::from_doc(&doc).map_err(|e| anyhow::anyhow!("feature recipe is invalid: {e:?}"))
}

/// Column-major feature matrix (perpetual's layout): `x[f * rows + r]`.
pub struct Features {
    pub names: Vec<String>,
    pub rows: usize,
    pub x: Vec<f64>,
}

impl Features {
    fn new(names: Vec<String>, rows: usize) -> Features {
        let x = vec![0.0; names.len() * rows];
        Features { names, rows, x }
    }
    fn set_row(&mut self, r: usize, v: &[f64]) {
        for (f, val) in v.iter().enumerate().take(self.names.len()) {
            self.x[f * self.rows + r] = *val;
        }
    }
    pub fn row(&self, r: usize, out: &mut [f64]) {
        for (f, o) in out.iter_mut().enumerate().take(self.names.len()) {
            *o = self.x[f * self.rows + r];
        }
    }
}

fn featurize(
    model: &Model,
    data: &Dataset,
    lines: &[(usize, usize, usize)],
    rows: &[usize],
    out: &mut Features,
) {
    let mut v = [0f64; MAX_FEATURES];
    for &r in rows {
        model.features(&data.line(lines[r]), &mut v);
        out.set_row(r, &v[..model.n_features()]);
    }
}

/// What training produced.
pub struct Trained {
    pub doc: ModelDoc,
    pub model: Model,
    /// Out-of-fold feature matrix the trees were fitted on (for `--dump-features`).
    pub train_features: Features,
    pub train_labels: Vec<f64>,
    /// Fold of each manifest (for the curve's out-of-fold model scores).
    pub fold_of: Vec<usize>,
}

/// Progress lines on stderr, with the time since training began.
struct Progress(Instant);
impl Progress {
    fn say(&self, what: impl AsRef<str>) {
        eprintln!(
            "[{:6.2} s] {}",
            self.0.elapsed().as_secs_f64(),
            what.as_ref()
        );
    }
}

/// Relays the booster's per-round log lines to stderr as progress.
struct StderrLog;
impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info && m.target().starts_with("forust")
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("           forust: {}", r.args());
        }
    }
    fn flush(&self) {}
}
static LOGGER: StderrLog = StderrLog;

/// Trains a model on a labelled dataset.
pub fn train(data: &Dataset, params: &Params, progress: bool) -> anyhow::Result<Trained> {
    let p = Progress(Instant::now());
    let say = |s: String| {
        if progress {
            p.say(s)
        }
    };
    let lines = data.lines();
    let n = lines.len();
    if n < params.folds * 2 {
        bail!("{n} commodity lines are too few to train on");
    }
    let labels: Vec<f64> = lines.iter().map(|l| f64::from(data.labels[l.0])).collect();
    let positives = labels.iter().sum::<f64>();
    say(format!(
        "{} manifests, {n} lines, {positives} positive ({:.1} %)",
        data.manifests.len(),
        100.0 * positives / n as f64
    ));

    // Folds by manifest, so the lines of one manifest never see each other's labels.
    let mut order: Vec<usize> = (0..data.manifests.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(params.seed));
    let mut fold_of = vec![0usize; data.manifests.len()];
    for (i, m) in order.into_iter().enumerate() {
        fold_of[m] = i % params.folds;
    }
    let (specs, features) = recipe(params.party_tables);
    let names: Vec<String> = features.iter().map(|f| f.name().to_string()).collect();
    let mut oof = Features::new(names.clone(), n);
    let scale = params.folds as f64 / (params.folds - 1) as f64;
    for k in 0..params.folds {
        let (inside, outside): (Vec<usize>, Vec<usize>) =
            (0..n).partition(|&r| fold_of[lines[r].0] == k);
        let tables = fit_tables(data, &lines, &outside, &specs, params.smoothing, scale);
        featurize(
            &featurizer(tables, &features)?,
            data,
            &lines,
            &inside,
            &mut oof,
        );
        say(format!(
            "fold {}/{}: out-of-fold target rates for {} lines",
            k + 1,
            params.folds,
            inside.len()
        ));
    }
    let all: Vec<usize> = (0..n).collect();
    let tables = fit_tables(data, &lines, &all, &specs, params.smoothing, 1.0);
    say(format!(
        "{} category tables ({} entries) on all training lines; {} features",
        tables.len(),
        tables.iter().map(|t| t.entries.len()).sum::<usize>(),
        features.len()
    ));

    say(format!(
        "fitting forust-ml: {} trees, learning rate {}, depth {}, seed {}",
        params.trees, params.learning_rate, params.max_depth, params.seed
    ));
    if progress {
        let _ = log::set_logger(&LOGGER).map(|()| log::set_max_level(log::LevelFilter::Info));
    }
    let mut booster = booster(params);
    booster.log_iterations = if progress { 50 } else { 0 };
    let matrix = Matrix::new(&oof.x, n, names.len());
    let weights: Vec<f64> = lines.iter().map(|l| data.weights[l.0]).collect();
    booster
        .fit(&matrix, &labels, &weights, None)
        .map_err(|e| anyhow::anyhow!("forust-ml: {e}"))?;
    say(format!("{} trees fitted", booster.trees.len()));

    let trees = booster
        .trees
        .iter()
        .map(export_tree)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut training = BTreeMap::new();
    training.insert("library".into(), json!("forust-ml 0.8"));
    training.insert("objective".into(), json!("log loss"));
    training.insert("trees".into(), json!(params.trees));
    training.insert("learning_rate".into(), json!(params.learning_rate));
    training.insert("max_depth".into(), json!(params.max_depth));
    training.insert("min_leaf_weight".into(), json!(params.min_leaf_weight));
    training.insert("l2".into(), json!(params.l2));
    training.insert("subsample".into(), json!(params.subsample));
    training.insert("colsample".into(), json!(params.colsample));
    training.insert("seed".into(), json!(params.seed));
    training.insert("folds".into(), json!(params.folds));
    training.insert("smoothing".into(), json!(params.smoothing));
    training.insert("manifests".into(), json!(data.manifests.len()));
    training.insert("lines".into(), json!(n));
    training.insert("positives".into(), json!(positives));
    if params.party_tables {
        training.insert("party_tables".into(), json!(true));
    }
    let doc = ModelDoc {
        format: FORMAT.into(),
        name: params.name.clone(),
        description: "Gradient-boosted trees over goods, value, duty and party features with smoothed \
                      target rates learnt on the training period (out-of-fold for the training rows)."
            .into(),
        training,
        tables,
        features,
        base_score: booster.base_score,
        trees,
    };
    let model =
        Model::from_doc(&doc).map_err(|e| anyhow::anyhow!("exported model is invalid: {e:?}"))?;

    // The exported trees must reproduce the library's own predictions on the rows they were fitted on.
    let reference = booster.predict(&matrix, false);
    let mut row = vec![0f64; names.len()];
    let mut worst = 0f64;
    for (r, want) in reference.iter().enumerate() {
        oof.row(r, &mut row);
        worst = worst.max((model.margin(&row) - want).abs());
    }
    if worst > 1e-6 {
        bail!("exported trees disagree with forust-ml by {worst:e} log-odds");
    }
    say(format!(
        "export checked against forust-ml on {n} lines (max |Δ| {worst:.1e} log-odds)"
    ));
    Ok(Trained {
        doc,
        model,
        train_features: oof,
        train_labels: labels,
        fold_of,
    })
}

/// The booster of `params` (not yet fitted).
fn booster(params: &Params) -> GradientBooster {
    GradientBooster::default()
        .set_objective_type(ObjectiveType::LogLoss)
        .set_iterations(params.trees)
        .set_learning_rate(params.learning_rate)
        .set_max_depth(params.max_depth)
        .set_min_leaf_weight(params.min_leaf_weight)
        .set_l2(params.l2)
        .set_subsample(params.subsample)
        .set_colsample_bytree(params.colsample)
        .set_seed(params.seed)
        .set_parallel(params.threads > 1)
        .set_num_threads(Some(params.threads))
        .set_missing(f64::NAN)
}

/// One forust-ml tree in the flat format: depth-first, children after parents, leaves feature -1.
fn export_tree(tree: &forust_ml::tree::Tree) -> anyhow::Result<TreeDoc> {
    let mut out = TreeDoc::default();
    fn visit(tree: &forust_ml::tree::Tree, num: usize, out: &mut TreeDoc) -> anyhow::Result<u32> {
        let node = tree
            .nodes
            .iter()
            .find(|n| n.num == num)
            .with_context(|| format!("tree has no node {num}"))?;
        let me = out.feature.len();
        out.feature.push(-1);
        out.threshold.push(0.0);
        out.left.push(0);
        out.right.push(0);
        out.missing.push(0);
        out.value.push(node.weight_value);
        if node.is_leaf {
            return Ok(me as u32);
        }
        let left = visit(tree, node.left_child, out)?;
        let right = visit(tree, node.right_child, out)?;
        let missing = if node.missing_node == node.left_child {
            left
        } else if node.missing_node == node.right_child {
            right
        } else {
            visit(tree, node.missing_node, out)?
        };
        out.feature[me] = i32::try_from(node.split_feature).context("feature index")?;
        out.threshold[me] = node.split_value;
        out.left[me] = left;
        out.right[me] = right;
        out.missing[me] = missing;
        Ok(me as u32)
    }
    visit(tree, 0, &mut out)?;
    Ok(out)
}

/// Features of every line of a dataset under a trained model (full tables): for dumps and checks.
pub fn features_of(model: &Model, data: &Dataset) -> (Features, Vec<f64>) {
    let lines = data.lines();
    let names = model.info.features.iter().map(|n| n.to_string()).collect();
    let mut out = Features::new(names, lines.len());
    let all: Vec<usize> = (0..lines.len()).collect();
    featurize(model, data, &lines, &all, &mut out);
    let labels = lines.iter().map(|l| f64::from(data.labels[l.0])).collect();
    (out, labels)
}

/// Writes a feature matrix as CSV (`label` first), for comparing libraries on identical inputs.
pub fn write_features_csv(path: &Path, f: &Features, labels: &[f64]) -> anyhow::Result<()> {
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("creating {}", path.display()))?;
    let mut header = vec!["label".to_string()];
    header.extend(f.names.iter().cloned());
    w.write_record(&header)?;
    let mut row = vec![0f64; f.names.len()];
    for (r, label) in labels.iter().enumerate() {
        f.row(r, &mut row);
        let mut rec = vec![label.to_string()];
        rec.extend(row.iter().map(|v| {
            if v.is_nan() {
                String::new()
            } else {
                v.to_string()
            }
        }));
        w.write_record(&rec)?;
    }
    w.flush()?;
    Ok(())
}

/// Out-of-fold model log-odds of every training manifest: for each fold, a booster of the same settings
/// fitted on the other folds' rows (their out-of-fold features) scores this fold's rows, so no manifest's
/// score comes from trees that saw its label. A manifest's score is its riskiest line's, as in the policy.
pub fn oof_logits(data: &Dataset, trained: &Trained, params: &Params) -> anyhow::Result<Vec<f64>> {
    let lines = data.lines();
    let f = &trained.train_features;
    let cols = f.names.len();
    let sub = |rows: &[usize]| -> Vec<f64> {
        let mut x = Vec::with_capacity(rows.len() * cols);
        for c in 0..cols {
            x.extend(rows.iter().map(|&r| f.x[c * f.rows + r]));
        }
        x
    };
    let mut out = vec![f64::NEG_INFINITY; data.manifests.len()];
    for k in 0..params.folds {
        let (inside, outside): (Vec<usize>, Vec<usize>) =
            (0..lines.len()).partition(|&r| trained.fold_of[lines[r].0] == k);
        let y: Vec<f64> = outside.iter().map(|&r| trained.train_labels[r]).collect();
        let w: Vec<f64> = outside.iter().map(|&r| data.weights[lines[r].0]).collect();
        let x = sub(&outside);
        let mut b = booster(params);
        b.fit(&Matrix::new(&x, outside.len(), cols), &y, &w, None)
            .map_err(|e| anyhow::anyhow!("forust-ml: {e}"))?;
        let xi = sub(&inside);
        let margins = b.predict(&Matrix::new(&xi, inside.len(), cols), false);
        for (&r, m) in inside.iter().zip(margins) {
            let slot = &mut out[lines[r].0];
            *slot = slot.max(m);
        }
    }
    Ok(out)
}

/// Rules-only decision score of every manifest under `policy` (its `[model]` left out), with an empty
/// partner table, as `evaluate` ranks them.
pub fn rules_scores(policy: &CompiledPolicy, data: &Dataset) -> anyhow::Result<Vec<f64>> {
    let rules = policy.without_model();
    let table = PartnerTable::new();
    data.manifests
        .iter()
        .map(|m| {
            if check_port(&rules, m).is_err() {
                bail!(
                    "{}: port {} is not in the policy's port table",
                    m.manifest_id,
                    m.port_of_entry
                );
            }
            Ok(f64::from(decide(&rules, &table, m).score))
        })
        .collect()
}

/// The fitted `[model] curve` and the numbers behind it (recorded in the model file's `training.curve`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct CurveFit {
    /// Logistic regression `logit P(fraud) = intercept + w_rules · rules + w_model · model log-odds` on the
    /// training manifests: a diagnostic (on KCS the rules' weight is ≈ 0, so it cannot set the scale).
    pub intercept: f64,
    pub w_rules: f64,
    pub w_model: f64,
    /// Training AUC (out-of-fold model scores) of the model alone, the rules alone and rules + curve.
    pub auc_model: f64,
    pub auc_rules: f64,
    pub auc_combined: f64,
    /// The AUC the combination may lose against the model alone.
    pub tolerance: f64,
    /// Rule points per unit of model log-odds: the smallest (the rules keep the most say) whose
    /// combination is within `tolerance` of the model's AUC.
    pub scale: f64,
    /// Anchor: the model alone reaches `high_points` (the policy's high band) at `high_probability`.
    pub high_probability: f64,
    pub high_points: i32,
    /// Where the points start: `sigmoid(logit(high_probability) − high_points / scale)`.
    pub p0: f64,
    /// Cap: the points at `max_probability`.
    pub max_points: i32,
    pub max_probability: f64,
    pub manifests: usize,
}

impl CurveFit {
    /// The ready-to-paste `[model]` lines.
    pub fn snippet(&self, file: &str) -> String {
        format!(
            "[model]\nfile = \"{file}\"\n# fitted by borderlane train --policy on {} manifests: train AUC model {:.4}, \
             rules {:.4}, rules + curve {:.4}\ncurve = {{ p0 = {:.4}, scale = {}, max_points = {} }}\n",
            self.manifests,
            self.auc_model,
            self.auc_rules,
            self.auc_combined,
            self.p0,
            self.scale,
            self.max_points
        )
    }
}

/// ROC AUC of `score` against `labels` (ties count one half).
pub fn auc(score: &[f64], labels: &[u8]) -> f64 {
    let mut idx: Vec<usize> = (0..score.len()).collect();
    idx.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let positives = labels.iter().filter(|l| **l == 1).count() as f64;
    let negatives = labels.len() as f64 - positives;
    let (mut above, mut pairs, mut i) = (0f64, 0f64, 0);
    while i < idx.len() {
        let (mut j, mut p, mut n) = (i, 0f64, 0f64);
        while j < idx.len() && score[idx[j]] == score[idx[i]] {
            if labels[idx[j]] == 1 {
                p += 1.0;
            } else {
                n += 1.0;
            }
            j += 1;
        }
        pairs += n * (above + p / 2.0);
        above += p;
        i = j;
    }
    pairs / (positives * negatives).max(1.0)
}

/// Fits the curve `points = clamp(round(scale · (logit p − logit p0)), 0, max_points)` on training data:
///
/// - the anchor: the model alone reaches `high_points` at `high_probability` (so `p0` follows from the
///   scale, and the share of manifests the model alone sends to the high band stays put);
/// - the scale: the smallest of 1, 2, … 1000 points per unit of log-odds whose ranking (rules + curve)
///   has a training AUC within `tolerance` of the model's own (out-of-fold scores): the flattest curve,
///   where the rules move the ranking most, that still ranks about as well as the model;
/// - the cap: the curve's value at `max_probability`.
///
/// Deterministic (a grid and a sort). Also fits, for the record, the logistic regression of the label on
/// (1, rules, log-odds) by Newton's method.
pub fn fit_curve(
    rules: &[f64],
    logit: &[f64],
    labels: &[u8],
    (high_probability, high_points): (f64, i32),
    tolerance: f64,
    max_probability: f64,
) -> anyhow::Result<CurveFit> {
    let n = labels.len();
    let mut w = [0f64; 3];
    for _ in 0..100 {
        let mut g = [0f64; 3];
        let mut h = [[0f64; 3]; 3];
        for i in 0..n {
            let x = [1.0, rules[i], logit[i]];
            let z = w[0] + w[1] * x[1] + w[2] * x[2];
            let p = 1.0 / (1.0 + (-z).exp());
            let y = f64::from(labels[i]);
            for a in 0..3 {
                g[a] += (y - p) * x[a];
                for b in 0..3 {
                    h[a][b] += p * (1.0 - p) * x[a] * x[b];
                }
            }
        }
        let step = solve3(h, g).context("singular Hessian fitting the regression")?;
        for (w, s) in w.iter_mut().zip(step) {
            *w += s;
        }
        if step.iter().map(|s| s.abs()).fold(0.0, f64::max) < 1e-10 {
            break;
        }
    }
    let lg = |p: f64| (p / (1.0 - p)).ln();
    let auc_model = auc(logit, labels);
    let auc_rules = auc(rules, labels);
    let curve = |scale: f64| {
        let l0 = lg(high_probability) - f64::from(high_points) / scale;
        let max = (scale * (lg(max_probability) - l0))
            .round()
            .clamp(0.0, 10_000.0);
        (l0, max)
    };
    let combined = |scale: f64| {
        let (l0, max) = curve(scale);
        let s: Vec<f64> = (0..n)
            .map(|i| rules[i] + (scale * (logit[i] - l0)).round().clamp(0.0, max))
            .collect();
        auc(&s, labels)
    };
    let mut found = None;
    for k in 1..=1000 {
        let scale = f64::from(k);
        let a = combined(scale);
        if a >= auc_model - tolerance {
            found = Some((scale, a));
            break;
        }
    }
    let Some((scale, auc_combined)) = found else {
        bail!("no scale up to 1000 points per log-odds brings rules + model within {tolerance} of the model's AUC {auc_model:.4}");
    };
    let (l0, max) = curve(scale);
    Ok(CurveFit {
        intercept: w[0],
        w_rules: w[1],
        w_model: w[2],
        auc_model,
        auc_rules,
        auc_combined,
        tolerance,
        scale,
        high_probability,
        high_points,
        p0: 1.0 / (1.0 + (-l0).exp()),
        max_points: max as i32,
        max_probability,
        manifests: n,
    })
}

/// Solves `h · x = g` for a 3×3 system (Gaussian elimination with partial pivoting).
fn solve3(mut h: [[f64; 3]; 3], mut g: [f64; 3]) -> Option<[f64; 3]> {
    for c in 0..3 {
        let p = (c..3).max_by(|&a, &b| h[a][c].abs().total_cmp(&h[b][c].abs()))?;
        if h[p][c].abs() < 1e-300 {
            return None;
        }
        h.swap(c, p);
        g.swap(c, p);
        for r in c + 1..3 {
            let f = h[r][c] / h[c][c];
            let pivot = h[c];
            for (x, p) in h[r].iter_mut().zip(pivot).skip(c) {
                *x -= f * p;
            }
            g[r] -= f * g[c];
        }
    }
    let mut x = [0f64; 3];
    for c in (0..3).rev() {
        let s: f64 = (c + 1..3).map(|k| h[c][k] * x[k]).sum();
        x[c] = (g[c] - s) / h[c][c];
    }
    Some(x)
}
