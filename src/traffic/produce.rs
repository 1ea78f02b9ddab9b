//! Loading records into the Kafka topics (`borderlane produce`, and the tests): a producer that counts
//! deliveries, and the keying rules for partner and manifest lines.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use serde::Deserialize;

use crate::service::config::Config;
use crate::service::kafka::clients::{client_config, Role};
use crate::service::kafka::cutoff::{CutOff, STATISTICS_INTERVAL_MS};
use crate::traffic::gen::{GenConfig, Generator};

/// Delivery outcomes, updated by the producer's callback thread.
#[derive(Default)]
pub struct Counts {
    /// Records the broker acknowledged.
    pub delivered: AtomicU64,
    /// Records the broker refused or that timed out.
    pub failed: AtomicU64,
    /// The first delivery error, for the report.
    pub first_error: Mutex<Option<String>>,
}

/// Counts delivery reports, and watches the producer's statistics for a producer cut off from every
/// broker (`cutoff`).
pub struct CountingContext {
    counts: Arc<Counts>,
    cut_off: CutOff,
}

impl ClientContext for CountingContext {
    fn stats_raw(&self, statistics: &[u8]) {
        self.cut_off.watch_raw(statistics, "loader's producer");
    }
}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.counts.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.counts.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self
                    .counts
                    .first_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                if first.is_none() {
                    *first = Some(e.to_string());
                }
            }
        }
    }
}

/// A producer for loading topics; see the module documentation.
pub struct Loader {
    /// Idempotent producer with the configured client properties.
    producer: ThreadedProducer<CountingContext>,
    /// Delivery outcomes.
    counts: Arc<Counts>,
    /// Records handed to the producer.
    sent: u64,
}

/// What a [`Loader`] delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Records handed to the producer.
    pub sent: u64,
    /// Records the broker acknowledged.
    pub delivered: u64,
    /// Records that failed (`flush` then returns an error instead).
    pub failed: u64,
}

impl Loader {
    pub fn new(config: &Config) -> anyhow::Result<Loader> {
        let counts = Arc::new(Counts::default());
        let mut client = client_config(&config.kafka, Role::Loader);
        // Statistics for the cut-off watch alone, unless configured.
        if client.get("statistics.interval.ms").is_none() {
            client.set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
        }
        let producer = client
            .create_with_context(CountingContext {
                counts: counts.clone(),
                cut_off: CutOff::default(),
            })
            .map_err(|e| anyhow!("creating the producer: {e}"))?;
        Ok(Loader {
            producer,
            counts,
            sent: 0,
        })
    }

    /// Sends one record (a `None` value is a tombstone / null record), waiting while the local queue is
    /// full.
    pub fn send(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: Option<OwnedHeaders>,
    ) -> anyhow::Result<()> {
        let mut record: BaseRecord<'_, [u8], [u8], ()> = BaseRecord::to(topic);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(v) = value {
            record = record.payload(v);
        }
        if let Some(h) = headers {
            record = record.headers(h);
        }
        // One atomic load a record: a paced run (`--rate`) whose queue never fills learns of a cut-off here.
        self.check_cut_off()?;
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    self.check_cut_off()?;
                    record = r;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((e, _)) => bail!("cannot send to {topic}: {e}"),
            }
        }
        self.sent += 1;
        Ok(())
    }

    /// The error of a producer cut off from every broker for good (`cutoff`): its records would never
    /// be delivered, so waiting for them is pointless.
    fn check_cut_off(&self) -> anyhow::Result<()> {
        if self.producer.context().cut_off.tripped() {
            bail!(
                "{}; loading stops with {} of {} records delivered (a new run connects again)",
                CutOff::cause("loader's producer"),
                self.counts.delivered.load(Ordering::Relaxed),
                self.sent
            );
        }
        Ok(())
    }

    /// Waits for every record's delivery report (at most `timeout`; less when the producer is cut off
    /// from every broker, see [`CutOff`]).
    pub fn flush(&self, timeout: Duration) -> anyhow::Result<Delivered> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.producer.flush(left.min(Duration::from_secs(1))) {
                Ok(()) => break,
                Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)) if !left.is_zero() => {
                    self.check_cut_off()?
                }
                Err(e) => bail!("flushing the producer: {e}"),
            }
        }
        let d = Delivered {
            sent: self.sent,
            delivered: self.counts.delivered.load(Ordering::Relaxed),
            failed: self.counts.failed.load(Ordering::Relaxed),
        };
        if d.failed > 0 {
            let first = self
                .counts
                .first_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .unwrap_or_default();
            bail!(
                "{} of {} records were not delivered (first error: {first})",
                d.failed,
                d.sent
            );
        }
        Ok(d)
    }
}

#[derive(Deserialize)]
struct PartnerKey<'a> {
    /// The record key.
    #[serde(borrow)]
    partner_id: std::borrow::Cow<'a, str>,
    /// The file's way of writing a Kafka tombstone.
    #[serde(default)]
    tombstone: bool,
}

