//! Property tests (issue 9, item 3) with proptest: the cookie parser
//! ([`crate::cookies::CookieHeader`]), the duration parser
//! ([`crate::config::parse_duration`]) and the ticket codec ([`crate::ticket`]):
//! they never panic, what is written reads back, and no single-bit change of a
//! sealed ticket is accepted.
//!
//! Cases per property are set below (`cases`); `PROPTEST_CASES` overrides them all.
#![cfg(not(target_arch = "wasm32"))]

use crate::config::{parse_duration, SigningKey};
use crate::cookies::{change_in, parse_http_date, CookieChange, CookieHeader, MAX_COOKIE_HEADER};
use crate::session::{Provenance, SessionHash};
use crate::ticket::{self, Ticket, TicketError, MAX_TICKET};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(n),
        // failures print their minimal input; nothing is written under src/
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ------------------------------------------------------------------ cookies

/// An RFC 6265 cookie name (a token).
fn cookie_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}"
}

/// An RFC 6265 cookie-value without quotes: cookie-octets only.
fn cookie_value() -> impl Strategy<Value = String> {
    "[!#-+\\--:<-\\[\\]-~]{0,24}"
}

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((cookie_name(), cookie_value()), 0..12)
}

/// Joins pairs as browsers do, with `separator` and optional spaces around `=`.
fn header_of(pairs: &[(String, String)], separator: &str, spaced: bool) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            if spaced {
                format!(" {k} = {v} ")
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join(separator)
}

proptest! {
    #![proptest_config(cases(2048))]

    #[test]
    fn cookie_parser_never_panics(header in any::<String>(), name in any::<String>()) {
        let parsed = CookieHeader::parse(&header);
        let _ = parsed.get(&name);
        let _ = parsed.without(&name);
        let _ = parsed.get("sid");
        let _ = parsed.without("sid");
    }

    #[test]
    fn cookie_parser_never_panics_on_cookie_like_text(header in "[a-z=; \"\\\\,\\t\u{0}-\u{1f}é😀]{0,80}") {
        let parsed = CookieHeader::parse(&header);
        let _ = (parsed.get("a"), parsed.without("a"), parsed.get(""), parsed.without(""));
    }

    #[test]
    fn every_cookie_reads_back_first_value_wins(pairs in pairs(), sep in prop::sample::select(vec!["; ", ";", " ;  "]), spaced in any::<bool>()) {
        let header = header_of(&pairs, sep, spaced);
        let parsed = CookieHeader::parse(&header);
        for (name, _) in &pairs {
            let first = pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
            prop_assert_eq!(parsed.get(name), first, "header {:?}", header);
        }
        prop_assert_eq!(parsed.get("absent-name-(not-a-token)"), None);
    }

    #[test]
    fn a_quoted_value_reads_as_the_value(name in cookie_name(), value in cookie_value()) {
        let header = format!("{name}=\"{value}\"");
        prop_assert_eq!(CookieHeader::parse(&header).get(&name), Some(value.as_str()));
    }

    #[test]
    fn without_removes_exactly_that_cookie(pairs in pairs(), pick in any::<prop::sample::Index>()) {
        prop_assume!(!pairs.is_empty());
        let removed = pairs[pick.index(pairs.len())].0.clone();
        let header = header_of(&pairs, "; ", false);
        let kept: Vec<(String, String)> = pairs.iter().filter(|(k, _)| *k != removed).cloned().collect();
        let rest = CookieHeader::parse(&header).without(&removed);
        if kept.is_empty() {
            prop_assert_eq!(rest, None);
        } else {
            let rest = rest.expect("cookies remain");
            prop_assert_eq!(&rest, &header_of(&kept, "; ", false));
            let again = CookieHeader::parse(&rest);
            prop_assert_eq!(again.get(&removed), None);
            for (k, _) in &kept {
                let first = kept.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
                prop_assert_eq!(again.get(k), first);
            }
        }
    }

    #[test]
    fn an_oversized_header_carries_no_cookies(pairs in pairs(), extra in 1usize..4096) {
        let mut header = header_of(&pairs, "; ", false);
        header.push_str("; pad=");
        let need = (MAX_COOKIE_HEADER + extra).saturating_sub(header.len());
        header.push_str(&"a".repeat(need));
        prop_assert!(header.len() > MAX_COOKIE_HEADER);
        let parsed = CookieHeader::parse(&header);
        for (k, _) in &pairs {
            prop_assert_eq!(parsed.get(k), None);
        }
        prop_assert_eq!(parsed.get("pad"), None);
    }
}

