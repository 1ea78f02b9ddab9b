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
    // Walk groups of equal score from the top: each negative pairs with every positive strictly above it
    // (a win) and with every positive tied with it (half a win).
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

    /// 200 records, so k = 2, 4, 10, 20 at 1, 2, 5, 10 %. Positives at ranks 0, 2, 3, 5, 7, 12 and six
    /// more below the top 10 %; ranks 1 and 2 tie on score and the id puts rank 1 (a negative) first.
    #[test]
    fn hand_checked_ranking() {
        let positive_ranks = [0, 2, 3, 5, 7, 12, 30, 60, 90, 120, 150, 180];
        let mut items: Vec<Scored> = (0..200usize)
            .rev() // input order must not matter
            .map(|rank| {
                let score = match rank {
                    2 => 199.0, // ties with rank 1
                    r => 200.0 - r as f64,
                };
                s(
                    score,
                    &format!("id{rank:03}"),
                    u8::from(positive_ranks.contains(&rank)),
                )
            })
            .collect();
        let m = evaluate(&mut items);
        assert_eq!((m.rows, m.positives), (200, 12));
        let get = |map: &BTreeMap<String, f64>, k: &str| map[k];
        assert_eq!(m.k_at["1"], 2);
        assert_eq!(m.k_at["10"], 20);
        assert_eq!(get(&m.precision_at, "1"), 0.5);
        assert_eq!(get(&m.precision_at, "2"), 0.75);
        assert_eq!(get(&m.precision_at, "5"), 0.5);
        assert_eq!(get(&m.precision_at, "10"), 0.3);
        assert_eq!(get(&m.recall_at, "1"), 1.0 / 12.0);
        assert_eq!(get(&m.recall_at, "2"), 3.0 / 12.0);
        assert_eq!(get(&m.recall_at, "5"), 5.0 / 12.0);
        assert_eq!(get(&m.recall_at, "10"), 6.0 / 12.0);
        // AUC against the brute-force pair count.
        let (mut wins, mut pairs) = (0f64, 0f64);
        for p in items.iter().filter(|x| x.label == 1) {
            for n in items.iter().filter(|x| x.label == 0) {
                pairs += 1.0;
                wins += if p.score > n.score {
                    1.0
                } else if p.score == n.score {
                    0.5
                } else {
                    0.0
                };
            }
        }
        assert!(
            (m.auc - wins / pairs).abs() < 1e-12,
            "{} vs {}",
            m.auc,
            wins / pairs
        );
    }

    #[test]
    fn auc_counts_ties_as_half() {
        // One positive tied with one negative, one negative below: pairs (p>n2)=1, (p~n1)=0.5 → 0.75.
        let mut v = vec![s(1.0, "a", 1), s(1.0, "b", 0), s(0.0, "c", 0)];
        assert_eq!(evaluate(&mut v).auc, 0.75);
    }
}
