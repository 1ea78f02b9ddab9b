//! Property tests for "The contract" of shared/spec/wire.md: determinism, one outcome per input, monotonic
//! favouring of CTPAT partners, FAST lane only when every condition holds, watch-list hits always examined
//! and explained, validated importers exempt from random exams, and the random selection rate and its
//! stability. Every decision is also checked for reasons summing to the score.
//!
//! Manifests and partner tables are generated as structs (`Manifest`, `Partner`) from small pools of party
//! ids, so joins, lapses, watch-list hits and every rule actually happen; they then go through the wire
//! (`serde_json` bytes → `process`), exactly as the engine receives them.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use borderlane_core::score::random_draw;
use borderlane_core::time::{Date, Timestamp};
use borderlane_core::wire::{
    Carrier, Commodity, Driver, Entity, Equipment, IdKind, Identifier, Mode, Party, Seal,
    SealAffixer, SealClass, Shipment, Status, Str,
};
use borderlane_core::{codes::Country, codes::Hts, codes::PortCode, PartnerTable};
use borderlane_core::{process, Action, CompiledPolicy, ErrorKind, Limits, Manifest, Partner};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::FileFailurePersistence;
use serde_json::Value as Json;

const DEFAULT_POLICY: &str = include_str!("../../../config/policy.toml");

const DEFAULT_RATES: &str = r#"rates.truck = { non_partner = 0.03, certified = 0.015 }
rates.rail = { non_partner = 0.03, certified = 0.015 }
rates.ocean = { non_partner = 0.02, certified = 0.01 }
rates.air = { non_partner = 0.01, certified = 0.005 }"#;

/// The default policy with every random rate replaced.
fn policy_with_rates(non_partner: f64, certified: f64) -> CompiledPolicy {
    assert!(
        DEFAULT_POLICY.contains(DEFAULT_RATES),
        "policy.toml changed"
    );
    let rates = ["truck", "rail", "ocean", "air"]
        .map(|m| {
            format!("rates.{m} = {{ non_partner = {non_partner:?}, certified = {certified:?} }}")
        })
        .join("\n");
    CompiledPolicy::from_toml(&DEFAULT_POLICY.replace(DEFAULT_RATES, &rates)).expect("valid policy")
}

fn default_policy() -> &'static CompiledPolicy {
    static P: OnceLock<CompiledPolicy> = OnceLock::new();
    P.get_or_init(|| CompiledPolicy::from_toml(DEFAULT_POLICY).expect("default policy"))
}

/// Random rates high enough that random selection interacts with everything else.
fn boosted_policy() -> &'static CompiledPolicy {
    static P: OnceLock<CompiledPolicy> = OnceLock::new();
    P.get_or_init(|| policy_with_rates(0.5, 0.25))
}

/// Every non-exempt conveyance is selected: random_exam is exactly "not exempt".
fn rate_one_policy() -> &'static CompiledPolicy {
    static P: OnceLock<CompiledPolicy> = OnceLock::new();
    P.get_or_init(|| policy_with_rates(1.0, 1.0))
}

// ---------------------------------------------------------------------------------------------------------
// Facts of the default policy the independent model needs (config/policy.toml).

const FAST_PORTS: &[&str] = &[
    "2304", "2305", "2402", "2506", "2507", "2604", "3801", "3802", "0901", "0712", "3004",
];
const SOUTH_PORTS: &[&str] = &[
    "2304", "2305", "2402", "2506", "2507", "2604", "2301", "2503",
];
const NO_BORDER_PORTS: &[&str] = &[
    "2704", "2709", "1001", "4601", "1703", "5301", "4701", "2720",
];
/// Ports the generator draws from: FAST and non-FAST on both borders, sea and air.
const PORTS: &[&str] = &[
    "2304", "2301", "2604", "3801", "3310", "0901", "2704", "4701",
];
const REVALIDATION_DAYS: i32 = 1461;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum R {
    Importer,
    Carrier,
    Manufacturer,
    Shipper,
    Broker,
}

impl R {
    fn name(self) -> &'static str {
        match self {
            R::Importer => "importer",
            R::Carrier => "carrier",
            R::Manufacturer => "manufacturer",
            R::Shipper => "shipper",
            R::Broker => "broker",
        }
    }
    /// `[ctpat.join.<role>].entities`.
    fn accepts(self, e: Entity) -> bool {
        use Entity::*;
        match self {
            R::Importer => e == Importer,
            R::Carrier => matches!(e, HighwayCarrier | RailCarrier | SeaCarrier | AirCarrier),
            R::Manufacturer => matches!(e, Manufacturer | MraForeign),
            R::Shipper => matches!(
                e,
                Manufacturer | Exporter | Consolidator | ThirdPartyLogistics | MraForeign
            ),
            R::Broker => e == Broker,
        }
    }
    /// An entity the role accepts, for partners built at a chosen standing.
    fn canonical(self) -> Entity {
        match self {
            R::Importer => Entity::Importer,
            R::Carrier => Entity::HighwayCarrier,
            R::Manufacturer => Entity::Manufacturer,
            R::Shipper => Entity::Exporter,
            R::Broker => Entity::Broker,
        }
    }
    /// Identifier kinds the generator files this role's partners under (all in the role's join kinds).
    fn kinds(self) -> &'static [IdKind] {
        match self {
            R::Importer => &[IdKind::Ior, IdKind::Ein],
            R::Carrier => &[IdKind::Scac],
            R::Manufacturer => &[IdKind::Mid],
            R::Shipper => &[IdKind::Duns],
            R::Broker => &[IdKind::FilerCode],
        }
    }
    /// Entities a generated partner of this role may have: mostly accepted ones, some not.
    fn entities(self) -> &'static [Entity] {
        use Entity::*;
        match self {
            R::Importer => &[Importer, Importer, Importer, Exporter],
            R::Carrier => &[HighwayCarrier, HighwayCarrier, RailCarrier, Broker],
            R::Manufacturer => &[Manufacturer, Manufacturer, MraForeign, Exporter],
            R::Shipper => &[Exporter, Manufacturer, MraForeign, Importer],
            R::Broker => &[Broker, Broker, MraForeign],
        }
    }
    /// Party ids of this role (disjoint across roles); the last of importer/carrier/manufacturer is
    /// watch-listed in the default policy.
    fn pool(self) -> &'static [&'static str] {
        match self {
            R::Importer => &[
                "10-0000001AA",
                "10-0000002AA",
                "10-0000003AA",
                "99-0000666XX",
            ],
            R::Carrier => &["CARA", "CARB", "ZZZQ"],
            R::Manufacturer => &["MXMFRA01TIJ", "MXMFRB02TIJ", "MXFANTASMA99TIJ"],
            R::Shipper => &["100000001", "100000002"],
            R::Broker => &["B01", "B02"],
        }
    }
    const ALL: [R; 5] = [
        R::Importer,
        R::Carrier,
        R::Manufacturer,
        R::Shipper,
        R::Broker,
    ];
}

