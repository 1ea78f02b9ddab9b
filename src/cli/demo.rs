//! `borderlane demo`: the main job on its embedded default, with no infrastructure. It generates a day of
//! port traffic, scores it with the default policy on every core and prints the summary (the favouring in
//! numbers); then, unless `--once`, it runs the service — the same wiring as `serve`, with generated
//! traffic as its input instead of Kafka — serving the officers' console, the feed, `/metrics`,
//! `/healthz`, `/readyz`, and the admin API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use borderlane_core::decision::{Decision, Lane};
use borderlane_core::score::process;
use borderlane_core::table::PartnerTable;
use rayon::prelude::*;

use crate::analysis::summary::Counts;
use crate::service::config::Config;
use crate::service::generated::Generated;
use crate::service::Input;
use crate::traffic::gen::{GenConfig, Generator};

#[derive(clap::Args)]
pub struct Args {
    /// Seed of the generated traffic and partner table.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Manifests in the simulated day.
    #[arg(long, default_value_t = 60_000)]
    pub manifests: u64,
    /// Size of the generated party pools (about this many CTPAT partner records).
    #[arg(long, default_value_t = 20_000)]
    pub partners: usize,
    /// Share of malformed records in the traffic (they become dead letters).
    #[arg(long, default_value_t = 0.005)]
    pub bad_share: f64,
    /// Print the day's summary and exit, without serving anything.
    #[arg(long)]
    pub once: bool,
    /// The officers' console and feed (login with the officer token: BORDERLANE_OFFICER_TOKEN, or a
    /// generated one printed at start as a ready-to-click login link).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Metrics and health endpoints (unauthenticated; no decision contents).
    #[arg(long, default_value = "127.0.0.1:8082")]
    pub metrics_listen: SocketAddr,
    /// Admin API (token from BORDERLANE_ADMIN_TOKEN, or a generated one printed at start).
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub admin_listen: SocketAddr,
    /// Live traffic after the day's summary, manifests per second.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Stop after this many seconds of live traffic (default: until Ctrl-C).
    #[arg(long)]
    pub duration: Option<u64>,
    /// Start from this policy file and reload it when it changes (default: the embedded policy).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Admin audit log.
    #[arg(long, default_value = "target/demo/audit.jsonl")]
    pub audit: PathBuf,
    /// Days of the history study (generated traffic whose exam outcomes feed the party history day by
    /// day, with and without the policy's `[history]`); 0 skips it.
    #[arg(long, default_value_t = 14)]
    pub history_days: u32,
    /// Most recent manifests the admin what-if simulate replays (the window's memory is bounded by
    /// `[admin] replay_window_bytes`).
    #[arg(long, default_value_t = 100_000)]
    pub replay_window: usize,
}

/// Chooses an example decision of one kind.
type Pick = fn(&Decision) -> bool;

