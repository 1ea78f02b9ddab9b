//! The direct decision writer (`Decision::write_json`) against the reference, `serde_json::to_writer`
//! through the `Serialize` impls: byte for byte, on generated decisions that cover every `Detail` variant,
//! every rule, every optional field present and absent, strings with quotes, backslashes, control
//! characters, non-ASCII and bidi controls, and floats of every kind (large, tiny, negative, integral,
//! non-finite) inside the reason texts. The golden cases (golden.rs) check the same on their decisions.

use std::collections::BTreeMap;
use std::sync::Arc;

use borderlane_core::codes::{Country, Hts, PortCode};
use borderlane_core::decision::{
    Detail, ExamResult, FastMissing, PartyView, Recalled, Role as DRole,
};
use borderlane_core::model::{ModelInfo, Top, TOP_FEATURES};
use borderlane_core::time::Timestamp;
use borderlane_core::wire::{Mode, Status, Str};
use borderlane_core::{Action, Band, Decision, Lane, Reason, Rule, Standing, Watermark};
use proptest::prelude::*;
use proptest::sample::select;
use smallvec::SmallVec;

/// Characters JSON escapes or that are easy to get wrong, mixed with arbitrary ones.
const TRICKY: &[char] = &[
    '"', '\\', '/', '\n', '\r', '\t', '\u{8}', '\u{c}', '\u{0}', '\u{1}', '\u{b}', '\u{1f}',
    '\u{7f}', '\u{80}', '\u{a0}', 'é', 'ß', '中', '\u{200b}', '\u{202e}', '\u{2066}', '\u{2028}',
    '\u{2029}', '\u{feff}', '\u{fffd}', '😀', '{', '}', ':', ',', ' ', 'a', 'Z', '0',
];

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop_oneof![3 => select(TRICKY), 1 => any::<char>()], 0..10)
        .prop_map(String::from_iter)
}

fn s() -> impl Strategy<Value = Str> {
    prop_oneof![
        text().prop_map(Str::from),
        // Long enough to live on the heap (Str keeps up to 24 bytes inline).
        (text(), text()).prop_map(|(a, b)| Str::from(format!("{a}-long-identifier-{b}"))),
    ]
}

fn arc() -> impl Strategy<Value = Arc<str>> {
    prop_oneof![Just(Arc::from("")), text().prop_map(Arc::from)]
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        -1e6..1e6f64,
        (-100_000i64..100_000).prop_map(|i| i as f64),
        select(
            &[
                0.0,
                -0.0,
                1200.0,
                0.005,
                0.015,
                1e20,
                -1e20,
                1e-7,
                5e-324,
                f64::MIN_POSITIVE,
                f64::MAX,
                f64::MIN,
                f64::EPSILON,
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                0.1 + 0.2,
            ][..]
        ),
    ]
}

fn country() -> impl Strategy<Value = Country> {
    select(&["MX", "CA", "CN", "CO", "KP", "US", "ZW", "AD"][..])
        .prop_map(|c| Country::parse(c).unwrap())
}

fn hts() -> impl Strategy<Value = Hts> {
    (1u64..100, 0u64..100_000_000, 6usize..=10).prop_map(|(ch, rest, len)| {
        let digits = format!("{ch:02}{rest:08}");
        Hts::parse(&digits[..len]).unwrap()
    })
}

fn port() -> impl Strategy<Value = PortCode> {
    (0u32..10_000).prop_map(|p| PortCode::parse(&format!("{p:04}")).unwrap())
}

fn role() -> impl Strategy<Value = DRole> {
    select(&DRole::ALL[..])
}

fn mode() -> impl Strategy<Value = Mode> {
    select(&Mode::ALL[..])
}

fn action() -> impl Strategy<Value = Action> {
    select(&Action::ALL[..])
}

fn standing() -> impl Strategy<Value = Standing> {
    prop_oneof![
        select(&Standing::UNTIERED[..]),
        any::<u8>().prop_map(|tier| Standing::Validated { tier }),
        Just(Standing::Validated { tier: 3 }),
    ]
}

fn status() -> impl Strategy<Value = Status> {
    select(&Status::ALL[..])
}

fn exam_result() -> impl Strategy<Value = ExamResult> {
    select(&ExamResult::ALL[..])
}

