//! `borderlane score` gives every line of its input exactly one outcome, in order, whether the input is a
//! file or stdin, byte for byte alike — good manifests among bad lines of every shape, CRLF endings, a line
//! longer than the blocks the input is read in, and no newline at the end. (Written to compare a mapped
//! input file with a read one; the map was measured and not kept: docs/performance.md.)

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn borderlane() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_borderlane"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// Runs `score` on `input` (as `--input FILE`, or on stdin) into `out` and `dlq`; returns its stderr.
fn score(input: &Path, partners: &Path, out: &Path, dlq: &Path, on_stdin: bool) -> String {
    let mut c = borderlane();
    c.args(["score", "--no-timestamp", "--partners"])
        .arg(partners)
        .arg("--output")
        .arg(out)
        .arg("--dlq")
        .arg(dlq)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = if on_stdin {
        c.args(["--input", "-"])
            .stdin(std::fs::File::open(input).unwrap())
            .spawn()
    } else {
        c.arg("--input").arg(input).stdin(Stdio::null()).spawn()
    };
    let r = child.unwrap().wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr).into_owned();
    assert!(r.status.success(), "{stderr}");
    stderr
}

#[test]
fn a_file_and_stdin_give_every_line_the_same_outcome() {
    let d =
        Dir(std::env::temp_dir().join(format!("borderlane-score-input-{}", std::process::id())));
    std::fs::create_dir_all(&d.0).unwrap();
    let (generated, partners) = (d.0.join("generated.ndjson"), d.0.join("partners.ndjson"));
    let g = borderlane()
        .args([
            "generate",
            "--seed",
            "7",
            "--manifests",
            "4000",
            "--out-partners",
        ])
        .arg(&partners)
        .arg("--out-manifests")
        .arg(&generated)
        .output()
        .unwrap();
    assert!(g.status.success(), "{}", String::from_utf8_lossy(&g.stderr));
    let manifests = std::fs::read(&generated).unwrap();
    let manifests: Vec<&[u8]> = manifests
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(manifests.len(), 4000);

    // Good lines among bad ones: blank, not JSON, not UTF-8, CRLF-ended, and one line longer than the
    // 8 MiB blocks the input is read in, so that blocks end in all sorts of places.
    let long = vec![b'x'; 9 << 20];
    let mut input = Vec::new();
    let mut lines = 0;
    for (i, m) in manifests.iter().enumerate() {
        input.extend_from_slice(m);
        input.extend_from_slice(if i % 7 == 0 { b"\r\n" } else { b"\n" });
        lines += 1;
        let bad: Option<&[u8]> = match i % 500 {
            1 => Some(b""),
            2 => Some(b"{\"manifest_id\": "),
            3 => Some(b"not json at all"),
            4 => Some(b"{\"manifest_id\": \"\xff\xfe\"}"),
            5 => Some(b"   "),
            _ if i == 2000 => Some(&long),
            _ => None,
        };
        if let Some(bad) = bad {
            input.extend_from_slice(bad);
            input.push(b'\n');
            lines += 1;
        }
    }
    // The last line has no newline.
    input.extend_from_slice(b"{\"last\": true}");
    lines += 1;
    let path = d.0.join("input.ndjson");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(&input)
        .unwrap();

    let (out_file, dlq_file) = (d.0.join("file.out"), d.0.join("file.dlq"));
    let (out_stdin, dlq_stdin) = (d.0.join("stdin.out"), d.0.join("stdin.dlq"));
    let summary_file = score(&path, &partners, &out_file, &dlq_file, false);
    let summary_stdin = score(&path, &partners, &out_stdin, &dlq_stdin, true);

    let decisions = std::fs::read(&out_file).unwrap();
    let dead = std::fs::read(&dlq_file).unwrap();
    assert!(
        decisions == std::fs::read(&out_stdin).unwrap(),
        "decisions differ"
    );
    assert!(
        dead == std::fs::read(&dlq_stdin).unwrap(),
        "dead letters differ"
    );
    // One outcome a line: the generator's manifests are decided, every bad line is a dead letter with
    // its line number, in order.
    let decided = decisions.iter().filter(|b| **b == b'\n').count();
    let dead: Vec<serde_json::Value> = dead
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(decided, 4000, "{summary_file}");
    assert_eq!(decided + dead.len(), lines, "{summary_file}");
    let numbers: Vec<u64> = dead.iter().map(|d| d["line"].as_u64().unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    assert_eq!(*numbers.last().unwrap(), lines as u64);
    assert!(
        dead.iter()
            .any(|d| d["raw"].as_str().map(str::len) == Some(long.len())),
        "the long line is a dead letter whole"
    );
    // The summaries agree but for the rate.
    let counts = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with("scored "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(counts(&summary_file), counts(&summary_stdin));
}
