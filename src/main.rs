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
    /// Score NDJSON manifests from a file or stdin into NDJSON decisions.
    Score(cli::score::Args),
    /// Validate a policy file and print every error with its key path (exit 1 if any).
    CheckPolicy(cli::check_policy::Args),
    /// Convert KCS customs declarations (CSV) into manifests and labels (NDJSON).
    ImportKcs(cli::import_kcs::Args),
    /// Train the learned risk model on labelled manifests into a self-contained model file.
    Train(cli::train::Args),
    /// Rank labelled manifests by risk: precision and recall at 1/2/5/10 % and AUC.
    Evaluate(cli::evaluate::Args),
}

fn main() -> ExitCode {
    let args = Cli::parse();
    let result = match args.command {
        Command::Score(a) => cli::score::run(a),
        Command::CheckPolicy(a) => cli::check_policy::run(a),
        Command::ImportKcs(a) => cli::import_kcs::run(a),
        Command::Train(a) => cli::train::run(a),
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
