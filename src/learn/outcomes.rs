//! Exam outcomes as labels (`train --outcomes`, `evaluate --outcomes`): manifests joined to the recorded
//! outcomes of their exams, with what is needed to correct for the selection and to report its bias.
//!
//! Only examined manifests have labels, and the policy chose them: targeted exams (band, escalation, watch
//! list, history) are the riskiest manifests, so their hit rate overstates the violation rate and a model
//! fitted on them alone learns "what the rules already select". Random compliance exams are a uniform
//! sample of their stratum (mode × weakest importer standing, drawn by a keyed hash independent of the
//! score) at the policy's rate `r`. A manifest examined *only* because of the random draw stands for `1/r`
//! manifests of its stratum that the rules would have released (inverse-probability weight); a targeted
//! manifest is examined with probability 1 (weight 1). Strata with `r = 0` (validated importers, exempt)
//! are never randomly examined: the part of them the rules release is invisible, and the report says so
//! (`n/a (exempt)`).
//!
//! The stratum and rate of a manifest come from re-deciding it under the policy with the partner table
//! (the random draw and the importer standing do not depend on history); the re-decided random draw is
//! checked against the outcome's `random` cause and disagreements are counted (a partner table that
//! changed since the decision).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::BufRead;
use std::path::Path;

use anyhow::{bail, Context};
use borderlane_core::decision::Role;
use borderlane_core::outcome::{parse_outcome, Cause, Form, Outcome};
use borderlane_core::policy::CompiledPolicy;
use borderlane_core::score::{check_port, decide};
use borderlane_core::table::{PartnerTable, Standing};
use borderlane_core::wire::{parse_manifest, Limits, Manifest};
use serde_json::json;

use crate::learn::train::Dataset;

/// How labelled rows are weighted in training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Weighting {
    /// Random-only exams weigh `1 / rate` of their stratum, every other exam 1.
    Ipw,
    /// Every examined manifest weighs 1 (the selection bias is left in).
    None,
}

/// Why a labelled manifest was examined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selected {
    /// By the rules (band, escalation, watch list or history), whether or not the random draw also hit.
    Targeted,
    /// By the random compliance draw alone.
    RandomOnly,
    /// By no engine cause (an officer's referral of a released manifest).
    Referral,
}

/// Selection facts of every row of an outcome-labelled [`Dataset`], same order.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// The outcome names the random compliance draw among its causes (the unbiased subset).
    pub random: Vec<bool>,
    pub selected: Vec<Selected>,
    /// `mode/class`, class = weakest importer standing (`validated`, `certified`, `non_partner`).
    pub stratum: Vec<String>,
    /// The policy's random rate of the row's stratum (0 = exempt).
    pub rate: Vec<f64>,
}

/// One stratum of the bias report.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stratum {
    pub rate: f64,
    /// Manifests of the stratum in the manifests file (examined or not).
    pub manifests: u64,
    pub examined: u64,
    pub targeted: u64,
    pub targeted_positive: u64,
    /// Exams whose causes include the random draw.
    pub random: u64,
    pub random_positive: u64,
    /// Exams the random draw alone selected.
    pub random_only: u64,
    pub random_only_positive: u64,
}

impl Stratum {
    /// Inverse-probability estimate of the hit rate over every manifest of the stratum: targeted hits
    /// count once, random-only hits `1/rate` times (they stand for the released manifests). `None` for an
    /// exempt stratum (the released part is never sampled) or one without manifests.
    pub fn ipw_estimate(&self) -> Option<f64> {
        (self.rate > 0.0 && self.manifests > 0).then(|| {
            (self.targeted_positive as f64 + self.random_only_positive as f64 / self.rate)
                / self.manifests as f64
        })
    }
}

/// What joining outcomes to manifests did, and the selection bias it shows.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct JoinReport {
    pub manifest_lines: u64,
    /// Manifest lines that do not parse (dead letters in the field: no decision, no outcome).
    pub manifests_unparsed: u64,
    /// Manifests whose port the policy does not know (dead letters too).
    pub manifests_unknown_port: u64,
    pub manifests_unlabelled: u64,
    pub outcome_records: u64,
    /// Records replaced by a later record with the same `(manifest_id, revision)`.
    pub outcomes_replaced: u64,
    /// Outcomes whose manifest is not in the manifests file (ignored).
    pub outcomes_without_manifest: u64,
    pub rows: u64,
    pub positives: u64,
    pub targeted: u64,
    pub random_only: u64,
    pub referrals: u64,
    /// Rows with the random cause.
    pub random: u64,
    pub random_positives: u64,
    /// Re-decided random draw disagrees with the outcome's causes.
    pub random_mismatches: u64,
    pub weighting: String,
    pub weight_sum: f64,
    /// Kish effective sample size `(Σw)² / Σw²` of the training weights.
    pub effective_sample_size: f64,
    pub strata: BTreeMap<String, Stratum>,
}

