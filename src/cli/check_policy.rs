//! `borderlane check-policy FILE`: validate a policy and print every error with its key path.

use std::path::PathBuf;
use std::process::ExitCode;

use borderlane_core::policy::CompiledPolicy;

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
