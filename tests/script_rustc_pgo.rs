//! `scripts/rustc-pgo`, the workspace's rustc wrapper: which compilations get the profile-guided
//! optimisation data, that every optimised one is named with v0 symbol mangling (the names the profile is
//! keyed by), and which are left exactly as cargo asked. Each case runs a copy of the wrapper beside
//! a profile and an LLVM major of its own, with a fake compiler that answers `-vV` with a chosen LLVM
//! version and otherwise prints the arguments it was given.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

/// Held by each test for its whole run: every test writes executables and then runs them, and a file
/// written while another thread forks can still be open for writing in that child when it is run
/// ("Text file busy", rust-lang/rust#114554).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes an executable script.
fn script(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    let mut perms = std::fs::metadata(path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(path, perms).unwrap();
}

/// A copy of the wrapper in a temporary directory (its name has a space: the profile's path must stay
/// one argument), with `pgo/` beside it.
struct Setup {
    dir: PathBuf,
}

impl Setup {
    fn new(name: &str, profile: bool, made_with: Option<&str>, compiler_llvm: &str) -> Setup {
        let dir = std::env::temp_dir().join(format!(
            "borderlane rustc-pgo {name}-{}",
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
        script(
            &dir.join("rustc"),
            &format!(
                "#!/usr/bin/env bash\nif [[ $1 == -vV ]]; then\n  printf 'rustc 1.95.0\\nLLVM version: {compiler_llvm}\\n'\n  exit 0\nfi\nprintf '%s\\n' \"$@\"\n"
            ),
        );
        Setup { dir }
    }

    /// The arguments the compiler received when cargo asked for `args` (through the wrapper).
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
        self.run_under(&[self.dir.join("rustc")], args, env)
    }

    /// [`Setup::run`] with `programs` before the arguments (the compiler, or clippy-driver and rustc).
    fn run_under(&self, programs: &[PathBuf], args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
        let mut cmd = Command::new(self.dir.join("rustc-pgo"));
        cmd.args(programs)
            .args(args)
            .env_remove("BORDERLANE_NO_PGO")
            .env_remove("BORDERLANE_PGO_WARN");
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

    /// A fake clippy-driver beside the fake rustc: names clippy's version, runs the rustc it is given.
    fn clippy_driver(&self) -> PathBuf {
        let driver = self.dir.join("clippy-driver");
        script(
            &driver,
            "#!/usr/bin/env bash\nif [[ $1 == -vV ]]; then echo 'clippy 0.1.95'; exit 0; fi\nexec \"$@\"\n",
        );
        driver
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

/// Every optimised crate's symbols are named this way, profiled or not: legacy names hash each function's
/// type, which changes with any struct in its signature, and the profile is found by name.
const V0: &str = "-Csymbol-mangling-version=v0";

/// `args` as the compiler gets them when optimised without the profile: only the naming added.
fn named(args: &[&str]) -> Vec<String> {
    args.iter()
        .map(|a| a.to_string())
        .chain([V0.to_string()])
        .collect()
}

#[test]
fn an_optimised_crate_gets_the_profile_and_keeps_its_arguments() {
    let _one = one_at_a_time();
    let s = Setup::new("release", true, Some("22"), "22.1.2");
    let got = s.run(RELEASE, &[]);
    let mut want = named(RELEASE);
    want.push(s.profile_flag());
    want.push("-Cllvm-args=-no-pgo-warn-mismatch".into());
    assert_eq!(got, want);
    // scripts/pgo-check asks for LLVM's warnings: the same build, the mismatch warnings left on and the
    // functions without a profile named too.
    let mut warned = want.clone();
    *warned.last_mut().unwrap() = "-Cllvm-args=-pgo-warn-missing-function".into();
    assert_eq!(s.run(RELEASE, &[("BORDERLANE_PGO_WARN", "1")]), warned);
    // The joined spelling too, and a newer LLVM than the profile's reads it.
    let s = Setup::new("joined", true, Some("21"), "22.0.0");
    let got = s.run(&["-Copt-level=3", "lib.rs"], &[]);
    assert_eq!(got[..3], ["-Copt-level=3", "lib.rs", V0]);
    assert_eq!(got[3], s.profile_flag());
    assert_eq!(got.len(), 5);
}

#[test]
fn everything_else_is_compiled_as_asked() {
    let _one = one_at_a_time();
    let s = Setup::new("others", true, Some("22"), "22.1.2");
    let unchanged = |args: &[&str], env: &[(&str, &str)]| {
        assert_eq!(s.run(args, env), args, "args {args:?}, env {env:?}");
    };
    // A debug build (no opt-level) and a less optimised one.
    unchanged(&["--crate-name", "x", "-C", "debuginfo=2"], &[]);
    unchanged(&["-C", "opt-level=2"], &[]);
    // `opt-level=3` not following `-C` is not the optimisation level.
    unchanged(&["--cfg", "opt-level=3"], &[]);
    // Asked not to, an instrumented build, or one given a profile already (either spelling): optimised,
    // so named as the profiled builds are (an instrumented build's names are the profile's), and nothing
    // else added.
    let named_only = |args: &[&str], env: &[(&str, &str)]| {
        assert_eq!(s.run(args, env), named(args), "args {args:?}, env {env:?}");
    };
    named_only(RELEASE, &[("BORDERLANE_NO_PGO", "1")]);
    named_only(&["-C", "opt-level=3", "-Cprofile-generate=/tmp/raw"], &[]);
    named_only(
        &["-C", "opt-level=3", "-C", "profile-generate=/tmp/raw"],
        &[],
    );
    named_only(&["-C", "opt-level=3", "-Cprofile-use=/tmp/p.profdata"], &[]);
    named_only(
        &["-C", "opt-level=3", "-C", "profile-use=/tmp/p.profdata"],
        &[],
    );
    // cargo's own questions to the compiler.
    unchanged(&["-", "--crate-name", "___", "--print=file-names"], &[]);
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
    let _one = one_at_a_time();
    // An LLVM older than the profile's may not read it: the build goes on without it.
    let s = Setup::new("older", true, Some("22"), "21.1.0");
    assert_eq!(s.run(RELEASE, &[]), named(RELEASE));
    // No profile, or no record of the LLVM it was written with.
    let s = Setup::new("none", false, Some("22"), "22.1.2");
    assert_eq!(s.run(RELEASE, &[]), named(RELEASE));
    let s = Setup::new("unknown", true, None, "22.1.2");
    assert_eq!(s.run(RELEASE, &[]), named(RELEASE));
    // A compiler that names no LLVM version.
    let s = Setup::new("nameless", true, Some("22"), "");
    assert_eq!(s.run(RELEASE, &[]), named(RELEASE));
}

#[test]
fn under_clippy_the_llvm_version_is_rustcs() {
    let _one = one_at_a_time();
    // `cargo clippy --release` runs the wrapper as `rustc-pgo clippy-driver rustc ARGS`: the version
    // asked is the second program's, and the profile follows all of it.
    let s = Setup::new("clippy", true, Some("22"), "22.1.2");
    let programs = [s.clippy_driver(), s.dir.join("rustc")];
    let got = s.run_under(&programs, RELEASE, &[]);
    let mut want = named(RELEASE);
    want.push(s.profile_flag());
    want.push("-Cllvm-args=-no-pgo-warn-mismatch".into());
    assert_eq!(got, want);
    // The same rustc with an older LLVM than the profile's: without it.
    let s = Setup::new("clippy-older", true, Some("22"), "21.1.0");
    let programs = [s.clippy_driver(), s.dir.join("rustc")];
    assert_eq!(s.run_under(&programs, RELEASE, &[]), named(RELEASE));
}

/// The profile the workspace builds with is committed, with the LLVM major it was written with, and the
/// workspace's cargo configuration runs the wrapper.
#[test]
fn the_workspace_is_wired_to_the_wrapper() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config: toml::Table =
        toml::from_str(&std::fs::read_to_string(root.join(".cargo/config.toml")).unwrap())
            .expect(".cargo/config.toml is TOML");
    assert_eq!(
        config["build"]["rustc-wrapper"].as_str(),
        Some("scripts/rustc-pgo"),
        "{config:?}"
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
