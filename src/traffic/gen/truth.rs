//! The hidden ground truth of generated traffic: which manifests carry a violation (a misdeclaration, or
//! contraband worth a seizure), and what an exam of a decided manifest finds. Nothing of it shows in the
//! records: the engine can learn it only from exam outcomes (party history), as at a real border.
//!
//! Realistic minority, concentrated in a few parties: a small share of importer identities are *rogue*
//! (whatever their CTPAT standing: a trusted-trader identity is exactly what a smuggler borrows or buys);
//! their manifests violate often, everyone else's rarely. An exam finds a violation with a probability
//! that grows with its thoroughness. Every draw is a keyed hash of the seed and ids, so the truth is a pure
//! function of (seed, manifest) and an exam's finding of (seed, manifest, action): deterministic.
//! The numbers below are test data, not policy.

use borderlane_core::decision::{Action, Decision, ExamResult};
use borderlane_core::outcome::{causes_of, parties_of, Outcome};
use borderlane_core::policy::PolicyDoc;
use borderlane_core::score::random_draw;
use borderlane_core::time::Timestamp;
use borderlane_core::wire::{Manifest, Str};

use super::Generator;

/// Share of importer identities that are rogue.
pub const ROGUE_SHARE: f64 = 0.03;
/// Chance that a rogue importer's shipment violates.
const ROGUE_VIOLATION: f64 = 0.35;
/// Chance that anyone else's manifest violates.
const BASE_VIOLATION: f64 = 0.01;
/// Share of violations that are contraband (a seizure), for rogue importers and for the rest.
const ROGUE_SEIZURE: f64 = 0.30;
const BASE_SEIZURE: f64 = 0.10;
/// Minutes from filing to the end of an exam (the outcome's `examined_at`).
const EXAM_MINUTES: i64 = 120;

/// A planted violation: on which shipment, and what a successful exam records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    pub shipment: usize,
    pub result: ExamResult,
}

/// Chance that an exam of this thoroughness finds a violation that is there.
fn find_rate(action: Action) -> f64 {
    match action {
        Action::Release => 0.0,
        Action::DocumentReview => 0.5,
        Action::NiiScan => 0.8,
        Action::Tailgate => 0.85,
        Action::Intensive => 0.95,
    }
}

impl Generator {
    fn draw(&self, key: &str, salt: u64) -> f64 {
        random_draw(key, self.cfg.seed ^ salt)
    }

    /// Whether an importer identity is rogue (hidden).
    pub fn rogue_importer(&self, id: &str) -> bool {
        self.draw(id, 0x524f_4755_4549_4d50) < ROGUE_SHARE
    }

    /// Whether any shipment of the manifest has a rogue importer.
    pub fn has_rogue_importer(&self, m: &Manifest) -> bool {
        m.shipments.iter().any(|s| {
            s.importer
                .as_ref()
                .is_some_and(|p| self.rogue_importer(&p.id))
        })
    }

    /// The manifest's planted violation, if any (the first violating shipment).
    pub fn truth(&self, m: &Manifest) -> Option<Violation> {
        m.shipments.iter().enumerate().find_map(|(i, s)| {
            let rogue = s
                .importer
                .as_ref()
                .is_some_and(|p| self.rogue_importer(&p.id));
            let key = format!("{}/{}", m.manifest_id, s.shipment_id);
            let p = if rogue {
                ROGUE_VIOLATION
            } else {
                BASE_VIOLATION
            };
            (self.draw(&key, 0x5649_4f4c_4154_4531) < p).then(|| {
                let seize = if rogue { ROGUE_SEIZURE } else { BASE_SEIZURE };
                Violation {
                    shipment: i,
                    result: if self.draw(&key, 0x5345_495a_5552_4531) < seize {
                        ExamResult::Seizure
                    } else {
                        ExamResult::Discrepancy
                    },
                }
            })
        })
    }

    /// The complete outcome record of the exam of `m` decided as `d` (`None` when it was released):
    /// a found violation names its shipment's parties (and the carrier), anything else covers the whole
    /// manifest. Enriched exactly as the service enriches an officer's record.
    pub fn exam_outcome(&self, m: &Manifest, d: &Decision, policy: &PolicyDoc) -> Option<Outcome> {
        if !d.action.is_exam() {
            return None;
        }
        let found = self.truth(m).filter(|_| {
            self.draw(&m.manifest_id, 0x464f_554e_4431 + m.revision as u64) < find_rate(d.action)
        });
        let shipment: Option<Str> = found.map(|v| m.shipments[v.shipment].shipment_id.clone());
        let examined_at =
            Timestamp::from_unix_seconds(m.filed_at.unix_seconds() + EXAM_MINUTES * 60)
                .unwrap_or(m.filed_at);
        Some(Outcome {
            manifest_id: m.manifest_id.clone(),
            revision: m.revision,
            parties: parties_of(d, shipment.as_deref()).unwrap_or_default(),
            shipment_id: shipment,
            result: found.map_or(ExamResult::NoDiscrepancy, |v| v.result),
            findings: match found.map(|v| v.result) {
                Some(ExamResult::Seizure) => vec!["CONTRABAND".into()],
                Some(_) => vec!["MISDECLARED".into()],
                None => Vec::new(),
            },
            examined_at,
            port: m.port_of_entry,
            officer: "generated-officer".into(),
            causes: causes_of(d, policy),
        })
    }
}