// ------------------------------------------------------------------ Set-Cookie dates

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Unix seconds of a civil date, counted day by day from 1970 (independent of cookies.rs).
fn unix_seconds(year: u64, month: u64, day: u64, h: u64, m: u64, s: u64) -> u64 {
    let leap = |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let mut days: u64 = (1970..year).map(|y| if leap(y) { 366 } else { 365 }).sum();
    let lengths = [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    days += lengths[..(month - 1) as usize].iter().sum::<u64>() + day - 1;
    days * 86_400 + h * 3_600 + m * 60 + s
}

proptest! {
    #![proptest_config(cases(1024))]

    #[test]
    fn http_dates_read_back(year in 1970u64..=9999, month in 1u64..=12, day in 1u64..=28, h in 0u64..24, m in 0u64..60, s in 0u64..60) {
        let text = format!("Thu, {day:02} {} {year} {h:02}:{m:02}:{s:02} GMT", MONTHS[(month - 1) as usize]);
        prop_assert_eq!(parse_http_date(&text), Some(unix_seconds(year, month, day, h, m, s)), "{}", text);
        // and a Set-Cookie with that Expires clears the cookie exactly when the date has passed
        let now = unix_seconds(2026, 11, 25, 0, 0, 0);
        let expected = if unix_seconds(year, month, day, h, m, s) <= now { CookieChange::Cleared } else { CookieChange::Set("v".into()) };
        prop_assert_eq!(change_in(&format!("sid=v; Expires={text}"), "sid", now), Some(expected));
    }

    #[test]
    fn set_cookie_parsing_never_panics(text in "[a-zA-Z0-9 ,:;=-]{0,60}") {
        let _ = parse_http_date(&text);
        let _ = change_in(&text, "sid", 1_800_000_000);
    }
}

/// Regression: found by `cargo fuzz` (issue 9) and fixed on main in 30b3fbc. An origin's
/// `Set-Cookie: sid=x; Expires=Thu, 01 Jan 19707777777777777 00:00:00 GMT` made
/// `parse_http_date` overflow (a panic in debug builds, a wrapped date in release).
#[test]
fn a_set_cookie_with_a_huge_year_neither_panics_nor_wraps() {
    let set_cookie = "sid=x; Expires=Thu, 01 Jan 19707777777777777 00:00:00 GMT";
    let outcome = std::panic::catch_unwind(|| {
        (
            parse_http_date("Thu, 01 Jan 19707777777777777 00:00:00 GMT"),
            change_in(set_cookie, "sid", 1_800_000_000),
        )
    });
    assert!(outcome.is_ok(), "panicked");
    let (date, _) = outcome.unwrap();
    assert_eq!(date, None, "a 17-digit year is not a cookie date");
    assert_eq!(
        parse_http_date("Thu, 01 Jan 99999 00:00:00 GMT"),
        None,
        "five digits"
    );
}

// ------------------------------------------------------------------ durations

const UNITS: [(&str, u64); 6] = [
    ("", 1_000),
    ("s", 1_000),
    ("ms", 1),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

/// Whether `text` has the documented shape: digits, optional spaces, optional unit.
fn well_formed(text: &str) -> bool {
    let t = text.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && matches!(t[digits..].trim(), "" | "s" | "ms" | "m" | "h" | "d")
}

proptest! {
    #![proptest_config(cases(4096))]

    #[test]
    fn duration_parser_never_panics(text in any::<String>()) {
        let _ = parse_duration(&text);
    }

    #[test]
    fn durations_round_trip(n in any::<u64>(), unit in 0usize..UNITS.len(), before in "[ \t]{0,2}", between in "[ ]{0,1}", after in "[ \t\n]{0,2}") {
        let (suffix, scale) = UNITS[unit];
        let text = format!("{before}{n}{}{suffix}{after}", if suffix.is_empty() { "" } else { between.as_str() });
        match n.checked_mul(scale) {
            Some(ms) => prop_assert_eq!(parse_duration(&text), Ok(ms), "{:?}", text),
            None => prop_assert!(parse_duration(&text).is_err(), "{:?} overflows", text),
        }
    }

    #[test]
    fn small_durations_round_trip(n in 0u64..1_000_000, unit in 0usize..UNITS.len()) {
        let (suffix, scale) = UNITS[unit];
        prop_assert_eq!(parse_duration(&format!("{n}{suffix}")), Ok(n * scale));
    }

    #[test]
    fn only_the_documented_shape_is_accepted(text in "[0-9a-z .+\\-_]{0,12}") {
        if parse_duration(&text).is_ok() {
            prop_assert!(well_formed(&text), "{:?} accepted", text);
        }
    }

    #[test]
    fn signs_fractions_and_other_units_are_refused(n in 0u64..100_000, bad in prop::sample::select(vec!["+{}s", "-{}", "{}.5s", "{}w", "{}sec", "{}S", "{}MS", "{} m s", "0x{}", "{}e3"])) {
        let text = bad.replace("{}", &n.to_string());
        prop_assert!(parse_duration(&text).is_err(), "{:?} accepted", text);
    }
}

// ------------------------------------------------------------------ tickets

fn signing_key() -> impl Strategy<Value = SigningKey> {
    (
        "[A-Za-z0-9_-]{1,8}",
        prop::collection::vec(any::<u8>(), 32..65),
    )
        .prop_map(|(kid, secret)| SigningKey::new(kid, secret))
}

fn claim_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
    ]
}

