//! Generated traffic as the service's input (`demo`): records of the seeded generator scored in process at a
//! steady rate against a prebuilt partner table, through the same core entry point, metrics, feed and what-if
//! window as the Kafka pipeline — only the transport differs (no topics, no sink).

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use borderlane_core::history::HistoryAsOf;
use borderlane_core::policy::CompiledPolicy;
use borderlane_core::score::{check_port, process_with, Lookups};
use borderlane_core::table::PartnerTable;
use borderlane_core::wire::Limits;
use borderlane_core::Resumptions;

use crate::service::metrics::Metrics;
use crate::service::outcomes::{Examined, HistoryFeed, Recorder};
use crate::service::{Shutdown, Watchers};
use crate::traffic::gen::{Generator, Record};

/// What to generate.
pub struct Generated {
    /// The seeded generator (its partner pools built `table`).
    pub generator: Generator,
    /// The partner table the generated manifests are joined against; complete before the first decision.
    pub table: Arc<PartnerTable>,
    /// Manifests per second (open loop: a slow tick is not made up later).
    pub rate: f64,
    /// The first record number of the live traffic (continuing a day already scored).
    pub first: u64,
    /// Records put into the what-if window before the traffic starts (the tail of that day).
    pub warm: Range<u64>,
}

/// The traffic task.
pub(crate) struct Traffic {
    pub input: Generated,
    pub policy: Arc<ArcSwap<CompiledPolicy>>,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
    pub watchers: Watchers,
    pub shutdown: Shutdown,
    /// Business-resumption declarations in force (changed through the admin API, in process).
    pub resumptions: Arc<ArcSwap<Resumptions>>,
    /// The party history (read as of its watermark) and the outcome window (fed with every decision, the
    /// in-process stand-in for the `decisions` topic).
    pub history: Arc<HistoryFeed>,
    /// Records the generated exam outcomes (the in-process recorder `POST /outcomes` also uses).
    pub recorder: Arc<Recorder>,
}

impl Traffic {
    pub async fn run(self) -> anyhow::Result<()> {
        let g = &self.input;
        if let Some(ring) = &self.watchers.ring {
            let policy = self.policy.load();
            for i in g.warm.clone() {
                if let Record::Good(m) = g.generator.record(i) {
                    if check_port(&policy, &m).is_ok() {
                        ring.push(Arc::new(*m));
                    }
                }
            }
        }
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / g.rate.max(0.1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut buf = Vec::with_capacity(4096);
        let mut gauges_at = Instant::now();
        for i in g.first.. {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.shutdown.triggered() => return Ok(()),
            }
            let bytes = g.generator.record(i).to_bytes();
            let policy = self.policy.load();
            let resumptions = self.resumptions.load();
            let as_of = self.history.watermark.load_full();
            let lookups = Lookups::new(
                &g.table,
                Some(HistoryAsOf {
                    history: &self.history.history,
                    as_of: &as_of,
                }),
            );
            let started = Instant::now();
            let result = process_with(&policy, lookups, &bytes, &self.limits, &resumptions);
            match result {
                Ok((manifest, mut decision)) => {
                    decision.decided_at = crate::clock::now();
                    buf.clear();
                    decision.write_json(&mut buf);
                    // As the pipeline's: the core's time with the decision's JSON written.
                    self.metrics.scored(started.elapsed());
                    self.metrics.decision_acknowledged(
                        decision.action,
                        decision.lane,
                        decision.port_of_entry,
                    );
                    if let Some(p) = decision.priority {
                        self.metrics.decision_prioritized(decision.port_of_entry, p);
                    }
                    let now = crate::clock::unix_millis();
                    self.history.window.insert(
                        (decision.manifest_id.clone(), decision.revision),
                        Examined::of_decision(&decision, &policy.doc),
                        now,
                        now,
                    );
                    // Every exam finds what the hidden ground truth planted (traffic::gen::truth), and its
                    // outcome is recorded at once: the history and the hit rates grow as officers' would.
                    if let Some(o) = g.generator.exam_outcome(&manifest, &decision, &policy.doc) {
                        self.recorder.record(&self.history, &o).await?;
                        if gauges_at.elapsed() >= Duration::from_secs(1) {
                            gauges_at = Instant::now();
                            self.history.publish_gauges(&policy.doc);
                        }
                    }
                    let brief = crate::service::Brief::of(&decision);
                    let w = self
                        .watchers
                        .prepare(manifest, &decision.manifest_id, &brief, &buf);
                    self.watchers.decided(w, &brief);
                }
                Err(e) => {
                    self.metrics.scored(started.elapsed());
                    self.metrics.dead_letter_acknowledged(e.kind)
                }
            }
        }
        Ok(())
    }
}
