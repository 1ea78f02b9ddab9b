//! Fuzz harnesses: one function per decoder of outside input. Each takes arbitrary bytes, runs the decoder,
//! and checks invariants beyond "does not panic" (a failed invariant panics, which the fuzzer records as a
//! crash). The AFL binaries in `src/fuzz/afl/` call these functions, and `tests/corpus.rs` replays every
//! checked-in corpus and crash file through them as ordinary tests, so the harnesses never rot and CI needs
//! no fuzzer.

use std::sync::OnceLock;

use borderlane_core::model::Model;
use borderlane_core::policy::compile::CompiledPolicy;
use borderlane_core::policy::validate::parse_policy;
use borderlane_core::wire::{
    decision_limits, fast_decision_facts, fast_partner, parse_decision_facts,
    parse_decision_facts_serde, parse_manifest, parse_manifest_serde, parse_partner,
    parse_partner_serde, Limits,
};

/// A harness: runs one decoder on arbitrary bytes and panics when an invariant fails.
pub type Harness = fn(&[u8]);

/// The targets, by the name of their corpus directory and AFL binary.
pub const TARGETS: &[(&str, Harness)] = &[
    ("manifest", manifest),
    ("manifest_diff", manifest_diff),
    ("partner", partner),
    ("decision", decision),
    ("outcome", outcome),
    ("policy", policy),
    ("model", model),
    #[cfg(feature = "service")]
    ("config", config),
    #[cfg(feature = "service")]
    ("query", query),
    #[cfg(feature = "service")]
    ("admin", admin),
];

