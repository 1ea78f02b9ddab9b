//! The manifest pipeline: consume (consumer group) → score with the core → emit through the [`Sink`].
//!
//! One dedicated thread runs the consumer loop. It polls a batch (up to [`MAX_BATCH`] records: it waits for
//! the first and takes what the consumer already holds), has the batch parsed, scored and encoded by the
//! scoring threads (`service.scoring_threads`, one per CPU by default; a batch of fewer than
//! [`PARALLEL_FROM`] (32) records — no backlog — is scored on this thread, so a quiet stream pays no hand-off), and emits the
//! outputs itself, one by one in the order they were polled: a batch on the scoring threads chunk by chunk
//! ([`EMIT_CHUNK`] records) as they finish, while the rest of it is still being scored. The sink therefore sees exactly the sequence a
//! single-threaded loop would produce: per-partition order, the at-least-once offset tracking and the
//! exactly-once transaction boundaries do not depend on the number of scoring threads.
//!
//! librdkafka's rebalance callbacks run on this same thread (in `poll`), so a revoke can block there until
//! the revoked partitions' outputs are acknowledged and their offsets committed, without stalling an async
//! runtime. A revoke or an exactly-once rewind while a batch is being collected drops the batch's records
//! that will be read again (nothing of a batch is emitted before the batch is complete).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use arc_swap::ArcSwap;
use borderlane_core::history::{History, HistoryAsOf, Watermark};
use borderlane_core::policy::CompiledPolicy;
use borderlane_core::score::{process_json, Lookups};
use borderlane_core::table::PartnerTable;
use borderlane_core::wire::{BadInput, ErrorKind, Limits, Str};
use borderlane_core::Resumptions;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;
use tracing::{debug, info, warn};

use crate::service::config::Config;
use crate::service::kafka::clients::{client_config, Role};
use crate::service::kafka::cutoff::CutOff;
use crate::service::kafka::sink::{Origin, Output, Sink};
use crate::service::metrics::{Client, Metrics};
use crate::service::stall::{is_fetching, Sample};
use crate::service::{Brief, ForWatchers, Graves, Readiness, Shutdown, Watchers};

/// Longest pause between two offset stores while messages flow.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(5);

/// The manifest consumer's context: rebalances drain the sink; statistics feed the lag gauges and the
/// stall detector behind `/readyz`.
pub struct PipelineContext {
    /// Drained and committed on revoke; told about assignments.
    sink: Arc<Sink>,
    /// Lag gauges and error counts.
    metrics: Arc<Metrics>,
    /// Its stall detector is fed the lag and positions of the assigned partitions.
    readiness: Arc<Readiness>,
    /// Input topic, to pick its partitions out of statistics.
    topic: String,
    /// Input partitions revoked since the pipeline last looked ([`PipelineContext::take_revoked`]): records
    /// of theirs polled before the revoke but not yet emitted are dropped (their next owner reads them).
    revoked: Mutex<Vec<i32>>,
    /// Whether `revoked` has anything (saves the lock on every poll).
    any_revoked: AtomicBool,
    /// Whether the consumer has been left without a broker to connect to (see [`CutOff`]).
    cut_off: CutOff,
    /// When the consumer last lost touch with its group coordinator (see [`CoordinatorLoss`]).
    coordinator_loss: CoordinatorLoss,
}

impl PipelineContext {
    /// The input partitions revoked since the last call.
    fn take_revoked(&self) -> Vec<i32> {
        if !self.any_revoked.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        std::mem::take(&mut *self.revoked.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl ClientContext for PipelineContext {
    /// Runs on the pipeline thread (inside `poll`), so its whole cost — librdkafka's statistics JSON
    /// parsed, then the lag gauges and the stall detector fed — is timed as the `stats` step.
    fn stats_raw(&self, statistics: &[u8]) {
        let started = Instant::now();
        match serde_json::from_slice::<Statistics>(statistics) {
            Ok(stats) => self.stats_of(stats),
            Err(e) => warn!(error = %e, "librdkafka statistics not understood"),
        }
        self.metrics.pipeline_step("stats", started.elapsed());
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.coordinator_loss.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.metrics.kafka_error(Client::ManifestConsumer);
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
            // The consume loop reads the fatal error and stops the instance.
            tracing::error!(error = %error, reason, "fatal manifest consumer error");
        } else {
            warn!(error = %error, reason, "manifest consumer error (librdkafka retries)");
        }
    }
}

impl PipelineContext {
    fn stats_of(&self, stats: Statistics) {
        self.cut_off.watch(&stats, "manifest consumer");
        let Some(t) = stats.topics.get(&self.topic) else {
            // No partition of the input topic assigned (or no statistics of it yet).
            self.readiness.stall().observe(Instant::now(), []);
            return;
        };
        let unfetched = self.readiness.stall().observe_fetching(
            Instant::now(),
            t.partitions
                .values()
                .filter(|p| p.partition >= 0 && p.desired)
                .map(|p| (p.partition, Sample::from_stats(p), is_fetching(p))),
        );
        for p in unfetched {
            let state = t.partitions.get(&p).map_or("", |s| s.fetch_state.as_str());
            warn!(
                topic = %self.topic,
                partition = p,
                fetch_state = state,
                after_ms = self.readiness.stall().after().as_millis() as u64,
                "an assigned manifest partition is not being fetched (stalled; most likely its \
                 committed offset is held by an open or hanging transaction, in either delivery mode: \
                 docs/serve.md, \"/readyz\")"
            );
        }
        for p in t.partitions.values() {
            if p.partition < 0 || !p.desired {
                continue;
            }
            let lag = if p.consumer_lag_stored >= 0 {
                p.consumer_lag_stored
            } else {
                p.consumer_lag
            };
            if lag >= 0 {
                self.metrics.consumer_lag(&self.topic, p.partition, lag);
            }
        }
    }
}

impl PipelineContext {
    /// A rebalance callback's work (see [`ConsumerContext::pre_rebalance`]).
    fn rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                info!(partitions = tpl.count(), "partitions assigned");
                self.sink.assigned(tpl);
            }
            Rebalance::Revoke(tpl) => {
                self.revoked
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(
                        tpl.elements_for_topic(&self.topic)
                            .iter()
                            .map(|e| e.partition()),
                    );
                self.any_revoked.store(true, Ordering::Release);
                self.readiness.stall().forget(
                    tpl.elements_for_topic(&self.topic)
                        .iter()
                        .map(|e| e.partition()),
                );
                self.sink.revoked(consumer, tpl)
            }
            Rebalance::Error(e) => warn!(error = %e, "rebalance error"),
        }
    }
}

impl ConsumerContext for PipelineContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let started = Instant::now();
        self.rebalance(consumer, rebalance);
        self.metrics.pipeline_step("rebalance", started.elapsed());
    }

    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        _offsets: &rdkafka::TopicPartitionList,
    ) {
        self.sink.commit_done(&result);
    }
}

