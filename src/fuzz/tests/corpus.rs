//! Replays every checked-in corpus input (`corpus/TARGET/*`) and every crash the fuzzer found
//! (`crashes/TARGET/*`, kept after the fix as regression inputs) through its harness, as ordinary tests: CI
//! needs no fuzzer build, and a harness that stops compiling or a decoder that regresses fails here.

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

fn replay(kind: &str, min_files: usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for (name, harness) in borderlane_fuzz::TARGETS {
        let found = files(&root.join(kind).join(name));
        for path in &found {
            let data = std::fs::read(path).expect("read corpus file");
            let result = std::panic::catch_unwind(|| harness(&data));
            assert!(
                result.is_ok(),
                "{name}: {} fails its harness",
                path.display()
            );
        }
        assert!(
            found.len() >= min_files,
            "{name}: {} {kind} files, expected at least {min_files}",
            found.len()
        );
        seen += found.len();
    }
    eprintln!("{kind}: {seen} files replayed");
}

#[test]
fn every_corpus_input_passes_its_harness() {
    replay("corpus", 1);
}

#[test]
fn every_fuzzer_crash_is_fixed() {
    replay("crashes", 0);
}

#[test]
fn every_target_has_a_corpus_and_an_afl_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let names: Vec<&str> = borderlane_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
    for name in &names {
        assert!(
            root.join("corpus").join(name).is_dir(),
            "no corpus for {name}"
        );
        assert!(
            root.join("afl/src/bin")
                .join(format!("{name}.rs"))
                .is_file(),
            "no AFL binary for {name}"
        );
    }
    assert_eq!(names.len(), 10, "{names:?}");
}

/// Inputs that once panicked or sit on a refusal path pass their harnesses.
#[test]
fn known_hard_inputs_pass_the_harnesses() {
    // A policy whose multi-byte key made the key-path parser panic (security issue, item 5).
    borderlane_fuzz::policy("\"[]é]\" = 1\n".as_bytes());
    // Not valid input: refused, no invariant to check.
    borderlane_fuzz::manifest(b"{");
    // A complete decision record whose score is `-0`, which serde_json refuses for an integer (the fast
    // reader must decline it, not read 0).
    borderlane_fuzz::decision(
        br#"{"manifest_id":"M","revision":0,"port_of_entry":"2304","action":"release","score":-0,"importer_standing":"none"}"#,
    );
    borderlane_fuzz::outcome(b"{\"parties\": [{\"role\": 1}], \"causes\": [\"band\", \"band\"]}");
    borderlane_fuzz::model(b"{}");
    borderlane_fuzz::config(b"[service]\nshutdown_timeout_ms = 5\n");
    borderlane_fuzz::query(b"min_score=abc");
    borderlane_fuzz::admin(b"0{\"policy\":\"\",\"sample\":5000}");
}

/// The policy round-trip invariant is exercised, not skipped: the default policy serialises to TOML.
#[test]
fn the_policy_round_trip_is_not_vacuous() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("corpus/policy/default.toml")).unwrap();
    let doc = borderlane_core::policy::validate::parse_policy(&text).unwrap();
    let again = toml::to_string(&doc).expect("the default policy serialises to TOML");
    assert_eq!(
        borderlane_core::policy::validate::parse_policy(&again)
            .unwrap()
            .version(),
        doc.version()
    );
}

/// The resumption round-trip invariant is exercised, not skipped: the corpus request is accepted.
#[test]
fn the_resumption_round_trip_is_not_vacuous() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = std::fs::read(root.join("corpus/admin/resumption")).unwrap();
    assert_eq!(
        data[0] & 3,
        2,
        "the corpus entry selects the resumption decoder"
    );
    let (port, body) = data[1..].split_at(4);
    let now = borderlane_core::time::Timestamp::parse("2026-12-01T10:00:00Z").unwrap();
    let accepted = borderlane::service::resumption::parse_request(
        std::str::from_utf8(port).unwrap(),
        body,
        &borderlane::load::policy::default_policy(),
        now,
        std::time::Duration::from_secs(168 * 3600),
        "fuzz",
    );
    assert!(accepted.is_ok(), "{accepted:?}");
}