// ---------------------------------------------------------------------------------------------------------
// Generators.

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_unix_seconds(secs).expect("in range")
}

fn date(s: &str) -> Date {
    Date::parse(s).expect("valid date")
}

fn arb_party(role: R) -> impl Strategy<Value = Party> {
    (
        select(role.pool()),
        prop::option::of(select(&["Acme", "Fantasma Exports S.A.", "Contoso"][..])),
    )
        .prop_map(|(id, name)| Party {
            id: id.into(),
            name: name.map(Str::from),
            country: None,
        })
}

fn arb_commodity() -> impl Strategy<Value = Commodity> {
    (
        select(
            &[
                "940330", "620342", "300490", "854231", "930200", "847130", "850440", "070200",
                "290000",
            ][..],
        ),
        select(
            &[
                "wooden office desks",
                "FAK",
                "general merchandise",
                "FAKE fur",
                "spare parts",
                "counterparts",
                "tomatoes",
            ][..],
        ),
        // At least 0.5 kg: a lighter line could declare more than the policy's plausibility.max_value_per_kg
        // (1e8 USD/kg) and be dead-lettered, which these properties of valid manifests do not expect (found by
        // proptest: 823 696 USD on 0.0005 kg; the case stays in contract.regressions).
        prop::option::of(0.5f64..5000.0),
        prop::option::of(0.0f64..1_000_000.0),
    )
        .prop_map(|(hts, d, w, v)| Commodity {
            weight_kg: w,
            value_usd: v,
            ..Commodity::new(Hts::parse(hts).expect("valid hts"), d.into())
        })
}

fn arb_shipment(i: usize) -> impl Strategy<Value = Shipment> {
    (
        prop::option::weighted(0.85, arb_party(R::Importer)),
        prop::option::of(select(&["Contoso DC", "global trading-shell, LLC"][..])),
        prop::option::of(arb_party(R::Shipper)),
        prop::option::weighted(0.8, arb_party(R::Manufacturer)),
        prop::option::of(arb_party(R::Broker)),
        select(&["MX", "CA", "CN", "CO", "KP", "IR", "US", "DE"][..]),
        prop::collection::vec(select(&["PA", "VE", "HN", "DE", "AE"][..]), 0..4),
        prop::collection::vec(arb_commodity(), 1..3),
    )
        .prop_map(
            move |(
                importer,
                consignee,
                shipper,
                manufacturer,
                broker,
                origin,
                transit,
                commodities,
            )| {
                Shipment {
                    shipment_id: format!("S-{i}").into(),
                    importer,
                    consignee: consignee.map(|n| Party {
                        id: "CONS-1".into(),
                        name: Some(n.into()),
                        country: None,
                    }),
                    shipper,
                    manufacturer,
                    broker,
                    origin_country: Country::parse(origin).expect("valid country"),
                    transit_countries: transit
                        .into_iter()
                        .map(|c| Country::parse(c).expect("valid country"))
                        .collect(),
                    departure_country: None,
                    commodities,
                }
            },
        )
}

fn arb_seal() -> impl Strategy<Value = Seal> {
    (
        prop::option::weighted(
            0.9,
            select(&[SealClass::H, SealClass::H, SealClass::S, SealClass::I][..]),
        ),
        prop::option::weighted(
            0.9,
            select(
                &[
                    SealAffixer::Manufacturer,
                    SealAffixer::Manufacturer,
                    SealAffixer::Carrier,
                ][..],
            ),
        ),
    )
        .prop_map(|(c, a)| Seal {
            number: "SEAL-1".into(),
            iso17712: c,
            affixed_by: a,
        })
}

fn arb_driver() -> impl Strategy<Value = Driver> {
    (
        select(&["J. Perez", "M. Tremblay", "Global Trading Shell LLC"][..]),
        prop::option::weighted(0.85, select(&["42700000001", "42700000002", "  "][..])),
    )
        .prop_map(|(n, c)| Driver {
            name: n.into(),
            fast_card: c.map(Str::from),
        })
}

prop_compose! {
    fn arb_manifest()(
        n in 0u32..1_000_000,
        revision in 0u32..4,
        // 2024-01-01 .. 2027-12-31
        filed in 1_704_067_200i64..1_830_211_200,
        // Trucks dominate: they are where FAST and most rules apply.
        mode in select(&[Mode::Truck, Mode::Truck, Mode::Truck, Mode::Rail, Mode::Ocean, Mode::Air][..]),
        port in select(PORTS),
        lead in prop::option::weighted(0.9, -120i64..3000),
        carrier in prop::option::weighted(0.9, (select(R::Carrier.pool()),
            prop::option::of(select(&["Acme", "Global Trading Shell LLC"][..])))),
        drivers in prop::collection::vec(arb_driver(), 0..3),
        equipment in prop::collection::vec(prop::collection::vec(arb_seal(), 0..3), 0..3),
        shipments in (1usize..4).prop_flat_map(|k| (0..k).map(arb_shipment).collect::<Vec<_>>()),
    ) -> Manifest {
        Manifest {
            schema_version: None,
            manifest_id: format!("PT-{n:07}").into(),
            revision,
            filed_at: ts(filed),
            mode,
            port_of_entry: PortCode::parse(port).expect("valid port"),
            estimated_arrival: lead.map(|m| ts(filed + m * 60)),
            carrier: carrier.map(|(scac, name)| Carrier { scac: scac.into(), name: name.map(Str::from) }),
            conveyance: None,
            drivers: if mode == Mode::Truck { drivers } else { Vec::new() },
            equipment: equipment
                .into_iter()
                .enumerate()
                .map(|(i, seals)| Equipment { id: format!("EQ-{i}").into(), seals })
                .collect(),
            shipments,
        }
    }
}

/// What a generated partner is, before it becomes a wire record.
#[derive(Debug, Clone)]
struct Spec {
    id: &'static str,
    kind: IdKind,
    entity: Entity,
    status: Status,
    tier: Option<u8>,
    certified_on: Option<Date>,
    validated_on: Option<Date>,
}

impl Spec {
    fn partner(&self) -> Partner {
        Partner {
            partner_id: format!("P-{}", self.id).into(),
            entity: self.entity,
            identifiers: [Identifier {
                kind: self.kind,
                value: self.id.into(),
            }]
            .into(),
            status: self.status,
            tier: self.tier,
            certified_on: self.certified_on,
            validated_on: self.validated_on,
            trade_compliance: false,
            mra_program: (self.entity == Entity::MraForeign).then(|| "EU-AEO".into()),
            updated_at: None,
        }
    }
}

