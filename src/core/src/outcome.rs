//! Exam outcomes: what an examination of a decided manifest found (`docs/wire.md`, "Exam outcome"). The
//! record type, its strict parser — which reports **every** error with its field path, because `POST
//! /outcomes` answers 400 with all of them — and the enrichment the service attaches from the examined
//! decision (its parties and its selection causes).
//!
//! Two forms share one parser: an officer's [`Form::Request`] (no `parties`, no `causes`: the service
//! attaches them from the decision, so an officer cannot name whom a seizure counts against), and a
//! complete [`Form::Record`] as it travels on the outcomes topic (both required, so every instance builds
//! the same history from the topic alone, without the decision). Bad records map onto the manifests'
//! dead-letter kinds ([`ErrorKind`]); no new kind is needed.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::codes::PortCode;
pub use crate::decision::ExamResult;
use crate::decision::{Decision, PartyView, Role, Rule};
use crate::policy::PolicyDoc;
use crate::time::Timestamp;
use crate::wire::{self, BadInput, ErrorKind, Limits, Str};

/// Why the engine selected the examined manifest (a decision may have several causes). Derived from the
/// decision by [`causes_of`]; the string forms are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The score's band maps to an exam (`actions.low` / `medium` / `high`).
    Band,
    /// An `actions.escalation` step raised the action above the band's.
    Escalation,
    /// A watch-list rule fired (`watchlist_hit`).
    WatchList,
    /// Random compliance selection (`random_exam`).
    Random,
    /// Party history added points (`history.discrepancy` / `history.seizure` reasons).
    History,
}

impl Cause {
    pub const ALL: [Cause; 5] = [
        Cause::Band,
        Cause::Escalation,
        Cause::WatchList,
        Cause::Random,
        Cause::History,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Band => "band",
            Cause::Escalation => "escalation",
            Cause::WatchList => "watch_list",
            Cause::Random => "random",
            Cause::History => "history",
        }
    }
    fn parse(s: &str) -> Option<Cause> {
        Cause::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// One party of the examined shipment(s), as the decision's `parties` list has it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OutcomeParty {
    pub role: Role,
    pub id: Str,
    /// The shipment the party belongs to; absent for conveyance-level parties (the carrier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipment_id: Option<Str>,
}

/// A decision's party as an outcome names it.
impl From<&PartyView> for OutcomeParty {
    fn from(p: &PartyView) -> Self {
        OutcomeParty {
            role: p.role,
            id: p.id.clone(),
            shipment_id: p.shipment.as_deref().map(Str::from),
        }
    }
}

/// One exam outcome. Keyed by `(manifest_id, revision)`: a later record with the same key replaces the
/// earlier one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub manifest_id: Str,
    pub revision: u32,
    /// The examined shipment; `None`: the outcome covers every shipment of the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipment_id: Option<Str>,
    pub result: ExamResult,
    /// Finding codes (identifiers); empty for `no_discrepancy`.
    #[serde(default)]
    pub findings: Vec<Str>,
    pub examined_at: Timestamp,
    pub port: PortCode,
    /// The examining officer (the logged-in identity when recorded through the service).
    pub officer: Str,
    /// Every joined party of the examined shipment(s) (importer, shipper, manufacturer, carrier, broker).
    pub parties: Vec<OutcomeParty>,
    /// The selection causes of the examined decision, ascending, without repeats.
    pub causes: Vec<Cause>,
}

impl Outcome {
    /// The replacement key.
    pub fn key(&self) -> (&str, u32) {
        (&self.manifest_id, self.revision)
    }

    /// Attaches the examined decision's parties (those of `shipment_id` and the conveyance's, or all of
    /// them) and selection causes. The decision must be the one the outcome names; an unknown
    /// `shipment_id` is a `bad_value` error at `shipment_id`.
    pub fn enrich(&mut self, decision: &Decision, policy: &PolicyDoc) -> Result<(), FieldError> {
        if decision.manifest_id != self.manifest_id || decision.revision != self.revision {
            return Err(FieldError::new(
                "manifest_id",
                ErrorKind::BadValue,
                format!(
                    "the decision is for {} revision {}, the outcome for {} revision {}",
                    decision.manifest_id, decision.revision, self.manifest_id, self.revision
                ),
            ));
        }
        self.parties = parties_of(decision, self.shipment_id.as_deref()).ok_or_else(|| {
            FieldError::new(
                "shipment_id",
                ErrorKind::BadValue,
                format!(
                    "shipment_id {:?} is not a shipment of manifest {} revision {}",
                    self.shipment_id.as_deref().unwrap_or_default(),
                    self.manifest_id,
                    self.revision
                ),
            )
        })?;
        self.causes = causes_of(decision, policy);
        Ok(())
    }
}