fn example(label: &str, d: &Decision) -> String {
    let mut s = format!(
        "  {label}: {} at port {} ({}) -> lane {}, {}, score {} ({}){}{}\n",
        d.manifest_id,
        d.port_of_entry,
        d.mode.as_str(),
        d.lane.as_str(),
        d.action.as_str(),
        d.score,
        d.band.as_str(),
        if d.front_of_line {
            ", front of line"
        } else {
            ""
        },
        if d.random_exam {
            ", random compliance exam"
        } else {
            ""
        },
    );
    for r in &d.reasons {
        s.push_str(&format!(
            "      {:>+5}  {:<28} {}\n",
            r.points,
            r.rule.as_str(),
            r.detail
        ));
    }
    if !d.fast_missing.is_empty() {
        let missing: Vec<&str> = d.fast_missing.iter().map(|c| c.as_str()).collect();
        s.push_str(&format!(
            "      FAST conditions missing: {}\n",
            missing.join(", ")
        ));
    }
    s
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // The one policy loader (with the model a `[model]` section names); the service loads the same file.
    let policy = Arc::new(match &args.policy {
        Some(p) => crate::load::policy::load(p)?,
        None => crate::load::policy::default_policy(),
    });
    let started = Instant::now();
    let g = Generator::new(
        GenConfig {
            seed: args.seed,
            partners: args.partners,
            bad_share: args.bad_share,
            ..GenConfig::default()
        },
        &policy,
    );
    let table = Arc::new(g.partner_table());
    let limits = crate::service::config::LimitsConfig::default().limits();
    let gen_secs = started.elapsed().as_secs_f64();
    println!(
        "borderlane demo: a day of port traffic ({} manifests, {} CTPAT partner records), policy {} ({})",
        args.manifests,
        table.len(),
        policy.doc.meta.name,
        policy.version
    );

    // The day, scored on every core.
    let scoring = Instant::now();
    let (counts, examples) = (0..args.manifests)
        .into_par_iter()
        .map(|i| {
            let bytes = g.record(i).to_bytes();
            (i, process(&policy, &table, &bytes, &limits))
        })
        .fold(
            || (Counts::default(), Vec::<Decision>::new()),
            |(mut t, mut ex), (i, r)| {
                match r {
                    Ok((_, d)) => {
                        t.add(&d);
                        // A few telling decisions to show: FAST release, watch list, random exam, other exam.
                        let wanted = (d.lane == Lane::Fast && i % 97 == 0)
                            || d.watchlist_hit
                            || d.random_exam
                            || (d.action.is_exam() && d.reasons.len() >= 3);
                        if wanted && ex.len() < 64 {
                            ex.push(d);
                        }
                    }
                    Err(e) => t.add_dead_letter(e.kind),
                }
                (t, ex)
            },
        )
        .reduce(
            || (Counts::default(), Vec::new()),
            |(mut a, mut ea), (b, eb)| {
                a.merge(&b);
                ea.extend(eb);
                (a, ea)
            },
        );
    let secs = scoring.elapsed().as_secs_f64();
    let tally = counts.tally();
    println!("{}", tally.render());
    println!("examples (reasons with their points):");
    let mut examples = examples;
    examples.sort_by(|a, b| a.manifest_id.cmp(&b.manifest_id));
    let picks: [(&str, Pick); 4] = [
        ("FAST lane", |d| d.lane == Lane::Fast),
        ("watch-list hit", |d| d.watchlist_hit),
        ("random compliance", |d| d.random_exam && !d.watchlist_hit),
        ("targeted exam", |d| {
            d.action.is_exam() && !d.random_exam && !d.watchlist_hit
        }),
    ];
    for (label, pred) in picks {
        if let Some(d) = examples.iter().find(|d| pred(d)) {
            print!("{}", example(label, d));
        }
    }
    println!(
        "\ngenerated the partner table in {gen_secs:.2} s; generated and scored {} manifests in {secs:.2} s ({:.0}/s on {} threads)",
        args.manifests,
        args.manifests as f64 / secs.max(1e-9),
        rayon::current_num_threads()
    );
    if args.history_days > 0 && policy.doc.history.is_some() {
        let started = Instant::now();
        let study = crate::analysis::history_study::run(
            &policy,
            g.config(),
            &table,
            args.manifests,
            args.history_days,
        );
        println!("\n{}", study.render());
        println!(
            "history study in {:.2} s (twice {} manifests)",
            started.elapsed().as_secs_f64(),
            study.manifests
        );
    }
    if args.once {
        return Ok(ExitCode::SUCCESS);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(live(args, g, table))?;
    Ok(ExitCode::SUCCESS)
}

/// The live part: the service with generated traffic as its input — console, feed, metrics, admin API and
/// hot reload exactly as `serve` wires them.
async fn live(args: Args, g: Generator, table: Arc<PartnerTable>) -> anyhow::Result<()> {
    let mut config = Config::default();
    config.http.listen = args.metrics_listen;
    config.officers.listen = Some(args.listen);
    config.officers.generate_token = true;
    config.admin.listen = Some(args.admin_listen);
    config.admin.audit_log = args.audit.clone();
    config.admin.replay_window = args.replay_window;
    config.admin.generate_token = true;
    config.policy.file = args.policy.clone();
    // `demo` needs no files: without --policy there is nothing to reload but a model file, and none.
    config.admin.reload_policy = args.policy.is_some();
    let input = Input::Generated(Box::new(Generated {
        generator: g,
        table,
        rate: args.rate,
        first: args.manifests,
        warm: args.manifests.saturating_sub(args.replay_window as u64)..args.manifests,
    }));
    let running = crate::service::start_with(config, input).await?;
    let scheme = running.scheme();
    if let Some(t) = running.generated_admin_token() {
        println!("admin token (operator): {t}");
    }
    if let Some(a) = running.officers_addr() {
        println!("console:   {scheme}://{a}/   (feed /feed, /decisions/{{id}}, /api/stats; officers only)");
        match running.generated_officer_token() {
            Some(t) => println!(
                "login:     {scheme}://{a}/login#token={t}   (officer token {t}; API: Authorization: Bearer)"
            ),
            None => println!("login:     {scheme}://{a}/login   (with BORDERLANE_OFFICER_TOKEN)"),
        }
    }
    println!(
        "metrics:   {scheme}://{}/metrics   (health /healthz /readyz)",
        running.http_addr()
    );
    if let Some(a) = running.admin_addr() {
        println!("admin API: {scheme}://{a}/admin/policy   (OpenAPI at /admin/openapi.json)");
    }
    println!("live traffic at {} manifests/s; Ctrl-C to stop", args.rate);
    let duration = args.duration.map(Duration::from_secs);
    running
        .wait(async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => println!("stopping"),
                _ = async {
                    match duration {
                        Some(d) => tokio::time::sleep(d).await,
                        None => std::future::pending().await,
                    }
                } => println!("duration reached, stopping"),
            }
        })
        .await
}