fn arb_spec(role: R, id: &'static str) -> impl Strategy<Value = Spec> {
    (
        select(role.kinds()),
        select(role.entities()),
        select(
            &[
                Status::Applicant,
                Status::Certified,
                Status::Certified,
                Status::Validated,
                Status::Validated,
                Status::Validated,
                Status::Suspended,
                Status::Removed,
            ][..],
        ),
        prop::option::weighted(0.8, 1u8..=3),
        // Certified 2018-01-01 .. ~2028: before, around and after the generated filing dates.
        prop::option::weighted(0.9, 0i32..3800),
        prop::option::weighted(0.8, 0i32..2500),
    )
        .prop_map(move |(kind, entity, status, tier, cert, val)| {
            let base = date("2018-01-01");
            let certified_on = cert.map(|d| base.plus_days(d));
            // validated_on is never before certified_on (the parser rejects that).
            let validated_on = val.map(|d| certified_on.unwrap_or(base).plus_days(d));
            Spec {
                id,
                kind,
                entity,
                status,
                tier,
                certified_on,
                validated_on,
            }
        })
}

/// Zero or one partner for every id of every pool.
fn arb_specs() -> impl Strategy<Value = Vec<Spec>> {
    let per_id: Vec<_> = R::ALL
        .iter()
        .flat_map(|&r| {
            r.pool()
                .iter()
                .map(move |&id| prop::option::weighted(0.7, arb_spec(r, id)))
        })
        .collect();
    per_id.prop_map(|v| v.into_iter().flatten().collect())
}

fn table_of(specs: &[Spec]) -> PartnerTable {
    let t = PartnerTable::new();
    for s in specs {
        t.upsert(s.partner());
    }
    t
}

// ---------------------------------------------------------------------------------------------------------
// Running and reading decisions.

fn bytes_of(m: &Manifest) -> Vec<u8> {
    serde_json::to_vec(m).expect("manifest serialises")
}

/// Decides a generated manifest through the wire; generated manifests are valid, so this must succeed.
fn decide(policy: &CompiledPolicy, table: &PartnerTable, m: &Manifest) -> Json {
    let (_, d) = process(policy, table, &bytes_of(m), &Limits::default())
        .unwrap_or_else(|e| panic!("a generated manifest was dead-lettered: {e}"));
    let j = serde_json::to_value(&d).expect("decision serialises");
    check_reasons_sum(&j);
    j
}

/// Contract: the reasons' points sum to the score.
fn check_reasons_sum(d: &Json) {
    let sum: i64 = d["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .map(|r| r["points"].as_i64().expect("points"))
        .sum();
    assert_eq!(
        Some(sum),
        d["score"].as_i64(),
        "reasons do not sum to the score: {d:#}"
    );
}

fn action(d: &Json) -> Action {
    serde_json::from_value(d["action"].clone()).expect("action")
}

fn score(d: &Json) -> i64 {
    d["score"].as_i64().expect("score")
}

// ---------------------------------------------------------------------------------------------------------
// The independent model: a party's standing at filing, from the spec of wire.md, not from the core.

fn filed_date(m: &Manifest) -> Date {
    m.filed_at.date()
}

/// The standing name (as on the decision) of `id` in `role`, judged on `filed`.
fn model_standing(specs: &[Spec], role: R, id: &str, filed: Date) -> &'static str {
    let Some(s) = specs.iter().find(|s| s.id == id) else {
        return "none";
    };
    if !role.accepts(s.entity) || !role.kinds().contains(&s.kind) {
        return "none";
    }
    let certified_by_filing = s.certified_on.is_none_or(|c| c <= filed);
    let mra = s.entity == Entity::MraForeign;
    let trusted = |name: &'static str| if mra { "mra" } else { name };
    match s.status {
        Status::Removed => "removed",
        Status::Suspended => "suspended",
        Status::Applicant => "applicant",
        _ if !certified_by_filing => "applicant",
        Status::Certified => trusted("certified"),
        Status::Validated => match s.validated_on {
            Some(v) if v > filed => trusted("certified"),
            Some(v) if v.days_until(filed) > REVALIDATION_DAYS => trusted("certified"),
            _ if s.tier.unwrap_or(2) >= 3 => trusted("validated_tier3"),
            _ => trusted("validated"),
        },
    }
}

fn is_ctpat(standing: &str) -> bool {
    matches!(standing, "certified" | "validated" | "validated_tier3")
}

/// Every (role, id) party of the manifest, in the roles joined against partners.
fn parties_of(m: &Manifest) -> Vec<(R, Str)> {
    let mut out = Vec::new();
    if let Some(c) = &m.carrier {
        out.push((R::Carrier, c.scac.clone()));
    }
    for s in &m.shipments {
        for (r, p) in [
            (R::Importer, &s.importer),
            (R::Manufacturer, &s.manufacturer),
            (R::Shipper, &s.shipper),
            (R::Broker, &s.broker),
        ] {
            if let Some(p) = p {
                out.push((r, p.id.clone()));
            }
        }
    }
    out
}

/// The FAST conditions of contract 4 that `m` fails, judged from the manifest, the partner specs and the
/// decided action only.
fn model_fast_missing(m: &Manifest, specs: &[Spec], action: Action) -> BTreeSet<&'static str> {
    let filed = filed_date(m);
    let port = m.port_of_entry.as_str();
    let ctpat = |r: R, id: &str| is_ctpat(model_standing(specs, r, id, filed));
    let mut missing = BTreeSet::new();
    if m.mode != Mode::Truck {
        missing.insert("truck_mode");
    }
    if !FAST_PORTS.contains(&port) {
        missing.insert("fast_lane_port");
    }
    if action != Action::Release {
        missing.insert("release");
    }
    let carded = |d: &Driver| d.fast_card.as_deref().is_some_and(|c| !c.trim().is_empty());
    if m.drivers.is_empty() || !m.drivers.iter().all(carded) {
        missing.insert("driver_fast_card");
    }
    if !m
        .carrier
        .as_ref()
        .is_some_and(|c| ctpat(R::Carrier, &c.scac))
    {
        missing.insert("carrier_ctpat");
    }
    let every = |r: R, f: fn(&Shipment) -> &Option<Party>| {
        m.shipments
            .iter()
            .all(|s| f(s).as_ref().is_some_and(|p| ctpat(r, &p.id)))
    };
    if !every(R::Importer, |s| &s.importer) {
        missing.insert("importer_ctpat");
    }
    if SOUTH_PORTS.contains(&port) {
        if !every(R::Manufacturer, |s| &s.manufacturer) {
            missing.insert("manufacturer_ctpat");
        }
        let sealed = !m.equipment.is_empty()
            && m.equipment.iter().all(|e| {
                !e.seals.is_empty()
                    && e.seals.iter().all(|s| {
                        s.iso17712 == Some(SealClass::H)
                            && s.affixed_by == Some(SealAffixer::Manufacturer)
                    })
            });
        if !sealed {
            missing.insert("manufacturer_seal");
        }
    }
    missing
}

