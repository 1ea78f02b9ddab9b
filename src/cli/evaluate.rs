//! `borderlane evaluate --manifests … --labels … [--model …] [--policy …] [--json FILE]`: rank every
//! manifest by risk and report the KCS protocol's precision and recall at 1/2/5/10 % and the AUC, for the
//! model alone, the policy's rules alone and the full policy (rules + model); with a policy, also the
//! share of manifests per band and action, and how much the rules move the model's ranking.
//!
//! With `--outcomes O --partners P` instead of `--labels`, the labels are recorded exam outcomes (see
//! `learn::outcomes`): the same metrics on the random-exam subset (the unbiased estimate) and on all
//! examined manifests (biased by the selection, stated), after the join counts and the bias report.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use borderlane_core::decision::{Action, Band};
use borderlane_core::model::Model;
use borderlane_core::policy::{CompiledPolicy, ModelRule};
use borderlane_core::score::decide;
use borderlane_core::table::PartnerTable;
use serde_json::json;

use crate::learn::outcomes::Weighting;
use crate::learn::ranking::{evaluate, render, Metrics, Scored};
use crate::learn::train::{Dataset, Labelled};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub data: Labelled,
    /// Model file to rank by alone (default: the policy's model, if it has one).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Policy to rank by its decision score (rules + its model, and its rules alone), with an empty
    /// partner table. With `--model` too, that model replaces the policy's own in rules + model, so all
    /// three columns use the same model (e.g. the train-only one on the validation split).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Also write the metrics as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// A manifest's model score: the probability of its riskiest line.
pub fn model_metrics(model: &Model, data: &Dataset) -> Metrics {
    let mut items: Vec<Scored> = data
        .manifests
        .iter()
        .zip(&data.labels)
        .map(|(m, &label)| Scored {
            score: m
                .shipments
                .iter()
                .filter_map(|s| model.riskiest_line(m, s).map(|(_, p)| p))
                .fold(f64::NEG_INFINITY, f64::max),
            id: m.manifest_id.to_string(),
            label,
        })
        .collect();
    evaluate(&mut items)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.model.is_none() && args.policy.is_none() {
        bail!("nothing to evaluate: give --model, --policy or both");
    }
    let mut policy = args
        .policy
        .as_ref()
        .map(|p| crate::load::policy::load(p))
        .transpose()?;
    let (data, info) = args.data.load(policy.as_ref(), Weighting::None)?;
    let model: Option<(String, std::sync::Arc<Model>)> = match (&args.model, &policy) {
        (Some(path), _) => Some((
            path.display().to_string(),
            std::sync::Arc::new(crate::load::policy::load_model(path)?),
        )),
        (None, Some(p)) => p
            .model
            .as_ref()
            .map(|r| ("policy's model".to_string(), r.model.clone())),
        (None, None) => None,
    };
    let mut extra = String::new();
    if let Some(policy) = &mut policy {
        if let (Some((name, m)), Some(rule)) = (&model, &mut policy.model) {
            if args.model.is_some() {
                *rule = ModelRule {
                    model: m.clone(),
                    bands: rule.bands.clone(),
                };
                extra.push_str(&format!(
                    "rules + model uses {name} in the policy's [model]\n"
                ));
            }
        }
    }
    let mut out = serde_json::Map::new();
    out.insert(
        "manifests".into(),
        json!(args.data.manifests.display().to_string()),
    );
    let Some((sel, join)) = info else {
        let (text, json) = report(&data, model.as_ref(), policy.as_ref(), &args, "frauds")?;
        out.extend(json);
        print!("{text}{extra}");
        return finish(&args, out);
    };
    // Outcome labels: the random-exam subset is the unbiased estimate; all examined carries the bias.
    print!("{}", join.render());
    out.insert("labels".into(), join.to_json());
    let random = data.subset(&sel.random);
    println!(
        "\n== random-exam subset (uniform sample of the non-exempt strata: the unbiased estimate) =="
    );
    let (text, json) = report_or_none(&random, model.as_ref(), policy.as_ref(), &args)?;
    print!("{text}");
    out.insert("random_exams".into(), json);
    println!(
        "\n== all examined (biased: the policy chose these rows; targeted exams are the riskiest by \
         the rules, so the ranking is judged among manifests the rules already ranked high) =="
    );
    let (text, json) = report(&data, model.as_ref(), policy.as_ref(), &args, "hits")?;
    print!("{text}{extra}");
    out.insert("all_examined".into(), serde_json::Value::Object(json));
    finish(&args, out)
}

