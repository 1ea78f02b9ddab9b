//! Differential tests of the manifest, partner and decision-record readers: `wire::parse_manifest` /
//! `wire::parse_partner` / `wire::parse_decision_facts` (the one-pass fast reader, falling back to serde_json
//! on anything it declines or that fails validation) against `wire::parse_manifest_serde` /
//! `wire::parse_partner_serde` / `wire::parse_decision_facts_serde` (serde_json alone; for manifests and
//! partners the reading of 917ca7d). On every input they must give the same value — to the bit of every float, so compared through
//! the serialised bytes too — or the same dead letter (kind and message). And whenever the fast reader
//! accepts a text on its own, serde_json must read that very value.
//!
//! Inputs are the golden and fuzz-corpus manifests and partners mutated as JSON trees (fields dropped, repeated, given
//! edge values: nulls, numbers at the edges, escapes and lone surrogates, control characters, unknown
//! nested fields, structs written as arrays), rendered with varied whitespace and escaping, and then
//! sometimes damaged as bytes (truncated, a byte inserted or replaced, trailing bytes, invalid UTF-8).

use borderlane_core::wire::{
    decision_limits, fast_decision_facts, fast_manifest, fast_partner, parse_decision_facts,
    parse_decision_facts_serde, parse_manifest, parse_manifest_serde, parse_partner,
    parse_partner_serde, DecisionFacts,
};
use borderlane_core::{BadInput, ErrorKind, Limits, Manifest, Partner};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::FileFailurePersistence;
use serde_json::Value as Json;

const SEEDS: &[&str] = &[
    include_str!("../../fuzz/corpus/manifest/north_truck.json"),
    include_str!("../../fuzz/corpus/manifest/south_truck.json"),
    include_str!("../../fuzz/corpus/manifest/ocean.json"),
    include_str!("../../fuzz/corpus/manifest/gen-00.json"),
    include_str!("../../fuzz/corpus/manifest/gen-07.json"),
    include_str!("../../fuzz/corpus/manifest/gen-13.json"),
    include_str!("../../fuzz/corpus/manifest/gen-21.json"),
    include_str!("../../fuzz/corpus/manifest/gen-29.json"),
    BENCH,
];

const PARTNER_SEEDS: &[&str] = &[
    include_str!("../../fuzz/corpus/partner/gen-00.json"),
    include_str!("../../fuzz/corpus/partner/gen-03.json"),
    include_str!("../../fuzz/corpus/partner/gen-07.json"),
    include_str!("../../fuzz/corpus/partner/gen-11.json"),
    include_str!("../../fuzz/corpus/partner/gen-19.json"),
    include_str!("../../fuzz/corpus/partner/gen-26.json"),
    PARTNER,
    MRA_PARTNER,
];

/// Decision records as the service writes them (`decided_at` included): each action, mode and standing
/// group, random and watch-list selections, several shipments.
const DECISION_SEEDS: &[&str] = &[
    include_str!("../../fuzz/corpus/decision/gen-00.json"),
    include_str!("../../fuzz/corpus/decision/gen-01.json"),
    include_str!("../../fuzz/corpus/decision/gen-02.json"),
    include_str!("../../fuzz/corpus/decision/gen-03.json"),
    include_str!("../../fuzz/corpus/decision/gen-04.json"),
    include_str!("../../fuzz/corpus/decision/gen-05.json"),
    include_str!("../../fuzz/corpus/decision/gen-06.json"),
    include_str!("../../fuzz/corpus/decision/gen-07.json"),
    include_str!("../../fuzz/corpus/decision/gen-08.json"),
    include_str!("../../fuzz/corpus/decision/gen-09.json"),
];

/// A partner with every field, two identifiers and an unknown member.
const PARTNER: &str = r#"{"partner_id":"CTP-0001234","entity":"importer","identifiers":[{"kind":"ior","value":"12-3456789AB"},{"kind":"ein","value":"12-3456789"}],"status":"validated","tier":3,"certified_on":"2019-03-04","validated_on":"2023-06-01","trade_compliance":true,"mra_program":null,"updated_at":"2026-11-01T00:00:00Z","note":{"a":[1,2.5]}}"#;

const MRA_PARTNER: &str = r#"{"partner_id":"CTP-MRA-0007","entity":"mra_foreign","identifiers":[{"kind":"mid","value":"MXMAQNOR1200TIJ"}],"status":"certified","certified_on":"2021-05-05","mra_program":"EU-AEO"}"#;

/// One record type's readers.
trait Reader {
    type Value: PartialEq + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned;
    const SEEDS: &'static [&'static str];
    /// The seeds' size for [`arb_mutation`].
    const SHAPE: (usize, usize, usize);
    fn parse(bytes: &[u8], limits: &Limits) -> Result<Self::Value, BadInput>;
    fn serde(bytes: &[u8], limits: &Limits) -> Result<Self::Value, BadInput>;
    fn fast(bytes: &[u8], limits: &Limits) -> Option<Self::Value>;
    /// The error kinds only validation gives (a record the fast reader accepts can fail only these).
    fn validation_kind(kind: ErrorKind) -> bool;
}

struct Manifests;