/// Whether a consumer error reported by `poll` is known not to skip any input record (connection and
/// coordinator trouble that librdkafka retries; a topic or partition the cluster's metadata does not list
/// for a moment, as from a broker that has just restarted — librdkafka refreshes the metadata and fetches
/// on from the same offset: three-broker chaos seed 47 stopped an instance on it). Every other error may
/// stand for records the consumer skipped (`_AUTO_OFFSET_RESET`, `OFFSET_OUT_OF_RANGE`, a corrupt batch,
/// lost authorization …) and stops the instance: the skipped offsets have no outcome, and continuing would
/// commit past them. A dead letter for the gap is not possible — the error does not say which offsets
/// were skipped.
pub fn consumer_error_is_transient(e: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    match e {
        KafkaError::PartitionEOF(_) => true,
        KafkaError::MessageConsumption(code) => matches!(
            code,
            C::BrokerTransportFailure
                | C::AllBrokersDown
                | C::Resolve
                | C::OperationTimedOut
                | C::RequestTimedOut
                | C::NetworkException
                | C::NotCoordinator
                | C::CoordinatorNotAvailable
                | C::CoordinatorLoadInProgress
                | C::LeaderNotAvailable
                | C::NotLeaderForPartition
                | C::UnknownTopicOrPartition
                | C::RebalanceInProgress
                | C::UnknownMemberId
                | C::IllegalGeneration
                | C::PollExceeded
                | C::BrokerDestroy
        ),
        _ => false,
    }
}

/// How long after losing touch with its group coordinator a static member's fencing is taken for
/// librdkafka#3437 rather than for a second instance with the same id: the fencings seen in chaos runs came
/// 0–10 s after it.
const COORDINATOR_LOSS_WINDOW: Duration = Duration::from_secs(60);

/// When a group consumer last lost touch with its group coordinator, read from librdkafka's log:
/// `SESSTMOUT` (no answer from the coordinator for `session.timeout.ms`), `MAXPOLL` (not polled for
/// `max.poll.interval.ms`), or a failure of the coordinator's connection (`FAIL` on librdkafka's
/// `GroupCoordinator` thread, e.g. while that broker fails over). librdkafka then rejoins, and a static
/// member's rejoin can take the place of its own membership, so the coordinator fences it with
/// `FENCED_INSTANCE_ID` although no other instance has its id (librdkafka#3437; six of fourteen instance
/// self-exits over 13 chaos runs, five after a `SESSTMOUT` and one after the coordinator's connection
/// failed). [`fatal_consumer_error`] words its message by this. The lines are logged at warning or above
/// (`clients::client_config` keeps librdkafka's level at least there for the group members).
#[derive(Debug, Default)]
pub struct CoordinatorLoss(Mutex<Option<Instant>>);

impl CoordinatorLoss {
    /// What a consumer context's `log` does: notes a lost touch with the coordinator, then logs the line as
    /// rust-rdkafka's default context does.
    pub fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        if fac == "SESSTMOUT"
            || fac == "MAXPOLL"
            || (fac == "FAIL" && message.starts_with("[thrd:GroupCoordinator]"))
        {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        }
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => {
                tracing::error!(target: "librdkafka", "librdkafka: {fac} {message}")
            }
            L::Warning => warn!(target: "librdkafka", "librdkafka: {fac} {message}"),
            L::Notice | L::Info => info!(target: "librdkafka", "librdkafka: {fac} {message}"),
            L::Debug => debug!(target: "librdkafka", "librdkafka: {fac} {message}"),
        }
    }

    /// Whether touch with the coordinator was lost within [`COORDINATOR_LOSS_WINDOW`] before `now`.
    pub fn recent(&self, now: Instant) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| now.saturating_duration_since(at) <= COORDINATOR_LOSS_WINDOW)
    }
}

/// The message to stop with if `client` (a group consumer; `which`: "manifest", "outcome dead-letter") has
/// a fatal error: the instance stops (nothing more is consumed; a restart resumes at the committed offsets).
/// `FENCED_INSTANCE_ID` means the group coordinator gave this static member's id (`group.instance.id` =
/// `kafka.instance_id`) to a newer member: another instance runs with the same `kafka.instance_id`, this
/// one's restart was faster than its own shutdown — or, when it comes soon after the consumer lost touch
/// with its coordinator (`coordinator_loss`, see [`CoordinatorLoss`]), librdkafka's rejoin replaced its own
/// membership (librdkafka#3437).
pub fn fatal_consumer_error<C: rdkafka::ClientContext>(
    which: &str,
    client: &rdkafka::client::Client<C>,
    instance_id: Option<&str>,
    coordinator_loss: &CoordinatorLoss,
) -> Option<String> {
    let (code, reason) = client.fatal_error()?;
    Some(fatal_message(
        which,
        code,
        &reason,
        instance_id,
        coordinator_loss.recent(Instant::now()),
    ))
}

/// [`fatal_consumer_error`]'s message.
fn fatal_message(
    which: &str,
    code: RDKafkaErrorCode,
    reason: &str,
    instance_id: Option<&str>,
    coordinator_lost: bool,
) -> String {
    let id = instance_id.unwrap_or("");
    match code {
        RDKafkaErrorCode::FencedInstanceId if coordinator_lost => format!(
            "the {which} consumer was fenced (FENCED_INSTANCE_ID) soon after it lost touch with its group \
             coordinator (its session timed out or the coordinator's connection failed, e.g. while a broker \
             failed over): librdkafka's rejoin then takes the place of its own static membership \
             (librdkafka#3437), so this is most likely not another instance with kafka.instance_id = \
             {id:?}; this instance stops, and a restart resumes at the committed offsets (should it happen \
             with no broker fault, look for a second running instance with this kafka.instance_id) \
             ({reason})"
        ),
        RDKafkaErrorCode::FencedInstanceId => format!(
            "the {which} consumer was fenced by a newer group member with the same group.instance.id \
             (kafka.instance_id = {id:?}): ANOTHER RUNNING INSTANCE IS CONFIGURED WITH THIS \
             kafka.instance_id, which must be unique per running instance; this instance stops ({reason})"
        ),
        _ => format!("fatal {which} consumer error ({code:?}): {reason}; this instance stops"),
    }
}

/// Most records scored and emitted as one batch.
const MAX_BATCH: usize = 256;

/// Smaller batches are scored on the pipeline thread. Below a backlog the consumer hands over a few records
/// per poll; waking the pool for them costs more than it saves, and rayon's workers spin for a while after
/// each job, taking CPU from the broker and the producer on a small machine (a 2-CPU run at 2 000/s with
/// a threshold of 4 had a worse tail than the single-threaded loop). Batches this large mean a backlog.
const PARALLEL_FROM: usize = 32;

/// What scoring one record gave (the decision's JSON is in the record's buffer), or why it is a dead
/// letter. Unboxed: moved once into the batch's vector, cheaper than an allocation per record; emitting
/// reads it in place and takes only what the watchers keep, so the vector can be freed whole on the
/// scoring threads.
type Scored = Result<Decided, BadInput>;

