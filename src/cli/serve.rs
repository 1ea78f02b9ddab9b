//! `borderlane serve --config FILE`: the streaming service (see `borderlane::service`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tracing::error;
use tracing_subscriber::EnvFilter;

use crate::service::config::{Config, LogFormat};

#[derive(clap::Args)]
pub struct Args {
    /// Configuration file (TOML); `BORDERLANE_<SECTION>__<KEY>` environment variables override it.
    #[arg(long, short, default_value = "config/borderlane.toml")]
    pub config: PathBuf,
    /// Validate the configuration (file + environment), print the effective client properties with
    /// secrets redacted, and exit.
    #[arg(long)]
    pub check: bool,
}

/// Installs the global tracing subscriber: `RUST_LOG` filters (default `info`), text or JSON lines.
pub fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Resolves on SIGINT or SIGTERM.
pub async fn signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: {e}", args.config.display());
            return Ok(ExitCode::from(1));
        }
    };
    if let Some(problem) = config.kafka.serve_problem() {
        eprintln!("{}: {problem}", args.config.display());
        return Ok(ExitCode::from(1));
    }
    if args.check {
        let policy = crate::service::load_policy(&config)?;
        println!(
            "{}: valid; policy {} ({})",
            args.config.display(),
            policy.doc.meta.name,
            policy.version
        );
        for role in [
            crate::service::kafka::clients::Role::ManifestConsumer,
            crate::service::kafka::clients::Role::PartnerConsumer,
            crate::service::kafka::clients::Role::Producer,
        ] {
            println!(
                "{role:?}: {}",
                crate::service::kafka::clients::describe(&config.kafka, role)
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    init_tracing(config.service.log_format);
    let budget = Duration::from_millis(config.service.shutdown_timeout_ms);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("borderlane")
        .build()?;
    let result = runtime.block_on(crate::service::run(config, signal()));
    // Blocking threads that missed the shutdown budget must not hold the process open.
    runtime.shutdown_timeout(budget / 4);
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            error!(error = %format!("{e:#}"), "borderlane serve stopped with an error");
            eprintln!("error: {e:#}");
            Ok(ExitCode::from(1))
        }
    }
}
