//! `borderlane demo`: the main job on its embedded default, with no infrastructure. It generates a day of
//! port traffic, scores it with the default policy on every core and prints the summary (the favouring in
//! numbers); then, unless `--once`, it keeps the same pipeline running in process with live generated
//! traffic and serves the officers' console, the feed, `/metrics`, `/healthz`, `/readyz`, and the admin API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use borderlane_core::decision::{Decision, Lane};
use borderlane_core::policy::CompiledPolicy;
use borderlane_core::score::{check_port, decide};
use borderlane_core::table::PartnerTable;
use borderlane_core::time::Timestamp;
use borderlane_core::wire::{parse_manifest, BadInput, Limits, Manifest};
use rayon::prelude::*;
use tokio::sync::watch;

use crate::analysis::summary::Tally;
use crate::service::admin::audit::AuditLog;
use crate::service::admin::{self, AdminState, ManifestRing, PolicyStore, Tokens};
use crate::service::feed::Feed;
use crate::service::http::AppState;
use crate::service::metrics::Metrics;
use crate::service::Readiness;
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
    /// Console, feed, metrics and health endpoints.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
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
    /// Recent manifests kept for the admin what-if simulate.
    #[arg(long, default_value_t = 100_000)]
    pub replay_window: usize,
}

/// One input through the core: the parsed manifest (for the what-if ring) and its decision, or a dead letter.
fn run_one(
    policy: &CompiledPolicy,
    table: &PartnerTable,
    bytes: &[u8],
    limits: &Limits,
) -> Result<(Manifest, Decision), BadInput> {
    let m = parse_manifest(bytes, limits)?;
    check_port(policy, &m)?;
    let d = decide(policy, table, &m);
    Ok((m, d))
}

/// Chooses an example decision of one kind.
type Pick = fn(&Decision) -> bool;

