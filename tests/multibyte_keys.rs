//! Security issue item 5: keys holding multi-byte characters (`"[]é]" = 1`) made the key-path parser slice
//! inside a character and panic. Every document reader reports them as errors with their paths instead.

use std::path::Path;
use std::process::Command;

use borderlane::load::policy::DEFAULT_POLICY;
use borderlane::service::config::Config;

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("borderlane-multibyte-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_policy_lists_a_multibyte_key_and_exits_1() {
    let path = temp_file("policy.toml", &format!("\"[]é]\" = 1\n{DEFAULT_POLICY}"));
    let out = Command::new(env!("CARGO_BIN_EXE_borderlane"))
        .arg("check-policy")
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stdout.contains("[]é]") && stdout.contains("unknown field"),
        "the error is listed with its key: {stdout}"
    );
}

#[test]
fn config_reports_multibyte_keys_with_their_paths() {
    for text in [
        "\"[]é]\" = 1\n",
        "[service]\n\"[]é]\" = 1\n",
        "[kafka]\n\"é[0]é]\" = 1\n",
    ] {
        let errors = Config::from_text(text, Vec::new(), Path::new("/tmp")).unwrap_err();
        assert!(
            errors
                .0
                .iter()
                .any(|e| e.path.ends_with("]é]") || e.path.ends_with("é[0]é]")),
            "{text}: {errors:?}"
        );
    }
}
