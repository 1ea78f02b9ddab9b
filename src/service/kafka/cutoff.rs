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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// Statistics reports observed.
    reports: AtomicU64,
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
        self.reports.fetch_add(1, Ordering::Relaxed);
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

    /// How many statistics reports the watch has observed.
    pub fn reports(&self) -> u64 {
        self.reports.load(Ordering::Relaxed)
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

/// A fake Kafka broker for the end-to-end tests of the watch: just enough of the protocol (ApiVersions,
/// Metadata v1, InitProducerId for an idempotent producer) for librdkafka to learn it as broker 1; once
/// told to (`empty`), it answers metadata with no broker and the topic still listed — what a
/// shutting-down broker answered in librdkafka#5301's report ("0 brokers, 1 topics"). Every other request
/// (a fetch, a produce) goes unanswered.
#[cfg(test)]
pub(crate) mod fake_broker {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    pub struct FakeBroker {
        pub bootstrap: String,
        pub empty: Arc<AtomicBool>,
    }

    pub fn start() -> FakeBroker {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let empty = Arc::new(AtomicBool::new(false));
        let flag = empty.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let flag = flag.clone();
                std::thread::spawn(move || serve(stream, port, &flag));
            }
        });
        FakeBroker {
            bootstrap: format!("127.0.0.1:{port}"),
            empty,
        }
    }

    fn serve(mut s: TcpStream, port: u16, empty: &AtomicBool) {
        loop {
            let mut size = [0u8; 4];
            if s.read_exact(&mut size).is_err() {
                return;
            }
            let mut req = vec![0u8; i32::from_be_bytes(size).max(0) as usize];
            if s.read_exact(&mut req).is_err() || req.len() < 8 {
                return;
            }
            let api_key = i16::from_be_bytes([req[0], req[1]]);
            let version = i16::from_be_bytes([req[2], req[3]]);
            let mut body = req[4..8].to_vec(); // the response header: the correlation id
            match api_key {
                18 => api_versions(&mut body, version),
                22 => {
                    // InitProducerId v0/v1: no throttle, no error, producer id 1000, epoch 0.
                    body.extend(0i32.to_be_bytes());
                    body.extend(0i16.to_be_bytes());
                    body.extend(1000i64.to_be_bytes());
                    body.extend(0i16.to_be_bytes());
                }
                3 => metadata(&mut body, &req, port, empty.load(Ordering::SeqCst)),
                _ => continue,
            }
            let mut frame = (body.len() as i32).to_be_bytes().to_vec();
            frame.extend(body);
            if s.write_all(&frame).is_err() {
                return;
            }
        }
    }

    /// ApiVersions 0..=3, Metadata 0..=1, InitProducerId 0..=1 and Produce 3 (never answered) (a v3
    /// answer is flexible: compact array, tagged fields).
    fn api_versions(b: &mut Vec<u8>, version: i16) {
        let apis: [(i16, i16, i16); 4] = [(18, 0, 3), (3, 0, 1), (22, 0, 1), (0, 3, 3)];
        b.extend(0i16.to_be_bytes());
        if version >= 3 {
            b.push(apis.len() as u8 + 1);
            for (k, min, max) in apis {
                b.extend(k.to_be_bytes());
                b.extend(min.to_be_bytes());
                b.extend(max.to_be_bytes());
                b.push(0);
            }
            b.extend(0i32.to_be_bytes());
            b.push(0);
        } else {
            b.extend((apis.len() as i32).to_be_bytes());
            for (k, min, max) in apis {
                b.extend(k.to_be_bytes());
                b.extend(min.to_be_bytes());
                b.extend(max.to_be_bytes());
            }
            if version >= 1 {
                b.extend(0i32.to_be_bytes());
            }
        }
    }

    fn string(b: &mut Vec<u8>, s: &str) {
        b.extend((s.len() as i16).to_be_bytes());
        b.extend(s.as_bytes());
    }

    /// Metadata v0/v1: broker 1 (this one) unless `empty`, and every requested topic with partition 0 led
    /// by broker 1.
    fn metadata(b: &mut Vec<u8>, req: &[u8], port: u16, empty: bool) {
        let version = i16::from_be_bytes([req[2], req[3]]);
        // Request header v1: key, version, correlation id, client id; then the topics array.
        let client_len = i16::from_be_bytes([req[8], req[9]]).max(0) as usize;
        let mut at = 10 + client_len;
        let mut topics = Vec::new();
        let count = i32::from_be_bytes(req[at..at + 4].try_into().unwrap());
        at += 4;
        for _ in 0..count.max(0) {
            let n = i16::from_be_bytes([req[at], req[at + 1]]) as usize;
            topics.push(String::from_utf8_lossy(&req[at + 2..at + 2 + n]).into_owned());
            at += 2 + n;
        }
        b.extend(i32::from(!empty).to_be_bytes());
        if !empty {
            b.extend(1i32.to_be_bytes());
            string(b, "127.0.0.1");
            b.extend(i32::from(port).to_be_bytes());
            if version >= 1 {
                b.extend((-1i16).to_be_bytes()); // rack: null
            }
        }
        if version >= 1 {
            b.extend(1i32.to_be_bytes()); // controller
        }
        b.extend((topics.len() as i32).to_be_bytes());
        for t in &topics {
            b.extend(0i16.to_be_bytes());
            string(b, t);
            if version >= 1 {
                b.push(0); // is_internal
            }
            b.extend(1i32.to_be_bytes());
            b.extend(0i16.to_be_bytes());
            b.extend(0i32.to_be_bytes()); // partition 0
            b.extend(1i32.to_be_bytes()); // leader: broker 1
            for _ in 0..2 {
                b.extend(1i32.to_be_bytes()); // replicas, then in-sync replicas: [1]
                b.extend(1i32.to_be_bytes());
            }
        }
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

    /// End to end against librdkafka itself: a follower's client that learned its broker and is then told
    /// by it that the cluster has no broker (librdkafka#5301's trigger, from a fake broker) is left
    /// without any broker for good, and the watch on its real statistics stops it; a follower of a broker
    /// that keeps listing itself (otherwise the same, and as slow to answer anything else) is not stopped.
    #[test]
    fn a_client_librdkafka_cut_off_for_good_is_caught_by_its_statistics() {
        use crate::service::config::Config;
        use crate::service::kafka::clients::{client_config, Role};
        use crate::service::kafka::follow::FollowerContext;
        use crate::service::metrics::{Client, Metrics};
        use crate::service::Shutdown;
        use rdkafka::consumer::{BaseConsumer, Consumer};
        use rdkafka::{Offset, TopicPartitionList};
        use std::path::Path;
        use std::sync::Arc;

        let follower = |bootstrap: &str| {
            // Metadata every second, so that the fake broker's empty answer comes soon after it is asked for.
            let text = format!(
                "[kafka]\nbootstrap_servers = \"{bootstrap}\"\n[kafka.consumer]\n\
                 \"topic.metadata.refresh.interval.ms\" = \"1000\"\n"
            );
            let config = Config::from_text(&text, Vec::new(), Path::new("")).unwrap();
            let ctx = FollowerContext::new(
                Arc::new(Metrics::new()),
                "partners",
                Client::PartnerConsumer,
                |_, _, _| {},
            );
            let c: BaseConsumer<FollowerContext> =
                client_config(&config.kafka, Role::PartnerConsumer)
                    .create_with_context(ctx)
                    .unwrap();
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset("partners", 0, Offset::Beginning)
                .unwrap();
            c.assign(&tpl).unwrap();
            c
        };
        let (cut, healthy) = (fake_broker::start(), fake_broker::start());
        let (a, b) = (follower(&cut.bootstrap), follower(&healthy.bootstrap));
        let (sa, sb) = (Shutdown::new(), Shutdown::new());
        let poll = |c: &BaseConsumer<FollowerContext>| {
            if let Some(Err(e)) = c.poll(Duration::from_millis(50)) {
                eprintln!("{e}");
            }
        };
        // Both learn broker 1 from their first metadata.
        let learned = |c: &BaseConsumer<FollowerContext>| {
            c.fetch_metadata(Some("partners"), Duration::from_secs(10))
                .is_ok_and(|m| m.brokers().len() == 1)
        };
        assert!(learned(&a) && learned(&b), "both learn the fake broker");
        cut.empty.store(true, Ordering::SeqCst);
        // The watch needs CUT_OFF_AFTER without a broker; allow three times that.
        let deadline = Instant::now() + 3 * CUT_OFF_AFTER;
        let stopped = loop {
            poll(&a);
            poll(&b);
            if let Err(e) = a.context().cut_off(&sa) {
                break format!("{e:#}");
            }
            assert!(
                Instant::now() < deadline,
                "the cut-off client was not caught in {:?}",
                3 * CUT_OFF_AFTER
            );
        };
        assert!(
            stopped.contains("follower of partners") && stopped.contains("librdkafka#5301"),
            "{stopped}"
        );
        assert!(sa.is_triggered());
        // It had reports all along (a watch without any would not trip either), and none of the last
        // CUT_OFF_AFTER's listed no broker.
        assert!(
            b.context().watch().reports() >= 10,
            "reports: {}",
            b.context().watch().reports()
        );
        assert!(
            b.context().cut_off(&sb).is_ok() && !sb.is_triggered(),
            "the follower whose broker kept listing itself runs on"
        );
    }
}
