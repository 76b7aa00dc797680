//! Typed configuration, parsed from wrangler `[vars]` and secrets.
//!
//! Parsing never panics: a missing or invalid setting becomes a [`ConfigError`]
//! that names it, and the worker answers every request with a 500 saying so.

use crate::url::UrlParts;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

/// A length of time (a duration), in milliseconds.
pub type Millis = u64;
/// A point in time (a clock reading), in unix milliseconds.
pub type UnixMillis = u64;

/// One signing key from `SESSION_KEYS`. `Debug` never shows the key bytes.
#[derive(Clone)]
pub struct SigningKey {
    /// The key id, written into every ticket it signs.
    pub kid: String,
    /// The secret bytes, at least [`MIN_KEY_BYTES`] long.
    secret: Vec<u8>,
    /// HMAC-SHA256 keyed with `secret`: keying hashes two blocks, done once here
    /// instead of for every ticket checked.
    keyed: Hmac<Sha256>,
}

impl SigningKey {
    /// A key called `kid` with the bytes `secret` (their length is checked by the
    /// configuration that reads `SESSION_KEYS`, not here).
    pub fn new(kid: impl Into<String>, secret: Vec<u8>) -> SigningKey {
        // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
        let keyed = Hmac::<Sha256>::new_from_slice(&secret).expect("HMAC takes any key length");
        SigningKey {
            kid: kid.into(),
            secret,
            keyed,
        }
    }

    /// The secret bytes.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// A fresh HMAC-SHA256 under this key, to feed and finalise.
    pub fn mac(&self) -> Hmac<Sha256> {
        self.keyed.clone()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({}, {} bytes)", self.kid, self.secret.len())
    }
}

/// One private key from `ASSERTION_KEYS`. `Debug` never shows the key bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct AssertionKey {
    /// The key id, written into every token's header and the JWKS.
    pub kid: String,
    /// The PKCS#8 DER encoding of an ECDSA P-256 private key.
    pub pkcs8: Vec<u8>,
}

impl std::fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AssertionKey({}, {} bytes)", self.kid, self.pkcs8.len())
    }
}

/// Shortest accepted signing key.
pub const MIN_KEY_BYTES: usize = 32;

/// A public path pattern from `PUBLIC_PATHS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPattern {
    /// The path must be equal.
    Exact(String),
    /// The path must start with this (the pattern ended in `*`).
    Prefix(String),
}

impl PathPattern {
    /// Whether `path` matches the pattern.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathPattern::Exact(p) => path == p,
            PathPattern::Prefix(p) => path.starts_with(p.as_str()),
        }
    }
}

/// Which requests get a log line (`LOG_REQUESTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogRequests {
    /// `events` (the default): denials, errors, degraded answers, sessions
    /// learned from the lookup, rejected tickets, control requests other than
    /// health, and session events (login, logout, ...). Workers already
    /// records every invocation; a line per request costs time on the fast path.
    Events,
    /// `all`: one line for every request.
    All,
}

/// Where the server-side lookup is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupTarget {
    /// An absolute `http(s)` URL.
    Url(String),
    /// A path, sent to the origin that serves the request.
    Path(String),
}

/// The worker's whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Origins to forward to (`scheme://host[:port]`, lower-case, no trailing
    /// slash); empty means "the request's own URL" (route mode).
    pub origins: Vec<String>,
    /// Name of the session-ID cookie.
    pub session_cookie: String,
    /// Name of the signed ticket cookie.
    pub ticket_cookie: String,
    /// Name of the data-version cookie: the ticket cookie's name with `-dv`
    /// (see [`crate::request::SessionCookies::data_floor`]).
    pub data_cookie: String,
    /// A session unused this long is dead.
    pub idle_timeout: Millis,
    /// A session older than this is dead.
    pub absolute_timeout: Millis,
    /// The idle timeout of a session signed in with "remember me".
    pub remember_idle_timeout: Millis,
    /// The absolute lifetime of a session signed in with "remember me".
    pub remember_absolute_timeout: Millis,
    /// How long a ticket is trusted without reading KV.
    pub ticket_ttl: Millis,
    /// Least time between two last-seen writes of one session.
    pub touch_interval: Millis,
    /// The origin's lookup endpoint, with its bearer token.
    pub lookup: Option<(LookupTarget, String)>,
    /// Deadline for one lookup.
    pub lookup_timeout: Millis,
    /// A looked-up session is asked about again after this.
    pub revalidate_after: Millis,
    /// Paths forwarded without a session.
    pub public_paths: Vec<PathPattern>,
    /// `GUEST_PATHS`: open to visitors, with their guest session when they have one.
    pub guest_paths: Vec<PathPattern>,
    /// Paths validated as usual that do not count as activity (polling).
    pub passive_paths: Vec<PathPattern>,
    /// Paths never served from the ticket alone.
    pub strict_paths: Vec<PathPattern>,
    /// Refuse cross-site unsafe requests that carry the session cookie.
    pub csrf_protection: bool,
    /// Other sites (`scheme://host[:port]`) allowed to send unsafe requests.
    pub trusted_origins: Vec<String>,
    /// Where browsers without a session are sent.
    pub login_url: Option<String>,
    /// Ticket keys: the first signs, all verify.
    pub keys: Vec<SigningKey>,
    /// Bearer token of the revoke endpoint; `None` disables it.
    pub admin_token: Option<String>,
    /// Keys that sign `X-Session-Assertion`: the first signs, all are published.
    pub assertion_keys: Vec<AssertionKey>,
    /// Which requests get a log line.
    pub log_requests: LogRequests,
    /// Most bytes of a session's data, as the compact JSON the origin receives.
    pub session_data_limit: usize,
}