/// The parties an outcome of `decision` counts against: with a `shipment_id`, that shipment's parties and
/// the conveyance's (the carrier carried it); without one, every party. `None` when the decision has no
/// party on that shipment and none of its reasons names it (an unknown shipment). Repeats are dropped.
pub fn parties_of(decision: &Decision, shipment_id: Option<&str>) -> Option<Vec<OutcomeParty>> {
    if let Some(s) = shipment_id {
        let known = decision
            .parties
            .iter()
            .any(|p| p.shipment.as_deref() == Some(s))
            || decision
                .reasons
                .iter()
                .any(|r| r.shipment.as_deref() == Some(s));
        if !known {
            return None;
        }
    }
    let set: BTreeSet<OutcomeParty> = decision
        .parties
        .iter()
        .filter(|p| match (shipment_id, p.shipment.as_deref()) {
            (Some(s), Some(ps)) => s == ps,
            _ => true,
        })
        .map(OutcomeParty::from)
        .collect();
    Some(set.into_iter().collect())
}

/// The selection causes of a decision, ascending. Empty for a released decision: an exam of it was the
/// officer's own referral, not the engine's selection.
pub fn causes_of(decision: &Decision, policy: &PolicyDoc) -> Vec<Cause> {
    causes_from(
        Selection {
            action: decision.action,
            score: decision.score,
            watchlist_hit: decision.watchlist_hit,
            random_exam: decision.random_exam,
            history_points: decision.reasons.iter().any(|r| {
                r.points > 0 && matches!(r.rule, Rule::HistoryDiscrepancy | Rule::HistorySeizure)
            }),
        },
        policy,
    )
}

/// The facts of a decision its selection causes are derived from (as a decision record on the `decisions`
/// topic carries them: `action`, `score`, `watchlist_hit`, `random_exam`, and whether a `history.*` reason
/// added points).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    pub action: crate::decision::Action,
    pub score: i32,
    pub watchlist_hit: bool,
    pub random_exam: bool,
    pub history_points: bool,
}

/// [`causes_of`] from a decision's selection facts.
pub fn causes_from(s: Selection, policy: &PolicyDoc) -> Vec<Cause> {
    let mut out = Vec::new();
    if !s.action.is_exam() {
        return out;
    }
    let (band, escalated) = policy.band_action(s.score);
    let band_action = match band {
        crate::decision::Band::Low => policy.actions.low,
        crate::decision::Band::Medium => policy.actions.medium,
        crate::decision::Band::High => policy.actions.high,
    };
    if band_action.is_exam() {
        out.push(Cause::Band);
    }
    if escalated > band_action {
        out.push(Cause::Escalation);
    }
    if s.watchlist_hit {
        out.push(Cause::WatchList);
    }
    if s.random_exam {
        out.push(Cause::Random);
    }
    if s.history_points {
        out.push(Cause::History);
    }
    out
}

// ---------------------------------------------------------------------------------------------------------
// Parsing

/// Which form of the record is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// An officer's request (`POST /outcomes`): `parties` and `causes` must be absent — the service
    /// attaches them from the examined decision.
    Request,
    /// A complete record (the outcomes topic, `score --outcomes` files): `parties` and `causes` required.
    Record,
}

/// One problem of an outcome record: the field's path, the dead-letter kind, and a message that names the
/// path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub path: String,
    pub kind: ErrorKind,
    pub message: String,
}

