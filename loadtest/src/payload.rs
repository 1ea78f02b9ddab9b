//! What the load generator sends: manifests from the seeded generator, generated once before the run as
//! templates and cycled, each send stamped with its own manifest id `LT-<seq>` (10 digits) in place — so
//! sending costs a copy, not a generation. The id is also the Kafka key, which the service copies to
//! decisions (their key is the manifest id) and dead letters (the input key), so every output names the
//! sequence number it answers.

pub use borderlane::traffic::gen::partner_records;
use borderlane::traffic::gen::{partner_pool, GenConfig, Generator, Record};
use borderlane_core::policy::CompiledPolicy;
use borderlane_core::wire::ErrorKind;

/// Prefix of every manifest id and key the harness sends.
pub const ID_PREFIX: &[u8] = b"LT-";
/// Digits of the sequence number in an id.
pub const ID_DIGITS: usize = 10;
/// Length of a whole id.
pub const ID_LEN: usize = ID_PREFIX.len() + ID_DIGITS;

/// The id (and key) of sequence number `seq`.
pub fn id(seq: u64) -> [u8; ID_LEN] {
    let mut out = [b'0'; ID_LEN];
    out[..ID_PREFIX.len()].copy_from_slice(ID_PREFIX);
    write_digits(&mut out[ID_PREFIX.len()..], seq);
    out
}

fn write_digits(out: &mut [u8], mut seq: u64) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (seq % 10) as u8;
        seq /= 10;
    }
}

/// The sequence number in a key, if it is one of ours.
pub fn parse_id(key: &[u8]) -> Option<u64> {
    let digits = key.strip_prefix(ID_PREFIX)?;
    if digits.len() != ID_DIGITS || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0')),
    )
}

/// One pre-generated record.
struct Template {
    /// The record's bytes, with a placeholder id where `id_at` says.
    bytes: Vec<u8>,
    /// Offset of the id's digits in `bytes` (good manifests); bad records carry their id only in the key.
    id_at: Option<usize>,
}

/// The cycled records of a run; see the module documentation.
pub struct Templates {
    /// Record `seq` is `items[seq % len]`.
    items: Vec<Template>,
    /// How many of them are malformed (for the report).
    pub bad: usize,
}

impl Templates {
    /// `n` records from the generator (a `bad_share` of them malformed).
    pub fn generate(
        policy: &CompiledPolicy,
        seed: u64,
        partners: usize,
        bad_share: f64,
        n: usize,
    ) -> Templates {
        let generator = Generator::new(
            GenConfig {
                seed,
                partners: partner_pool(partners),
                bad_share,
                ..GenConfig::default()
            },
            policy,
        );
        let placeholder = {
            let mut p = b"\"manifest_id\":\"".to_vec();
            p.extend_from_slice(&id(0));
            p.push(b'"');
            p
        };
        let mut bad = 0;
        // An `oversized` record (over 1 MiB) is refused by the broker itself on a manifests topic with the
        // default max.message.bytes, so it never reaches the service: the mix leaves it out.
        let items = (0..)
            .map(|i| generator.record(i))
            .filter(|r| {
                !matches!(
                    r,
                    Record::Bad {
                        kind: ErrorKind::Oversized,
                        ..
                    }
                )
            })
            .take(n)
            .map(|r| match r {
                Record::Good(mut m) => {
                    m.manifest_id = String::from_utf8_lossy(&id(0)).as_ref().into();
                    let bytes = Record::Good(m).to_bytes();
                    let id_at = bytes
                        .windows(placeholder.len())
                        .position(|w| w == placeholder.as_slice())
                        .map(|p| p + placeholder.len() - 1 - ID_DIGITS);
                    assert!(
                        id_at.is_some(),
                        "manifest_id not found in a serialised manifest"
                    );
                    Template { bytes, id_at }
                }
                Record::Bad { bytes, .. } => {
                    // Sent as-is (an `empty` one as an empty value): the service answers with a dead letter.
                    bad += 1;
                    Template { bytes, id_at: None }
                }
            })
            .collect();
        Templates { items, bad }
    }

    /// Number of distinct records.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none (never, for a generated set).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Writes the value of record `seq` into `buf`.
    pub fn fill(&self, seq: u64, buf: &mut Vec<u8>) {
        let t = &self.items[(seq % self.items.len() as u64) as usize];
        buf.clear();
        buf.extend_from_slice(&t.bytes);
        if let Some(at) = t.id_at {
            write_digits(&mut buf[at..at + ID_DIGITS], seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use borderlane_core::wire::{parse_manifest, Limits};

    #[test]
    fn ids_round_trip() {
        assert_eq!(&id(42), b"LT-0000000042");
        assert_eq!(parse_id(&id(9_876_543_210)), Some(9_876_543_210));
        assert_eq!(parse_id(b"LT-12"), None);
        assert_eq!(parse_id(b"XX-0000000042"), None);
        assert_eq!(parse_id(b"LT-00000000a2"), None);
    }

    #[test]
    fn every_send_carries_its_own_id_and_stays_valid() {
        let policy = borderlane::load::policy::default_policy();
        let t = Templates::generate(&policy, 7, 500, 0.2, 50);
        assert_eq!(t.len(), 50);
        assert!(t.bad > 0 && t.bad < 50, "{} bad", t.bad);
        let mut buf = Vec::new();
        let mut good = 0;
        for seq in [3u64, 53, 1_000_003] {
            t.fill(seq, &mut buf);
            if let Ok(m) = parse_manifest(&buf, &Limits::default()) {
                assert_eq!(m.manifest_id.as_bytes(), &id(seq));
                good += 1;
            }
        }
        assert!(good > 0);
    }

    #[test]
    fn partner_records_are_exactly_n_and_keyed_by_id() {
        let policy = borderlane::load::policy::default_policy();
        let p = partner_records(&policy, 1, 300);
        assert_eq!(p.len(), 300);
        let v: serde_json::Value = serde_json::from_slice(&p[0].1).unwrap();
        assert_eq!(v["partner_id"], p[0].0.as_str());
    }
}