/// Manifests (`wire::parse_manifest`, default limits): a manifest that parses re-serialises to JSON that
/// parses again to an equal manifest, and serialising that gives the same bytes.
pub fn manifest(data: &[u8]) {
    let limits = Limits::default();
    let Ok(m) = parse_manifest(data, &limits) else {
        return;
    };
    let json = serde_json::to_vec(&m).expect("a parsed manifest serialises");
    let again = parse_manifest(&json, &limits).unwrap_or_else(|e| {
        panic!(
            "re-serialised manifest does not parse: {e:?}\n{}",
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(m, again, "manifest changed across serialise -> parse");
    assert_eq!(
        json,
        serde_json::to_vec(&again).unwrap(),
        "manifest JSON not stable"
    );
}

/// Manifests, differentially: `wire::parse_manifest` (the one-pass fast reader with the serde_json
/// fallback) and `wire::parse_manifest_serde` (serde_json alone, the reading of 917ca7d) agree on every
/// input — the same manifest, to the bit of every float (compared through its serialised bytes), or the
/// same dead-letter kind and message — under the default limits and under tight ones.
pub fn manifest_diff(data: &[u8]) {
    for limits in [Limits::default(), tight_limits()] {
        let fast = parse_manifest(data, &limits);
        let slow = parse_manifest_serde(data, &limits);
        match (&fast, &slow) {
            (Ok(f), Ok(s)) => {
                assert_eq!(f, s, "fast and serde readings differ");
                assert_eq!(
                    serde_json::to_vec(f).unwrap(),
                    serde_json::to_vec(s).unwrap(),
                    "fast and serde readings serialise differently"
                );
            }
            _ => assert_eq!(fast, slow, "fast and serde outcomes differ"),
        }
    }
}

/// Limits small enough that the corpus records reach them.
fn tight_limits() -> Limits {
    Limits {
        max_id_len: 12,
        max_items: 1,
        max_shipments: 1,
        max_commodities: 1,
        max_depth: 4,
        ..Limits::default()
    }
}

/// Partner records (`wire::parse_partner`): the fast reader and serde_json agree (under the default and
/// tight limits), and a parsed partner makes the same round trip as a manifest.
pub fn partner(data: &[u8]) {
    let limits = Limits::default();
    partner_diff(data, &limits);
    partner_diff(data, &tight_limits());
    let Ok(p) = parse_partner(data, &limits) else {
        return;
    };
    let json = serde_json::to_vec(&p).expect("a parsed partner serialises");
    let again = parse_partner(&json, &limits).unwrap_or_else(|e| {
        panic!(
            "re-serialised partner does not parse: {e:?}\n{}",
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(p, again, "partner changed across serialise -> parse");
}

/// Partners, differentially (as [`manifest_diff`]): whatever the one-pass reader accepts alone serde_json
/// reads to an equal partner, and `parse_partner` returns exactly what `parse_partner_serde` returns.
fn partner_diff(data: &[u8], limits: &Limits) {
    let fast = parse_partner(data, limits);
    let slow = parse_partner_serde(data, limits);
    assert_eq!(fast, slow, "fast and serde partner outcomes differ");
    if let Some(alone) = fast_partner(data, limits) {
        let text = std::str::from_utf8(data).expect("the fast reader accepted invalid UTF-8");
        let serde: borderlane_core::Partner = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("the fast reader accepted what serde_json refuses: {e}"));
        assert_eq!(alone, serde, "fast and serde partner readings differ");
    }
}

/// Decision records read back from the decisions topic (`wire::parse_decision_facts`), differentially as
/// [`partner`]: under the decision limits and tight ones, `parse_decision_facts` returns exactly what
/// `parse_decision_facts_serde` returns, and whatever the one-pass reader accepts alone serde_json reads to
/// equal facts; facts that parse re-serialise to a record that parses to equal facts.
pub fn decision(data: &[u8]) {
    for limits in [decision_limits(), tight_limits()] {
        let fast = parse_decision_facts(data, &limits);
        let slow = parse_decision_facts_serde(data, &limits);
        assert_eq!(fast, slow, "fast and serde decision-record outcomes differ");
        if let Some(alone) = fast_decision_facts(data, &limits) {
            let text = std::str::from_utf8(data).expect("the fast reader accepted invalid UTF-8");
            let serde: borderlane_core::wire::DecisionFacts = serde_json::from_str(text)
                .unwrap_or_else(|e| {
                    panic!("the fast reader accepted what serde_json refuses: {e}")
                });
            assert_eq!(
                alone, serde,
                "fast and serde decision-record readings differ"
            );
        }
    }
    let Ok(d) = parse_decision_facts(data, &decision_limits()) else {
        return;
    };
    let json = serde_json::to_vec(&d).expect("decision facts serialise");
    let again = parse_decision_facts(&json, &decision_limits()).unwrap_or_else(|e| {
        panic!(
            "re-serialised decision facts do not parse: {e:?}\n{}",
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(d, again, "decision facts changed across serialise -> parse");
}

/// Exam outcomes (`outcome::parse_outcome`, both forms): a refused record reports at least one error and
/// every error has a message; a record that parses re-serialises to a complete record that parses again to
/// an equal one (the request form's empty parties and causes included).
pub fn outcome(data: &[u8]) {
    use borderlane_core::outcome::{parse_outcome, Form};
    let limits = Limits::default();
    for form in [Form::Record, Form::Request] {
        match parse_outcome(data, &limits, form) {
            Err(e) => {
                assert!(!e.0.is_empty(), "a refused outcome names no error");
                assert!(e.0.iter().all(|f| !f.message.is_empty()), "{e:?}");
            }
            Ok(o) => {
                let json = serde_json::to_vec(&o).expect("a parsed outcome serialises");
                let again = parse_outcome(&json, &limits, Form::Record).unwrap_or_else(|e| {
                    panic!(
                        "re-serialised outcome does not parse: {e:?}\n{}",
                        String::from_utf8_lossy(&json)
                    )
                });
                assert_eq!(o, again, "outcome changed across serialise -> parse");
            }
        }
    }
}

/// A small valid model (the trimmed checked-in seed), for policies with a `[model]` section.
fn small_model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        Model::parse(include_bytes!("../corpus/model/small.json")).expect("the small model parses")
    })
}

/// Policies (`policy::parse_policy` = schema + validation): every error has a message; a policy that
/// validates compiles (with a model when it names one, and is refused at `model.file` without it); its
/// version is stable across parse -> serialise (TOML) -> parse, and so is the document.
pub fn policy(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let doc = match parse_policy(text) {
        Ok(doc) => doc,
        Err(errors) => {
            assert!(!errors.is_empty(), "a refused policy names no error");
            for e in &errors {
                assert!(
                    !e.message.is_empty(),
                    "error without a message at {}",
                    e.path
                );
            }
            return;
        }
    };
    let version = doc.version();
    if doc.model.is_some() {
        let Err(errs) = CompiledPolicy::with_model(doc.clone(), None) else {
            panic!("a policy naming a model compiles without it");
        };
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].path, "model.file");
        CompiledPolicy::with_model(doc.clone(), Some(small_model().clone()))
            .unwrap_or_else(|e| panic!("a valid policy with its model does not compile: {e:?}"));
    } else {
        CompiledPolicy::with_model(doc.clone(), None)
            .unwrap_or_else(|e| panic!("a valid policy does not compile: {e:?}"));
        CompiledPolicy::from_toml(text)
            .unwrap_or_else(|e| panic!("from_toml refuses a valid policy: {e:?}"));
    }
    let Ok(serialised) = toml::to_string(&doc) else {
        return;
    };
    let again = parse_policy(&serialised).unwrap_or_else(|e| {
        panic!("a valid policy re-serialised does not validate: {e:?}\n{serialised}")
    });
    assert_eq!(doc, again, "policy changed across serialise -> parse");
    assert_eq!(version, again.version(), "policy version not stable");
}

/// Model files (`model::Model::parse`): a model that parses has a `sha256:` version, at least one feature,
/// and gives a finite margin and a probability in [0, 1] on an all-zero feature vector.
pub fn model(data: &[u8]) {
    let Ok(m) = Model::parse(data) else {
        return;
    };
    assert!(
        m.version.starts_with("sha256:") && m.version.len() == 7 + 64,
        "model version {:?}",
        m.version
    );
    let x = vec![0.0; m.n_features()];
    let margin = m.margin(&x);
    assert!(margin.is_finite(), "margin {margin}");
    let mut contrib = vec![0.0; m.n_features() + 1];
    let explained = m.explain(&x, &mut contrib);
    assert!(explained.is_finite(), "explain {explained}");
}

#[cfg(feature = "service")]
pub use service::{admin, config, query};

#[cfg(feature = "service")]
mod service {
    use std::path::Path;

    use borderlane::service::admin::api::{parse_rollback, parse_simulate};
    use borderlane::service::config::Config;
    use borderlane::service::feed::Filter;

    /// Splits `text` at a line `#ENV`: the part before is the document, each `NAME=VALUE` line after it an
    /// environment variable.
    fn split_env(text: &str) -> (&str, Vec<(String, String)>) {
        match text.split_once("\n#ENV\n") {
            Some((doc, env)) => (
                doc,
                env.lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            None => (text, Vec::new()),
        }
    }

    /// The service configuration (`Config::from_text` with environment overrides after a `#ENV` line):
    /// a refusal lists at least one error, and every error of a document that is valid TOML has a key path.
    pub fn config(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let (doc, env) = split_env(text);
        let base = Path::new("/nonexistent/borderlane-fuzz");
        match Config::from_text(doc, env, base) {
            Ok(c) => {
                assert!(c.service.shutdown_timeout_ms >= 1000);
            }
            Err(errors) => {
                assert!(
                    !errors.0.is_empty(),
                    "a refused configuration names no error"
                );
                if doc.parse::<toml::Table>().is_ok() {
                    for e in &errors.0 {
                        assert!(
                            !e.path.is_empty() || e.message.starts_with("cannot re-serialise"),
                            "configuration error without a path: {e}"
                        );
                    }
                }
            }
        }
    }

    /// The live feed's filter query string (`Filter::from_query`): a filter that decodes re-encodes to a
    /// query that decodes to the same filter.
    pub fn query(data: &[u8]) {
        let Ok(q) = std::str::from_utf8(data) else {
            return;
        };
        let Ok(f) = Filter::from_query(q) else {
            return;
        };
        let encoded = f.to_query();
        let again = Filter::from_query(&encoded)
            .unwrap_or_else(|e| panic!("re-encoded filter {encoded:?} does not decode: {e}"));
        assert_eq!(f, again, "filter changed across encode -> decode");
    }

    /// The admin API's JSON bodies: the first byte picks rollback (odd), business resumption (2 modulo 4:
    /// the next 4 bytes are the port of the path, the rest the body) or simulate (0 modulo 4); a simulate
    /// request that decodes has a target rate in [0, 1] and a sample of at most 200, and its candidate
    /// policy goes through the same compile as the handler; a resumption request that is accepted is
    /// declared at the given time, ends after it and within the maximum, and its control record decodes to
    /// the same declaration. A first byte `O` makes the rest an officer's `POST /outcomes` body: whatever
    /// it holds, an outcome the parser accepts after the officer binding is recorded by the logged-in
    /// officer, never by a name the body chose.
    pub fn admin(data: &[u8]) {
        let Some((&which, body)) = data.split_first() else {
            return;
        };
        if which == b'O' {
            return officer(body);
        }
        if which & 3 == 2 {
            return resumption(body);
        }
        if which & 1 == 1 {
            if let Ok(r) = parse_rollback(body) {
                let _ = r.version.len();
            }
            return;
        }
        let Ok(req) = parse_simulate(body) else {
            return;
        };
        if let Some(t) = req.target_exam_rate {
            assert!((0.0..=1.0).contains(&t), "target_exam_rate {t}");
        }
        assert!(req.sample <= 200, "sample {}", req.sample);
        let _ = borderlane_core::policy::compile::CompiledPolicy::from_toml(&req.policy);
    }

    fn officer(body: &[u8]) {
        use borderlane::service::outcomes::officer_body;
        use borderlane_core::outcome::{parse_outcome, Form};
        const NAME: &str = "olga";
        let Ok(bound) = officer_body(body, NAME) else {
            return;
        };
        if let Ok(o) = parse_outcome(&bound, &borderlane_core::Limits::default(), Form::Request) {
            assert_eq!(
                &*o.officer, NAME,
                "an outcome recorded under another officer's name"
            );
        }
    }

    fn resumption(data: &[u8]) {
        use borderlane::service::resumption::{decode, encode, parse_request};
        use borderlane_core::time::Timestamp;
        static POLICY: std::sync::OnceLock<borderlane_core::CompiledPolicy> =
            std::sync::OnceLock::new();
        let policy = POLICY.get_or_init(borderlane::load::policy::default_policy);
        if data.len() < 4 {
            return;
        }
        let (port, body) = data.split_at(4);
        let Ok(port) = std::str::from_utf8(port) else {
            return;
        };
        let now = Timestamp::parse("2026-12-01T10:00:00Z").expect("a valid time");
        let max = std::time::Duration::from_secs(168 * 3600);
        match parse_request(port, body, policy, now, max, "fuzz") {
            Ok(d) => {
                assert_eq!(d.declared_at, now);
                assert!(d.until > now, "until {} not after {now}", d.until);
                assert!(
                    d.until.unix_nanos() - now.unix_nanos() <= max.as_nanos() as i128,
                    "until {} beyond the maximum",
                    d.until
                );
                assert!(!d.reason.trim().is_empty(), "empty reason accepted");
                assert!(policy.port(d.port).is_some(), "port outside the policy");
                assert_eq!(
                    decode(d.port, &encode(&d)).as_ref(),
                    Ok(&d),
                    "control record round trip"
                );
            }
            Err(errors) => assert!(!errors.is_empty(), "a refusal without errors"),
        }
    }
}
