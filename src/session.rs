//! The session record kept in KV, and the timeout policy.

use crate::config::{Config, Millis, UnixMillis};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Longest session ID that can be genuine.
pub const MAX_SESSION_ID: usize = 256;
/// KV's shortest expiration TTL, in seconds.
pub const KV_MIN_TTL_SECS: u64 = 60;
/// How long a dead session's record stays in KV after its deadline, so that a
/// browser coming back is told `idle_timeout` / `absolute_timeout` (and the
/// login page can say "your session expired") rather than `invalid_session`.
pub const DEAD_SESSION_MEMORY: Millis = 60 * 60_000;

/// Who created a session (stored as `"origin"` in KV and `"o"` in the ticket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provenance {
    /// Created by the worker on an `X-Edge-Session-Login` signal.
    Edge,
    /// Learned from the origin's lookup endpoint.
    Lookup,
}

/// A session as stored in KV (`s:<hash>`). Times are unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The user id.
    pub user: String,
    /// Claims passed to the origin in `X-Session-Claims` (a JSON object), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<serde_json::Map<String, serde_json::Value>>,
    /// When the session began.
    pub created: UnixMillis,
    /// When it was last used, as far as KV knows (written at most once per `TOUCH_INTERVAL`).
    pub last_seen: UnixMillis,
    /// Who made it.
    #[serde(rename = "origin")]
    pub provenance: Provenance,
    /// When the lookup (or the login) last vouched for it.
    pub verified_at: UnixMillis,
    /// Where it was created from, for the user's list of their sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_from: Option<SeenFrom>,
    /// The version of the session's data last known here (0: no data). The
    /// truth is the session's Durable Object; this says that there is data
    /// to read, and which version a reader must see at least.
    #[serde(rename = "dv", default, skip_serializing_if = "is_zero")]
    pub data_version: u64,
    /// A guest session (no user, never in KV: its ticket and its Durable
    /// Object hold it; see [`crate::gate`]'s guest paths).
    #[serde(rename = "guest", default, skip_serializing_if = "is_false")]
    pub guest: bool,
    /// Signed in with "remember me": `REMEMBER_IDLE_TIMEOUT` and
    /// `REMEMBER_ABSOLUTE_TIMEOUT` apply, and its cookies outlive the browser.
    #[serde(rename = "remember", default, skip_serializing_if = "is_false")]
    pub remember: bool,
}

/// Whether a flag is off (left out of KV records and tickets).
pub fn is_false(b: &bool) -> bool {
    !*b
}

/// Whether a version is 0 (left out of KV records and tickets).
pub fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Where a session was created from: what a user needs to recognise it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenFrom {
    /// A device hint from the `User-Agent` ("Firefox on Linux").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The coarse location the platform reported (the `CF-IPCountry` country code, "KR").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl SeenFrom {
    /// From a request's `User-Agent` and platform location; `None` when neither is known.
    pub fn of(user_agent: Option<&str>, location: Option<&str>) -> Option<SeenFrom> {
        let device = user_agent.map(device_hint).filter(|d| !d.is_empty());
        let location = location
            .map(|l| {
                l.chars()
                    .filter(|c| !c.is_control())
                    .take(64)
                    .collect::<String>()
            })
            .filter(|l| !l.is_empty());
        (device.is_some() || location.is_some()).then_some(SeenFrom { device, location })
    }
}

/// A short, human device hint from a `User-Agent`: browser and system
/// ("Chrome on macOS"), or the first product token for other clients ("curl").
///
/// ```
/// use edge_session::session::device_hint;
/// let ua = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
/// assert_eq!(device_hint(ua), "Firefox on Linux");
/// assert_eq!(device_hint("curl/8.5.0"), "curl");
/// ```
pub fn device_hint(user_agent: &str) -> String {
    let ua = user_agent;
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("SamsungBrowser/", "Samsung Internet"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Safari/", "Safari"),
    ]
    .iter()
    .find(|(token, _)| ua.contains(token))
    .map(|(_, name)| *name);
    let system = [
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Android", "Android"),
        ("CrOS", "ChromeOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Macintosh", "macOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(token, _)| ua.contains(token))
    .map(|(_, name)| *name);
    let hint = match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_string(),
        (None, Some(s)) => s.to_string(),
        (None, None) => ua
            .split(['/', ' '])
            .next()
            .unwrap_or("")
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(32)
            .collect(),
    };
    hint
}

/// What KV holds under `s:<hash>`: a live session, or the mark of one that
/// ended (see [`Ending`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// A session.
    Live(SessionRecord),
    /// A session that ended.
    Ended(Ending),
}

