//! Business resumption in the service: the [`Board`] of declarations in force (every pipeline takes one
//! snapshot of it per manifest and passes it to `score::process_with`), the control record that carries a
//! declaration between instances, the admin request's validation, and the [`Publisher`] through which a
//! change is made — the compacted control topic with Kafka (`serve`: every instance follows it, so all apply
//! it and it survives restarts), in process without it (`demo`).
//!
//! Control records: key `resumption/<port>`, value a JSON [`ControlRecord`]; a tombstone (null value) ends
//! the port's declaration. Other key prefixes are reserved for later control kinds and ignored.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context};
use arc_swap::ArcSwap;
use borderlane_core::codes::PortCode;
use borderlane_core::policy::CompiledPolicy;
use borderlane_core::schema::PathError;
use borderlane_core::time::Timestamp;
use borderlane_core::wire::check_name;
use borderlane_core::{Declaration, Resumptions};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// Key prefix of resumption records on the control topic.
pub const KEY_PREFIX: &str = "resumption/";

/// Longest reason accepted, bytes.
pub const MAX_REASON_BYTES: usize = 500;

/// The control topic key of a port's declaration.
pub fn key(port: PortCode) -> String {
    format!("{KEY_PREFIX}{port}")
}

/// The port a control key names, if it is a resumption key (`Err` for a resumption key with a bad port;
/// `Ok(None)` for another kind of key).
pub fn port_of_key(key: &str) -> Result<Option<PortCode>, String> {
    match key.strip_prefix(KEY_PREFIX) {
        None => Ok(None),
        Some(p) => PortCode::parse(p)
            .map(Some)
            .ok_or_else(|| format!("key {key:?} does not name a 4-digit port code")),
    }
}

/// A declaration as it travels on the control topic and as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlRecord {
    pub port: String,
    pub declared_at: String,
    pub until: String,
    pub reason: String,
    pub declared_by: String,
}

impl ControlRecord {
    pub fn of(d: &Declaration) -> ControlRecord {
        ControlRecord {
            port: d.port.to_string(),
            declared_at: d.declared_at.to_string(),
            until: d.until.to_string(),
            reason: d.reason.to_string(),
            declared_by: d.declared_by.to_string(),
        }
    }
}

/// Decodes a control record's value for the port its key names. Bad records are skipped by the follower
/// (logged and counted), never applied.
pub fn decode(port: PortCode, value: &[u8]) -> Result<Declaration, String> {
    let r: ControlRecord = serde_json::from_slice(value).map_err(|e| e.to_string())?;
    if r.port != port.as_str() {
        return Err(format!("value's port {:?} is not the key's {port}", r.port));
    }
    let ts = |field: &str, s: &str| {
        Timestamp::parse(s).ok_or_else(|| format!("{field} {s:?} is not an RFC 3339 timestamp"))
    };
    let declared_at = ts("declared_at", &r.declared_at)?;
    let until = ts("until", &r.until)?;
    if until <= declared_at {
        return Err("until is not after declared_at".into());
    }
    check_name(|| "reason".into(), &r.reason).map_err(|e| e.message)?;
    check_name(|| "declared_by".into(), &r.declared_by).map_err(|e| e.message)?;
    Ok(Declaration {
        port,
        declared_at,
        until,
        reason: r.reason.into(),
        declared_by: r.declared_by.into(),
    })
}

/// The JSON value of a declaration on the control topic.
pub fn encode(d: &Declaration) -> Vec<u8> {
    serde_json::to_vec(&ControlRecord::of(d)).unwrap_or_default()
}

