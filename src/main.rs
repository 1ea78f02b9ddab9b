//! The `borderlane` command line: one binary, one subcommand per job.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use borderlane::cli;

#[derive(Parser)]
#[command(
    name = "borderlane",
    version,
    about = "Border-lane risk scoring and exam selection for shipment manifests"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The main job on its embedded default: a generated day of port traffic scored in process, then the
    /// live console with generated traffic.
    Demo(cli::demo::Args),
    /// Score NDJSON manifests from a file or stdin into NDJSON decisions.
    Score(cli::score::Args),
    /// Validate a policy file and print every error with its key path (exit 1 if any).
    CheckPolicy(cli::check_policy::Args),
    /// Generate seeded, realistic partners and manifests (NDJSON).
    Generate(cli::generate::Args),
    /// Run the streaming service on Kafka: manifests in, decisions and dead letters out.
    Serve(cli::serve::Args),
    /// Load partners and manifests (NDJSON files) into the Kafka topics.
    Produce(cli::produce::Args),
    /// What-if replay: a candidate policy against a baseline over a history of manifests.
    Replay(cli::replay::Args),
    /// Convert KCS customs declarations (CSV) into manifests and labels (NDJSON).
    #[cfg(feature = "learn")]
    ImportKcs(cli::import_kcs::Args),
    /// Train the learned risk model on labelled manifests into a self-contained model file.
    #[cfg(feature = "learn")]
    Train(cli::train::Args),
    /// Rank labelled manifests by risk: precision and recall at 1/2/5/10 % and AUC.
    #[cfg(feature = "learn")]
    Evaluate(cli::evaluate::Args),
}

fn main() -> ExitCode {
    let args = Cli::parse();
    let result = match args.command {
        Command::Demo(a) => cli::demo::run(a),
        Command::Score(a) => cli::score::run(a),
        Command::CheckPolicy(a) => cli::check_policy::run(a),
        Command::Serve(a) => cli::serve::run(a),
        Command::Produce(a) => cli::produce::run(a),
        Command::Replay(a) => cli::replay::run(a),
        Command::Generate(a) => cli::generate::run(a),
        #[cfg(feature = "learn")]
        Command::ImportKcs(a) => cli::import_kcs::run(a),
        #[cfg(feature = "learn")]
        Command::Train(a) => cli::train::run(a),
        #[cfg(feature = "learn")]
        Command::Evaluate(a) => cli::evaluate::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