impl Stored {
    /// Decodes a KV value; `None` for anything else (it is replaced or expires).
    pub fn parse(json: &str) -> Option<Stored> {
        serde_json::from_str(json)
            .map(Stored::Live)
            .or_else(|_| serde_json::from_str(json).map(Stored::Ended))
            .ok()
    }
}

/// The mark a session leaves in KV when the worker ends it while an origin
/// lookup is configured: the origin may still know the session, and without
/// the mark the next request would learn it again from the lookup. It also
/// lets a browser coming back be told how its session ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ending {
    /// When it ended.
    pub ended: UnixMillis,
    /// How.
    pub reason: EndReason,
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Logged out, revoked, ended from the user's list, or replaced at login.
    Revoked,
    /// Unused for longer than `IDLE_TIMEOUT`.
    IdleTimeout,
    /// Older than `ABSOLUTE_TIMEOUT`.
    AbsoluteTimeout,
}

/// Why a session is no longer alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Unused for longer than `IDLE_TIMEOUT`.
    Idle,
    /// Older than `ABSOLUTE_TIMEOUT`.
    Absolute,
}

impl From<Expiry> for EndReason {
    fn from(e: Expiry) -> EndReason {
        match e {
            Expiry::Idle => EndReason::IdleTimeout,
            Expiry::Absolute => EndReason::AbsoluteTimeout,
        }
    }
}

/// Checks the idle and absolute limits (`(idle, absolute)`, see
/// [`Config::limits`]). A session is alive while `now - last_seen < idle`
/// and `now - created < absolute`.
pub fn expiry(
    (idle, absolute): (Millis, Millis),
    created: UnixMillis,
    last_seen: UnixMillis,
    now: UnixMillis,
) -> Option<Expiry> {
    if now.saturating_sub(created) >= absolute {
        Some(Expiry::Absolute)
    } else if now.saturating_sub(last_seen) >= idle {
        Some(Expiry::Idle)
    } else {
        None
    }
}

impl SessionRecord {
    /// See [`expiry`].
    pub fn expiry(&self, cfg: &Config, now: UnixMillis) -> Option<Expiry> {
        expiry(self.limits(cfg), self.created, self.last_seen, now)
    }

    /// Its idle and absolute limits (remembered or not).
    pub fn limits(&self, cfg: &Config) -> (Millis, Millis) {
        cfg.limits(self.remember)
    }

    /// When the session dies if nobody uses it again.
    pub fn deadline(&self, cfg: &Config) -> UnixMillis {
        let (idle, absolute) = self.limits(cfg);
        self.deadline_within(idle, absolute)
    }

    /// When the session dies however much it is used: its absolute deadline.
    pub fn absolute_deadline(&self, cfg: &Config) -> UnixMillis {
        self.created.saturating_add(self.limits(cfg).1)
    }

    fn deadline_within(&self, idle: Millis, absolute: Millis) -> UnixMillis {
        (self.last_seen.saturating_add(idle)).min(self.created.saturating_add(absolute))
    }

    /// KV expiration TTL for the record: gone [`DEAD_SESSION_MEMORY`] after
    /// it can no longer be valid (until then it says why it died).
    pub fn kv_ttl_secs(&self, cfg: &Config, now: UnixMillis) -> u64 {
        let (idle, absolute) = self.limits(cfg);
        self.kv_ttl_secs_within(idle, absolute, now)
    }

    /// [`SessionRecord::kv_ttl_secs`] for these idle and absolute limits.
    pub fn kv_ttl_secs_within(&self, idle: Millis, absolute: Millis, now: UnixMillis) -> u64 {
        let deadline = self.deadline_within(idle, absolute);
        ttl_secs_until(deadline.saturating_add(DEAD_SESSION_MEMORY), now)
    }

    /// KV expiration TTL for the per-user index entry: the absolute deadline,
    /// which no touch can move.
    pub fn index_ttl_secs(&self, cfg: &Config, now: UnixMillis) -> u64 {
        ttl_secs_until(self.absolute_deadline(cfg), now)
    }

    /// The claims as compact JSON, when there are any.
    pub fn claims_json(&self) -> Option<String> {
        let claims = self.claims.as_ref().filter(|c| !c.is_empty())?;
        // The map itself, not a copy of it made into a Value: the same text.
        serde_json::to_string(claims).ok().map(ascii)
    }
}

fn ttl_secs_until(deadline: UnixMillis, now: UnixMillis) -> u64 {
    deadline
        .saturating_sub(now)
        .div_ceil(1000)
        .max(KV_MIN_TTL_SECS)
}

