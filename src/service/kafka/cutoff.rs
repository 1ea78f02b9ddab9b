//! The cut-off watch: a Kafka client left without any broker to connect to, for good.
//!
//! After a broker restart, librdkafka 2.12 can take a metadata response that lists no broker as the truth:
//! it drops every broker it knows, the bootstrap ones included, and stops re-bootstrapping
//! (confluentinc/librdkafka#5301, not fixed in a release). The client then never connects again: a manifest
//! consumer's group session times out and the instance sits deciding nothing, `/readyz`-ready; a follower
//! keeps a stale table; a producer holds its records until `message.timeout.ms` (5 minutes at-least-once)
//! fails them; `borderlane produce` waits out its flush. Seen in `scripts/chaos` runs with a broker restart
//! on 2026-12-06 (docs/reliability.md); in the healthy restarts the learned broker stays listed (`INIT`,
//! then `UP`).
//!
//! A client whose statistics list no learned or configured broker for [`CUT_OFF_AFTER`] is in that state.
//! The service's clients — the manifest consumer, every topic follower, the decisions producer — then stop
//! the instance (a fatal error, as for a fenced instance) so that a supervisor restarts it with new clients;
//! `borderlane produce` fails with the cause instead of waiting. The watch needs the client's statistics
//! (`statistics.interval.ms`, 1 s by default for these clients; 0 turns it off). To be removed once a
//! librdkafka release has the fix (PR #5303): a client that re-bootstraps by itself would still be
//! restarted after `CUT_OFF_AFTER`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::statistics::Statistics;
use serde::Deserialize;
use tracing::warn;

/// How long a client may have no broker to connect to before the instance stops.
pub const CUT_OFF_AFTER: Duration = Duration::from_secs(30);

/// The statistics interval the watched clients get unless configured otherwise (the consumers' defaults
/// carry it for their own uses too; the producers get it for the watch alone).
pub const STATISTICS_INTERVAL_MS: &str = "1000";

/// See the module documentation.
#[derive(Debug, Default)]
pub struct CutOff {
    /// Since when the statistics have listed no broker (`None`: the last ones listed one).
    since: Mutex<Option<Instant>>,
    tripped: AtomicBool,
}

/// What the watch reads of a statistics report when nothing else of it is wanted (a producer's): the
/// brokers' sources, every other field skipped without being built.
#[derive(Deserialize)]
struct BrokersOnly {
    #[serde(default)]
    brokers: HashMap<String, SourceOnly>,
}

#[derive(Deserialize)]
struct SourceOnly {
    #[serde(default)]
    source: String,
}

impl CutOff {
    /// One statistics report at `now`: whether it listed a broker the client can connect to. Returns true
    /// for the first report of a stretch without one (the count starts).
    pub fn observe(&self, now: Instant, has_broker: bool) -> bool {
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        if has_broker {
            *since = None;
            return false;
        }
        let started = since.is_none();
        let first = *since.get_or_insert(now);
        if now.saturating_duration_since(first) >= CUT_OFF_AFTER {
            self.tripped.store(true, Ordering::Release);
        }
        started
    }

    pub fn tripped(&self) -> bool {
        self.tripped.load(Ordering::Acquire)
    }