impl FieldError {
    fn new(path: impl Into<String>, kind: ErrorKind, message: impl Into<String>) -> FieldError {
        FieldError {
            path: path.into(),
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// Every problem of a refused outcome record, in field order (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeErrors(pub Vec<FieldError>);

impl OutcomeErrors {
    /// The dead letter: the first problem's kind, every message joined with `"; "`.
    pub fn bad_input(&self) -> BadInput {
        let kind = self.0.first().map_or(ErrorKind::BadValue, |e| e.kind);
        let message = self
            .0
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        BadInput::new(kind, message)
    }
}

impl fmt::Display for OutcomeErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.bad_input(), f)
    }
}

impl std::error::Error for OutcomeErrors {}

impl From<BadInput> for OutcomeErrors {
    fn from(b: BadInput) -> Self {
        OutcomeErrors(vec![FieldError {
            path: String::new(),
            kind: b.kind,
            message: b.message,
        }])
    }
}

/// Parses one outcome record. Structural problems (size, encoding, JSON syntax, depth, a repeated key) are
/// reported alone; once the record is a JSON object every field is checked and every problem reported.
/// Unknown fields are ignored, as on manifests.
pub fn parse_outcome(bytes: &[u8], limits: &Limits, form: Form) -> Result<Outcome, OutcomeErrors> {
    let text = wire::precheck(bytes, limits)?;
    let value = match serde_json::from_str::<Strict>(text) {
        Ok(Strict(v)) => v,
        Err(e) => {
            let mut bad = wire::classify(&e);
            if let Some(path) = wire::error_path::<Strict>(text) {
                bad.message = format!("{path}: {}", bad.message);
            }
            return Err(bad.into());
        }
    };
    let Value::Object(obj) = value else {
        return Err(BadInput::new(
            ErrorKind::NotObject,
            "top-level JSON value is not an object",
        )
        .into());
    };
    let mut w = Walk {
        errors: Vec::new(),
        limits,
    };
    let manifest_id = w.id(&obj, "manifest_id", true);
    let revision = w.revision(&obj);
    let shipment_id = w.id(&obj, "shipment_id", false);
    let result = w.string(&obj, "result", true).and_then(|s| {
        let r = ExamResult::parse(s);
        if r.is_none() {
            w.push(
                "result",
                ErrorKind::BadCode,
                format!("result {s:?} is not no_discrepancy, discrepancy or seizure"),
            );
        }
        r
    });
    let findings = w.findings(&obj);
    let examined_at = w.string(&obj, "examined_at", true).and_then(|s| {
        let t = Timestamp::parse(s);
        if t.is_none() {
            w.push(
                "examined_at",
                ErrorKind::BadDate,
                format!("examined_at {s:?} is not an RFC 3339 timestamp between 1970 and 2199"),
            );
        }
        t
    });
    let port = w.string(&obj, "port", true).and_then(|s| {
        let p = PortCode::parse(s);
        if p.is_none() {
            w.push(
                "port",
                ErrorKind::BadCode,
                format!("port {s:?} is not a 4-digit port code"),
            );
        }
        p
    });
    let officer = w.id(&obj, "officer", true);
    let (parties, causes) = match form {
        Form::Request => {
            for key in ["parties", "causes"] {
                if obj.get(key).is_some_and(|v| !v.is_null()) {
                    w.push(
                        key,
                        ErrorKind::BadValue,
                        format!(
                            "{key} is attached by the service from the examined decision; a request may not set it"
                        ),
                    );
                }
            }
            (Some(Vec::new()), Some(Vec::new()))
        }
        Form::Record => (w.parties(&obj, shipment_id.as_ref()), w.causes(&obj)),
    };
    if let (Some(ExamResult::NoDiscrepancy), Some(f)) = (result, &findings) {
        if !f.is_empty() {
            w.push(
                "findings",
                ErrorKind::BadValue,
                format!(
                    "findings has {} codes but result is no_discrepancy",
                    f.len()
                ),
            );
        }
    }
    match (
        manifest_id,
        revision,
        result,
        findings,
        examined_at,
        port,
        officer,
        parties,
        causes,
    ) {
        (
            Some(manifest_id),
            Some(revision),
            Some(result),
            Some(findings),
            Some(examined_at),
            Some(port),
            Some(officer),
            Some(parties),
            Some(causes),
        ) if w.errors.is_empty() => Ok(Outcome {
            manifest_id,
            revision,
            shipment_id,
            result,
            findings,
            examined_at,
            port,
            officer,
            parties,
            causes,
        }),
        _ => Err(OutcomeErrors(w.errors)),
    }
}

