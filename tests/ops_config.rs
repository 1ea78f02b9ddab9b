//! The alerting rules (`config/prometheus/alerts.yml`) and the Grafana dashboard (`config/grafana/
//! borderlane.json`) use only metrics the service exports: every metric name in a rule's `expr` and in a
//! dashboard query is checked against the families of the service's own registry (`Metrics::new()`), with
//! `_bucket`, `_sum` and `_count` allowed for histograms only.

use std::collections::BTreeSet;
use std::path::PathBuf;

use borderlane::service::metrics::Metrics;

fn read(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Words of PromQL that are not metric names: keywords, and aggregation operators (which may be followed
/// by `by (…)` / `without (…)` before their parenthesis).
const KEYWORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
    "Inf",
    "NaN",
];

/// Replaces the text between `open` and its matching `close` (nesting aware) with spaces.
fn blank_between(s: &str, open: char, close: char) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    for c in s.chars() {
        if c == open {
            depth += 1;
            out.push(' ');
        } else if c == close && depth > 0 {
            depth -= 1;
            out.push(' ');
        } else if depth > 0 {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// Every metric name a PromQL expression (or a Grafana `label_values(metric, label)` query) reads.
fn metric_names(expr: &str) -> BTreeSet<String> {
    // String literals (label values, label_replace arguments) hold no metric names.
    let mut s = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in expr.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
                s.push(' ');
            }
            None if c == '"' || c == '\'' || c == '`' => {
                quote = Some(c);
                s.push(' ');
            }
            None => s.push(c),
        }
    }
    // Label matchers and range / subquery selectors.
    let s = blank_between(&blank_between(&s, '{', '}'), '[', ']');
    // Grouping clauses list label names: `by (a, b)`, `on(a)`, `group_left(a)` …
    let chars: Vec<char> = s.chars().collect();
    let mut names = BTreeSet::new();
    let mut words: Vec<(String, usize)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '.' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric()
                    || chars[i] == '_'
                    || chars[i] == ':'
                    || chars[i] == '.'
                    || chars[i] == '$')
            {
                i += 1;
            }
            words.push((chars[start..i].iter().collect(), i));
        } else {
            i += 1;
        }
    }
    let next_non_space = |at: usize| chars[at..].iter().find(|c| !c.is_whitespace()).copied();
    let mut skip_group_from: Option<usize> = None;
    for (w, end) in &words {
        if let Some(from) = skip_group_from {
            // Inside the parentheses of a grouping clause: label names up to the closing one.
            let close = chars[from..]
                .iter()
                .position(|c| *c == ')')
                .map(|p| from + p);
            if close.is_some_and(|c| *end <= c) {
                continue;
            }
            skip_group_from = None;
        }
        let first = w.chars().next().unwrap();
        if first.is_ascii_digit() || first == '.' || first == '$' {
            continue; // numbers, durations, Grafana variables
        }
        if [
            "by",
            "without",
            "on",
            "ignoring",
            "group_left",
            "group_right",
        ]
        .contains(&w.as_str())
        {
            if next_non_space(*end) == Some('(') {
                skip_group_from = Some(*end);
            }
            continue;
        }
        if KEYWORDS.contains(&w.as_str()) {
            continue;
        }
        if next_non_space(*end) == Some('(') {
            // A function or an aggregation; `label_values(metric, label)`: only its first argument.
            if w == "label_values" {
                let rest: String = chars[*end..].iter().collect();
                let arg = rest
                    .trim_start()
                    .trim_start_matches('(')
                    .split(',')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string();
                names.insert(arg);
                skip_group_from = Some(*end);
            }
            continue;
        }
        names.insert(w.clone());
    }
    names
}

/// The `expr` of every rule in a Prometheus rules file: plain scalars and `|` / `>` block scalars.
fn rule_exprs(yaml: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut out = Vec::new();
    let mut alert = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        if let Some(a) = trimmed
            .strip_prefix("- alert:")
            .or_else(|| trimmed.strip_prefix("- record:"))
        {
            alert = a.trim().to_string();
        }
        if let Some(v) = trimmed.strip_prefix("expr:") {
            let indent = line.len() - trimmed.len();
            let v = v.trim();
            if v.starts_with('|') || v.starts_with('>') {
                let mut body = Vec::new();
                i += 1;
                while i < lines.len() {
                    let l = lines[i];
                    let ind = l.len() - l.trim_start().len();
                    if !l.trim().is_empty() && ind <= indent {
                        break;
                    }
                    body.push(l.trim());
                    i += 1;
                }
                out.push((alert.clone(), body.join("\n")));
                continue;
            }
            out.push((
                alert.clone(),
                v.trim_matches('"').trim_matches('\'').to_string(),
            ));
        }
        i += 1;
    }
    out
}

