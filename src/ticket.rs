//! The signed ticket cookie: the fast path, and the fallback when stores fail.
//!
//! Encoding (version 1), four fields joined by `.`:
//!
//! ```text
//! v1.<kid>.<payload>.<mac>
//! payload = base64url(JSON {"h","u","c"?,"cr","ls","va","o","dv"?,"g"?,"rm"?})   (no padding)
//! mac     = base64url(HMAC-SHA256(key[kid], "edge-session-ticket\nv1\n" + cookie name + "\n" + kid + "\n" + payload))
//! ```
//!
//! `h` is the hex SHA-256 of the session ID the ticket is bound to, `u` the user,
//! `c` the claims, `cr` the session's creation time, `ls` its last-seen time,
//! `va` when KV or the lookup last vouched for it, and `o` its origin
//! (`edge`/`lookup`), `dv` (left out when 0) the version of the session data
//! this browser must see at least, `g` (left out when false) a guest session's
//! ticket (its `u` is empty), `rm` (likewise) a remembered session's;
//! times are unix milliseconds. The MAC is checked in
//! constant time before the payload is decoded.

use crate::config::{Config, SigningKey, UnixMillis};
use crate::session::{Expiry, Provenance, SessionHash, SessionRecord};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;

/// The ticket format version tag.
pub const VERSION: &str = "v1";
/// Tickets longer than this are neither issued nor read (browsers cap a cookie at 4096 bytes).
pub const MAX_TICKET: usize = 4000;

/// What a ticket says about its session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// Hex SHA-256 of the session ID.
    #[serde(rename = "h")]
    pub session_hash: String,
    /// The user id.
    #[serde(rename = "u")]
    pub user: String,
    /// Claims, if any.
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<serde_json::Map<String, serde_json::Value>>,
    /// Session creation time.
    #[serde(rename = "cr")]
    pub created: UnixMillis,
    /// Session last-seen time, as last written to KV.
    #[serde(rename = "ls")]
    pub last_seen: UnixMillis,
    /// When KV or the lookup last confirmed the session; the ticket's age counts from here.
    #[serde(rename = "va")]
    pub verified_at: UnixMillis,
    /// Who created the session.
    #[serde(rename = "o")]
    pub provenance: Provenance,
    /// The version of the session's data this browser last changed or saw
    /// (0: none): a reader of this ticket is given that version or a newer one.
    #[serde(
        rename = "dv",
        default,
        skip_serializing_if = "crate::session::is_zero"
    )]
    pub data_version: u64,
    /// A guest session's ticket (`g`: no user; left out otherwise).
    #[serde(
        rename = "g",
        default,
        skip_serializing_if = "crate::session::is_false"
    )]
    pub guest: bool,
    /// A remembered session's (`rm`; left out otherwise).
    #[serde(
        rename = "rm",
        default,
        skip_serializing_if = "crate::session::is_false"
    )]
    pub remember: bool,
}

impl Ticket {
    /// A ticket for `record`, bound to `hash`, vouched for at `verified_at`.
    pub fn for_record(
        hash: &SessionHash,
        record: &SessionRecord,
        verified_at: UnixMillis,
    ) -> Ticket {
        Ticket {
            session_hash: hash.0.clone(),
            user: record.user.clone(),
            claims: record.claims.clone(),
            created: record.created,
            last_seen: record.last_seen,
            verified_at,
            provenance: record.provenance,
            data_version: record.data_version,
            guest: record.guest,
            remember: record.remember,
        }
    }

    /// The session record this ticket describes.
    pub fn record(&self) -> SessionRecord {
        SessionRecord {
            user: self.user.clone(),
            claims: self.claims.clone(),
            created: self.created,
            last_seen: self.last_seen,
            provenance: self.provenance,
            verified_at: self.verified_at,
            seen_from: None,
            data_version: self.data_version,
            guest: self.guest,
            remember: self.remember,
        }
    }

    /// Whether the session it describes is past its idle or absolute limit.
    pub fn expiry(&self, cfg: &Config, now: UnixMillis) -> Option<Expiry> {
        let limits = cfg.limits(self.remember);
        crate::session::expiry(limits, self.created, self.last_seen, now)
    }

    /// Whether the ticket is bound to this session.
    pub fn is_bound_to(&self, hash: &SessionHash) -> bool {
        self.session_hash == hash.0
    }
}

fn mac_for(key: &SigningKey, cookie_name: &str, payload: &str) -> Hmac<Sha256> {
    let mut mac = key.mac();
    for part in ["edge-session-ticket", VERSION, cookie_name, &key.kid] {
        mac.update(part.as_bytes());
        mac.update(b"\n");
    }
    mac.update(payload.as_bytes());
    mac
}