/// A setting that is missing or invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The setting's name, as in wrangler.toml.
    pub setting: &'static str,
    /// What is wrong with it (never the secret's value).
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.setting, self.problem)
    }
}

impl std::error::Error for ConfigError {}

fn bad(setting: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        problem: problem.into(),
    }
}

/// `SESSION_DATA_LIMIT` when unset: most bytes of a session's data as compact JSON.
pub const DEFAULT_DATA_LIMIT: usize = 4096;
/// The highest `SESSION_DATA_LIMIT` accepted (the data travels in one request header).
pub const MAX_DATA_LIMIT: usize = 8192;

/// Parses `SESSION_DATA_LIMIT`: a number of bytes from 64 to [`MAX_DATA_LIMIT`].
fn parse_data_limit(text: &str) -> Result<usize, String> {
    let max = MAX_DATA_LIMIT;
    match text.parse::<usize>() {
        Ok(n) if (64..=max).contains(&n) => Ok(n),
        Ok(n) => Err(format!(
            "{n} is out of range: from 64 to {max} bytes (the data travels in one request header)"
        )),
        Err(_) => Err(format!("`{text}` is not a number of bytes")),
    }
}

/// Parses a duration: an integer number of seconds, or a number with a unit
/// `ms`, `s`, `m` or `h` (`1500ms`, `30m`, `8h`).
///
/// ```
/// use edge_session::config::parse_duration;
/// assert_eq!(parse_duration("90"), Ok(90_000));
/// assert_eq!(parse_duration("1500ms"), Ok(1_500));
/// assert_eq!(parse_duration("30m"), Ok(1_800_000));
/// assert_eq!(parse_duration("14d"), Ok(14 * 86_400_000));
/// assert!(parse_duration("10w").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Millis, String> {
    let t = text.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    if number.is_empty() {
        return Err(format!(
            "`{t}` is not a duration (use seconds or a number with ms, s, m, h or d)"
        ));
    }
    let n: u64 = number.parse().map_err(|_| format!("`{t}` is too large"))?;
    let scale = match unit.trim() {
        "" | "s" => 1_000,
        "ms" => 1,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{t}` (use ms, s, m, h or d)"
            ))
        }
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("`{t}` is too large"))
}

/// True for a valid cookie name (an RFC 6265 token).
pub fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `text` is a path on this site: one leading `/`, not `//` or `/\\`,
/// which URL joining and browsers would read as another host.
///
/// ```
/// use edge_session::config::is_local_path;
/// assert!(is_local_path("/login"));
/// assert!(!is_local_path("//evil.example/login"));
/// assert!(!is_local_path("/\\evil.example/login"));
/// assert!(!is_local_path("login"));
/// ```
pub fn is_local_path(text: &str) -> bool {
    text.starts_with('/') && !text.starts_with("//") && !text.starts_with("/\\")
}

/// Whether a path holds a percent-encoded `/` or `\\`.
fn has_encoded_separator(path: &str) -> bool {
    path.as_bytes().windows(3).any(|w| {
        w[0] == b'%' && w[1] == b'2' && (w[2] | 0x20) == b'f'
            || w[0] == b'%' && w[1] == b'5' && (w[2] | 0x20) == b'c'
    })
}

/// Checks an absolute `http(s)` URL: a scheme, a host (no user info, no
/// spaces or control characters) and an optional numeric port. Returns it
/// split, with scheme and host lower-cased.
fn parse_http_url(text: &str) -> Result<(String, String), String> {
    let lower_scheme = text
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if !(lower_scheme.starts_with("http://") || lower_scheme.starts_with("https://")) {
        return Err(format!("`{text}` must be an http or https URL"));
    }
    let parts = UrlParts::split(text).ok_or_else(|| format!("`{text}` is not a URL"))?;
    let (scheme, authority) = parts
        .origin
        .split_once("://")
        .ok_or_else(|| format!("`{text}` is not a URL"))?;
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (h, Some(p)),
        _ => (authority, None),
    };
    let bad_char = |c: char| c.is_whitespace() || c.is_control() || "@/\\#?%".contains(c);
    if host.is_empty() || host.chars().any(bad_char) {
        return Err(format!("`{text}` has no valid host"));
    }
    if let Some(p) = port {
        if p.is_empty()
            || p.len() > 5
            || !p.bytes().all(|b| b.is_ascii_digit())
            || p.parse::<u32>().map_or(true, |n| n > 65_535)
        {
            return Err(format!("`{text}` has an invalid port"));
        }
    }
    let origin = match port {
        Some(p) => format!(
            "{}://{}:{p}",
            scheme.to_ascii_lowercase(),
            host.to_ascii_lowercase()
        ),
        None => format!(
            "{}://{}",
            scheme.to_ascii_lowercase(),
            host.to_ascii_lowercase()
        ),
    };
    Ok((origin, parts.path_and_query.to_string()))
}