fn finish(
    args: &Args,
    out: serde_json::Map<String, serde_json::Value>,
) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&out)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// [`report`], or a note when the subset has no positive or no negative (no ranking to judge).
fn report_or_none(
    data: &Dataset,
    model: Option<&(String, std::sync::Arc<Model>)>,
    policy: Option<&CompiledPolicy>,
    args: &Args,
) -> anyhow::Result<(String, serde_json::Value)> {
    let p = data.labels.iter().filter(|l| **l == 1).count();
    if p == 0 || p == data.labels.len() {
        return Ok((
            format!(
                "{} manifests, {p} hits: no ranking to judge\n",
                data.manifests.len()
            ),
            json!({"rows": data.manifests.len(), "positives": p}),
        ));
    }
    let (text, json) = report(data, model, policy, args, "hits")?;
    Ok((text, serde_json::Value::Object(json)))
}

/// The metrics table (and policy shares) of one labelled set, as text and JSON.
fn report(
    data: &Dataset,
    model: Option<&(String, std::sync::Arc<Model>)>,
    policy: Option<&CompiledPolicy>,
    args: &Args,
    what: &str,
) -> anyhow::Result<(String, serde_json::Map<String, serde_json::Value>)> {
    let mut columns: Vec<(&str, Metrics)> = Vec::new();
    let mut out = serde_json::Map::new();
    out.insert("rows".into(), json!(data.manifests.len()));
    out.insert(
        "positives".into(),
        json!(data.labels.iter().filter(|l| **l == 1).count()),
    );
    if let Some((name, model)) = model {
        let m = model_metrics(model, data);
        out.insert(
            "model".into(),
            json!({"file": name, "version": &*model.version, "metrics": &m}),
        );
        columns.push(("model", m));
    }
    let mut extra = String::new();
    if let Some(policy) = policy {
        let rules = policy.without_model();
        let table = PartnerTable::new();
        let mut runs: Vec<Vec<(i32, Band, Action)>> = vec![Vec::new(), Vec::new()];
        for m in &data.manifests {
            if borderlane_core::score::check_port(policy, m).is_err() {
                bail!(
                    "{}: port {} is not in the policy's port table",
                    m.manifest_id,
                    m.port_of_entry
                );
            }
            for (run, p) in runs.iter_mut().zip([&rules, policy]) {
                let d = decide(p, &table, m);
                run.push((d.score, d.band, d.action));
            }
        }
        let full_name = if policy.model.is_some() {
            "rules + model"
        } else {
            "policy"
        };
        let mut names = vec!["rules alone"];
        if policy.model.is_some() {
            names.push(full_name);
        }
        let mut shares = serde_json::Map::new();
        for (name, run) in names.iter().zip(&runs) {
            let items: Vec<Scored> = data
                .manifests
                .iter()
                .zip(&data.labels)
                .zip(run)
                .map(|((m, &label), (score, _, _))| Scored {
                    score: f64::from(*score),
                    id: m.manifest_id.to_string(),
                    label,
                })
                .collect();
            let metrics = evaluate(&mut items.clone());
            let (text, json) = share_table(name, run, &data.labels);
            extra.push_str(&text);
            shares.insert((*name).into(), json);
            columns.push((name, metrics));
        }
        let mut policy_json = json!({
            "file": args.policy.as_ref().map(|p| p.display().to_string()),
            "version": &*policy.version,
            "model_version": policy.model.as_ref().map(|r| r.model.version.to_string()),
            "rules_alone": &columns[columns.len() - names.len()].1,
            "shares": shares,
        });
        if policy.model.is_some() {
            policy_json["metrics"] = json!(&columns[columns.len() - 1].1);
            let moved = rules_effect(&runs[0], &runs[1], data);
            extra.push_str(&moved.0);
            policy_json["rules_effect"] = moved.1;
        }
        out.insert("policy".into(), policy_json);
    }
    let refs: Vec<(&str, &Metrics)> = columns.iter().map(|(n, m)| (*n, m)).collect();
    let positives = data.labels.iter().filter(|l| **l == 1).count();
    let text = format!(
        "{} manifests, {positives} {what} ({:.1} %)\n{}{extra}",
        data.manifests.len(),
        100.0 * positives as f64 / data.manifests.len().max(1) as f64,
        render(&refs)
    );
    Ok((text, out))
}

