//! The learned model in the core: a hand-built golden model (known probability and Saabas attribution),
//! model-file and `[model]` section validation, and the `model.risk` reason and `model_version` on decisions.

use borderlane_core::model::{Line, Model};
use borderlane_core::policy::{parse_policy, CompiledPolicy};
use borderlane_core::score::decide;
use borderlane_core::table::PartnerTable;
use borderlane_core::wire::{parse_manifest, Limits, Manifest};

const DEFAULT: &str = include_str!("../../../config/policy.toml");

/// Feature 0: smoothed fraud rate of the origin (CN: (6 + 10·0.2) / (10 + 10) = 0.4; unseen: the prior
/// 0.2). Feature 1: ln(1 + value_usd). Tree 0 splits the rate at 0.3 (NaN → left), tree 1 the log value
/// at ln(1001) (NaN → right). Base score −1.
const GOLDEN: &str = r#"{
  "format": "borderlane-gbt/1",
  "name": "golden",
  "tables": [{"name": "origin", "key": ["origin"], "prior": 0.2, "smoothing": 10, "entries": [[["CN"], 6, 10]]}],
  "features": [
    {"kind": "rate", "name": "origin rate", "table": "origin"},
    {"kind": "log", "name": "log value", "input": "value_usd"}
  ],
  "base_score": -1.0,
  "trees": [
    {"feature": [0, -1, -1], "threshold": [0.3, 0, 0], "left": [1, 0, 0], "right": [2, 0, 0], "missing": [1, 0, 0], "value": [0.1, -0.5, 1.0]},
    {"feature": [1, -1, -1], "threshold": [6.90875477931522, 0, 0], "left": [1, 0, 0], "right": [2, 0, 0], "missing": [2, 0, 0], "value": [0.0, -0.2, 0.6]}
  ]
}"#;

fn manifest(origin: &str, value: Option<f64>) -> Manifest {
    let value = value.map_or(String::new(), |v| format!(r#","value_usd":{v}"#));
    let json = format!(
        r#"{{"manifest_id":"M-{origin}","filed_at":"2026-11-28T04:00:00Z","mode":"ocean","port_of_entry":"2704",
        "shipments":[{{"shipment_id":"S1","importer":{{"id":"IOR-1"}},"origin_country":"{origin}",
        "commodities":[{{"hts":"847130","description":"laptops"{value}}}]}}]}}"#
    );
    parse_manifest(json.as_bytes(), &Limits::default()).unwrap()
}

fn line(m: &Manifest) -> Line<'_> {
    Line {
        manifest: m,
        shipment: &m.shipments[0],
        commodity: &m.shipments[0].commodities[0],
    }
}

/// Tree values are single precision in the file (0.6 is 0.600000024), so compare to 1e-6.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[test]
fn golden_probability_and_attribution() {
    let model = Model::parse(GOLDEN.as_bytes()).unwrap();
    assert!(model.version.starts_with("sha256:"));
    let cn = manifest("CN", Some(9999.0));
    let mut x = [0f64; 2];
    model.features(&line(&cn), &mut x);
    assert!(close(x[0], 0.4) && close(x[1], 10000f64.ln()), "{x:?}");
    // margin = −1 + 1.0 (rate 0.4 ≥ 0.3) + 0.6 (log value ≥ ln 1001) = 0.6
    let (p, top) = model.explain_line(&line(&cn));
    assert!(close(p, 1.0 / (1.0 + (-0.6f64).exp())), "{p}");
    assert!(close(model.probability(&line(&cn)), p));
    // Saabas: bias −1 + 0.1 + 0.0; origin rate 1.0 − 0.1 = 0.9; log value 0.6 − 0.0 = 0.6.
    let top = top.as_slice();
    assert_eq!(top.len(), 2);
    assert_eq!(top[0].0, 0);
    assert!(close(top[0].1, 0.9), "{top:?}");
    assert_eq!(top[1].0, 1);
    assert!(close(top[1].1, 0.6), "{top:?}");
    let mut contrib = [0f64; 2];
    let margin = model.explain(&x, &mut contrib);
    assert!(close(margin, model.margin(&x)));
    assert!(close(-0.9 + contrib.iter().sum::<f64>(), margin));

    // Unseen origin reads the prior (left, −0.5); absent value is NaN (missing → right, +0.6).
    let mx = manifest("MX", None);
    model.features(&line(&mx), &mut x);
    assert!(close(x[0], 0.2) && x[1].is_nan());
    assert!(close(
        model.probability(&line(&mx)),
        1.0 / (1.0 + 0.9f64.exp())
    ));
}