/// Validates `PUT /admin/ports/{code}/resumption` (`{"until": RFC 3339, "reason": text}`) declared at
/// `now` by `actor`: the port must be in the policy's port table, `until` after `now` and at most `max`
/// after it, the reason non-empty text in the name character set of at most [`MAX_REASON_BYTES`]; unknown
/// fields are refused. Every error comes back, each with its path.
pub fn parse_request(
    port: &str,
    body: &[u8],
    policy: &CompiledPolicy,
    now: Timestamp,
    max: Duration,
    actor: &str,
) -> Result<Declaration, Vec<PathError>> {
    let mut errors = Vec::new();
    let mut err = |path: &str, message: String| {
        errors.push(PathError {
            path: path.into(),
            message,
        })
    };
    let code = match PortCode::parse(port) {
        Some(c) if policy.port(c).is_some() => Some(c),
        Some(_) => {
            err(
                "port",
                format!("port {port} is not in the policy's port table"),
            );
            None
        }
        None => {
            err("port", format!("{port:?} is not a 4-digit port code"));
            None
        }
    };
    let doc: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            err("", format!("the body is not JSON: {e}"));
            return Err(errors);
        }
    };
    let Some(obj) = doc.as_object() else {
        err(
            "",
            "the body must be a JSON object {\"until\", \"reason\"}".into(),
        );
        return Err(errors);
    };
    for k in obj.keys().filter(|k| *k != "until" && *k != "reason") {
        err(k, "unknown field (expected until, reason)".into());
    }
    let until = match obj.get("until") {
        None => {
            err("until", "required (RFC 3339 end time)".into());
            None
        }
        Some(serde_json::Value::String(s)) => match Timestamp::parse(s) {
            None => {
                err("until", format!("{s:?} is not an RFC 3339 timestamp"));
                None
            }
            Some(t) if t <= now => {
                err(
                    "until",
                    format!("{t} is not in the future (declared at {now})"),
                );
                None
            }
            Some(t) if t.unix_nanos() - now.unix_nanos() > max.as_nanos() as i128 => {
                err(
                    "until",
                    format!(
                        "{t} is more than {} hours after the declaration ({now}); admin.max_resumption_hours",
                        max.as_secs() / 3600
                    ),
                );
                None
            }
            Some(t) => Some(t),
        },
        Some(_) => {
            err("until", "must be a string (RFC 3339)".into());
            None
        }
    };
    let reason = match obj.get("reason") {
        None => {
            err("reason", "required (why the port resumes business)".into());
            None
        }
        Some(serde_json::Value::String(s)) => {
            if s.trim().is_empty() {
                err("reason", "must not be empty".into());
                None
            } else if s.len() > MAX_REASON_BYTES {
                err(
                    "reason",
                    format!("{} bytes; at most {MAX_REASON_BYTES}", s.len()),
                );
                None
            } else if let Err(e) = check_name(|| "reason".into(), s) {
                err("reason", e.message);
                None
            } else {
                Some(s.clone())
            }
        }
        Some(_) => {
            err("reason", "must be a string".into());
            None
        }
    };
    match (code, until, reason) {
        (Some(port), Some(until), Some(reason)) if errors.is_empty() => Ok(Declaration {
            port,
            declared_at: now,
            until,
            reason: reason.into(),
            declared_by: actor.into(),
        }),
        _ => Err(errors),
    }
}

/// The declarations this instance applies, read by every scoring thread through one atomic snapshot.
pub struct Board {
    /// What the pipelines score with (swapped whole on every change).
    current: Arc<ArcSwap<Resumptions>>,
    /// The same declarations by port, and every port that ever had one (its gauge then shows 0).
    state: Mutex<(BTreeMap<PortCode, Declaration>, BTreeSet<PortCode>)>,
    /// Next offset to apply, per control partition: a writer waits here until its own record is applied.
    applied: watch::Sender<HashMap<i32, i64>>,
}

impl Default for Board {
    fn default() -> Self {
        Board::new()
    }
}

impl Board {
    pub fn new() -> Board {
        Board {
            current: Arc::new(ArcSwap::from_pointee(Resumptions::NONE)),
            state: Mutex::default(),
            applied: watch::channel(HashMap::new()).0,
        }
    }

    /// The pointer the pipelines load a snapshot from, once per manifest.
    pub fn handle(&self) -> Arc<ArcSwap<Resumptions>> {
        self.current.clone()
    }

    /// The declarations in force now.
    pub fn snapshot(&self) -> Arc<Resumptions> {
        self.current.load_full()
    }

    /// Sets (or with `None` ends) the declaration of `port`.
    pub fn apply(&self, port: PortCode, declaration: Option<Declaration>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.1.insert(port);
        match declaration {
            Some(d) => state.0.insert(port, d),
            None => state.0.remove(&port),
        };
        self.current
            .store(Arc::new(Resumptions::new(state.0.values().cloned())));
    }

