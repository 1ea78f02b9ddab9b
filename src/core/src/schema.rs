//! Whole-document deserialisation that reports **every** schema error with its key path, not just the first.
//!
//! serde stops at the first error. We re-run it on a `toml::Value`, and after each error repair the value so
//! the next run gets further: an unknown key is removed; a value of the wrong type is replaced by a
//! placeholder of the expected type; a missing field gets a placeholder. Errors that only the repairs
//! caused are not reported. The result is the list of every error in the original document.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use toml::Value;

/// One problem in a document (policy, model file, service configuration): its dotted key path
/// (`ctpat.credits.importer.certified`, `actions.escalation[0].at`; empty for document-level errors) and
/// a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathError {
    /// Dotted key path, e.g. `ctpat.credits.importer.certified`; empty for document-level errors.
    pub path: String,
    pub message: String,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// At most this many repair rounds; a document with more errors reports the first ones found.
const MAX_ROUNDS: usize = 256;

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn parse_path(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Seg::Key(key.to_string()));
        }
        while let Some(end) = rest.find(']') {
            if let Ok(i) = rest[1..end].parse() {
                out.push(Seg::Index(i));
            }
            rest = &rest[end + 1..];
        }
    }
    out
}

/// The container holding the last segment, and that segment.
fn parent_mut<'a>(root: &'a mut Value, segs: &'a [Seg]) -> Option<(&'a mut Value, &'a Seg)> {
    let (last, init) = segs.split_last()?;
    let mut cur = root;
    for s in init {
        cur = match (s, cur) {
            (Seg::Key(k), Value::Table(t)) => t.get_mut(k)?,
            (Seg::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some((cur, last))
}

fn remove(root: &mut Value, segs: &[Seg]) -> bool {
    match parent_mut(root, segs) {
        Some((Value::Table(t), Seg::Key(k))) => t.remove(k).is_some(),
        Some((Value::Array(a), Seg::Index(i))) if *i < a.len() => {
            a.remove(*i);
            true
        }
        _ => false,
    }
}

fn set(root: &mut Value, segs: &[Seg], v: Value) -> bool {
    match parent_mut(root, segs) {
        Some((Value::Table(t), Seg::Key(k))) => {
            t.insert(k.clone(), v);
            true
        }
        Some((Value::Array(a), Seg::Index(i))) if *i < a.len() => {
            a[*i] = v;
            true
        }
        _ => false,
    }
}

/// A value of the type serde said it expected, read from its message (`expected i32`, `expected a string`,
/// `expected one of `a`, `b``, …).
fn placeholder(message: &str) -> Option<Value> {
    let expected = &message[message.rfind("expected")? + "expected".len()..];
    let e = expected.trim();
    if let Some(start) = e.find('`') {
        let rest = &e[start + 1..];
        let end = rest.find('`')?;
        return Some(Value::String(rest[..end].to_string()));
    }
    let v = if e.starts_with('i') || e.starts_with('u') && !e.starts_with("unit") {
        Value::Integer(0)
    } else if e.starts_with('f') {
        Value::Float(0.0)
    } else if e.contains("string") || e.contains("char") {
        Value::String(String::new())
    } else if e.contains("bool") {
        Value::Boolean(false)
    } else if e.contains("sequence") || e.contains("array") {
        Value::Array(Vec::new())
    } else if e.contains("struct") || e.contains("map") || e.contains("table") {
        Value::Table(Default::default())
    } else {
        return None;
    };
    Some(v)
}

fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    Some(&rest[..rest.find('`')?])
}

/// serde_path_to_error keeps array indices but shows non-string map keys as `?`; toml's own path names every
/// key but drops indices. Take the first and fill its `?` segments from the second.
fn merge_paths(spe: &str, toml_path: &str) -> String {
    if !spe.contains('?') {
        return spe.to_string();
    }
    let mut keys = toml_path.split('.');
    spe.split('.')
        .map(|seg| {
            let (key, idx) = seg.split_at(seg.find('[').unwrap_or(seg.len()));
            let toml_key = keys.next().unwrap_or(key);
            let key = if key == "?" { toml_key } else { key };
            format!("{key}{idx}")
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// `path` is `root` or lies inside it.
fn within(path: &str, root: &str) -> bool {
    path == root
        || (path.starts_with(root)
            && (path[root.len()..].starts_with('.') || path[root.len()..].starts_with('[')))
}

fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(&rest[..rest.find('`')?])
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() || path == "." {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Deserialises `T` from TOML text, collecting every schema error.
pub fn from_toml<T: DeserializeOwned>(text: &str) -> Result<T, Vec<PathError>> {
    let mut value: Value = match text.parse::<toml::Table>() {
        Ok(t) => Value::Table(t),
        Err(e) => {
            return Err(vec![PathError {
                path: String::new(),
                message: e.to_string().trim().to_string(),
            }])
        }
    };
    let mut errors: Vec<PathError> = Vec::new();
    // Paths we filled with a placeholder ourselves: a later error there is ours, not the document's.
    let mut repaired: Vec<String> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let err = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(v) if errors.is_empty() => return Ok(v),
            Ok(_) => return Err(errors),
            Err(e) => e,
        };
        // toml's value deserializer names the key path itself ("…\nin `a.b.c`"), including non-string map
        // keys that serde_path_to_error shows as `?`; prefer it.
        let raw = err.inner().to_string();
        let (message, path) = match raw.trim().rsplit_once("\nin `") {
            Some((msg, p)) => (
                msg.trim().to_string(),
                merge_paths(&err.path().to_string(), p.trim_end_matches('`')),
            ),
            None => (raw.trim().to_string(), err.path().to_string()),
        };
        let path = if path == "." { String::new() } else { path };
        // An unknown key is reported at its table; name the key itself.
        let path = match unknown_field(&message) {
            Some(key) if !path.ends_with(key) => join(&path, key),
            _ => path,
        };
        let ours = repaired.iter().any(|r| within(&path, r));
        let fixed = if let Some(field) = missing_field(&message) {
            let full = join(&path, field);
            if !repaired.iter().any(|r| within(&full, r)) {
                errors.push(PathError {
                    path: full.clone(),
                    message: message.clone(),
                });
            }
            repaired.push(full.clone());
            set(&mut value, &parse_path(&full), Value::Integer(0))
        } else {
            if !ours {
                errors.push(PathError {
                    path: path.clone(),
                    message: message.clone(),
                });
            }
            let segs = parse_path(&path);
            let ph = if message.starts_with("unknown field") {
                None
            } else {
                placeholder(&message)
            };
            match ph {
                Some(v) if !repaired.contains(&format!("{path}={v}")) => {
                    repaired.push(format!("{path}={v}"));
                    repaired.push(path.clone());
                    set(&mut value, &segs, v)
                }
                _ => remove(&mut value, &segs),
            }
        };
        if !fixed {
            break;
        }
    }
    Err(errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        a: Inner,
        m: BTreeMap<String, Inner>,
        list: Vec<Inner>,
        #[serde(default)]
        kind: Option<Kind>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        x: i32,
        #[serde(default)]
        s: String,
        #[serde(default)]
        f: Option<f64>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        One,
        Two,
    }

    fn errors(text: &str) -> Vec<String> {
        from_toml::<Doc>(text)
            .unwrap_err()
            .into_iter()
            .map(|e| e.path)
            .collect()
    }

    #[test]
    fn reports_every_error_with_its_path() {
        let text = r#"
            bogus = 1
            kind = "three"
            [a]
            x = "no"
            y = 2
            [m.k1]
            x = 1
            s = 5
            [m.k2]
            f = "z"
            [[list]]
            x = 1
            [[list]]
            x = true
        "#;
        let mut got = errors(text);
        got.sort();
        assert_eq!(
            got,
            vec![
                "a.x",
                "a.y",
                "bogus",
                "kind",
                "list[1].x",
                "m.k1.s",
                "m.k2.f",
                "m.k2.x"
            ]
        );
    }

    #[test]
    fn good_document_parses_and_syntax_errors_are_reported() {
        assert!(from_toml::<Doc>("m = {}\nlist = []\n[a]\nx = 1").is_ok());
        let e = from_toml::<Doc>("a = ").unwrap_err();
        assert_eq!(e.len(), 1);
        let e = errors("m = {}\nlist = []");
        assert_eq!(e, vec!["a"]);
    }
}