    /// Whether brokers of these `sources` (librdkafka's `brokers.*.source`) include one the client can
    /// connect to: one learned from metadata or configured in `bootstrap.servers` (not the logical group
    /// coordinator or the internal one, which need a real one).
    pub fn lists_a_broker<'a>(sources: impl IntoIterator<Item = &'a str>) -> bool {
        sources
            .into_iter()
            .any(|s| s == "learned" || s == "configured")
    }

    /// [`CutOff::lists_a_broker`] of a parsed statistics report.
    pub fn has_broker(stats: &Statistics) -> bool {
        CutOff::lists_a_broker(stats.brokers.values().map(|b| b.source.as_str()))
    }

    /// [`CutOff::observe`] of one statistics report, now, warning when the count starts (`which`: the
    /// client, for the log); nothing once tripped. Returns true when this report tripped the watch.
    pub fn watch(&self, stats: &Statistics, which: impl std::fmt::Display) -> bool {
        if self.tripped() {
            return false;
        }
        self.watch_sources(CutOff::has_broker(stats), which)
    }

    /// [`CutOff::watch`] of a raw statistics report, reading only its brokers (for a client whose
    /// statistics serve nothing else). A report that cannot be read is logged and not counted.
    pub fn watch_raw(&self, statistics: &[u8], which: impl std::fmt::Display) -> bool {
        if self.tripped() {
            return false;
        }
        match serde_json::from_slice::<BrokersOnly>(statistics) {
            Ok(b) => self.watch_sources(
                CutOff::lists_a_broker(b.brokers.values().map(|s| s.source.as_str())),
                which,
            ),
            Err(e) => {
                warn!(client = %which, error = %e, "librdkafka statistics not understood");
                false
            }
        }
    }

    fn watch_sources(&self, has_broker: bool, which: impl std::fmt::Display) -> bool {
        if self.observe(Instant::now(), has_broker) {
            warn!(
                client = %which,
                after_s = CUT_OFF_AFTER.as_secs(),
                "a client lists no broker to connect to (librdkafka#5301?); the instance stops unless one \
                 reappears"
            );
        }
        self.tripped()
    }

    /// What a tripped watch on `which` client found.
    pub fn cause(which: &str) -> String {
        format!(
            "the {which} has had no broker to connect to for {} s (librdkafka dropped every broker it knew \
             and stopped re-bootstrapping, confluentinc/librdkafka#5301)",
            CUT_OFF_AFTER.as_secs()
        )
    }

    /// The service's fatal error of a tripped watch on `which` client.
    pub fn message(which: &str) -> String {
        format!(
            "{}; this instance stops so that a restart connects again",
            CutOff::cause(which)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cut-off watch (librdkafka#5301): only a client that has listed no learned or configured broker for
    /// `CUT_OFF_AFTER` trips it; the logical coordinator alone does not count, and a broker listed again
    /// (a broker restart's INIT, then UP) starts the count over.
    #[test]
    fn a_consumer_left_without_any_broker_stops_the_instance_after_the_cut_off_time() {
        use rdkafka::statistics::Broker;
        let stats_with = |sources: &[&str]| {
            let mut stats = Statistics::default();
            for (i, source) in sources.iter().enumerate() {
                stats.brokers.insert(
                    format!("b{i}"),
                    Broker {
                        source: source.to_string(),
                        state: "INIT".into(),
                        ..Broker::default()
                    },
                );
            }
            stats
        };
        let none = stats_with(&["logical"]);
        assert!(!CutOff::has_broker(&none));
        assert!(!CutOff::has_broker(&stats_with(&["logical", "internal"])));
        assert!(!CutOff::has_broker(&stats_with(&[])));
        let learned = stats_with(&["learned", "logical"]);
        assert!(CutOff::has_broker(&learned));
        assert!(CutOff::has_broker(&stats_with(&["configured"])));

        let c = CutOff::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(
            c.observe(at(0), CutOff::has_broker(&none)),
            "the count starts"
        );
        assert!(!c.observe(at(29), CutOff::has_broker(&none)));
        assert!(!c.tripped(), "29 s without a broker");
        // A broker listed again starts the count over.
        assert!(!c.observe(at(29), CutOff::has_broker(&learned)));
        assert!(
            c.observe(at(30), CutOff::has_broker(&none)),
            "it starts again"
        );
        c.observe(at(59), CutOff::has_broker(&none));
        assert!(!c.tripped(), "29 s since the broker was last listed");
        c.observe(at(60), CutOff::has_broker(&none));
        assert!(c.tripped(), "30 s without a broker");
        // Once tripped it stays so: the instance stops.
        c.observe(at(61), CutOff::has_broker(&learned));
        assert!(c.tripped());
    }

    /// A producer's raw statistics are read for their brokers alone: librdkafka's real report shapes, a
    /// report without a broker, and one that cannot be read (not counted either way).
    #[test]
    fn raw_statistics_are_read_for_the_brokers_sources_alone() {
        let with = |sources: &[&str]| {
            let brokers: Vec<String> = sources
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    format!(
                        r#""b{i}":{{"name":"b{i}","nodeid":{i},"source":"{s}","state":"INIT","stateage":1,
                        "outbuf_cnt":0,"rtt":{{"min":0,"max":0,"avg":0}},"toppars":{{}}}}"#
                    )
                })
                .collect();
            format!(
                r#"{{"name":"rdkafka#producer-1","type":"producer","ts":1,"time":1,"replyq":0,
                "brokers":{{{}}},"topics":{{"decisions":{{"topic":"decisions","partitions":{{}}}}}}}}"#,
                brokers.join(",")
            )
        };
        let c = CutOff::default();
        let t0 = Instant::now();
        c.watch_raw(with(&["logical"]).as_bytes(), "producer");
        let since = *c.since.lock().unwrap();
        assert!(
            since.is_some_and(|s| s >= t0),
            "the count started: {since:?}"
        );
        c.watch_raw(with(&["configured", "logical"]).as_bytes(), "producer");
        assert!(c.since.lock().unwrap().is_none(), "a broker listed again");
        c.watch_raw(with(&[]).as_bytes(), "producer");
        assert!(c.since.lock().unwrap().is_some(), "no broker at all");
        c.watch_raw(with(&["learned"]).as_bytes(), "producer");
        assert!(c.since.lock().unwrap().is_none());
        c.watch_raw(b"{\"brokers\": 3}", "producer");
        c.watch_raw(b"not json", "producer");
        assert!(
            c.since.lock().unwrap().is_none(),
            "a report that cannot be read is not counted"
        );
        assert!(!c.tripped());
    }
}