/// Compact JSON with every character outside printable ASCII (0x20 to 0x7E)
/// escaped as `\uXXXX`, safe for a header: serde_json already escapes the C0
/// controls, but leaves DEL (0x7F) as it is, which Node, Go and Python servers
/// refuse in a header.
///
/// ```
/// use edge_session::session::ascii_json;
/// let v = serde_json::json!({"k\u{1}": "é\u{7f}\u{0}"});
/// assert_eq!(ascii_json(&v), r#"{"k\u0001":"\u00e9\u007f\u0000"}"#);
/// ```
pub fn ascii_json(value: &serde_json::Value) -> String {
    ascii(value.to_string())
}

/// JSON text as [`ascii_json`] gives it.
fn ascii(json: String) -> String {
    match printable(&json) {
        std::borrow::Cow::Borrowed(_) => json,
        std::borrow::Cow::Owned(escaped) => escaped,
    }
}

/// Compact JSON text with every character outside printable ASCII escaped
/// (such characters can only stand inside its strings, where an escape means
/// the same); the text itself when there is none.
pub fn printable(json: &str) -> std::borrow::Cow<'_, str> {
    if json.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return json.into();
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if (' '..='~').contains(&c) {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out.into()
}

/// SHA-256 of a session ID, as 64 lowercase hex digits: the only form in which
/// an ID is stored or logged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionHash(pub String);

impl SessionHash {
    /// Hashes a raw session ID.
    pub fn of(session_id: &str) -> SessionHash {
        SessionHash(hex_sha256(session_id))
    }

    /// The KV key of the session record.
    pub fn record_key(&self) -> String {
        format!("s:{}", self.0)
    }

    /// The first 8 hex digits, for logs.
    pub fn short(&self) -> &str {
        self.0.get(..8).unwrap_or(&self.0)
    }
}

/// Longest escaped user kept readable in an index key: with `u:`, `:` and
/// 64 hex digits the key stays well under KV's 512-byte key limit.
pub const MAX_INDEX_USER: usize = 400;

/// The KV key prefix of a user's index entries: `u:<escaped user>:`.
/// `%` and `:` (and anything outside printable ASCII) are percent-encoded,
/// so that one user's prefix never matches another user's keys. A user whose
/// escaped form is longer than [`MAX_INDEX_USER`] (256 bytes of CJK text
/// escape to 768) is keyed by the SHA-256 of the id instead: `u:%h<hex>:`,
/// which no escaped user can produce (an escaped `%` is always followed by
/// two hex digits).
pub fn user_index_prefix(user: &str) -> String {
    let mut escaped = String::with_capacity(user.len());
    for b in user.bytes() {
        if b.is_ascii_graphic() && b != b'%' && b != b':' {
            escaped.push(b as char);
        } else {
            push_percent(&mut escaped, b);
        }
    }
    if escaped.len() > MAX_INDEX_USER {
        escaped = format!("%h{}", hex_sha256(user));
    }
    format!("u:{escaped}:")
}

fn hex_sha256(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(text.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out
}

/// Percent-encodes every byte but ASCII letters, digits and those in `keep`.
pub fn percent_encode(text: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(b as char);
        } else {
            push_percent(&mut out, b);
        }
    }
    out
}

/// Appends `%XX` (upper-case hex) for byte `b`: percent-encoding without the
/// formatting machinery, which is slow in a size-optimised module.
pub fn push_percent(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(HEX[usize::from(b >> 4)] as char);
    out.push(HEX[usize::from(b & 15)] as char);
}

/// The KV key of one index entry.
pub fn user_index_key(user: &str, hash: &SessionHash) -> String {
    format!("{}{}", user_index_prefix(user), hash.0)
}

