//! Learned risk model: the self-contained model file (feature recipe with its category tables, and
//! gradient-boosted trees in borderlane's own flat format), compiled at load time into contiguous arrays,
//! evaluated allocation-free per commodity line, and explained by tree-path (Saabas) attribution.
//!
//! The core never reads files: adapters read the model file and hand its bytes to [`Model::parse`]. The
//! file needs no ML library to evaluate, and training (crate `borderlane`) computes its features through
//! [`Model::features`], so training and scoring can never disagree on a feature.
//!
//! Tree convention: at an internal node go to `left` when `x < threshold`, to `right` otherwise, and to
//! `missing` when `x` is NaN (an absent numeric input). Every node carries a `value`: for a leaf the
//! additive output (log-odds), for an internal node the value the path passes through, so the change of
//! value along the path can be attributed to each split's feature.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use xxhash_rust::xxh3::xxh3_64;

use crate::decision::Detail;
use crate::policy::PolicyError;
use crate::wire::{Commodity, Manifest, Shipment};

/// The `format` value this build reads.
pub const FORMAT: &str = "borderlane-gbt/1";
/// Most features a model may use: the feature vector lives on the stack.
pub const MAX_FEATURES: usize = 64;
/// Most parts in a table key (e.g. HS6 × origin × departure).
pub const MAX_KEY_PARTS: usize = 3;
/// Longest table key in bytes; a longer runtime key cannot be in any table and reads as unseen.
const MAX_KEY_BYTES: usize = 256;
/// Separates key parts before hashing (ASCII unit separator: never in a code or id).
const KEY_SEP: u8 = 0x1f;
/// How many contributing features a model reason names.
pub const TOP_FEATURES: usize = 3;
/// Marks a leaf in the compiled node array.
const LEAF: u16 = u16::MAX;
/// Deepest tree the evaluator takes, in split levels, after a node with a separate missing child is
/// counted as two (a NaN test, then the split). Every tree is evaluated as a complete binary tree of the
/// model's depth, so the forest costs `trees × 2^depth` slots: 12 levels (a depth-6 tree whose every split has
/// its own missing branch) is 4,095 slots per tree.
pub const MAX_DEPTH: u32 = 12;
/// Trees walked in lockstep by [`Model::margin`]: independent load chains the CPU overlaps.
const LANES: usize = 8;

// ---------------------------------------------------------------------------------------------------------
// The document (model.json)

/// A categorical input of a commodity line, read from the line, its shipment or its manifest. Absent
/// optional fields read as the empty string, a category of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// HTS chapter, 2 digits.
    Hts2,
    /// HTS heading, 4 digits.
    Hts4,
    /// HTS subheading, 6 digits.
    Hts6,
    Origin,
    Departure,
    Port,
    Mode,
    Carrier,
    Importer,
    Consignee,
    Shipper,
    Manufacturer,
    Broker,
    EntryType,
    ProcessType,
    ImportUse,
    PaymentType,
    DutyType,
    OriginPreference,
}

/// A numeric input of a commodity line; absent values are NaN (the trees' missing branch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Numeric {
    WeightKg,
    ValueUsd,
    Quantity,
    DutyRate,
    /// The HTS chapter as a number (1–99): trees can split ranges of the tariff.
    HtsChapter,
    /// The HTS heading as a number (101–9999).
    HtsHeading,
}

/// A category table learnt on the training period: per key, positives and rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableDoc {
    /// Referenced by `rate` and `count` features.
    pub name: String,
    /// The inputs whose values, joined, form the key (1 to 3 parts).
    pub key: Vec<Input>,
    /// Base rate of the label; an unseen key reads as the prior.
    pub prior: f64,
    /// Pseudo-count `m` of the smoothing: rate = (positives + m·prior) / (rows + m).
    pub smoothing: f64,
    /// `[[key parts…], positives, rows]`, one per key seen in training.
    pub entries: Vec<(Vec<String>, f64, f64)>,
}

/// One feature of the recipe, in the order of the feature vector the trees index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FeatureDoc {
    /// Smoothed target rate of the line's key in a table.
    Rate { name: String, table: String },
    /// Training rows with the line's key in a table (how familiar the category is).
    Count { name: String, table: String },
    /// A numeric input as declared.
    Value { name: String, input: Numeric },
    /// `ln(1 + x)` of a numeric input.
    Log { name: String, input: Numeric },
    /// `ln(1 + num) − ln(1 + den)`: a ratio on a log scale that stays finite at zero (value per kg).
    LogRatio {
        name: String,
        num: Numeric,
        den: Numeric,
    },
    /// 1 when the input is a whole multiple of `step` (round figures), 0 otherwise.
    Round {
        name: String,
        input: Numeric,
        step: f64,
    },
}

