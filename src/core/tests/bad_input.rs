//! Bad input is a dead letter, not a crash (contract 8): every `ErrorKind` produced by a real malformed
//! manifest through `process`, with the kind asserted and the message naming the offending field; and
//! malformed partner records through `parse_partner`.

use std::collections::BTreeSet;

use borderlane_core::wire::parse_partner;
use borderlane_core::{process, CompiledPolicy, ErrorKind, Limits, PartnerTable};
use serde_json::{json, Value as Json};

const DEFAULT_POLICY: &str = include_str!("../../../config/policy.toml");
/// A valid manifest (the golden cases' southern-border base).
const MANIFEST: &str = include_str!("golden/bases/south_truck.json");

const PARTNER: &str = r#"{
  "partner_id": "CTP-0001234",
  "entity": "importer",
  "identifiers": [{"kind": "ior", "value": "12-3456789AB"}],
  "status": "validated",
  "tier": 3,
  "certified_on": "2019-03-04",
  "validated_on": "2023-06-01",
  "trade_compliance": false,
  "mra_program": null,
  "updated_at": "2026-11-01T00:00:00Z"
}"#;

/// One malformed record and what its dead letter must say.
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    limits: Limits,
    kind: ErrorKind,
    /// Substrings the message must contain: the offending field's path, where there is one.
    names: &'static [&'static str],
}

fn case(
    name: &'static str,
    bytes: impl Into<Vec<u8>>,
    kind: ErrorKind,
    names: &'static [&'static str],
) -> Case {
    Case {
        name,
        bytes: bytes.into(),
        limits: Limits::default(),
        kind,
        names,
    }
}

fn manifest() -> Json {
    serde_json::from_str(MANIFEST).expect("base manifest is JSON")
}

/// The base manifest with `edit` applied to its JSON value.
fn edited(edit: impl FnOnce(&mut Json)) -> Vec<u8> {
    let mut m = manifest();
    edit(&mut m);
    serde_json::to_vec(&m).expect("serialises")
}

/// The base manifest text with one literal replacement (for what a JSON value cannot express).
fn replaced(from: &str, to: &str) -> Vec<u8> {
    assert!(
        MANIFEST.contains(from),
        "{from:?} is not in the base manifest"
    );
    MANIFEST.replacen(from, to, 1).into_bytes()
}

