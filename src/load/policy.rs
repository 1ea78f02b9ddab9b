//! Loading policies from files (with the learned model their `[model]` section names), and the embedded
//! default policy.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use borderlane_core::model::Model;
use borderlane_core::policy::{parse_policy, CompiledPolicy};
use borderlane_core::schema::PathError;

/// The shipped `config/policy.toml`, compiled into the binary so `demo` needs no files.
pub const DEFAULT_POLICY: &str = include_str!("../../config/policy.toml");

/// Reads and validates a policy file, and the model file its `[model]` section names (relative to the
/// policy file); the error lists every problem, one per line, with its key path.
pub fn load(path: &Path) -> anyhow::Result<CompiledPolicy> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading policy {}", path.display()))?;
    let doc = match parse_policy(&text) {
        Ok(d) => d,
        Err(errors) => bail!("policy {} is invalid:\n{}", path.display(), render(&errors)),
    };
    let model = match &doc.model {
        None => None,
        Some(section) => Some(load_model(&model_path(path, &section.file))?),
    };
    CompiledPolicy::with_model(doc, model)
        .map_err(|e| anyhow::anyhow!("policy {} is invalid:\n{}", path.display(), render(&e)))
}

/// Where a policy's `model.file` points: relative paths are relative to the policy file's directory.
pub fn model_path(policy: &Path, file: &str) -> PathBuf {
    let file = Path::new(file);
    if file.is_absolute() {
        return file.to_path_buf();
    }
    policy.parent().unwrap_or(Path::new(".")).join(file)
}

/// Reads, validates and compiles a model file.
pub fn load_model(path: &Path) -> anyhow::Result<Model> {
    let bytes = std::fs::read(path).with_context(|| format!("reading model {}", path.display()))?;
    Model::parse(&bytes).map_err(|errors| {
        anyhow::anyhow!("model {} is invalid:\n{}", path.display(), render(&errors))
    })
}

/// The embedded default policy.
pub fn default_policy() -> CompiledPolicy {
    CompiledPolicy::from_toml(DEFAULT_POLICY)
        .unwrap_or_else(|e| unreachable!("embedded default policy is invalid: {e:?}"))
}

/// One error per line: `path: message`.
pub fn render(errors: &[PathError]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}