impl Reader for Manifests {
    type Value = Manifest;
    const SEEDS: &'static [&'static str] = SEEDS;
    const SHAPE: (usize, usize, usize) = (400, 200, 60);
    fn parse(bytes: &[u8], limits: &Limits) -> Result<Manifest, BadInput> {
        parse_manifest(bytes, limits)
    }
    fn serde(bytes: &[u8], limits: &Limits) -> Result<Manifest, BadInput> {
        parse_manifest_serde(bytes, limits)
    }
    fn fast(bytes: &[u8], limits: &Limits) -> Option<Manifest> {
        fast_manifest(bytes, limits)
    }
    fn validation_kind(kind: ErrorKind) -> bool {
        matches!(
            kind,
            ErrorKind::BadValue
                | ErrorKind::BadDate
                | ErrorKind::UnsupportedVersion
                | ErrorKind::NumberOutOfRange
        )
    }
}

struct Partners;

impl Reader for Partners {
    type Value = Partner;
    const SEEDS: &'static [&'static str] = PARTNER_SEEDS;
    const SHAPE: (usize, usize, usize) = (24, 16, 4);
    fn parse(bytes: &[u8], limits: &Limits) -> Result<Partner, BadInput> {
        parse_partner(bytes, limits)
    }
    fn serde(bytes: &[u8], limits: &Limits) -> Result<Partner, BadInput> {
        parse_partner_serde(bytes, limits)
    }
    fn fast(bytes: &[u8], limits: &Limits) -> Option<Partner> {
        fast_partner(bytes, limits)
    }
    fn validation_kind(kind: ErrorKind) -> bool {
        // MissingField: an mra_foreign partner without its programme.
        matches!(
            kind,
            ErrorKind::BadValue | ErrorKind::BadDate | ErrorKind::MissingField
        )
    }
}

struct Decisions;

impl Reader for Decisions {
    type Value = DecisionFacts;
    const SEEDS: &'static [&'static str] = DECISION_SEEDS;
    const SHAPE: (usize, usize, usize) = (120, 100, 16);
    fn parse(bytes: &[u8], limits: &Limits) -> Result<DecisionFacts, BadInput> {
        parse_decision_facts(bytes, limits)
    }
    fn serde(bytes: &[u8], limits: &Limits) -> Result<DecisionFacts, BadInput> {
        parse_decision_facts_serde(bytes, limits)
    }
    fn fast(bytes: &[u8], limits: &Limits) -> Option<DecisionFacts> {
        fast_decision_facts(bytes, limits)
    }
    fn validation_kind(_: ErrorKind) -> bool {
        // Nothing is validated beyond serde_json's reading: the fast reader accepts only what it reads.
        false
    }
}

/// The ~1.1 KB manifest of `benches/core_path.rs`.
const BENCH: &str = r#"{"manifest_id":"TRK-2304-20261128-000001","revision":0,"filed_at":"2026-11-28T04:00:00Z","mode":"truck","port_of_entry":"2304","estimated_arrival":"2026-11-28T05:00:00Z","carrier":{"scac":"ABCD","name":"Acme Transportes"},"conveyance":{"id":"3AKJHHDR5KSKG1234","trip_number":"ABCD0000123456"},"drivers":[{"name":"J. Perez","fast_card":"42712345600"}],"equipment":[{"id":"TRLU1234567","seals":[{"number":"MX0001234","iso17712":"H","affixed_by":"manufacturer"}]}],"shipments":[{"shipment_id":"ABCD0000123456-01","importer":{"id":"12-3456789AB","name":"Contoso Imports"},"consignee":{"id":"98-7654321CD","name":"Contoso DC 4"},"shipper":{"id":"SHP-MX-0042","name":"Maquila Norte","country":"MX"},"manufacturer":{"id":"MXMAQNOR1200TIJ","name":"Maquila Norte","country":"MX"},"broker":{"id":"A1B"},"origin_country":"MX","transit_countries":[],"commodities":[{"hts":"847130","description":"laptop computers","quantity":200,"unit":"CTN","weight_kg":1200.0,"value_usd":150000.0},{"hts":"850440","description":"power supplies","quantity":50,"unit":"CTN","weight_kg":300.0,"value_usd":9000.0}]}]}"#;

/// A JSON tree that keeps what serde_json's `Value` cannot: member order, repeated keys, and numbers and
/// strings exactly as written.
#[derive(Debug, Clone)]
enum Doc {
    /// Written verbatim (literals, numbers, and strings already quoted and escaped).
    Raw(String),
    /// A string, escaped when rendered according to the render options.
    Str(String),
    Arr(Vec<Doc>),
    Obj(Vec<(String, Doc)>),
}

fn from_json(v: &Json) -> Doc {
    match v {
        Json::Null | Json::Bool(_) | Json::Number(_) => Doc::Raw(v.to_string()),
        Json::String(s) => Doc::Str(s.clone()),
        Json::Array(a) => Doc::Arr(a.iter().map(from_json).collect()),
        Json::Object(o) => Doc::Obj(o.iter().map(|(k, v)| (k.clone(), from_json(v))).collect()),
    }
}

/// How a tree is written: whitespace between tokens, and which characters of strings are `\u`-escaped.
#[derive(Debug, Clone, Copy)]
struct Style {
    ws: &'static str,
    /// Escape every occurrence of this character (as `\u00XX` or its short form).
    escape: Option<char>,
}

