//! Loading exam outcomes from an NDJSON file (one complete outcome record per line, docs/wire.md "Exam
//! outcome") into a party [`History`] for `score --outcomes`.
//!
//! Every record gets a position, so that a decision's `history_as_of` watermark names exactly the records
//! it read. In a plain file the position is partition 0 and the line's index (0-based; blank and rejected
//! lines use theirs up too), and the whole file is watermark `0:<lines>`. A file exported from the outcomes
//! topic carries each record's topic position in an extra field, `"position": {"partition": P, "offset":
//! O}` (the record parser ignores it); then every line must carry one, and the file's watermark is, per
//! partition, the highest offset plus one. Replaying a decision is then `score --outcomes FILE
//! --history-as-of '<its history_as_of>'`.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use anyhow::{bail, Context};
use borderlane_core::history::{History, Position, Watermark};
use borderlane_core::outcome::{parse_outcome, ExamResult, Form, OutcomeErrors};
use borderlane_core::wire::Limits;
use serde::Deserialize;

/// What a load did.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Records stored (a repeated position is not stored twice).
    pub inserted: u64,
    /// Rejected lines: (1-based line number, every error of the record).
    pub rejected: Vec<(u64, OutcomeErrors)>,
    /// Everything the file holds: the default `history_as_of` of a replay.
    pub watermark: Watermark,
    /// The result of each outcome's latest version (highest position) by `(manifest_id, revision)`: what
    /// `replay --outcomes` judges policies against.
    pub results: HashMap<(String, u32), ExamResult>,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    position: Option<Position>,
}

/// Inserts every record of `path` into `history`.
pub fn load(path: &Path, history: &History, limits: &Limits) -> anyhow::Result<LoadReport> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("opening outcomes {}", path.display()))?;
    let mut report = LoadReport::default();
    let mut positioned: Option<bool> = None;
    let mut lines = 0u64;
    let mut latest: HashMap<(String, u32), (Position, ExamResult)> = HashMap::new();
    for (i, line) in std::io::BufReader::new(file).split(b'\n').enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        lines = i as u64 + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let explicit = serde_json::from_slice::<Envelope>(line)
            .ok()
            .and_then(|e| e.position);
        let pos = match (explicit, positioned) {
            (Some(p), None | Some(true)) => {
                positioned = Some(true);
                report.watermark.advance(p.partition, p.offset + 1);
                p
            }
            (None, None | Some(false)) => {
                positioned = Some(false);
                Position {
                    partition: 0,
                    offset: i as u64,
                }
            }
            (Some(_), Some(false)) | (None, Some(true)) => bail!(
                "{} line {}: either every record carries its \"position\" (a topic export) or none does",
                path.display(),
                i + 1
            ),
        };
        match parse_outcome(line, limits, Form::Record) {
            Ok(o) => {
                if history.insert(pos, &o) {
                    report.inserted += 1;
                }
                let e = latest
                    .entry((o.manifest_id.to_string(), o.revision))
                    .or_insert((pos, o.result));
                if pos >= e.0 {
                    *e = (pos, o.result);
                }
            }
            Err(e) => report.rejected.push((i as u64 + 1, e)),
        }
    }
    report.results = latest.into_iter().map(|(k, (_, r))| (k, r)).collect();
    if positioned != Some(true) {
        report.watermark = Watermark::parse(&lines.to_string()).expect("a count parses");
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REC: &str = r#"{"manifest_id": "M1", "revision": 0, "result": "seizure", "examined_at": "2026-06-01T00:00:00Z", "port": "2304", "officer": "o1", "parties": [{"role": "importer", "id": "I1"}], "causes": ["band"]}"#;

    /// A file in the temp dir, removed when dropped.
    struct Temp(std::path::PathBuf);
    impl Temp {
        fn path(&self) -> &Path {
            &self.0
        }
    }
    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn write(text: &str) -> Temp {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "borderlane-outcomes-{}-{}.ndjson",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, text).unwrap();
        Temp(path)
    }

    #[test]
    fn the_latest_version_of_each_outcome_is_its_result() {
        let later = REC.replace("seizure", "no_discrepancy");
        let other = REC.replace("\"revision\": 0", "\"revision\": 1");
        let f = write(&format!("{REC}\n{later}\n{other}\n"));
        let r = load(f.path(), &History::new(), &Limits::default()).unwrap();
        assert_eq!(r.results.len(), 2);
        assert_eq!(r.results[&("M1".to_string(), 0)], ExamResult::NoDiscrepancy);
        assert_eq!(r.results[&("M1".to_string(), 1)], ExamResult::Seizure);
    }

    #[test]
    fn plain_files_use_line_indexes_and_report_every_error() {
        let f = write(&format!(
            "{REC}\n\n{{\"manifest_id\": 5}}\n{}\n",
            REC.replace("M1", "M2")
        ));
        let h = History::new();
        let r = load(f.path(), &h, &Limits::default()).unwrap();
        assert_eq!(r.inserted, 2);
        assert_eq!(r.watermark.to_string(), "0:4");
        assert_eq!(r.rejected.len(), 1);
        assert_eq!(r.rejected[0].0, 3);
        // manifest_id wrong type, and every other required field missing.
        assert!(r.rejected[0].1 .0.len() >= 6, "{:?}", r.rejected[0].1);
    }

    #[test]
    fn topic_exports_keep_their_positions() {
        let a = REC.replacen('{', r#"{"position": {"partition": 2, "offset": 40}, "#, 1);
        let b = REC.replace("M1", "M2").replacen(
            '{',
            r#"{"position": {"partition": 0, "offset": 7}, "#,
            1,
        );
        let f = write(&format!("{a}\n{b}\n"));
        let h = History::new();
        let r = load(f.path(), &h, &Limits::default()).unwrap();
        assert_eq!(
            (r.inserted, r.watermark.to_string()),
            (2, "0:8,2:41".to_string())
        );
        // Mixing the two kinds of file is refused.
        let f = write(&format!("{a}\n{REC}\n"));
        assert!(load(f.path(), &History::new(), &Limits::default()).is_err());
    }
}
