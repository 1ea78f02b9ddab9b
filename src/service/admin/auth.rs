//! Bearer-token authentication for every authenticated listener (officers' console and feed, admin API).
//! Tokens have a name (what the audit and access logs record — never the secret) and a role; only the
//! SHA-256 digest of a secret is kept in memory, and presented secrets are compared by digest in constant
//! time. The tokens file may hold the plain secret (`secret`) or its digest (`secret_sha256`).
//!
//! The role matrix (see `docs/security.md`):
//!
//! | permission                      | officer | viewer | operator |
//! |---------------------------------|---------|--------|----------|
//! | read decisions (console, feed)  | yes     | no     | no       |
//! | read policy, versions, audit    | no      | yes    | yes      |
//! | simulate (what-if)              | no      | yes    | yes      |
//! | change policy (put, rollback)   | no      | no     | yes      |
//! | declare / end port resumption   | no      | no     | yes      |
//!
//! Operators do not read decisions: whoever tunes the policy should not also watch who gets examined
//! (separation of duties; the what-if report gives them aggregates). A person who needs both holds two
//! tokens, and both uses are then logged under their own names.

use std::path::Path;

use anyhow::bail;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token may do; see the matrix in the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads decisions: the console, `/feed`, `/decisions/{id}`, `/api/stats`.
    Officer,
    /// Reads the policy, its versions and the audit trail; runs what-if simulations.
    Viewer,
    /// Everything a viewer may, and changes the policy.
    Operator,
}

/// One thing a request needs a role to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    ReadDecisions,
    ReadPolicy,
    Simulate,
    ChangePolicy,
    /// `POST /outcomes`: record what an exam found.
    RecordOutcomes,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ReadDecisions => "read decisions",
            Permission::ReadPolicy => "read the policy",
            Permission::Simulate => "simulate",
            Permission::ChangePolicy => "change the policy",
            Permission::RecordOutcomes => "record exam outcomes",
        }
    }
}

impl Role {
    /// The role matrix.
    pub fn allows(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Officer => matches!(p, ReadDecisions | RecordOutcomes),
            Role::Viewer => matches!(p, ReadPolicy | Simulate),
            Role::Operator => matches!(p, ReadPolicy | Simulate | ChangePolicy),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Officer => "officer",
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "officer" => Some(Role::Officer),
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }
}

/// One accepted token: its name, role and the SHA-256 of its secret (the secret itself is not kept).
#[derive(Clone)]
pub struct Token {
    pub name: String,
    pub role: Role,
    digest: [u8; 32],
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not even the digest: it is a password hash.
        f.debug_struct("Token")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("secret", &"***")
            .finish()
    }
}

impl Token {
    /// A token from its plain secret (at least 16 characters).
    pub fn new(name: &str, role: Role, secret: &str) -> anyhow::Result<Token> {
        if secret.len() < 16 {
            bail!("token {name:?}: secrets must be at least 16 characters");
        }
        Ok(Token {
            name: name.into(),
            role,
            digest: sha256(secret.as_bytes()),
        })
    }

    /// A token from the hex SHA-256 digest of its secret.
    pub fn from_digest(name: &str, role: Role, hex: &str) -> anyhow::Result<Token> {
        let Some(digest) = from_hex32(hex) else {
            bail!("token {name:?}: secret_sha256 must be 64 hexadecimal characters");
        };
        Ok(Token {
            name: name.into(),
            role,
            digest,
        })
    }
}

/// A `[[token]]` entry as written in the tokens file. Deliberately no `Debug`: it holds a secret.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    role: Role,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    secret_sha256: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    token: Vec<TokenEntry>,
}

/// The accepted tokens and the epoch of their source (sessions signed under another epoch are void).
#[derive(Clone, Default)]
pub struct Tokens {
    tokens: Vec<Token>,
    /// Hex prefix of the SHA-256 of the tokens file (or of the names, roles and digests): changes when
    /// the file changes.
    epoch: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: secrets never reach a log.
        f.debug_list()
            .entries(self.tokens.iter().map(|t| (&t.name, t.role)))
            .finish()
    }
}

/// Outcome of checking a presented secret.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    /// The token's name and role.
    Allowed(String, Role),
    /// No or unknown token: 401.
    Unauthenticated,
    /// Known token without the permission: 403.
    Forbidden(String, Role),
}