fn quote(s: &str, style: Style, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if Some(c) == style.escape => {
                if c == '/' {
                    out.push_str("\\/");
                } else {
                    let mut buf = [0u16; 2];
                    for u in c.encode_utf16(&mut buf) {
                        out.push_str(&format!("\\u{u:04X}"));
                    }
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn render(d: &Doc, style: Style, out: &mut String) {
    match d {
        Doc::Raw(r) => out.push_str(r),
        Doc::Str(s) => quote(s, style, out),
        Doc::Arr(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(style.ws);
                render(x, style, out);
            }
            out.push_str(style.ws);
            out.push(']');
        }
        Doc::Obj(o) => {
            out.push('{');
            for (i, (k, v)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(style.ws);
                quote(k, style, out);
                out.push_str(style.ws);
                out.push(':');
                out.push_str(style.ws);
                render(v, style, out);
            }
            out.push_str(style.ws);
            out.push('}');
        }
    }
}

/// Values at the edges of what the fields accept, written exactly.
const EDGE_RAW: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-0",
    "-0.0",
    "0.0",
    "00",
    "01",
    "1.",
    ".5",
    "+1",
    "-1",
    "1e5",
    "1E+2",
    "1e-5",
    "2e0",
    "200",
    "1200.0",
    "0.1",
    "0.30000000000000004",
    "4294967295",
    "4294967296",
    "999999999",
    "1000000000",
    "18446744073709551615",
    "18446744073709551616",
    "1e999",
    "-1e999",
    "123456789012345678901234567890",
    "9007199254740993",
    "9007199254740993.0",
    "1.7976931348623157e308",
    "5e-324",
    "2.2250738585072014e-308",
    "1.000000000000000000001",
    "123456789.123456789",
    "0.000000000000000000000000001",
    "12345678901234567.5",
    "999999999999999.9",
    "9999999999999999.9",
    "NaN",
    "Infinity",
    "[]",
    "{}",
    "[null]",
    "{\"a\":[1,{\"b\":null}]}",
    "[[[[[[[[[[]]]]]]]]]]",
    "\"\"",
    "\"\\ud800\"",
    "\"\\udc00x\"",
    "\"\\ud83d\\ude00\"",
    "\"\\u0000\"",
    "\"\\u202e\"",
    "\"a\\/b\"",
    "\"\\x\"",
    "\"\t\"",
    "\"MX\"",
    "\"US\"",
    "\"XX\"",
    "\"mx\"",
    "\"2304\"",
    "\"847130\"",
    "\"8471300000\"",
    "\"truck\"",
    "\"air\"",
    "\"Truck\"",
    "\"H\"",
    "\"customs\"",
    "\"2026-11-28T04:00:00Z\"",
    "\"2026-11-27T23:00:00-05:00\"",
    "\"2026-11-28T04:00:00.5Z\"",
    "\"2026-02-30T04:00:00Z\"",
    "\"1969-12-31T23:59:59Z\"",
    "\" \"",
    "\"a b\"",
    "\"é\"",
    "\"\u{202e}\"",
    "\"\u{feff}x\"",
    "{\"truck\":null}",
    "[\"ABCD\",\"name\"]",
    "1.0",
    "3",
    "255",
    "256",
    "\"2019-03-04\"",
    "\"2019-02-29\"",
    "\"2019-3-4\"",
    "\"importer\"",
    "\"mra_foreign\"",
    "\"Importer\"",
    "\"validated\"",
    "\"ior\"",
    "\"release\"",
    "\"nii_scan\"",
    "\"Release\"",
    "\"carrier\"",
    "\"driver\"",
    "{\"importer\":null}",
    "-60",
    "-999999999",
    "-1000000000",
    "2147483647",
    "-2147483648",
    "-2147483649",
    "-01",
    "-1.5",
    "[{\"rule\":\"history.seizure\",\"points\":40}]",
    "[{\"role\":\"importer\",\"id\":\"I1\",\"shipment_id\":null}]",
    "\"filer_code\"",
    "[{\"kind\":\"scac\",\"value\":\"ABCD\"}]",
    "{\"kind\":\"ior\",\"value\":\"12-3456789AB\"}",
];

const EDGE_KEYS: &[&str] = &[
    "revision",
    "schema_version",
    "mode",
    "name",
    "id",
    "quantity",
    "duty_rate",
    "country",
    "seals",
    "unknown",
    "x",
    "",
    "manifest_i\u{0064}",
    "Revision",
    "tier",
    "entity",
    "status",
    "kind",
    "value",
    "identifiers",
    "trade_compliance",
    "mra_program",
    "validated_on",
    "score",
    "points",
    "rule",
    "role",
    "action",
    "random_exam",
    "watchlist_hit",
    "port_of_entry",
    "importer_standing",
    "shipment_id",
    "reasons",
    "parties",
];

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the value of the n-th node.
    Replace(usize, &'static str),
    /// Remove the n-th object member (counted over all objects).
    Remove(usize),
    /// Repeat the n-th object member right after itself, with the given value or its own.
    Repeat(usize, Option<&'static str>),
    /// Add a member with this key and value to the n-th object.
    Add(usize, &'static str, &'static str),
    /// Swap the n-th object member with the next member of its object (keys out of the writers' order,
    /// which the fast reader tries first).
    Swap(usize),
}

/// Mutations of a record with about `nodes` JSON nodes, `members` object members and `objects` objects.
fn arb_mutation(
    (nodes, members, objects): (usize, usize, usize),
) -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (0..nodes, select(EDGE_RAW)).prop_map(|(n, v)| Mutation::Replace(n, v)),
        2 => (0..members).prop_map(Mutation::Remove),
        2 => (0..members, prop::option::of(select(EDGE_RAW))).prop_map(|(n, v)| Mutation::Repeat(n, v)),
        2 => (0..objects, select(EDGE_KEYS), select(EDGE_RAW)).prop_map(|(n, k, v)| Mutation::Add(n, k, v)),
        2 => (0..members).prop_map(Mutation::Swap),
    ]
}