/// Runs every case; reports all failures at once.
fn check(
    cases: Vec<Case>,
    run: impl Fn(&Case) -> Result<String, borderlane_core::BadInput>,
) -> BTreeSet<ErrorKind> {
    let mut failures = Vec::new();
    let mut kinds = BTreeSet::new();
    for c in &cases {
        match run(c) {
            Ok(what) => failures.push(format!(
                "{}: accepted ({what}), expected {}",
                c.name, c.kind
            )),
            Err(e) => {
                if e.kind != c.kind {
                    failures.push(format!(
                        "{}: kind {}, expected {} ({})",
                        c.name, e.kind, c.kind, e.message
                    ));
                    continue;
                }
                kinds.insert(e.kind);
                for n in c.names {
                    if !e.message.contains(n) {
                        failures.push(format!(
                            "{}: message {:?} does not name {n:?}",
                            c.name, e.message
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} bad-input cases failed:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
    kinds
}

fn manifest_cases() -> Vec<Case> {
    use ErrorKind::*;
    // Built as text: a serde_json::Value this deep would overflow the stack when dropped.
    let deep = |levels: usize| {
        let nest = format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
        replaced(
            "{\n",
            &format!("{{\n  \"extensions\": {{\"trace\": {nest}}},\n"),
        )
    };
    vec![
        // Framing.
        case("empty record", "", Empty, &["empty"]),
        case("whitespace only", " \n\t ", Empty, &["empty"]),
        Case {
            limits: Limits {
                max_bytes: 512,
                ..Limits::default()
            },
            ..case(
                "larger than max_bytes",
                MANIFEST,
                Oversized,
                &["limit is 512"],
            )
        },
        case(
            "invalid UTF-8 in a name",
            {
                let mut b = MANIFEST.as_bytes().to_vec();
                b[MANIFEST.find("Contoso").expect("Contoso") + 4] = 0xff;
                b
            },
            NotUtf8,
            &["UTF-8"],
        ),
        case(
            "overlong UTF-8 encoding",
            b"{\"manifest_id\": \"\xc0\xaf\"}".to_vec(),
            NotUtf8,
            &["UTF-8"],
        ),
        case(
            "UTF-8 surrogate",
            b"{\"manifest_id\": \"\xed\xa0\x80\"}".to_vec(),
            NotUtf8,
            &["UTF-8"],
        ),
        case("missing value", "{\"manifest_id\": }", InvalidJson, &[]),
        case(
            "trailing comma",
            replaced(
                "\"transit_countries\": []",
                "\"transit_countries\": [\"MX\",]",
            ),
            InvalidJson,
            &[],
        ),
        case("single quotes", "{'manifest_id': 'X'}", InvalidJson, &[]),
        case(
            "garbage after the object",
            format!("{MANIFEST} trailing"),
            InvalidJson,
            &[],
        ),
        case(
            "NaN literal",
            replaced("\"quantity\": 40", "\"quantity\": NaN"),
            InvalidJson,
            &[],
        ),
        case("bare word", "manifest", InvalidJson, &[]),
        case(
            "cut in half",
            &MANIFEST.as_bytes()[..MANIFEST.len() / 2],
            TruncatedJson,
            &[],
        ),
        case(
            "cut inside a string",
            &MANIFEST.as_bytes()[..MANIFEST.find("Acme").expect("Acme") + 2],
            TruncatedJson,
            &[],
        ),
        case("top-level array", "[1, 2]", NotObject, &["not an object"]),
        case(
            "top-level string",
            "\"manifest\"",
            NotObject,
            &["not an object"],
        ),
        case("top-level number", "42", NotObject, &["not an object"]),
        case("top-level null", "null", NotObject, &["not an object"]),
        case(
            "deep nesting in an unknown field",
            deep(40),
            TooDeep,
            &["depth", "limit is 32"],
        ),
        case(
            "very deep nesting in an unknown field",
            deep(5000),
            TooDeep,
            &["depth"],
        ),
        // Shape.
        case(
            "no filed_at",
            edited(|m| {
                m.as_object_mut().unwrap().remove("filed_at");
            }),
            MissingField,
            &["filed_at"],
        ),
        case(
            "no shipments",
            edited(|m| {
                m.as_object_mut().unwrap().remove("shipments");
            }),
            MissingField,
            &["shipments"],
        ),
        case(
            "no origin_country",
            edited(|m| {
                m["shipments"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("origin_country");
            }),
            MissingField,
            &["origin_country", "shipments[0]"],
        ),
        case(
            "no hts",
            edited(|m| {
                m["shipments"][0]["commodities"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("hts");
            }),
            MissingField,
            &["hts", "shipments[0].commodities[0]"],
        ),
        case(
            "no seal number",
            edited(|m| {
                m["equipment"][0]["seals"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("number");
            }),
            MissingField,
            &["number", "equipment[0].seals[0]"],
        ),
        case(
            "revision as a string",
            edited(|m| m["revision"] = json!("0")),
            WrongType,
            &["revision"],
        ),
        case(
            "drivers as an object",
            edited(|m| m["drivers"] = json!({})),
            WrongType,
            &["drivers"],
        ),
        case(
            "carrier as a string",
            edited(|m| m["carrier"] = json!("ABCD")),
            WrongType,
            &["carrier"],
        ),
        case(
            "weight as a string",
            edited(|m| m["shipments"][0]["commodities"][0]["weight_kg"] = json!("heavy")),
            WrongType,
            &["shipments[0].commodities[0].weight_kg"],
        ),
        case(
            "null shipments",
            edited(|m| m["shipments"] = Json::Null),
            WrongType,
            &["shipments"],
        ),
        case(
            "revision twice",
            replaced("\"revision\": 0", "\"revision\": 0, \"revision\": 1"),
            DuplicateField,
            &["revision"],
        ),
        case(
            "hts twice",
            replaced(
                "\"hts\": \"940330\"",
                "\"hts\": \"940330\", \"hts\": \"940360\"",
            ),
            DuplicateField,
            &["hts"],
        ),
        case(
            "revision overflows u32",
            edited(|m| m["revision"] = json!(99_999_999_999u64)),
            NumberOutOfRange,
            &["revision"],
        ),
        case(
            "negative revision",
            edited(|m| m["revision"] = json!(-1)),
            NumberOutOfRange,
            &["revision"],
        ),
        case(
            "quantity beyond f64",
            replaced("\"quantity\": 40", "\"quantity\": 1e999"),
            NumberOutOfRange,
            &["quantity"],
        ),
        case(
            "schema_version overflows u32",
            edited(|m| m["schema_version"] = json!(4_294_967_296u64)),
            NumberOutOfRange,
            &["schema_version"],
        ),
        // Domain.
        case(
            "negative weight",
            edited(|m| m["shipments"][0]["commodities"][0]["weight_kg"] = json!(-5.0)),
            BadValue,
            &["shipments[0].commodities[0].weight_kg"],
        ),
        case(
            "negative value",
            edited(|m| m["shipments"][0]["commodities"][0]["value_usd"] = json!(-0.01)),
            BadValue,
            &["shipments[0].commodities[0].value_usd"],
        ),
        case(
            "empty manifest_id",
            edited(|m| m["manifest_id"] = json!("  ")),
            BadValue,
            &["manifest_id"],
        ),
        case(
            "manifest_id too long",
            edited(|m| m["manifest_id"] = json!("M".repeat(65))),
            BadValue,
            &["manifest_id", "limit is 64"],
        ),
        case(
            "control character in an importer id",
            edited(|m| m["shipments"][0]["importer"]["id"] = json!("12-3456\u{7}789AB")),
            BadValue,
            &["shipments[0].importer.id"],
        ),
        // Identifiers: printable ASCII without spaces. The message names the code point, never the raw
        // character.
        case(
            "Trojan Source manifest_id (ten right-to-left overrides)",
            edited(|m| m["manifest_id"] = json!(format!("H-{}", "\u{202E}".repeat(10)))),
            BadValue,
            &["manifest_id", "U+202E at byte 2", "printable ASCII"],
        ),
        case(
            "zero-width space in an importer id",
            edited(|m| m["shipments"][0]["importer"]["id"] = json!("12-3456\u{200B}789AB")),
            BadValue,
            &["shipments[0].importer.id", "U+200B"],
        ),
        case(
            "zero-width joiner in a manufacturer id",
            edited(|m| m["shipments"][0]["manufacturer"]["id"] = json!("MXMAQ\u{200D}NOR1200TIJ")),
            BadValue,
            &["shipments[0].manufacturer.id", "U+200D"],
        ),
        case(
            "byte-order mark before a shipment id",
            edited(|m| m["shipments"][0]["shipment_id"] = json!("\u{FEFF}ABCD0000123456-01")),
            BadValue,
            &["shipments[0].shipment_id", "U+FEFF at byte 0"],
        ),
        case(
            "emoji in a seal number",
            edited(|m| m["equipment"][0]["seals"][0]["number"] = json!("MX000\u{1F512}1234")),
            BadValue,
            &["equipment[0].seals[0].number", "U+1F512"],
        ),
        case(
            "space in a SCAC",
            edited(|m| m["carrier"]["scac"] = json!("AB CD")),
            BadValue,
            &["carrier.scac", "U+0020"],
        ),
        case(
            "non-ASCII letter in a trip number",
            edited(|m| m["conveyance"]["trip_number"] = json!("ÄBCD0000123456")),
            BadValue,
            &["conveyance.trip_number", "U+00C4"],
        ),
        case(
            "Cyrillic look-alike in a conveyance id",
            edited(|m| m["conveyance"]["id"] = json!("3AKJHHDR5KSKG123\u{0410}")),
            BadValue,
            &["conveyance.id", "U+0410"],
        ),
        case(
            "left-to-right isolate in a FAST card number",
            edited(|m| m["drivers"][0]["fast_card"] = json!("\u{2066}42712345600\u{2069}")),
            BadValue,
            &["drivers[0].fast_card", "U+2066"],
        ),
        case(
            "no-break space in a unit",
            edited(|m| m["shipments"][0]["commodities"][0]["unit"] = json!("CTN\u{00A0}")),
            BadValue,
            &["shipments[0].commodities[0].unit", "U+00A0"],
        ),
        case(
            "right-to-left mark in a broker filer code",
            edited(|m| m["shipments"][0]["broker"]["id"] = json!("A1B\u{200F}")),
            BadValue,
            &["shipments[0].broker.id", "U+200F"],
        ),
        case(
            "empty seal number",
            edited(|m| m["equipment"][0]["seals"][0]["number"] = json!("")),
            BadValue,
            &["equipment[0].seals[0].number", "empty"],
        ),
        // Names and descriptions: any script, but no bidirectional control, BOM or control character.
        case(
            "right-to-left override in an importer name",
            edited(|m| m["shipments"][0]["importer"]["name"] = json!("Contoso \u{202E}stropmI")),
            BadValue,
            &[
                "shipments[0].importer.name",
                "U+202E at byte 8",
                "bidirectional",
            ],
        ),
        case(
            "right-to-left embedding in a consignee name",
            edited(|m| {
                m["shipments"][0]["consignee"]["name"] = json!("\u{202B}Contoso DC 4\u{202C}")
            }),
            BadValue,
            &["shipments[0].consignee.name", "U+202B"],
        ),
        case(
            "first-strong isolate in a description",
            edited(|m| {
                m["shipments"][0]["commodities"][0]["description"] =
                    json!("wooden office desks \u{2068}x\u{2069}")
            }),
            BadValue,
            &["shipments[0].commodities[0].description", "U+2068"],
        ),
        case(
            "Arabic letter mark in a shipper name",
            edited(|m| m["shipments"][0]["shipper"]["name"] = json!("\u{061C}Maquila Norte")),
            BadValue,
            &["shipments[0].shipper.name", "U+061C"],
        ),
        case(
            "left-to-right mark in a driver name",
            edited(|m| m["drivers"][0]["name"] = json!("J. Perez\u{200E}")),
            BadValue,
            &["drivers[0].name", "U+200E"],
        ),
        case(
            "byte-order mark in a carrier name",
            edited(|m| m["carrier"]["name"] = json!("\u{FEFF}Acme Transportes")),
            BadValue,
            &["carrier.name", "U+FEFF"],
        ),
        case(
            "newline in a manufacturer name",
            edited(|m| m["shipments"][0]["manufacturer"]["name"] = json!("Maquila\nNorte")),
            BadValue,
            &["shipments[0].manufacturer.name", "U+000A"],
        ),
        case(
            "escape sequence in a description",
            edited(|m| {
                m["shipments"][0]["commodities"][0]["description"] = json!("desks \u{1B}[2J")
            }),
            BadValue,
            &["shipments[0].commodities[0].description", "U+001B"],
        ),
        case(
            "duplicate shipment id",
            edited(|m| {
                let s = m["shipments"][0].clone();
                m["shipments"].as_array_mut().unwrap().push(s);
            }),
            BadValue,
            &[
                "shipments[1].shipment_id",
                "shipments[0].shipment_id",
                "ABCD0000123456-01",
            ],
        ),
        case(
            "duplicate shipment id among twenty",
            edited(|m| {
                let base = m["shipments"][0].clone();
                let all: Vec<Json> = (0..20)
                    .map(|i| {
                        let mut s = base.clone();
                        s["shipment_id"] = json!(format!("S{}", if i == 17 { 3 } else { i }));
                        s
                    })
                    .collect();
                m["shipments"] = Json::Array(all);
            }),
            BadValue,
            &[
                "shipments[17].shipment_id",
                "shipments[3].shipment_id",
                "\"S3\"",
            ],
        ),
        // Plausibility limits of the policy (config/policy.toml [plausibility]).
        case(
            "weight of 1e308 kg",
            edited(|m| m["shipments"][0]["commodities"][0]["weight_kg"] = json!(1e308)),
            BadValue,
            &[
                "shipments[0].commodities[0].weight_kg",
                "1e308",
                "plausibility.max_weight_kg",
            ],
        ),
        case(
            "value of 1e308 USD",
            edited(|m| m["shipments"][0]["commodities"][0]["value_usd"] = json!(1e308)),
            BadValue,
            &[
                "shipments[0].commodities[0].value_usd",
                "plausibility.max_value_usd",
            ],
        ),
        case(
            "weight and value of 1e308",
            edited(|m| {
                m["shipments"][0]["commodities"][0]["weight_kg"] = json!(1e308);
                m["shipments"][0]["commodities"][0]["value_usd"] = json!(1e308);
            }),
            BadValue,
            &["shipments[0].commodities[0].weight_kg", "max_weight_kg"],
        ),
        case(
            "quantity of 1e300",
            edited(|m| m["shipments"][0]["commodities"][0]["quantity"] = json!(1e300)),
            BadValue,
            &[
                "shipments[0].commodities[0].quantity",
                "plausibility.max_quantity",
            ],
        ),
        case(
            "a billion dollars per kilogram",
            edited(|m| {
                m["shipments"][0]["commodities"][0]["weight_kg"] = json!(0.001);
                m["shipments"][0]["commodities"][0]["value_usd"] = json!(1_000_000.0);
            }),
            BadValue,
            &[
                "shipments[0].commodities[0]",
                "1000000000 USD/kg",
                "plausibility.max_value_per_kg",
            ],
        ),
        case(
            "value on a subnormal weight",
            edited(|m| {
                m["shipments"][0]["commodities"][0]["weight_kg"] = json!(1e-310);
                m["shipments"][0]["commodities"][0]["value_usd"] = json!(1.0);
            }),
            BadValue,
            &["shipments[0].commodities[0]", "max_value_per_kg"],
        ),
        case(
            "empty carrier scac",
            edited(|m| m["carrier"]["scac"] = json!("")),
            BadValue,
            &["carrier.scac"],
        ),
        case(
            "no shipment",
            edited(|m| m["shipments"] = json!([])),
            BadValue,
            &["shipments"],
        ),
        case(
            "shipment without commodities",
            edited(|m| m["shipments"][0]["commodities"] = json!([])),
            BadValue,
            &["shipments[0].commodities"],
        ),
        case(
            "drivers on a rail manifest",
            edited(|m| m["mode"] = json!("rail")),
            BadValue,
            &["drivers"],
        ),
        case(
            "empty equipment id",
            edited(|m| m["equipment"][0]["id"] = json!("")),
            BadValue,
            &["equipment[0].id"],
        ),
        Case {
            limits: Limits {
                max_items: 2,
                ..Limits::default()
            },
            ..case(
                "too many transit countries",
                edited(|m| m["shipments"][0]["transit_countries"] = json!(["PA", "GT", "HN"])),
                BadValue,
                &["shipments[0].transit_countries", "limit is 2"],
            )
        },
        Case {
            limits: Limits {
                max_shipments: 1,
                ..Limits::default()
            },
            ..case(
                "too many shipments",
                edited(|m| {
                    let s = m["shipments"][0].clone();
                    m["shipments"].as_array_mut().unwrap().push(s);
                }),
                BadValue,
                &["shipments", "limit is 1"],
            )
        },
        // Scoring indexes shipments by 16 bits: whatever the configured limit, a 65 537th shipment is
        // refused, never taken for the first.
        Case {
            limits: Limits {
                max_shipments: usize::MAX,
                max_bytes: 8 << 20,
                ..Limits::default()
            },
            ..case(
                "more shipments than can be indexed",
                edited(|m| {
                    let all = m["shipments"].as_array_mut().unwrap();
                    all.extend((1..=borderlane_core::wire::MAX_SHIPMENTS).map(|i| {
                        json!({"shipment_id": format!("S{i}"), "origin_country": "MX", "commodities": []})
                    }));
                }),
                BadValue,
                &["shipments has 65537 items", "limit is 65536"],
            )
        },
        case(
            "unknown origin country",
            edited(|m| m["shipments"][0]["origin_country"] = json!("QQ")),
            BadCode,
            &["shipments[0].origin_country", "QQ"],
        ),
        case(
            "lower-case country",
            edited(|m| m["shipments"][0]["origin_country"] = json!("mx")),
            BadCode,
            &["shipments[0].origin_country"],
        ),
        case(
            "three-letter country",
            edited(|m| m["shipments"][0]["transit_countries"] = json!(["MEX"])),
            BadCode,
            &["shipments[0].transit_countries[0]"],
        ),
        case(
            "port code with a letter",
            edited(|m| m["port_of_entry"] = json!("23O4")),
            BadCode,
            &["port_of_entry", "23O4"],
        ),
        case(
            "unknown mode",
            edited(|m| m["mode"] = json!("hovercraft")),
            BadCode,
            &["mode", "hovercraft"],
        ),
        case(
            "five-digit HTS",
            edited(|m| m["shipments"][0]["commodities"][0]["hts"] = json!("94033")),
            BadCode,
            &["shipments[0].commodities[0].hts"],
        ),
        case(
            "HTS chapter 00",
            edited(|m| m["shipments"][0]["commodities"][0]["hts"] = json!("001234")),
            BadCode,
            &["shipments[0].commodities[0].hts"],
        ),
        case(
            "unknown seal class",
            edited(|m| m["equipment"][0]["seals"][0]["iso17712"] = json!("X")),
            BadCode,
            &["equipment[0].seals[0].iso17712"],
        ),
        case(
            "unknown seal affixer",
            edited(|m| m["equipment"][0]["seals"][0]["affixed_by"] = json!("elves")),
            BadCode,
            &["equipment[0].seals[0].affixed_by"],
        ),
        case(
            "31 November",
            edited(|m| m["filed_at"] = json!("2026-11-31T04:00:00Z")),
            BadDate,
            &["filed_at"],
        ),
        case(
            "timestamp without offset",
            edited(|m| m["filed_at"] = json!("2026-11-28T04:00:00")),
            BadDate,
            &["filed_at"],
        ),
        case(
            "year before 1970",
            edited(|m| m["estimated_arrival"] = json!("1969-12-31T23:00:00Z")),
            BadDate,
            &["estimated_arrival"],
        ),
        case(
            "arrival a year before filing",
            edited(|m| m["estimated_arrival"] = json!("2025-11-01T00:00:00Z")),
            BadDate,
            &["estimated_arrival"],
        ),
        case(
            "schema_version 2",
            edited(|m| m["schema_version"] = json!(2)),
            UnsupportedVersion,
            &["schema_version", "2"],
        ),
        case(
            "port not in the policy",
            edited(|m| m["port_of_entry"] = json!("9999")),
            UnknownPort,
            &["port_of_entry", "9999"],
        ),
    ]
}

#[test]
fn every_error_kind_from_a_real_malformed_manifest() {
    let policy = CompiledPolicy::from_toml(DEFAULT_POLICY).expect("default policy");
    let table = PartnerTable::new();
    let kinds = check(manifest_cases(), |c| {
        process(&policy, &table, &c.bytes, &c.limits).map(|(_, d)| format!("score {}", d.score))
    });
    let missing: Vec<_> = ErrorKind::ALL
        .iter()
        .filter(|k| !kinds.contains(k))
        .collect();
    assert!(missing.is_empty(), "no bad-input case produces {missing:?}");
    assert_eq!(ErrorKind::ALL.len(), 16);
}

#[test]
fn limits_are_boundaries_not_guesses() {
    // Right at each limit is accepted; the golden base manifest is the control.
    let policy = CompiledPolicy::from_toml(DEFAULT_POLICY).expect("default policy");
    let table = PartnerTable::new();
    let ok = |bytes: &[u8], limits: &Limits| {
        process(&policy, &table, bytes, limits)
            .map(|(_, d)| d)
            .unwrap_or_else(|e| panic!("rejected: {e}"))
    };
    ok(MANIFEST.as_bytes(), &Limits::default());
    ok(
        MANIFEST.as_bytes(),
        &Limits {
            max_bytes: MANIFEST.len(),
            ..Limits::default()
        },
    );
    // The manifest object is depth 1: 31 nested arrays inside an unknown field reach exactly 32.
    let mut v = json!(1);
    for _ in 0..30 {
        v = json!([v]);
    }
    let at_limit = edited(|m| m["extensions"] = json!([v]));
    ok(&at_limit, &Limits::default());
    let past = edited(|m| m["extensions"] = json!([[v]]));
    assert_eq!(
        process(&policy, &table, &past, &Limits::default())
            .unwrap_err()
            .kind,
        ErrorKind::TooDeep
    );
    // Brackets inside strings are not nesting.
    let brackets = edited(|m| m["extensions"] = json!("[".repeat(500) + &"{".repeat(500)));
    ok(&brackets, &Limits::default());
    ok(
        &edited(|m| m["manifest_id"] = json!("M".repeat(64))),
        &Limits::default(),
    );
    // Unknown fields are ignored: producers may add fields freely.
    ok(
        &edited(|m| m["future_field"] = json!({"a": [1, 2, {"b": null}]})),
        &Limits::default(),
    );
}

#[test]
fn error_kind_strings_are_the_header_values() {
    for k in ErrorKind::ALL {
        assert_eq!(
            serde_json::to_value(k).expect("serialises"),
            json!(k.as_str())
        );
        assert_eq!(k.to_string(), k.as_str());
    }
    let distinct: BTreeSet<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(distinct.len(), ErrorKind::ALL.len());
}

fn partner() -> Json {
    serde_json::from_str(PARTNER).expect("partner is JSON")
}

fn partner_edited(edit: impl FnOnce(&mut Json)) -> Vec<u8> {
    let mut p = partner();
    edit(&mut p);
    serde_json::to_vec(&p).expect("serialises")
}

#[test]
fn malformed_partner_records() {
    use ErrorKind::*;
    parse_partner(PARTNER.as_bytes(), &Limits::default()).expect("the control partner parses");
    let cases = vec![
        case("empty partner", "", Empty, &["empty"]),
        case("null partner value", "null", NotObject, &["not an object"]),
        case(
            "partner cut short",
            &PARTNER.as_bytes()[..40],
            TruncatedJson,
            &[],
        ),
        case(
            "partner syntax error",
            "{\"partner_id\": \"X\",, }",
            InvalidJson,
            &[],
        ),
        case(
            "no entity",
            partner_edited(|p| {
                p.as_object_mut().unwrap().remove("entity");
            }),
            MissingField,
            &["entity"],
        ),
        case(
            "no identifiers",
            partner_edited(|p| {
                p.as_object_mut().unwrap().remove("identifiers");
            }),
            MissingField,
            &["identifiers"],
        ),
        case(
            "identifier without kind",
            partner_edited(|p| {
                p["identifiers"][0].as_object_mut().unwrap().remove("kind");
            }),
            MissingField,
            &["kind", "identifiers[0]"],
        ),
        case(
            "mra_foreign without a programme",
            partner_edited(|p| p["entity"] = json!("mra_foreign")),
            MissingField,
            &["mra_program"],
        ),
        case(
            "unknown entity",
            partner_edited(|p| p["entity"] = json!("airline")),
            BadCode,
            &["entity", "airline"],
        ),
        case(
            "unknown status",
            partner_edited(|p| p["status"] = json!("pending")),
            BadCode,
            &["status", "pending"],
        ),
        case(
            "unknown identifier kind",
            partner_edited(|p| p["identifiers"][0]["kind"] = json!("vin")),
            BadCode,
            &["identifiers[0].kind", "vin"],
        ),
        case(
            "tier 0",
            partner_edited(|p| p["tier"] = json!(0)),
            BadValue,
            &["tier"],
        ),
        case(
            "tier 4",
            partner_edited(|p| p["tier"] = json!(4)),
            BadValue,
            &["tier"],
        ),
        case(
            "tier beyond u8",
            partner_edited(|p| p["tier"] = json!(300)),
            NumberOutOfRange,
            &["tier"],
        ),
        case(
            "tier as a string",
            partner_edited(|p| p["tier"] = json!("3")),
            WrongType,
            &["tier"],
        ),
        case(
            "trade_compliance as a string",
            partner_edited(|p| p["trade_compliance"] = json!("no")),
            WrongType,
            &["trade_compliance"],
        ),
        case(
            "empty partner_id",
            partner_edited(|p| p["partner_id"] = json!("")),
            BadValue,
            &["partner_id"],
        ),
        case(
            "empty identifier value",
            partner_edited(|p| p["identifiers"][0]["value"] = json!(" ")),
            BadValue,
            &["identifiers[0].value"],
        ),
        Case {
            limits: Limits {
                max_items: 1,
                ..Limits::default()
            },
            ..case(
                "too many identifiers",
                partner_edited(|p| {
                    p["identifiers"] =
                        json!([{"kind": "ior", "value": "A"}, {"kind": "ein", "value": "B"}])
                }),
                BadValue,
                &["identifiers", "limit is 1"],
            )
        },
        case(
            "Trojan Source partner_id",
            partner_edited(|p| p["partner_id"] = json!(format!("CTP-{}", "\u{202E}".repeat(10)))),
            BadValue,
            &["partner_id", "U+202E at byte 4"],
        ),
        case(
            "zero-width space in an identifier value",
            partner_edited(|p| p["identifiers"][0]["value"] = json!("12-3456789\u{200B}AB")),
            BadValue,
            &["identifiers[0].value", "U+200B"],
        ),
        case(
            "space in an identifier value",
            partner_edited(|p| p["identifiers"][0]["value"] = json!("12-3456789 AB")),
            BadValue,
            &["identifiers[0].value", "U+0020"],
        ),
        case(
            "isolate in an MRA programme",
            partner_edited(|p| {
                p["entity"] = json!("mra_foreign");
                p["mra_program"] = json!("\u{2067}EU-AEO\u{2069}");
            }),
            BadValue,
            &["mra_program", "U+2067"],
        ),
        case(
            "30 February",
            partner_edited(|p| p["certified_on"] = json!("2019-02-30")),
            BadDate,
            &["certified_on"],
        ),
        case(
            "date with a time",
            partner_edited(|p| p["validated_on"] = json!("2023-06-01T00:00:00Z")),
            BadDate,
            &["validated_on"],
        ),
        case(
            "validated before certified",
            partner_edited(|p| p["validated_on"] = json!("2018-01-01")),
            BadDate,
            &["validated_on", "certified_on"],
        ),
        case(
            "status twice",
            PARTNER.replacen(
                "\"status\": \"validated\"",
                "\"status\": \"validated\", \"status\": \"removed\"",
                1,
            ),
            DuplicateField,
            &["status"],
        ),
    ];
    let kinds = check(cases, |c| {
        parse_partner(&c.bytes, &c.limits).map(|p| p.partner_id.to_string())
    });
    assert!(
        kinds.len() >= 10,
        "partner cases cover too few kinds: {kinds:?}"
    );
}

/// Characters that would make a message display dishonestly if it carried them raw.
fn displays_honestly(message: &str) -> bool {
    !message.chars().any(|c| {
        c.is_control()
            || matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
    })
}

#[test]
fn refused_characters_are_named_not_echoed() {
    // The dead letter of a hostile identifier or name names the code point; the character itself never
    // reaches the message (it is shown on consoles and written to headers).
    let policy = CompiledPolicy::from_toml(DEFAULT_POLICY).expect("default policy");
    let table = PartnerTable::new();
    let mut checked = 0;
    for c in manifest_cases()
        .into_iter()
        .filter(|c| c.names.iter().any(|n| n.starts_with("U+")))
    {
        let e = process(&policy, &table, &c.bytes, &c.limits).expect_err(c.name);
        assert!(displays_honestly(&e.message), "{}: {:?}", c.name, e.message);
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} character cases");
}

#[test]
fn names_carry_every_script_and_ids_every_printable_ascii() {
    // What a real name needs is accepted: other scripts, right-to-left text, the zero-width (non-)joiners of
    // Persian and Indic names, combining marks, emoji; identifiers from `!` to `~`.
    let policy = CompiledPolicy::from_toml(DEFAULT_POLICY).expect("default policy");
    let table = PartnerTable::new();
    let names = [
        "شركة النور للتجارة",        // Arabic, right to left
        "אלקטרוניקה בע\"מ",          // Hebrew
        "می\u{200C}خواهم تجارت",     // Persian with a zero-width non-joiner
        "क्\u{200D}ष इंडस्ट्रीज",        // Devanagari with a zero-width joiner
        "Zoë Ñandú Łódź",            // Latin with diacritics
        "Café\u{0301} 🚚 Logistics", // a combining mark and an emoji
        "株式会社 東京",             // CJK
    ];
    for name in names {
        let bytes = edited(|m| {
            m["carrier"]["name"] = json!(name);
            m["drivers"][0]["name"] = json!(name);
            m["shipments"][0]["importer"]["name"] = json!(name);
            m["shipments"][0]["commodities"][0]["description"] = json!(name);
        });
        process(&policy, &table, &bytes, &Limits::default())
            .unwrap_or_else(|e| panic!("{name:?} rejected: {e}"));
    }
    let ascii: String = ('!'..='~').collect();
    for id in [&ascii[..47], &ascii[47..]] {
        let bytes = edited(|m| {
            m["manifest_id"] = json!(id);
            m["shipments"][0]["importer"]["id"] = json!(id);
            m["equipment"][0]["seals"][0]["number"] = json!(id);
        });
        process(&policy, &table, &bytes, &Limits::default())
            .unwrap_or_else(|e| panic!("{id:?} rejected: {e}"));
    }
    // A blank FAST card number is no card (the FAST condition reports it), not bad input.
    let blank = edited(|m| m["drivers"][0]["fast_card"] = json!("   "));
    process(&policy, &table, &blank, &Limits::default()).expect("blank FAST card accepted");
    // A partner whose ids are plain ASCII, with an MRA programme.
    let mra = partner_edited(|p| {
        p["entity"] = json!("mra_foreign");
        p["mra_program"] = json!("EU-AEO");
    });
    parse_partner(&mra, &Limits::default()).expect("MRA partner accepted");
}

#[test]
fn plausibility_limits_are_boundaries() {
    let policy = CompiledPolicy::from_toml(DEFAULT_POLICY).expect("default policy");
    let table = PartnerTable::new();
    let lim = policy.doc.plausibility.clone();
    let with = |w: f64, v: f64, q: f64| {
        let bytes = edited(|m| {
            let c = &mut m["shipments"][0]["commodities"][0];
            c["weight_kg"] = json!(w);
            c["value_usd"] = json!(v);
            c["quantity"] = json!(q);
        });
        process(&policy, &table, &bytes, &Limits::default())
    };
    // Right at each limit is accepted; just above is bad_value.
    with(lim.max_weight_kg, 1000.0, 1.0).expect("weight at the limit");
    with(lim.max_weight_kg, lim.max_value_usd, lim.max_quantity).expect("all at the limits");
    with(1.0, lim.max_value_per_kg, 1.0).expect("value per kg at the limit");
    for (w, v, q) in [
        (lim.max_weight_kg * 1.000001, 1000.0, 1.0),
        (lim.max_weight_kg, lim.max_value_usd * 1.000001, 1.0),
        (1.0, 1000.0, lim.max_quantity * 1.000001),
        (1.0, lim.max_value_per_kg * 1.000001, 1.0),
    ] {
        assert_eq!(
            with(w, v, q).expect_err("beyond a limit").kind,
            ErrorKind::BadValue
        );
    }
    // Zero weight is no division by zero: with a value it is scored (commodity.zero_weight), without one
    // it is nothing.
    let (_, d) = with(0.0, 5000.0, 1.0).expect("zero weight is decided");
    assert!(d
        .reasons
        .iter()
        .any(|r| r.rule.as_str() == "commodity.zero_weight"));
    let (_, d) = with(0.0, 0.0, 1.0).expect("zero weight, zero value");
    assert!(d
        .reasons
        .iter()
        .all(|r| r.rule.as_str() != "commodity.zero_weight"));
    // The limits come from the policy: a stricter one refuses what the default accepts.
    let strict_text =
        DEFAULT_POLICY.replace("max_weight_kg = 500_000_000.0", "max_weight_kg = 40_000.0");
    assert_ne!(strict_text, DEFAULT_POLICY);
    let strict = CompiledPolicy::from_toml(&strict_text).expect("strict policy");
    let heavy = edited(|m| m["shipments"][0]["commodities"][0]["weight_kg"] = json!(40_000.5));
    assert_eq!(
        process(&strict, &table, &heavy, &Limits::default())
            .expect_err("above the strict limit")
            .kind,
        ErrorKind::BadValue
    );
    process(&policy, &table, &heavy, &Limits::default()).expect("within the default limit");
}