impl FeatureDoc {
    pub fn name(&self) -> &str {
        match self {
            FeatureDoc::Rate { name, .. }
            | FeatureDoc::Count { name, .. }
            | FeatureDoc::Value { name, .. }
            | FeatureDoc::Log { name, .. }
            | FeatureDoc::LogRatio { name, .. }
            | FeatureDoc::Round { name, .. } => name,
        }
    }
}

/// One tree in the flat format: parallel arrays indexed by node, node 0 the root, children after parents.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeDoc {
    /// Feature index of the split, or -1 for a leaf.
    pub feature: Vec<i32>,
    /// Go left when `x < threshold` (ignored at leaves).
    pub threshold: Vec<f64>,
    pub left: Vec<u32>,
    pub right: Vec<u32>,
    /// Child taken when the feature is NaN.
    pub missing: Vec<u32>,
    /// Leaf output, or the internal node's value (for attribution), in log-odds. Single precision: what
    /// boosting libraries store, and half the file.
    pub value: Vec<f32>,
}

/// The model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelDoc {
    /// Must be [`FORMAT`]; another format is refused, never guessed at.
    pub format: String,
    /// Shown in reasons, so an officer knows which model spoke.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Provenance (library, seed, data, metrics); informational, never read by scoring.
    #[serde(default)]
    pub training: BTreeMap<String, serde_json::Value>,
    pub tables: Vec<TableDoc>,
    pub features: Vec<FeatureDoc>,
    /// Log-odds before any tree.
    pub base_score: f64,
    pub trees: Vec<TreeDoc>,
}

// ---------------------------------------------------------------------------------------------------------
// Compiled form

/// A compiled table: key hash → (smoothed rate, rows).
#[derive(Debug, Clone)]
struct Table {
    key: [Option<Input>; MAX_KEY_PARTS],
    rates: HashMap<u64, (f64, f64), foldhash::fast::FixedState>,
    prior: f64,
}

/// A feature of the compiled recipe. `Rate` and `Count` name a slot of [`Model::looked_up`]: each table
/// a feature reads is looked up once per line, however many features read it.
#[derive(Debug, Clone, Copy)]
enum Feature {
    Rate(u8),
    Count(u8),
    Value(Numeric),
    Log(Numeric),
    LogRatio(Numeric, Numeric),
    Round(Numeric, f64),
}

/// A node of the parsed forest (absolute child indices), the input of [`Heap::build`].
#[derive(Debug, Clone, Copy)]
struct Node {
    threshold: f64,
    value: f64,
    /// Split feature, or [`LEAF`].
    feature: u16,
    left: u32,
    right: u32,
    missing: u32,
}

/// What a reason needs to render: shared by every decision citing the model.
#[derive(Debug, PartialEq)]
pub struct ModelInfo {
    pub name: Box<str>,
    pub features: Box<[Box<str>]>,
}

/// A compiled model: tables hashed, every tree flattened into one contiguous node array.
#[derive(Debug, Clone)]
pub struct Model {
    /// `sha256:…` of the model file's bytes (or of the canonical document when built from one).
    pub version: Arc<str>,
    pub info: Arc<ModelInfo>,
    tables: Box<[Table]>,
    features: Box<[Feature]>,
    /// The tables the features read, each once per line (`Feature::Rate`/`Count` index this).
    looked_up: Box<[u16]>,
    base_score: f64,
    /// The forest for scoring: every tree padded to a complete binary tree of `depth` levels.
    heap: Heap,
}

/// Complete binary trees in heap order (children of slot `i` at `2i+1` and `2i+2`), all of one depth, so
/// a walk is exactly `depth` branch-free steps and [`LANES`] trees go down together. A leaf above the
/// bottom is padded with splits whose both sides lead to copies of its value; a node with a separate
/// missing child becomes a NaN test (an indicator input: only NaN goes right, to the missing subtree) above the
/// split. The walk takes the same path to the same value as the parsed tree; `depth` ≤ [`MAX_DEPTH`].
#[derive(Debug, Clone)]
struct Heap {
    depth: u32,
    /// Per tree, `2^depth - 1` split slots.
    slots: Box<[Slot]>,
    /// Per split slot, the value the path passes through (for attribution only).
    value: Box<[f64]>,
    /// Per tree, `2^depth` leaf values.
    leaf: Box<[f64]>,
}

/// A split of the heap layout: go right when `inputs[input] >= threshold`. One struct so a step is one
/// bounds-checked load.
#[derive(Debug, Clone, Copy)]
struct Slot {
    threshold: f64,
    /// Index into the walk's inputs ([`Heap::inputs`]): feature `f` itself when NaN goes left,
    /// `NAN_HIGH + f` when NaN goes right, `IS_NAN + f` for a NaN test.
    input: u8,
}