#[test]
fn bad_model_files_report_every_error_with_its_path() {
    let bad = GOLDEN
        .replace(
            r#""left": [1, 0, 0], "right": [2, 0, 0], "missing": [1, 0, 0]"#,
            r#""left": [0, 0, 0], "right": [2, 0, 0], "missing": [1, 0, 0]"#,
        )
        .replace(r#""table": "origin""#, r#""table": "nope""#)
        .replace("borderlane-gbt/1", "borderlane-gbt/9");
    let paths: Vec<String> = Model::parse(bad.as_bytes())
        .unwrap_err()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(paths, ["format", "features[0].table", "trees[0].left[0]"]);
    assert!(Model::parse(b"{}").is_err());
}

fn policy_with(section: &str) -> String {
    format!("{DEFAULT}\n[model]\nfile = \"golden.json\"\n{section}\n")
}

#[test]
fn model_section_is_validated() {
    let ok = policy_with(
        "points = [{ min_probability = 0.5, points = 40 }, { min_probability = 0.6, points = 90 }]",
    );
    assert!(parse_policy(&ok).is_ok());
    let bad = policy_with(
        "points = [{ min_probability = 0.6, points = 40 }, { min_probability = 0.5, points = 30 }, { min_probability = 1.5, points = -1 }]",
    );
    let mut paths: Vec<String> = parse_policy(&bad)
        .unwrap_err()
        .into_iter()
        .map(|e| e.path)
        .collect();
    paths.sort();
    paths.dedup();
    assert_eq!(
        paths,
        [
            "model.points[1].min_probability",
            "model.points[1].points",
            "model.points[2].min_probability",
            "model.points[2].points",
        ]
    );
    assert!(parse_policy(&policy_with("points = []")).is_err());
}

#[test]
fn model_curve_is_validated_with_its_paths() {
    let ok = policy_with("curve = { p0 = 0.2, scale = 40.0, max_points = 250 }");
    let doc = parse_policy(&ok).unwrap();
    assert!(doc.model.unwrap().points.is_empty());
    let errors = |section: &str| -> Vec<String> {
        let mut paths: Vec<String> = parse_policy(&policy_with(section))
            .unwrap_err()
            .into_iter()
            .map(|e| e.path)
            .collect();
        paths.sort();
        paths.dedup();
        paths
    };
    assert_eq!(
        errors("curve = { p0 = 1.0, scale = -3.0, max_points = -1 }"),
        [
            "model.curve.max_points",
            "model.curve.p0",
            "model.curve.scale"
        ]
    );
    assert_eq!(
        errors("curve = { p0 = nan, scale = inf, max_points = 10 }"),
        ["model.curve.p0", "model.curve.scale"]
    );
    assert_eq!(
        errors("curve = { p0 = 0.0, scale = 0.0, max_points = 10 }"),
        ["model.curve.p0", "model.curve.scale"]
    );
    assert_eq!(
        errors("curve = { p0 = 0.2, scale = 40.0, max_points = 250, slope = 1 }"),
        ["model.curve.slope"]
    );
    assert_eq!(
        errors("curve = { p0 = 0.2, scale = 40.0 }"),
        ["model.curve.max_points"]
    );
    assert_eq!(
        errors(
            "curve = { p0 = 0.2, scale = 40.0, max_points = 250 }\npoints = [{ min_probability = 0.5, points = 40 }]"
        ),
        ["model.points"]
    );
    assert_eq!(errors(""), ["model.points"]);
}

#[test]
fn model_curve_is_linear_in_log_odds_clamped_and_monotone() {
    use borderlane_core::policy::{curve_bands, ModelRule};
    use std::sync::Arc;
    let (p0, scale, max) = (0.2f64, 40.0f64, 250);
    let rule = ModelRule {
        model: Arc::new(Model::parse(GOLDEN.as_bytes()).unwrap()),
        bands: curve_bands(p0, scale, max),
    };
    let logit = |p: f64| (p / (1.0 - p)).ln();
    let mut prev = 0;
    for i in 0..=100_000 {
        let p = f64::from(i) / 100_000.0;
        let got = rule.points(p);
        assert!(got >= prev, "points fall at p = {p}: {prev} → {got}");
        assert!((0..=max).contains(&got));
        let x = scale * (logit(p) - logit(p0));
        // Away from half-integers (where rounding may go either way) the points are the formula's.
        if (x - x.floor() - 0.5).abs() > 1e-6 {
            let want = x.round().clamp(0.0, f64::from(max)) as i32;
            assert_eq!(got, want, "p = {p}");
        }
        prev = got;
    }
    assert_eq!(rule.points(0.0), 0);
    assert_eq!(rule.points(p0), 0);
    assert_eq!(rule.points(1.0), max);
    assert_eq!(rule.points(f64::NAN), 0);
    // A steep curve saturates; a zero cap adds nothing.
    assert_eq!(curve_bands(0.5, 1e6, 3).len(), 3);
    assert!(curve_bands(0.5, 10.0, 0).is_empty());
}

#[test]
fn the_model_adds_a_reason_and_its_version() {
    let doc = parse_policy(&policy_with(
        "points = [{ min_probability = 0.5, points = 40 }, { min_probability = 0.6, points = 90 }]",
    ))
    .unwrap();
    let model = Model::parse(GOLDEN.as_bytes()).unwrap();
    let version = model.version.clone();
    let with = CompiledPolicy::with_model(doc.clone(), Some(model)).unwrap();
    let mut no_model = doc.clone();
    no_model.model = None;
    let without = CompiledPolicy::with_model(no_model, None).unwrap();
    let table = PartnerTable::new();

    let cn = manifest("CN", Some(9999.0));
    let d = decide(&with, &table, &cn);
    let r = d
        .reasons
        .iter()
        .find(|r| r.rule.as_str() == "model.risk")
        .expect("model reason");
    assert_eq!(r.points, 90);
    assert_eq!(
        r.detail.to_string(),
        "model golden gives fraud probability 0.646 for HTS 847130; top factors: origin rate +0.90, log value +0.60"
    );
    assert_eq!(r.shipment.as_deref(), Some("S1"));
    assert_eq!(d.score, d.reasons.iter().map(|r| r.points).sum::<i32>());
    assert_eq!(d.model_version.as_deref(), Some(&*version));
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["model_version"], *version);

    // A policy that names a model cannot be compiled without it: never a silent fallback to the rules.
    let errors = CompiledPolicy::with_model(doc, None).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].path, "model.file");

    // Without the section the same manifest scores 90 points less and names no model.
    let plain = decide(&without, &table, &cn);
    assert_eq!(plain.score, d.score - 90);
    assert!(plain.model_version.is_none());
    assert!(serde_json::to_value(&plain)
        .unwrap()
        .get("model_version")
        .is_none());

    // Below the first band the model adds nothing and no reason.
    let low = decide(&with, &table, &manifest("MX", None));
    assert!(low.reasons.iter().all(|r| r.rule.as_str() != "model.risk"));
}

#[test]
fn a_policy_without_model_keeps_its_version() {
    // The optional section is skipped when absent, so existing policies hash as before.
    let doc = parse_policy(DEFAULT).unwrap();
    let json = serde_json::to_string(&doc).unwrap();
    assert!(!json.contains("\"model\""));
}
