//! `borderlane check-policy FILE`: validate a policy and print every error with its key path; for a valid
//! policy, what credits leave reachable: each non-creditable rule alone against the most credit, and the
//! highest score a manifest can reach at each CTPAT standing.

use std::path::PathBuf;
use std::process::ExitCode;

use std::fmt::Write as _;

use borderlane_core::policy::{CompiledPolicy, Reach};

#[derive(clap::Args)]
pub struct Args {
    /// Policy file (TOML).
    pub file: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)?;
    match CompiledPolicy::from_toml(&text) {
        Ok(p) => {
            // A `[model]` section: the model file must load too.
            let model = match &p.doc.model {
                None => String::new(),
                Some(_) => match crate::load::policy::load(&args.file) {
                    Ok(full) => full
                        .model
                        .map(|r| format!(", model {}", r.model.version))
                        .unwrap_or_default(),
                    Err(e) => {
                        println!("{}: {e:#}", args.file.display());
                        return Ok(ExitCode::from(1));
                    }
                },
            };
            println!(
                "{}: valid, {} ({}){model}",
                args.file.display(),
                p.doc.meta.name,
                p.version
            );
            print!("{}", render_reach(&p.doc.reach()));
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            println!("{}: {} error(s)", args.file.display(), errors.len());
            for e in &errors {
                println!("  {e}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

/// The reach report: no blind spots, in numbers.
pub fn render_reach(r: &Reach) -> String {
    let mut s = String::new();
    let cap = match r.credit_cap {
        Some(c) => format!("capped at {c} per manifest (ctpat.credit_cap)"),
        None => "not capped (no ctpat.credit_cap)".to_string(),
    };
    let _ = writeln!(
        s,
        "credits: at most {} points on one manifest, {cap}",
        r.max_credits
    );
    if r.alone.is_empty() {
        let _ = writeln!(
            s,
            "non-creditable rules: none (credits can offset every rule)"
        );
    } else {
        let _ = writeln!(
            s,
            "non-creditable rules, each firing alone against the most credit:"
        );
        for a in &r.alone {
            let floor = if a.forced {
                format!("forces {}", a.min_action.as_str())
            } else {
                format!("min_action {}", a.min_action.as_str())
            };
            let _ = writeln!(
                s,
                "  {:<36} {:>5} points -> score {:>5} ({}, {}); {floor}",
                a.path,
                a.points,
                a.score,
                a.band.as_str(),
                a.action.as_str()
            );
        }
    }
    let _ = writeln!(
        s,
        "highest score by CTPAT standing (every party at that standing, each rule firing once at its most):"
    );
    for x in &r.standings {
        let _ = writeln!(
            s,
            "  {:<16} credits {:>4} (counted {:>4}) -> highest score {:>5} ({}, {})",
            x.level.as_str(),
            x.credits,
            x.allowed,
            x.score,
            x.band.as_str(),
            x.action.as_str()
        );
    }
    s
}