/// Padding: both sides lead to copies of the same leaf, so the direction is immaterial.
const PAD: Slot = Slot {
    threshold: f64::INFINITY,
    input: 0,
};

/// Offset of the inputs where NaN reads as +inf (so `>=` sends it right).
const NAN_HIGH: u8 = MAX_FEATURES as u8;
/// Offset of the inputs that read 1 for NaN and 0 otherwise (NaN tests, threshold 0.5).
const IS_NAN: u8 = 2 * MAX_FEATURES as u8;

impl Heap {
    /// Split slots per tree.
    #[inline]
    fn splits(&self) -> usize {
        (1usize << self.depth) - 1
    }

    /// Number of trees.
    fn trees(&self) -> usize {
        self.leaf.len() >> self.depth
    }

    /// One step down tree `t` from slot `s`: the child slot.
    #[inline]
    fn step(&self, xs: &[f64; 256], t: usize, s: usize) -> usize {
        let slot = self.slots[t * self.splits() + s];
        2 * s + 1 + usize::from(xs[usize::from(slot.input)] >= slot.threshold)
    }

    /// The walk's inputs: the features as given (NaN compares false, so goes left), then with NaN as
    /// +inf (goes right), then NaN indicators; 256 entries so a `u8` index needs no bounds check.
    #[inline]
    fn inputs(x: &[f64]) -> [f64; 256] {
        let mut xs = [0f64; 256];
        for (f, &v) in x.iter().take(MAX_FEATURES).enumerate() {
            xs[f] = v;
            xs[usize::from(NAN_HIGH) + f] = if v.is_nan() { f64::INFINITY } else { v };
            xs[usize::from(IS_NAN) + f] = if v.is_nan() { 1.0 } else { 0.0 };
        }
        xs
    }

    /// Split levels of the tree under absolute node `i` (0 for a leaf).
    fn levels(nodes: &[Node], i: usize) -> u32 {
        let n = &nodes[i];
        if n.feature == LEAF {
            return 0;
        }
        let (l, r, m) = (n.left as usize, n.right as usize, n.missing as usize);
        let split = 1 + Self::levels(nodes, l).max(Self::levels(nodes, r));
        if m == l || m == r {
            split
        } else {
            // The NaN test above the split, then the split or the missing subtree.
            1 + split.max(Self::levels(nodes, m))
        }
    }

    fn build(nodes: &[Node], roots: &[u32]) -> Result<Heap, u32> {
        let depth = roots
            .iter()
            .map(|&r| Self::levels(nodes, r as usize))
            .max()
            .unwrap_or(0);
        if depth > MAX_DEPTH {
            return Err(depth);
        }
        let splits = (1usize << depth) - 1;
        let mut heap = Heap {
            depth,
            slots: vec![PAD; splits * roots.len()].into_boxed_slice(),
            value: vec![0.0; splits * roots.len()].into_boxed_slice(),
            leaf: vec![0.0; (splits + 1) * roots.len()].into_boxed_slice(),
        };
        for (t, &root) in roots.iter().enumerate() {
            heap.fill(nodes, t, root as usize, 0, 0);
        }
        Ok(heap)
    }

    /// Places absolute node `i` at slot `slot` (level `level`) of tree `t`.
    fn fill(&mut self, nodes: &[Node], t: usize, i: usize, slot: usize, level: u32) {
        let splits = self.splits();
        if level == self.depth {
            self.leaf[t * (splits + 1) + slot - splits] = nodes[i].value;
            return;
        }
        let n = nodes[i];
        let at = t * splits + slot;
        self.value[at] = n.value;
        if n.feature == LEAF {
            // Padding: threshold +inf and NaN left; both sides carry the leaf down anyway.
            self.fill(nodes, t, i, 2 * slot + 1, level + 1);
            self.fill(nodes, t, i, 2 * slot + 2, level + 1);
            return;
        }
        let (l, r, m) = (n.left as usize, n.right as usize, n.missing as usize);
        if m != l && m != r {
            // NaN test: the indicator is 1 only for NaN, which goes right to the missing subtree.
            self.slots[at] = Slot {
                threshold: 0.5,
                input: IS_NAN + n.feature as u8,
            };
            let split = Node {
                missing: n.left,
                ..n
            };
            self.fill_split(nodes, t, split, 2 * slot + 1, level + 1);
            self.fill(nodes, t, m, 2 * slot + 2, level + 1);
            return;
        }
        self.fill_split(nodes, t, n, slot, level);
    }

