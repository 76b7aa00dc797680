//! What the origin's response tells the worker about sessions.
//!
//! Edge mode: `X-Edge-Session-Login` / `X-Edge-Session-Claims` /
//! `X-Edge-Session-Logout` headers; in both modes `X-Edge-Session-Data`
//! (a change to the session's data, [`crate::data`]). Attach mode: `Set-Cookie` for the
//! session cookie (cleared, or replaced by another ID).

use crate::cookies::{self, CookieChange};
use crate::data::{self, Patch};
use serde_json::{Map, Value};

/// Response header that logs a user in.
pub const LOGIN: &str = "x-edge-session-login";
/// Response header with the new session's claims (a JSON object).
pub const CLAIMS: &str = "x-edge-session-claims";
/// Response header that ends the request's session.
pub const LOGOUT: &str = "x-edge-session-logout";
/// Response header that makes the login beside it a remembered session ("remember me").
pub const REMEMBER: &str = "x-edge-session-remember";
/// Every response header [`read`] may ask for: the worker reads them all in one call.
pub const NAMES: [&str; 5] = [LOGIN, CLAIMS, LOGOUT, data::PATCH, REMEMBER];
/// Largest accepted claims object, in bytes of JSON.
pub const MAX_CLAIMS: usize = 2048;
/// Longest accepted user id, in bytes.
pub const MAX_USER: usize = 256;

/// The session signals found in one origin response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Signals {
    /// A login: the user and claims of the new session.
    pub login: Option<(String, Option<Map<String, Value>>)>,
    /// A logout (edge signal) was given.
    pub logout: bool,
    /// What the response's `Set-Cookie` headers do to the session cookie.
    pub session_cookie: Option<CookieChange>,
    /// A change to the session's data (`X-Edge-Session-Data`).
    pub data: Option<Patch>,
    /// `X-Edge-Session-Remember`: `Some(true)` for `1` beside a login (a
    /// remembered session), `Some(false)` when it came without a login
    /// (ignored, still removed from the response); `None` when absent.
    pub remember: Option<bool>,
}

/// A signal the worker refuses to act on; answered with 502.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedSignal(pub String);

impl std::fmt::Display for MalformedSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MalformedSignal {}

/// Reads the signals from the origin's response headers. `header(name)` gives a
/// header's value; `set_cookies` are the response's `Set-Cookie` values, one each.
pub fn read(
    header: impl Fn(&str) -> Option<String>,
    set_cookies: &[String],
    session_cookie: &str,
    now_secs: u64,
) -> Result<Signals, MalformedSignal> {
    let login = match header(LOGIN) {
        None => None,
        Some(raw) => {
            let user = percent_decode(raw.trim())
                .ok_or_else(|| {
                    MalformedSignal(
                        "X-Edge-Session-Login is not valid percent-encoded UTF-8".into(),
                    )
                })
                .and_then(|u| {
                    check_user(&u)
                        .map_err(|e| MalformedSignal(format!("X-Edge-Session-Login {e}")))?;
                    Ok(u)
                })?;
            let claims = match header(CLAIMS) {
                None => None,
                Some(text) => Some(parse_claims(&text)?),
            };
            Some((user, claims))
        }
    };
    if login.is_none() && header(CLAIMS).is_some() {
        return Err(MalformedSignal(
            "X-Edge-Session-Claims without X-Edge-Session-Login".into(),
        ));
    }
    // The last Set-Cookie for the session cookie is the one the browser keeps.
    let session_cookie = set_cookies
        .iter()
        .rev()
        .find_map(|c| cookies::change_in(c, session_cookie, now_secs));
    let remember = match (header(REMEMBER), &login) {
        (None, _) => None,
        (Some(v), Some(_)) if v.trim() == "1" => Some(true),
        (Some(_), Some(_)) => {
            return Err(MalformedSignal(
                "X-Edge-Session-Remember is not 1 (the only value it takes)".into(),
            ))
        }
        (Some(_), None) => Some(false),
    };
    let mut signals = Signals {
        login,
        logout: header(LOGOUT).is_some(),
        session_cookie,
        data: None,
        remember,
    };
    // A change sent with a sign-out goes with the session: not even read, so
    // that a malformed one cannot cancel the sign-out.
    signals.data = match header(data::PATCH) {
        None => None,
        Some(_) if signals.signs_out() => Some(Patch::default()),
        Some(raw) => Some(
            data::header_text(raw.trim())
                .and_then(|text| Patch::parse(&text))
                .map_err(MalformedSignal)?,
        ),
    };
    Ok(signals)
}