/// Timestamps across the whole representable range (years outside 0..=9999 have no RFC 3339 form), whole
/// seconds, milliseconds, and arbitrary nanoseconds, and parsed ones with offsets.
fn timestamp() -> impl Strategy<Value = Timestamp> {
    const MIN: i64 = -377_705_116_800; // -9999-01-01
    const MAX: i64 = 253_402_300_799; // 9999-12-31T23:59:59
    prop_oneof![
        (0i64..7_258_118_400).prop_map(|s| Timestamp::from_unix_seconds(s).unwrap()),
        (0i64..7_258_118_400, 0i128..1000).prop_map(|(s, ms)| Timestamp::from_unix_nanos(
            s as i128 * 1_000_000_000 + ms * 1_000_000
        )
        .unwrap()),
        (MIN..MAX, 0i128..1_000_000_000)
            .prop_map(|(s, n)| Timestamp::from_unix_nanos(s as i128 * 1_000_000_000 + n).unwrap()),
        (0u32..=23, 0u32..60, 0u32..1_000_000_000)
            .prop_filter_map("a valid timestamp", |(h, m, n)| Timestamp::parse(&format!(
                "2026-11-27T{h:02}:{m:02}:07.{n:09}-05:30"
            ))),
    ]
}

fn recalled() -> impl Strategy<Value = Recalled> {
    (
        s(),
        any::<u32>(),
        exam_result(),
        timestamp(),
        port(),
        role(),
        s(),
    )
        .prop_map(
            |(manifest_id, revision, result, examined_at, port, role, party)| Recalled {
                manifest_id,
                revision,
                result,
                examined_at,
                port,
                role,
                party,
            },
        )
}

fn model_info() -> impl Strategy<Value = Arc<ModelInfo>> {
    (text(), prop::collection::vec(text(), 0..5)).prop_map(|(name, features)| {
        Arc::new(ModelInfo {
            name: name.into(),
            features: features.into_iter().map(Into::into).collect(),
        })
    })
}

fn top() -> impl Strategy<Value = Top> {
    (
        prop::collection::vec((0u16..7, float()), TOP_FEATURES),
        0..=TOP_FEATURES,
    )
        .prop_map(|(items, len)| {
            let mut top = Top::default();
            for (slot, item) in top.items.iter_mut().zip(items) {
                *slot = item;
            }
            top.len = len as u8;
            top
        })
}

/// Every `Detail` variant, each with arbitrary contents.
fn detail() -> impl Strategy<Value = Detail> {
    prop_oneof![
        (country(), arc()).prop_map(|(country, why)| Detail::Country { country, why }),
        any::<usize>().prop_map(|transits| Detail::Circuitous { transits }),
        (any::<u8>(), arc()).prop_map(|(chapter, why)| Detail::Chapter { chapter, why }),
        (any::<u16>(), arc()).prop_map(|(heading, why)| Detail::Heading { heading, why }),
        arc().prop_map(|term| Detail::Vague { term }),
        (any::<u8>(), float(), float(), float()).prop_map(|(chapter, value_per_kg, min, max)| {
            Detail::ValuePerKg {
                chapter,
                value_per_kg,
                min,
                max,
            }
        }),
        (hts(), float()).prop_map(|(hts, value_usd)| Detail::ZeroWeight { hts, value_usd }),
        s().prop_map(|equipment| Detail::SealMissing { equipment }),
        (s(), s()).prop_map(|(equipment, seal)| Detail::SealClass { equipment, seal }),
        (any::<i64>(), any::<u32>()).prop_map(|(lead_minutes, required)| Detail::Late {
            lead_minutes,
            required
        }),
        Just(Detail::ImporterMissing),
        (role(), s(), arc()).prop_map(|(role, value, why)| Detail::Watch { role, value, why }),
        (
            role(),
            s(),
            s(),
            standing(),
            any::<bool>(),
            prop::option::of(s())
        )
            .prop_map(|(role, id, partner_id, standing, lapsed, mra_program)| {
                Detail::Ctpat {
                    role,
                    id,
                    partner_id,
                    standing,
                    lapsed,
                    mra_program,
                }
            }),
        (
            mode(),
            select(&["non_partner", "certified", "validated", "odd \"class\"\n"][..]),
            float()
        )
            .prop_map(|(mode, class, rate)| Detail::Random { mode, class, rate }),
        (float(), hts(), top(), model_info()).prop_map(|(probability, hts, top, info)| {
            Detail::Model {
                probability,
                hts,
                top,
                info,
            }
        }),
        (any::<i32>(), any::<i32>()).prop_map(|(credits, cap)| Detail::CreditCap { credits, cap }),
        (
            exam_result(),
            prop_oneof![Just(1u32), any::<u32>()],
            any::<u32>(),
            recalled()
        )
            .prop_map(|(result, count, window_days, latest)| Detail::History {
                result,
                count,
                window_days,
                latest: Box::new(latest),
            }),
        (any::<i32>(), any::<i32>(), any::<i32>()).prop_map(
            |(allowed, creditable, non_creditable)| Detail::CreditUnused {
                allowed,
                creditable,
                non_creditable,
            }
        ),
    ]
}

