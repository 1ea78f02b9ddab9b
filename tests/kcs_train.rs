//! `import-kcs` converts every row of a KCS sample into manifests the strict wire parser accepts, and
//! training is deterministic: same data and seed, byte-identical model file.

use std::path::{Path, PathBuf};

use borderlane::learn::kcs::{import, Label};
use borderlane::learn::train::{train, Dataset, Params};
use borderlane_core::model::Model;
use borderlane_core::wire::{parse_manifest, Limits};

const SAMPLE: &str = include_str!("data/kcs-sample.csv");

fn convert() -> (Vec<u8>, Vec<u8>) {
    let (mut manifests, mut labels) = (Vec::new(), Vec::new());
    let report = import(SAMPLE.as_bytes(), &mut manifests, &mut labels).unwrap();
    assert_eq!(
        (report.rows, report.manifests, report.labels),
        (400, 400, 400)
    );
    (manifests, labels)
}

#[test]
fn every_row_converts_and_parses() {
    let (manifests, labels) = convert();
    let limits = Limits::default();
    let parsed: Vec<_> = manifests
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| parse_manifest(l, &limits).unwrap())
        .collect();
    let labels: Vec<Label> = labels
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(parsed.len(), 400);
    assert_eq!(labels.len(), 400);
    assert_eq!(labels.iter().filter(|l| l.fraud == 1).count(), 82);
    for (m, l) in parsed.iter().zip(&labels) {
        assert_eq!(m.manifest_id.as_str(), l.manifest_id);
    }
    // First row of the file: 97061800, office 30, sea, BE → BE, 108 kg, 372,254.4 KRW.
    let m = &parsed[0];
    assert_eq!(m.manifest_id.as_str(), "KCS-97061800");
    assert_eq!(m.port_of_entry.as_str(), "2709");
    assert_eq!(m.mode.as_str(), "ocean");
    let c = &m.shipments[0].commodities[0];
    assert_eq!(c.hts.as_str(), "440890");
    assert_eq!(c.weight_kg, Some(108.0));
    assert_eq!(c.value_usd, Some(372254.4 / 1180.0));
    assert_eq!(c.duty_type.as_deref(), Some("FEU1"));
    assert_eq!(
        m.shipments[0].broker.as_ref().unwrap().id.as_str(),
        "ZZR1LT6"
    );
}

#[test]
fn a_bad_row_fails_the_conversion_instead_of_vanishing() {
    let bad = SAMPLE.replacen(",440890,", ",4408,", 1);
    let err = import(bad.as_bytes(), Vec::new(), Vec::new()).unwrap_err();
    assert!(format!("{err:#}").contains("CSV line 2"), "{err:#}");
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("borderlane-test-{}-{name}", std::process::id()))
}

fn dataset() -> Dataset {
    let (manifests, labels) = convert();
    let (mp, lp) = (temp("m.ndjson"), temp("l.ndjson"));
    std::fs::write(&mp, manifests).unwrap();
    std::fs::write(&lp, labels).unwrap();
    let d = Dataset::load(Path::new(&mp), Path::new(&lp)).unwrap();
    let _ = (std::fs::remove_file(mp), std::fs::remove_file(lp));
    d
}

#[test]
fn training_is_deterministic_for_a_seed() {
    let data = dataset();
    let params = Params {
        trees: 25,
        ..Params::default()
    };
    let a = serde_json::to_string(&train(&data, &params, false).unwrap().doc).unwrap();
    let b = serde_json::to_string(&train(&data, &params, false).unwrap().doc).unwrap();
    assert!(a == b, "two trainings with seed {} differ", params.seed);
    let other = Params {
        seed: params.seed + 1,
        ..params.clone()
    };
    let c = serde_json::to_string(&train(&data, &other, false).unwrap().doc).unwrap();
    assert_ne!(
        a, c,
        "the seed must matter (folds, row and column sampling)"
    );

    // The written file loads in the core and scores as the trained model does.
    let trained = train(&data, &params, false).unwrap();
    let loaded = Model::parse(a.as_bytes()).unwrap();
    assert_eq!(loaded.n_trees(), 25);
    for m in &data.manifests {
        let s = &m.shipments[0];
        assert_eq!(
            loaded.riskiest_line(m, s),
            trained.model.riskiest_line(m, s)
        );
    }
}