impl Tokens {
    pub fn new(tokens: Vec<Token>) -> anyhow::Result<Tokens> {
        let mut h = Sha256::new();
        for t in &tokens {
            h.update(t.name.as_bytes());
            h.update([0, t.role as u8]);
            h.update(t.digest);
        }
        let epoch = hex(&h.finalize()[..8]);
        Ok(Tokens { tokens, epoch })
    }

    /// Parses a tokens file: `[[token]] name = …, role = "officer" | "viewer" | "operator"` and either
    /// `secret = …` or `secret_sha256 = "<64 hex>"`. Errors name the line, never its text (it may hold a
    /// secret).
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Tokens> {
        let f: TokenFile = match toml::from_str(text) {
            Ok(f) => f,
            Err(e) => {
                let line = e
                    .span()
                    .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
                match line {
                    Some(l) => bail!(
                        "parsing tokens {origin}: line {l} is not a valid [[token]] entry \
                         (name, role = \"officer\" | \"viewer\" | \"operator\", secret or secret_sha256)"
                    ),
                    None => bail!("parsing tokens {origin}: not a valid tokens file"),
                }
            }
        };
        let mut tokens = Vec::with_capacity(f.token.len());
        for (i, e) in f.token.into_iter().enumerate() {
            let t = match (&e.secret, &e.secret_sha256) {
                (Some(s), None) => Token::new(&e.name, e.role, s),
                (None, Some(d)) => Token::from_digest(&e.name, e.role, d),
                _ => bail!(
                    "tokens {origin}: token {} ({:?}) needs exactly one of secret and secret_sha256",
                    i + 1,
                    e.name
                ),
            }
            .map_err(|err| anyhow::anyhow!("tokens {origin}: {err}"))?;
            tokens.push(t);
        }
        let mut t = Tokens::new(tokens)?;
        t.epoch = hex(&sha256(text.as_bytes())[..8]);
        Ok(t)
    }

    /// Reads a tokens file (see [`Tokens::parse`]).
    pub fn from_file(path: &Path) -> anyhow::Result<Tokens> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading tokens {}: {e}", path.display()))?;
        Tokens::parse(&text, &path.display().to_string())
    }

    /// One token named `name` with `role`.
    pub fn single(name: &str, role: Role, secret: &str) -> anyhow::Result<Tokens> {
        Tokens::new(vec![Token::new(name, role, secret)?])
    }

    /// These tokens and `other`'s (for tokens from several sources: environment, generated).
    pub fn with(mut self, other: Tokens) -> anyhow::Result<Tokens> {
        self.tokens.extend(other.tokens);
        Tokens::new(self.tokens)
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Changes whenever the tokens (or their file) change.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// Whether some token has `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.tokens.iter().any(|t| t.role == role)
    }

    /// The token named `name`, if any.
    pub fn named(&self, name: &str) -> Option<&Token> {
        self.tokens.iter().find(|t| t.name == name)
    }

    /// The token whose secret is `presented`. Compares against every token without stopping early, so
    /// timing says nothing about which matched.
    pub fn find(&self, presented: &str) -> Option<&Token> {
        let d = sha256(presented.as_bytes());
        let mut found = None;
        for t in &self.tokens {
            if bool::from(t.digest.ct_eq(&d)) {
                found = Some(t);
            }
        }
        found
    }

    /// Checks `Authorization: Bearer <secret>` for `needed`.
    pub fn check(&self, authorization: Option<&str>, needed: Permission) -> Check {
        let Some(presented) = bearer(authorization) else {
            return Check::Unauthenticated;
        };
        match self.find(presented) {
            None => Check::Unauthenticated,
            Some(t) if t.role.allows(needed) => Check::Allowed(t.name.clone(), t.role),
            Some(t) => Check::Forbidden(t.name.clone(), t.role),
        }
    }
}

/// The tokens in force, swapped whole when the tokens file changes (sessions signed under the old epoch
/// end then).
pub struct TokenStore(arc_swap::ArcSwap<Tokens>);

impl TokenStore {
    pub fn new(tokens: Tokens) -> TokenStore {
        TokenStore(arc_swap::ArcSwap::from_pointee(tokens))
    }