/// Share of manifests per band and per action, and the exam rate, of one run.
fn share_table(
    name: &str,
    run: &[(i32, Band, Action)],
    labels: &[u8],
) -> (String, serde_json::Value) {
    let n = run.len().max(1) as f64;
    let mut text = format!("{name}: ");
    let mut bands = serde_json::Map::new();
    for b in Band::ALL {
        let k = run.iter().filter(|r| r.1 == b).count();
        text.push_str(&format!("{} {:.1} %, ", b.as_str(), 100.0 * k as f64 / n));
        bands.insert(b.as_str().into(), json!(k as f64 / n));
    }
    let mut actions = serde_json::Map::new();
    for a in Action::ALL {
        let k = run.iter().filter(|r| r.2 == a).count();
        text.push_str(&format!("{} {:.1} %, ", a.as_str(), 100.0 * k as f64 / n));
        actions.insert(a.as_str().into(), json!(k as f64 / n));
    }
    let exams: Vec<usize> = (0..run.len()).filter(|&i| run[i].2.is_exam()).collect();
    let hits = exams.iter().filter(|&&i| labels[i] == 1).count();
    let rate = exams.len() as f64 / n;
    let precision = hits as f64 / exams.len().max(1) as f64;
    text.push_str(&format!(
        "exams {:.1} % (fraud among them {:.3})\n",
        100.0 * rate,
        precision
    ));
    (
        text,
        json!({"bands": bands, "actions": actions, "exam_rate": rate, "exam_precision": precision}),
    )
}

/// How much the rules move the full policy's ranking away from the model's points alone (full score minus
/// the rules' score): the rules' share of the score variance; of the fraud/legitimate pairs, those the
/// model's points leave tied that the rules order (right or wrong) and those in strict order the rules flip
/// (to right or wrong); and how many of the top 10 % (the protocol's order: score, then manifest id) are not
/// in the top 10 % of the model's points.
fn rules_effect(
    rules: &[(i32, Band, Action)],
    full: &[(i32, Band, Action)],
    data: &crate::learn::train::Dataset,
) -> (String, serde_json::Value) {
    let n = rules.len();
    let r: Vec<i32> = rules.iter().map(|x| x.0).collect();
    let f: Vec<i32> = full.iter().map(|x| x.0).collect();
    let m: Vec<i32> = f.iter().zip(&r).map(|(f, r)| f - r).collect();
    let var = |v: &[i32]| {
        let mean = v.iter().map(|x| f64::from(*x)).sum::<f64>() / n.max(1) as f64;
        v.iter()
            .map(|x| (f64::from(*x) - mean).powi(2))
            .sum::<f64>()
            / n.max(1) as f64
    };
    let (vr, vm, vf) = (var(&r), var(&m), var(&f));
    let top_of = |score: &[i32]| {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| {
            score[b].cmp(&score[a]).then_with(|| {
                data.manifests[a]
                    .manifest_id
                    .cmp(&data.manifests[b].manifest_id)
            })
        });
        let mut top = vec![false; n];
        for &o in order.iter().take(n / 10) {
            top[o] = true;
        }
        top
    };
    let (tm, tf) = (top_of(&m), top_of(&f));
    let top_changed = (0..n).filter(|&i| tf[i] && !tm[i]).count();
    let positives: Vec<usize> = (0..n).filter(|&i| data.labels[i] == 1).collect();
    let negatives: Vec<usize> = (0..n).filter(|&i| data.labels[i] != 1).collect();
    // [tie → right, tie → wrong, right → wrong, wrong → right]
    let mut moved = [0u64; 4];
    for &p in &positives {
        for &q in &negatives {
            let (before, after) = (m[p].cmp(&m[q]), f[p].cmp(&f[q]));
            use std::cmp::Ordering::*;
            match (before, after) {
                (Equal, Greater) => moved[0] += 1,
                (Equal, Less) => moved[1] += 1,
                (Greater, Less | Equal) => moved[2] += 1,
                (Less, Greater | Equal) => moved[3] += 1,
                _ => {}
            }
        }
    }
    let pairs = (positives.len() * negatives.len()).max(1) as f64;
    let pct = |k: u64| 100.0 * k as f64 / pairs;
    let text = format!(
        "rules vs model points: score variance rules {vr:.0}, model points {vm:.0}, total {vf:.0} \
         (rules' share {:.1} %)\nfraud/legitimate pairs ({pairs:.0}) the rules reorder: ties of the model's \
         points ordered right {:.2} % wrong {:.2} %; strict order flipped to wrong {:.2} % to right {:.2} %\n\
         top 10 % entries not in the model points' top 10 %: {top_changed} of {}\n",
        100.0 * vr / vf.max(f64::MIN_POSITIVE),
        pct(moved[0]),
        pct(moved[1]),
        pct(moved[2]),
        pct(moved[3]),
        n / 10,
    );
    (
        text,
        json!({
            "variance": {"rules": vr, "model_points": vm, "total": vf},
            "pairs": {
                "total": pairs,
                "tie_to_right": moved[0],
                "tie_to_wrong": moved[1],
                "right_to_wrong": moved[2],
                "wrong_to_right": moved[3],
            },
            "top10_changed": top_changed,
        }),
    )
}