    /// Every port that has had a declaration since start, with whether one is in force at `now` (the
    /// `borderlane_port_resumption_active` gauge: the wall clock is only for showing the mode, decisions
    /// judge by `filed_at`).
    pub fn active_at(&self, now: &Timestamp) -> Vec<(PortCode, bool)> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state
            .1
            .iter()
            .map(|p| (*p, state.0.get(p).is_some_and(|d| d.covers(now))))
            .collect()
    }

    /// The follower applied everything of `partition` before `next`.
    pub fn applied_up_to(&self, partition: i32, next: i64) {
        self.applied.send_modify(|m| {
            let e = m.entry(partition).or_insert(next);
            *e = (*e).max(next);
        });
    }

    /// Waits until the record at `offset` of `partition` has been applied (or `timeout`); true if it was.
    pub async fn wait_applied(&self, partition: i32, offset: i64, timeout: Duration) -> bool {
        let mut rx = self.applied.subscribe();
        tokio::time::timeout(
            timeout,
            rx.wait_for(|m| m.get(&partition).is_some_and(|n| *n > offset)),
        )
        .await
        .is_ok_and(|r| r.is_ok())
    }
}

/// How a change reaches every instance.
pub enum Publisher {
    /// `demo`: no Kafka; the change applies to this process's board at once.
    InProcess,
    /// `serve`: written to the control topic; this instance's follower applies it like every other
    /// instance's does.
    Kafka(KafkaPublisher),
}

/// A producer of control records.
pub struct KafkaPublisher {
    producer: rdkafka::producer::FutureProducer,
    topic: String,
    /// How long a write waits for the broker, and then for this instance's follower to apply it.
    timeout: Duration,
}

impl KafkaPublisher {
    pub fn new(config: &crate::service::config::Config) -> anyhow::Result<KafkaPublisher> {
        use crate::service::kafka::clients::{client_config, Role};
        // The loader's properties: idempotent, acks=all, never transactional.
        // No statistics, whatever `[kafka.producer]` says: nothing reads them, and the default context
        // would log each report whole.
        let producer = client_config(&config.kafka, Role::Loader)
            .set("statistics.interval.ms", "0")
            .create()
            .map_err(|e| anyhow!("creating the control producer: {e}"))?;
        Ok(KafkaPublisher {
            producer,
            topic: config.kafka.topics.control.clone(),
            timeout: Duration::from_millis(config.kafka.startup_timeout_ms),
        })
    }
}

/// What a publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Written and applied by this instance.
    Applied,
    /// Written (the broker acknowledged it) but this instance's follower had not applied it within the
    /// timeout; it will.
    Written,
}

