//! A seeded, deterministic generator of realistic CTPAT partners and manifests (and, at a chosen share,
//! malformed records of every dead-letter kind). Tests, benches, the demo, `produce` and the load generator
//! all use it.
//!
//! Record `i` is a pure function of `(seed, i)`: it has its own RNG, so records can be generated in any order
//! or in parallel and are byte-identical. Ports, borders, FAST lanes and watch-list entries come from the
//! policy passed in, never from copies here; the tables below (HTS lines, countries, name parts) are test
//! data, not policy.

mod field;
mod tables;
mod truth;

pub use field::field_outcomes;
pub use truth::{Violation, ROGUE_SHARE};

use borderlane_core::codes::{Country, Hts, PortCode};
use borderlane_core::policy::{Border, CompiledPolicy};
use borderlane_core::table::PartnerTable;
use borderlane_core::time::Timestamp;
use borderlane_core::wire::{
    Carrier, Commodity, Conveyance, Driver, Entity, Equipment, ErrorKind, IdKind, Identifier,
    Limits, Manifest, Mode, Partner, Party, Seal, SealAffixer, SealClass, Shipment, Status, Str,
};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use tables::{HtsLine, AIR_CARRIERS, HTS_LINES, NAME_A, NAME_B, SEA_ORIGINS, TRANSITS};

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// Everything derives from it.
    pub seed: u64,
    /// Size of the party pools; roughly this many partner records are generated.
    pub partners: usize,
    /// Share of records that are malformed (every dead-letter kind in turn).
    pub bad_share: f64,
    /// Start of the filing window.
    pub start: Timestamp,
    /// Length of the filing window in seconds.
    pub span_secs: i64,
    /// Size of an `oversized` bad record (must exceed the consumer's limit).
    pub oversized_bytes: usize,
    /// Port codes whose `none`-border traffic is air rather than ocean.
    pub air_ports: Vec<String>,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            seed: 42,
            partners: 20_000,
            bad_share: 0.0,
            start: Timestamp::parse("2026-11-28T00:00:00Z").unwrap_or_else(|| unreachable!()),
            span_secs: 86_400,
            oversized_bytes: Limits::default().max_bytes + 1,
            air_ports: vec!["4701".into(), "2720".into()],
        }
    }
}

/// One generated input record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Good(Box<Manifest>),
    /// Malformed bytes and the dead-letter kind the core must report for them.
    Bad {
        kind: ErrorKind,
        bytes: Vec<u8>,
    },
}

impl Record {
    /// The record as it goes on the wire (one NDJSON line without the newline).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Record::Good(m) => serde_json::to_vec(m).unwrap_or_default(),
            Record::Bad { bytes, .. } => bytes.clone(),
        }
    }

    /// The Kafka key: the manifest id when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Record::Good(m) => Some(&m.manifest_id),
            Record::Bad { .. } => None,
        }
    }
}

/// A party in a pool, and whether (and how) it is a CTPAT partner.
#[derive(Debug, Clone)]
struct PoolParty {
    id: Str,
    name: Str,
    country: Option<Country>,
    /// Certified or validated (not suspended, removed, applicant): drives FAST cards and H seals.
    ctpat: bool,
}

#[derive(Debug, Clone)]
struct PortPick {
    code: PortCode,
    border: Border,
    /// The port has FAST lanes.
    fast: bool,
    weight: u32,
    air: bool,
}

/// The generator: party pools and the partner table, built once from the seed.
pub struct Generator {
    cfg: GenConfig,
    ports: Vec<PortPick>,
    port_weight_total: u32,
    importers: Vec<PoolParty>,
    land_carriers: Vec<PoolParty>,
    sea_carriers: Vec<PoolParty>,
    mx_manufacturers: Vec<PoolParty>,
    ca_manufacturers: Vec<PoolParty>,
    foreign_exporters: Vec<PoolParty>,
    brokers: Vec<PoolParty>,
    partners: Vec<Partner>,
    watch_ids: Vec<String>,
    watch_names: Vec<String>,
    /// A well-formed port code the policy does not know, for `unknown_port` records.
    unknown_port: String,
}