fn parse_origin(setting: &'static str, text: &str) -> Result<String, ConfigError> {
    let (origin, rest) = parse_http_url(text).map_err(|e| bad(setting, e))?;
    if !(rest.is_empty() || rest == "/") || text.contains('#') {
        return Err(bad(
            setting,
            format!("`{text}` must be scheme, host and port only (the request keeps its own path)"),
        ));
    }
    Ok(origin)
}

/// Splits `kid:base64,kid:base64` into key ids and decoded bytes.
fn parse_key_list(
    setting: &'static str,
    text: &str,
) -> Result<Vec<(String, Vec<u8>)>, ConfigError> {
    use base64::Engine;
    let mut keys: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, item) in text.split(',').map(str::trim).enumerate() {
        let n = i + 1;
        let (kid, b64) = item
            .split_once(':')
            .ok_or_else(|| bad(setting, format!("key {n} is not `kid:base64key`")))?;
        let kid = kid.trim();
        if kid.is_empty()
            || !kid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(bad(
                setting,
                format!("key {n} has an invalid id (use letters, digits, - and _)"),
            ));
        }
        let b64 = b64.trim();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .or_else(|_| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b64.trim_end_matches('='))
            })
            .map_err(|_| bad(setting, format!("key `{kid}` is not valid base64")))?;
        if keys.iter().any(|(k, _)| k == kid) {
            return Err(bad(setting, format!("key id `{kid}` appears twice")));
        }
        keys.push((kid.to_string(), bytes));
    }
    Ok(keys)
}

fn parse_keys(text: &str) -> Result<Vec<SigningKey>, ConfigError> {
    parse_key_list("SESSION_KEYS", text)?
        .into_iter()
        .map(|(kid, secret)| {
            if secret.len() < MIN_KEY_BYTES {
                return Err(bad(
                    "SESSION_KEYS",
                    format!(
                        "key `{kid}` has {} bytes; at least {MIN_KEY_BYTES} are required",
                        secret.len()
                    ),
                ));
            }
            Ok(SigningKey::new(kid, secret))
        })
        .collect()
}

fn parse_assertion_keys(text: &str) -> Result<Vec<AssertionKey>, ConfigError> {
    parse_key_list("ASSERTION_KEYS", text)?
        .into_iter()
        .map(|(kid, pkcs8)| {
            // A PKCS#8 structure is a DER SEQUENCE; WebCrypto checks the rest when importing.
            if pkcs8.first() != Some(&0x30) || pkcs8.len() < 64 {
                return Err(bad(
                    "ASSERTION_KEYS",
                    format!("key `{kid}` is not a PKCS#8 DER private key (ECDSA P-256)"),
                ));
            }
            Ok(AssertionKey { kid, pkcs8 })
        })
        .collect()
}

