//! The one policy loader: every path that turns policy text into a [`CompiledPolicy`] — policy files,
//! `serve` start-up, hot reload, the admin API's `PUT`, `rollback` and `simulate`, `demo`, `replay`,
//! `score`, `evaluate` — goes through [`PolicyLoader`], which also reads and validates the learned model a
//! `[model]` section names. A missing or invalid model file is a validation error listed with the others,
//! never a silent fallback to the rules alone (the core refuses to compile such a policy without its model).
//!
//! Where the model file may be depends on where the policy came from ([`Origin`]): a policy file names its
//! model relative to its own directory (the operator who wrote the file chose the path), while a policy sent
//! through the admin API may only name a file inside the configured model directory — absolute paths and
//! `..` are refused, so an API caller cannot make the service read arbitrary files.

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context};
use borderlane_core::model::Model;
use borderlane_core::policy::{parse_policy, CompiledPolicy};
use borderlane_core::schema::PathError;

/// The shipped `config/policy.toml`, compiled into the binary so `demo` needs no files.
pub const DEFAULT_POLICY: &str = include_str!("../../config/policy.toml");

/// Where a policy's text came from; decides where its model file may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A policy file (or the embedded default): `model.file` relative to the policy's directory, absolute
    /// paths allowed.
    File,
    /// Sent through the admin API (`PUT`, `rollback`, `simulate`): `model.file` must be a relative path
    /// inside the model directory.
    Api,
}

/// Compiles policy text with its model. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PolicyLoader {
    /// Directory of the policy file (file-origin models resolve against it).
    policy_dir: PathBuf,
    /// The only directory API-origin models may come from.
    model_dir: PathBuf,
}

impl PolicyLoader {
    /// A loader for policies in `policy_dir` whose API-sent versions find their models in `model_dir`.
    pub fn new(policy_dir: impl Into<PathBuf>, model_dir: impl Into<PathBuf>) -> PolicyLoader {
        PolicyLoader {
            policy_dir: policy_dir.into(),
            model_dir: model_dir.into(),
        }
    }

    /// A loader for the policy file `path`: both directories are the file's own.
    pub fn for_file(path: &Path) -> PolicyLoader {
        let dir = directory_of(path);
        PolicyLoader::new(dir.clone(), dir)
    }

    /// Where `file` (a policy's `model.file`) is, for a policy of this origin; the error says why the path
    /// is refused.
    pub fn model_path(&self, file: &str, origin: Origin) -> Result<PathBuf, String> {
        let p = Path::new(file);
        match origin {
            Origin::File if p.is_absolute() => Ok(p.to_path_buf()),
            Origin::File => Ok(self.policy_dir.join(p)),
            Origin::Api => {
                if p.is_absolute() {
                    return Err(format!(
                        "{file:?}: an absolute path is not allowed for a policy sent through the admin API; \
                         name a file inside the model directory {}",
                        self.model_dir.display()
                    ));
                }
                if p.components().any(|c| !matches!(c, Component::Normal(_))) {
                    return Err(format!(
                        "{file:?}: must be a plain relative path inside the model directory {} (no '..')",
                        self.model_dir.display()
                    ));
                }
                Ok(self.model_dir.join(p))
            }
        }
    }

    /// The model file a compiled policy names, resolved for its origin (`None` without a `[model]` section).
    pub fn model_file(&self, policy: &CompiledPolicy, origin: Origin) -> Option<PathBuf> {
        let section = policy.doc.model.as_ref()?;
        self.model_path(&section.file, origin).ok()
    }

    /// Parses, validates and compiles `text` with the model its `[model]` section names: every error of the
    /// policy and of the model file at once, each with its key path.
    pub fn compile(&self, text: &str, origin: Origin) -> Result<CompiledPolicy, Vec<PathError>> {
        let doc = parse_policy(text)?;
        let model = match &doc.model {
            None => None,
            Some(section) => {
                let path = self
                    .model_path(&section.file, origin)
                    .map_err(|message| vec![model_error(message)])?;
                Some(read_model(&path)?)
            }
        };
        CompiledPolicy::with_model(doc, model)
    }
}

