//! Header planning: what the worker strips from and adds to the request it
//! forwards, and what it filters from and adds to the origin's response.
//!
//! The edge layer copies the headers once on the JavaScript side and applies
//! these edits, so only the headers that change cross the wasm boundary.

use crate::identity::Identity;
use crate::request::CookieRewrite;
use crate::signals::{self, Signals};

/// What a response built from a session carries when its origin set no
/// `Cache-Control` (an edit of [`HeaderEdits::unless_present`]): no shared
/// cache may keep it (one user's page, or cookies, served to another).
pub const PRIVATE: (&str, &str) = ("Cache-Control", "private");

/// The marker the worker puts on every request it forwards. A request that
/// arrives carrying it has come back to the worker: forwarding it again would
/// loop (route mode with no route that reaches an origin).
pub const HOP: &str = "Edge-Session-Hop";

/// Request headers no client may send: identity is only ever set by the
/// worker. Matched lower-cased with `_` read as `-`, because CGI, WSGI, PHP
/// and Rack hand `X-Session_User` to the application as `X-Session-User`.
pub fn is_reserved_request_header(name: &str) -> bool {
    // Compared byte by byte: no lower-cased copy of every header name.
    let starts_with = |prefix: &str| {
        name.len() >= prefix.len()
            && name
                .bytes()
                .zip(prefix.bytes())
                .all(|(a, b)| a.to_ascii_lowercase() == b || (a == b'_' && b == b'-'))
    };
    starts_with("x-session-") || starts_with("x-edge-session-")
}