/// Signs `ticket` for cookie `cookie_name` with `key`. `None` if the result
/// would be too large for a cookie (huge claims).
pub fn seal(ticket: &Ticket, key: &SigningKey, cookie_name: &str) -> Option<String> {
    let json = serde_json::to_vec(ticket).ok()?;
    let payload = B64.encode(json);
    let tag = B64.encode(mac_for(key, cookie_name, &payload).finalize().into_bytes());
    let sealed = format!("{VERSION}.{}.{payload}.{tag}", key.kid);
    (sealed.len() <= MAX_TICKET).then_some(sealed)
}

/// Why a ticket cookie was not accepted (for the log line: a key-rotation
/// mistake should not look like an attack).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TicketError {
    /// Longer than [`MAX_TICKET`].
    TooLong,
    /// Not `v1.<kid>.<payload>.<mac>`.
    Malformed,
    /// Signed with a key id that `SESSION_KEYS` does not hold (retired or never known).
    UnknownKey,
    /// The MAC does not match: tampered, or signed with another secret under the same key id.
    BadMac,
    /// A valid MAC over a payload that does not decode (a bug or a key compromise).
    BadPayload,
}

impl TicketError {
    /// The reason as it appears in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketError::TooLong => "too_long",
            TicketError::Malformed => "malformed",
            TicketError::UnknownKey => "unknown_key",
            TicketError::BadMac => "bad_mac",
            TicketError::BadPayload => "bad_payload",
        }
    }
}

impl fmt::Display for TicketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for TicketError {}