// ---------------------------------------------------------------------------------------------------------
// Properties.

/// Standings a single party is raised through (contract 3). `None` means no partner record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Removed,
    Suspended,
    None,
    Certified,
    Tier2,
    Tier3,
}

/// (lower, higher) pairs along none → certified → validated tier 2 → tier 3, and suspended/removed
/// upward from there.
fn arb_raise() -> impl Strategy<Value = (Level, Level)> {
    use Level::*;
    let all = [Removed, Suspended, None, Certified, Tier2, Tier3];
    // Every strict raise except removed → suspended (the contract does not order the two penalties).
    let pairs: Vec<(Level, Level)> = all
        .iter()
        .flat_map(|&a| all.iter().map(move |&b| (a, b)))
        .filter(|&(a, b)| a < b && (a, b) != (Removed, Suspended))
        .collect();
    select(pairs)
}

fn spec_at(role: R, id: &'static str, level: Level, filed: Date) -> Option<Spec> {
    let (status, tier, validated_on) = match level {
        Level::None => return None,
        Level::Removed => (Status::Removed, None, None),
        Level::Suspended => (Status::Suspended, None, None),
        Level::Certified => (Status::Certified, Some(1), None),
        Level::Tier2 => (Status::Validated, Some(2), Some(filed.plus_days(-100))),
        Level::Tier3 => (Status::Validated, Some(3), Some(filed.plus_days(-100))),
    };
    Some(Spec {
        id,
        kind: role.kinds()[0],
        entity: role.canonical(),
        status,
        tier,
        certified_on: Some(filed.plus_days(-1000)),
        validated_on,
    })
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Shrinking stays bounded on a busy machine.
        max_shrink_iters: 2000,
        // Seeds of past failures live beside this file (tests/contract.regressions) and are replayed first.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(800))]

    /// Contract 2: same manifest, partner table and policy → the same decision, field for field; also
    /// across two tables built independently (different insertion order, a partner added and tombstoned).
    #[test]
    fn deterministic(m in arb_manifest(), specs in arb_specs()) {
        let policy = boosted_policy();
        let a = table_of(&specs);
        // Same content, built differently: a decoy first takes one partner's identifier, the real partners
        // are inserted in reverse order (taking it back), then the decoy is tombstoned.
        let b = PartnerTable::new();
        if let Some(first) = specs.first() {
            let mut decoy = first.partner();
            decoy.partner_id = "P-DECOY".into();
            b.upsert(decoy);
        }
        for s in specs.iter().rev() {
            b.upsert(s.partner());
        }
        b.remove("P-DECOY");
        let first = decide(policy, &a, &m);
        prop_assert_eq!(&first, &decide(policy, &a, &m));
        prop_assert_eq!(&first, &decide(policy, &b, &m));
    }
}

proptest! {
    #![proptest_config(config(400))]

    /// A decision names each party view's and reason's shipment by that shipment's id, and every view and
    /// reason of one shipment shares one copy of it (one allocation a shipment, not one a copy).
    #[test]
    fn shipment_ids_named_and_shared(m in arb_manifest(), specs in arb_specs()) {
        let table = table_of(&specs);
        let (m, d) = process(boosted_policy(), &table, &bytes_of(&m), &Limits::default())
            .unwrap_or_else(|e| panic!("a generated manifest was dead-lettered: {e}"));
        let mut first: Vec<Option<std::sync::Arc<str>>> = vec![None; m.shipments.len()];
        for p in &d.parties {
            match (p.shipment_index, &p.shipment) {
                (None, None) => {}
                (Some(i), Some(id)) => {
                    prop_assert_eq!(&**id, m.shipments[usize::from(i)].shipment_id.as_str());
                    let shared = first[usize::from(i)].get_or_insert_with(|| id.clone());
                    prop_assert!(std::sync::Arc::ptr_eq(shared, id));
                }
                other => prop_assert!(false, "index and id disagree: {:?}", other),
            }
        }
        for r in &d.reasons {
            let Some(id) = &r.shipment else { continue };
            let i = m.shipments.iter().position(|s| s.shipment_id.as_str() == &**id);
            prop_assert!(i.is_some(), "reason names no shipment of the manifest: {}", id);
            if let Some(shared) = &first[i.unwrap_or_default()] {
                prop_assert!(std::sync::Arc::ptr_eq(shared, id));
            }
        }
    }
}

proptest! {
    #![proptest_config(config(3000))]

    /// Contract 1/8: arbitrary bytes give exactly one outcome — a decision or a dead letter with a kind and
    /// a message — and never a panic.
    #[test]
    fn arbitrary_bytes_one_outcome(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let table = PartnerTable::new();
        match process(default_policy(), &table, &bytes, &Limits::default()) {
            Ok((_, d)) => check_reasons_sum(&serde_json::to_value(&d).expect("serialises")),
            Err(e) => {
                prop_assert!(ErrorKind::ALL.contains(&e.kind));
                prop_assert!(!e.message.is_empty());
            }
        }
    }
}

/// JSON values that are wrong somewhere in a manifest.
const JUNK: &[&str] = &[
    "null",
    "true",
    "-1",
    "0",
    "1e300",
    "-1e300",
    "4294967296",
    "18446744073709551616",
    "-0.0",
    "\"\"",
    "\"XX\"",
    "\"9999\"",
    "\"2026-13-01T00:00:00Z\"",
    "\"truck\"",
    "[]",
    "{}",
    "[[[]]]",
    "\"\\u0000\"",
    "\"HHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHHH\"",
    "{\"hts\": \"000000\"}",
    "[{\"number\": \"1\"}]",
];

/// Every JSON pointer in `v`.
fn pointers(v: &Json, at: String, out: &mut Vec<String>) {
    match v {
        Json::Object(o) => {
            for (k, x) in o {
                let p = format!("{at}/{k}");
                out.push(p.clone());
                pointers(x, p, out);
            }
        }
        Json::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(x, p, out);
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the value at the n-th pointer with a junk value.
    Replace(usize, usize),
    /// Remove the value at the n-th pointer.
    Remove(usize),
    /// Cut the bytes at this fraction of the length.
    Truncate(f64),
    /// Overwrite one byte.
    Byte(f64, u8),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 0..JUNK.len()).prop_map(|(p, j)| Mutation::Replace(p, j)),
        2 => any::<usize>().prop_map(Mutation::Remove),
        1 => (0.0f64..1.0).prop_map(Mutation::Truncate),
        1 => (0.0f64..1.0, any::<u8>()).prop_map(|(at, b)| Mutation::Byte(at, b)),
    ]
}