    pub fn current(&self) -> std::sync::Arc<Tokens> {
        self.0.load_full()
    }

    pub fn replace(&self, tokens: Tokens) {
        self.0.store(std::sync::Arc::new(tokens));
    }
}

/// The secret of an `Authorization: Bearer …` header.
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    authorization
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

pub fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

fn from_hex32(s: &str) -> Option<[u8; 32]> {
    from_hex(s.trim())?.try_into().ok()
}

/// A fresh random secret (for `demo` when no token is given): 32 hex characters from the OS RNG.
pub fn generate_secret() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    hex(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "hunter2-hunter2-hunter2";

    #[test]
    fn the_matrix() {
        use Permission::*;
        assert!(Role::Officer.allows(ReadDecisions));
        assert!(!Role::Officer.allows(ReadPolicy) && !Role::Officer.allows(Simulate));
        assert!(!Role::Viewer.allows(ReadDecisions) && !Role::Viewer.allows(ChangePolicy));
        assert!(Role::Viewer.allows(ReadPolicy) && Role::Viewer.allows(Simulate));
        assert!(Role::Operator.allows(ChangePolicy) && Role::Operator.allows(Simulate));
        assert!(!Role::Operator.allows(ReadDecisions));
    }

    #[test]
    fn debug_never_shows_a_secret_or_its_digest() {
        let t = Token::new("alice", Role::Officer, SECRET).unwrap();
        let digest = hex(&sha256(SECRET.as_bytes()));
        let d = format!("{t:?} {:?}", Tokens::new(vec![t.clone()]).unwrap());
        assert!(d.contains("alice"), "{d}");
        assert!(!d.contains(SECRET) && !d.contains(&digest), "{d}");
    }

    #[test]
    fn toml_errors_name_the_line_not_its_text() {
        for text in [
            format!("[[token]]\nname = \"a\"\nrole = \"officer\"\nsecret = \"{SECRET}\" junk\n"),
            format!("[[token]]\nname = \"a\"\nrole = \"officer\"\nsecret = \"{SECRET}\nx = 1\n"),
            format!("[[token]]\nname = \"a\"\nrole = \"{SECRET}\"\nsecret = \"x\"\n"),
            "[[token]]\nname = \"a\"\nrole = \"officer\"\nsecret = 1234567890123456789\n".into(),
            format!("[[token]]\nname = \"a\"\nrole = \"officer\"\nsecret = \"{SECRET}\"\nsecrett = \"{SECRET}\"\n"),
        ] {
            let e = format!("{:#}", Tokens::parse(&text, "t.toml").unwrap_err());
            assert!(!e.contains("hunter2") && !e.contains("1234567890"), "{e}");
            assert!(e.contains("line "), "{e}");
        }
    }

    #[test]
    fn digests_and_plain_secrets_both_authenticate() {
        let digest = hex(&sha256(SECRET.as_bytes()));
        let text = format!(
            "[[token]]\nname = \"a\"\nrole = \"officer\"\nsecret_sha256 = \"{digest}\"\n\
             [[token]]\nname = \"b\"\nrole = \"viewer\"\nsecret = \"viewer-secret-0123456789\"\n"
        );
        let t = Tokens::parse(&text, "t").unwrap();
        let bearer = format!("Bearer {SECRET}");
        assert_eq!(
            t.check(Some(&bearer), Permission::ReadDecisions),
            Check::Allowed("a".into(), Role::Officer)
        );
        assert_eq!(
            t.check(Some(&bearer), Permission::ReadPolicy),
            Check::Forbidden("a".into(), Role::Officer)
        );
        assert_eq!(
            t.check(
                Some("Bearer viewer-secret-0123456789"),
                Permission::ReadPolicy
            ),
            Check::Allowed("b".into(), Role::Viewer)
        );
        assert_eq!(
            t.check(Some("Bearer nope-nope-nope-nope"), Permission::ReadPolicy),
            Check::Unauthenticated
        );
        // The epoch follows the file's content.
        let t2 = Tokens::parse(&text.replace("\"b\"", "\"c\""), "t").unwrap();
        assert_ne!(t.epoch(), t2.epoch());
        assert!(Tokens::parse(&text.replace(&digest, "abc"), "t").is_err());
    }
}