/// What emitting a decision needs. The decision is written without being built (`score::process_json`), and
/// the manifest, unless a what-if window keeps it, is freed where it was built, right after the decision is
/// written: freed a batch later by whichever
/// scoring thread dropped the batch, their ~15 blocks a record went past that thread's allocator cache into
/// the other thread's arena, and the next batch's allocations took glibc's slow path (docs/performance.md,
/// "Freeing where it was built").
struct Decided {
    /// The manifest's id: the output record's key.
    id: Str,
    /// What the output's headers, the metrics and the officers' feed read.
    brief: Brief,
    /// What the watchers keep (the feed's item, the manifest for a what-if window), made ready here so
    /// the pipeline thread only hands it over.
    watch: ForWatchers,
}

/// Everything one batch is scored against: shared by the scoring threads, read-only.
struct Scorer<'a> {
    policy: &'a CompiledPolicy,
    table: &'a PartnerTable,
    history: Option<HistoryAsOf<'a>>,
    limits: &'a Limits,
    resumptions: &'a Resumptions,
    metrics: &'a Metrics,
    /// The feed and the what-if window, for what they keep of each decision (see [`Decided`]).
    watchers: &'a Watchers,
}

impl Scorer<'_> {
    /// Parses, scores and encodes one record's value into `buf`.
    fn score(&self, payload: Option<&[u8]>, buf: &mut Vec<u8>) -> Scored {
        let started = Instant::now();
        buf.clear();
        let decided_at = crate::clock::now();
        // The decision's JSON is written straight into `buf` (no `Decision` built; the same bytes).
        let result = match payload {
            None => Err(BadInput::new(
                ErrorKind::Empty,
                "null value on the manifests topic",
            )),
            Some(bytes) => process_json(
                self.policy,
                Lookups::new(self.table, self.history),
                bytes,
                self.limits,
                self.resumptions,
                decided_at.as_ref(),
                buf,
            ),
        };
        self.metrics.scored(started.elapsed());
        result.map(|(manifest, verdict)| {
            let brief = Brief::of_verdict(&verdict, &manifest, self.resumptions, decided_at);
            let id = manifest.manifest_id.clone();
            let watch = self.watchers.prepare(manifest, &id, &brief, buf);
            Decided { id, brief, watch }
        })
    }
}

/// Scores `payloads` into `buffers` in order on the calling thread (a batch smaller than [`PARALLEL_FROM`]
/// on the pipeline thread; a chunk of a larger one on a scoring thread, see [`score_emitting`]), freeing
/// each record's share of what the watchers let go (`graves`, one a record) right before scoring it.
fn score_all(
    scorer: &Scorer<'_>,
    payloads: &[Option<&[u8]>],
    buffers: &mut [Vec<u8>],
    graves: &mut [Graves],
) -> Vec<Scored> {
    payloads
        .iter()
        .zip(buffers.iter_mut())
        .zip(graves.iter_mut())
        .map(|((payload, buf), graves)| {
            drop(std::mem::take(graves));
            scorer.score(*payload, buf)
        })
        .collect()
}

/// Records a scoring thread scores before handing them to the pipeline thread to emit, when a batch is
/// scored on the pool ([`score_emitting`]): a full batch is 16 chunks, so its first outputs leave after
/// about an eighth of its scoring time on two scoring threads, at the cost of 16 channel messages a batch.
const EMIT_CHUNK: usize = 16;

/// What [`score_emitting`] leaves behind: the emission's outcome, every record's [`Scored`] by chunk (for
/// the caller to free, on the pool), and how long the calling thread waited for the scoring threads.
struct ScoredEmitted {
    emitted: anyhow::Result<()>,
    scored: Vec<Vec<Scored>>,
    waited: Duration,
}

/// Scores `payloads` into `buffers` on `pool`, [`EMIT_CHUNK`] records a task (`score(chunk, payloads,
/// buffers, graves)`: [`score_all`] in the service), and meanwhile, on the calling thread, calls `emit(i,
/// scored, json)` for every record in poll order as soon as it and every record before it are scored — so
/// a backlog's batch is emitted while the rest of it is still being scored, instead of after (the pipeline
/// thread's emitting and the scoring threads' work overlap, where they used to take turns). `emit` returns
/// whether to go on: after `false` or an error, nothing more is emitted (the rest is still scored, then
/// dropped). Each record's share of `graves` is freed right before it is scored, on the thread that scores
/// it.
fn score_emitting<S>(
    pool: &rayon::ThreadPool,
    score: S,
    payloads: &[Option<&[u8]>],
    buffers: &mut [Vec<u8>],
    graves: &mut [Graves],
    mut emit: impl FnMut(usize, &mut Scored, &[u8]) -> anyhow::Result<bool>,
) -> ScoredEmitted
where
    S: Fn(usize, &[Option<&[u8]>], &mut [Vec<u8>], &mut [Graves]) -> Vec<Scored> + Sync,
{
    debug_assert!(buffers.len() == payloads.len() && graves.len() == payloads.len());
    let chunks = payloads.len().div_ceil(EMIT_CHUNK);
    let mut out = ScoredEmitted {
        emitted: Ok(()),
        scored: Vec::with_capacity(chunks),
        waited: Duration::ZERO,
    };
    pool.in_place_scope(|scope| {
        // Each task hands back its chunk's index, what it scored and its (mutably borrowed) buffers.
        type Chunk<'b> = (Vec<Scored>, &'b mut [Vec<u8>]);
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Chunk<'_>)>();
        let tasks = payloads
            .chunks(EMIT_CHUNK)
            .zip(buffers.chunks_mut(EMIT_CHUNK))
            .zip(graves.chunks_mut(EMIT_CHUNK))
            .enumerate();
        let score = &score;
        for (c, ((payloads, buffers), graves)) in tasks {
            let tx = tx.clone();
            scope.spawn(move |_| {
                let scored = score(c, payloads, buffers, graves);
                // The body receives every chunk before it returns, so this fails only while it unwinds
                // from a panic (which the scope raises again once every task is done).
                let _ = tx.send((c, (scored, buffers)));
            });
        }
        drop(tx);
        // Chunks finish in any order; each waits here until the ones before it are emitted.
        let mut arrived: Vec<Option<Chunk<'_>>> = (0..chunks).map(|_| None).collect();
        let mut going = true;
        for next in 0..chunks {
            while arrived[next].is_none() {
                let waiting = Instant::now();
                let received = rx.recv();
                out.waited += waiting.elapsed();
                match received {
                    Ok((c, chunk)) => arrived[c] = Some(chunk),
                    // Every sender is gone with a chunk missing: a task panicked, which the scope
                    // raises again on this thread once the body returns.
                    Err(_) => break,
                }
            }
            let Some((mut scored, buffers)) = arrived[next].take() else {
                out.emitted = Err(anyhow!("scoring chunk {next} of {chunks} never arrived"));
                return;
            };
            for (i, (s, json)) in scored.iter_mut().zip(buffers.iter()).enumerate() {
                if !going {
                    break;
                }
                match emit(next * EMIT_CHUNK + i, s, json) {
                    Ok(true) => {}
                    Ok(false) => going = false,
                    Err(e) => {
                        out.emitted = Err(e);
                        going = false;
                    }
                }
            }
            out.scored.push(scored);
        }
    });
    out
}

