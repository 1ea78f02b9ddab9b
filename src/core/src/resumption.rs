//! Business resumption after a port disruption (a CTPAT benefit): while an operator's declaration for a port
//! is in force, decisions at that port carry a processing `priority` — Tier 3 partners first, then Tier 2,
//! Tier 1 (certified), then everyone else — read from the decision's weakest importer standing.
//!
//! Declarations are input data, like the partner table: the adapters keep the declarations in force (from
//! the control topic, or in process for `demo`) and pass them in. Whether one applies to a manifest is
//! judged from the manifest's own `filed_at` — filed in `[declared_at, until)` — never from a wall clock, so
//! a declaration expires by itself and the same inputs always give the same decision.

use std::sync::Arc;

use crate::codes::PortCode;
use crate::table::Standing;
use crate::time::Timestamp;

/// One port's resumption declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    pub port: PortCode,
    /// When the operator declared it: manifests filed from this instant on are prioritised.
    pub declared_at: Timestamp,
    /// End (exclusive): manifests filed at or after it are not.
    pub until: Timestamp,
    /// Why (free text in the name character set, for people).
    pub reason: Arc<str>,
    /// Who declared it (the operator token's name).
    pub declared_by: Arc<str>,
}

impl Declaration {
    /// Whether a manifest filed at `filed_at` falls in the declaration: `declared_at <= filed_at < until`.
    #[inline]
    pub fn covers(&self, filed_at: &Timestamp) -> bool {
        self.declared_at <= *filed_at && *filed_at < self.until
    }
}

/// The declarations in force, at most one per port (a newer one for a port replaces the older one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resumptions {
    /// Sorted by port; short (one entry per disrupted port).
    by_port: Vec<Declaration>,
}

impl Resumptions {
    /// No declaration: no decision carries a priority.
    pub const NONE: Resumptions = Resumptions {
        by_port: Vec::new(),
    };

    /// From declarations in any order; of two for the same port the later one in the input wins.
    pub fn new(declarations: impl IntoIterator<Item = Declaration>) -> Resumptions {
        let mut by_port: Vec<Declaration> = Vec::new();
        for d in declarations {
            match by_port.binary_search_by(|x| x.port.cmp(&d.port)) {
                Ok(i) => by_port[i] = d,
                Err(i) => by_port.insert(i, d),
            }
        }
        Resumptions { by_port }
    }

    pub fn is_empty(&self) -> bool {
        self.by_port.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_port.len()
    }

    /// Every declaration, by port.
    pub fn iter(&self) -> impl Iterator<Item = &Declaration> {
        self.by_port.iter()
    }

    /// The declaration for `port`, whatever its times.
    pub fn get(&self, port: PortCode) -> Option<&Declaration> {
        self.by_port
            .binary_search_by(|x| x.port.cmp(&port))
            .ok()
            .map(|i| &self.by_port[i])
    }

    /// The declaration that applies to a manifest filed at `filed_at` at `port`, if any.
    #[inline]
    pub fn applies(&self, port: PortCode, filed_at: &Timestamp) -> Option<&Declaration> {
        if self.by_port.is_empty() {
            return None;
        }
        self.get(port).filter(|d| d.covers(filed_at))
    }
}

/// Processing order while a resumption is in force, from the weakest importer standing on the manifest:
/// 1 = validated Tier 3, 2 = validated Tier 2, 3 = certified (Tier 1, also a lapsed validation), 4 = every
/// other standing (no partner, applicant, MRA, suspended, removed; a shipment without an importer of record
/// counts as no partner). Lower goes first.
pub fn priority(importer_standing: Standing) -> u8 {
    match importer_standing {
        Standing::Validated { tier: 3 } => 1,
        Standing::Validated { .. } => 2,
        Standing::Certified => 3,
        Standing::Removed
        | Standing::Suspended
        | Standing::None
        | Standing::Applicant
        | Standing::Mra => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn decl(port: &str, from: &str, until: &str) -> Declaration {
        Declaration {
            port: PortCode::parse(port).unwrap(),
            declared_at: ts(from),
            until: ts(until),
            reason: "r".into(),
            declared_by: "ops".into(),
        }
    }

    #[test]
    fn applies_from_declared_at_up_to_until_exclusive() {
        let r = Resumptions::new([
            decl("2304", "2026-11-28T00:00:00Z", "2026-11-29T00:00:00Z"),
            decl("0901", "2026-11-28T00:00:00Z", "2026-11-30T00:00:00Z"),
        ]);
        let p = PortCode::parse("2304").unwrap();
        assert!(r.applies(p, &ts("2026-11-27T23:59:59Z")).is_none());
        assert!(r.applies(p, &ts("2026-11-28T00:00:00Z")).is_some());
        assert!(r.applies(p, &ts("2026-11-28T23:59:59Z")).is_some());
        assert!(r.applies(p, &ts("2026-11-29T00:00:00Z")).is_none());
        let other = PortCode::parse("3801").unwrap();
        assert!(r.applies(other, &ts("2026-11-28T12:00:00Z")).is_none());
        assert!(Resumptions::NONE
            .applies(p, &ts("2026-11-28T12:00:00Z"))
            .is_none());
    }

    #[test]
    fn a_later_declaration_for_a_port_replaces_the_earlier() {
        let r = Resumptions::new([
            decl("2304", "2026-11-28T00:00:00Z", "2026-11-29T00:00:00Z"),
            decl("2304", "2026-11-28T00:00:00Z", "2026-12-05T00:00:00Z"),
        ]);
        assert_eq!(r.len(), 1);
        let p = PortCode::parse("2304").unwrap();
        assert!(r.applies(p, &ts("2026-12-01T00:00:00Z")).is_some());
    }

    #[test]
    fn priority_orders_tier3_tier2_tier1_then_the_rest() {
        let order: Vec<u8> = [
            Standing::Validated { tier: 3 },
            Standing::Validated { tier: 2 },
            Standing::Certified,
            Standing::None,
            Standing::Applicant,
            Standing::Mra,
            Standing::Suspended,
            Standing::Removed,
        ]
        .into_iter()
        .map(priority)
        .collect();
        assert_eq!(order, [1, 2, 3, 4, 4, 4, 4, 4]);
    }
}