fn now() -> (Option<Timestamp>, i64) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (
        Timestamp::from_unix_nanos(d.as_nanos() as i128),
        d.as_secs() as i64,
    )
}

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
    let policy_text = match &args.policy {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        None => crate::load::policy::DEFAULT_POLICY.to_string(),
    };
    let loader: admin::store::Loader = Box::new(CompiledPolicy::from_toml);
    let audit = if args.once {
        None
    } else {
        Some(AuditLog::open(&args.audit)?)
    };
    let store =
        Arc::new(PolicyStore::new(&policy_text, loader, audit).map_err(|e| {
            anyhow::anyhow!("policy is invalid:\n{}", crate::load::policy::render(&e))
        })?);
    let policy = store.current();
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
    let table = Arc::new(PartnerTable::new());
    for p in g.partners() {
        table.upsert(p.clone());
    }
    let limits = Limits::default();
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
    let ring = Arc::new(ManifestRing::new(args.replay_window));
    let (tally, examples) = (0..args.manifests)
        .into_par_iter()
        .map(|i| {
            let bytes = g.record(i).to_bytes();
            (i, run_one(&policy, &table, &bytes, &limits))
        })
        .fold(
            || (Tally::default(), Vec::<Decision>::new()),
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
            || (Tally::default(), Vec::new()),
            |(mut a, mut ea), (b, eb)| {
                a.merge(b);
                ea.extend(eb);
                (a, ea)
            },
        );
    let secs = scoring.elapsed().as_secs_f64();
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
    if args.once {
        return Ok(ExitCode::SUCCESS);
    }
    // The recent window for simulate starts with the tail of the day.
    let tail = args.manifests.saturating_sub(args.replay_window as u64);
    for i in tail..args.manifests {
        if let crate::traffic::gen::Record::Good(m) = g.record(i) {
            if check_port(&policy, &m).is_ok() {
                ring.push(Arc::new(*m));
            }
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(live(args, store, table, ring, g))?;
    Ok(ExitCode::SUCCESS)
}

/// The live part: generated traffic through the pipeline, the console, the feed, metrics and the admin API.
async fn live(
    args: Args,
    store: Arc<PolicyStore>,
    table: Arc<PartnerTable>,
    ring: Arc<ManifestRing>,
    g: Generator,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let metrics = Arc::new(Metrics::new());
    let readiness = Arc::new(Readiness::new());
    readiness.partners_complete();
    // The in-process traffic stands in for the manifest consumer.
    readiness.consumer_running(true);
    metrics.partner_table(table.len(), table.updates_applied());
    metrics.partner_table_completed();
    let feed = Arc::new(Feed::new(
        1024,
        args.replay_window.max(1),
        &store.current(),
        stop_rx.clone(),
    ));
    let secret = match std::env::var("BORDERLANE_ADMIN_TOKEN") {
        Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
        _ => {
            let t = admin::auth::generate_secret();
            println!("admin token (operator): {t}");
            t
        }
    };
    let tokens = Arc::new(Tokens::single("demo-operator", &secret)?);
    let app = crate::service::http::router(AppState {
        metrics: metrics.clone(),
        readiness: readiness.clone(),
    })
    .merge(crate::service::feed::router(feed.clone()));
    let admin_app = admin::router(AdminState {
        store: store.clone(),
        tokens,
        ring: ring.clone(),
        table: table.clone(),
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let admin_listener = tokio::net::TcpListener::bind(args.admin_listen)
        .await
        .with_context(|| format!("binding {}", args.admin_listen))?;
    println!(
        "console:   http://{}/   (feed /feed, metrics /metrics, health /healthz /readyz)",
        listener.local_addr()?
    );
    println!(
        "admin API: http://{}/admin/policy   (OpenAPI at /admin/openapi.json)",
        admin_listener.local_addr()?
    );
    println!("live traffic at {} manifests/s; Ctrl-C to stop", args.rate);

    let mut tasks = tokio::task::JoinSet::new();
    let shutdown = |mut rx: watch::Receiver<bool>| async move {
        while !*rx.borrow() {
            if rx.changed().await.is_err() {
                break;
            }
        }
    };
    for (listener, app) in [(listener, app), (admin_listener, admin_app)] {
        let rx = stop_rx.clone();
        tasks.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown(rx))
                .await
                .map_err(anyhow::Error::from)
        });
    }
    if let Some(p) = args.policy.clone() {
        let (store, rx) = (store.clone(), stop_rx.clone());
        tasks.spawn(async move {
            admin::reload::watch_file(store, p, Duration::from_secs(1), admin::flipped(rx)).await;
            Ok(())
        });
    }
    // Traffic: an open-loop timetable, continuing the day's record numbering.
    tasks.spawn({
        let (store, table, ring, feed, metrics, mut rx) =
            (store, table, ring, feed, metrics, stop_rx.clone());
        let rate = args.rate.max(0.1);
        let first = args.manifests;
        async move {
            let limits = Limits::default();
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            let mut i = first;
            let mut version = String::new();
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = rx.changed() => return Ok(()),
                }
                let bytes = g.record(i).to_bytes();
                i += 1;
                let policy = store.current();
                if *policy.version != *version {
                    version = policy.version.to_string();
                    metrics.policy(&version, &policy.doc.meta.name);
                }
                let t0 = Instant::now();
                match run_one(&policy, &table, &bytes, &limits) {
                    Ok((m, mut d)) => {
                        metrics.scored(t0.elapsed());
                        let (ts, secs) = now();
                        d.decided_at = ts;
                        let json = serde_json::to_vec(&d)?;
                        feed.publish(&d, &json, secs);
                        metrics.decision_acknowledged(d.action, d.lane, d.port_of_entry);
                        ring.push(Arc::new(m));
                    }
                    Err(e) => metrics.dead_letter_acknowledged(e.kind),
                }
            }
        }
    });
    let duration = args.duration.map(Duration::from_secs);
    tokio::select! {
        _ = tokio::signal::ctrl_c() => println!("stopping"),
        _ = async { match duration { Some(d) => tokio::time::sleep(d).await, None => std::future::pending().await } } => println!("duration reached, stopping"),
        Some(r) = tasks.join_next() => {
            let _ = stop_tx.send(true);
            return match r { Ok(Ok(())) => Err(anyhow::anyhow!("a demo task ended early")), Ok(Err(e)) => Err(e), Err(e) => Err(e.into()) };
        }
    }
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        Ok::<(), anyhow::Error>(())
    })
    .await;
    match drained {
        Ok(r) => r,
        Err(_) => Err(anyhow::anyhow!("the demo did not stop within 10 s")),
    }
}