#[derive(Deserialize)]
struct ManifestKey<'a> {
    /// The record key.
    #[serde(borrow)]
    manifest_id: std::borrow::Cow<'a, str>,
}

/// A partner line as a Kafka record: key `partner_id`; `{"partner_id": …, "tombstone": true}` becomes a
/// tombstone (null value). A line whose `partner_id` cannot be read is keyed `line-N` (the compacted topic
/// refuses records without a key) and sent as-is: the service counts it as a bad partner record.
pub fn partner_record(line_no: u64, line: &[u8]) -> (Vec<u8>, Option<&[u8]>) {
    match serde_json::from_slice::<PartnerKey<'_>>(line) {
        Ok(p) if p.tombstone => (p.partner_id.as_bytes().to_vec(), None),
        Ok(p) => (p.partner_id.as_bytes().to_vec(), Some(line)),
        Err(_) => (format!("line-{line_no}").into_bytes(), Some(line)),
    }
}

/// A manifest line's key: its `manifest_id` where readable, else none. The value is the line as-is.
pub fn manifest_key(line: &[u8]) -> Option<Vec<u8>> {
    serde_json::from_slice::<ManifestKey<'_>>(line)
        .ok()
        .map(|m| m.manifest_id.as_bytes().to_vec())
}

/// The records of an NDJSON file: lines without their `\n` (and a `\r` before it), blank lines skipped,
/// numbered from 1.
pub fn ndjson_lines(data: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    data.split(|b| *b == b'\n')
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l.strip_suffix(b"\r").unwrap_or(l)))
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
}

/// Sleeps as needed so that `sent` records take at least `sent / rate` seconds from `started`
/// (`rate` 0: no pacing).
pub fn pace(started: Instant, sent: u64, rate: u64) {
    if rate == 0 {
        return;
    }
    let due = Duration::from_secs_f64(sent as f64 / rate as f64);
    if let Some(wait) = due.checked_sub(started.elapsed()) {
        if wait >= Duration::from_millis(1) {
            std::thread::sleep(wait);
        }
    }
}

/// What a load sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    /// Partner records with a value.
    pub partners: u64,
    /// Partner tombstones.
    pub tombstones: u64,
    /// Manifest records.
    pub manifests: u64,
    /// Manifest records sent without a key (no readable `manifest_id`).
    pub unkeyed: u64,
    /// Generated manifests meant to be dead letters.
    pub bad: u64,
}

/// Sends NDJSON partner lines (see [`partner_record`]) to the partner topic and waits for them.
pub fn partners_file(loader: &mut Loader, config: &Config, data: &[u8]) -> anyhow::Result<Sent> {
    let mut sent = Sent::default();
    for (n, line) in ndjson_lines(data) {
        let (key, value) = partner_record(n, line);
        match value {
            Some(_) => sent.partners += 1,
            None => sent.tombstones += 1,
        }
        loader.send(&config.kafka.topics.partners, Some(&key), value, None)?;
    }
    loader.flush(Duration::from_secs(120))?;
    Ok(sent)
}

/// Sends NDJSON manifest lines as-is, keyed by `manifest_id` where readable, at most `rate` per second.
pub fn manifests_file(
    loader: &mut Loader,
    config: &Config,
    data: &[u8],
    rate: u64,
) -> anyhow::Result<Sent> {
    let mut sent = Sent::default();
    let started = Instant::now();
    for (_, line) in ndjson_lines(data) {
        pace(started, sent.manifests, rate);
        let key = manifest_key(line);
        sent.manifests += 1;
        sent.unkeyed += u64::from(key.is_none());
        loader.send(
            &config.kafka.topics.manifests,
            key.as_deref(),
            Some(line),
            None,
        )?;
    }
    loader.flush(Duration::from_secs(120))?;
    Ok(sent)
}

/// The generator `produce --generate` uses: ports and watch list from the service's policy, oversized
/// bad records just above the service's `limits.max_bytes`.
pub fn generator(
    config: &Config,
    seed: u64,
    partners: usize,
    bad_share: f64,
) -> anyhow::Result<Generator> {
    let policy = crate::service::load_policy(config)?;
    Ok(Generator::new(
        GenConfig {
            seed,
            partners,
            bad_share,
            oversized_bytes: config.limits.limits().max_bytes + 1,
            ..GenConfig::default()
        },
        &policy,
    ))
}

/// Sends the generator's partners (keyed by `partner_id`) and waits for them.
pub fn generated_partners(
    loader: &mut Loader,
    config: &Config,
    g: &Generator,
) -> anyhow::Result<Sent> {
    let mut sent = Sent::default();
    for p in g.partners() {
        let value = serde_json::to_vec(p)?;
        loader.send(
            &config.kafka.topics.partners,
            Some(p.partner_id.as_bytes()),
            Some(&value),
            None,
        )?;
        sent.partners += 1;
    }
    loader.flush(Duration::from_secs(120))?;
    Ok(sent)
}