/// Outcome records by `(manifest_id, revision)`, the records read and how many a later one replaced.
pub type Outcomes = (HashMap<(String, u32), Outcome>, u64, u64);

/// Parses an outcomes file strictly: every record a complete record (docs/wire.md "Exam outcome"); any
/// bad line fails the whole load with every error of every bad line, by line number. A later record with
/// the same `(manifest_id, revision)` replaces the earlier one.
pub fn read_outcomes(path: &Path, limits: &Limits) -> anyhow::Result<Outcomes> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("opening outcomes {}", path.display()))?;
    let mut by_key: HashMap<(String, u32), Outcome> = HashMap::new();
    let (mut records, mut replaced) = (0u64, 0u64);
    let mut errors = String::new();
    let mut bad = 0u64;
    for (i, line) in std::io::BufReader::new(file).split(b'\n').enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match parse_outcome(line, limits, Form::Record) {
            Ok(o) => {
                records += 1;
                let key = (o.manifest_id.to_string(), o.revision);
                if by_key.insert(key, o).is_some() {
                    replaced += 1;
                }
            }
            Err(e) => {
                bad += 1;
                for f in &e.0 {
                    let _ = writeln!(errors, "  {} line {}: {}", path.display(), i + 1, f);
                }
            }
        }
    }
    if bad > 0 {
        bail!(
            "{bad} malformed outcome record(s) in {}:\n{}",
            path.display(),
            errors.trim_end()
        );
    }
    Ok((by_key, records, replaced))
}

/// The random-compliance stratum and rate of a manifest under `policy` with `table`, and whether its
/// random draw hits (the core's own rule, re-run: the draw and the standing do not depend on history).
fn stratum_of(policy: &CompiledPolicy, table: &PartnerTable, m: &Manifest) -> (String, f64, bool) {
    let d = decide(policy, table, m);
    let missing = m.shipments.iter().any(|s| s.importer.is_none());
    let standing = d
        .parties
        .iter()
        .filter(|p| p.role == Role::Importer)
        .map(|p| p.standing)
        .chain(missing.then_some(Standing::None))
        .min()
        .unwrap_or(Standing::None);
    let rates = policy.doc.random.rates.get(m.mode);
    let (class, rate) = match standing {
        Standing::Validated { .. } => ("validated", 0.0),
        Standing::Certified => ("certified", rates.certified),
        _ => ("non_partner", rates.non_partner),
    };
    (format!("{}/{class}", m.mode.as_str()), rate, d.random_exam)
}

/// Reads manifests and outcomes and joins them by `(manifest_id, revision)`: one row per examined
/// manifest, label 1 for a discrepancy or seizure. Manifests without an outcome are not examined and are
/// ignored (counted, and used for the strata's sizes).
pub fn load(
    manifests: &Path,
    outcomes: &Path,
    policy: &CompiledPolicy,
    partners: &Path,
    weighting: Weighting,
) -> anyhow::Result<(Dataset, Selection, JoinReport)> {
    let limits = Limits::default();
    let table = PartnerTable::new();
    let pr = crate::load::partners::load(partners, &table, &limits)?;
    if !pr.rejected.is_empty() {
        bail!(
            "{} rejected partner record(s) in {} (first: line {}: {})",
            pr.rejected.len(),
            partners.display(),
            pr.rejected[0].0,
            pr.rejected[0].1
        );
    }
    let (mut by_key, records, replaced) = read_outcomes(outcomes, &limits)?;
    let rules = policy.without_history().without_model();
    let mut report = JoinReport {
        outcome_records: records,
        outcomes_replaced: replaced,
        weighting: format!("{weighting:?}").to_lowercase(),
        ..JoinReport::default()
    };
    let mut data = Dataset {
        manifests: Vec::new(),
        labels: Vec::new(),
        weights: Vec::new(),
    };
    let mut sel = Selection::default();
    let file = std::fs::File::open(manifests)
        .with_context(|| format!("opening manifests {}", manifests.display()))?;
    for line in std::io::BufReader::new(file).split(b'\n') {
        let line = line.with_context(|| format!("reading {}", manifests.display()))?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        report.manifest_lines += 1;
        let Ok(m) = parse_manifest(&line, &limits) else {
            report.manifests_unparsed += 1;
            continue;
        };
        if check_port(&rules, &m).is_err() {
            report.manifests_unknown_port += 1;
            continue;
        }
        let (stratum, rate, drawn) = stratum_of(&rules, &table, &m);
        let s = report.strata.entry(stratum.clone()).or_default();
        s.rate = rate;
        s.manifests += 1;
        let Some(o) = by_key.remove(&(m.manifest_id.to_string(), m.revision)) else {
            report.manifests_unlabelled += 1;
            continue;
        };
        let label = u8::from(o.result.is_hit());
        let random = o.causes.contains(&Cause::Random);
        let targeted = o.causes.iter().any(|c| *c != Cause::Random);
        let selected = if targeted {
            Selected::Targeted
        } else if random {
            Selected::RandomOnly
        } else {
            Selected::Referral
        };
        if random != drawn {
            report.random_mismatches += 1;
        }
        s.examined += 1;
        if targeted {
            s.targeted += 1;
            s.targeted_positive += u64::from(label);
        }
        if random {
            s.random += 1;
            s.random_positive += u64::from(label);
        }
        if selected == Selected::RandomOnly {
            s.random_only += 1;
            s.random_only_positive += u64::from(label);
        }
        let weight = match (weighting, selected) {
            (Weighting::Ipw, Selected::RandomOnly) if rate > 0.0 => 1.0 / rate,
            _ => 1.0,
        };
        match selected {
            Selected::Targeted => report.targeted += 1,
            Selected::RandomOnly => report.random_only += 1,
            Selected::Referral => report.referrals += 1,
        }
        report.rows += 1;
        report.positives += u64::from(label);
        report.random += u64::from(random);
        report.random_positives += u64::from(random && label == 1);
        data.manifests.push(m);
        data.labels.push(label);
        data.weights.push(weight);
        sel.random.push(random);
        sel.selected.push(selected);
        sel.stratum.push(stratum);
        sel.rate.push(rate);
    }
    report.outcomes_without_manifest = by_key.len() as u64;
    let (sw, sw2) = data
        .weights
        .iter()
        .fold((0.0, 0.0), |(a, b), w| (a + w, b + w * w));
    report.weight_sum = sw;
    report.effective_sample_size = if sw2 > 0.0 { sw * sw / sw2 } else { 0.0 };
    Ok((data, sel, report))
}