/// See the module documentation.
pub struct Pipeline {
    /// Group member on the manifest topic; subscribed only once the partner table is complete.
    consumer: BaseConsumer<PipelineContext>,
    /// Where decisions and dead letters go.
    sink: Arc<Sink>,
    /// Current policy; each manifest is scored against one snapshot.
    policy: Arc<ArcSwap<CompiledPolicy>>,
    /// Partner table, kept current by the follower.
    table: Arc<PartnerTable>,
    /// Record limits.
    limits: Limits,
    /// Scoring latency.
    metrics: Arc<Metrics>,
    /// Told when the consumer runs.
    readiness: Arc<Readiness>,
    /// Stops the loop.
    shutdown: Shutdown,
    /// Manifest topic.
    topic: String,
    /// Drain budget at shutdown.
    drain_timeout: Duration,
    /// Largest decision (key + JSON) the producer may send; a larger one becomes an `oversized` dead
    /// letter instead of a send error that would stop the service on every restart.
    max_decision: usize,
    /// Officers' live feed and the what-if window: told about each emitted decision (never blocks).
    watchers: Watchers,
    /// `kafka.instance_id`, for the message of a fenced static member.
    instance_id: Option<String>,
    /// Business-resumption declarations in force; each manifest is scored against one snapshot.
    resumptions: Arc<ArcSwap<Resumptions>>,
    /// The party history and the watermark its follower has applied it to; each manifest reads the
    /// history as of one watermark snapshot (recorded on the decision as `history_as_of`).
    history: Option<(Arc<History>, Arc<ArcSwap<Watermark>>)>,
    /// The scoring threads (`service.scoring_threads`); `None`: score on the pipeline thread.
    workers: Option<rayon::ThreadPool>,
}

