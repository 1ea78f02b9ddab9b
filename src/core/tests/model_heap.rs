//! The compiled forest (complete binary trees walked branch-free) must score exactly like a plain walk
//! of the trees as the model file states them: random trees of uneven depth, with separate missing
//! children, NaN inputs and thresholds equal to inputs; attribution must add up to the same margin.

use borderlane_core::model::{FeatureDoc, Model, ModelDoc, Numeric, TreeDoc, FORMAT, MAX_DEPTH};
use proptest::prelude::*;

const FEATURES: usize = 5;

/// A random tree in file form, built depth-first (children after parents). `shape` drives the choices.
fn tree(shape: &[u8], thresholds: &[f64], values: &[f32], max_depth: u32) -> TreeDoc {
    let mut t = TreeDoc::default();
    let mut cursor = 0usize;
    fn node(
        t: &mut TreeDoc,
        shape: &[u8],
        thresholds: &[f64],
        values: &[f32],
        cursor: &mut usize,
        depth: u32,
        max_depth: u32,
    ) -> u32 {
        let me = t.feature.len();
        let pick = shape[*cursor % shape.len()];
        let threshold = thresholds[*cursor % thresholds.len()];
        let value = values[*cursor % values.len()];
        *cursor += 1;
        t.feature.push(-1);
        t.threshold.push(0.0);
        t.left.push(0);
        t.right.push(0);
        t.missing.push(0);
        t.value.push(value);
        // A leaf one time in four, always at the depth limit.
        if depth >= max_depth || pick.is_multiple_of(4) {
            return me as u32;
        }
        t.feature[me] = i32::from(pick) % FEATURES as i32;
        t.threshold[me] = threshold;
        let l = node(t, shape, thresholds, values, cursor, depth + 1, max_depth);
        let r = node(t, shape, thresholds, values, cursor, depth + 1, max_depth);
        // NaN goes left, right, or (one time in three) to a subtree of its own, one level deeper at most.
        let m = match pick % 3 {
            0 => l,
            1 => r,
            _ if depth + 2 <= max_depth => {
                node(t, shape, thresholds, values, cursor, depth + 1, max_depth)
            }
            _ => l,
        };
        t.left[me] = l;
        t.right[me] = r;
        t.missing[me] = m;
        me as u32
    }
    node(&mut t, shape, thresholds, values, &mut cursor, 0, max_depth);
    t
}

/// The plain walk of the file's trees, the reference.
fn reference(doc: &ModelDoc, x: &[f64]) -> f64 {
    let mut sum = doc.base_score;
    for t in &doc.trees {
        let mut i = 0usize;
        while t.feature[i] >= 0 {
            let v = x[t.feature[i] as usize];
            i = if v.is_nan() {
                t.missing[i]
            } else if v < t.threshold[i] {
                t.left[i]
            } else {
                t.right[i]
            } as usize;
        }
        sum += f64::from(t.value[i]);
    }
    sum
}

fn doc(trees: Vec<TreeDoc>) -> ModelDoc {
    ModelDoc {
        format: FORMAT.into(),
        name: "heap".into(),
        description: String::new(),
        training: Default::default(),
        tables: Vec::new(),
        features: (0..FEATURES)
            .map(|i| FeatureDoc::Value {
                name: format!("f{i}"),
                input: Numeric::WeightKg,
            })
            .collect(),
        base_score: -0.25,
        trees,
    }
}

/// Inputs drawn from the thresholds themselves (ties), NaN, and infinities.
fn input() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => prop::sample::select(vec![-1.0, 0.0, 0.5, 1.0, 2.0, 3.5]),
        2 => -2.0f64..4.0,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn heap_walk_equals_the_plain_walk(
        shapes in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..40), 1..20),
        values in prop::collection::vec(-2.0f32..2.0, 1..16),
        depth in 0u32..7, // ≤ 12 levels once every split has its own missing branch
        xs in prop::collection::vec(prop::collection::vec(input(), FEATURES), 1..8),
    ) {
        let thresholds = [-1.0, 0.0, 0.5, 1.0, 2.0, 3.5, 1e300];
        let trees: Vec<TreeDoc> =
            shapes.iter().map(|s| tree(s, &thresholds, &values, depth)).collect();
        let doc = doc(trees);
        let model = Model::from_doc(&doc).expect("valid model");
        for x in &xs {
            let want = reference(&doc, x);
            prop_assert_eq!(model.margin(x).to_bits(), want.to_bits(), "x = {:?}", x);
            let mut contrib = [0f64; FEATURES];
            let explained = model.explain(x, &mut contrib);
            prop_assert_eq!(explained.to_bits(), want.to_bits());
        }
    }
}

#[test]
fn a_separate_missing_child_is_taken_only_by_nan() {
    // x0 < 1 → −1, x0 ≥ 1 → +1, NaN → +5 (its own leaf).
    let t = TreeDoc {
        feature: vec![0, -1, -1, -1],
        threshold: vec![1.0, 0.0, 0.0, 0.0],
        left: vec![1, 0, 0, 0],
        right: vec![2, 0, 0, 0],
        missing: vec![3, 0, 0, 0],
        value: vec![0.0, -1.0, 1.0, 5.0],
    };
    let model = Model::from_doc(&doc(vec![t])).unwrap();
    let x = |v: f64| [v, 0.0, 0.0, 0.0, 0.0];
    assert_eq!(model.margin(&x(0.0)), -1.25);
    assert_eq!(model.margin(&x(1.0)), 0.75);
    assert_eq!(model.margin(&x(f64::INFINITY)), 0.75);
    assert_eq!(model.margin(&x(f64::NAN)), 4.75);
    let mut contrib = [0f64; FEATURES];
    assert_eq!(model.explain(&x(f64::NAN), &mut contrib), 4.75);
    assert_eq!(contrib[0], 5.0);
}

#[test]
fn trees_deeper_than_the_evaluator_takes_are_refused() {
    // A chain of MAX_DEPTH + 1 splits on feature 0.
    let n = MAX_DEPTH as usize + 1;
    let mut t = TreeDoc::default();
    for i in 0..n {
        // Node 2i splits; its right child 2i+1 is a leaf, its left child 2i+2 the next split.
        t.feature.extend([0, -1]);
        t.threshold.extend([i as f64, 0.0]);
        t.left.extend([(2 * i + 2) as u32, 0]);
        t.right.extend([(2 * i + 1) as u32, 0]);
        t.missing.extend([(2 * i + 1) as u32, 0]);
        t.value.extend([0.0, 1.0]);
    }
    t.feature.push(-1);
    t.threshold.push(0.0);
    t.left.push(0);
    t.right.push(0);
    t.missing.push(0);
    t.value.push(2.0);
    let errors = Model::from_doc(&doc(vec![t])).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.path == "trees" && e.message.contains("at most")),
        "{errors:?}"
    );
}
