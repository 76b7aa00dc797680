//! Known-answer tests (issue 9, item 5): the HMAC-SHA256 the ticket is built on
//! against RFC 4231, and tickets whose exact sealed strings are pinned, so that a
//! change of the wire format cannot slip in unnoticed.
//!
//! The pinned strings were computed independently of this crate, with node:crypto
//! from the format in README "Ticket format":
//! `v1.<kid>.<base64url(JSON)>.<base64url(HMAC-SHA256(key, "edge-session-ticket\nv1\n" + cookie + "\n" + kid + "\n" + payload))>`.
//! If one of these tests fails, the wire format changed: every ticket in every
//! browser stops verifying at the next deploy. Change the version tag, say so in
//! CHANGELOG.md, and pin the new strings.

use crate::config::{Millis, SigningKey};
use crate::cookies;
use crate::gate::{Gate, IsolateMemory, Verdict};
use crate::request::{Head, Incoming};
use crate::session::{tests::test_config, Provenance, SessionHash, SessionRecord};
use crate::store::memory::{FakeLookup, MemoryKv};
use crate::store::Kv;
use crate::ticket::{self, Ticket};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::cell::RefCell;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// RFC 4231 section 4: (key, data, HMAC-SHA-256, bytes compared). Test case 5 is
/// defined truncated to 128 bits.
fn rfc4231() -> Vec<(Vec<u8>, Vec<u8>, &'static str, usize)> {
    vec![
        // 4.2 Test Case 1
        (
            vec![0x0b; 20],
            b"Hi There".to_vec(),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            32,
        ),
        // 4.3 Test Case 2: a key shorter than the output
        (
            b"Jefe".to_vec(),
            b"what do ya want for nothing?".to_vec(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            32,
        ),
        // 4.4 Test Case 3
        (
            vec![0xaa; 20],
            vec![0xdd; 50],
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            32,
        ),
        // 4.5 Test Case 4
        (
            (1..=25).collect(),
            vec![0xcd; 50],
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            32,
        ),
        // 4.6 Test Case 5: truncated to 128 bits
        (
            vec![0x0c; 20],
            b"Test With Truncation".to_vec(),
            "a3b6167473100ee06e0c796c2955552b",
            16,
        ),
        // 4.7 Test Case 6: a key larger than the block size
        (
            vec![0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            32,
        ),
        // 4.8 Test Case 7: key and data larger than the block size
        (
            vec![0xaa; 131],
            b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".to_vec(),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            32,
        ),
    ]
}

#[test]
fn hmac_sha256_matches_rfc_4231() {
    for (i, (key, data, expected, bytes)) in rfc4231().into_iter().enumerate() {
        // exactly as ticket.rs builds it: new_from_slice, update, finalize
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(&data);
        let out = mac.finalize().into_bytes();
        assert_eq!(&out[..bytes], &unhex(expected)[..], "test case {}", i + 1);
    }
}

#[test]
fn hmac_split_updates_equal_one_update() {
    // ticket.rs feeds the MAC in pieces ("edge-session-ticket", "\n", "v1", ...)
    for (key, data, _, _) in rfc4231() {
        let mut whole = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        whole.update(&data);
        let mut pieces = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        for chunk in data.chunks(7) {
            pieces.update(chunk);
        }
        assert_eq!(
            whole.finalize().into_bytes(),
            pieces.finalize().into_bytes()
        );
    }
}

#[test]
fn verify_slice_accepts_the_full_tag_only() {
    // ticket.rs checks the MAC with verify_slice: a truncated or extended tag must fail,
    // or a forger could send a 1-byte tag and win one time in 256.
    for (key, data, expected, bytes) in rfc4231() {
        if bytes != 32 {
            continue;
        }
        let tag = unhex(expected);
        let fresh = || {
            let mut m = Hmac::<Sha256>::new_from_slice(&key).unwrap();
            m.update(&data);
            m
        };
        assert!(fresh().verify_slice(&tag).is_ok());
        for n in [0, 1, 16, 31] {
            assert!(fresh().verify_slice(&tag[..n]).is_err(), "{n} bytes");
        }
        let mut longer = tag.clone();
        longer.push(0);
        assert!(fresh().verify_slice(&longer).is_err());
        let mut flipped = tag.clone();
        flipped[31] ^= 1;
        assert!(fresh().verify_slice(&flipped).is_err());
    }
}

const COOKIE: &str = "__Host-edge-ticket";

fn key7() -> SigningKey {
    SigningKey::new("k1", vec![7; 32])
}

/// Ticket 1: an edge session with claims (keys in sorted order on the wire).
const PINNED_1: &str = "v1.k1.eyJoIjoiZjhmYmM0OTk0NWY0NDMzNDUwNzU0MGI4ZDcyMzM2YjhkMDU4NWExZDE2MWY4MWIxODdmYjI0MzQ1YTY2MmVmYSIsInUiOiJhbGljZSIsImMiOnsibmFtZSI6IkFsaWNlIiwicm9sZSI6ImFkbWluIn0sImNyIjoxNzAwMDAwMDAwMDAwLCJscyI6MTcwMDAwMDA2MDAwMCwidmEiOjE3MDAwMDAwOTAwMDAsIm8iOiJlZGdlIn0.VWygqR1x_sX0nr3MCPlTcVfVLnPC1dIeIW0KmpbzdN0";
/// Ticket 2: a session learned from the lookup, a Korean user (raw UTF-8 in the JSON), no claims.
const PINNED_2: &str = "v1.k1.eyJoIjoiOGQ1MmE3YzQ0MzZiN2Q2NjIwNmZjNzJmZGU4YTMyOTA5MDA1MTIxN2JhNzg4ODNkYmZmNGE2MTk0ZTk3ZGU5OCIsInUiOiLquYDssqDsiJgiLCJjciI6MTcwMDAwMDAwMDAwMCwibHMiOjE3MDAwMDAwMDAwMDAsInZhIjoxNzAwMDAwMDAwNTAwLCJvIjoibG9va3VwIn0.Ist8DlXPyt78g4HwkveUnGxUpRscVMPs5xIanIAeL4U";

#[test]
fn session_hash_is_pinned() {
    assert_eq!(
        SessionHash::of("pinned-session-id").0,
        "f8fbc49945f44334507540b8d72336b8d0585a1d161f81b187fb24345a662efa"
    );
    assert_eq!(
        SessionHash::of("pinned-session-id").record_key(),
        "s:f8fbc49945f44334507540b8d72336b8d0585a1d161f81b187fb24345a662efa"
    );
}

#[test]
fn sealed_tickets_are_pinned() {
    let record = SessionRecord {
        user: "alice".into(),
        claims: serde_json::json!({"role": "admin", "name": "Alice"})
            .as_object()
            .cloned(),
        created: 1_700_000_000_000,
        last_seen: 1_700_000_060_000,
        provenance: Provenance::Edge,
        verified_at: 1_700_000_000_000,
        seen_from: None,
        data_version: 0,
        guest: false,
        remember: false,
    };
    let clock: Millis = 1_700_000_090_000;
    let t1 = Ticket::for_record(&SessionHash::of("pinned-session-id"), &record, clock);
    assert_eq!(
        ticket::seal(&t1, &key7(), COOKIE).as_deref(),
        Some(PINNED_1)
    );
    assert_eq!(ticket::open(PINNED_1, &[key7()], COOKIE), Ok(t1));

    let t2 = Ticket {
        session_hash: SessionHash::of("another-pinned-id").0,
        user: "김철수".into(),
        claims: None,
        created: 1_700_000_000_000,
        last_seen: 1_700_000_000_000,
        verified_at: 1_700_000_000_500,
        provenance: Provenance::Lookup,
        data_version: 0,
        guest: false,
        remember: false,
    };
    assert_eq!(
        ticket::seal(&t2, &key7(), COOKIE).as_deref(),
        Some(PINNED_2)
    );
    assert_eq!(ticket::open(PINNED_2, &[key7()], COOKIE), Ok(t2));
}

#[test]
fn the_ticket_the_gate_issues_is_pinned() {
    // The whole issuing path at a fixed clock: a KV record, a request with the
    // session cookie and no ticket, the Set-Cookie the gate answers with.
    // test_config signs with k1 = bytes 0..=31 (AAECAwQF...Hh8=).
    let cfg = test_config();
    let kv = MemoryKv::default();
    let hash = SessionHash::of("pinned-session-id");
    let record = SessionRecord {
        user: "alice".into(),
        claims: None,
        created: 1_800_000_000_000,
        last_seen: 1_800_000_030_000,
        provenance: Provenance::Edge,
        verified_at: 1_800_000_000_000,
        seen_from: None,
        data_version: 0,
        guest: false,
        remember: false,
    };
    pollster::block_on(kv.put(
        &hash.record_key(),
        &serde_json::to_string(&record).unwrap(),
        3600,
    ))
    .unwrap();
    let memory = RefCell::new(IsolateMemory::default());
    let gate: Gate<'_, MemoryKv, FakeLookup> =
        Gate::new(&cfg, &kv, None, &memory, 1_800_000_040_000);
    let head = Head {
        method: "GET",
        path: "/account",
        cookie: Some("sid=pinned-session-id"),
        ..Head::default()
    };
    let decision = pollster::block_on(gate.admit(&Incoming::new(&cfg, head)));
    assert!(matches!(decision.verdict, Verdict::Allow(_)));
    let expected = "v1.k1.eyJoIjoiZjhmYmM0OTk0NWY0NDMzNDUwNzU0MGI4ZDcyMzM2YjhkMDU4NWExZDE2MWY4MWIxODdmYjI0MzQ1YTY2MmVmYSIsInUiOiJhbGljZSIsImNyIjoxODAwMDAwMDAwMDAwLCJscyI6MTgwMDAwMDAzMDAwMCwidmEiOjE4MDAwMDAwNDAwMDAsIm8iOiJlZGdlIn0.aOB40_i7mDeChHKTo27EViJI95cbSioLV2zPn3Gxf1Q";
    assert_eq!(
        decision.set_cookies,
        vec![format!(
            "__Host-edge-ticket={expected}; Path=/; Secure; HttpOnly; SameSite=Lax"
        )]
    );
    assert_eq!(
        decision.set_cookies[0],
        cookies::set(COOKIE, expected),
        "the cookie attributes"
    );
}