impl Pipeline {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: &Config,
        sink: Arc<Sink>,
        policy: Arc<ArcSwap<CompiledPolicy>>,
        table: Arc<PartnerTable>,
        metrics: Arc<Metrics>,
        readiness: Arc<Readiness>,
        shutdown: Shutdown,
    ) -> anyhow::Result<Pipeline> {
        let consumer = client_config(&config.kafka, Role::ManifestConsumer)
            .create_with_context(PipelineContext {
                sink: sink.clone(),
                metrics: metrics.clone(),
                readiness: readiness.clone(),
                topic: config.kafka.topics.manifests.clone(),
                revoked: Mutex::new(Vec::new()),
                any_revoked: AtomicBool::new(false),
                cut_off: CutOff::default(),
                coordinator_loss: CoordinatorLoss::default(),
            })
            .map_err(|e| anyhow!("creating the manifest consumer: {e}"))?;
        Ok(Pipeline {
            consumer,
            sink,
            policy,
            table,
            limits: config.limits.limits(),
            metrics,
            readiness,
            shutdown,
            topic: config.kafka.topics.manifests.clone(),
            drain_timeout: Duration::from_millis(config.service.shutdown_timeout_ms * 2 / 3),
            max_decision: crate::service::kafka::clients::producer_max_message_bytes(&config.kafka)
                .map_err(|e| anyhow!("kafka.producer.message.max.bytes: {e}"))?
                .saturating_sub(1024),
            watchers: Watchers::default(),
            instance_id: config.kafka.instance_id.clone(),
            resumptions: Arc::new(ArcSwap::from_pointee(Resumptions::NONE)),
            history: None,
            workers: match config.service.scoring_threads() {
                0 | 1 => None,
                n => Some(
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(n)
                        .thread_name(|i| format!("scoring-{i}"))
                        .build()
                        .context("starting the scoring threads")?,
                ),
            },
        })
    }

    /// Scores with the business-resumption declarations behind `resumptions` (default: none).
    pub fn with_resumptions(mut self, resumptions: Arc<ArcSwap<Resumptions>>) -> Pipeline {
        self.resumptions = resumptions;
        self
    }

    /// Scores with the party history as of the published watermark (default: no history).
    pub fn with_history(
        mut self,
        history: Arc<History>,
        watermark: Arc<ArcSwap<Watermark>>,
    ) -> Pipeline {
        self.history = Some((history, watermark));
        self
    }

    /// Consumes until shutdown or a fatal sink error, then drains and commits. Blocking.
    pub fn run(self) -> anyhow::Result<()> {
        self.sink.start()?;
        self.consumer
            .subscribe(&[&self.topic])
            .with_context(|| format!("subscribing to {}", self.topic))?;
        self.readiness.consumer_running(true);
        info!(topic = %self.topic, "manifest consumer running");
        // At-least-once: the interval offset commits run on their own thread, so the pipeline thread
        // never waits for the group coordinator (sink.rs, `commit_due`).
        let result = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("offset-commit".into())
                .spawn_scoped(scope, || self.sink.run_committer(&self.consumer))
                .context("starting the offset-commit thread")?;
            // Told to stop however `consume` ends, a panic included: the scope joins the commit thread
            // before a panic goes on, and one never told to stop would hold this thread (and the
            // service) forever instead of letting it stop.
            struct StopCommitter<'s>(&'s Sink);
            impl Drop for StopCommitter<'_> {
                fn drop(&mut self) {
                    self.0.stop_committer();
                }
            }
            let _stop = StopCommitter(&self.sink);
            self.consume()
        });
        self.readiness.consumer_running(false);
        let drained = self.finish();
        match (result, drained) {
            (Err(e), _) => Err(e),
            (Ok(()), Err(e)) => Err(e),
            (Ok(()), Ok(())) => Ok(()),
        }
    }

    /// The message to stop with when the consumer has a fatal error (e.g. fenced by a duplicate
    /// `kafka.instance_id`).
    fn fatal(&self) -> Option<String> {
        if self.consumer.context().cut_off.tripped() {
            return Some(CutOff::message("manifest consumer"));
        }
        fatal_consumer_error(
            "manifest",
            self.consumer.client(),
            self.instance_id.as_deref(),
            &self.consumer.context().coordinator_loss,
        )
    }

    fn consume(&self) -> anyhow::Result<()> {
        let mut checkpoint_at = Instant::now();
        // Reused for every batch: the polled records, and one JSON buffer per record of a batch.
        let mut batch: Vec<BorrowedMessage<'_>> = Vec::with_capacity(MAX_BATCH);
        let mut buffers: Vec<Vec<u8>> = Vec::new();
        while !self.shutdown.is_triggered() {
            if let Some(f) = self.sink.failure() {
                bail!(f);
            }
            if let Some(fatal) = self.fatal() {
                self.metrics.kafka_error(Client::ManifestConsumer);
                bail!(fatal);
            }
            self.sink.wait_for_capacity(Duration::from_millis(100));
            self.sink.gate(&self.consumer);
            self.sink.rewind_if_needed(&self.consumer)?;
            batch.clear();
            let polling = Instant::now();
            self.collect(&mut batch)?;
            if !batch.is_empty() {
                // Only a poll that brought records: an idle service's empty polls are waiting, not work.
                self.metrics.pipeline_step("collect", polling.elapsed());
                self.handle(&batch, &mut buffers)?;
            }
            batch.clear();
            if checkpoint_at.elapsed() >= CHECKPOINT_INTERVAL {
                checkpoint_at = Instant::now();
                self.sink.checkpoint(&self.consumer);
                self.metrics
                    .pipeline_step("checkpoint", checkpoint_at.elapsed());
            }
        }
        Ok(())
    }

    /// Polls up to [`MAX_BATCH`] records: waits for the first, then takes what the consumer already holds.
    /// Nothing of a batch has been emitted yet, so a record may still be dropped when it must be read again:
    /// all of them when an aborted transaction rewinds the consumer (exactly-once), and those of partitions
    /// revoked by a rebalance inside a later poll (their next owner starts at the committed offset, which
    /// is before them).
    fn collect<'c>(&'c self, batch: &mut Vec<BorrowedMessage<'c>>) -> anyhow::Result<()> {
        let mut timeout = Duration::from_millis(100);
        self.consumer.context().take_revoked();
        while batch.len() < MAX_BATCH {
            let polled = self.consumer.poll(timeout);
            timeout = Duration::ZERO;
            // A rebalance inside this poll may have aborted the transaction: what was polled before it is
            // read again after the rewind.
            let rewound = self.sink.rewind_if_needed(&self.consumer)?;
            if rewound {
                batch.clear();
            }
            let revoked = self.consumer.context().take_revoked();
            if !revoked.is_empty() {
                batch.retain(|m| !revoked.contains(&m.partition()));
            }
            match polled {
                None => break,
                Some(Ok(m)) => {
                    if !rewound {
                        batch.push(m);
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) if consumer_error_is_transient(&e) => {
                    self.metrics.kafka_error(Client::ManifestConsumer);
                    warn!(error = %e, "manifest consumer error (transient; librdkafka retries)");
                    break;
                }
                Some(Err(e)) => {
                    self.metrics.kafka_error(Client::ManifestConsumer);
                    // A fatal client error (e.g. fenced by a duplicate kafka.instance_id, raised by an
                    // offset commit on the commit thread) reaches this poll before the loop's check:
                    // stop with its own message.
                    if let Some(fatal) = self.fatal() {
                        bail!(fatal);
                    }
                    bail!(
                        "manifest consumer error that may skip input records: {e}; stopping so that no \
                         offset past them is committed (a restart resumes at the committed offset)"
                    );
                }
            }
        }
        Ok(())
    }

    /// Also publishes decisions to the live feed and keeps recent manifests for what-if replays. With
    /// scoring threads, the manifests the what-if window lets go are freed on them (see [`Pipeline::handle`]).
    pub fn with_watchers(mut self, watchers: Watchers) -> Pipeline {
        self.watchers = match self.workers {
            Some(_) => watchers.keep_evicted(),
            None => watchers,
        };
        self
    }

    /// Scores a batch of manifest records — on the scoring threads when there are enough of them — and
    /// emits each one's decision or dead letter in the order they were polled. Every record of the batch is
    /// scored against the same policy, business-resumption and history snapshot.
    fn handle(
        &self,
        batch: &[BorrowedMessage<'_>],
        buffers: &mut Vec<Vec<u8>>,
    ) -> anyhow::Result<()> {
        let policy = self.policy.load_full();
        let resumptions = self.resumptions.load_full();
        let as_of = self.history.as_ref().map(|(h, w)| (h, w.load_full()));
        let scorer = Scorer {
            policy: &policy,
            table: &self.table,
            history: as_of
                .as_ref()
                .map(|(history, as_of)| HistoryAsOf { history, as_of }),
            limits: &self.limits,
            resumptions: &resumptions,
            metrics: &self.metrics,
            watchers: &self.watchers,
        };
        if buffers.len() < batch.len() {
            buffers.resize_with(batch.len(), || Vec::with_capacity(4096));
        }
        let buffers = &mut buffers[..batch.len()];
        let started = Instant::now();
        let parallel = self.workers.is_some() && batch.len() >= PARALLEL_FROM;
        self.metrics.scoring_batch(batch.len(), parallel);
        // What the feed's and the what-if windows let go since the last batch: a record's share is freed
        // right before the record is scored, on the thread that scores it (Watchers::keep_evicted).
        let mut graves = self.watchers.take_evicted(batch.len());
        let payloads: Vec<Option<&[u8]>> = batch.iter().map(|m| m.payload()).collect();
        if let (Some(pool), true) = (&self.workers, parallel) {
            // A backlog: emitted as the scoring threads finish each chunk, in poll order (the sink sees
            // the same sequence as below; see `score_emitting`).
            let done = score_emitting(
                pool,
                |_, p, b, g| score_all(&scorer, p, b, g),
                &payloads,
                buffers,
                &mut graves,
                |i, s, json| self.emit_next(&batch[i], s, json),
            );
            // Freed on the pool too, off this thread: its blocks come from the scoring threads' allocator
            // arenas, and freeing them here was ~40 % of this thread's CPU, on the one thread every record
            // passes through (docs/performance.md, "The pipeline thread's frees").
            let scored = done.scored;
            pool.spawn(move || drop(scored));
            // This thread's time: waiting for the scoring threads, and the rest (emitting).
            self.metrics.pipeline_step("score", done.waited);
            self.metrics
                .pipeline_step("emit", started.elapsed().saturating_sub(done.waited));
            return done.emitted;
        }
        let mut scored = score_all(&scorer, &payloads, buffers, &mut graves);
        let scored_at = Instant::now();
        self.metrics.pipeline_step("score", scored_at - started);
        let emitted = self.emit_all(batch, &mut scored, buffers);
        self.metrics.pipeline_step("emit", scored_at.elapsed());
        emitted
    }

    /// Emits a scored batch in poll order.
    fn emit_all(
        &self,
        batch: &[BorrowedMessage<'_>],
        scored: &mut [Scored],
        buffers: &[Vec<u8>],
    ) -> anyhow::Result<()> {
        for ((m, scored), json) in batch.iter().zip(scored).zip(buffers) {
            if !self.emit_next(m, scored, json)? {
                break;
            }
        }
        Ok(())
    }

    /// Emits the next record of a batch in poll order, unless the rest of the batch is to be read again:
    /// with exactly-once an earlier record may have found the transaction no longer usable and aborted it,
    /// and the consumer rewound. Returns whether to go on with the batch.
    fn emit_next(
        &self,
        m: &BorrowedMessage<'_>,
        scored: &mut Scored,
        json: &[u8],
    ) -> anyhow::Result<bool> {
        if self.sink.rewind_if_needed(&self.consumer)? {
            return Ok(false);
        }
        self.emit(m, scored, json)?;
        Ok(true)
    }

    /// Emits one record's decision or dead letter.
    /// Takes only what a watcher keeps (the manifest, for a what-if window); the rest stays in `scored`.
    fn emit(
        &self,
        m: &BorrowedMessage<'_>,
        scored: &mut Scored,
        json: &[u8],
    ) -> anyhow::Result<()> {
        let origin = Origin {
            topic: m.topic(),
            partition: m.partition(),
            offset: m.offset(),
            timestamp_ms: m.timestamp().to_millis(),
            key: m.key(),
        };
        let oversized;
        let error = match scored {
            Ok(Decided { id, brief, watch }) => {
                let size = json.len() + id.len();
                if size <= self.max_decision {
                    self.sink.emit(
                        &origin,
                        Output::Decision {
                            id,
                            brief: &*brief,
                            json,
                        },
                    )?;
                    self.sink
                        .decided(&self.watchers, std::mem::take(watch), brief);
                    return Ok(());
                }
                oversized = BadInput::new(
                    ErrorKind::Oversized,
                    format!(
                        "its decision is {size} bytes, more than the producer may send ({})",
                        self.max_decision
                    ),
                );
                &oversized
            }
            Err(error) => {
                debug!(
                    partition = origin.partition,
                    offset = origin.offset,
                    kind = error.kind.as_str(),
                    "dead letter"
                );
                error
            }
        };
        self.sink.emit(
            &origin,
            Output::DeadLetter {
                value: m.payload(),
                error,
            },
        )
    }

    /// Waits for in-flight outputs, stores and commits their offsets; the consumer then leaves the group
    /// when dropped (its revoke callback finds nothing left to do).
    fn finish(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        if self.sink.failure().is_none() {
            // Exactly-once: commit (or abort) the open transaction; at-least-once: nothing to do here.
            if let Err(e) = self.sink.finish(&self.consumer) {
                warn!(error = %e, "final transaction not committed");
            }
        }
        let drained = self.sink.drain(self.drain_timeout);
        self.sink.checkpoint(&self.consumer);
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => warn!(error = %e, "final commit failed; the uncommitted tail will be redone"),
        }
        info!(
            drained,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "manifest pipeline drained and committed"
        );
        if let Some(f) = self.sink.failure() {
            bail!(f);
        }
        if !drained {
            bail!(
                "shutdown: outputs still unacknowledged after {:?}; they will be redone on restart",
                self.drain_timeout
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_errors_that_skip_no_record_are_transient() {
        use RDKafkaErrorCode as C;
        for code in [
            C::BrokerTransportFailure,
            C::AllBrokersDown,
            C::CoordinatorNotAvailable,
            C::NotLeaderForPartition,
            C::UnknownTopicOrPartition,
            C::RebalanceInProgress,
        ] {
            assert!(
                consumer_error_is_transient(&KafkaError::MessageConsumption(code)),
                "{code:?}"
            );
        }
        assert!(consumer_error_is_transient(&KafkaError::PartitionEOF(0)));
        // What may stand for skipped records stops the instance.
        for code in [
            C::AutoOffsetReset,
            C::OffsetOutOfRange,
            C::BadMessage,
            C::TopicAuthorizationFailed,
            C::Fatal,
        ] {
            assert!(
                !consumer_error_is_transient(&KafkaError::MessageConsumption(code)),
                "{code:?}"
            );
        }
    }

    #[test]
    fn losing_the_coordinator_is_noted_from_librdkafkas_log_and_ages_out() {
        use rdkafka::config::RDKafkaLogLevel as L;
        let loss = CoordinatorLoss::default();
        let now = Instant::now();
        assert!(!loss.recent(now));
        // Other lines, at any level, note nothing.
        loss.log(
            L::Warning,
            "FAIL",
            "[thrd:127.0.0.1:9092/1]: 127.0.0.1:9092/1: Disconnected",
        );
        loss.log(L::Error, "FATAL", "[thrd:main]: Fatal error");
        assert!(!loss.recent(Instant::now()));
        loss.log(
            L::Warning,
            "SESSTMOUT",
            "[thrd:main]: Consumer group session timed out (in join-state steady) after 6003 ms",
        );
        let at = Instant::now();
        assert!(loss.recent(at));
        // `at` is taken after the line was noted: a second's margin for a preempted test thread.
        assert!(loss.recent(at + COORDINATOR_LOSS_WINDOW - Duration::from_secs(1)));
        assert!(!loss.recent(at + COORDINATOR_LOSS_WINDOW + Duration::from_millis(1)));
        let coordinator_gone = CoordinatorLoss::default();
        coordinator_gone.log(
            L::Error,
            "FAIL",
            "[thrd:GroupCoordinator]: GroupCoordinator: 127.0.0.1:43763: Connect to ipv4#127.0.0.1:43763 \
             failed: Connection refused (after 0ms in state CONNECT)",
        );
        assert!(coordinator_gone.recent(Instant::now()));
        let polled_late = CoordinatorLoss::default();
        polled_late.log(
            L::Warning,
            "MAXPOLL",
            "[thrd:main]: Application maximum poll interval exceeded",
        );
        assert!(polled_late.recent(Instant::now()));
    }

    #[test]
    fn a_fencing_after_the_member_lost_its_coordinator_does_not_blame_another_instance() {
        let reason = "Broker: Static consumer fenced by other consumer with same group.instance.id";
        let own = fatal_message(
            "manifest",
            RDKafkaErrorCode::FencedInstanceId,
            reason,
            Some("i0"),
            true,
        );
        assert!(own.contains("librdkafka#3437"), "{own}");
        assert!(
            own.contains("most likely not another instance with kafka.instance_id = \"i0\""),
            "{own}"
        );
        assert!(!own.contains("ANOTHER RUNNING INSTANCE"), "{own}");
        assert!(own.ends_with(&format!("({reason})")), "{own}");
        let duplicate = fatal_message(
            "manifest",
            RDKafkaErrorCode::FencedInstanceId,
            reason,
            Some("i0"),
            false,
        );
        assert!(
            duplicate
                .contains("ANOTHER RUNNING INSTANCE IS CONFIGURED WITH THIS kafka.instance_id"),
            "{duplicate}"
        );
        assert!(
            duplicate.contains("(kafka.instance_id = \"i0\")"),
            "{duplicate}"
        );
        // Other fatal errors are told as they are, lost session or not.
        for lost in [false, true] {
            let other = fatal_message(
                "outcome dead-letter",
                RDKafkaErrorCode::InvalidTransactionalState,
                "whatever",
                None,
                lost,
            );
            assert_eq!(
                other,
                "fatal outcome dead-letter consumer error (InvalidTransactionalState): whatever; this instance stops"
            );
        }
    }

    use crate::traffic::gen::Generator;
    use borderlane_core::score::process_with;

    /// What a [`Scorer`] borrows in these tests: the default policy, a generator (`seed`, `bad_share`) with
    /// its partner table, default limits, no resumptions, fresh metrics.
    struct Fixture {
        policy: CompiledPolicy,
        g: Generator,
        table: PartnerTable,
        limits: Limits,
        resumptions: Resumptions,
        metrics: Metrics,
    }

    impl Fixture {
        fn new(seed: u64, bad_share: f64) -> Fixture {
            let policy = crate::load::policy::default_policy();
            let g = Generator::seeded(seed, bad_share, &policy);
            let table = g.partner_table();
            Fixture {
                policy,
                g,
                table,
                limits: Limits::default(),
                resumptions: Resumptions::default(),
                metrics: Metrics::new(),
            }
        }

        fn scorer<'a>(&'a self, watchers: &'a Watchers) -> Scorer<'a> {
            Scorer {
                policy: &self.policy,
                table: &self.table,
                history: None,
                limits: &self.limits,
                resumptions: &self.resumptions,
                metrics: &self.metrics,
                watchers,
            }
        }
    }

    /// A decision's JSON without `decided_at` (written from the clock).
    fn without_decided_at(json: &[u8]) -> serde_json::Value {
        let mut v: serde_json::Value = serde_json::from_slice(json).unwrap();
        v.as_object_mut().unwrap().remove("decided_at");
        v
    }

    /// What the scoring threads hand to the pipeline thread is what emitting the decision itself gave:
    /// the same JSON, the manifest's id as the key, the decision's fields in the `Brief` (its second the
    /// JSON's `decided_at`); the feed's item only with a feed, the manifest and its window size only with a
    /// what-if window, each watcher finding its part once handed over; dead letters unchanged.
    #[test]
    fn a_scored_record_carries_what_emitting_its_decision_reads() {
        let f = Fixture::new(11, 0.05);
        // Every combination of the feed and the what-if window, each watcher its own.
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        let setups: Vec<(bool, bool, Watchers)> =
            [(false, false), (true, false), (false, true), (true, true)]
                .into_iter()
                .map(|(feed, window)| {
                    let w = Watchers {
                        feed: feed.then(|| {
                            Arc::new(crate::service::feed::Feed::new(
                                16,
                                1 << 20,
                                &f.policy,
                                stopped.clone(),
                            ))
                        }),
                        ring: window
                            .then(|| Arc::new(crate::service::admin::ManifestRing::new(1 << 30))),
                        ..Watchers::default()
                    };
                    (feed, window, w)
                })
                .collect();
        let scorer = |watchers| f.scorer(watchers);
        let (mut decided, mut bad) = (0, 0);
        for i in 0..400u64 {
            let bytes = f.g.record(i).to_bytes();
            let reference = process_with(
                &f.policy,
                Lookups::new(&f.table, None),
                &bytes,
                &f.limits,
                &f.resumptions,
            );
            for (feed_on, window_on, watchers) in &setups {
                let mut buf = b"left over from the last record".to_vec();
                match (scorer(watchers).score(Some(&bytes), &mut buf), &reference) {
                    (Ok(d), Ok((manifest, decision))) => {
                        let mut want = decision.clone();
                        want.decided_at = Some(
                            borderlane_core::time::Timestamp::from_unix_seconds(
                                d.brief.decided_secs,
                            )
                            .unwrap(),
                        );
                        let mut json = Vec::new();
                        want.write_json(&mut json);
                        // decided_at is written to the millisecond or finer; compare everything else.
                        assert_eq!(
                            without_decided_at(&buf),
                            without_decided_at(&json),
                            "record {i}"
                        );
                        let written: serde_json::Value = serde_json::from_slice(&buf).unwrap();
                        let at = written["decided_at"].as_str().unwrap();
                        assert_eq!(
                            borderlane_core::time::Timestamp::parse(at).map(|t| t.unix_seconds()),
                            Some(d.brief.decided_secs),
                            "{at}"
                        );
                        assert_eq!(d.id, decision.manifest_id);
                        let b = &d.brief;
                        assert_eq!(
                            (b.action, b.lane, b.port, b.mode, b.score, b.priority),
                            (
                                decision.action,
                                decision.lane,
                                decision.port_of_entry,
                                decision.mode,
                                decision.score,
                                decision.priority
                            )
                        );
                        assert_eq!(b.importer_standing, decision.importer_standing);
                        assert_eq!(
                            b.fast_lane_port,
                            !decision
                                .fast_missing
                                .contains(borderlane_core::decision::FastCondition::FastLanePort)
                        );
                        let kept = d.watch.manifest.as_ref();
                        assert_eq!(kept.map(|(m, _)| &**m), window_on.then_some(manifest));
                        assert_eq!(
                            kept.map(|(_, bytes)| *bytes),
                            window_on
                                .then(|| crate::service::admin::ring::manifest_bytes(manifest))
                        );
                        let item = d.watch.item.as_ref();
                        assert_eq!(item.is_some(), *feed_on);
                        if let Some(item) = item {
                            assert_eq!(item.json.as_bytes(), &buf[..]);
                            assert_eq!(item.manifest_id, decision.manifest_id);
                            assert_eq!(
                                (item.lane, item.action, item.score, item.port.as_str()),
                                (
                                    decision.lane,
                                    decision.action,
                                    decision.score,
                                    decision.port_of_entry.as_str()
                                )
                            );
                            assert_eq!(
                                item.standing,
                                crate::analysis::summary::standing_group(
                                    decision.importer_standing
                                )
                            );
                        }
                        // Handed over, the feed can look the decision up and the window holds the
                        // manifest last.
                        watchers.decided(d.watch, &d.brief);
                        if let Some(feed) = &watchers.feed {
                            let found = feed.lookup(&decision.manifest_id).unwrap();
                            assert_eq!(found.json.as_bytes(), &buf[..]);
                        }
                        if let Some(ring) = &watchers.ring {
                            assert_eq!(ring.newest(1)[0].as_ref(), manifest);
                        }
                        decided += 1;
                    }
                    (Err(e), Err(r)) => {
                        assert_eq!((e.kind, &e.message), (r.kind, &r.message));
                        bad += 1;
                    }
                    (got, _) => panic!("record {i}: {:?}", got.map(|d| d.id)),
                }
            }
        }
        assert!(decided > 1200 && bad > 20, "{decided} decided, {bad} bad");
    }

    /// A batch scored on the pool is emitted in poll order however its chunks finish — here the first chunk
    /// is held back until every other one is scored — each record with the JSON it was scored into (the
    /// decision inline scoring gives, decided_at aside), and every record is scored even when emitting
    /// stops early: after `false` `emit` is not called again, after an error neither, and the error is
    /// returned.
    #[test]
    fn a_pool_scored_batch_is_emitted_in_poll_order_as_its_chunks_finish() {
        let f = Fixture::new(5, 0.05);
        let watchers = Watchers::default();
        let scorer = f.scorer(&watchers);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        // A full batch and a ragged one: 16 chunks, and 3 with a short last chunk.
        for n in [MAX_BATCH, 2 * EMIT_CHUNK + 5] {
            let chunks = n.div_ceil(EMIT_CHUNK);
            let records: Vec<Vec<u8>> = (0..n as u64).map(|i| f.g.record(i).to_bytes()).collect();
            let payloads: Vec<Option<&[u8]>> = records.iter().map(|r| Some(&r[..])).collect();
            let mut inline_buffers = vec![Vec::new(); n];
            let inline = score_all(
                &scorer,
                &payloads,
                &mut inline_buffers,
                &mut vec![(None, None); n],
            );
            // (stop after this many emitted: never, mid-chunk with `false`, mid-chunk with an error)
            for (stop_at, fail) in [(usize::MAX, false), (EMIT_CHUNK + 3, false), (7, true)] {
                let mut buffers = vec![b"stale".to_vec(); n];
                let (mut emitted, mut calls): (Vec<usize>, usize) = (Vec::new(), 0);
                // Chunk 0 waits until every other chunk is scored, so it arrives last.
                let finished = std::sync::Mutex::new(Vec::new());
                let others_done = std::sync::Condvar::new();
                let score = |c: usize, p: &[Option<&[u8]>], b: &mut [Vec<u8>], g: &mut [Graves]| {
                    let mut done = finished.lock().unwrap();
                    if c == 0 {
                        while done.len() < chunks - 1 {
                            done = others_done.wait(done).unwrap();
                        }
                    }
                    drop(done);
                    let scored = score_all(&scorer, p, b, g);
                    finished.lock().unwrap().push(c);
                    others_done.notify_all();
                    scored
                };
                let done = score_emitting(
                    &pool,
                    score,
                    &payloads,
                    &mut buffers,
                    &mut vec![(None, None); n],
                    |i, s, json| {
                        calls += 1;
                        if emitted.len() == stop_at {
                            return if fail {
                                Err(anyhow!("the sink failed"))
                            } else {
                                Ok(false)
                            };
                        }
                        match (&*s, &inline[i]) {
                            (Ok(_), Ok(_)) => assert_eq!(
                                without_decided_at(json),
                                without_decided_at(&inline_buffers[i]),
                                "record {i}"
                            ),
                            (Err(a), Err(b)) => {
                                assert_eq!((a.kind, &a.message), (b.kind, &b.message))
                            }
                            _ => panic!("record {i}: scored differently on the pool"),
                        }
                        emitted.push(i);
                        Ok(true)
                    },
                );
                assert_eq!(
                    finished.into_inner().unwrap().last(),
                    Some(&0),
                    "the first chunk finished last"
                );
                let want = n.min(stop_at);
                assert_eq!(
                    emitted,
                    (0..want).collect::<Vec<_>>(),
                    "n {n}, stop at {stop_at}"
                );
                // One more call told to stop, then none.
                assert_eq!(
                    calls,
                    want + usize::from(stop_at < n),
                    "n {n}, stop at {stop_at}"
                );
                assert_eq!(done.emitted.is_err(), fail && stop_at < n);
                let scored: Vec<Scored> = done.scored.into_iter().flatten().collect();
                assert_eq!(scored.len(), n, "every record scored");
                for (i, (s, buf)) in scored.iter().zip(&buffers).enumerate() {
                    assert_eq!(s.is_ok(), inline[i].is_ok(), "record {i}");
                    if s.is_ok() {
                        assert_eq!(
                            without_decided_at(buf),
                            without_decided_at(&inline_buffers[i])
                        );
                    }
                }
            }
        }
    }

    /// Each record's share of what the windows let go is taken and freed as the record is scored, on the
    /// pool and inline alike; what is not taken yet stays alive, waiting; decisions are unchanged.
    #[test]
    fn each_records_share_of_what_the_windows_let_go_is_freed_as_it_is_scored() {
        let f = Fixture::new(3, 0.0);
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for on_pool in [true, false] {
            let watchers = Watchers {
                feed: Some(Arc::new(crate::service::feed::Feed::new(
                    4,
                    4,
                    &f.policy,
                    stopped.clone(),
                ))),
                ring: Some(Arc::new(crate::service::admin::ManifestRing::new(1))),
                ..Watchers::default()
            }
            .keep_evicted();
            let scorer = f.scorer(&watchers);
            // 40 decisions told to the watchers: a 4-item feed window lets go of the first 36 items, the
            // 1-byte what-if window of every manifest.
            let records: Vec<Vec<u8>> = (0..40).map(|i| f.g.record(i).to_bytes()).collect();
            let (mut items, mut manifests) = (Vec::new(), Vec::new());
            for bytes in &records {
                let mut buf = Vec::new();
                let Ok(d) = scorer.score(Some(bytes), &mut buf) else {
                    panic!("a generated record without bad share is a decision");
                };
                items.push(Arc::downgrade(d.watch.item.as_ref().unwrap()));
                manifests.push(Arc::downgrade(&d.watch.manifest.as_ref().unwrap().0));
                watchers.decided(d.watch, &d.brief);
            }
            // A batch of 16: the 16 oldest of each are freed while it is scored.
            let payloads: Vec<Option<&[u8]>> = records[..16].iter().map(|r| Some(&r[..])).collect();
            let mut buffers = vec![Vec::new(); 16];
            let mut graves = watchers.take_evicted(16);
            assert!(graves.iter().all(|(i, m)| i.is_some() && m.is_some()));
            let scored: Vec<Scored> = if on_pool {
                let mut emitted = 0;
                let done = score_emitting(
                    &pool,
                    |_, p, b, g| score_all(&scorer, p, b, g),
                    &payloads,
                    &mut buffers,
                    &mut graves,
                    |_, _, _| {
                        emitted += 1;
                        Ok(true)
                    },
                );
                assert!(done.emitted.is_ok());
                assert_eq!(emitted, 16);
                done.scored.into_iter().flatten().collect()
            } else {
                score_all(&scorer, &payloads, &mut buffers, &mut graves)
            };
            assert!(graves.iter().all(|(i, m)| i.is_none() && m.is_none()));
            assert!(items[..16].iter().all(|w| w.upgrade().is_none()));
            assert!(manifests[..16].iter().all(|w| w.upgrade().is_none()));
            // Waiting: items 17..36 and manifests 17..40 (a batch's own scoring keeps nothing here: its
            // records are not told to the watchers). The feed still holds the last 4 items.
            assert!(items[16..].iter().all(|w| w.upgrade().is_some()));
            assert!(manifests[16..].iter().all(|w| w.upgrade().is_some()));
            for (i, (s, buf)) in scored.iter().zip(&buffers).enumerate() {
                let mut reference = Vec::new();
                let again = scorer.score(Some(&records[i]), &mut reference);
                assert!(s.is_ok() && again.is_ok());
                // The same decision, decided_at aside (the clock moved).
                assert_eq!(without_decided_at(buf), without_decided_at(&reference));
            }
        }
    }
}