fn mutate(m: &Manifest, muts: &[Mutation]) -> Vec<u8> {
    let mut v = serde_json::to_value(m).expect("manifest serialises");
    let mut bytes = None;
    for mu in muts {
        let mut ps = Vec::new();
        pointers(&v, String::new(), &mut ps);
        match mu {
            Mutation::Replace(p, j) if !ps.is_empty() => {
                if let Some(slot) = v.pointer_mut(&ps[p % ps.len()]) {
                    *slot = serde_json::from_str(JUNK[*j]).expect("junk is JSON");
                }
            }
            Mutation::Remove(p) if !ps.is_empty() => {
                let ptr = &ps[p % ps.len()];
                let (parent, key) = ptr.rsplit_once('/').expect("pointer");
                match v.pointer_mut(parent) {
                    Some(Json::Object(o)) => {
                        o.remove(key);
                    }
                    Some(Json::Array(a)) => {
                        if let Ok(i) = key.parse::<usize>() {
                            if i < a.len() {
                                a.remove(i);
                            }
                        }
                    }
                    _ => {}
                }
            }
            Mutation::Truncate(at) => {
                let b = bytes.get_or_insert_with(|| serde_json::to_vec(&v).expect("json"));
                b.truncate((b.len() as f64 * at) as usize);
            }
            Mutation::Byte(at, x) => {
                let b = bytes.get_or_insert_with(|| serde_json::to_vec(&v).expect("json"));
                if !b.is_empty() {
                    let i = ((b.len() as f64 * at) as usize).min(b.len() - 1);
                    b[i] = *x;
                }
            }
            _ => {}
        }
    }
    bytes.unwrap_or_else(|| serde_json::to_vec(&v).expect("json"))
}

proptest! {
    #![proptest_config(config(2000))]

    /// Contract 1/8: a valid manifest mutated (wrong types, junk values, removed fields, truncation, stray
    /// bytes) still gives exactly one outcome and never a panic.
    #[test]
    fn mutated_json_one_outcome(
        m in arb_manifest(),
        specs in arb_specs(),
        muts in prop::collection::vec(arb_mutation(), 1..4),
    ) {
        let table = table_of(&specs);
        let bytes = mutate(&m, &muts);
        match process(boosted_policy(), &table, &bytes, &Limits::default()) {
            Ok((_, d)) => check_reasons_sum(&serde_json::to_value(&d).expect("serialises")),
            Err(e) => {
                prop_assert!(ErrorKind::ALL.contains(&e.kind));
                prop_assert!(!e.message.is_empty());
            }
        }
    }
}

proptest! {
    #![proptest_config(config(1500))]

    /// Contract 3: raising one party's standing (none → certified → validated tier 2 → tier 3, and
    /// suspended/removed upward) never raises the score and never makes the action more severe — under the
    /// default policy and under high random rates.
    #[test]
    fn monotonic_favouring(
        m in arb_manifest(),
        specs in arb_specs(),
        pick in any::<prop::sample::Index>(),
        (lo, hi) in arb_raise(),
    ) {
        let parties = parties_of(&m);
        prop_assume!(!parties.is_empty());
        let (role, id) = &parties[pick.index(parties.len())];
        let id: &'static str = role.pool().iter().find(|p| **p == id.as_str()).expect("pool id");
        let filed = filed_date(&m);
        let others: Vec<Spec> = specs.into_iter().filter(|s| s.id != id).collect();
        let with = |level| {
            let mut v = others.clone();
            v.extend(spec_at(*role, id, level, filed));
            table_of(&v)
        };
        let (t_lo, t_hi) = (with(lo), with(hi));
        for policy in [default_policy(), boosted_policy()] {
            let (d_lo, d_hi) = (decide(policy, &t_lo, &m), decide(policy, &t_hi, &m));
            prop_assert!(
                score(&d_hi) <= score(&d_lo),
                "raising {} {id} {lo:?} → {hi:?} raised the score {} → {}", role.name(), score(&d_lo), score(&d_hi)
            );
            prop_assert!(
                action(&d_hi) <= action(&d_lo),
                "raising {} {id} {lo:?} → {hi:?} made the action more severe {:?} → {:?}",
                role.name(), action(&d_lo), action(&d_hi)
            );
        }
    }
}

proptest! {
    #![proptest_config(config(2000))]

    /// Contract 4: the FAST lane only when every condition holds. The unmet conditions are computed from the
    /// manifest and an independent model of partner standing at filing, and must equal `fast.missing`; the
    /// lane follows (none off the land border). Party standings must match the model too.
    #[test]
    fn fast_lane_only_when_every_condition_holds(m in arb_manifest(), specs in arb_specs()) {
        let d = decide(default_policy(), &table_of(&specs), &m);
        let filed = filed_date(&m);

        let want_parties: Vec<(String, String, String)> = parties_of(&m)
            .into_iter()
            .map(|(r, id)| (r.name().to_string(), id.to_string(), model_standing(&specs, r, &id, filed).to_string()))
            .collect();
        let got_parties: Vec<(String, String, String)> = d["parties"]
            .as_array()
            .expect("parties")
            .iter()
            .map(|p| {
                let s = |k: &str| p[k].as_str().unwrap_or_default().to_string();
                (s("role"), s("id"), s("standing"))
            })
            .collect();
        prop_assert_eq!(&want_parties, &got_parties);

        let want = model_fast_missing(&m, &specs, action(&d));
        let got: BTreeSet<&str> = d["fast"]["missing"]
            .as_array()
            .expect("missing")
            .iter()
            .map(|x| x.as_str().expect("condition"))
            .collect();
        prop_assert_eq!(&want, &got);
        prop_assert_eq!(d["fast"]["eligible"].as_bool(), Some(want.is_empty()));
        let lane = if NO_BORDER_PORTS.contains(&m.port_of_entry.as_str()) {
            "none"
        } else if want.is_empty() {
            "fast"
        } else {
            "standard"
        };
        prop_assert_eq!(d["lane"].as_str(), Some(lane));
        if lane == "fast" {
            prop_assert_eq!(m.mode, Mode::Truck);
            prop_assert_eq!(action(&d), Action::Release);
        }
    }
}

/// Watch-listed values the generator can produce (ids and names of config/policy.toml's [watchlist]).
const WATCHED: &[&str] = &[
    "99-0000666XX",
    "ZZZQ",
    "MXFANTASMA99TIJ",
    "Fantasma Exports S.A.",
    "global trading-shell, LLC",
    "Global Trading Shell LLC",
];

