//! What the origin's response tells the worker about sessions.
//!
//! Edge mode: `X-Edge-Session-Login` / `X-Edge-Session-Claims` /
//! `X-Edge-Session-Logout` headers. Attach mode: `Set-Cookie` for the
//! session cookie (cleared, or replaced by another ID).

use crate::cookies::{self, CookieChange};
use serde_json::{Map, Value};

/// Response header that logs a user in.
pub const LOGIN: &str = "x-edge-session-login";
/// Response header with the new session's claims (a JSON object).
pub const CLAIMS: &str = "x-edge-session-claims";
/// Response header that ends the request's session.
pub const LOGOUT: &str = "x-edge-session-logout";
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
        Some(user) => {
            let user = user.trim().to_string();
            if user.is_empty() {
                return Err(MalformedSignal(
                    "X-Edge-Session-Login has an empty user".into(),
                ));
            }
            if user.len() > MAX_USER || user.chars().any(char::is_control) {
                return Err(MalformedSignal(format!(
                    "X-Edge-Session-Login user must be at most {MAX_USER} bytes without control characters"
                )));
            }
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
    Ok(Signals {
        login,
        logout: header(LOGOUT).is_some(),
        session_cookie,
    })
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