    fn fill_split(&mut self, nodes: &[Node], t: usize, n: Node, slot: usize, level: u32) {
        let at = t * self.splits() + slot;
        self.value[at] = n.value;
        let base = if n.missing == n.right { NAN_HIGH } else { 0 };
        self.slots[at] = Slot {
            threshold: n.threshold,
            input: base + n.feature as u8,
        };
        self.fill(nodes, t, n.left as usize, 2 * slot + 1, level + 1);
        self.fill(nodes, t, n.right as usize, 2 * slot + 2, level + 1);
    }
}

/// A commodity line in its shipment and manifest: what the model reads.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    pub manifest: &'a Manifest,
    pub shipment: &'a Shipment,
    pub commodity: &'a Commodity,
}

fn hex_sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[inline]
fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl Model {
    /// Parses, validates and compiles a model file; its version is the SHA-256 of these bytes.
    pub fn parse(bytes: &[u8]) -> Result<Model, Vec<PolicyError>> {
        let doc: ModelDoc = serde_json::from_slice(bytes).map_err(|e| {
            vec![PolicyError {
                path: String::new(),
                message: format!("not a model file: {e}"),
            }]
        })?;
        Model::compile(&doc, hex_sha256(bytes))
    }

    /// Compiles a document built in memory (training); its version is the hash of its canonical JSON.
    pub fn from_doc(doc: &ModelDoc) -> Result<Model, Vec<PolicyError>> {
        let canonical = serde_json::to_vec(doc).unwrap_or_default();
        Model::compile(doc, hex_sha256(&canonical))
    }

    fn compile(doc: &ModelDoc, version: String) -> Result<Model, Vec<PolicyError>> {
        let mut errors = Vec::new();
        let mut err = |path: String, message: String| errors.push(PolicyError { path, message });
        if doc.format != FORMAT {
            err(
                "format".into(),
                format!("{:?} is not {FORMAT:?}", doc.format),
            );
        }
        if !doc.base_score.is_finite() {
            err("base_score".into(), "must be finite".into());
        }
        let mut tables = Vec::with_capacity(doc.tables.len());
        let mut table_index: HashMap<&str, u16> = HashMap::new();
        for (t, table) in doc.tables.iter().enumerate() {
            let p = format!("tables[{t}]");
            if table_index.insert(table.name.as_str(), t as u16).is_some() {
                err(
                    format!("{p}.name"),
                    format!("duplicate table {:?}", table.name),
                );
            }
            if table.key.is_empty() || table.key.len() > MAX_KEY_PARTS {
                err(
                    format!("{p}.key"),
                    format!("needs 1 to {MAX_KEY_PARTS} inputs"),
                );
            }
            let probability = |x: f64| (0.0..=1.0).contains(&x);
            if !probability(table.prior) {
                err(
                    format!("{p}.prior"),
                    format!("{} is not a probability", table.prior),
                );
            }
            if !(table.smoothing.is_finite() && table.smoothing > 0.0) {
                err(format!("{p}.smoothing"), "must be positive".into());
            }
            let mut key = [None; MAX_KEY_PARTS];
            for (slot, input) in key.iter_mut().zip(&table.key) {
                *slot = Some(*input);
            }
            let mut rates = HashMap::with_capacity_and_hasher(
                table.entries.len(),
                foldhash::fast::FixedState::default(),
            );
            let mut buf = [0u8; MAX_KEY_BYTES];
            for (e, (parts, positives, rows)) in table.entries.iter().enumerate() {
                let ep = format!("{p}.entries[{e}]");
                if parts.len() != table.key.len() {
                    err(
                        ep.clone(),
                        format!(
                            "has {} key parts, the table has {}",
                            parts.len(),
                            table.key.len()
                        ),
                    );
                    continue;
                }
                if !(rows.is_finite()
                    && *rows > 0.0
                    && positives.is_finite()
                    && (0.0..=*rows).contains(positives))
                {
                    err(ep.clone(), format!("positives {positives} and rows {rows} are not 0 ≤ positives ≤ rows, rows > 0"));
                    continue;
                }
                let Some(hash) = hash_parts(parts.iter().map(|s| s.as_bytes()), &mut buf) else {
                    err(ep, format!("key is longer than {MAX_KEY_BYTES} bytes"));
                    continue;
                };
                let rate = (positives + table.smoothing * table.prior) / (rows + table.smoothing);
                if rates.insert(hash, (rate, *rows)).is_some() {
                    err(ep, "duplicate key (or a 64-bit hash collision)".into());
                }
            }
            tables.push(Table {
                key,
                rates,
                prior: table.prior,
            });
        }

        if doc.features.len() > MAX_FEATURES {
            err(
                "features".into(),
                format!("{} features, at most {MAX_FEATURES}", doc.features.len()),
            );
        }
        let mut features = Vec::with_capacity(doc.features.len());
        let mut names = Vec::with_capacity(doc.features.len());
        // Tables the features read, each once, in first-use order (≤ MAX_FEATURES: one per feature).
        let mut looked_up: Vec<u16> = Vec::new();
        let mut lookup_slot = |t: u16| match looked_up.iter().position(|&u| u == t) {
            Some(i) => i as u8,
            None => {
                looked_up.push(t);
                (looked_up.len() - 1) as u8
            }
        };
        for (f, feature) in doc.features.iter().enumerate() {
            let p = format!("features[{f}]");
            let mut table = |name: &str| match table_index.get(name) {
                Some(i) => *i,
                None => {
                    err(format!("{p}.table"), format!("no table named {name:?}"));
                    0
                }
            };
            features.push(match feature {
                FeatureDoc::Rate { table: t, .. } => Feature::Rate(lookup_slot(table(t))),
                FeatureDoc::Count { table: t, .. } => Feature::Count(lookup_slot(table(t))),
                FeatureDoc::Value { input, .. } => Feature::Value(*input),
                FeatureDoc::Log { input, .. } => Feature::Log(*input),
                FeatureDoc::LogRatio { num, den, .. } => Feature::LogRatio(*num, *den),
                FeatureDoc::Round { input, step, .. } => {
                    if !(step.is_finite() && *step > 0.0) {
                        err(format!("{p}.step"), "must be positive".into());
                    }
                    Feature::Round(*input, *step)
                }
            });
            names.push(Box::<str>::from(feature.name()));
        }

        let mut roots = Vec::with_capacity(doc.trees.len());
        let mut nodes: Vec<Node> = Vec::new();
        for (t, tree) in doc.trees.iter().enumerate() {
            let p = format!("trees[{t}]");
            let n = tree.feature.len();
            let lens = [
                tree.threshold.len(),
                tree.left.len(),
                tree.right.len(),
                tree.missing.len(),
                tree.value.len(),
            ];
            if n == 0 || lens.iter().any(|l| *l != n) {
                err(
                    p,
                    "needs at least one node and arrays of equal length".into(),
                );
                continue;
            }
            let base = nodes.len() as u32;
            roots.push(base);
            for i in 0..n {
                let value = f64::from(tree.value[i]);
                if !value.is_finite() {
                    err(format!("{p}.value[{i}]"), "must be finite".into());
                }
                let feature = tree.feature[i];
                if feature < 0 {
                    nodes.push(Node {
                        threshold: 0.0,
                        value,
                        feature: LEAF,
                        left: 0,
                        right: 0,
                        missing: 0,
                    });
                    continue;
                }
                if feature as usize >= doc.features.len() {
                    err(
                        format!("{p}.feature[{i}]"),
                        format!("feature {feature} does not exist"),
                    );
                }
                if tree.threshold[i].is_nan() {
                    err(format!("{p}.threshold[{i}]"), "must not be NaN".into());
                }
                // Children strictly after their parent: no cycles, every walk ends at a leaf.
                for (name, child) in [
                    ("left", tree.left[i]),
                    ("right", tree.right[i]),
                    ("missing", tree.missing[i]),
                ] {
                    if child as usize <= i || child as usize >= n {
                        err(
                            format!("{p}.{name}[{i}]"),
                            format!("child {child} must be after node {i} and below {n}"),
                        );
                    }
                }
                nodes.push(Node {
                    threshold: tree.threshold[i],
                    value,
                    feature: (feature as u16).min(LEAF - 1),
                    left: base + tree.left[i],
                    right: base + tree.right[i],
                    missing: base + tree.missing[i],
                });
            }
        }
        if nodes.len() > u32::MAX as usize / 2 {
            err("trees".into(), "too many nodes".into());
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let heap = Heap::build(&nodes, &roots).map_err(|depth| {
            vec![PolicyError {
                path: "trees".into(),
                message: format!(
                    "{depth} split levels (a separate missing child counts one more); at most {MAX_DEPTH}"
                ),
            }]
        })?;
        Ok(Model {
            version: Arc::from(version),
            info: Arc::new(ModelInfo {
                name: doc.name.as_str().into(),
                features: names.into_boxed_slice(),
            }),
            tables: tables.into_boxed_slice(),
            features: features.into_boxed_slice(),
            looked_up: looked_up.into_boxed_slice(),
            base_score: doc.base_score,
            heap,
        })
    }

    /// Number of features (the length of the vector [`Model::features`] fills).
    pub fn n_features(&self) -> usize {
        self.features.len()
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.heap.trees()
    }

    /// Computes the feature vector of a line into `out[..n_features()]`. Allocation-free.
    pub fn features(&self, line: &Line<'_>, out: &mut [f64]) {
        let mut buf = [0u8; MAX_KEY_BYTES];
        let mut looked = [(0f64, 0f64); MAX_FEATURES];
        for (slot, &t) in looked.iter_mut().zip(self.looked_up.iter()) {
            *slot = self.lookup(t, line, &mut buf);
        }
        for (slot, f) in out.iter_mut().zip(self.features.iter()) {
            *slot = match *f {
                Feature::Rate(i) => looked[usize::from(i)].0,
                Feature::Count(i) => looked[usize::from(i)].1,
                Feature::Value(n) => numeric(n, line),
                Feature::Log(n) => ln1p_nan(numeric(n, line)),
                Feature::LogRatio(a, b) => ln1p_nan(numeric(a, line)) - ln1p_nan(numeric(b, line)),
                Feature::Round(n, step) => {
                    let x = numeric(n, line);
                    if x.is_nan() {
                        f64::NAN
                    } else {
                        f64::from(u8::from((x / step).fract() == 0.0))
                    }
                }
            };
        }
    }

    /// (smoothed rate, training rows) of the line's key in table `t`.
    #[inline]
    fn lookup(&self, t: u16, line: &Line<'_>, buf: &mut [u8; MAX_KEY_BYTES]) -> (f64, f64) {
        let table = &self.tables[t as usize];
        let parts = table
            .key
            .iter()
            .map_while(|k| k.map(|input| category(input, line)));
        match hash_parts(parts, buf).and_then(|h| table.rates.get(&h)) {
            Some(&(rate, rows)) => (rate, rows),
            None => (table.prior, 0.0),
        }
    }

    /// Log-odds of a feature vector (`x` holds at least [`Model::n_features`] values). Leaf values are
    /// added in tree order, so the sum is that of a walk of the parsed trees.
    #[inline]
    pub fn margin(&self, x: &[f64]) -> f64 {
        let h = &self.heap;
        let splits = h.splits();
        let mut sum = self.base_score;
        self.walk(x, |t, leaf| sum += h.leaf[t * (splits + 1) + leaf - splits]);
        sum
    }

    /// Walks every tree to its leaf and calls `visit(tree, leaf slot)` in tree order.
    ///
    /// Branch-free: [`LANES`] trees walk their complete heap layout in lockstep, each step one load, one
    /// compare and an index update, so no step waits on a mispredicted branch and the trees' loads
    /// overlap.
    #[inline]
    fn walk(&self, x: &[f64], mut visit: impl FnMut(usize, usize)) {
        let xs = Heap::inputs(x);
        let h = &self.heap;
        let trees = h.trees();
        let mut t = 0;
        while t + LANES <= trees {
            let mut slot = [0usize; LANES];
            for _ in 0..h.depth {
                for (k, s) in slot.iter_mut().enumerate() {
                    *s = h.step(&xs, t + k, *s);
                }
            }
            for (k, s) in slot.iter().enumerate() {
                visit(t + k, *s);
            }
            t += LANES;
        }
        for t in t..trees {
            let s = (0..h.depth).fold(0, |s, _| h.step(&xs, t, s));
            visit(t, s);
        }
    }

    /// Log-odds of a feature vector (exactly [`Model::margin`]), with each feature's Saabas contribution
    /// added into `contrib` (`base_score` + root values is the bias; the bias and the contributions sum to
    /// the margin, up to rounding).
    ///
    /// The same walk as [`Model::margin`]; the path to a leaf is then known from the leaf's heap index
    /// alone (its ancestors are its index shifted right), so the attribution reads each slot on the path
    /// with no dependent loads. Padding and the split below a NaN test repeat their parent's value, so
    /// they contribute nothing.
    pub fn explain(&self, x: &[f64], contrib: &mut [f64]) -> f64 {
        let h = &self.heap;
        let depth = h.depth as usize;
        let splits = h.splits();
        let mut sum = self.base_score;
        self.walk(x, |t, leaf| {
            let leaves = &h.leaf[t * (splits + 1)..(t + 1) * (splits + 1)];
            sum += leaves[leaf - splits];
            if depth == 0 {
                return;
            }
            let slots = &h.slots[t * splits..(t + 1) * splits];
            let values = &h.value[t * splits..(t + 1) * splits];
            // 1-based heap numbering: the ancestor `j` levels up of node `k` is `k >> j`.
            let k = leaf + 1;
            let mut parent = (k >> depth) - 1;
            let mut value = values[parent];
            for j in (0..depth).rev() {
                let child = (k >> j) - 1;
                let next = if j == 0 {
                    leaves[child - splits]
                } else {
                    values[child]
                };
                let delta = next - value;
                if let Some(c) =
                    contrib.get_mut(usize::from(slots[parent].input) & (MAX_FEATURES - 1))
                {
                    *c += delta;
                }
                value = next;
                parent = child;
            }
        });
        sum
    }

    /// Fraud probability of one line.
    pub fn probability(&self, line: &Line<'_>) -> f64 {
        let mut x = [0f64; MAX_FEATURES];
        self.features(line, &mut x);
        sigmoid(self.margin(&x))
    }

    /// The riskiest line of a shipment: (commodity index, probability). `None` for no lines.
    pub fn riskiest_line(&self, manifest: &Manifest, shipment: &Shipment) -> Option<(usize, f64)> {
        let mut x = [0f64; MAX_FEATURES];
        let mut best: Option<(usize, f64)> = None;
        for (i, commodity) in shipment.commodities.iter().enumerate() {
            self.features(
                &Line {
                    manifest,
                    shipment,
                    commodity,
                },
                &mut x,
            );
            let m = self.margin(&x);
            if best.is_none_or(|(_, b)| m > b) {
                best = Some((i, m));
            }
        }
        best.map(|(i, m)| (i, sigmoid(m)))
    }

    /// Probability of a line and its top contributing features, largest contribution first.
    pub fn explain_line(&self, line: &Line<'_>) -> (f64, Top) {
        let mut x = [0f64; MAX_FEATURES];
        let mut contrib = [0f64; MAX_FEATURES];
        self.features(line, &mut x);
        let margin = self.explain(&x, &mut contrib);
        let mut top = Top::default();
        for (f, &c) in contrib[..self.features.len()].iter().enumerate() {
            top.offer(f as u16, c);
        }
        (sigmoid(margin), top)
    }
}

/// The largest feature contributions of one explanation, in descending order.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Top {
    /// (feature index, contribution in log-odds); only the first `len` are set.
    pub items: [(u16, f64); TOP_FEATURES],
    pub len: u8,
}