impl Signals {
    /// Whether the response ends the request's session without a login: the
    /// logout signal, or (attach mode) the site clearing its cookie.
    pub fn signs_out(&self) -> bool {
        self.login.is_none()
            && (self.logout || matches!(self.session_cookie, Some(CookieChange::Cleared)))
    }
}

/// Checks a user id from any source (login signal or lookup answer): not
/// empty, at most [`MAX_USER`] bytes of UTF-8, no control characters (which
/// could split a header or a log line).
pub fn check_user(user: &str) -> Result<(), String> {
    if user.trim().is_empty() {
        return Err("has an empty user".into());
    }
    if user.len() > MAX_USER {
        return Err(format!(
            "user is {} bytes; at most {MAX_USER} are accepted",
            user.len()
        ));
    }
    if user.chars().any(char::is_control) {
        return Err("user contains control characters".into());
    }
    Ok(())
}

/// Checks claims from any source: at most [`MAX_CLAIMS`] bytes as JSON.
pub fn check_claims(claims: &Map<String, Value>) -> Result<(), String> {
    let size = Value::Object(claims.clone()).to_string().len();
    if size > MAX_CLAIMS {
        return Err(format!(
            "claims are {size} bytes of JSON; at most {MAX_CLAIMS} are accepted"
        ));
    }
    Ok(())
}