/// The settings as `[vars]` and secrets give them: trimmed, empty values as unset.
struct Vars<F: Fn(&str) -> Option<String>>(F);

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// A duration greater than zero.
    fn duration(&self, name: &'static str, default: &str) -> Result<Millis, ConfigError> {
        let text = self.get(name).unwrap_or_else(|| default.to_string());
        let ms = parse_duration(&text).map_err(|e| bad(name, e))?;
        if ms == 0 {
            return Err(bad(name, "must be greater than zero"));
        }
        Ok(ms)
    }

    fn cookie(&self, name: &'static str, default: &str) -> Result<String, ConfigError> {
        let value = self.get(name).unwrap_or_else(|| default.to_string());
        if !is_cookie_name(&value) {
            return Err(bad(name, format!("`{value}` is not a valid cookie name")));
        }
        Ok(value)
    }

    /// One of two words, the first when unset.
    fn choice<T>(&self, name: &'static str, words: [(&str, T); 2]) -> Result<T, ConfigError> {
        let [(first, a), (second, b)] = words;
        match self.get(name) {
            None => Ok(a),
            Some(w) if w == first => Ok(a),
            Some(w) if w == second => Ok(b),
            Some(other) => Err(bad(
                name,
                format!("`{other}` is neither `{first}` nor `{second}`"),
            )),
        }
    }

    /// The items of a comma-separated list, each checked by `item`.
    fn list<T>(
        &self,
        name: &'static str,
        item: impl Fn(&str) -> Result<T, ConfigError>,
    ) -> Result<Vec<T>, ConfigError> {
        self.get(name)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(item)
            .collect()
    }

    /// Paths: exact, or a prefix when they end in `*`.
    fn paths(&self, name: &'static str) -> Result<Vec<PathPattern>, ConfigError> {
        self.list(name, |p| {
            if !p.starts_with('/') {
                return Err(bad(name, format!("`{p}` does not start with /")));
            }
            Ok(match p.strip_suffix('*') {
                Some(prefix) => PathPattern::Prefix(prefix.to_string()),
                None => PathPattern::Exact(p.to_string()),
            })
        })
    }

    /// `LOOKUP_URL` (an absolute URL or a path on the origin) and its token.
    fn lookup(&self) -> Result<Option<(LookupTarget, String)>, ConfigError> {
        let Some(text) = self.get("LOOKUP_URL") else {
            return Ok(None);
        };
        let target = if is_local_path(&text) {
            LookupTarget::Path(text)
        } else {
            let (origin, rest) = parse_http_url(&text).map_err(|e| {
                bad(
                    "LOOKUP_URL",
                    format!("{e} (or a path on the origin, `/...`)"),
                )
            })?;
            let path = if rest.is_empty() { "/".into() } else { rest };
            LookupTarget::Url(format!("{origin}{path}"))
        };
        let token = self
            .get("LOOKUP_TOKEN")
            .ok_or_else(|| bad("LOOKUP_TOKEN", "required when LOOKUP_URL is set"))?;
        Ok(Some((target, token)))
    }

    fn login_url(&self) -> Result<Option<String>, ConfigError> {
        let login_url = self.get("LOGIN_URL");
        if let Some(u) = &login_url {
            if !is_local_path(u) && parse_http_url(u).is_err() {
                return Err(bad("LOGIN_URL", format!("`{u}` is not a URL or a path")));
            }
        }
        Ok(login_url)
    }

    /// `SESSION_KEYS`, required.
    fn session_keys(&self) -> Result<Vec<SigningKey>, ConfigError> {
        parse_keys(&self.get("SESSION_KEYS").ok_or_else(|| {
            bad(
                "SESSION_KEYS",
                "required (a secret: `kid:base64key`, 32 bytes or more)",
            )
        })?)
    }

    /// `ASSERTION_KEYS`, required.
    fn assertion_keys(&self) -> Result<Vec<AssertionKey>, ConfigError> {
        parse_assertion_keys(&self.get("ASSERTION_KEYS").ok_or_else(|| {
            bad(
                "ASSERTION_KEYS",
                "required (a secret: `kid:base64`, a PKCS#8 ECDSA P-256 private key; \
                 `make setup` generates one for local use)",
            )
        })?)
    }

    fn data_limit(&self) -> Result<usize, ConfigError> {
        match self.get("SESSION_DATA_LIMIT") {
            None => Ok(DEFAULT_DATA_LIMIT),
            Some(text) => parse_data_limit(&text).map_err(|e| bad("SESSION_DATA_LIMIT", e)),
        }
    }
}

