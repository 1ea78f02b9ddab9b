//! Loading policies from files, and the embedded default policy.

use std::path::Path;

use anyhow::{bail, Context};
use borderlane_core::policy::{CompiledPolicy, PolicyError};

/// The shipped `config/policy.toml`, compiled into the binary so `demo` needs no files.
pub const DEFAULT_POLICY: &str = include_str!("../config/policy.toml");

/// Reads and validates a policy file; the error lists every problem, one per line, with its key path.
pub fn load(path: &Path) -> anyhow::Result<CompiledPolicy> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading policy {}", path.display()))?;
    match CompiledPolicy::from_toml(&text) {
        Ok(p) => Ok(p),
        Err(errors) => bail!("policy {} is invalid:\n{}", path.display(), render(&errors)),
    }
}

/// The embedded default policy.
pub fn default_policy() -> CompiledPolicy {
    CompiledPolicy::from_toml(DEFAULT_POLICY)
        .unwrap_or_else(|e| unreachable!("embedded default policy is invalid: {e:?}"))
}

/// One error per line: `path: message`.
pub fn render(errors: &[PolicyError]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}