/// Checks a ticket cookie value and decodes it: accepted only when it is a
/// well-formed ticket with a valid MAC under one of `keys`, bound to
/// `cookie_name`. The MAC is verified (in constant time) before the payload
/// is decoded.
///
/// ```
/// use edge_session::config::SigningKey;
/// use edge_session::session::{Provenance, SessionHash};
/// use edge_session::ticket::{open, seal, Ticket, TicketError};
/// let key = SigningKey::new("k1", vec![7; 32]);
/// let ticket = Ticket {
///     session_hash: SessionHash::of("the session id").0,
///     user: "alice".into(),
///     claims: None,
///     created: 1_000,
///     last_seen: 2_000,
///     verified_at: 2_000,
///     provenance: Provenance::Edge,
///     data_version: 0,
///     guest: false,
///     remember: false,
/// };
/// let sealed = seal(&ticket, &key, "__Host-edge-ticket").unwrap();
/// assert_eq!(open(&sealed, &[key.clone()], "__Host-edge-ticket"), Ok(ticket));
/// // bound to its cookie name
/// assert_eq!(open(&sealed, &[key], "other"), Err(TicketError::BadMac));
/// ```
pub fn open(value: &str, keys: &[SigningKey], cookie_name: &str) -> Result<Ticket, TicketError> {
    if value.len() > MAX_TICKET {
        return Err(TicketError::TooLong);
    }
    let mut parts = value.split('.');
    let (Some(version), Some(kid), Some(payload), Some(tag), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(TicketError::Malformed);
    };
    if version != VERSION {
        return Err(TicketError::Malformed);
    }
    let key = keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or(TicketError::UnknownKey)?;
    let tag = B64.decode(tag).map_err(|_| TicketError::Malformed)?;
    mac_for(key, cookie_name, payload)
        .verify_slice(&tag)
        .map_err(|_| TicketError::BadMac)?;
    let json = B64.decode(payload).map_err(|_| TicketError::BadPayload)?;
    serde_json::from_slice(&json).map_err(|_| TicketError::BadPayload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, byte: u8) -> SigningKey {
        SigningKey::new(kid, vec![byte; 32])
    }

    fn ticket() -> Ticket {
        Ticket {
            session_hash: SessionHash::of("sid-1").0,
            user: "alice".into(),
            claims: serde_json::json!({"role": "admin"}).as_object().cloned(),
            created: 1_000,
            last_seen: 2_000,
            verified_at: 3_000,
            provenance: Provenance::Edge,
            data_version: 0,
            guest: false,
            remember: false,
        }
    }

    #[test]
    fn round_trip() {
        let k = key("k1", 7);
        let sealed = seal(&ticket(), &k, "__Host-edge-ticket").unwrap();
        assert!(sealed.starts_with("v1.k1."));
        assert_eq!(open(&sealed, &[k], "__Host-edge-ticket"), Ok(ticket()));
    }

    #[test]
    fn any_configured_key_verifies_after_rotation() {
        let old = key("old", 1);
        let sealed = seal(&ticket(), &old, "t").unwrap();
        let rotated = [key("new", 2), old];
        assert_eq!(open(&sealed, &rotated, "t"), Ok(ticket()));
    }

    #[test]
    fn retired_key_is_not_trusted() {
        let sealed = seal(&ticket(), &key("old", 1), "t").unwrap();
        assert_eq!(
            open(&sealed, &[key("new", 2)], "t"),
            Err(TicketError::UnknownKey)
        );
    }

    #[test]
    fn same_kid_different_secret_is_not_trusted() {
        let sealed = seal(&ticket(), &key("k1", 1), "t").unwrap();
        assert_eq!(
            open(&sealed, &[key("k1", 2)], "t"),
            Err(TicketError::BadMac)
        );
    }

    #[test]
    fn bound_to_the_cookie_name() {
        let k = key("k1", 7);
        let sealed = seal(&ticket(), &k, "a").unwrap();
        assert_eq!(
            open(&sealed, std::slice::from_ref(&k), "b"),
            Err(TicketError::BadMac)
        );
    }

    #[test]
    fn tampered_payload_is_rejected() {
        let k = key("k1", 7);
        let sealed = seal(&ticket(), &k, "t").unwrap();
        let parts: Vec<&str> = sealed.split('.').collect();
        let mut forged = ticket();
        forged.user = "mallory".into();
        let forged_payload = B64.encode(serde_json::to_vec(&forged).unwrap());
        let tampered = format!("{}.{}.{}.{}", parts[0], parts[1], forged_payload, parts[3]);
        assert_eq!(
            open(&tampered, std::slice::from_ref(&k), "t"),
            Err(TicketError::BadMac)
        );
        // a single flipped character anywhere is refused
        for i in 0..sealed.len() {
            let mut bytes = sealed.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let s = String::from_utf8(bytes).unwrap();
            if s != sealed {
                assert!(
                    open(&s, std::slice::from_ref(&k), "t").is_err(),
                    "flip at {i}"
                );
            }
        }
    }

    #[test]
    fn malformed_values_never_panic() {
        let keys = [key("k1", 7)];
        for v in [
            "",
            ".",
            "v1",
            "v1.k1",
            "v1.k1.x",
            "v1.k1.x.y",
            "v1.k1.x.y.z",
            "v2.k1.a.b",
            "v1.k1.!!.!!",
            "v1.k1..",
            "é.é.é.é",
        ] {
            assert!(open(v, &keys, "t").is_err(), "{v}");
        }
        assert_eq!(
            open(&"a".repeat(MAX_TICKET + 1), &keys, "t"),
            Err(TicketError::TooLong)
        );
    }

    #[test]
    fn valid_mac_over_garbage_payload_is_rejected() {
        let k = key("k1", 7);
        let payload = B64.encode(b"not json");
        let tag = B64.encode(mac_for(&k, "t", &payload).finalize().into_bytes());
        assert_eq!(
            open(&format!("v1.k1.{payload}.{tag}"), &[k], "t"),
            Err(TicketError::BadPayload)
        );
    }

    #[test]
    fn each_rejection_says_why() {
        let k = key("k1", 7);
        let keys = std::slice::from_ref(&k);
        let sealed = seal(&ticket(), &k, "t").unwrap();
        assert_eq!(open("v1.k1.x", keys, "t"), Err(TicketError::Malformed));
        assert_eq!(open("v2.k1.x.y", keys, "t"), Err(TicketError::Malformed));
        assert_eq!(open("v1.k1.x.!!", keys, "t"), Err(TicketError::Malformed));
        assert_eq!(open("v1..x.y", keys, "t"), Err(TicketError::UnknownKey));
        let other_kid = sealed.replacen("v1.k1.", "v1.k9.", 1);
        assert_eq!(open(&other_kid, keys, "t"), Err(TicketError::UnknownKey));
        let (rest, _) = sealed.rsplit_once('.').unwrap();
        assert_eq!(
            open(&format!("{rest}.AAAA"), keys, "t"),
            Err(TicketError::BadMac)
        );
        assert_eq!(TicketError::BadMac.to_string(), "bad_mac");
    }

    #[test]
    fn oversized_claims_give_no_ticket() {
        let mut t = ticket();
        let big: serde_json::Map<_, _> = (0..200)
            .map(|i| (format!("claim{i}"), serde_json::json!("x".repeat(20))))
            .collect();
        t.claims = Some(big);
        assert_eq!(seal(&t, &key("k1", 7), "t"), None);
    }
}