/// Visits every node in pre-order with a counter; `f` returns true when it acted (stops the walk).
fn walk(d: &mut Doc, n: &mut usize, f: &mut dyn FnMut(&mut Doc, usize) -> bool) -> bool {
    if f(d, *n) {
        return true;
    }
    *n += 1;
    match d {
        Doc::Arr(a) => a.iter_mut().any(|x| walk(x, n, f)),
        Doc::Obj(o) => o.iter_mut().any(|(_, v)| walk(v, n, f)),
        _ => false,
    }
}

fn apply(doc: &mut Doc, m: &Mutation) {
    let mut counter = 0;
    match *m {
        Mutation::Replace(at, v) => {
            walk(doc, &mut counter, &mut |d, i| {
                if i == at {
                    *d = Doc::Raw(v.to_string());
                    return true;
                }
                false
            });
        }
        Mutation::Remove(at) | Mutation::Repeat(at, _) | Mutation::Swap(at) => {
            let mut seen = 0;
            walk(doc, &mut counter, &mut |d, _| {
                if let Doc::Obj(o) = d {
                    if at < seen + o.len() {
                        let k = at - seen;
                        match *m {
                            Mutation::Remove(_) => {
                                o.remove(k);
                            }
                            Mutation::Repeat(_, v) => {
                                let (key, val) = o[k].clone();
                                let val = v.map_or(val, |v| Doc::Raw(v.to_string()));
                                o.insert(k + 1, (key, val));
                            }
                            Mutation::Swap(_) if k + 1 < o.len() => o.swap(k, k + 1),
                            _ => {}
                        }
                        return true;
                    }
                    seen += o.len();
                }
                false
            });
        }
        Mutation::Add(at, key, v) => {
            let mut seen = 0;
            walk(doc, &mut counter, &mut |d, _| {
                if let Doc::Obj(o) = d {
                    if seen == at {
                        o.push((key.to_string(), Doc::Raw(v.to_string())));
                        return true;
                    }
                    seen += 1;
                }
                false
            });
        }
    }
}