impl Top {
    fn offer(&mut self, feature: u16, c: f64) {
        let len = self.len as usize;
        // Insertion into a tiny sorted array; ties keep the lower feature index first.
        let mut pos = len;
        while pos > 0 && c > self.items[pos - 1].1 {
            pos -= 1;
        }
        if pos >= TOP_FEATURES {
            return;
        }
        let end = len.min(TOP_FEATURES - 1);
        for j in (pos..end).rev() {
            self.items[j + 1] = self.items[j];
        }
        self.items[pos] = (feature, c);
        self.len = (len + 1).min(TOP_FEATURES) as u8;
    }

    pub fn as_slice(&self) -> &[(u16, f64)] {
        &self.items[..self.len as usize]
    }
}

#[inline]
fn ln1p_nan(x: f64) -> f64 {
    if x.is_nan() {
        x
    } else {
        x.max(0.0).ln_1p()
    }
}

/// Hashes key parts joined by [`KEY_SEP`] through a stack buffer; `None` when the key does not fit (it
/// then cannot be in any table, whose keys were checked against the same limit).
#[inline]
fn hash_parts<'a>(
    parts: impl Iterator<Item = &'a [u8]>,
    buf: &mut [u8; MAX_KEY_BYTES],
) -> Option<u64> {
    let mut len = 0usize;
    for (i, part) in parts.enumerate() {
        let need = part.len() + usize::from(i > 0);
        if len + need > MAX_KEY_BYTES {
            return None;
        }
        if i > 0 {
            buf[len] = KEY_SEP;
            len += 1;
        }
        buf[len..len + part.len()].copy_from_slice(part);
        len += part.len();
    }
    Some(xxh3_64(&buf[..len]))
}

