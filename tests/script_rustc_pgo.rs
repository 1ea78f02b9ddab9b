//! `scripts/rustc-pgo`, the workspace's rustc wrapper: which compilations get the profile-guided
//! optimisation data and which are left exactly as cargo asked. Each case runs a copy of the wrapper beside
//! a profile and an LLVM major of its own, with a fake compiler that answers `-vV` with a chosen LLVM
//! version and otherwise prints the arguments it was given.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A copy of the wrapper in a temporary directory, with `pgo/` beside it.
struct Setup {
    dir: PathBuf,
}

impl Setup {
    fn new(name: &str, profile: bool, made_with: Option<&str>, compiler_llvm: &str) -> Setup {
        let dir = std::env::temp_dir().join(format!(
            "borderlane-rustc-pgo-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("pgo")).unwrap();
        let wrapper = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/rustc-pgo");
        std::fs::copy(&wrapper, dir.join("rustc-pgo")).unwrap();
        if profile {
            std::fs::write(dir.join("pgo/borderlane.profdata"), b"profile").unwrap();
        }
        if let Some(major) = made_with {
            std::fs::write(dir.join("pgo/llvm-major"), format!("{major}\n")).unwrap();
        }
        let compiler = dir.join("rustc");
        std::fs::write(
            &compiler,
            format!(
                "#!/usr/bin/env bash\nif [[ $1 == -vV ]]; then\n  printf 'rustc 1.95.0\\nLLVM version: {compiler_llvm}\\n'\n  exit 0\nfi\nprintf '%s\\n' \"$@\"\n"
            ),
        )
        .unwrap();
        let mut perms = std::fs::metadata(&compiler).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&compiler, perms).unwrap();
        Setup { dir }
    }

    /// The arguments the compiler received when cargo asked for `args` (through the wrapper).
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
        let mut cmd = Command::new(self.dir.join("rustc-pgo"));
        cmd.arg(self.dir.join("rustc"))
            .args(args)
            .env_remove("BORDERLANE_NO_PGO");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run the wrapper");
        assert!(
            out.status.success(),
            "wrapper failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn profile_flag(&self) -> String {
        format!(
            "-Cprofile-use={}",
            self.dir.join("pgo/borderlane.profdata").display()
        )
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const RELEASE: &[&str] = &[
    "--crate-name",
    "borderlane_core",
    "-C",
    "opt-level=3",
    "-C",
    "lto",
];

#[test]
fn an_optimised_crate_gets_the_profile_and_keeps_its_arguments() {
    let s = Setup::new("release", true, Some("22"), "22.1.2");
    let got = s.run(RELEASE, &[]);
    let mut want: Vec<String> = RELEASE.iter().map(|a| a.to_string()).collect();
    want.push(s.profile_flag());
    want.push("-Cllvm-args=-no-pgo-warn-mismatch".into());
    assert_eq!(got, want);
    // The joined spelling too, and a newer LLVM than the profile's reads it.
    let s = Setup::new("joined", true, Some("21"), "22.0.0");
    let got = s.run(&["-Copt-level=3", "lib.rs"], &[]);
    assert_eq!(got[..2], ["-Copt-level=3", "lib.rs"]);
    assert_eq!(got[2], s.profile_flag());
}

#[test]
fn everything_else_is_compiled_as_asked() {
    let s = Setup::new("others", true, Some("22"), "22.1.2");
    let unchanged = |args: &[&str], env: &[(&str, &str)]| {
        assert_eq!(s.run(args, env), args, "args {args:?}, env {env:?}");
    };
    // A debug build (no opt-level) and a less optimised one.
    unchanged(&["--crate-name", "x", "-C", "debuginfo=2"], &[]);
    unchanged(&["-C", "opt-level=2"], &[]);
    // `opt-level=3` not following `-C` is not the optimisation level.
    unchanged(&["--cfg", "opt-level=3"], &[]);
    // Asked not to, or an instrumented build.
    unchanged(RELEASE, &[("BORDERLANE_NO_PGO", "1")]);
    unchanged(&["-C", "opt-level=3", "-Cprofile-generate=/tmp/raw"], &[]);
    unchanged(
        &["-C", "opt-level=3", "-C", "profile-generate=/tmp/raw"],
        &[],
    );
    // cargo's own questions to the compiler.
    assert_eq!(
        s.run(&["-vV"], &[]),
        ["rustc 1.95.0", "LLVM version: 22.1.2"]
    );
    // An empty BORDERLANE_NO_PGO does not turn it off.
    assert_eq!(
        s.run(RELEASE, &[("BORDERLANE_NO_PGO", "")]).last().unwrap(),
        "-Cllvm-args=-no-pgo-warn-mismatch"
    );
}

#[test]
fn no_profile_or_an_older_llvm_builds_without_one() {
    // An LLVM older than the profile's may not read it: the build goes on without it.
    let s = Setup::new("older", true, Some("22"), "21.1.0");
    assert_eq!(s.run(RELEASE, &[]), RELEASE);
    // No profile, or no record of the LLVM it was written with.
    let s = Setup::new("none", false, Some("22"), "22.1.2");
    assert_eq!(s.run(RELEASE, &[]), RELEASE);
    let s = Setup::new("unknown", true, None, "22.1.2");
    assert_eq!(s.run(RELEASE, &[]), RELEASE);
    // A compiler that names no LLVM version.
    let s = Setup::new("nameless", true, Some("22"), "");
    assert_eq!(s.run(RELEASE, &[]), RELEASE);
}

#[test]
fn under_clippy_the_llvm_version_is_rustcs() {
    // `cargo clippy` runs the wrapper as `rustc-pgo clippy-driver rustc ARGS`: the version asked is the
    // second program's.
    let s = Setup::new("clippy", true, Some("22"), "22.1.2");
    let driver = s.dir.join("clippy-driver");
    std::fs::write(
        &driver,
        "#!/usr/bin/env bash\nif [[ $1 == -vV ]]; then echo 'clippy 0.1.95'; exit 0; fi\nshift\nprintf '%s\\n' \"$@\"\n",
    )
    .unwrap();
    let mut perms = std::fs::metadata(&driver).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&driver, perms).unwrap();
    let out = Command::new(s.dir.join("rustc-pgo"))
        .arg(&driver)
        .arg(s.dir.join("rustc"))
        .args(RELEASE)
        .env_remove("BORDERLANE_NO_PGO")
        .output()
        .unwrap();
    assert!(out.status.success());
    let got: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(got.last().unwrap(), "-Cllvm-args=-no-pgo-warn-mismatch");
    assert_eq!(got[got.len() - 2], s.profile_flag());
}

/// The profile the workspace builds with is committed, with the LLVM major it was written with, and the
/// workspace's cargo configuration runs the wrapper.
#[test]
fn the_workspace_is_wired_to_the_wrapper() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = std::fs::read_to_string(root.join(".cargo/config.toml")).unwrap();
    assert!(
        config
            .lines()
            .any(|l| l.trim() == r#"rustc-wrapper = "scripts/rustc-pgo""#),
        "{config}"
    );
    let profile = std::fs::read(root.join("scripts/pgo/borderlane.profdata")).unwrap();
    // An indexed LLVM profile: its magic number, little-endian.
    assert_eq!(
        profile[..8],
        0x8169_666f_7270_6cffu64.to_le_bytes(),
        "not an indexed profile"
    );
    let major = std::fs::read_to_string(root.join("scripts/pgo/llvm-major")).unwrap();
    assert!(major.trim().parse::<u32>().is_ok(), "{major:?}");
}
