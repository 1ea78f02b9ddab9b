//! `scripts/kafka`'s cluster-id generator, checked without a JVM: 10 000 ids drawn in one process by the
//! same function `scripts/kafka start` uses. An id starting with `-` was read by the storage tool as an
//! option (one start in 64 failed); every id must also be a valid Kafka `Uuid` string.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;

const DRAWS: usize = 10_000;

#[test]
fn cluster_ids_are_never_options_and_always_valid_kafka_uuids() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka");
    let out = Command::new(&script)
        .args(["cluster-id", &DRAWS.to_string()])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("ids are ASCII");
    let ids: Vec<&str> = text.lines().collect();
    assert_eq!(ids.len(), DRAWS);

    let mut seen = HashSet::new();
    for id in &ids {
        assert!(!id.starts_with('-'), "{id:?} would be read as an option");
        assert_eq!(
            id.len(),
            22,
            "{id:?}: a Kafka Uuid is 22 base64url characters"
        );
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{id:?}: not base64url"
        );
        // 22 characters carry 132 bits; a 128-bit value leaves the last character's low 4 bits zero.
        let last = id.as_bytes()[21];
        assert!(
            matches!(last, b'A' | b'Q' | b'g' | b'w'),
            "{id:?}: not the encoding of 16 bytes"
        );
        assert_ne!(*id, "AAAAAAAAAAAAAAAAAAAAAA", "the reserved zero id");
        assert_ne!(
            *id, "AAAAAAAAAAAAAAAAAAAAAQ",
            "the reserved metadata topic id"
        );
        assert!(seen.insert(*id), "{id:?} drawn twice");
    }

    // Without the redraw about DRAWS/64 ids would start with '-'; make sure the check above could fail, i.e.
    // the generator draws from the whole alphabet (the first character takes every other value).
    let firsts: HashSet<u8> = ids.iter().map(|id| id.as_bytes()[0]).collect();
    assert_eq!(firsts.len(), 63, "first characters seen: {}", firsts.len());
}