/// Some party, carrier or driver of `m` is on the default watch list (by id or by name).
fn model_watched(m: &Manifest) -> bool {
    let hit = |s: Option<&str>| s.is_some_and(|s| WATCHED.contains(&s));
    let party = |p: &Option<Party>| {
        p.as_ref()
            .is_some_and(|p| hit(Some(&p.id)) || hit(p.name.as_deref()))
    };
    m.carrier
        .as_ref()
        .is_some_and(|c| hit(Some(&c.scac)) || hit(c.name.as_deref()))
        || m.drivers
            .iter()
            .any(|d| hit(Some(&d.name)) || hit(d.fast_card.as_deref()))
        || m.shipments.iter().any(|s| {
            [
                &s.importer,
                &s.consignee,
                &s.shipper,
                &s.manufacturer,
                &s.broker,
            ]
            .into_iter()
            .any(party)
        })
}

proptest! {
    #![proptest_config(config(1500))]

    /// Contract 5: a watch-list hit is always examined at least as the policy says, whatever the partners'
    /// standing, and the decision lists a watch-list reason explaining it.
    #[test]
    fn watch_list_hits_always_examined_and_explained(m in arb_manifest(), specs in arb_specs()) {
        let d = decide(default_policy(), &table_of(&specs), &m);
        let watched = model_watched(&m);
        prop_assert_eq!(d["watchlist_hit"].as_bool(), Some(watched));
        let explained = d["reasons"]
            .as_array()
            .expect("reasons")
            .iter()
            .any(|r| r["rule"].as_str().is_some_and(|x| x.starts_with("watchlist.")));
        prop_assert_eq!(explained, watched, "watch-list reasons vs hit: {:#}", d);
        if watched {
            prop_assert!(action(&d) >= default_policy().doc.watchlist.action);
        }
    }
}

/// Exempt from random compliance: every shipment names an importer and every importer is validated.
fn all_importers_validated(m: &Manifest, specs: &[Spec]) -> bool {
    let filed = filed_date(m);
    m.shipments.iter().all(|s| {
        s.importer.as_ref().is_some_and(|p| {
            matches!(
                model_standing(specs, R::Importer, &p.id, filed),
                "validated" | "validated_tier3"
            )
        })
    })
}

proptest! {
    #![proptest_config(config(2000))]

    /// Contract 6: validated (tier 2/3) importers are never randomly selected — and with every rate at 1.0,
    /// everything else always is, so the exemption is exactly "all importers validated".
    #[test]
    fn validated_importers_exempt_from_random_exams(m in arb_manifest(), specs in arb_specs()) {
        let table = table_of(&specs);
        let exempt = all_importers_validated(&m, &specs);
        let d = decide(rate_one_policy(), &table, &m);
        prop_assert_eq!(d["random_exam"].as_bool(), Some(!exempt), "exempt = {}", exempt);
        let has_reason = d["reasons"].as_array().expect("reasons").iter().any(|r| r["rule"] == "random.compliance");
        prop_assert_eq!(has_reason, !exempt);
        if exempt {
            for policy in [default_policy(), boosted_policy()] {
                prop_assert_eq!(decide(policy, &table, &m)["random_exam"].as_bool(), Some(false));
            }
        }
    }

    /// Contract 2/6: the draw is a keyed hash of the manifest id: amending the manifest (a new revision,
    /// other lines, another arrival time) draws the same, at the same rate class.
    #[test]
    fn random_selection_is_stable_per_id(m in arb_manifest(), specs in arb_specs(), rev in 0u32..100) {
        let table = table_of(&specs);
        let mut amended = m.clone();
        amended.revision = rev;
        amended.estimated_arrival = None;
        for s in &mut amended.shipments {
            for c in &mut s.commodities {
                c.description = "amended description".into();
            }
        }
        let policy = boosted_policy();
        prop_assert_eq!(
            decide(policy, &table, &m)["random_exam"].as_bool(),
            decide(policy, &table, &amended)["random_exam"].as_bool()
        );
        let seed = policy.doc.random.seed;
        prop_assert_eq!(random_draw(&m.manifest_id, seed), random_draw(&m.manifest_id, seed));
    }
}

/// Contract 6: the sampling rate matches the policy on a large sample, per stratum and importer class.
/// 200,000 generated ids through the full scorer, for a non-partner importer (truck 0.03) and a certified
/// one (truck 0.015); each observed rate must lie within 3 standard deviations of the policy's.
#[test]
fn random_selection_rate_matches_policy() {
    const N: usize = 200_000;
    let policy = default_policy();
    let certified = PartnerTable::new();
    certified.upsert(
        spec_at(
            R::Importer,
            "10-0000001AA",
            Level::Certified,
            date("2026-11-28"),
        )
        .expect("spec")
        .partner(),
    );
    let nobody = PartnerTable::new();
    let mut m = Manifest {
        schema_version: None,
        manifest_id: Str::default(),
        revision: 0,
        filed_at: ts(1_795_838_400), // 2026-11-28T04:00:00Z
        mode: Mode::Truck,
        port_of_entry: PortCode::parse("2304").expect("port"),
        estimated_arrival: None,
        carrier: None,
        conveyance: None,
        drivers: Vec::new(),
        equipment: Vec::new(),
        shipments: vec![Shipment {
            shipment_id: "S-0".into(),
            importer: Some(Party {
                id: "10-0000001AA".into(),
                name: None,
                country: None,
            }),
            consignee: None,
            shipper: None,
            manufacturer: None,
            broker: None,
            origin_country: Country::parse("MX").expect("country"),
            transit_countries: Vec::new(),
            departure_country: None,
            commodities: vec![Commodity::new(
                Hts::parse("940330").expect("hts"),
                "wooden office desks".into(),
            )],
        }],
    };
    let (mut non_partner_hits, mut certified_hits) = (0usize, 0usize);
    for i in 0..N {
        m.manifest_id = format!("RATE-{i:08}").into();
        let a = borderlane_core::decide(policy, &nobody, &m);
        let b = borderlane_core::decide(policy, &certified, &m);
        // Stable: a certified importer is selected only where the non-partner one is (same draw, lower rate).
        assert!(
            !b.random_exam || a.random_exam,
            "{} selected only as certified",
            m.manifest_id
        );
        non_partner_hits += a.random_exam as usize;
        certified_hits += b.random_exam as usize;
    }
    for (name, hits, p) in [
        ("non_partner", non_partner_hits, 0.03),
        ("certified", certified_hits, 0.015),
    ] {
        let rate = hits as f64 / N as f64;
        let sigma = (p * (1.0 - p) / N as f64).sqrt();
        assert!(
            (rate - p).abs() <= 3.0 * sigma,
            "{name}: observed rate {rate:.5} is outside {p} ± {:.5}",
            3.0 * sigma
        );
    }
}