/// The field checker: every problem is pushed, nothing stops at the first.
struct Walk<'a> {
    errors: Vec<FieldError>,
    limits: &'a Limits,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Walk<'_> {
    fn push(&mut self, path: impl Into<String>, kind: ErrorKind, message: impl Into<String>) {
        self.errors.push(FieldError::new(path, kind, message));
    }

    fn bad(&mut self, path: impl Into<String>, b: BadInput) {
        self.errors.push(FieldError {
            path: path.into(),
            kind: b.kind,
            message: b.message,
        });
    }

    /// A present, non-null field; a missing required one is reported. Null counts as absent for an
    /// optional field and as the wrong type for a required one.
    fn get<'v>(
        &mut self,
        obj: &'v Map<String, Value>,
        key: &str,
        required: bool,
    ) -> Option<&'v Value> {
        match obj.get(key) {
            None if required => {
                self.push(key, ErrorKind::MissingField, format!("{key} is required"));
                None
            }
            Some(Value::Null) if required => {
                self.push(
                    key,
                    ErrorKind::WrongType,
                    format!("{key} is null, expected a value"),
                );
                None
            }
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    fn string<'v>(
        &mut self,
        obj: &'v Map<String, Value>,
        key: &str,
        required: bool,
    ) -> Option<&'v str> {
        let v = self.get(obj, key, required)?;
        match v {
            Value::String(s) => Some(s),
            other => {
                self.push(
                    key,
                    ErrorKind::WrongType,
                    format!("{key} is {}, expected a string", type_name(other)),
                );
                None
            }
        }
    }

    fn check_id_at(&mut self, path: &str, s: &str) -> Option<Str> {
        match wire::check_id(|| path.to_string(), s, self.limits) {
            Ok(()) => Some(s.into()),
            Err(b) => {
                self.bad(path, b);
                None
            }
        }
    }

    fn id(&mut self, obj: &Map<String, Value>, key: &str, required: bool) -> Option<Str> {
        let s = self.string(obj, key, required)?;
        self.check_id_at(key, s)
    }

    fn revision(&mut self, obj: &Map<String, Value>) -> Option<u32> {
        let v = self.get(obj, "revision", true)?;
        let Value::Number(n) = v else {
            self.push(
                "revision",
                ErrorKind::WrongType,
                format!("revision is {}, expected an integer", type_name(v)),
            );
            return None;
        };
        if let Some(u) = n.as_u64() {
            if let Ok(r) = u32::try_from(u) {
                return Some(r);
            }
            self.push(
                "revision",
                ErrorKind::NumberOutOfRange,
                format!("revision {u} is above {}", u32::MAX),
            );
        } else if n.is_i64() {
            self.push(
                "revision",
                ErrorKind::NumberOutOfRange,
                format!("revision {n} is negative"),
            );
        } else {
            self.push(
                "revision",
                ErrorKind::WrongType,
                format!("revision {n} is not an integer"),
            );
        }
        None
    }

    fn array<'v>(
        &mut self,
        obj: &'v Map<String, Value>,
        key: &str,
        required: bool,
        max: usize,
    ) -> Option<&'v [Value]> {
        let v = self.get(obj, key, required)?;
        let Value::Array(items) = v else {
            self.push(
                key,
                ErrorKind::WrongType,
                format!("{key} is {}, expected an array", type_name(v)),
            );
            return None;
        };
        if items.len() > max {
            self.push(
                key,
                ErrorKind::BadValue,
                format!("{key} has {} items, limit is {max}", items.len()),
            );
            return None;
        }
        Some(items)
    }

    fn findings(&mut self, obj: &Map<String, Value>) -> Option<Vec<Str>> {
        let Some(items) = self.array(obj, "findings", false, self.limits.max_items) else {
            // Absent is no findings; present and bad was reported.
            return obj
                .get("findings")
                .is_none_or(|v| v.is_null())
                .then(Vec::new);
        };
        let before = self.errors.len();
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let path = format!("findings[{i}]");
            match item {
                Value::String(s) => {
                    if let Some(s) = self.check_id_at(&path, s) {
                        out.push(s);
                    }
                }
                other => self.push(
                    &path,
                    ErrorKind::WrongType,
                    format!("{path} is {}, expected a string", type_name(other)),
                ),
            }
        }
        (self.errors.len() == before).then_some(out)
    }

    fn parties(
        &mut self,
        obj: &Map<String, Value>,
        shipment_id: Option<&Str>,
    ) -> Option<Vec<OutcomeParty>> {
        // Every joined role of every shipment, and the carrier.
        let max = self.limits.max_shipments * 4 + 1;
        let items = self.array(obj, "parties", true, max)?;
        let before = self.errors.len();
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let path = format!("parties[{i}]");
            let Value::Object(p) = item else {
                self.push(
                    &path,
                    ErrorKind::WrongType,
                    format!("{path} is {}, expected an object", type_name(item)),
                );
                continue;
            };
            let role = match p.get("role") {
                None | Some(Value::Null) => {
                    self.push(
                        format!("{path}.role"),
                        ErrorKind::MissingField,
                        format!("{path}.role is required"),
                    );
                    None
                }
                Some(Value::String(s)) => {
                    let r = Role::JOINED.into_iter().find(|r| r.as_str() == s);
                    if r.is_none() {
                        self.push(
                            format!("{path}.role"),
                            ErrorKind::BadCode,
                            format!("{path}.role {s:?} is not importer, carrier, manufacturer, shipper or broker"),
                        );
                    }
                    r
                }
                Some(other) => {
                    self.push(
                        format!("{path}.role"),
                        ErrorKind::WrongType,
                        format!("{path}.role is {}, expected a string", type_name(other)),
                    );
                    None
                }
            };
            let id = self.sub_id(p, &path, "id", true);
            let sid = self.sub_id(p, &path, "shipment_id", false);
            if let (Some(want), Some(have)) = (shipment_id, &sid) {
                if want != have {
                    self.push(
                        format!("{path}.shipment_id"),
                        ErrorKind::BadValue,
                        format!(
                            "{path}.shipment_id {have:?} is not the examined shipment {want:?}"
                        ),
                    );
                }
            }
            if let (Some(role), Some(id)) = (role, id) {
                out.push(OutcomeParty {
                    role,
                    id,
                    shipment_id: sid,
                });
            }
        }
        (self.errors.len() == before).then_some(out)
    }

    fn sub_id(
        &mut self,
        p: &Map<String, Value>,
        path: &str,
        key: &str,
        required: bool,
    ) -> Option<Str> {
        let at = format!("{path}.{key}");
        match p.get(key) {
            None | Some(Value::Null) if !required => None,
            None | Some(Value::Null) => {
                self.push(&at, ErrorKind::MissingField, format!("{at} is required"));
                None
            }
            Some(Value::String(s)) => self.check_id_at(&at, s),
            Some(other) => {
                self.push(
                    &at,
                    ErrorKind::WrongType,
                    format!("{at} is {}, expected a string", type_name(other)),
                );
                None
            }
        }
    }

    fn causes(&mut self, obj: &Map<String, Value>) -> Option<Vec<Cause>> {
        let items = self.array(obj, "causes", true, Cause::ALL.len())?;
        let before = self.errors.len();
        let mut out: Vec<Cause> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let path = format!("causes[{i}]");
            match item {
                Value::String(s) => match Cause::parse(s) {
                    Some(c) if out.contains(&c) => self.push(
                        &path,
                        ErrorKind::BadValue,
                        format!("{path} {s:?} repeats an earlier cause"),
                    ),
                    Some(c) => out.push(c),
                    None => self.push(
                        &path,
                        ErrorKind::BadCode,
                        format!(
                            "{path} {s:?} is not band, escalation, watch_list, random or history"
                        ),
                    ),
                },
                other => self.push(
                    &path,
                    ErrorKind::WrongType,
                    format!("{path} is {}, expected a string", type_name(other)),
                ),
            }
        }
        out.sort_unstable();
        (self.errors.len() == before).then_some(out)
    }
}

