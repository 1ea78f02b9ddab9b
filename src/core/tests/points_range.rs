//! Points at the edge of `i32`: `i32::MIN` once overflowed the range check of every points field
//! (`p.abs()`: a panic with overflow checks, and accepted as in range without them, since the wrapped
//! absolute value is negative). It is now refused with its key path like any other out-of-range points.

use borderlane_core::policy::validate::parse_policy;

const DEFAULT_POLICY: &str = include_str!("../../../config/policy.toml");

fn refused_at(text: &str, path: &str) {
    let errors = parse_policy(text).expect_err("out-of-range points are refused");
    assert!(
        errors
            .iter()
            .any(|e| e.path == path && e.message.contains("outside")),
        "no range error at {path}: {errors:?}"
    );
}

#[test]
fn i32_min_points_are_refused_not_a_panic() {
    let medium = DEFAULT_POLICY.replacen("medium = 100\n", "medium = -2147483648\n", 1);
    assert_ne!(medium, DEFAULT_POLICY);
    refused_at(&medium, "bands.medium");

    let zero = DEFAULT_POLICY.replacen(
        "zero_weight_points = 30",
        "zero_weight_points = -2147483648",
        1,
    );
    assert_ne!(zero, DEFAULT_POLICY);
    refused_at(&zero, "plausibility.zero_weight_points");
}

#[test]
fn the_range_is_inclusive() {
    for (points, ok) in [
        (10_000, true),
        (10_001, false),
        (-10_001, false),
        (i32::MAX, false),
    ] {
        let text = DEFAULT_POLICY.replacen(
            "zero_weight_points = 30",
            &format!("zero_weight_points = {points}"),
            1,
        );
        assert_eq!(parse_policy(&text).is_ok(), ok, "{points}");
    }
}
