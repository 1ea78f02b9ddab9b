//! The shipped default policy validates, and validation reports every error of a broken one at once.

use borderlane_core::policy::{parse_policy, CompiledPolicy, Plausibility};

const DEFAULT: &str = include_str!("../../../config/policy.toml");

#[test]
fn default_policy_is_valid() {
    let p = CompiledPolicy::from_toml(DEFAULT).unwrap_or_else(|e| panic!("{e:#?}"));
    assert!(p.version.starts_with("sha256:"));
    assert_eq!(p.version.len(), 7 + 64);
}

#[test]
fn version_is_content_not_layout() {
    let a = parse_policy(DEFAULT).unwrap().version();
    let b = parse_policy(&format!("# a comment\n{DEFAULT}\n\n"))
        .unwrap()
        .version();
    assert_eq!(a, b);
    let c = parse_policy(&DEFAULT.replace("late_points = 30", "late_points = 31"))
        .unwrap()
        .version();
    assert_ne!(a, c);
}

#[test]
fn every_error_is_reported_with_its_path() {
    let bad = DEFAULT
        .replace("medium = 100\n", "medium = 100\nbogus = 3\n")
        .replace("seed = 20261128", "seed = \"x\"")
        .replace("suspended = 60", "suspended = true")
        .replace(
            "importer = { certified = 38,",
            "importer = { certifed = 38,",
        );
    let mut paths: Vec<String> = parse_policy(&bad)
        .unwrap_err()
        .into_iter()
        .map(|e| e.path)
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "bands.bogus",
            "ctpat.credits.importer.certifed",
            "ctpat.credits.importer.certified",
            "ctpat.penalties.suspended",
            "random.seed"
        ]
    );
}

#[test]
fn semantic_rules_are_all_reported() {
    let bad = DEFAULT
        .replace(
            "importer = { certified = 38,",
            "importer = { certified = 39,",
        )
        .replace(
            "carrier = { certified = 25, validated = 60 }",
            "carrier = { certified = 25, validated = 20 }",
        )
        .replace(
            "\"2304\" = { name = \"Laredo\"",
            "\"230\" = { name = \"Laredo\"",
        )
        .replace("origin.CO =", "origin.XX =")
        .replace(
            "rates.air = { non_partner = 0.01, certified = 0.005 }",
            "rates.air = { non_partner = 0.01, certified = 0.5 }",
        )
        .replace(
            "action = \"intensive\"\npoints = 200",
            "action = \"release\"\npoints = 200",
        )
        .replace("suspended = 60", "suspended = -5");
    let mut paths: Vec<String> = parse_policy(&bad)
        .unwrap_err()
        .into_iter()
        .map(|e| e.path)
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "countries.origin.XX",
            "ctpat.credits.carrier.validated",
            "ctpat.credits.importer.certified",
            "ctpat.penalties.suspended",
            "ports.230",
            "random.rates.air.certified",
            "watchlist.action",
        ]
    );
}

/// The default policy without its `[plausibility]` section (and the comment above it), as policies were
/// written before the section existed.
fn without_plausibility(text: &str) -> String {
    let start = text
        .find("\n# Plausibility of declared quantities")
        .expect("the section's comment");
    let end = text[start..]
        .find("zero_weight_points = 30\n")
        .map(|i| start + i + "zero_weight_points = 30\n".len())
        .expect("the section's last key");
    format!("{}{}", &text[..start + 1], &text[end..])
}

#[test]
fn plausibility_defaults_keep_old_versions() {
    // A policy written before [plausibility] existed stays valid, gets the defaults, and keeps its version:
    // a section equal to the defaults is left out of the canonical form. The shipped values are the defaults.
    let old = without_plausibility(DEFAULT);
    assert!(!old.contains("[plausibility]"));
    let (old, new) = (parse_policy(&old).unwrap(), parse_policy(DEFAULT).unwrap());
    assert_eq!(old.plausibility, Plausibility::default());
    assert_eq!(new.plausibility, Plausibility::default());
    assert_eq!(old.version(), new.version());
    // Any change of a limit is a change of content.
    let stricter = DEFAULT.replace(
        "max_value_per_kg = 100_000_000.0",
        "max_value_per_kg = 50_000_000.0",
    );
    assert_ne!(stricter, DEFAULT);
    assert_ne!(parse_policy(&stricter).unwrap().version(), new.version());
    let points = DEFAULT.replace("zero_weight_points = 30", "zero_weight_points = 31");
    assert_ne!(parse_policy(&points).unwrap().version(), new.version());
}

#[test]
fn kcs_policy_carries_the_same_plausibility() {
    let kcs = parse_policy(include_str!("../../../config/policy-kcs.toml")).unwrap();
    assert_eq!(
        kcs.plausibility,
        parse_policy(DEFAULT).unwrap().plausibility
    );
}
