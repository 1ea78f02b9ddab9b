//! Declared numbers are parsed exactly, in every build: serde_json's fast float parser can be off by one
//! unit in the last place, and whether it is used depended on which other crates of the build turned on
//! `float_roundtrip` (a `learn` build did, the service's did not), so the same manifest could get a
//! different value-per-kg detail from two builds. The workspace now always asks for exact parsing.

use borderlane_core::wire::{parse_manifest, Limits};
use proptest::prelude::*;

const MANIFEST: &str = include_str!("golden/bases/south_truck.json");

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]
    #[test]
    fn value_usd_is_the_correctly_rounded_double(bits in 0x3f00_0000_0000_0000u64..0x4200_0000_0000_0000u64) {
        let exact = f64::from_bits(bits);
        // 17 significant digits: a decimal that a correct parser maps back to exactly this double.
        let text = format!("{exact:.16e}");
        let mut m: serde_json::Value = serde_json::from_str(MANIFEST).unwrap();
        m["shipments"][0]["commodities"][0]["value_usd"] = serde_json::Value::from(1.0);
        let bytes = serde_json::to_string(&m).unwrap().replacen("\"value_usd\":1.0", &format!("\"value_usd\":{text}"), 1);
        prop_assume!(bytes.contains(&text));
        let p = parse_manifest(bytes.as_bytes(), &Limits::default()).expect("a valid manifest");
        let got = p.shipments[0].commodities[0].value_usd.expect("value_usd present");
        prop_assert_eq!(got.to_bits(), exact.to_bits(), "{}", text);
    }
}