/// Decodes `%XX` escapes as UTF-8 (the encoding of non-ASCII user ids in
/// headers); text without `%` is returned as it is. `None` for a malformed
/// escape or bytes that are not UTF-8.
///
/// ```
/// use edge_session::signals::percent_decode;
/// assert_eq!(percent_decode("%EA%B9%80%EC%B2%A0%EC%88%98").as_deref(), Some("김철수"));
/// assert_eq!(percent_decode("alice").as_deref(), Some("alice"));
/// assert_eq!(percent_decode("%FF"), None);
/// ```
pub fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return Some(text.to_string());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(hex_byte(text.get(i + 1..i + 3)?)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The byte two hex digits spell (`"0a"`, `"2F"`); `None` for anything else.
pub fn hex_byte(two: &str) -> Option<u8> {
    let b = two.as_bytes();
    (b.len() == 2 && b.iter().all(u8::is_ascii_hexdigit))
        .then(|| u8::from_str_radix(two, 16).ok())
        .flatten()
}

/// Percent-encodes every byte other than `A-Z a-z 0-9 - . _ ~ @`: how a user
/// id travels in `X-Session-User`, whatever its script.
///
/// ```
/// use edge_session::signals::percent_encode_user;
/// assert_eq!(percent_encode_user("alice@example.com"), "alice@example.com");
/// assert_eq!(percent_encode_user("김철수"), "%EA%B9%80%EC%B2%A0%EC%88%98");
/// assert_eq!(percent_encode_user("a b+c%"), "a%20b%2Bc%25");
/// ```
pub fn percent_encode_user(user: &str) -> String {
    crate::session::percent_encode(user, b"-._~@")
}

fn parse_claims(text: &str) -> Result<Map<String, Value>, MalformedSignal> {
    if text.len() > MAX_CLAIMS {
        return Err(MalformedSignal(format!(
            "X-Edge-Session-Claims is {} bytes; at most {MAX_CLAIMS} are accepted",
            text.len()
        )));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(MalformedSignal(
            "X-Edge-Session-Claims is not a JSON object".into(),
        )),
        Err(e) => Err(MalformedSignal(format!(
            "X-Edge-Session-Claims is not valid JSON ({e})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_asks_only_for_the_headers_named_in_names() {
        let asked = std::cell::RefCell::new(Vec::new());
        let all = |name: &str| {
            asked.borrow_mut().push(name.to_string());
            Some(match name {
                LOGIN => "ann".to_string(),
                CLAIMS => "{}".to_string(),
                _ => String::new(),
            })
        };
        let _ = read(all, &[], "sid", 0);
        let _ = read(
            |name: &str| all(name).filter(|_| name != LOGIN),
            &[],
            "sid",
            0,
        );
        let asked = asked.into_inner();
        assert!(asked.len() >= 4, "{asked:?}");
        for name in &asked {
            assert!(
                NAMES.contains(&name.as_str()),
                "read asked for {name}, not in NAMES"
            );
        }
    }

    #[test]
    fn a_change_is_read_with_the_signals_and_ignored_unread_with_a_logout() {
        let s = read_with(&[(crate::data::PATCH, r#"{"a":1}"#)], &[]).unwrap();
        assert_eq!(s.data.unwrap().0.len(), 1);
        assert!(read_with(&[(crate::data::PATCH, "[1]")], &[]).is_err());
        // with a logout, even a malformed change is not read: the logout happens
        let s = read_with(&[(LOGOUT, "1"), (crate::data::PATCH, "[1]")], &[]).unwrap();
        assert!(s.logout && s.data.unwrap().is_empty());
        // with a login it is the new session's first data, read as usual
        let bad = [(LOGIN, "alice"), (LOGOUT, "1"), (crate::data::PATCH, "[1]")];
        assert!(read_with(&bad, &[]).is_err());
    }

    fn read_with(
        headers: &[(&str, &str)],
        set_cookies: &[&str],
    ) -> Result<Signals, MalformedSignal> {
        let set: Vec<String> = set_cookies.iter().map(|s| s.to_string()).collect();
        read(
            |name| {
                headers
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            },
            &set,
            "sid",
            1_700_000_000,
        )
    }

    #[test]
    fn no_signals() {
        assert_eq!(read_with(&[], &[]).unwrap(), Signals::default());
    }

    #[test]
    fn login_with_claims() {
        let s = read_with(&[(LOGIN, " alice "), (CLAIMS, r#"{"role":"admin"}"#)], &[]).unwrap();
        let (user, claims) = s.login.unwrap();
        assert_eq!(user, "alice");
        assert_eq!(claims.unwrap()["role"], "admin");
    }

    #[test]
    fn malformed_signals_are_refused() {
        for headers in [
            vec![(LOGIN, "")],
            vec![(LOGIN, "   ")],
            vec![(LOGIN, "a\u{1}b")],
            vec![(LOGIN, "alice"), (CLAIMS, "[1,2]")],
            vec![(LOGIN, "alice"), (CLAIMS, "\"str\"")],
            vec![(LOGIN, "alice"), (CLAIMS, "{not json")],
            vec![(CLAIMS, "{}")],
        ] {
            assert!(read_with(&headers, &[]).is_err(), "{headers:?}");
        }
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_CLAIMS));
        assert!(read_with(&[(LOGIN, "alice"), (CLAIMS, &big)], &[]).is_err());
        let long_user = "u".repeat(MAX_USER + 1);
        assert!(read_with(&[(LOGIN, &long_user)], &[]).is_err());
    }

    #[test]
    fn login_user_is_percent_decoded_utf8() {
        let s = read_with(&[(LOGIN, "%EA%B9%80%EC%B2%A0%EC%88%98")], &[]).unwrap();
        assert_eq!(s.login.unwrap().0, "김철수");
        for bad in ["%ZZ", "%C3", "a%0Ab", "%00", "%+A", "%-1"] {
            assert!(read_with(&[(LOGIN, bad)], &[]).is_err(), "{bad}");
        }
        let long = "%EA%B9%80".repeat(86); // 258 bytes once decoded
        assert!(read_with(&[(LOGIN, &long)], &[]).is_err());
    }

    #[test]
    fn user_encoding_round_trips_for_every_script() {
        for user in ["alice", "김철수", "Zoë O'Brien", "a+b c/d%e:f", "😀"] {
            let encoded = percent_encode_user(user);
            assert!(encoded.bytes().all(|b| b.is_ascii_graphic()), "{encoded}");
            assert_eq!(percent_decode(&encoded).as_deref(), Some(user));
        }
    }

    #[test]
    fn logout_with_any_value() {
        assert!(read_with(&[(LOGOUT, "1")], &[]).unwrap().logout);
        assert!(read_with(&[(LOGOUT, "")], &[]).unwrap().logout);
    }

    #[test]
    fn session_cookie_changes_take_the_last_one() {
        let s = read_with(&[], &["a=1", "sid=old; Max-Age=0", "sid=new; Path=/"]).unwrap();
        assert_eq!(s.session_cookie, Some(CookieChange::Set("new".into())));
        let s = read_with(&[], &["sid=; Expires=Thu, 01 Jan 1970 00:00:00 GMT"]).unwrap();
        assert_eq!(s.session_cookie, Some(CookieChange::Cleared));
        assert_eq!(read_with(&[], &["other=x"]).unwrap().session_cookie, None);
    }
}