/// The model itself must be able to fail: a hand-checked standing table (the same rules as the golden
/// lapse cases), so a wrong model cannot make the FAST and exemption properties vacuous.
#[test]
fn model_standing_matches_the_spec() {
    let filed = date("2026-11-28");
    let spec = |status, tier, c: Option<&str>, v: Option<&str>, entity| Spec {
        id: "10-0000001AA",
        kind: IdKind::Ior,
        entity,
        status,
        tier,
        certified_on: c.map(date),
        validated_on: v.map(date),
    };
    let cases = [
        (
            spec(
                Status::Validated,
                Some(3),
                Some("2019-03-04"),
                Some("2022-11-28"),
                Entity::Importer,
            ),
            "validated_tier3",
        ),
        (
            spec(
                Status::Validated,
                Some(3),
                Some("2019-03-04"),
                Some("2022-11-27"),
                Entity::Importer,
            ),
            "certified",
        ),
        (
            spec(
                Status::Validated,
                Some(2),
                Some("2019-03-04"),
                Some("2026-12-01"),
                Entity::Importer,
            ),
            "certified",
        ),
        (
            spec(
                Status::Validated,
                Some(2),
                Some("2026-11-29"),
                Some("2026-12-01"),
                Entity::Importer,
            ),
            "applicant",
        ),
        (
            spec(
                Status::Validated,
                Some(3),
                Some("2026-12-15"),
                None,
                Entity::Importer,
            ),
            "applicant",
        ),
        (
            spec(
                Status::Certified,
                Some(1),
                Some("2026-11-29"),
                None,
                Entity::Importer,
            ),
            "applicant",
        ),
        (
            spec(
                Status::Certified,
                Some(1),
                Some("2026-11-28"),
                None,
                Entity::Importer,
            ),
            "certified",
        ),
        (
            spec(
                Status::Certified,
                Some(1),
                Some("2019-03-04"),
                None,
                Entity::Exporter,
            ),
            "none",
        ),
        (
            spec(
                Status::Suspended,
                None,
                Some("2019-03-04"),
                None,
                Entity::Importer,
            ),
            "suspended",
        ),
        (
            spec(Status::Validated, None, None, None, Entity::Importer),
            "validated",
        ),
    ];
    for (s, want) in cases {
        assert_eq!(
            model_standing(std::slice::from_ref(&s), R::Importer, s.id, filed),
            want,
            "{s:?}"
        );
    }
    assert_eq!(
        model_standing(&[], R::Importer, "10-0000001AA", filed),
        "none"
    );
}

// ---------------------------------------------------------------------------------------------------------
// Contract 9: favouring never blinds. Policies vary their thresholds, credits, credit cap and which rules
// are non-creditable with which floor; whatever validation accepts must leave every manifest that fires a
// non-creditable rule at least at that rule's min_action — by its score, not only by its action.

/// Where a generated guard goes: a table entry (`countries.origin.KP`) or a scalar rule
/// (`seals.missing_points` + `seals.missing`).
const GUARD_TARGETS: &[(&str, &str, bool)] = &[
    ("countries.origin", "KP", true),
    ("countries.origin", "IR", true),
    ("countries.origin", "CO", true),
    ("countries.transit", "VE", true),
    ("commodities.headings", "9302", true),
    ("commodities.chapters", "29", true),
    ("seals", "missing", false),
    ("seals", "not_high_security", false),
    ("filing", "late", false),
    ("commodities", "vague", false),
    ("parties", "missing_importer", false),
    ("countries", "circuitous", false),
];

#[derive(Debug, Clone)]
struct Knobs {
    medium: i64,
    high_gap: i64,
    esc: (i64, i64),
    /// (certified, validated extra, tier 3 extra, mra share of validated) per joined role.
    credits: Vec<(i64, i64, i64, i64)>,
    cap: Option<i64>,
    /// (points, non-creditable: steps of the floor below the action the points earn alone, -1 one above)
    /// per target. Mostly floors the points reach, sometimes one they do not: validation must refuse those.
    guards: Vec<(i64, Option<i64>)>,
    watch_creditable: bool,
}

fn arb_knobs() -> impl Strategy<Value = Knobs> {
    (
        20i64..200,
        1i64..250,
        (1i64..150, 1i64..150),
        prop::collection::vec((0i64..=100, 0i64..200, 0i64..60, 0i64..=100), 5),
        prop::option::weighted(0.7, 0i64..500),
        prop::collection::vec(
            (
                0i64..400,
                prop::option::weighted(0.6, prop_oneof![12 => 0i64..3, 1 => Just(-1i64)]),
            ),
            GUARD_TARGETS.len(),
        ),
        any::<bool>(),
    )
        .prop_map(
            |(medium, high_gap, esc, credits, cap, guards, watch_creditable)| Knobs {
                medium,
                high_gap,
                esc,
                credits,
                cap,
                guards,
                watch_creditable,
            },
        )
}

impl Knobs {
    /// The floor of target `i` when it is non-creditable (never release: a floor is an exam).
    fn floor(&self, i: usize) -> Option<Action> {
        let (points, step) = self.guards[i];
        let alone = knob_action(self, points) as i64;
        let at = alone - step?;
        (1..=4)
            .contains(&at)
            .then(|| Action::ALL[at as usize])
            .or(Some(Action::DocumentReview))
    }
}

fn table_at<'a>(root: &'a mut toml::Value, dotted: &str) -> &'a mut toml::Table {
    let mut cur = root;
    for k in dotted.split('.') {
        cur = cur
            .as_table_mut()
            .expect("a table")
            .entry(k)
            .or_insert_with(|| toml::Value::Table(Default::default()));
    }
    cur.as_table_mut().expect("a table")
}