impl Config {
    /// Reads every setting through `get` (which returns a var or secret by
    /// name, `None` when unset). Empty values count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let vars = Vars(get);
        let origins = vars.list("ORIGIN_URL", |s| parse_origin("ORIGIN_URL", s))?;
        let session_cookie = vars.cookie("SESSION_COOKIE", "sid")?;
        let ticket_cookie = vars.cookie("TICKET_COOKIE", "__Host-edge-ticket")?;
        let data_cookie = format!("{ticket_cookie}-dv");
        if session_cookie == ticket_cookie || session_cookie == data_cookie {
            return Err(bad(
                "TICKET_COOKIE",
                "must differ from SESSION_COOKIE, with and without `-dv`",
            ));
        }
        // Fields in the order the settings are checked: the first bad one is named.
        Ok(Config {
            origins,
            session_cookie,
            ticket_cookie,
            data_cookie,
            idle_timeout: vars.duration("IDLE_TIMEOUT", "30m")?,
            absolute_timeout: vars.duration("ABSOLUTE_TIMEOUT", "8h")?,
            remember_idle_timeout: vars.duration("REMEMBER_IDLE_TIMEOUT", "14d")?,
            remember_absolute_timeout: vars.duration("REMEMBER_ABSOLUTE_TIMEOUT", "30d")?,
            ticket_ttl: vars.duration("TICKET_TTL", "60s")?,
            touch_interval: vars.duration("TOUCH_INTERVAL", "60s")?,
            lookup_timeout: vars.duration("LOOKUP_TIMEOUT", "1500ms")?,
            revalidate_after: vars.duration("REVALIDATE_AFTER", "5m")?,
            lookup: vars.lookup()?,
            public_paths: vars.paths("PUBLIC_PATHS")?,
            guest_paths: vars.paths("GUEST_PATHS")?,
            passive_paths: vars.paths("PASSIVE_PATHS")?,
            strict_paths: vars.paths("STRICT_PATHS")?,
            csrf_protection: vars.choice("CSRF_PROTECTION", [("on", true), ("off", false)])?,
            trusted_origins: vars
                .list("TRUSTED_ORIGINS", |o| parse_origin("TRUSTED_ORIGINS", o))?,
            login_url: vars.login_url()?,
            keys: vars.session_keys()?,
            admin_token: vars.get("ADMIN_TOKEN"),
            assertion_keys: vars.assertion_keys()?,
            log_requests: vars.choice(
                "LOG_REQUESTS",
                [("events", LogRequests::Events), ("all", LogRequests::All)],
            )?,
            session_data_limit: vars.data_limit()?,
        })
    }

    /// Whether `path` is forwarded without a session. A path with an encoded
    /// slash or backslash (`%2F`, `%5C`) is never public: an origin that
    /// decodes it would read `/assets/..%2Fadmin` as `/admin`.
    pub fn is_public(&self, path: &str) -> bool {
        !has_encoded_separator(path) && self.public_paths.iter().any(|p| p.matches(path))
    }

    /// Whether `path` is open to visitors who have not signed in, with a guest
    /// session when they have one (never with an encoded separator, as for
    /// public paths). A path both public and a guest path is public.
    pub fn is_guest(&self, path: &str) -> bool {
        !has_encoded_separator(path) && self.guest_paths.iter().any(|p| p.matches(path))
    }

    /// The idle and absolute limits of a session, remembered ("remember me") or not.
    pub fn limits(&self, remembered: bool) -> (Millis, Millis) {
        if remembered {
            (self.remember_idle_timeout, self.remember_absolute_timeout)
        } else {
            (self.idle_timeout, self.absolute_timeout)
        }
    }

    /// The longest any session can live (for what must outlast every session).
    pub fn longest_lifetime(&self) -> Millis {
        self.absolute_timeout.max(self.remember_absolute_timeout)
    }

    /// Whether requests to `path` leave last-seen alone (never with an encoded separator).
    pub fn is_passive(&self, path: &str) -> bool {
        !has_encoded_separator(path) && self.passive_paths.iter().any(|p| p.matches(path))
    }

    /// Whether `path` always reads KV; matched also with `%2F` and `%5C` read
    /// as `/`, so that `/admin%2Fusers` is as strict as `/admin/users`.
    pub fn is_strict(&self, path: &str) -> bool {
        if !has_encoded_separator(path) {
            return self.strict_paths.iter().any(|p| p.matches(path));
        }
        let mut decoded = String::with_capacity(path.len());
        let mut rest = path;
        while let Some(i) = rest.find('%') {
            decoded.push_str(&rest[..i]);
            let code = rest.get(i + 1..i + 3).map(str::to_ascii_lowercase);
            if matches!(code.as_deref(), Some("2f" | "5c")) {
                decoded.push('/');
                rest = &rest[i + 3..];
            } else {
                decoded.push('%');
                rest = &rest[i + 1..];
            }
        }
        decoded.push_str(rest);
        self.strict_paths.iter().any(|p| p.matches(&decoded))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    const KEY: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    /// A syntactically plausible PKCS#8 key (host tests never sign).
    pub(crate) fn assertion_key() -> String {
        use base64::Engine;
        let mut der = vec![0x30, 0x81, 0x87];
        der.resize(138, 1);
        format!(
            "a1:{}",
            base64::engine::general_purpose::STANDARD.encode(der)
        )
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.entry("ASSERTION_KEYS".into())
            .or_insert_with(assertion_key);
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn session_data_limit_is_at_most_8_kb() {
        let limit = |v: &str| parse(&[("SESSION_KEYS", KEY), ("SESSION_DATA_LIMIT", v)]);
        assert_eq!(limit("8192").unwrap().session_data_limit, 8192);
        assert_eq!(limit("64").unwrap().session_data_limit, 64);
        for bad in ["8193", "63", "0", "4k", "-1", "99999999999999999999999"] {
            let e = limit(bad).unwrap_err();
            assert_eq!(e.setting, "SESSION_DATA_LIMIT", "{bad}");
        }
    }

    #[test]
    fn durations_accept_seconds_and_units() {
        assert_eq!(parse_duration("90"), Ok(90_000));
        assert_eq!(parse_duration("1500ms"), Ok(1_500));
        assert_eq!(parse_duration("60s"), Ok(60_000));
        assert_eq!(parse_duration("30m"), Ok(1_800_000));
        assert_eq!(parse_duration("8h"), Ok(28_800_000));
        assert_eq!(parse_duration(" 5 m "), Ok(300_000));
        assert_eq!(parse_duration("14d"), Ok(1_209_600_000));
    }

    #[test]
    fn remembered_sessions_have_their_own_limits_and_guest_paths_their_list() {
        let c = parse(&[("SESSION_KEYS", KEY), ("GUEST_PATHS", "/,/shop/*")]).unwrap();
        assert_eq!(c.limits(false), (30 * 60_000, 8 * 3_600_000));
        assert_eq!(c.limits(true), (14 * 86_400_000, 30 * 86_400_000));
        assert_eq!(c.longest_lifetime(), 30 * 86_400_000);
        assert!(c.is_guest("/") && c.is_guest("/shop/tea") && !c.is_guest("/account"));
        assert!(!c.is_guest("/shop/..%2Faccount"));
        let e = parse(&[("SESSION_KEYS", KEY), ("REMEMBER_IDLE_TIMEOUT", "2 weeks")]).unwrap_err();
        assert_eq!(e.setting, "REMEMBER_IDLE_TIMEOUT");
    }

    #[test]
    fn durations_reject_garbage_without_panicking() {
        for bad in [
            "",
            "m",
            "-5s",
            "1.5h",
            "10w",
            "5 minutes",
            "99999999999999999999",
            "18446744073709551615h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn defaults_match_the_documented_table() {
        let c = parse(&[("SESSION_KEYS", KEY)]).unwrap();
        assert!(c.origins.is_empty());
        assert_eq!(c.session_cookie, "sid");
        assert_eq!(c.ticket_cookie, "__Host-edge-ticket");
        assert_eq!(c.idle_timeout, 30 * 60_000);
        assert_eq!(c.absolute_timeout, 8 * 3_600_000);
        assert_eq!(c.ticket_ttl, 60_000);
        assert_eq!(c.touch_interval, 60_000);
        assert_eq!(c.lookup_timeout, 1_500);
        assert_eq!(c.session_data_limit, 4096);
        assert_eq!(c.revalidate_after, 300_000);
        assert!(c.lookup.is_none() && c.login_url.is_none() && c.admin_token.is_none());
        assert_eq!(c.log_requests, LogRequests::Events);
        assert_eq!(c.keys.len(), 1);
        assert_eq!(c.keys[0].kid, "k1");
    }

    #[test]
    fn the_first_bad_setting_is_named_in_the_order_they_are_read() {
        // missing keys are reported only once everything before them is valid
        let e = Config::from_lookup(|n| (n == "IDLE_TIMEOUT").then(|| "soon".into())).unwrap_err();
        assert_eq!(e.setting, "IDLE_TIMEOUT");
        let e = Config::from_lookup(|n| (n == "LOGIN_URL").then(|| "//x".into())).unwrap_err();
        assert_eq!(e.setting, "LOGIN_URL");
        let e = parse(&[
            ("SESSION_KEYS", KEY),
            ("LOG_REQUESTS", "x"),
            ("ASSERTION_KEYS", "a"),
        ])
        .unwrap_err();
        assert_eq!(e.setting, "ASSERTION_KEYS");
        let e = parse(&[("ORIGIN_URL", "ftp://x"), ("TICKET_COOKIE", "sid")]).unwrap_err();
        assert_eq!(e.setting, "ORIGIN_URL");
    }

    #[test]
    fn missing_keys_name_the_setting() {
        assert_eq!(parse(&[]).unwrap_err().setting, "SESSION_KEYS");
        assert_eq!(
            parse(&[("SESSION_KEYS", "  ")]).unwrap_err().setting,
            "SESSION_KEYS"
        );
    }

    #[test]
    fn short_or_malformed_keys_are_refused() {
        for keys in [
            "k1:c2hvcnQ=",
            "nokid",
            ":AAAA",
            "k1:!!!",
            &format!("{KEY},{KEY}"),
        ] {
            let err = parse(&[("SESSION_KEYS", keys)]).unwrap_err();
            assert_eq!(err.setting, "SESSION_KEYS", "{keys}");
        }
    }

    #[test]
    fn assertion_keys_are_required_and_checked() {
        let err = parse(&[("SESSION_KEYS", KEY), ("ASSERTION_KEYS", "")]).unwrap_err();
        assert_eq!(err.setting, "ASSERTION_KEYS");
        for keys in ["a1:AAAA", "nokid", "a1:!!!"] {
            let err = parse(&[("SESSION_KEYS", KEY), ("ASSERTION_KEYS", keys)]).unwrap_err();
            assert_eq!(err.setting, "ASSERTION_KEYS", "{keys}");
        }
        let c = parse(&[("SESSION_KEYS", KEY)]).unwrap();
        assert_eq!(c.assertion_keys[0].kid, "a1");
        assert!(!format!("{:?}", c.assertion_keys[0]).contains("AQEB"));
    }

    #[test]
    fn log_requests_is_events_or_all() {
        let all = parse(&[("SESSION_KEYS", KEY), ("LOG_REQUESTS", "all")]).unwrap();
        assert_eq!(all.log_requests, LogRequests::All);
        let err = parse(&[("SESSION_KEYS", KEY), ("LOG_REQUESTS", "some")]).unwrap_err();
        assert_eq!(err.setting, "LOG_REQUESTS");
    }

    #[test]
    fn key_rotation_keeps_order() {
        let two = format!("new:{},{KEY}", "A".repeat(44));
        let c = parse(&[("SESSION_KEYS", &two)]).unwrap();
        assert_eq!(
            c.keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
            ["new", "k1"]
        );
    }

    #[test]
    fn key_debug_hides_the_secret() {
        let c = parse(&[("SESSION_KEYS", KEY)]).unwrap();
        let shown = format!("{:?}", c.keys[0]);
        assert_eq!(shown, "SigningKey(k1, 32 bytes)");
    }

    #[test]
    fn invalid_durations_name_the_setting() {
        let err = parse(&[("SESSION_KEYS", KEY), ("IDLE_TIMEOUT", "soon")]).unwrap_err();
        assert_eq!(err.setting, "IDLE_TIMEOUT");
        let err = parse(&[("SESSION_KEYS", KEY), ("TICKET_TTL", "0s")]).unwrap_err();
        assert_eq!(err.setting, "TICKET_TTL");
    }

    #[test]
    fn origin_list_is_parsed_and_checked() {
        let c = parse(&[
            ("SESSION_KEYS", KEY),
            ("ORIGIN_URL", "http://127.0.0.1:8081, http://127.0.0.1:8082"),
        ])
        .unwrap();
        assert_eq!(c.origins.len(), 2);
        assert_eq!(
            c.origins,
            ["http://127.0.0.1:8081", "http://127.0.0.1:8082"]
        );
        let c = parse(&[
            ("SESSION_KEYS", KEY),
            ("ORIGIN_URL", "HTTPS://App.Example/"),
        ])
        .unwrap();
        assert_eq!(c.origins, ["https://app.example"]);
        for bad in [
            "ftp://x",
            "not a url",
            "http://a/path",
            "http://a/?q=1",
            "http://",
            "http://user@host",
            "http://a b",
            "http://a:99999",
            "http://a:x",
            "http://a#f",
        ] {
            let err = parse(&[("SESSION_KEYS", KEY), ("ORIGIN_URL", bad)]).unwrap_err();
            assert_eq!(err.setting, "ORIGIN_URL", "{bad}");
        }
    }

    #[test]
    fn lookup_requires_its_token() {
        let err = parse(&[("SESSION_KEYS", KEY), ("LOOKUP_URL", "/api/lookup")]).unwrap_err();
        assert_eq!(err.setting, "LOOKUP_TOKEN");
        let c = parse(&[
            ("SESSION_KEYS", KEY),
            ("LOOKUP_URL", "/api/lookup"),
            ("LOOKUP_TOKEN", "t"),
        ])
        .unwrap();
        assert_eq!(
            c.lookup,
            Some((LookupTarget::Path("/api/lookup".into()), "t".into()))
        );
        let c = parse(&[
            ("SESSION_KEYS", KEY),
            ("LOOKUP_URL", "https://o.example/l"),
            ("LOOKUP_TOKEN", "t"),
        ])
        .unwrap();
        assert_eq!(
            c.lookup,
            Some((LookupTarget::Url("https://o.example/l".into()), "t".into()))
        );
    }

    #[test]
    fn lookup_path_that_joins_to_another_host_is_refused() {
        for text in ["/\\evil.example/lookup", "//evil.example/lookup"] {
            let err = parse(&[
                ("SESSION_KEYS", KEY),
                ("LOOKUP_URL", text),
                ("LOOKUP_TOKEN", "t"),
            ])
            .unwrap_err();
            assert_eq!(err.setting, "LOOKUP_URL", "{text}");
        }
    }

    #[test]
    fn public_paths_exact_and_prefix() {
        let c = parse(&[("SESSION_KEYS", KEY), ("PUBLIC_PATHS", "/login, /assets/*")]).unwrap();
        assert!(c.is_public("/login"));
        assert!(!c.is_public("/login/x"));
        assert!(c.is_public("/assets/app.css"));
        assert!(!c.is_public("/dashboard"));
        // an origin that decodes %2F would serve /admin: never public
        assert!(!c.is_public("/assets/..%2Fadmin"));
        assert!(!c.is_public("/assets/..%2fadmin"));
        assert!(!c.is_public("/assets/..%5Cadmin"));
        let err = parse(&[("SESSION_KEYS", KEY), ("PUBLIC_PATHS", "login")]).unwrap_err();
        assert_eq!(err.setting, "PUBLIC_PATHS");
    }

    #[test]
    fn passive_strict_csrf_and_trusted_origins() {
        let c = parse(&[
            ("SESSION_KEYS", KEY),
            ("PASSIVE_PATHS", "/api/poll,/status/*"),
            ("STRICT_PATHS", "/admin/*"),
            (
                "TRUSTED_ORIGINS",
                "https://Partner.example, http://127.0.0.1:3000/",
            ),
        ])
        .unwrap();
        assert!(c.is_passive("/api/poll") && c.is_passive("/status/x") && !c.is_passive("/api"));
        assert!(c.is_strict("/admin/users") && !c.is_strict("/administrator"));
        assert!(c.is_strict("/admin%2Fusers") && c.is_strict("/admin%5cusers"));
        assert!(!c.is_passive("/status%2F..%2Fadmin"));
        assert!(c.csrf_protection);
        assert_eq!(
            c.trusted_origins,
            ["https://partner.example", "http://127.0.0.1:3000"]
        );
        let off = parse(&[("SESSION_KEYS", KEY), ("CSRF_PROTECTION", "off")]).unwrap();
        assert!(!off.csrf_protection);
        for (name, value) in [
            ("CSRF_PROTECTION", "maybe"),
            ("TRUSTED_ORIGINS", "https://a.example/path"),
            ("STRICT_PATHS", "admin"),
            ("PASSIVE_PATHS", "poll"),
        ] {
            let err = parse(&[("SESSION_KEYS", KEY), (name, value)]).unwrap_err();
            assert_eq!(err.setting, name);
        }
    }

    #[test]
    fn cookie_names_are_validated() {
        let err = parse(&[("SESSION_KEYS", KEY), ("SESSION_COOKIE", "a b")]).unwrap_err();
        assert_eq!(err.setting, "SESSION_COOKIE");
        let err = parse(&[("SESSION_KEYS", KEY), ("TICKET_COOKIE", "sid")]).unwrap_err();
        assert_eq!(err.setting, "TICKET_COOKIE");
    }

    #[test]
    fn login_url_must_be_a_url_or_local_path() {
        assert!(parse(&[("SESSION_KEYS", KEY), ("LOGIN_URL", "/login")]).is_ok());
        assert!(parse(&[
            ("SESSION_KEYS", KEY),
            ("LOGIN_URL", "https://id.example/login")
        ])
        .is_ok());
        let err = parse(&[("SESSION_KEYS", KEY), ("LOGIN_URL", "//evil")]).unwrap_err();
        assert_eq!(err.setting, "LOGIN_URL");
    }
}