fn rate_text(pos: u64, n: u64) -> String {
    if n == 0 {
        "-".into()
    } else {
        format!("{:.2} % of {n}", 100.0 * pos as f64 / n as f64)
    }
}

impl JoinReport {
    /// The join counts and the selection-bias report, per stratum.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "outcomes as labels: {} manifest lines ({} unparsed, {} unknown port), {} outcome records ({} \
             replaced by a later record, {} without their manifest: ignored)",
            self.manifest_lines,
            self.manifests_unparsed,
            self.manifests_unknown_port,
            self.outcome_records,
            self.outcomes_replaced,
            self.outcomes_without_manifest
        );
        let _ = writeln!(
            s,
            "  {} labelled rows (examined manifests), {} positives (discrepancy or seizure); {} unlabelled \
             manifests (not examined) ignored",
            self.rows, self.positives, self.manifests_unlabelled
        );
        let _ = writeln!(
            s,
            "  selected by the rules {}, by the random draw alone {}, by no engine cause {}; {} rows carry \
             the random cause ({} positives); re-decided random draw disagrees with the outcome on {}",
            self.targeted,
            self.random_only,
            self.referrals,
            self.random,
            self.random_positives,
            self.random_mismatches
        );
        let _ = writeln!(
            s,
            "  weighting {}: weight sum {:.0}, effective sample size {:.0} of {} rows",
            self.weighting, self.weight_sum, self.effective_sample_size, self.rows
        );
        let _ = writeln!(
            s,
            "selection bias by stratum (mode/weakest importer standing): positive rate among targeted exams \
             vs among random exams (the unbiased estimate), and the inverse-probability estimate over all \
             the stratum's manifests"
        );
        let _ = writeln!(
            s,
            "  {:<22} {:>6} {:>9} {:>9}  {:<22} {:<22} ipw estimate",
            "stratum", "rate", "manifests", "examined", "targeted exams", "random exams"
        );
        for (name, st) in &self.strata {
            let random = if st.rate == 0.0 {
                "n/a (exempt)".to_string()
            } else {
                rate_text(st.random_positive, st.random)
            };
            let ipw = st.ipw_estimate().map_or("n/a (exempt)".to_string(), |e| {
                format!("{:.2} %", 100.0 * e)
            });
            let _ = writeln!(
                s,
                "  {:<22} {:>6.3} {:>9} {:>9}  {:<22} {:<22} {ipw}",
                name,
                st.rate,
                st.manifests,
                st.examined,
                rate_text(st.targeted_positive, st.targeted),
                random
            );
        }
        s
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_else(|_| json!({}));
        if let Some(strata) = v.get_mut("strata").and_then(|s| s.as_object_mut()) {
            for (name, st) in strata.iter_mut() {
                st["ipw_estimate"] = match self.strata.get(name).and_then(Stratum::ipw_estimate) {
                    Some(e) => json!(e),
                    None => json!("n/a (exempt)"),
                };
                if st["rate"].as_f64() == Some(0.0) {
                    st["random_estimate"] = json!("n/a (exempt)");
                } else {
                    let (p, n) = (
                        st["random_positive"].as_f64().unwrap_or(0.0),
                        st["random"].as_f64().unwrap_or(0.0),
                    );
                    st["random_estimate"] = if n > 0.0 { json!(p / n) } else { json!(null) };
                }
            }
        }
        v
    }
}
