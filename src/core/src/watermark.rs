//! Positions of records in a source (topic partition and offset, or a file's line) and the watermark a
//! decision read its party history at (see [`crate::history`]).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a record was read: a topic partition and offset, or partition 0 and the line index of a file.
/// Ordered by partition, then offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Position {
    pub partition: u32,
    pub offset: u64,
}

/// The history a decision used: for each partition, the next position not counted (records at lower
/// offsets count, later ones do not; a partition not named counts nothing). Serialised as the decision's
/// `history_as_of`, a JSON object from partition (as a string) to offset: `{"0": 120, "3": 41}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Watermark(pub BTreeMap<u32, u64>);

impl Watermark {
    /// Whether a record at `p` is counted.
    #[inline]
    pub fn covers(&self, p: Position) -> bool {
        self.0
            .get(&p.partition)
            .is_some_and(|next| p.offset < *next)
    }

    /// Raises the partition's next position to `next` (never lowers it).
    pub fn advance(&mut self, partition: u32, next: u64) {
        let e = self.0.entry(partition).or_insert(0);
        *e = (*e).max(next);
    }

    /// Parses a watermark as given on the command line: the decision's JSON object (`{"0": 120, "3": 41}`),
    /// `P:N` pairs separated by commas (`0:120,3:41`), or a bare `N` for partition 0 (a file's line count).
    pub fn parse(s: &str) -> Result<Watermark, String> {
        let s = s.trim();
        if s.starts_with('{') {
            return serde_json::from_str(s).map_err(|e| format!("not a watermark object: {e}"));
        }
        if let Ok(n) = s.parse::<u64>() {
            return Ok(Watermark(BTreeMap::from([(0, n)])));
        }
        let mut w = Watermark::default();
        for pair in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (p, n) = pair
                .split_once(':')
                .ok_or_else(|| format!("{pair:?} is not PARTITION:OFFSET"))?;
            let p: u32 = p
                .trim()
                .parse()
                .map_err(|_| format!("partition {p:?} is not a number"))?;
            let n: u64 = n
                .trim()
                .parse()
                .map_err(|_| format!("offset {n:?} is not a number"))?;
            if w.0.insert(p, n).is_some() {
                return Err(format!("partition {p} is named twice"));
            }
        }
        Ok(w)
    }
}

impl fmt::Display for Watermark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (p, n)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{p}:{n}")?;
        }
        Ok(())
    }
}