/// Sends generated records `0..n` (good and bad), keyed by `manifest_id` where readable, at most `rate`
/// per second.
pub fn generated_manifests(
    loader: &mut Loader,
    config: &Config,
    g: &Generator,
    n: u64,
    rate: u64,
) -> anyhow::Result<Sent> {
    let mut sent = Sent::default();
    let started = Instant::now();
    for i in 0..n {
        pace(started, i, rate);
        let r = g.record(i);
        let bytes = r.to_bytes();
        let key = manifest_key(&bytes);
        sent.manifests += 1;
        sent.unkeyed += u64::from(key.is_none());
        sent.bad += u64::from(matches!(r, crate::traffic::gen::Record::Bad { .. }));
        loader.send(
            &config.kafka.topics.manifests,
            key.as_deref(),
            Some(&bytes),
            None,
        )?;
    }
    loader.flush(Duration::from_secs(120))?;
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// End to end against librdkafka itself: a loader whose producer learned its broker and is then told
    /// by it that the cluster has no broker (librdkafka#5301's trigger, from a fake broker that never
    /// answers a produce) fails its flush with the cause, read from the producer's real statistics.
    #[test]
    fn a_loader_librdkafka_cut_off_for_good_fails_its_flush() {
        use crate::service::kafka::cutoff::fake_broker;
        let broker = fake_broker::start();
        // Metadata every second, so that the fake broker's empty answer comes soon after it is asked for.
        let config = Config::from_text(
            &format!(
                "[kafka]\nbootstrap_servers = \"{}\"\n[kafka.producer]\n\
                 \"topic.metadata.refresh.interval.ms\" = \"1000\"\n",
                broker.bootstrap
            ),
            Vec::new(),
            std::path::Path::new(""),
        )
        .unwrap();
        let mut loader = Loader::new(&config).unwrap();
        loader.send("t", Some(b"k"), Some(b"v"), None).unwrap();
        let learned = loader
            .producer
            .client()
            .fetch_metadata(Some("t"), Duration::from_secs(10))
            .is_ok_and(|m| m.brokers().len() == 1);
        assert!(learned, "the producer learns the fake broker");
        broker
            .empty
            .store(true, std::sync::atomic::Ordering::SeqCst);
        assert_flush_fails_with_the_cause(&loader);
    }

    /// The flush's timeout is three times the cut-off time: a flush that waited it out would fail with the
    /// timeout, not the cause.
    fn assert_flush_fails_with_the_cause(loader: &Loader) {
        let timeout = 3 * crate::service::kafka::cutoff::CUT_OFF_AFTER;
        let e = format!("{:#}", loader.flush(timeout).unwrap_err());
        assert!(
            e.contains("librdkafka#5301") && e.contains("0 of 1 records delivered"),
            "{e}"
        );
    }

    /// A loader whose producer is cut off from every broker (librdkafka#5301) fails its flush with the
    /// cause at the next check, instead of waiting out the flush's timeout for records that will never be
    /// delivered.
    #[test]
    fn a_cut_off_loader_fails_its_flush_instead_of_waiting() {
        // Nothing listens on port 1; no statistics, so that only the test moves the watch.
        let config = Config::from_text(
            "[kafka]\nbootstrap_servers = \"127.0.0.1:1\"\n[kafka.producer]\n\"statistics.interval.ms\" = \"0\"\n",
            Vec::new(),
            std::path::Path::new(""),
        )
        .unwrap();
        let mut loader = Loader::new(&config).unwrap();
        loader.send("t", Some(b"k"), Some(b"v"), None).unwrap();
        let watch = &loader.producer.context().cut_off;
        let now = Instant::now();
        watch.observe(
            now.checked_sub(crate::service::kafka::cutoff::CUT_OFF_AFTER)
                .expect("the machine has been up for a while"),
            false,
        );
        watch.observe(now, false);
        assert!(watch.tripped());
        assert_flush_fails_with_the_cause(&loader);
    }

    #[test]
    fn keys_follow_the_wire_contract() {
        let (k, v) = partner_record(1, br#"{"partner_id":"CTP-1","status":"validated"}"#);
        assert_eq!((k.as_slice(), v.is_some()), (&b"CTP-1"[..], true));
        let (k, v) = partner_record(2, br#"{"partner_id":"CTP-1","tombstone":true}"#);
        assert_eq!((k.as_slice(), v), (&b"CTP-1"[..], None));
        let (k, v) = partner_record(3, b"{not json");
        assert_eq!((k.as_slice(), v), (&b"line-3"[..], Some(&b"{not json"[..])));
        assert_eq!(
            manifest_key(br#"{"manifest_id":"M-1","x":[1]}"#),
            Some(b"M-1".to_vec())
        );
        assert_eq!(manifest_key(b"[1]"), None);
        assert_eq!(
            manifest_key(br#"{"manifest_id":"A\"B"}"#),
            Some(b"A\"B".to_vec())
        );
        let lines: Vec<_> = ndjson_lines(b"a\r\n\n  \nb\nc").collect();
        assert_eq!(lines, vec![(1, &b"a"[..]), (4, &b"b"[..]), (5, &b"c"[..])]);
    }
}