/// Every query of a Grafana dashboard: panel targets' `expr` (rows' nested panels too) and the query of
/// each templating variable.
fn dashboard_queries(v: &serde_json::Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                let here = format!("{at}.{k}");
                match (k.as_str(), x) {
                    ("expr", serde_json::Value::String(e)) => out.push((here, e.clone())),
                    ("definition", serde_json::Value::String(e)) => out.push((here, e.clone())),
                    _ => dashboard_queries(x, &here, out),
                }
            }
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                dashboard_queries(x, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// What `check` found wrong: (where, metric name) for each name the service does not export.
fn unknown(queries: &[(String, String)], exported: &BTreeSet<String>) -> Vec<(String, String)> {
    let mut bad = Vec::new();
    for (at, q) in queries {
        let names = metric_names(q);
        assert!(
            !names.is_empty(),
            "{at}: no metric name found in {q:?} (the extractor or the query is wrong)"
        );
        for n in names {
            if !exported.contains(&n) {
                bad.push((at.clone(), n));
            }
        }
    }
    bad
}

fn exported() -> BTreeSet<String> {
    Metrics::new().series_names().into_iter().collect()
}

#[test]
fn the_extractor_finds_metric_names_and_nothing_else() {
    let got = |e: &str| metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        got(r#"sum by (instance, topic) (deriv(borderlane_consumer_lag{topic="x"}[10m])) > 0"#),
        ["borderlane_consumer_lag"]
    );
    assert_eq!(
        got("histogram_quantile(0.99, sum by (le) (rate(a_bucket[5m]))) / on(instance) group_left(version) b_info"),
        ["a_bucket", "b_info"]
    );
    assert_eq!(
        got(
            r#"rate(x_total{kind=~"a|b"}[$__rate_interval]) offset 5m and bool y unless ignoring (p) z"#
        ),
        ["x_total", "y", "z"]
    );
    assert_eq!(
        got(r#"label_replace(up_like, "dst", "$1", "src", "(.*)")"#),
        ["up_like"]
    );
    assert_eq!(
        got("label_values(borderlane_ready, instance)"),
        ["borderlane_ready"]
    );
    assert_eq!(
        got("sum(a) without (b, c) * 1e-9 + count(d) by (e)"),
        ["a", "d"]
    );
}

#[test]
fn an_unexported_name_is_reported() {
    let exported = exported();
    let queries = vec![
        (
            "typo".to_string(),
            "rate(borderlane_decision_total[5m])".to_string(),
        ),
        (
            "counter suffix".to_string(),
            "borderlane_decisions_total_count".to_string(),
        ),
        (
            "histogram suffix".to_string(),
            "rate(borderlane_end_to_end_seconds_count[5m])".to_string(),
        ),
    ];
    assert_eq!(
        unknown(&queries, &exported),
        vec![
            ("typo".to_string(), "borderlane_decision_total".to_string()),
            (
                "counter suffix".to_string(),
                "borderlane_decisions_total_count".to_string()
            )
        ]
    );
}

#[test]
fn the_registry_lists_families_without_samples_too() {
    let m = Metrics::new();
    let names = m.series_names();
    for n in [
        // Vectors with no child yet: absent from /metrics until first use, still exported.
        "borderlane_decisions_total",
        "borderlane_consumer_lag",
        "borderlane_partner_follower_lag",
        "borderlane_kafka_errors_total",
        "borderlane_stalled_partitions",
        "borderlane_ready",
        "borderlane_transaction_commit_seconds_bucket",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} not in {names:?}");
    }
    // Every family /metrics renders is in the list.
    for line in m.render().lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split_whitespace().next().unwrap();
            assert!(
                names.iter().any(|x| x == name),
                "{name} rendered but not listed"
            );
        }
    }
}

#[test]
fn alert_rules_use_only_exported_metrics() {
    let yaml = read("config/prometheus/alerts.yml");
    let exprs = rule_exprs(&yaml);
    let rules = yaml
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            t.starts_with("- alert:") || t.starts_with("- record:")
        })
        .count();
    assert_eq!(exprs.len(), rules, "one expr per rule: {exprs:#?}");
    // The issue's list: each of these is alerted on.
    let all: String = exprs.iter().map(|(_, e)| e.as_str()).collect();
    for needed in [
        "borderlane_consumer_lag",
        "borderlane_stalled_partitions",
        "borderlane_dead_letters_total",
        "borderlane_offset_commit_failures_total",
        "borderlane_transactions_total{outcome=\"aborted\"}",
        "borderlane_partner_follower_lag",
        "borderlane_policy_reload_failures_total",
        "borderlane_ready",
    ] {
        assert!(all.contains(needed), "no rule uses {needed}");
    }
    let bad = unknown(&exprs, &exported());
    assert!(
        bad.is_empty(),
        "alert rules use metrics the service does not export: {bad:?}"
    );
}

#[test]
fn dashboard_uses_only_exported_metrics() {
    let json: serde_json::Value =
        serde_json::from_str(&read("config/grafana/borderlane.json")).expect("dashboard is JSON");
    let mut queries = Vec::new();
    dashboard_queries(&json, "$", &mut queries);
    assert!(queries.len() >= 20, "only {} queries found", queries.len());
    let bad = unknown(&queries, &exported());
    assert!(
        bad.is_empty(),
        "the dashboard uses metrics the service does not export: {bad:?}"
    );
}