/// The default policy with the knobs applied, as TOML text.
fn policy_text(k: &Knobs) -> String {
    use toml::Value as V;
    let mut doc: V = toml::from_str(DEFAULT_POLICY).expect("default policy is TOML");
    let high = k.medium + k.high_gap;
    let (t, i) = (high + k.esc.0, high + k.esc.0 + k.esc.1);
    let bands = table_at(&mut doc, "bands");
    bands.insert("medium".into(), V::Integer(k.medium));
    bands.insert("high".into(), V::Integer(high));
    let esc: toml::Value = toml::from_str::<toml::Table>(&format!(
        "e = [{{ at = {t}, action = \"tailgate\" }}, {{ at = {i}, action = \"intensive\" }}]"
    ))
    .expect("escalation")["e"]
        .clone();
    table_at(&mut doc, "actions").insert("escalation".into(), esc);
    let statutory = high / 5; // 20% of bands.high, floored
    for (role, (c, v, t3, mra)) in ["importer", "carrier", "manufacturer", "shipper", "broker"]
        .iter()
        .zip(&k.credits)
    {
        let certified = c * statutory / 100;
        let validated = certified + v;
        let mut credit = toml::Table::new();
        credit.insert("certified".into(), V::Integer(certified));
        credit.insert("validated".into(), V::Integer(validated));
        credit.insert("tier3".into(), V::Integer(validated + t3));
        credit.insert("mra".into(), V::Integer(mra * validated / 100));
        table_at(&mut doc, "ctpat.credits").insert((*role).into(), V::Table(credit));
    }
    let ctpat = table_at(&mut doc, "ctpat");
    match k.cap {
        Some(c) => ctpat.insert("credit_cap".into(), V::Integer(c)),
        None => ctpat.remove("credit_cap"),
    };
    for (i, ((section, name, entry), (points, _))) in
        GUARD_TARGETS.iter().zip(&k.guards).enumerate()
    {
        let floor = k.floor(i);
        let mut guard = toml::Table::new();
        guard.insert("creditable".into(), V::Boolean(floor.is_none()));
        if let Some(a) = floor {
            guard.insert("min_action".into(), V::String(a.as_str().into()));
        }
        let s = table_at(&mut doc, section);
        if *entry {
            guard.insert("points".into(), V::Integer(*points));
            guard.insert("why".into(), V::String("generated".into()));
            s.insert((*name).into(), V::Table(guard));
        } else {
            s.insert(format!("{name}_points"), V::Integer(*points));
            s.insert((*name).into(), V::Table(guard));
        }
    }
    table_at(&mut doc, "watchlist").insert("creditable".into(), V::Boolean(k.watch_creditable));
    toml::to_string(&doc).expect("policy serialises")
}

/// The action a score earns from bands and escalations alone, computed from the knobs (not the engine).
fn knob_action(k: &Knobs, score: i64) -> Action {
    let high = k.medium + k.high_gap;
    let (t, i) = (high + k.esc.0, high + k.esc.0 + k.esc.1);
    if score >= i {
        Action::Intensive
    } else if score >= t {
        Action::Tailgate
    } else if score >= high {
        Action::NiiScan
    } else if score >= k.medium {
        Action::DocumentReview
    } else {
        Action::Release
    }
}

/// Every non-creditable reason of a decision is at or above its floor: by the action always, and by the
/// score's own band unless it is a watch-list hit (which forces its action whatever the score).
fn check_floors(k: &Knobs, d: &Json) -> Result<(), TestCaseError> {
    for r in d["reasons"].as_array().expect("reasons") {
        if r["creditable"] != Json::Bool(false) {
            continue;
        }
        let floor: Action = serde_json::from_value(r["min_action"].clone()).expect("min_action");
        prop_assert!(action(d) >= floor, "action below the floor of {r}: {d:#}");
        let rule = r["rule"].as_str().unwrap_or("");
        if !rule.starts_with("watchlist.") {
            prop_assert!(
                knob_action(k, score(d)) >= floor,
                "score {} earns {:?}, below the floor of {r}: {d:#}",
                score(d),
                knob_action(k, score(d))
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(600))]

    #[test]
    fn accepted_policies_leave_no_blind_spot(
        k in arb_knobs(),
        m in arb_manifest(),
        specs in arb_specs(),
    ) {
        let text = policy_text(&k);
        // Only what validation accepts is promised anything; rejected policies are the filter under test.
        let Ok(policy) = CompiledPolicy::from_toml(&text) else {
            return Ok(());
        };
        let table = table_of(&specs);
        let whole = decide(&policy, &table, &m);
        check_floors(&k, &whole)?;
        // Each shipment alone lists every rule it fires (the whole manifest lists the riskiest shipment's),
        // and the whole manifest scores at least as much as each of its shipments alone.
        for s in &m.shipments {
            let mut one = m.clone();
            one.shipments = vec![s.clone()];
            let d = decide(&policy, &table, &one);
            check_floors(&k, &d)?;
            prop_assert!(score(&whole) >= score(&d), "{whole:#}\n{d:#}");
        }
    }
}

/// The generated policies are not all rejected, nor all accepted: the property above filters by validation.
#[test]
fn blind_spot_policies_are_both_accepted_and_refused() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..300 {
        let k = arb_knobs().new_tree(&mut runner).expect("knobs").current();
        match CompiledPolicy::from_toml(&policy_text(&k)) {
            Ok(_) => ok += 1,
            Err(e) => {
                assert!(
                    e.iter().all(|e| e.path.ends_with(".min_action")),
                    "only floors may be refused: {e:#?}"
                );
                refused += 1
            }
        }
    }
    assert!(
        ok >= 30 && refused >= 30,
        "accepted {ok}, refused {refused}"
    );
}

proptest! {
    #![proptest_config(config(256))]

    /// Business resumption orders processing and grants nothing: with a declaration covering the manifest's
    /// `filed_at` the decision is the same, field for field, plus `priority` from the weakest importer
    /// standing (1 tier 3, 2 tier 2, 3 certified, 4 the rest); with one that ends at `filed_at`, at another
    /// port, or none, it is the same without `priority`.
    #[test]
    fn resumption_orders_and_grants_nothing(
        m in arb_manifest(),
        specs in arb_specs(),
        before in 0i64..86_400,
        after in 1i64..86_400,
    ) {
        use borderlane_core::{process_with, Declaration, Resumptions};
        let policy = boosted_policy();
        let table = table_of(&specs);
        let plain = decide(policy, &table, &m);
        let filed = m.filed_at.unix_seconds();
        let declaration = |port: PortCode, from: i64, until: i64| Declaration {
            port,
            declared_at: ts(from),
            until: ts(until),
            reason: "property".into(),
            declared_by: "proptest".into(),
        };
        let with = |r: Resumptions| {
            let (_, d) = process_with(policy, &table, &bytes_of(&m), &Limits::default(), &r)
                .unwrap_or_else(|e| panic!("a generated manifest was dead-lettered: {e}"));
            serde_json::to_value(&d).expect("decision serialises")
        };
        let covered = with(Resumptions::new([declaration(m.port_of_entry, filed - before, filed + after)]));
        let want = match plain["importer_standing"].as_str().expect("importer_standing") {
            "validated_tier3" => 1,
            "validated" => 2,
            "certified" => 3,
            _ => 4,
        };
        let mut expected = plain.clone();
        expected["priority"] = Json::from(want);
        prop_assert_eq!(&covered, &expected);
        let ended = with(Resumptions::new([declaration(m.port_of_entry, filed - before, filed)]));
        prop_assert_eq!(&ended, &plain);
        let other = PortCode::parse(if m.port_of_entry.as_str() == "0901" { "0902" } else { "0901" }).unwrap();
        let elsewhere = with(Resumptions::new([declaration(other, filed - before, filed + after)]));
        prop_assert_eq!(&elsewhere, &plain);
    }
}
