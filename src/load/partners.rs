//! Loading the partner table from an NDJSON file (one Partner record per line) for `score`, `demo` and
//! `replay`. A line `{"partner_id": "…", "tombstone": true}` deletes a partner, mirroring a Kafka tombstone.

use std::io::BufRead;
use std::path::Path;

use anyhow::Context;
use borderlane_core::table::PartnerTable;
use borderlane_core::wire::{parse_partner, BadInput, Limits};
use serde::Deserialize;

/// What a load did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadReport {
    pub upserts: u64,
    pub tombstones: u64,
    /// Rejected lines: (1-based line number, reason).
    pub rejected: Vec<(u64, BadInput)>,
}

#[derive(Deserialize)]
struct Tombstone {
    partner_id: String,
    tombstone: bool,
}

/// Applies every line of `path` to `table` in order.
pub fn load(path: &Path, table: &PartnerTable, limits: &Limits) -> anyhow::Result<LoadReport> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("opening partners {}", path.display()))?;
    let mut report = LoadReport::default();
    // Only a line naming the key can be a tombstone; the full JSON read is kept for those.
    let tombstone_key = memchr::memmem::Finder::new(b"\"tombstone\"");
    for (i, line) in std::io::BufReader::new(file).split(b'\n').enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let maybe_tombstone = tombstone_key.find(&line).is_some();
        if let Some(t) = maybe_tombstone
            .then(|| serde_json::from_slice::<Tombstone>(&line).ok())
            .flatten()
        {
            if t.tombstone {
                table.remove(&t.partner_id);
                report.tombstones += 1;
                continue;
            }
        }
        match parse_partner(&line, limits) {
            Ok(p) => {
                table.upsert(p);
                report.upserts += 1;
            }
            Err(e) => report.rejected.push((i as u64 + 1, e)),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use borderlane_core::wire::IdKind;

    fn partner(id: &str, ior: &str) -> String {
        format!(
            r#"{{"partner_id":"{id}","entity":"importer","identifiers":[{{"kind":"ior","value":"{ior}"}}],"status":"certified","certified_on":"2019-03-04"}}"#
        )
    }

    /// Tombstones are found wherever the key sits in the line; a record naming the key without being a
    /// tombstone is read as a partner record (and refused here: it is not one).
    #[test]
    fn tombstone_lines_remove_and_other_lines_upsert() {
        let path =
            std::env::temp_dir().join(format!("borderlane-partners-{}.ndjson", std::process::id()));
        let text = [
            partner("CTP-1", "12-0000001AB"),
            partner("CTP-2", "12-0000002AB"),
            String::new(),
            r#"{ "partner_id" : "CTP-1" , "tombstone" : true }"#.to_string(),
            r#"{"partner_id":"CTP-3","tombstone":false}"#.to_string(),
        ]
        .join("\n");
        std::fs::write(&path, text).unwrap();
        let table = PartnerTable::new();
        let report = load(&path, &table, &Limits::default());
        let _ = std::fs::remove_file(&path);
        let report = report.unwrap();
        assert_eq!((report.upserts, report.tombstones), (2, 1));
        assert_eq!(
            report.rejected.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            [5]
        );
        assert_eq!(table.len(), 1);
        assert!(table.get(IdKind::Ior, "12-0000001AB").is_none());
        assert!(table.get(IdKind::Ior, "12-0000002AB").is_some());
    }
}