/// Whether `id` could be a genuine session ID: 1 to 256 bytes of RFC 6265 cookie-octets.
pub fn is_plausible_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_SESSION_ID
        && id
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn test_config() -> Config {
        Config::from_lookup(|name| match name {
            "SESSION_KEYS" => Some("k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into()),
            "ASSERTION_KEYS" => Some(crate::config::tests::assertion_key()),
            _ => None,
        })
        .unwrap()
    }

    fn record(created: Millis, last_seen: Millis) -> SessionRecord {
        SessionRecord {
            user: "alice".into(),
            claims: None,
            created,
            last_seen,
            provenance: Provenance::Edge,
            verified_at: created,
            seen_from: None,
            data_version: 0,
            guest: false,
            remember: false,
        }
    }

    #[test]
    fn idle_limit_edges() {
        let cfg = test_config();
        let r = record(0, 1_000);
        assert_eq!(r.expiry(&cfg, 1_000 + cfg.idle_timeout - 1), None);
        assert_eq!(r.expiry(&cfg, 1_000 + cfg.idle_timeout), Some(Expiry::Idle));
    }

    #[test]
    fn absolute_limit_edges_win_over_activity() {
        let cfg = test_config();
        let t = cfg.absolute_timeout;
        assert_eq!(record(0, t - 1).expiry(&cfg, t - 1), None);
        assert_eq!(record(0, t).expiry(&cfg, t), Some(Expiry::Absolute));
    }

    #[test]
    fn kv_ttl_follows_the_nearest_deadline_with_kv_minimum() {
        let cfg = test_config();
        let r = record(0, 0);
        let grace = DEAD_SESSION_MEMORY / 1000;
        assert_eq!(r.kv_ttl_secs(&cfg, 0), cfg.idle_timeout / 1000 + grace);
        assert_eq!(
            r.kv_ttl_secs(&cfg, cfg.idle_timeout + DEAD_SESSION_MEMORY - 500),
            KV_MIN_TTL_SECS
        );
        let late = record(0, cfg.absolute_timeout - 10_000);
        assert_eq!(
            late.kv_ttl_secs(&cfg, cfg.absolute_timeout - 10_000),
            10 + grace
        );
        assert_eq!(r.index_ttl_secs(&cfg, 0), cfg.absolute_timeout / 1000);
    }

    #[test]
    fn device_hints_name_browser_and_system() {
        for (ua, want) in [
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15", "Safari on macOS"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36 Edg/126.0", "Edge on Windows"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Version/17.5 Mobile/15E148 Safari/604.1", "Safari on iOS"),
            ("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36", "Chrome on Android"),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0 Safari/537.36", "Chrome on Linux"),
            ("python-requests/2.32", "python-requests"),
            ("", ""),
        ] {
            assert_eq!(device_hint(ua), want, "{ua}");
        }
        assert_eq!(SeenFrom::of(None, None), None);
        let s = SeenFrom::of(Some("curl/8"), Some("Seoul, KR")).unwrap();
        assert_eq!(
            (s.device.as_deref(), s.location.as_deref()),
            (Some("curl"), Some("Seoul, KR"))
        );
    }

    #[test]
    fn hashes_are_hex_sha256() {
        let h = SessionHash::of("abc");
        assert_eq!(
            h.0,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(h.record_key(), format!("s:{}", h.0));
        assert_eq!(h.short(), "ba7816bf");
    }

    #[test]
    fn user_prefixes_never_overlap() {
        assert_eq!(user_index_prefix("alice"), "u:alice:");
        assert_eq!(user_index_prefix("a:b"), "u:a%3Ab:");
        assert!(!user_index_prefix("a:b").starts_with(&user_index_prefix("a")));
        assert_eq!(user_index_prefix("é %"), "u:%C3%A9%20%25:");
    }

    #[test]
    fn index_keys_of_every_acceptable_user_fit_kv_key_limit() {
        let hash = SessionHash::of("x");
        // 85 CJK characters: 255 bytes of UTF-8, 765 escaped
        let long_korean = "김".repeat(85);
        let ascii = "a".repeat(256);
        let controls_free_worst = "%".repeat(256);
        for user in [long_korean.as_str(), &ascii, &controls_free_worst, "김철수"] {
            let key = user_index_key(user, &hash);
            assert!(key.len() <= 512, "{} bytes for {user}", key.len());
            assert!(key.starts_with(&user_index_prefix(user)));
        }
        assert_eq!(
            user_index_prefix("김철수"),
            "u:%EA%B9%80%EC%B2%A0%EC%88%98:"
        );
        let hashed = user_index_prefix(&long_korean);
        assert!(hashed.starts_with("u:%h") && hashed.len() == 2 + 2 + 64 + 1);
        assert_ne!(hashed, user_index_prefix(&"김".repeat(84)));
    }

    #[test]
    fn plausible_ids() {
        assert!(is_plausible_id("abc-_DEF123"));
        assert!(!is_plausible_id(""));
        assert!(!is_plausible_id(&"a".repeat(257)));
        assert!(is_plausible_id(&"a".repeat(256)));
        for bad in ["a b", "a;b", "a,b", "a\"b", "a\\b", "é"] {
            assert!(!is_plausible_id(bad), "{bad}");
        }
    }

    #[test]
    fn claims_header_is_ascii() {
        let mut r = record(0, 0);
        let claims = serde_json::json!({"name": "Zoë", "emoji": "😀"});
        r.claims = claims.as_object().cloned();
        let json = r.claims_json().unwrap();
        assert!(json.is_ascii());
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back, claims);
        r.claims = Some(Default::default());
        assert_eq!(r.claims_json(), None);
    }
}