#[inline]
fn opt(s: &Option<crate::wire::Str>) -> &[u8] {
    s.as_deref().map_or(b"", str::as_bytes)
}

#[inline]
fn party(p: &Option<crate::wire::Party>) -> &[u8] {
    p.as_ref().map_or(b"", |p| p.id.as_bytes())
}

/// The bytes of a categorical input; absent fields are empty.
#[inline]
pub fn category<'a>(input: Input, line: &Line<'a>) -> &'a [u8] {
    let (m, s, c) = (line.manifest, line.shipment, line.commodity);
    let hts = c.hts.as_str().as_bytes();
    match input {
        Input::Hts2 => &hts[..2],
        Input::Hts4 => &hts[..4],
        Input::Hts6 => &hts[..6],
        Input::Origin => s.origin_country.as_str().as_bytes(),
        Input::Departure => s
            .departure_country
            .as_ref()
            .map_or(b"", |d| d.as_str().as_bytes()),
        Input::Port => m.port_of_entry.as_str().as_bytes(),
        Input::Mode => m.mode.as_str().as_bytes(),
        Input::Carrier => m.carrier.as_ref().map_or(b"", |c| c.scac.as_bytes()),
        Input::Importer => party(&s.importer),
        Input::Consignee => party(&s.consignee),
        Input::Shipper => party(&s.shipper),
        Input::Manufacturer => party(&s.manufacturer),
        Input::Broker => party(&s.broker),
        Input::EntryType => opt(&c.entry_type),
        Input::ProcessType => opt(&c.process_type),
        Input::ImportUse => opt(&c.import_use),
        Input::PaymentType => opt(&c.payment_type),
        Input::DutyType => opt(&c.duty_type),
        Input::OriginPreference => opt(&c.origin_preference),
    }
}