fn claims() -> impl Strategy<Value = Option<Map<String, Value>>> {
    prop::option::of(
        prop::collection::btree_map("[a-z_]{1,10}", claim_value(), 0..5)
            .prop_map(|m| m.into_iter().collect()),
    )
}

fn any_ticket() -> impl Strategy<Value = Ticket> {
    (
        any::<String>(),
        "\\PC{0,40}",
        claims(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(
            |(id, user, claims, created, last_seen, verified_at, edge)| Ticket {
                session_hash: SessionHash::of(&id).0,
                user,
                claims,
                created,
                last_seen,
                verified_at,
                provenance: if edge {
                    Provenance::Edge
                } else {
                    Provenance::Lookup
                },
                data_version: 0,
                guest: false,
                remember: false,
            },
        )
}

fn cookie_token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,24}"
}

/// Every string that differs from `sealed` in exactly one bit (and is still UTF-8).
fn single_bit_changes(sealed: &str) -> impl Iterator<Item = String> + '_ {
    (0..sealed.len() * 8).filter_map(move |bit| {
        let mut bytes = sealed.as_bytes().to_vec();
        bytes[bit / 8] ^= 1 << (bit % 8);
        String::from_utf8(bytes).ok()
    })
}

proptest! {
    #![proptest_config(cases(1024))]

    #[test]
    fn sealed_tickets_open_to_themselves(t in any_ticket(), key in signing_key(), cookie in cookie_token()) {
        match ticket::seal(&t, &key, &cookie) {
            Some(sealed) => {
                prop_assert!(sealed.len() <= MAX_TICKET);
                let prefix = format!("v1.{}.", key.kid);
                prop_assert!(sealed.starts_with(&prefix));
                prop_assert!(sealed.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)), "not cookie-safe: {}", sealed);
                prop_assert_eq!(ticket::open(&sealed, std::slice::from_ref(&key), &cookie), Ok(t));
            }
            // only a ticket too large for a cookie is refused
            None => prop_assert!(serde_json::to_vec(&t).unwrap().len() * 4 / 3 > MAX_TICKET - 60),
        }
    }

    #[test]
    fn a_random_single_bit_change_is_rejected(t in any_ticket(), key in signing_key(), bit in any::<prop::sample::Index>()) {
        let sealed = ticket::seal(&t, &key, "t").unwrap_or_default();
        prop_assume!(!sealed.is_empty());
        let mut bytes = sealed.clone().into_bytes();
        let at = bit.index(bytes.len() * 8);
        bytes[at / 8] ^= 1 << (at % 8);
        let changed = String::from_utf8_lossy(&bytes).into_owned();
        prop_assert!(ticket::open(&changed, std::slice::from_ref(&key), "t").is_err(), "bit {} accepted", at);
    }

    #[test]
    fn bound_to_its_key_and_cookie_name(t in any_ticket(), key in signing_key(), other in signing_key(), cookie in cookie_token(), other_cookie in cookie_token()) {
        let sealed = ticket::seal(&t, &key, &cookie).unwrap_or_default();
        prop_assume!(!sealed.is_empty());
        if other_cookie != cookie {
            prop_assert_eq!(ticket::open(&sealed, std::slice::from_ref(&key), &other_cookie), Err(TicketError::BadMac));
        }
        if other.kid != key.kid {
            prop_assert_eq!(ticket::open(&sealed, std::slice::from_ref(&other), &cookie), Err(TicketError::UnknownKey));
            // rotation: any position in the list verifies
            prop_assert_eq!(ticket::open(&sealed, &[other.clone(), key.clone()], &cookie), Ok(t.clone()));
        } else if other.secret() != key.secret() {
            prop_assert_eq!(ticket::open(&sealed, std::slice::from_ref(&other), &cookie), Err(TicketError::BadMac));
        }
    }

    #[test]
    fn ticket_open_never_panics(value in any::<String>(), kid in "[a-z0-9]{0,3}") {
        let keys = [SigningKey::new("k1", vec![1; 32])];
        prop_assert!(ticket::open(&value, &keys, "t").is_err());
        // shaped like a ticket, with parts drawn from the base64url alphabet and beyond
        let shaped = format!("v1.{kid}.{value}.{value}");
        let _ = ticket::open(&shaped, &keys, "t");
    }

    #[test]
    fn ticket_shaped_garbage_is_rejected(payload in "[A-Za-z0-9_=+/-]{0,200}", mac in "[A-Za-z0-9_=+/-]{0,60}") {
        let keys = [SigningKey::new("k1", vec![1; 32])];
        let value = format!("v1.k1.{payload}.{mac}");
        prop_assert!(ticket::open(&value, &keys, "t").is_err());
    }
}

proptest! {
    // Exhaustive over bit positions: each case checks every single-bit change of one ticket.
    #![proptest_config(cases(48))]

    #[test]
    fn every_single_bit_change_is_rejected(t in any_ticket(), key in signing_key()) {
        let sealed = ticket::seal(&t, &key, "__Host-edge-ticket").unwrap_or_default();
        prop_assume!(!sealed.is_empty());
        let keys = [key];
        let mut variants = 0usize;
        for changed in single_bit_changes(&sealed) {
            prop_assert!(ticket::open(&changed, &keys, "__Host-edge-ticket").is_err(), "accepted {:?}", changed);
            variants += 1;
        }
        if std::env::var_os("PROOF_STATS").is_some() {
            eprintln!("proof-stats: single-bit variants checked: {variants}");
        }
    }
}