impl Publisher {
    /// Sets (or with `None` ends) the declaration of `port` for every instance.
    pub async fn publish(
        &self,
        board: &Board,
        port: PortCode,
        declaration: Option<&Declaration>,
    ) -> anyhow::Result<Published> {
        match self {
            Publisher::InProcess => {
                board.apply(port, declaration.cloned());
                Ok(Published::Applied)
            }
            Publisher::Kafka(k) => {
                use rdkafka::producer::FutureRecord;
                let key = key(port);
                let value = declaration.map(encode);
                let mut record = FutureRecord::<str, [u8]>::to(&k.topic).key(&key);
                if let Some(v) = &value {
                    record = record.payload(v);
                }
                let delivered = k
                    .producer
                    .send(record, k.timeout)
                    .await
                    .map_err(|(e, _)| anyhow!("{e}"))
                    .with_context(|| format!("writing {key} to the control topic {}", k.topic))?;
                Ok(
                    if board
                        .wait_applied(delivered.partition, delivered.offset, k.timeout)
                        .await
                    {
                        Published::Applied
                    } else {
                        Published::Written
                    },
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn policy() -> CompiledPolicy {
        crate::load::policy::default_policy()
    }

    const NOW: &str = "2026-12-01T10:00:00Z";
    const WEEK: Duration = Duration::from_secs(168 * 3600);

    #[test]
    fn a_valid_request_is_declared_now_by_the_actor() {
        let d = parse_request(
            "2304",
            br#"{"until":"2026-12-02T10:00:00Z","reason":"bridge reopened after the flood"}"#,
            &policy(),
            ts(NOW),
            WEEK,
            "alice",
        )
        .unwrap();
        assert_eq!(d.port.as_str(), "2304");
        assert_eq!(d.declared_at, ts(NOW));
        assert_eq!(d.until, ts("2026-12-02T10:00:00Z"));
        assert_eq!(&*d.declared_by, "alice");
        // The control record round-trips.
        assert_eq!(decode(d.port, &encode(&d)).unwrap(), d);
    }

    #[test]
    fn every_error_comes_back_with_its_path() {
        let paths = |port: &str, body: &str| -> Vec<String> {
            parse_request(port, body.as_bytes(), &policy(), ts(NOW), WEEK, "a")
                .unwrap_err()
                .into_iter()
                .map(|e| e.path)
                .collect()
        };
        assert_eq!(
            paths(
                "9999",
                r#"{"until":"2026-12-01T09:00:00Z","reason":" ","x":1}"#
            ),
            ["port", "x", "until", "reason"]
        );
        assert_eq!(
            paths(
                "23O4",
                r#"{"until":"2026-12-20T10:00:00Z","reason":"a\u202eb"}"#
            ),
            ["port", "until", "reason"]
        );
        assert_eq!(paths("2304", r#"{}"#), ["until", "reason"]);
        assert_eq!(
            paths("2304", r#"{"until":"tomorrow","reason":7}"#),
            ["until", "reason"]
        );
        assert_eq!(paths("2304", "not json"), [""]);
        assert_eq!(paths("2304", "[1]"), [""]);
        let long = "x".repeat(MAX_REASON_BYTES + 1);
        assert_eq!(
            paths(
                "2304",
                &format!(r#"{{"until":"2026-12-02T10:00:00Z","reason":"{long}"}}"#)
            ),
            ["reason"]
        );
        // Exactly the maximum is accepted; a nanosecond more is not.
        let ok = parse_request(
            "2304",
            br#"{"until":"2026-12-08T10:00:00Z","reason":"r"}"#,
            &policy(),
            ts(NOW),
            WEEK,
            "a",
        );
        assert!(ok.is_ok(), "{ok:?}");
        assert_eq!(
            paths(
                "2304",
                r#"{"until":"2026-12-08T10:00:00.000000001Z","reason":"r"}"#
            ),
            ["until"]
        );
    }

    #[test]
    fn bad_control_records_are_refused() {
        let p = PortCode::parse("2304").unwrap();
        assert!(decode(p, b"{").is_err());
        let rec = |port: &str, from: &str, until: &str| {
            format!(
                r#"{{"port":"{port}","declared_at":"{from}","until":"{until}","reason":"r","declared_by":"a"}}"#
            )
        };
        assert!(decode(p, rec("2304", NOW, "2026-12-02T00:00:00Z").as_bytes()).is_ok());
        assert!(decode(p, rec("3801", NOW, "2026-12-02T00:00:00Z").as_bytes()).is_err());
        assert!(decode(p, rec("2304", NOW, NOW).as_bytes()).is_err());
        assert_eq!(port_of_key("resumption/2304"), Ok(Some(p)));
        assert_eq!(port_of_key("other/2304"), Ok(None));
        assert!(port_of_key("resumption/23").is_err());
    }

    #[tokio::test]
    async fn the_board_swaps_whole_snapshots_and_tells_writers() {
        let b = Board::new();
        let p = PortCode::parse("2304").unwrap();
        let d = Declaration {
            port: p,
            declared_at: ts(NOW),
            until: ts("2026-12-02T00:00:00Z"),
            reason: "r".into(),
            declared_by: "a".into(),
        };
        let before = b.snapshot();
        Publisher::InProcess.publish(&b, p, Some(&d)).await.unwrap();
        assert!(before.is_empty(), "an old snapshot never changes");
        assert_eq!(b.snapshot().get(p), Some(&d));
        assert_eq!(b.active_at(&ts("2026-12-01T12:00:00Z")), [(p, true)]);
        assert_eq!(b.active_at(&ts("2026-12-02T00:00:00Z")), [(p, false)]);
        Publisher::InProcess.publish(&b, p, None).await.unwrap();
        assert!(b.snapshot().is_empty());
        assert_eq!(b.active_at(&ts("2026-12-01T12:00:00Z")), [(p, false)]);
        assert!(!b.wait_applied(0, 5, Duration::from_millis(10)).await);
        b.applied_up_to(0, 6);
        assert!(b.wait_applied(0, 5, Duration::from_millis(10)).await);
    }
}