#[inline]
fn numeric(n: Numeric, line: &Line<'_>) -> f64 {
    let c = line.commodity;
    let v = match n {
        Numeric::WeightKg => c.weight_kg,
        Numeric::ValueUsd => c.value_usd,
        Numeric::Quantity => c.quantity,
        Numeric::DutyRate => c.duty_rate,
        Numeric::HtsChapter => Some(f64::from(c.hts.chapter())),
        Numeric::HtsHeading => Some(f64::from(c.hts.heading())),
    };
    v.unwrap_or(f64::NAN)
}

// ---------------------------------------------------------------------------------------------------------
// The policy's model rule

/// The policy's `[model]` section compiled: the model and its probability → points bands.
#[derive(Debug, Clone)]
pub struct ModelRule {
    pub model: Arc<Model>,
    /// (min probability, points), ascending; the last band reached counts. A curve is compiled into one
    /// band per point ([`curve_bands`]).
    pub bands: Box<[(f64, i32)]>,
}

/// The curve `clamp(round(scale · (logit p − logit p0)), 0, max_points)` as bands: `k` points from
/// `sigmoid(logit p0 + (k − ½) / scale)` on, for k = 1 ..= max_points. Counting thresholds makes the points
/// non-decreasing in the probability by construction (no float non-monotonicity of `ln` can invert them).
/// Needs `p0` in (0, 1), `scale` > 0 (validated).
pub fn curve_bands(p0: f64, scale: f64, max_points: i32) -> Box<[(f64, i32)]> {
    let logit0 = (p0 / (1.0 - p0)).ln();
    let mut out: Vec<(f64, i32)> = Vec::with_capacity(max_points.max(0) as usize);
    let mut prev = 0.0f64;
    for k in 1..=max_points.max(0) {
        let t = logit0 + (f64::from(k) - 0.5) / scale;
        let min = (1.0 / (1.0 + (-t).exp())).max(prev);
        out.push((min, k));
        prev = min;
    }
    out.into_boxed_slice()
}