/// Changes to a set of headers (the forwarded request's or the response's),
/// applied in this order to a copy of the original.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderEdits {
    /// Headers to delete.
    pub remove: Vec<String>,
    /// Headers to set (after the deletions).
    pub set: Vec<(&'static str, String)>,
    /// Headers to set only where there is none already (its own value stands).
    pub unless_present: Vec<(&'static str, String)>,
    /// Headers to append (a `Set-Cookie` each, after the origin's own).
    pub append: Vec<(&'static str, String)>,
}

/// Plans the forwarded request's headers from the names of the headers it
/// came with: reserved headers removed (step 1), the `Cookie` header as the
/// gate decided ([`crate::gate::Decision::forward_cookie`]: never the ticket,
/// the session cookie only in attach mode), `Host` left to the fetch, the hop
/// marker and, on allow, the identity headers set.
pub fn plan_request<'n>(
    names: impl IntoIterator<Item = &'n str>,
    cookie: &CookieRewrite,
    identity: Option<&Identity>,
) -> HeaderEdits {
    let mut edits = HeaderEdits::default();
    for name in names {
        if is_reserved_request_header(name) || name.eq_ignore_ascii_case("host") {
            edits.remove.push(name.to_string());
        }
    }
    match cookie {
        CookieRewrite::Keep => {}
        CookieRewrite::Replace(rest) => edits.set.push(("Cookie", rest.clone())),
        CookieRewrite::Remove => edits.remove.push("Cookie".into()),
    }
    edits.set.push((HOP, "1".into()));
    if let Some(identity) = identity {
        edits.set.extend(identity.headers());
    }
    edits
}

/// The response header that tells the page how many seconds of idle time
/// are left before the session ends (readable by the page's scripts).
pub const IDLE_LEFT: &str = "X-Edge-Session-Idle-Left";

/// The signal headers the origin sent, as its signals tell (a claims header
/// is only ever read along with a login).
pub fn signals_sent(s: &Signals) -> Vec<String> {
    let mut sent = Vec::new();
    if let Some((_, claims)) = &s.login {
        sent.push(signals::LOGIN.to_string());
        if claims.is_some() {
            sent.push(signals::CLAIMS.to_string());
        }
    }
    if s.logout {
        sent.push(signals::LOGOUT.to_string());
    }
    if s.data.is_some() {
        sent.push(crate::data::PATCH.to_string());
    }
    if s.remember.is_some() {
        sent.push(signals::REMEMBER.to_string());
    }
    sent
}

/// Plans the response's headers: the signal headers the origin sent (which
/// only the worker reads) removed, the idle time left announced on an allowed
/// request, [`PRIVATE`] unless the origin set a `Cache-Control` of its own, the
/// worker's cookies appended (the origin's own `Set-Cookie`s stay as they were).
pub fn plan_response(
    signals_sent: Vec<String>,
    idle_left_secs: Option<u64>,
    set_cookies: Vec<String>,
    private: bool,
) -> HeaderEdits {
    let set = idle_left_secs
        .map(|s| vec![(IDLE_LEFT, s.to_string())])
        .unwrap_or_default();
    let mut unless_present = Vec::new();
    if private {
        unless_present.push((PRIVATE.0, PRIVATE.1.to_string()));
    }
    HeaderEdits {
        remove: signals_sent,
        set,
        unless_present,
        append: set_cookies.into_iter().map(|c| ("Set-Cookie", c)).collect(),
    }
}

/// Whether the response to a request is to be marked `Cache-Control: private`
/// (where its origin set no `Cache-Control` of its own): it was built for an
/// identity (forwarded with identity headers and data) or carries the worker's cookies.
pub fn needs_private(identified: bool, sets_cookies: bool) -> bool {
    identified || sets_cookies
}

/// The `Server-Timing` value for a response: what vouched or why not, and how long it took.
pub fn server_timing(detail: &str, ms: u64) -> String {
    format!("{}{ms}", server_timing_until_duration(detail))
}

/// [`server_timing`] up to its duration, which follows in whole milliseconds.
pub fn server_timing_until_duration(detail: &str) -> String {
    format!("edge-session;desc=\"{detail}\";dur=")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Source;

    #[test]
    fn responses_built_from_a_session_are_private_unless_the_origin_said_otherwise() {
        assert!(needs_private(true, false), "an identified response");
        assert!(needs_private(false, true), "a login's cookies");
        assert!(!needs_private(false, false), "a visitor's public page");
        let private = plan_response(vec![], None, vec![], true);
        assert_eq!(
            private.unless_present,
            [("Cache-Control", "private".to_string())],
            "the origin's own Cache-Control stands"
        );
        assert!(private.set.is_empty());
        assert!(plan_response(vec![], Some(60), vec![], false)
            .unless_present
            .is_empty());
        assert_eq!(
            server_timing("ticket", 12),
            format!("{}12", server_timing_until_duration("ticket"))
        );
    }

    #[test]
    fn forged_identity_headers_are_removed_whatever_their_case() {
        let names = [
            "Accept",
            "X-Session-User",
            "x-session-claims",
            "X-EDGE-SESSION-LOGIN",
            "X-Sessionless",
            "X-Session_User",
            "x_edge_session_hop",
            "X_SESSION_SOURCE",
            "Host",
        ];
        let edits = plan_request(names, &CookieRewrite::Keep, None);
        assert_eq!(
            edits.remove,
            [
                "X-Session-User",
                "x-session-claims",
                "X-EDGE-SESSION-LOGIN",
                "X-Session_User",
                "x_edge_session_hop",
                "X_SESSION_SOURCE",
                "Host"
            ]
        );
        assert_eq!(edits.set, [(HOP, "1".to_string())]);
    }

    #[test]
    fn the_cookie_header_is_set_or_removed_as_the_gate_decided() {
        let replaced = plan_request([], &CookieRewrite::Replace("theme=dark".into()), None);
        assert_eq!(replaced.set[0], ("Cookie", "theme=dark".to_string()));
        let removed = plan_request([], &CookieRewrite::Remove, None);
        assert_eq!(removed.remove, ["Cookie"]);
    }

    #[test]
    fn identity_headers_are_set_after_the_forged_ones_are_removed() {
        let identity = Identity {
            user: "alice".into(),
            claims: Some(r#"{"role":"admin"}"#.into()),
            source: Source::Kv,
            created: 0,
            data: crate::data::DataView::None,
            guest: false,
            remember: false,
        };
        let edits = plan_request(["X-Session-User"], &CookieRewrite::Keep, Some(&identity));
        assert_eq!(edits.remove, ["X-Session-User"]);
        assert_eq!(
            edits.set,
            [
                (HOP, "1".to_string()),
                ("X-Session-User", "alice".to_string()),
                ("X-Session-Claims", r#"{"role":"admin"}"#.to_string()),
                ("X-Session-Source", "kv".to_string()),
            ]
        );
        let no_claims = Identity {
            claims: None,
            ..identity
        };
        assert_eq!(no_claims.headers().len(), 2);
        let korean = Identity {
            user: "김철수".into(),
            ..no_claims
        };
        assert_eq!(korean.headers()[0].1, "%EA%B9%80%EC%B2%A0%EC%88%98");
    }

    #[test]
    fn responses_lose_their_signals_and_gain_the_worker_cookies() {
        let login = Signals {
            login: Some(("alice".into(), None)),
            ..Signals::default()
        };
        let edits = plan_response(
            signals_sent(&login),
            Some(1799),
            vec!["sid=x; Path=/".into()],
            true,
        );
        assert_eq!(edits.remove, [signals::LOGIN]);
        assert_eq!(edits.set, [(IDLE_LEFT, "1799".to_string())]);
        assert_eq!(
            edits.unless_present,
            [("Cache-Control", "private".to_string())]
        );
        assert_eq!(edits.append, [("Set-Cookie", "sid=x; Path=/".to_string())]);
        assert_eq!(
            plan_response(vec![], None, vec![], false),
            HeaderEdits::default()
        );
        // every signal the origin sent is removed, and only those
        let all = Signals {
            login: Some(("alice".into(), Some(Default::default()))),
            logout: true,
            ..Signals::default()
        };
        assert_eq!(
            signals_sent(&all),
            [signals::LOGIN, signals::CLAIMS, signals::LOGOUT]
        );
        assert!(signals_sent(&Signals::default()).is_empty());
        assert_eq!(
            server_timing("ticket", 3),
            "edge-session;desc=\"ticket\";dur=3"
        );
    }
}
