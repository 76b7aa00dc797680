//! Responses the worker writes itself: denials, control endpoints, errors.

use crate::config::Config;
use crate::request::Head;
use std::fmt;

/// `Retry-After` seconds on `store_unavailable`.
pub const RETRY_AFTER_SECS: u32 = 5;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No session cookie.
    NoSession,
    /// The session ID is unknown, malformed or revoked.
    InvalidSession,
    /// Unused for longer than `IDLE_TIMEOUT`.
    IdleTimeout,
    /// Older than `ABSOLUTE_TIMEOUT`.
    AbsoluteTimeout,
    /// KV and/or the lookup failed and no genuine ticket could stand in.
    StoreUnavailable,
    /// An unsafe request carrying the session cookie came from another site (403).
    CrossSiteRequest,
}

impl Reason {
    /// The reason as it appears in headers, bodies and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoSession => "no_session",
            Reason::InvalidSession => "invalid_session",
            Reason::IdleTimeout => "idle_timeout",
            Reason::AbsoluteTimeout => "absolute_timeout",
            Reason::StoreUnavailable => "store_unavailable",
            Reason::CrossSiteRequest => "cross_site_request",
        }
    }

    /// Whether the session is dead or unknown, so that both cookies are cleared.
    pub fn clears_cookies(self) -> bool {
        matches!(
            self,
            Reason::InvalidSession | Reason::IdleTimeout | Reason::AbsoluteTimeout
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A response the worker writes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Headers, in order; `Set-Cookie` may repeat.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
}

impl Reply {
    /// A JSON reply that is never cached.
    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply::json_text(status, body.to_string())
    }

    /// `{"error":"<code>"}`, never cached: the contract's error answer, its
    /// body written out (a code is an identifier: nothing to escape) rather
    /// than built as a JSON value at each of its many sites.
    pub fn error(status: u16, code: &'static str) -> Reply {
        debug_assert!(code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        Reply::json_text(status, format!("{{\"error\":\"{code}\"}}"))
    }

    fn json_text(status: u16, body: String) -> Reply {
        Reply {
            status,
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("Cache-Control".into(), "no-store".into()),
            ],
            body,
        }
    }

    /// A redirect that is never cached.
    pub fn redirect(location: &str) -> Reply {
        Reply {
            status: 302,
            headers: vec![
                ("Location".into(), location.into()),
                ("Cache-Control".into(), "no-store".into()),
            ],
            body: String::new(),
        }
    }

    /// `503 {"error":"store_unavailable"}` with `Retry-After` and the reason header.
    pub fn store_unavailable() -> Reply {
        Reply::error(503, Reason::StoreUnavailable.as_str())
            .with("Retry-After", RETRY_AFTER_SECS.to_string())
            .with("X-Edge-Session-Reason", Reason::StoreUnavailable.as_str())
    }

    /// The reply to a refused request: a redirect to `LOGIN_URL` for a browser
    /// navigation, JSON 401 otherwise; always 503 for `store_unavailable`
    /// (an outage is not the user's fault, and a login page would not help).
    pub fn denial(cfg: &Config, reason: Reason, head: &Head<'_>) -> Reply {
        if reason == Reason::StoreUnavailable {
            return Reply::store_unavailable();
        }
        let reply = match &cfg.login_url {
            Some(login) if head.is_navigation() => {
                let sep = if login.contains('?') { '&' } else { '?' };
                let mut location = format!(
                    "{login}{sep}return_to={}",
                    encode_component(&return_to(head.path, head.query))
                );
                // The login page can say why: "your session expired".
                if reason != Reason::NoSession {
                    location.push_str("&reason=");
                    location.push_str(reason.as_str());
                }
                Reply::redirect(&location)
            }
            _ if reason == Reason::CrossSiteRequest => Reply::error(403, reason.as_str()),
            _ => Reply::error(401, reason.as_str()),
        };
        reply.with("X-Edge-Session-Reason", reason.as_str())
    }

    /// Adds a header.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The same answer for a person: a browser navigation answered 5xx gets a
    /// small HTML page (what happened, when to retry) instead of JSON; APIs
    /// keep the JSON of the contract. Status and headers other than the
    /// content type stay as they were.
    pub fn for_people(mut self, head: &Head<'_>) -> Reply {
        if self.status < 500 || !head.is_navigation() {
            return self;
        }
        let retry = self
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Retry-After"))
            .map(|(_, v)| v.clone());
        let (title, text) = match self.status {
            502 => (
                "The site is not answering",
                "The server behind this page could not be reached. This is usually brief.",
            ),
            503 => (
                "Sessions are briefly unavailable",
                "Your sign-in could not be checked just now. You are still signed in; nothing was lost.",
            ),
            508 => (
                "This site is misconfigured",
                "The request came back to the session layer instead of reaching the site. The operator has been told in the log.",
            ),
            _ => (
                "Something went wrong on our side",
                "The site's session layer is not configured correctly. The operator can see why in the log.",
            ),
        };
        let when = match retry {
            Some(secs) => format!("Please try again in {secs} seconds."),
            None => "Please try again in a moment.".to_string(),
        };
        self.body = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <title>{title}</title><style>body{{font:16px/1.5 system-ui,sans-serif;\
             max-width:34rem;margin:15vh auto;padding:0 1rem;color:#222}}h1{{font-size:1.4rem}}\
             small{{color:#777}}</style></head><body><h1>{title}</h1><p>{text}</p><p>{when}</p>\
             <p><a href=\"\">Try again</a></p><small>Error {}</small></body></html>",
            self.status
        );
        for (k, v) in &mut self.headers {
            if k.eq_ignore_ascii_case("Content-Type") {
                *v = "text/html; charset=utf-8".into();
            }
        }
        self
    }

    /// Adds a `Set-Cookie` header for each value.
    pub fn with_cookies(mut self, set_cookies: &[String]) -> Reply {
        for c in set_cookies {
            self.headers.push(("Set-Cookie".into(), c.clone()));
        }
        self
    }
}

/// The path and query to come back to after login: always a path on this
/// site. The leading run of slashes, backslashes, spaces and control
/// characters (which browsers strip from URLs, so `/\t/evil.example` is
/// `//evil.example` to them) collapses to one `/`, so that no other host can
/// be named; so does the same run percent-encoded (`%2F`, `%5C`, `%09`, `%0A`,
/// `%0D`, `%20`...), in case the login page decodes twice.
///
/// ```
/// use edge_session::reply::return_to;
/// assert_eq!(return_to("/dashboard", Some("tab=1")), "/dashboard?tab=1");
/// assert_eq!(return_to("//evil.example/x", None), "/evil.example/x");
/// assert_eq!(return_to("/%2F%5Cevil.example", None), "/evil.example");
/// assert_eq!(return_to("/%09/evil.example", None), "/evil.example");
/// ```
pub fn return_to(path: &str, query: Option<&str>) -> String {
    let strippable = |b: u8| b == b'/' || b == b'\\' || b <= b' ' || b == 0x7f;
    let mut rest = path;
    loop {
        let bytes = rest.as_bytes();
        if bytes.first().is_some_and(|&b| strippable(b)) {
            rest = &rest[1..];
        } else if bytes.first() == Some(&b'%')
            && rest
                .get(1..3)
                .and_then(crate::signals::hex_byte)
                .is_some_and(strippable)
        {
            rest = &rest[3..];
        } else {
            break;
        }
    }
    let mut out = format!("/{rest}");
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn encode_component(s: &str) -> String {
    crate::session::percent_encode(s, b"-._~")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn people_get_a_page_for_5xx_and_apis_keep_the_json() {
        let nav = Head {
            method: "GET",
            accept: Some("text/html"),
            ..Head::default()
        };
        let api = Head {
            method: "GET",
            accept: Some("application/json"),
            ..Head::default()
        };
        let page = Reply::store_unavailable().for_people(&nav);
        assert_eq!(page.status, 503);
        assert!(page.body.starts_with("<!doctype html>"));
        assert!(page.body.contains("try again in 5 seconds"));
        assert!(page
            .headers
            .contains(&("Content-Type".into(), "text/html; charset=utf-8".into())));
        assert!(page.headers.iter().any(|(k, _)| k == "Retry-After"));
        let json = Reply::store_unavailable().for_people(&api);
        assert_eq!(json.body, r#"{"error":"store_unavailable"}"#);
        let config = Reply::json(
            500,
            json!({"error": "config_error", "setting": "SESSION_KEYS"}),
        );
        let page = config.for_people(&nav);
        assert!(
            !page.body.contains("SESSION_KEYS"),
            "configuration details reach visitors"
        );
        let denial = Reply::error(401, "no_session").for_people(&nav);
        assert_eq!(denial.body, r#"{"error":"no_session"}"#);
    }
}
