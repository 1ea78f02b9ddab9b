//! Bearer-token authentication for the admin API. Tokens have a name (what the audit log records — never
//! the secret) and a role; secrets are compared in constant time.

use std::path::Path;

use anyhow::{bail, Context};
use serde::Deserialize;
use subtle::ConstantTimeEq;

/// What a token may do. `Viewer` reads (policy, audit, simulate); `Operator` also changes the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Operator,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    pub name: String,
    pub role: Role,
    pub secret: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    token: Vec<Token>,
}

/// The accepted tokens.
#[derive(Clone, Default)]
pub struct Tokens(Vec<Token>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: secrets never reach a log.
        f.debug_list()
            .entries(self.0.iter().map(|t| (&t.name, t.role)))
            .finish()
    }
}

/// Outcome of checking a request's `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    /// The token's name.
    Allowed(String),
    /// No or unknown token: 401.
    Unauthenticated,
    /// Known token without the role: 403.
    Forbidden(String),
}

impl Tokens {
    pub fn new(tokens: Vec<Token>) -> anyhow::Result<Tokens> {
        for t in &tokens {
            if t.secret.len() < 16 {
                bail!(
                    "admin token {:?}: secrets must be at least 16 characters",
                    t.name
                );
            }
        }
        Ok(Tokens(tokens))
    }

    /// Reads a TOML file of `[[token]] name = …, role = "viewer" | "operator", secret = …`.
    pub fn from_file(path: &Path) -> anyhow::Result<Tokens> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading tokens {}", path.display()))?;
        let f: TokenFile =
            toml::from_str(&text).with_context(|| format!("parsing tokens {}", path.display()))?;
        Tokens::new(f.token)
    }

    /// One operator token named `name`.
    pub fn single(name: &str, secret: &str) -> anyhow::Result<Tokens> {
        Tokens::new(vec![Token {
            name: name.into(),
            role: Role::Operator,
            secret: secret.into(),
        }])
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks `Authorization: Bearer <secret>` for `needed`.
    pub fn check(&self, authorization: Option<&str>, needed: Role) -> Check {
        let Some(presented) = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
        else {
            return Check::Unauthenticated;
        };
        // Compare against every token without stopping early, so timing says nothing about which matched.
        let mut found: Option<&Token> = None;
        for t in &self.0 {
            if bool::from(t.secret.as_bytes().ct_eq(presented.as_bytes())) {
                found = Some(t);
            }
        }
        match found {
            None => Check::Unauthenticated,
            Some(t) if t.role >= needed => Check::Allowed(t.name.clone()),
            Some(t) => Check::Forbidden(t.name.clone()),
        }
    }
}

/// A fresh random secret (for `demo` when no token is given): 32 hex characters from the OS RNG.
pub fn generate_secret() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}
