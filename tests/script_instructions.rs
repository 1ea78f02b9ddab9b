//! `scripts/instructions`, run for real on a few generated manifests: it counts the `score` run and the same
//! run over no manifest with callgrind and prints instructions a manifest; and it refuses bad arguments.
//! Built with the `valgrind-tests` feature only (scripts/test turns it on and installs valgrind; the script
//! would install it itself too).

use std::path::PathBuf;
use std::process::Command;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/instructions")
}

/// Runs the script with `args` on the test build of `borderlane`, its data and callgrind files in a fresh
/// directory named after `name` (`$CARGO_TARGET_DIR/instructions` there); asserts that it succeeded and
/// returns the directory and its standard output.
fn run(name: &str, args: &[&str]) -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(script())
        .args(args)
        .arg(env!("CARGO_BIN_EXE_borderlane"))
        .env("CARGO_TARGET_DIR", &dir)
        .output()
        .expect("scripts/instructions runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, stdout)
}

#[test]
fn counts_instructions_a_manifest_of_a_build() {
    let (dir, stdout) = run("bl-instructions", &["--manifests", "300", "--top", "3"]);
    let row = stdout
        .lines()
        .find(|l| l.starts_with(env!("CARGO_BIN_EXE_borderlane")))
        .unwrap_or_else(|| panic!("no row for the binary in:\n{stdout}"));
    let numbers: Vec<u64> = row
        .split_whitespace()
        .skip(1)
        .map(|n| n.parse().unwrap_or_else(|_| panic!("{n:?} in {row:?}")))
        .collect();
    let [total, fixed, each] = numbers[..] else {
        panic!("{row:?}: expected instructions, fixed, a manifest");
    };
    assert!(fixed > 0 && total > fixed, "{row:?}");
    assert_eq!(each, (total - fixed) / 300, "{row:?}");
    // Parse, joins, rules and writer of a ~1.7 KB manifest: ~56 000 instructions in a release build
    // (docs/performance.md), ~650 000 in the unoptimised one `cargo test` builds.
    assert!((10_000..5_000_000).contains(&each), "{row:?}");
    // --top names our three most expensive functions (inclusive).
    let top: Vec<&str> = stdout.lines().filter(|l| l.starts_with("    ")).collect();
    assert_eq!(top.len(), 3, "{stdout}");
    assert!(top.iter().all(|l| l.contains("borderlane")), "{stdout}");
    assert!(dir.join("instructions/manifests-300.ndjson").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--one-shipment`: the counted manifests are the generator's single-shipment ones (one `shipment_id` a
/// line), as many as asked for, kept in a file of their own beside the mixed one.
#[test]
fn one_shipment_counts_single_shipment_manifests() {
    let (dir, _) = run(
        "bl-instructions-one",
        &["--manifests", "200", "--one-shipment"],
    );
    let data = std::fs::read_to_string(dir.join("instructions/manifests-one-shipment-200.ndjson"))
        .expect("the single-shipment manifests");
    let lines: Vec<&str> = data.lines().collect();
    assert_eq!(lines.len(), 200);
    for line in &lines {
        let m: serde_json::Value = serde_json::from_str(line).expect("a manifest");
        assert_eq!(m["shipments"].as_array().map(Vec::len), Some(1), "{line}");
    }
    assert!(!dir.join("instructions/manifests-200.ndjson").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn refuses_bad_arguments() {
    for args in [
        &["--manifests", "0"][..],
        &["--manifests", "x"],
        &["--top", "-1"],
        &["--unknown"],
        &["/no/such/binary"],
    ] {
        let out = Command::new(script()).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
