//! The ticket verifier (`ticket::open`) on arbitrary input, and on a genuine ticket
//! with arbitrary bytes changed: it never panics, and it accepts nothing but the
//! genuine ticket itself.
#![no_main]

use edge_session::config::SigningKey;
use edge_session::session::{Provenance, SessionHash};
use edge_session::ticket::{open, seal, Ticket};
use libfuzzer_sys::fuzz_target;

const COOKIE: &str = "__Host-edge-ticket";

fn keys() -> Vec<SigningKey> {
    vec![
        SigningKey::new("k2", vec![2; 32]),
        SigningKey::new("k1", vec![1; 48]),
    ]
}

fn genuine() -> (Ticket, String) {
    let t = Ticket {
        session_hash: SessionHash::of("fuzz-session").0,
        user: "alice".into(),
        claims: serde_json::json!({"role": "admin"}).as_object().cloned(),
        created: 1_700_000_000_000,
        last_seen: 1_700_000_060_000,
        verified_at: 1_700_000_090_000,
        provenance: Provenance::Edge,
        data_version: 7,
        guest: false,
        remember: true,
    };
    let sealed = seal(&t, &keys()[1], COOKIE).expect("fits a cookie");
    (t, sealed)
}

fuzz_target!(|data: &[u8]| {
    let keys = keys();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        // arbitrary text: never accepted (nobody here knows the keys)
        if let Ok(text) = std::str::from_utf8(rest) {
            assert!(open(text, &keys, COOKIE).is_err(), "accepted {text:?}");
        }
    } else {
        // the genuine ticket with bytes XORed in at positions the input chooses
        let (t, sealed) = genuine();
        let mut bytes = sealed.clone().into_bytes();
        for pair in rest.chunks_exact(2) {
            let at = pair[0] as usize % bytes.len();
            bytes[at] ^= pair[1];
        }
        if let Ok(text) = String::from_utf8(bytes) {
            let opened = open(&text, &keys, COOKIE);
            if text == sealed {
                assert_eq!(opened, Ok(t));
            } else {
                assert!(opened.is_err(), "accepted a changed ticket {text:?}");
            }
        }
    }
});