fn rule() -> impl Strategy<Value = Rule> {
    select(&Rule::ALL[..])
}

fn reason() -> impl Strategy<Value = Reason> {
    (
        rule(),
        any::<i32>(),
        detail(),
        prop::option::of(s()),
        prop::option::of(action()),
    )
        .prop_map(|(rule, points, detail, shipment, floor)| Reason {
            rule,
            points,
            detail,
            shipment: shipment.map(|s| Arc::from(s.as_str())),
            floor,
        })
}

fn party() -> impl Strategy<Value = PartyView> {
    (
        role(),
        s(),
        prop::option::of(s()),
        prop::option::of(s()),
        prop::option::of(status()),
        prop::option::of(any::<u8>()),
        standing(),
        any::<bool>(),
        prop::option::of(s()),
        prop::option::of(any::<u16>()),
    )
        .prop_map(
            |(role, id, shipment, partner_id, status, tier, standing, lapsed, mra_program, idx)| {
                PartyView {
                    role,
                    id,
                    shipment: shipment.map(|s| Arc::from(s.as_str())),
                    partner_id,
                    status,
                    tier,
                    standing,
                    lapsed,
                    mra_program,
                    shipment_index: idx,
                }
            },
        )
}

fn decision() -> impl Strategy<Value = Decision> {
    let head = (
        s(),
        any::<u32>(),
        port(),
        mode(),
        select(&Lane::ALL[..]),
        action(),
        any::<[bool; 3]>(),
        any::<i32>(),
        select(&Band::ALL[..]),
    );
    let body = (
        prop::collection::vec(reason(), 0..12),
        prop::collection::vec(party(), 0..9),
        any::<u8>(),
        standing(),
    );
    let tail = (
        arc(),
        prop::option::of(arc()),
        prop::option::of(any::<u8>()),
        prop::option::of(
            prop::collection::btree_map(any::<u32>(), any::<u64>(), 0..4)
                .prop_map(|m: BTreeMap<u32, u64>| Arc::new(Watermark(m))),
        ),
        prop::option::of(timestamp()),
    );
    (head, body, tail).prop_map(
        |(
            (manifest_id, revision, port_of_entry, mode, lane, action, flags, score, band),
            (reasons, parties, fast, importer_standing),
            (policy_version, model_version, priority, history_as_of, decided_at),
        )| Decision {
            manifest_id,
            revision,
            port_of_entry,
            mode,
            lane,
            action,
            front_of_line: flags[0],
            random_exam: flags[1],
            watchlist_hit: flags[2],
            score,
            band,
            reasons: SmallVec::from_vec(reasons),
            parties: SmallVec::from_vec(parties),
            fast_missing: FastMissing(fast),
            importer_standing,
            policy_version,
            model_version,
            priority,
            history_as_of,
            decided_at,
        },
    )
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        max_shrink_iters: 4000,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(3000))]

    /// The writer appends exactly serde_json's bytes (after whatever the buffer already holds).
    #[test]
    fn decision_bytes_are_serde_json_bytes(d in decision(), prefix in prop::collection::vec(any::<u8>(), 0..4)) {
        let mut out = prefix.clone();
        d.write_json(&mut out);
        let want = serde_json::to_vec(&d).expect("a decision serialises");
        prop_assert_eq!(&out[..prefix.len()], &prefix[..]);
        prop_assert_eq!(
            String::from_utf8_lossy(&out[prefix.len()..]),
            String::from_utf8_lossy(&want)
        );
        prop_assert_eq!(&out[prefix.len()..], &want[..]);
    }

    /// Each reason alone (every variant of `Detail` is drawn far more often than in whole decisions).
    #[test]
    fn reason_bytes_are_serde_json_bytes(r in reason()) {
        let mut out = Vec::new();
        r.write_json(&mut out);
        let want = serde_json::to_vec(&r).expect("a reason serialises");
        prop_assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(&want));
    }

    /// `Timestamp::write_rfc3339` is its `Display`, over the whole representable range.
    #[test]
    fn timestamp_text_is_display(t in timestamp()) {
        let mut out = Vec::new();
        t.write_rfc3339(&mut out);
        prop_assert_eq!(String::from_utf8(out).unwrap(), t.to_string());
    }
}