/// A JSON value whose objects may not repeat a key (`serde_json::Value` keeps the last silently; the
/// manifests' derived types refuse repeats, and so must this).
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = r#"{
      "manifest_id": "TRK-2304-20261128-000001", "revision": 1, "shipment_id": "S1",
      "result": "seizure", "findings": ["UNDECLARED-FIREARMS", "MISDESCRIBED"],
      "examined_at": "2026-11-28T06:10:00Z", "port": "2304", "officer": "officer-17",
      "parties": [
        {"role": "carrier", "id": "ABCD"},
        {"role": "importer", "id": "12-3456789AB", "shipment_id": "S1"},
        {"role": "manufacturer", "id": "MXMAQNOR1200TIJ", "shipment_id": "S1"}
      ],
      "causes": ["band", "random"]
    }"#;

    fn record(s: &str) -> Result<Outcome, OutcomeErrors> {
        parse_outcome(s.as_bytes(), &Limits::default(), Form::Record)
    }

    fn errors(s: &str, form: Form) -> Vec<(String, ErrorKind)> {
        parse_outcome(s.as_bytes(), &Limits::default(), form)
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| (e.path, e.kind))
            .collect()
    }

    #[test]
    fn parses_a_complete_record_and_round_trips() {
        let o = record(RECORD).unwrap();
        assert_eq!(o.key(), ("TRK-2304-20261128-000001", 1));
        assert_eq!(o.result, ExamResult::Seizure);
        assert_eq!(o.parties.len(), 3);
        assert_eq!(o.causes, vec![Cause::Band, Cause::Random]);
        let again = serde_json::to_string(&o).unwrap();
        assert_eq!(record(&again).unwrap(), o);
    }

    #[test]
    fn a_request_is_the_record_without_parties_and_causes() {
        let req = r#"{"manifest_id": "M1", "revision": 0, "result": "no_discrepancy",
            "examined_at": "2026-11-28T06:10:00+01:00", "port": "2304", "officer": "o1"}"#;
        let o = parse_outcome(req.as_bytes(), &Limits::default(), Form::Request).unwrap();
        assert!(o.parties.is_empty() && o.causes.is_empty() && o.findings.is_empty());
        assert_eq!(o.shipment_id, None);
        // The record form needs both.
        assert_eq!(
            errors(req, Form::Record),
            vec![
                ("parties".into(), ErrorKind::MissingField),
                ("causes".into(), ErrorKind::MissingField)
            ]
        );
        // An officer may not name the parties a result counts against.
        assert_eq!(
            errors(RECORD, Form::Request),
            vec![
                ("parties".into(), ErrorKind::BadValue),
                ("causes".into(), ErrorKind::BadValue)
            ]
        );
    }

    #[test]
    fn reports_every_error_with_its_path() {
        let bad = r#"{"revision": -1, "shipment_id": "", "result": "found_stuff",
            "findings": ["OK", 7, "bad id"], "examined_at": "2026-02-30T00:00:00Z", "port": "23O4",
            "officer": 5, "parties": [{"role": "consignee", "id": "X"}, {"id": "Y"}, 3,
            {"role": "importer", "id": "I", "shipment_id": "S9"}],
            "causes": ["band", "band", "hunch"]}"#;
        let got = errors(bad, Form::Record);
        let want: Vec<(String, ErrorKind)> = [
            ("manifest_id", ErrorKind::MissingField),
            ("revision", ErrorKind::NumberOutOfRange),
            ("shipment_id", ErrorKind::BadValue),
            ("result", ErrorKind::BadCode),
            ("findings[1]", ErrorKind::WrongType),
            ("findings[2]", ErrorKind::BadValue),
            ("examined_at", ErrorKind::BadDate),
            ("port", ErrorKind::BadCode),
            ("officer", ErrorKind::WrongType),
            ("parties[0].role", ErrorKind::BadCode),
            ("parties[1].role", ErrorKind::MissingField),
            ("parties[2]", ErrorKind::WrongType),
            ("causes[1]", ErrorKind::BadValue),
            ("causes[2]", ErrorKind::BadCode),
        ]
        .into_iter()
        .map(|(p, k)| (p.to_string(), k))
        .collect();
        assert_eq!(got, want);
        // The dead letter: the first kind, every message.
        let b = record(bad).unwrap_err().bad_input();
        assert_eq!(b.kind, ErrorKind::MissingField);
        assert!(b.message.contains("manifest_id is required"));
        assert!(b.message.contains("findings[2] contains U+0020 at byte 3"));
        assert!(b.message.contains("causes[2] \"hunch\""));
    }

    #[test]
    fn a_party_of_another_shipment_is_refused() {
        let s = RECORD.replace(
            r#""id": "12-3456789AB", "shipment_id": "S1""#,
            r#""id": "12-3456789AB", "shipment_id": "S2""#,
        );
        assert_eq!(
            errors(&s, Form::Record),
            vec![("parties[1].shipment_id".into(), ErrorKind::BadValue)]
        );
    }

    #[test]
    fn no_discrepancy_has_no_findings() {
        let s = RECORD.replace("\"seizure\"", "\"no_discrepancy\"");
        assert_eq!(
            errors(&s, Form::Record),
            vec![("findings".into(), ErrorKind::BadValue)]
        );
    }

    #[test]
    fn structural_errors_are_the_manifests_kinds() {
        let kind = |s: &[u8]| {
            parse_outcome(s, &Limits::default(), Form::Record)
                .unwrap_err()
                .bad_input()
                .kind
        };
        assert_eq!(kind(b""), ErrorKind::Empty);
        assert_eq!(kind(b"{\"a\":\xff}"), ErrorKind::NotUtf8);
        assert_eq!(kind(b"[1]"), ErrorKind::NotObject);
        assert_eq!(kind(b"{\"manifest_id\": }"), ErrorKind::InvalidJson);
        assert_eq!(kind(&RECORD.as_bytes()[..100]), ErrorKind::TruncatedJson);
        let deep = format!("{{\"x\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert_eq!(kind(deep.as_bytes()), ErrorKind::TooDeep);
        let dup = RECORD.replace("\"revision\": 1", "\"revision\": 1, \"revision\": 2");
        let e = record(&dup).unwrap_err().bad_input();
        assert_eq!(e.kind, ErrorKind::DuplicateField);
        assert!(e.message.contains("revision"), "{}", e.message);
        let nested_dup = RECORD.replace(
            r#"{"role": "carrier", "id": "ABCD"}"#,
            r#"{"role": "carrier", "id": "ABCD", "id": "EFGH"}"#,
        );
        let e = record(&nested_dup).unwrap_err().bad_input();
        assert_eq!(e.kind, ErrorKind::DuplicateField);
        assert!(e.message.contains("parties[0]"), "{}", e.message);
        let small = Limits {
            max_bytes: 50,
            ..Limits::default()
        };
        assert_eq!(
            parse_outcome(RECORD.as_bytes(), &small, Form::Record)
                .unwrap_err()
                .bad_input()
                .kind,
            ErrorKind::Oversized
        );
        // Arbitrary bytes never panic.
        for n in 0..RECORD.len() {
            let _ = record(&RECORD[..n]);
        }
    }

    #[test]
    fn unknown_fields_are_ignored_and_limits_hold() {
        let s = RECORD.replace("\"port\"", "\"extra\": {\"a\": [1]}, \"port\"");
        assert!(record(&s).is_ok());
        let many = format!(
            "[{}]",
            vec!["\"F\""; Limits::default().max_items + 1].join(",")
        );
        let s = RECORD.replace(r#"["UNDECLARED-FIREARMS", "MISDESCRIBED"]"#, &many);
        assert_eq!(
            errors(&s, Form::Record),
            vec![("findings".into(), ErrorKind::BadValue)]
        );
        let s = RECORD.replace("\"revision\": 1", "\"revision\": 4294967296");
        assert_eq!(
            errors(&s, Form::Record),
            vec![("revision".into(), ErrorKind::NumberOutOfRange)]
        );
        let s = RECORD.replace("\"revision\": 1", "\"revision\": 1.5");
        assert_eq!(
            errors(&s, Form::Record),
            vec![("revision".into(), ErrorKind::WrongType)]
        );
    }
}