impl ModelRule {
    /// Points for a probability: the highest band it reaches, 0 below the first (bands ascend, so a
    /// binary search finds it; a curve compiles to one band per point).
    #[inline]
    pub fn points(&self, probability: f64) -> i32 {
        let reached = self.bands.partition_point(|(min, _)| probability >= *min);
        reached.checked_sub(1).map_or(0, |i| self.bands[i].1)
    }

    /// The model's contribution to one shipment: its riskiest line's points and the explanation, or `None`
    /// when the probability reaches no band.
    pub fn shipment(&self, manifest: &Manifest, shipment: &Shipment) -> Option<(i32, Detail)> {
        let (index, probability) = self.model.riskiest_line(manifest, shipment)?;
        let points = self.points(probability);
        if points == 0 {
            return None;
        }
        let line = Line {
            manifest,
            shipment,
            commodity: &shipment.commodities[index],
        };
        let (_, top) = self.model.explain_line(&line);
        Some((
            points,
            Detail::Model {
                probability,
                hts: shipment.commodities[index].hts,
                top,
                info: self.model.info.clone(),
            },
        ))
    }
}

impl fmt::Display for ModelInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_keeps_the_largest_in_order() {
        let mut t = Top::default();
        for (f, c) in [
            (0u16, 0.1),
            (1, -0.5),
            (2, 0.7),
            (3, 0.3),
            (4, 0.7),
            (5, 0.0),
        ] {
            t.offer(f, c);
        }
        assert_eq!(t.as_slice(), &[(2, 0.7), (4, 0.7), (3, 0.3)]);
    }

    #[test]
    fn hash_parts_separates_parts() {
        let mut buf = [0u8; MAX_KEY_BYTES];
        let a = hash_parts([&b"12"[..], b"3"].into_iter(), &mut buf);
        let b = hash_parts([&b"1"[..], b"23"].into_iter(), &mut buf);
        assert_ne!(a, b);
        let long = vec![b'x'; MAX_KEY_BYTES + 1];
        assert_eq!(hash_parts([&long[..]].into_iter(), &mut buf), None);
    }
}
