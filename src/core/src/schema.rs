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

/// One step of a key path. Paths are kept as segments from serde's own path, never re-parsed from text, so a
/// key may hold any character (`"[]é]"`, `"a.b"`).
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// The dotted form of a path: `a.b[0].c`; empty for the document itself.
fn render(segs: &[Seg]) -> String {
    let mut out = String::new();
    for s in segs {
        match s {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

/// The segments of serde_path_to_error's path. It keeps array indices but cannot name non-string map keys
/// (`Unknown`); toml's own path (`toml_keys`, one per key, no indices) names them, so those are filled from
/// it by position.
fn segments(path: &serde_path_to_error::Path, toml_keys: &[&str]) -> Vec<Seg> {
    use serde_path_to_error::Segment;
    let mut keys = toml_keys.iter();
    path.iter()
        .map(|s| match s {
            Segment::Seq { index } => Seg::Index(*index),
            Segment::Map { key } => {
                keys.next();
                Seg::Key(key.clone())
            }
            Segment::Enum { variant } => {
                keys.next();
                Seg::Key(variant.clone())
            }
            Segment::Unknown => Seg::Key(keys.next().map_or("?", |k| k).to_string()),
        })
        .collect()
}

/// The value at `segs`.
fn get<'a>(root: &'a Value, segs: &[Seg]) -> Option<&'a Value> {
    segs.iter().try_fold(root, |cur, s| match (s, cur) {
        (Seg::Key(k), Value::Table(t)) => t.get(k),
        (Seg::Index(i), Value::Array(a)) => a.get(*i),
        _ => None,
    })
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

fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(&rest[..rest.find('`')?])
}

/// The unknown key a message names (`unknown field `k`, expected …`), found among the keys of the table at
/// `segs` so that a key holding a backtick or a comma is named whole; the message's text otherwise.
fn unknown_key(value: &Value, segs: &[Seg], message: &str) -> Option<String> {
    let named = unknown_field(message)?;
    let exact = |k: &String| {
        message
            .strip_prefix("unknown field `")
            .and_then(|r| r.strip_prefix(k.as_str()))
            .is_some_and(|r| r == "`" || r.starts_with("`, "))
    };
    // The path may already end at the key (serde_path_to_error names it for some documents).
    if let Some(Seg::Key(k)) = segs.last() {
        if exact(k) {
            return Some(k.clone());
        }
    }
    if let Some(Value::Table(t)) = get(value, segs) {
        if let Some(k) = t.keys().filter(|k| exact(k)).max_by_key(|k| k.len()) {
            return Some(k.clone());
        }
    }
    Some(named.to_string())
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
    let mut repaired: Vec<Vec<Seg>> = Vec::new();
    // Placeholders already tried, so a placeholder that fails again is removed instead.
    let mut placed: Vec<(Vec<Seg>, Value)> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let err = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(v) if errors.is_empty() => return Ok(v),
            Ok(_) => return Err(errors),
            Err(e) => e,
        };
        // toml's value deserializer names the key path itself ("…\nin `a.b.c`"), including non-string map
        // keys that serde_path_to_error shows as `?`; those are taken from it.
        let raw = err.inner().to_string();
        let (message, toml_path) = match raw.trim().rsplit_once("\nin `") {
            Some((msg, p)) => (msg.trim().to_string(), p.strip_suffix('`').unwrap_or(p)),
            None => (raw.trim().to_string(), ""),
        };
        let toml_keys: Vec<&str> = if toml_path.is_empty() {
            Vec::new()
        } else {
            toml_path.split('.').collect()
        };
        let mut path = segments(err.path(), &toml_keys);
        // An unknown key is reported at its table; name the key itself.
        if let Some(key) = unknown_key(&value, &path, &message) {
            if path.last() != Some(&Seg::Key(key.clone())) {
                path.push(Seg::Key(key));
            }
        }
        let ours = repaired.iter().any(|r| path.starts_with(r));
        let fixed = if let Some(field) = missing_field(&message) {
            let mut full = path.clone();
            full.push(Seg::Key(field.to_string()));
            if !repaired.iter().any(|r| full.starts_with(r)) {
                errors.push(PathError {
                    path: render(&full),
                    message: message.clone(),
                });
            }
            repaired.push(full.clone());
            set(&mut value, &full, Value::Integer(0))
        } else {
            if !ours {
                errors.push(PathError {
                    path: render(&path),
                    message: message.clone(),
                });
            }
            let ph = if message.starts_with("unknown field") {
                None
            } else {
                placeholder(&message)
            };
            match ph {
                Some(v) if !placed.iter().any(|(p, pv)| *p == path && *pv == v) => {
                    placed.push((path.clone(), v.clone()));
                    repaired.push(path.clone());
                    set(&mut value, &path, v)
                }
                _ => remove(&mut value, &path),
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

    /// Regression: a key with a multi-byte character after `]` made the path re-parser slice inside the
    /// character and panic (`"[]é]" = 1` at the top of a policy).
    #[test]
    fn keys_with_any_characters_are_reported_whole() {
        for key in [
            "[]é]",
            "é",
            "a.b",
            "x[0]",
            "[",
            "]",
            "`",
            "k`, x",
            "日本[1]é",
        ] {
            let text = format!("{key:?} = 1\nm = {{}}\nlist = []\n[a]\nx = 1");
            let e = from_toml::<Doc>(&text).unwrap_err();
            assert_eq!(e.len(), 1, "{key}: {e:?}");
            assert_eq!(e[0].path, key);
            assert!(e[0].message.starts_with("unknown field"), "{e:?}");
            // Inside a map of structs, under a key of any characters.
            let text = format!("list = []\n[a]\nx = 1\n[m.{key:?}]\nx = \"s\"\n{key:?} = 3");
            let mut got = errors(&text);
            got.sort();
            let mut want = vec![format!("m.{key}.x"), format!("m.{key}.{key}")];
            want.sort();
            assert_eq!(got, want, "{key}");
        }
    }
}
