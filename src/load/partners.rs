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
    for (i, line) in std::io::BufReader::new(file).split(b'\n').enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let maybe_tombstone = line.windows(11).any(|w| w == b"\"tombstone\"");
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