#[derive(Debug, Clone)]
enum Damage {
    None,
    Truncate(usize),
    Insert(usize, u8),
    Replace(usize, u8),
    Trailing(&'static [u8]),
}

const TRAILING: &[&[u8]] = &[b" ", b"\n\t\r ", b"x", b"{}", b",", b" null", b"\x00"];

fn arb_damage() -> impl Strategy<Value = Damage> {
    let bytes = select(&b"{}[]\",:0123456789.-+eE \t\n\r\\/untfl\x00\x01\x7f\x80\xc3\xff"[..]);
    prop_oneof![
        8 => Just(Damage::None),
        1 => (0..2000usize).prop_map(Damage::Truncate),
        1 => (0..2000usize, bytes.clone()).prop_map(|(i, b)| Damage::Insert(i, b)),
        1 => (0..2000usize, bytes).prop_map(|(i, b)| Damage::Replace(i, b)),
        1 => select(TRAILING).prop_map(Damage::Trailing),
    ]
}

fn damage(mut b: Vec<u8>, d: &Damage) -> Vec<u8> {
    match *d {
        Damage::None => {}
        Damage::Truncate(i) => b.truncate(i % (b.len() + 1)),
        Damage::Insert(i, x) => {
            let i = i % (b.len() + 1);
            b.insert(i, x);
        }
        Damage::Replace(i, x) => {
            if !b.is_empty() {
                let i = i % b.len();
                b[i] = x;
            }
        }
        Damage::Trailing(t) => b.extend_from_slice(t),
    }
    b
}

fn arb_style() -> impl Strategy<Value = Style> {
    (
        select(&["", " ", "\n  ", "\t", "\r\n"][..]),
        prop::option::of(select(&['a', 'e', 'M', '0', '-', ':', ' ', '/', 'é'][..])),
    )
        .prop_map(|(ws, escape)| Style { ws, escape })
}

fn tight() -> Limits {
    Limits {
        max_id_len: 12,
        max_items: 1,
        max_shipments: 1,
        max_commodities: 1,
        max_depth: 4,
        ..Limits::default()
    }
}

/// The two readings agree on `bytes` under `limits`; returns whether the fast reader accepted it alone.
fn agree<R: Reader>(bytes: &[u8], limits: &Limits) -> bool {
    let fast = R::parse(bytes, limits);
    let slow = R::serde(bytes, limits);
    let text = String::from_utf8_lossy(bytes);
    match (&fast, &slow) {
        (Ok(f), Ok(s)) => {
            assert_eq!(f, s, "readings differ on {text}");
            assert_eq!(
                serde_json::to_vec(f).unwrap(),
                serde_json::to_vec(s).unwrap(),
                "readings serialise differently on {text}"
            );
        }
        _ => assert_eq!(fast, slow, "outcomes differ on {text}"),
    }
    // The fast reader on its own: whatever it accepts, serde_json reads to the same value (validation aside).
    let alone = R::fast(bytes, limits);
    if let (Some(_), Err(e)) = (&alone, &slow) {
        // What the fast reader accepts passes every pre-check and serde_json; only validation may refuse it.
        assert!(
            R::validation_kind(e.kind),
            "fast reader accepted a record refused before validation ({e}): {text}"
        );
    }
    if let Some(m) = &alone {
        let text = std::str::from_utf8(bytes).expect("accepted text is UTF-8");
        let s: R::Value = serde_json::from_str(text).unwrap_or_else(|e| {
            panic!("fast reader accepted what serde_json refuses ({e}): {text}")
        });
        assert_eq!(m, &s, "fast reader value differs on {text}");
        assert_eq!(
            serde_json::to_vec(m).unwrap(),
            serde_json::to_vec(&s).unwrap(),
            "fast reader value serialises differently on {text}"
        );
    }
    alone.is_some()
}

fn seeds_take_the_fast_path_and_agree<R: Reader>() {
    for seed in R::SEEDS {
        for limits in [Limits::default(), tight()] {
            agree::<R>(seed.as_bytes(), &limits);
        }
        // Every seed serde_json reads (some corpus seeds carry a bad code on purpose) the fast reader reads.
        if serde_json::from_str::<R::Value>(seed).is_ok() {
            assert!(
                R::fast(seed.as_bytes(), &Limits::default()).is_some(),
                "the fast reader declines a plain record: {seed}"
            );
        }
    }
}

#[test]
fn manifest_seeds_take_the_fast_path_and_agree() {
    seeds_take_the_fast_path_and_agree::<Manifests>();
}

#[test]
fn partner_seeds_take_the_fast_path_and_agree() {
    seeds_take_the_fast_path_and_agree::<Partners>();
}

#[test]
fn decision_seeds_take_the_fast_path_and_agree() {
    seeds_take_the_fast_path_and_agree::<Decisions>();
    // And under the limits the service reads them with.
    for seed in DECISION_SEEDS {
        agree::<Decisions>(seed.as_bytes(), &decision_limits());
        assert!(fast_decision_facts(seed.as_bytes(), &decision_limits()).is_some());
    }
}

#[test]
fn decision_edges_agree() {
    let base = DECISION_SEEDS[4];
    assert!(base.contains("\"score\":") && base.contains("\"points\":-"));
    // `"score":<v>` with the seed's score value replaced by `v`.
    let with_score = |v: &str| {
        let at = base.find("\"score\":").unwrap() + "\"score\":".len();
        let end = at + base[at..].find(',').unwrap();
        format!("{}{v}{}", &base[..at], &base[end..])
    };
    let escaped = base.replacen(
        "\"detail\":\"",
        "\"detail\":\"\\u00e9\\ud800\\/\\b\\f\\n\\r\\t\\\"\\\\",
        1,
    );
    let cases = [
        with_score("-0"),
        with_score("-"),
        with_score("-12.0"),
        with_score("-12e1"),
        with_score("12"),
        with_score("-999999999"),
        with_score("-1000000000"),
        with_score("-2147483648"),
        with_score("-2147483649"),
        with_score("\"12\""),
        base.replacen("\"points\":-", "\"points\":-0", 1),
        base.replacen("\"points\":-", "\"points\":- ", 1),
        base.replacen("\"points\":", "\"points\":999999999", 1),
        base.replacen("\"points\":", "\"points\":2147483648", 1),
        base.replacen("\"action\":\"", "\"action\":\"x", 1),
        base.replacen("\"role\":\"", "\"role\":\"x", 1),
        base.replacen("\"role\":", "\"role\":{\"importer\":null},\"x\":", 1),
        base.replacen("\"port_of_entry\":\"", "\"port_of_entry\":\"9", 1),
        base.replacen("\"random_exam\":", "\"random_exam\":null,\"x\":", 1),
        base.replacen("\"random_exam\":false,", "", 1),
        base.replacen(
            "\"watchlist_hit\":",
            "\"watchlist_hit\":true,\"watchlist_hit\":",
            1,
        ),
        base.replacen("\"reasons\":", "\"reasons\":null,\"x\":", 1),
        base.replacen("\"parties\":[", "\"parties\":[],\"x\":[", 1),
        base.replacen("\"shipment_id\":\"", "\"shipment_id\":null,\"x\":\"", 1),
        base.replacen("\"manifest_id\":\"", "\"manifest_id\":\"\\u0041", 1),
        base.replacen("\"detail\":\"", "\"detail\":\"\\\"", 1),
        // Escapes in a skipped string: `\u` takes four hex digits, any code unit (a lone surrogate too).
        escaped.clone(),
        base.replacen("\"detail\":\"", "\"detail\":\"\\u12G4", 1),
        base.replacen("\"detail\":\"", "\"detail\":\"\\u12\"", 1),
        base.replacen("\"detail\":\"", "\"detail\":\"\\x", 1),
        base.replacen("\"detail\":\"", "\"detail\":\"\\\t", 1),
        base.replacen("\"detail\":\"", "\"detail\":\"\t", 1),
        format!("{}\\u12", &base[..base.find("\"detail\":\"").unwrap() + 10]),
        base.replacen(
            "\"importer_standing\":\"none\"",
            "\"importer_standing\":7",
            1,
        ),
        base.replacen("\"importer_standing\"", "\"importer_st\\u0061nding\"", 1),
        base.replacen(",\"importer_standing\":\"none\"", "", 1),
        base.replacen(
            "\"history_as_of\":{",
            "\"history_as_of\":{\"a\":[[[[[[[[[[[[]]]]]]]]]]]],",
            1,
        ),
        format!("{base} "),
        format!("{base}x"),
        "{}".to_string(),
    ];
    let mut accepted = 0;
    for case in &cases {
        for limits in [decision_limits(), tight()] {
            if agree::<Decisions>(case.as_bytes(), &limits) {
                accepted += 1;
            }
        }
    }
    // Several cases are plain records the fast reader must take on its own (an unknown member, a whitespace),
    // escapes in skipped text among them.
    assert!(accepted >= 4, "fast reader accepted {accepted} edge cases");
    assert!(fast_decision_facts(escaped.as_bytes(), &decision_limits()).is_some());
}

#[test]
fn manifest_edges_agree() {
    let base = BENCH;
    let cases = [
        base.replace("\"quantity\":200", "\"quantity\":-0"),
        base.replace("\"quantity\":200", "\"quantity\":-0.0"),
        base.replace("\"quantity\":200", "\"quantity\":0.1e1"),
        base.replace("\"quantity\":200", "\"quantity\":9007199254740993"),
        base.replace("\"quantity\":200", "\"quantity\":0.30000000000000004"),
        base.replace(
            "\"quantity\":200",
            "\"quantity\":123456789012345678901234567890.5",
        ),
        base.replace("\"weight_kg\":1200.0", "\"weight_kg\":1234.56789"),
        base.replace("\"weight_kg\":1200.0", "\"weight_kg\":0.0001"),
        base.replace("\"revision\":0", "\"revision\":4294967295"),
        base.replace("\"revision\":0", "\"revision\":4294967296"),
        base.replace("\"revision\":0", "\"revision\":null"),
        base.replace("\"revision\":0", "\"schema_version\":null"),
        base.replace("\"revision\":0", "\"revision\":0,\"revision\":0"),
        base.replace("\"revision\":0", "\"x\":1,\"x\":2"),
        base.replace("\"revision\":0", "\"x\":\"\\ud800\""),
        base.replace(
            "\"revision\":0",
            "\"x\":{\"y\":[1,2.5e-3,true,false,null,\"z\"]}",
        ),
        base.replace("\"Acme Transportes\"", "\"Acme \\ud800\""),
        base.replace("\"Acme Transportes\"", "\"Acme \\u202e\""),
        base.replace("\"Acme Transportes\"", "null"),
        base.replace("\"mode\":\"truck\"", "\"mode\":{\"truck\":null}"),
        base.replace(
            "{\"scac\":\"ABCD\",\"name\":\"Acme Transportes\"}",
            "[\"ABCD\",\"Acme Transportes\"]",
        ),
        base.replace("\"manifest_id\"", "\"manifest_\\u0069d\""),
        format!("{base} "),
        format!("{base}x"),
        format!("{base}{base}"),
        format!("\u{feff}{base}"),
    ];
    for case in &cases {
        for limits in [Limits::default(), tight()] {
            agree::<Manifests>(case.as_bytes(), &limits);
        }
    }
    let mut bad = BENCH.as_bytes().to_vec();
    bad[40] = 0xff;
    agree::<Manifests>(&bad, &Limits::default());
}

/// Strings for the field checks' tests: good and bad values, a bad byte at every position of the first
/// three words a string spans, lengths around the identifier limit, blanks (ASCII and not: a FAST card of
/// only Unicode whitespace is blank). Control characters come out of `serde_json::to_string` escaped, so
/// the reader declines them as escapes before any field check.
fn text_field_values() -> Vec<String> {
    let mut values: Vec<String> = [
        "X",
        "",
        " ",
        "  ",
        "\t",
        "a b",
        "é",
        "\u{202e}",
        "\u{feff}x",
        "x\u{7f}",
        "x\u{80}",
        "~!",
        "a\u{a0}b",
        "MX",
        "US",
        "H",
        "truck",
        "2304",
        "847130",
        "2026-11-28T04:00:00Z",
        "importer",
        "validated",
        "ior",
        "2019-03-04",
        "\u{a0}",
        "\u{2003}",
    ]
    .iter()
    .map(|v| v.to_string())
    .collect();
    for len in 0..=26 {
        values.push("A".repeat(len));
    }
    for at in 0..24 {
        for bad in [' ', 'é', '\u{1}', '\u{7f}', '\u{202e}'] {
            let mut v: Vec<char> = "ABCDEFGHIJKLMNOPQRSTUVWX".chars().collect();
            v[at] = bad;
            values.push(v.into_iter().collect());
        }
    }
    // The scan takes sixteen bytes a step (x86-64): a bad byte at the edges of the first and second
    // blocks, the closing quote at the start of the next block (lengths 16 and 32) or either side of it.
    for len in [15, 16, 17, 31, 32, 33] {
        for at in [0, 14, 15, 16, 17, 30, 31, 32] {
            if at >= len {
                continue;
            }
            for bad in [' ', '\u{7f}'] {
                let mut v: Vec<char> = "A".repeat(len).chars().collect();
                v[at] = bad;
                values.push(v.into_iter().collect());
            }
        }
        let mut v = "A".repeat(len - 2);
        v.push('é');
        values.push(v);
    }
    values
}

/// Every string of `base` in turn replaced by each of [`text_field_values`], under the default limits
/// and an identifier limit of 24 bytes (the bench manifest's longest id): the outcome equals the serde path's (kind and message), and the
/// fast reader takes on its own every record the serde path accepts (they are plain strings). Returns
/// (records tried, records refused).
fn every_string_replaced<R: Reader>(base: &Json) -> (usize, usize) {
    fn strings(v: &Json, path: &mut Vec<Json>, out: &mut Vec<Vec<Json>>) {
        match v {
            Json::String(_) => out.push(path.clone()),
            Json::Array(a) => a.iter().enumerate().for_each(|(i, x)| {
                path.push(Json::from(i));
                strings(x, path, out);
                path.pop();
            }),
            Json::Object(o) => o.iter().for_each(|(k, x)| {
                path.push(Json::from(k.as_str()));
                strings(x, path, out);
                path.pop();
            }),
            _ => {}
        }
    }
    let mut paths = Vec::new();
    strings(base, &mut Vec::new(), &mut paths);
    let id_limit = Limits {
        max_id_len: 24,
        ..Limits::default()
    };
    let (mut cases, mut refused) = (0, 0);
    for path in &paths {
        for value in text_field_values() {
            let mut doc = base.clone();
            let mut at = &mut doc;
            for step in path {
                at = match step {
                    Json::String(k) => &mut at[k.as_str()],
                    _ => &mut at[step.as_u64().unwrap() as usize],
                };
            }
            *at = Json::String(value);
            // serde_json writes control characters escaped; raw, they would be refused before any field check.
            let text = serde_json::to_string(&doc).unwrap();
            for limits in [Limits::default(), id_limit] {
                agree::<R>(text.as_bytes(), &limits);
                cases += 1;
                match R::serde(text.as_bytes(), &limits) {
                    Ok(_) if !text.contains('\\') => assert!(
                        R::fast(text.as_bytes(), &limits).is_some(),
                        "the fast reader declines a record the serde path accepts: {text}"
                    ),
                    Ok(_) => {}
                    Err(_) => refused += 1,
                }
            }
        }
    }
    (cases, refused)
}

/// The field checks the fast reader makes as it reads a manifest (identifiers, codes, names, descriptions,
/// FAST cards): every string of the bench manifest (with every optional commodity code added) replaced,
/// as [`every_string_replaced`] does; and a description read in the byte-at-a-time tail.
#[test]
fn every_text_field_checked_as_validation_checks_it() {
    let mut base: Json = serde_json::from_str(BENCH).unwrap();
    let codes = [
        "entry_type",
        "process_type",
        "import_use",
        "payment_type",
        "duty_type",
    ];
    for code in codes.into_iter().chain(["origin_preference"]) {
        base["shipments"][0]["commodities"][1][code] = Json::from("01");
    }
    let (cases, refused) = every_string_replaced::<Manifests>(&base);
    // Most replacements are refused somewhere (a bad code, a bad character), many are not.
    assert!(
        refused > cases / 4 && refused < cases,
        "{refused} of {cases} refused"
    );
    // A description, or a commodity's unit, that is the record's last string: a value of one byte is then
    // among the input's last seven bytes, which the reader's scan takes one at a time (longer values end
    // in the word loop). Refused or accepted as validation says.
    let last = "\"description\":\"power supplies\",\"quantity\":50,\"unit\":\"CTN\",\"weight_kg\":300.0,\"value_usd\":9000.0}]}]}";
    assert!(BENCH.ends_with(last));
    let cases = [
        ("description", "a", true),
        ("description", "", true),
        ("description", " ", true),
        ("description", "\u{7f}", false),
        ("description", "\u{85}", false),
        ("description", "é", true),
        ("unit", "A", true),
        ("unit", "~", true),
        ("unit", " ", false),
        ("unit", "", false),
        ("unit", "\u{7f}", false),
        ("unit", "é", false),
    ];
    for (field, value, ok) in cases {
        let rest = if field == "unit" {
            "\"description\":\"power supplies\",\"quantity\":50"
        } else {
            "\"quantity\":50,\"unit\":\"CTN\""
        };
        let text = BENCH.replace(
            last,
            &format!(
                "{rest},\"weight_kg\":300.0,\"value_usd\":9000.0,\"{field}\":\"{value}\"}}]}}]}}"
            ),
        );
        agree::<Manifests>(text.as_bytes(), &Limits::default());
        assert_eq!(
            parse_manifest(text.as_bytes(), &Limits::default()).is_ok(),
            ok,
            "{text}"
        );
        assert_eq!(
            fast_manifest(text.as_bytes(), &Limits::default()).is_some(),
            ok,
            "{text}"
        );
    }
}

/// The identifier checks the fast reader makes as it reads a partner record (the partner id, each
/// identifier's value, the MRA programme), as for manifests.
#[test]
fn every_partner_text_field_checked_as_validation_checks_it() {
    let mut refused_somewhere = 0;
    for seed in [PARTNER, MRA_PARTNER] {
        let (cases, refused) =
            every_string_replaced::<Partners>(&serde_json::from_str(seed).unwrap());
        assert!(refused < cases, "{refused} of {cases} refused");
        refused_somewhere += refused;
    }
    assert!(refused_somewhere > 0);
}

#[test]
fn partner_edges_agree() {
    let base = PARTNER;
    let cases = [
        base.replace("\"tier\":3", "\"tier\":0"),
        base.replace("\"tier\":3", "\"tier\":4"),
        base.replace("\"tier\":3", "\"tier\":255"),
        base.replace("\"tier\":3", "\"tier\":256"),
        base.replace("\"tier\":3", "\"tier\":3.0"),
        base.replace("\"tier\":3", "\"tier\":-1"),
        base.replace("\"tier\":3", "\"tier\":null"),
        base.replace("\"tier\":3", "\"tier\":\"3\""),
        base.replace("\"trade_compliance\":true", "\"trade_compliance\":null"),
        base.replace("\"trade_compliance\":true", "\"trade_compliance\":1"),
        base.replace(
            "\"validated_on\":\"2023-06-01\"",
            "\"validated_on\":\"2018-06-01\"",
        ),
        base.replace(
            "\"validated_on\":\"2023-06-01\"",
            "\"validated_on\":\"2023-02-29\"",
        ),
        base.replace("\"validated_on\":\"2023-06-01\"", "\"validated_on\":null"),
        base.replace("\"entity\":\"importer\"", "\"entity\":\"mra_foreign\""),
        base.replace("\"entity\":\"importer\"", "\"entity\":\"Importer\""),
        base.replace("\"status\":\"validated\"", "\"status\":\"revoked\""),
        base.replace("\"kind\":\"ior\"", "\"kind\":\"IOR\""),
        base.replace("\"kind\":\"ior\"", "\"kind\":\"ior\",\"kind\":\"ior\""),
        base.replace("\"kind\":\"ior\",", ""),
        base.replace("\"12-3456789AB\"", "\"\""),
        base.replace("\"12-3456789AB\"", "\"12-3456789AB-TOO-LONG-FOR-TIGHT\""),
        base.replace("\"12-3456789AB\"", "\"12-\\u0033456789AB\""),
        base.replace("\"12-3456789AB\"", "null"),
        base.replace("\"partner_id\"", "\"partner_\\u0069d\""),
        base.replace("\"partner_id\":\"CTP-0001234\",", ""),
        base.replace("\"identifiers\":[", "\"identifiers\":[],\"x\":["),
        base.replace(
            "\"updated_at\":\"2026-11-01T00:00:00Z\"",
            "\"updated_at\":\"2026-11-01T00:00:00+01:00\"",
        ),
        base.replace("\"mra_program\":null", "\"mra_program\":\"\""),
        base.replace(
            "\"mra_program\":null",
            "\"mra_program\":\"EU-AEO\",\"mra_program\":null",
        ),
        MRA_PARTNER.replace("\"mra_program\":\"EU-AEO\"", "\"mra_program\":null"),
        MRA_PARTNER.replace(",\"mra_program\":\"EU-AEO\"", ""),
        format!("{base} "),
        format!("{base}x"),
        format!(" \n{base}\t"),
        format!("\u{feff}{base}"),
        "[]".to_string(),
        "{}".to_string(),
        String::new(),
    ];
    for case in &cases {
        for limits in [Limits::default(), tight()] {
            agree::<Partners>(case.as_bytes(), &limits);
        }
    }
    let mut bad = PARTNER.as_bytes().to_vec();
    bad[20] = 0xff;
    agree::<Partners>(&bad, &Limits::default());
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn fast_and_serde_manifest_readings_agree(
        seed in select(SEEDS),
        mutations in prop::collection::vec(arb_mutation(Manifests::SHAPE), 0..4),
        style in arb_style(),
        dmg in arb_damage(),
        tight_limits in any::<bool>(),
    ) {
        mutated_agree::<Manifests>(seed, &mutations, style, &dmg, tight_limits);
    }

}

proptest! {
    // A partner record is small (~15 nodes): many more cases for the same time, so that each edge value
    // lands on each field.
    #![proptest_config(ProptestConfig {
        cases: 20000,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn fast_and_serde_partner_readings_agree(
        seed in select(PARTNER_SEEDS),
        mutations in prop::collection::vec(arb_mutation(Partners::SHAPE), 0..4),
        style in arb_style(),
        dmg in arb_damage(),
        tight_limits in any::<bool>(),
    ) {
        mutated_agree::<Partners>(seed, &mutations, style, &dmg, tight_limits);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 3000,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn fast_and_serde_decision_readings_agree(
        seed in select(DECISION_SEEDS),
        mutations in prop::collection::vec(arb_mutation(Decisions::SHAPE), 0..4),
        style in arb_style(),
        dmg in arb_damage(),
        tight_limits in any::<bool>(),
    ) {
        mutated_agree::<Decisions>(seed, &mutations, style, &dmg, tight_limits);
    }
}

/// `seed` mutated, rendered in `style` and damaged: the two readings agree. Whether the fast reader accepted
/// it alone.
fn mutated_agree<R: Reader>(
    seed: &str,
    mutations: &[Mutation],
    style: Style,
    dmg: &Damage,
    tight_limits: bool,
) -> bool {
    let mut doc = from_json(&serde_json::from_str::<Json>(seed).unwrap());
    for m in mutations {
        apply(&mut doc, m);
    }
    let mut text = String::new();
    render(&doc, style, &mut text);
    let bytes = damage(text.into_bytes(), dmg);
    let limits = if tight_limits {
        tight()
    } else {
        Limits::default()
    };
    agree::<R>(&bytes, &limits)
}

/// The generator is not vacuous: over a fixed sample, the fast reader accepts a good share of the mutated
/// inputs on its own (so its values are compared) and declines a good share (so the fallback is exercised).
fn generator_exercises_both_paths<R: Reader>() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let strat = (
        select(R::SEEDS),
        prop::collection::vec(arb_mutation(R::SHAPE), 0..4),
        arb_style(),
        arb_damage(),
    );
    let (mut accepted, mut declined) = (0, 0);
    for _ in 0..1000 {
        let (seed, mutations, style, dmg) = strat.new_tree(&mut runner).unwrap().current();
        if mutated_agree::<R>(seed, &mutations, style, &dmg, false) {
            accepted += 1;
        } else {
            declined += 1;
        }
    }
    eprintln!("fast reader alone: accepted {accepted}, declined {declined} of 1000");
    assert!(
        accepted > 200 && declined > 200,
        "accepted {accepted}, declined {declined}"
    );
}

#[test]
fn manifest_generator_exercises_both_paths() {
    generator_exercises_both_paths::<Manifests>();
}

#[test]
fn partner_generator_exercises_both_paths() {
    generator_exercises_both_paths::<Partners>();
}

#[test]
fn decision_generator_exercises_both_paths() {
    generator_exercises_both_paths::<Decisions>();
}
