//! Ranking metrics of the KCS protocol: rank every record by risk, inspect the top n %, and report
//! precision and recall there (k = floor(n % × rows), ties broken by record id), plus ROC AUC.

use std::collections::BTreeMap;

use serde::Serialize;

/// The cut-offs the protocol reports, in percent.
pub const CUTOFFS: [u32; 4] = [1, 2, 5, 10];

/// One ranked record.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Higher is riskier.
    pub score: f64,
    /// Breaks ties deterministically (ascending).
    pub id: String,
    /// 1 when inspection found fraud.
    pub label: u8,
}

/// The metrics of one ranking.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    pub rows: usize,
    pub positives: usize,
    /// Share of frauds among the top n % (keys "1", "2", "5", "10").
    pub precision_at: BTreeMap<String, f64>,
    /// Share of all frauds found in the top n %.
    pub recall_at: BTreeMap<String, f64>,
    /// k of each cut-off, so a reader can check the arithmetic.
    pub k_at: BTreeMap<String, usize>,
    /// ROC AUC, tied scores counted as half (Mann–Whitney).
    pub auc: f64,
}

/// Ranks `items` (score descending, then id ascending) and computes the metrics.
pub fn evaluate(items: &mut [Scored]) -> Metrics {
    items.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    let rows = items.len();
    let positives = items.iter().filter(|s| s.label == 1).count();
    let mut precision_at = BTreeMap::new();
    let mut recall_at = BTreeMap::new();
    let mut k_at = BTreeMap::new();
    for n in CUTOFFS {
        let k = rows * n as usize / 100;
        let hits = items[..k].iter().filter(|s| s.label == 1).count();
        let precision = if k == 0 { 0.0 } else { hits as f64 / k as f64 };
        let recall = if positives == 0 {
            0.0
        } else {
            hits as f64 / positives as f64
        };
        precision_at.insert(n.to_string(), precision);
        recall_at.insert(n.to_string(), recall);
        k_at.insert(n.to_string(), k);
    }
    Metrics {
        rows,
        positives,
        precision_at,
        recall_at,
        k_at,
        auc: auc(items),
    }
}

/// ROC AUC of a ranking sorted by descending score: the probability that a random positive outranks a
/// random negative, ties counting one half.
fn auc(sorted: &[Scored]) -> f64 {
    let positives = sorted.iter().filter(|s| s.label == 1).count() as f64;
    let negatives = sorted.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return f64::NAN;
    }
    // Walk groups of equal score from the top; each negative beats the positives below it... count the
    // pairs where the positive is above: for every negative, the positives strictly above it, plus half
    // of those tied with it.
    let (mut pos_above, mut pairs) = (0f64, 0f64);
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        let (mut p, mut n) = (0f64, 0f64);
        while j < sorted.len() && sorted[j].score == sorted[i].score {
            if sorted[j].label == 1 {
                p += 1.0;
            } else {
                n += 1.0;
            }
            j += 1;
        }
        pairs += n * (pos_above + p / 2.0);
        pos_above += p;
        i = j;
    }
    pairs / (positives * negatives)
}

/// Text table of several rankings' metrics, one column per ranking.
pub fn render(columns: &[(&str, &Metrics)]) -> String {
    let mut out = String::new();
    out.push_str(&format!("{:<14}", "metric"));
    for (name, _) in columns {
        out.push_str(&format!("{name:>16}"));
    }
    out.push('\n');
    for n in CUTOFFS {
        let key = n.to_string();
        for (what, pick) in [("precision", 0), ("recall", 1)] {
            out.push_str(&format!("{:<14}", format!("{what}@{n}%")));
            for (_, m) in columns {
                let v = if pick == 0 {
                    m.precision_at[&key]
                } else {
                    m.recall_at[&key]
                };
                out.push_str(&format!("{v:>16.3}"));
            }
            out.push('\n');
        }
    }
    out.push_str(&format!("{:<14}", "auc"));
    for (_, m) in columns {
        out.push_str(&format!("{:>16.4}", m.auc));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(score: f64, id: &str, label: u8) -> Scored {
        Scored {
            score,
            id: id.into(),
            label,
        }
    }

    #[test]
    fn auc_counts_ties_as_half() {
        // One positive tied with one negative, one negative below: pairs (p>n2)=1, (p~n1)=0.5 → 0.75.
        let mut v = vec![s(1.0, "a", 1), s(1.0, "b", 0), s(0.0, "c", 0)];
        assert_eq!(evaluate(&mut v).auc, 0.75);
    }
}
