//! Exam outcomes as the field would record them: generated manifests decided by the policy in filing order,
//! a batch at a time, each batch against the party history of the outcomes recorded before it (as an
//! instance reads them, late); every manifest the policy sends to an exam gets the outcome the hidden
//! ground truth ([`Generator::exam_outcome`]) says the exam found, and released manifests get none. So the
//! labels exist exactly where a real border has them: on examined manifests only, selected by the policy's
//! bands, escalations, watch list, history and random compliance draws.
//!
//! Deterministic: the order is (filed_at, manifest_id, revision), each batch is decided in parallel against
//! a fixed watermark, and outcomes are recorded in that order.

use std::sync::Arc;

use borderlane_core::history::{History, HistoryAsOf, Position, Watermark};
use borderlane_core::outcome::Outcome;
use borderlane_core::policy::CompiledPolicy;
use borderlane_core::score::{decide, Lookups};
use borderlane_core::table::PartnerTable;
use borderlane_core::wire::Manifest;
use rayon::prelude::*;

use super::Generator;

/// Manifests decided together against one history watermark.
pub const BATCH: usize = 2_048;

/// The outcome records of every examined manifest of `manifests`, in recording order.
pub fn field_outcomes(
    g: &Generator,
    policy: &CompiledPolicy,
    table: &PartnerTable,
    manifests: &[Manifest],
) -> Vec<Outcome> {
    let mut order: Vec<&Manifest> = manifests.iter().collect();
    order.sort_by(|a, b| {
        (a.filed_at, a.manifest_id.as_str(), a.revision).cmp(&(
            b.filed_at,
            b.manifest_id.as_str(),
            b.revision,
        ))
    });
    let history = History::new();
    let mut next: u64 = 0;
    let mut out = Vec::new();
    for batch in order.chunks(BATCH) {
        let as_of = Arc::new(Watermark::parse(&next.to_string()).unwrap_or_default());
        let outcomes: Vec<Option<Outcome>> = batch
            .par_iter()
            .map(|m| {
                let lookups = Lookups::new(
                    table,
                    Some(HistoryAsOf {
                        history: &history,
                        as_of: &as_of,
                    }),
                );
                let d = decide(policy, lookups, m);
                g.exam_outcome(m, &d, &policy.doc)
            })
            .collect();
        for o in outcomes.into_iter().flatten() {
            history.insert(
                Position {
                    partition: 0,
                    offset: next,
                },
                &o,
            );
            next += 1;
            out.push(o);
        }
    }
    out
}