fn mix(seed: u64, i: u64) -> u64 {
    // splitmix64 of (seed, i): independent streams per record.
    let mut z = seed
        ^ i.wrapping_add(0x9E37_79B9_7F4A_7C15)
            .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn letters(rng: &mut impl Rng, n: usize) -> String {
    (0..n)
        .map(|_| (b'A' + rng.random_range(0..26u8)) as char)
        .collect()
}

fn digits(rng: &mut impl Rng, n: usize) -> String {
    (0..n)
        .map(|_| (b'0' + rng.random_range(0..10u8)) as char)
        .collect()
}

fn company(rng: &mut impl Rng) -> String {
    format!(
        "{} {}",
        NAME_A.choose(rng).unwrap_or(&"Acme"),
        NAME_B.choose(rng).unwrap_or(&"Trading")
    )
}

/// Status distribution of partners: (status, tier, weight).
const STATUS_MIX: [(Status, Option<u8>, u32); 6] = [
    (Status::Certified, Some(1), 35),
    (Status::Validated, Some(2), 40),
    (Status::Validated, Some(3), 15),
    (Status::Suspended, None, 4),
    (Status::Removed, None, 2),
    (Status::Applicant, None, 4),
];

impl Generator {
    /// The default configuration with `seed` and `bad_share` (the unit tests' generator).
    #[cfg(test)]
    pub(crate) fn seeded(seed: u64, bad_share: f64, policy: &CompiledPolicy) -> Generator {
        Generator::new(
            GenConfig {
                seed,
                bad_share,
                ..GenConfig::default()
            },
            policy,
        )
    }

    pub fn new(cfg: GenConfig, policy: &CompiledPolicy) -> Generator {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(cfg.seed, u64::MAX));
        let ports: Vec<PortPick> = policy
            .ports
            .iter()
            .map(|p| PortPick {
                code: p.code,
                border: p.border,
                fast: p.fast_lanes,
                // Laredo (World Trade Bridge) is the busiest land port by far; FAST ports are busy.
                weight: if p.code.as_str() == "2304" {
                    16
                } else if p.fast_lanes {
                    4
                } else {
                    2
                },
                air: cfg.air_ports.iter().any(|a| a == p.code.as_str()),
            })
            .collect();
        let port_weight_total = ports.iter().map(|p| p.weight).sum::<u32>().max(1);
        let n = cfg.partners.max(50);
        let mut partners = Vec::new();
        let mut next_id = 1u32;
        let start_date = cfg.start.date();
        let mut pool = |rng: &mut ChaCha8Rng,
                        count: usize,
                        share: f64,
                        entity: Entity,
                        kind: IdKind,
                        make_id: &dyn Fn(&mut ChaCha8Rng, usize) -> String,
                        country: Option<Country>,
                        partners: &mut Vec<Partner>|
         -> Vec<PoolParty> {
            (0..count)
                .map(|k| {
                    let id = make_id(rng, k);
                    let name = company(rng);
                    let mut ctpat = false;
                    if rng.random_bool(share) {
                        let total: u32 = STATUS_MIX.iter().map(|s| s.2).sum();
                        let mut pick = rng.random_range(0..total);
                        let (status, tier, _) = *STATUS_MIX
                            .iter()
                            .find(|s| {
                                if pick < s.2 {
                                    true
                                } else {
                                    pick -= s.2;
                                    false
                                }
                            })
                            .unwrap_or(&STATUS_MIX[0]);
                        ctpat = matches!(status, Status::Certified | Status::Validated);
                        let certified_on = start_date.plus_days(-rng.random_range(400..5000));
                        // A tenth of validations are older than four years: lapsed unless revalidated.
                        let validated_on = (status == Status::Validated).then(|| {
                            if rng.random_bool(0.1) {
                                start_date.plus_days(-rng.random_range(1500..2500))
                            } else {
                                start_date.plus_days(-rng.random_range(10..1400))
                            }
                        });
                        let certified_on = match validated_on {
                            Some(v) if v < certified_on => v.plus_days(-rng.random_range(90..400)),
                            _ => certified_on,
                        };
                        let mra_program = (entity == Entity::MraForeign).then(|| {
                            Str::from(
                                *["EU-AEO", "JP-AEO", "KR-AEO", "TW-AEO", "SG-STP", "UK-AEO"]
                                    .choose(rng)
                                    .unwrap_or(&"EU-AEO"),
                            )
                        });
                        partners.push(Partner {
                            partner_id: Str::from(format!("CTP-{next_id:07}")),
                            entity,
                            identifiers: [Identifier {
                                kind,
                                value: Str::from(id.as_str()),
                            }]
                            .into(),
                            status,
                            tier,
                            certified_on: Some(certified_on),
                            validated_on,
                            trade_compliance: rng.random_bool(0.1),
                            mra_program,
                            updated_at: Some(cfg.start),
                        });
                        next_id += 1;
                    }
                    PoolParty {
                        id: Str::from(id),
                        name: Str::from(name),
                        country,
                        ctpat,
                    }
                })
                .collect()
        };
        let mx = Country::parse("MX");
        let ca = Country::parse("CA");
        let importers = pool(
            &mut rng,
            n / 2,
            0.45,
            Entity::Importer,
            IdKind::Ior,
            &|r, k| format!("{:02}-{:07}{}", r.random_range(10..99), k, letters(r, 2)),
            None,
            &mut partners,
        );
        let land_carriers = pool(
            &mut rng,
            (n / 20).max(20),
            0.6,
            Entity::HighwayCarrier,
            IdKind::Scac,
            &|_, k| tables::scac(k),
            None,
            &mut partners,
        );
        let sea_carriers = pool(
            &mut rng,
            30,
            0.5,
            Entity::SeaCarrier,
            IdKind::Scac,
            &|_, k| tables::scac(400_000 + k),
            None,
            &mut partners,
        );
        let mx_manufacturers = pool(
            &mut rng,
            n / 8,
            0.4,
            Entity::Manufacturer,
            IdKind::Mid,
            &|r, k| format!("MX{}{}{}", letters(r, 5), k, letters(r, 3)),
            mx,
            &mut partners,
        );
        let ca_manufacturers = pool(
            &mut rng,
            n / 16,
            0.3,
            Entity::Manufacturer,
            IdKind::Mid,
            &|r, k| format!("XO{}{}{}", letters(r, 5), k, letters(r, 3)),
            ca,
            &mut partners,
        );
        let foreign_exporters = pool(
            &mut rng,
            n / 8,
            0.25,
            Entity::MraForeign,
            IdKind::Duns,
            &|_, k| format!("{:09}", 300_000_000 + k),
            None,
            &mut partners,
        );
        let brokers = pool(
            &mut rng,
            200,
            0.5,
            Entity::Broker,
            IdKind::FilerCode,
            &|_, k| tables::filer_code(k),
            None,
            &mut partners,
        );
        let watch_ids = policy
            .doc
            .watchlist
            .ids
            .iter()
            .map(|w| w.id.clone())
            .collect();
        let watch_names = policy
            .doc
            .watchlist
            .names
            .iter()
            .map(|w| w.name.clone())
            .collect();
        let unknown_port = (1000..10_000)
            .map(|c| format!("{c:04}"))
            .find(|c| PortCode::parse(c).is_some_and(|p| policy.port(p).is_none()))
            .unwrap_or_else(|| "0000".into());
        Generator {
            cfg,
            ports,
            port_weight_total,
            importers,
            land_carriers,
            sea_carriers,
            mx_manufacturers,
            ca_manufacturers,
            foreign_exporters,
            brokers,
            partners,
            watch_ids,
            watch_names,
            unknown_port,
        }
    }

    /// The partner records (each identifier held by exactly one partner).
    pub fn partners(&self) -> &[Partner] {
        &self.partners
    }

    /// A partner table holding [`Generator::partners`].
    pub fn partner_table(&self) -> PartnerTable {
        let table = PartnerTable::new();
        for p in &self.partners {
            table.upsert(p.clone());
        }
        table
    }

    pub fn config(&self) -> &GenConfig {
        &self.cfg
    }

    /// Record `i`: a pure function of the seed and `i`.
    pub fn record(&self, i: u64) -> Record {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(self.cfg.seed, i));
        let m = self.manifest(i, &mut rng);
        if self.cfg.bad_share > 0.0 && rng.random_bool(self.cfg.bad_share.min(1.0)) {
            let kind = ErrorKind::ALL[rng.random_range(0..ErrorKind::ALL.len())];
            // Oversized records are a mebibyte each: keep them rare.
            let kind = if kind == ErrorKind::Oversized && !rng.random_bool(0.1) {
                ErrorKind::BadCode
            } else {
                kind
            };
            return Record::Bad {
                kind,
                bytes: self.corrupt(&m, kind),
            };
        }
        Record::Good(Box::new(m))
    }

    fn pick_port(&self, rng: &mut ChaCha8Rng) -> &PortPick {
        let mut x = rng.random_range(0..self.port_weight_total);
        for p in &self.ports {
            if x < p.weight {
                return p;
            }
            x -= p.weight;
        }
        &self.ports[0]
    }

    /// A random member of `pool`; with `ctpat`, one that is a certified or validated partner (if any).
    fn pick<'a>(rng: &mut ChaCha8Rng, pool: &'a [PoolParty], ctpat: bool) -> Option<&'a PoolParty> {
        if ctpat {
            // Rejection sampling: partners are 25-60% of every pool, so this ends fast.
            for _ in 0..64 {
                let p = pool.choose(rng)?;
                if p.ctpat {
                    return Some(p);
                }
            }
        }
        pool.choose(rng)
    }

    fn party(p: &PoolParty) -> Party {
        Party {
            id: p.id.clone(),
            name: Some(p.name.clone()),
            country: p.country,
        }
    }

    fn manifest(&self, i: u64, rng: &mut ChaCha8Rng) -> Manifest {
        let port = self.pick_port(rng).clone();
        let mode = match port.border {
            Border::None if port.air => Mode::Air,
            Border::None => Mode::Ocean,
            _ if rng.random_bool(0.1) => Mode::Rail,
            _ => Mode::Truck,
        };
        let filed = self.cfg.start.unix_seconds() + rng.random_range(0..self.cfg.span_secs.max(1));
        let filed_at = Timestamp::from_unix_seconds(filed).unwrap_or(self.cfg.start);
        let lead_min: i64 = match mode {
            Mode::Truck => 30,
            Mode::Rail => 120,
            Mode::Air => 240,
            Mode::Ocean => 1440,
        };
        // About 3% file late.
        let lead = if rng.random_bool(0.03) {
            rng.random_range(1..lead_min)
        } else {
            rng.random_range(lead_min + 5..lead_min * 4)
        };
        let estimated_arrival = Timestamp::from_unix_seconds(filed + lead * 60);
        let date = filed_at
            .to_string()
            .get(..10)
            .unwrap_or("")
            .replace('-', "");
        let prefix = match mode {
            Mode::Truck => "TRK",
            Mode::Rail => "RAL",
            Mode::Ocean => "VSL",
            Mode::Air => "AIR",
        };
        let manifest_id = Str::from(format!("{prefix}-{}-{date}-{i:07}", port.code));
        // A share of trucks at FAST ports run in the FAST programme: every party a partner, drivers carded,
        // manufacturer-affixed high-security seals at the southern border.
        let fast_program = mode == Mode::Truck && port.fast && rng.random_bool(0.3);
        let carrier_party = match mode {
            Mode::Truck | Mode::Rail => Self::pick(rng, &self.land_carriers, fast_program).cloned(),
            Mode::Ocean => self.sea_carriers.choose(rng).cloned(),
            Mode::Air => None,
        };
        let carrier = match (&carrier_party, mode) {
            (Some(c), _) => Some(Carrier {
                scac: c.id.clone(),
                name: Some(c.name.clone()),
            }),
            (None, _) => Some(Carrier {
                scac: Str::from(*AIR_CARRIERS.choose(rng).unwrap_or(&"AA")),
                name: None,
            }),
        };
        let carrier_ctpat = carrier_party.as_ref().is_some_and(|c| c.ctpat);
        let trip = carrier
            .as_ref()
            .map(|c| format!("{}{}", c.scac, digits(rng, 10)));
        let conveyance = Some(Conveyance {
            id: Some(Str::from(format!("{}{}", letters(rng, 3), digits(rng, 14)))),
            trip_number: trip.map(Str::from),
        });
        let drivers = if mode == Mode::Truck {
            let n = if rng.random_bool(0.8) { 1 } else { 2 };
            let card_share = if fast_program {
                1.0
            } else if carrier_ctpat {
                0.5
            } else {
                0.15
            };
            (0..n)
                .map(|_| Driver {
                    name: Str::from(format!(
                        "{}. {}",
                        letters(rng, 1),
                        NAME_A.choose(rng).unwrap_or(&"Perez")
                    )),
                    fast_card: rng
                        .random_bool(card_share)
                        .then(|| Str::from(format!("427{}", digits(rng, 8)))),
                })
                .collect()
        } else {
            Vec::new()
        };
        let n_ship = match mode {
            _ if fast_program => rng.random_range(1..=2),
            Mode::Ocean => rng.random_range(1..=4),
            Mode::Air => rng.random_range(1..=2),
            _ => rng.random_range(1..=3),
        };
        let mut manufacturer_ctpat = true;
        let shipments: Vec<Shipment> = (0..n_ship)
            .map(|k| {
                let (origin, maker) = match port.border {
                    Border::South if fast_program || rng.random_bool(0.9) => (
                        Country::parse("MX"),
                        Self::pick(rng, &self.mx_manufacturers, fast_program),
                    ),
                    Border::North if fast_program || rng.random_bool(0.85) => (
                        Country::parse("CA"),
                        Self::pick(rng, &self.ca_manufacturers, fast_program),
                    ),
                    _ => (
                        Country::parse(SEA_ORIGINS.choose(rng).unwrap_or(&"CN")),
                        self.foreign_exporters.choose(rng),
                    ),
                };
                let origin = origin
                    .unwrap_or_else(|| Country::parse("CN").unwrap_or_else(|| unreachable!()));
                let maker = maker.cloned();
                manufacturer_ctpat &= maker.as_ref().is_some_and(|m| m.ctpat);
                let mut importer = Self::pick(rng, &self.importers, fast_program).map(Self::party);
                let mut shipper = maker.as_ref().map(Self::party).map(|mut p| {
                    p.country = Some(origin);
                    p
                });
                if rng.random_bool(0.005) {
                    importer = None;
                }
                // Rare watch-list hits, by id or by name.
                if rng.random_bool(0.002) {
                    if let (Some(imp), Some(id)) = (importer.as_mut(), self.watch_ids.choose(rng)) {
                        imp.id = Str::from(id.as_str());
                    }
                } else if rng.random_bool(0.001) {
                    if let (Some(s), Some(name)) = (shipper.as_mut(), self.watch_names.choose(rng))
                    {
                        s.name = Some(Str::from(name.to_uppercase()));
                    }
                }
                let transit_countries = if rng.random_bool(0.05) {
                    (0..rng.random_range(1..=3))
                        .filter_map(|_| TRANSITS.choose(rng).and_then(|c| Country::parse(c)))
                        .collect()
                } else {
                    Vec::new()
                };
                let n_lines = rng.random_range(1..=3);
                let commodities = (0..n_lines)
                    .map(|_| {
                        let line = &HTS_LINES[rng.random_range(0..HTS_LINES.len())];
                        commodity(rng, line)
                    })
                    .collect();
                Shipment {
                    shipment_id: Str::from(format!("{}-{:02}", manifest_id, k + 1)),
                    importer,
                    consignee: Some(Party {
                        id: Str::from(format!(
                            "{:02}-{}CN",
                            rng.random_range(10..99),
                            digits(rng, 7)
                        )),
                        name: Some(Str::from(company(rng))),
                        country: Country::parse("US"),
                    }),
                    shipper,
                    manufacturer: maker.as_ref().map(Self::party),
                    broker: self.brokers.choose(rng).map(|b| Party {
                        id: b.id.clone(),
                        name: None,
                        country: None,
                    }),
                    origin_country: origin,
                    transit_countries,
                    departure_country: None,
                    commodities,
                }
            })
            .collect();
        let n_equipment = match mode {
            Mode::Truck => 1,
            Mode::Rail => rng.random_range(2..=5),
            Mode::Ocean => rng.random_range(1..=4),
            Mode::Air => 0,
        };
        let h_by_maker = port.border == Border::South
            && manufacturer_ctpat
            && (fast_program || rng.random_bool(0.5));
        let equipment = (0..n_equipment)
            .map(|_| Equipment {
                id: Str::from(format!("{}U{}", letters(rng, 3), digits(rng, 7))),
                seals: if !fast_program && rng.random_bool(0.03) {
                    Vec::new()
                } else {
                    vec![Seal {
                        number: Str::from(format!("{}{}", letters(rng, 2), digits(rng, 7))),
                        iso17712: Some(if h_by_maker || rng.random_bool(0.7) {
                            SealClass::H
                        } else if rng.random_bool(0.5) {
                            SealClass::S
                        } else {
                            SealClass::I
                        }),
                        affixed_by: Some(if h_by_maker {
                            SealAffixer::Manufacturer
                        } else {
                            *[
                                SealAffixer::Shipper,
                                SealAffixer::Carrier,
                                SealAffixer::Manufacturer,
                            ]
                            .choose(rng)
                            .unwrap_or(&SealAffixer::Shipper)
                        }),
                    }]
                },
            })
            .collect();
        Manifest {
            schema_version: None,
            manifest_id,
            revision: if rng.random_bool(0.03) { 1 } else { 0 },
            filed_at,
            mode,
            port_of_entry: port.code,
            estimated_arrival,
            carrier,
            conveyance,
            drivers,
            equipment,
            shipments,
        }
    }

    /// Malformed bytes of `kind`, made from a real manifest.
    fn corrupt(&self, m: &Manifest, kind: ErrorKind) -> Vec<u8> {
        let good = serde_json::to_vec(m).unwrap_or_default();
        let mut v = serde_json::to_value(m).unwrap_or_default();
        let set = |v: &mut serde_json::Value, key: &str, x: serde_json::Value| {
            if let Some(o) = v.as_object_mut() {
                o.insert(key.to_string(), x);
            }
        };
        match kind {
            ErrorKind::Empty => Vec::new(),
            ErrorKind::Oversized => {
                let pad = self.cfg.oversized_bytes.saturating_sub(good.len()) + 16;
                set(
                    &mut v,
                    "padding",
                    serde_json::Value::String(" ".repeat(pad)),
                );
                serde_json::to_vec(&v).unwrap_or_default()
            }
            ErrorKind::NotUtf8 => {
                let mut b = good;
                // Inside the manifest id's string value.
                if let Some(pos) = b.windows(3).position(|w| w == b"-20") {
                    b[pos] = 0xFF;
                }
                b
            }
            ErrorKind::InvalidJson => {
                let mut b = good;
                if let Some(pos) = b.iter().position(|c| *c == b':') {
                    b[pos] = b';';
                }
                b
            }
            ErrorKind::TruncatedJson => good[..good.len() / 2].to_vec(),
            ErrorKind::NotObject => [b"[".as_slice(), &good, b"]"].concat(),
            ErrorKind::TooDeep => {
                let depth = Limits::default().max_depth + 8;
                let nest = format!(
                    "{{\"extension\":{}{},",
                    "[".repeat(depth),
                    "]".repeat(depth)
                );
                [nest.as_bytes(), &good[1..]].concat()
            }
            ErrorKind::MissingField => {
                if let Some(o) = v.as_object_mut() {
                    o.remove("mode");
                }
                serde_json::to_vec(&v).unwrap_or_default()
            }
            ErrorKind::WrongType => {
                set(&mut v, "revision", serde_json::json!("zero"));
                serde_json::to_vec(&v).unwrap_or_default()
            }
            ErrorKind::DuplicateField => [b"{\"mode\":\"truck\",".as_slice(), &good[1..]].concat(),
            ErrorKind::NumberOutOfRange => {
                set(&mut v, "revision", serde_json::json!(99_999_999_999u64));
                serde_json::to_vec(&v).unwrap_or_default()
            }
            ErrorKind::BadValue => {
                v["shipments"][0]["commodities"][0]["weight_kg"] = serde_json::json!(-5.0);
                serde_json::to_vec(&v).unwrap_or_default()
            }
            ErrorKind::BadCode => {
                v["shipments"][0]["origin_country"] = serde_json::json!("XX");
                serde_json::to_vec(&v).unwrap_or_default()
            }
            ErrorKind::BadDate => {
                set(
                    &mut v,
                    "filed_at",
                    serde_json::json!("2026-13-45T00:00:00Z"),
                );
                serde_json::to_vec(&v).unwrap_or_default()
            }
            ErrorKind::UnsupportedVersion => {
                set(&mut v, "schema_version", serde_json::json!(99));
                serde_json::to_vec(&v).unwrap_or_default()
            }
            ErrorKind::UnknownPort => {
                set(
                    &mut v,
                    "port_of_entry",
                    serde_json::json!(self.unknown_port),
                );
                serde_json::to_vec(&v).unwrap_or_default()
            }
        }
    }
}