fn directory_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn model_error(message: String) -> PathError {
    PathError {
        path: "model.file".into(),
        message,
    }
}

/// Reads and validates a model file; its errors are the policy's `model.file` errors.
fn read_model(path: &Path) -> Result<Model, Vec<PathError>> {
    let bytes = std::fs::read(path)
        .map_err(|e| vec![model_error(format!("cannot read {}: {e}", path.display()))])?;
    Model::parse(&bytes).map_err(|errors| {
        errors
            .into_iter()
            .map(|e| model_error(format!("model {} is invalid: {e}", path.display())))
            .collect()
    })
}

/// Reads a policy file and compiles it with its model; the error lists every problem, one per line, with
/// its key path.
pub fn load(path: &Path) -> anyhow::Result<CompiledPolicy> {
    load_with_text(path).map(|(_, policy)| policy)
}

/// [`load`], also returning the file's text (what the policy store keeps for rollback).
pub fn load_with_text(path: &Path) -> anyhow::Result<(String, CompiledPolicy)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading policy {}", path.display()))?;
    match PolicyLoader::for_file(path).compile(&text, Origin::File) {
        Ok(policy) => Ok((text, policy)),
        Err(errors) => bail!("policy {} is invalid:\n{}", path.display(), render(&errors)),
    }
}

/// Reads, validates and compiles a model file on its own (`evaluate --model`).
pub fn load_model(path: &Path) -> anyhow::Result<Model> {
    read_model(path).map_err(|errors| anyhow::anyhow!("{}", render(&errors)))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn kcs_text() -> String {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policy-kcs.toml"),
        )
        .unwrap()
    }

    #[test]
    fn a_policy_file_loads_with_its_model() {
        let p =
            load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policy-kcs.toml")).unwrap();
        assert!(p.model.is_some(), "the [model] section's model is loaded");
    }

    #[test]
    fn a_missing_model_is_an_error_listed_with_the_others() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let loader = PolicyLoader::new(&dir, &dir);
        let text = kcs_text()
            .replace("file = \"model.json\"", "file = \"no-such-model.json\"")
            .replace("late_points = 30", "late_points = \"x\"");
        let errors = loader.compile(&text, Origin::File).unwrap_err();
        // Schema and semantic errors come first; a policy that does not validate does not read its model.
        assert!(
            errors.iter().any(|e| e.path.contains("late_points")),
            "{errors:?}"
        );
        let text = kcs_text().replace("file = \"model.json\"", "file = \"no-such-model.json\"");
        let errors = loader.compile(&text, Origin::File).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].path, "model.file");
        assert!(
            errors[0].message.contains("no-such-model.json"),
            "{errors:?}"
        );
    }

    #[test]
    fn api_policies_find_models_only_inside_the_model_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let loader = PolicyLoader::new("/nonexistent", &dir);
        assert!(loader.compile(&kcs_text(), Origin::Api).is_ok());
        for bad in [
            "/etc/passwd",
            "../config/model.json",
            "sub/../model.json",
            "./model.json",
        ] {
            let text = kcs_text().replace("file = \"model.json\"", &format!("file = {bad:?}"));
            let errors = loader.compile(&text, Origin::Api).unwrap_err();
            assert_eq!(errors[0].path, "model.file", "{bad}: {errors:?}");
        }
        // The same absolute path is allowed in a policy file written by the operator.
        let abs = dir.join("model.json");
        let text = kcs_text().replace(
            "file = \"model.json\"",
            &format!("file = {:?}", abs.display().to_string()),
        );
        assert!(loader.compile(&text, Origin::File).is_ok());
    }

    #[test]
    fn an_invalid_model_lists_every_error() {
        let tmp = std::env::temp_dir().join(format!("borderlane-loader-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(tmp.join("model.json"), b"{\"format\": 7}").unwrap();
        let loader = PolicyLoader::new(&tmp, &tmp);
        let errors = loader.compile(&kcs_text(), Origin::File).unwrap_err();
        assert!(!errors.is_empty());
        assert!(errors.iter().all(|e| e.path == "model.file"), "{errors:?}");
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