fn commodity(rng: &mut ChaCha8Rng, line: &HtsLine) -> Commodity {
    let weight = rng.random_range(line.kg.0..line.kg.1);
    let mut per_kg = rng.random_range(line.usd_per_kg.0..line.usd_per_kg.1);
    // About 1% undervalued or overvalued far outside the plausible band.
    if rng.random_bool(0.01) {
        per_kg *= if rng.random_bool(0.5) { 0.001 } else { 200.0 };
    }
    let description = if rng.random_bool(0.02) {
        Str::from(
            *[
                "FAK",
                "general merchandise",
                "said to contain parts",
                "STC various",
            ]
            .choose(rng)
            .unwrap_or(&"FAK"),
        )
    } else {
        Str::from(line.description)
    };
    Commodity {
        quantity: Some(rng.random_range(1..500) as f64),
        unit: Some(Str::from(line.unit)),
        weight_kg: Some((weight * 10.0).round() / 10.0),
        value_usd: Some((weight * per_kg * 100.0).round() / 100.0),
        ..Commodity::new(
            Hts::parse(line.hts).unwrap_or_else(|| unreachable!("HTS table entries are 6 digits")),
            description,
        )
    }
}

/// The generator's party-pool size that yields at least `partners` partner records (about a third of a
/// pool are partners).
pub fn partner_pool(partners: usize) -> usize {
    partners.saturating_mul(3).max(50)
}

/// `n` partner records as (key, JSON value) from the seeded generator, the first `n` of a generator sized
/// to hold at least that many (the load generator's partner topic, and the partner bench's records).
pub fn partner_records(policy: &CompiledPolicy, seed: u64, n: usize) -> Vec<(String, Vec<u8>)> {
    let mut pool = partner_pool(n);
    loop {
        let g = Generator::new(
            GenConfig {
                seed,
                partners: pool,
                ..GenConfig::default()
            },
            policy,
        );
        if g.partners().len() >= n {
            return g.partners()[..n]
                .iter()
                .map(|p| {
                    (
                        p.partner_id.to_string(),
                        serde_json::to_vec(p).unwrap_or_default(),
                    )
                })
                .collect();
        }
        pool = pool.saturating_mul(2);
    }
}

/// The partners of `g` as NDJSON lines.
pub fn partner_lines(g: &Generator) -> impl Iterator<Item = Vec<u8>> + '_ {
    g.partners()
        .iter()
        .map(|p| serde_json::to_vec(p).unwrap_or_default())
}
