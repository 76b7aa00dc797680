//! A request as the gate sees it: the few parts of its head that matter, and
//! its cookies, read once.

use crate::config::Config;
use crate::cookies::CookieHeader;
use crate::session::{is_plausible_id, SessionHash};
use crate::ticket::{self, Ticket, TicketError};
use std::cell::OnceCell;

/// The parts of a request's head the worker looks at, as the edge layer read them.
#[derive(Debug, Clone, Default)]
pub struct Head<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// URL path (normalised by the URL parser).
    pub path: &'a str,
    /// URL query without `?`.
    pub query: Option<&'a str>,
    /// `Cookie` header.
    pub cookie: Option<&'a str>,
    /// `Accept` header.
    pub accept: Option<&'a str>,
    /// `Authorization` header.
    pub authorization: Option<&'a str>,
    /// `Origin` header.
    pub origin: Option<&'a str>,
    /// `Sec-Fetch-Site` header.
    pub sec_fetch_site: Option<&'a str>,
    /// `Access-Control-Request-Method` header present.
    pub has_acr_method: bool,
    /// This site as the client addressed it: `scheme://host[:port]`.
    pub site: &'a str,
    /// `User-Agent` header (for the device hint of a new session).
    pub user_agent: Option<&'a str>,
    /// Where the platform says the request comes from (its `CF-IPCountry`), if it says.
    pub location: Option<&'a str>,
}

impl Head<'_> {
    /// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
    pub fn is_preflight(&self) -> bool {
        self.method.eq_ignore_ascii_case("OPTIONS") && self.origin.is_some() && self.has_acr_method
    }

    /// POST, PUT, PATCH or DELETE: the methods a cross-site form or script can
    /// use to change something.
    pub fn is_unsafe_method(&self) -> bool {
        ["POST", "PUT", "PATCH", "DELETE"]
            .iter()
            .any(|m| self.method.eq_ignore_ascii_case(m))
    }

    /// Whether the request comes from another origin, decided as Go 1.25's
    /// `CrossOriginProtection` does: an `Origin` listed in `trusted` passes;
    /// otherwise `Sec-Fetch-Site` decides when present (`same-origin` and
    /// `none` pass; `same-site` and `cross-site` do not); without it an
    /// `Origin` other than this site's is cross-origin, and a request with
    /// neither header (not a browser, or a very old one) passes.
    pub fn is_cross_origin(&self, trusted: &[String]) -> bool {
        if let Some(o) = self.origin {
            if trusted.iter().any(|t| t.eq_ignore_ascii_case(o)) {
                return false;
            }
        }
        match (self.sec_fetch_site, self.origin) {
            (Some(site), _) => {
                !(site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none"))
            }
            (None, Some(origin)) => !origin.eq_ignore_ascii_case(self.site),
            (None, None) => false,
        }
    }

    /// A browser navigation: GET or HEAD whose `Accept` includes `text/html`.
    pub fn is_navigation(&self) -> bool {
        (self.method.eq_ignore_ascii_case("GET") || self.method.eq_ignore_ascii_case("HEAD"))
            && self
                .accept
                .is_some_and(|a| a.to_ascii_lowercase().contains("text/html"))
    }

    /// Whether the method is POST.
    pub fn is_post(&self) -> bool {
        self.method.eq_ignore_ascii_case("POST")
    }
}

/// What becomes of the `Cookie` header on its way to the origin.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CookieRewrite {
    /// Nothing to remove from it: forwarded as it came.
    #[default]
    Keep,
    /// The ticket (and the session cookie, when it is the worker's) removed:
    /// these cookies remain.
    Replace(String),
    /// Nothing remains: the header is dropped.
    Remove,
}

/// The request's session cookies, parsed once from its `Cookie` header.
#[derive(Debug, Clone)]
pub struct SessionCookies<'a> {
    /// The session cookie was sent (whatever its value).
    pub id_sent: bool,
    /// The session ID, when it could be genuine.
    pub id: Option<&'a str>,
    /// Its hash: the only form in which the ID is stored or logged.
    pub hash: Option<SessionHash>,
    /// The ticket cookie's value, when one was sent.
    pub ticket: Option<&'a str>,
    /// The data-version cookie's value, when one was sent (see [`SessionCookies::data_floor`]).
    pub data_version: Option<&'a str>,
    /// The whole header, split once, for [`SessionCookies::for_origin`].
    parsed: CookieHeader<'a>,
    /// The ticket cookie opened ([`SessionCookies::opened`]), once it has been.
    opened: OnceCell<Result<Ticket, TicketError>>,
}

/// What reading a request found before, when the same request is read again
/// (the synchronous path reads it once per call into the wasm): its session
/// ID's hash and its ticket opened, so that SHA-256 and the ticket's MAC run
/// once per request, not once per read.
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// The hash of the session ID.
    pub hash: Option<SessionHash>,
    /// The ticket cookie opened, when it was.
    pub ticket: Option<Result<Ticket, TicketError>>,
}

impl<'a> SessionCookies<'a> {
    /// Reads the session and ticket cookies named by `cfg` from a `Cookie` header.
    pub fn read(cfg: &Config, header: Option<&'a str>) -> SessionCookies<'a> {
        Self::read_known(cfg, header, Known::default())
    }

    /// As [`SessionCookies::read`], given what a read of the same header found
    /// before (`known`).
    pub fn read_known(cfg: &Config, header: Option<&'a str>, known: Known) -> SessionCookies<'a> {
        let parsed = header.map(CookieHeader::parse).unwrap_or_default();
        let sent = parsed.get(&cfg.session_cookie);
        let id = sent.filter(|id| is_plausible_id(id));
        let ticket = parsed.get(&cfg.ticket_cookie);
        let hash = id.map(|id| known.hash.unwrap_or_else(|| SessionHash::of(id)));
        debug_assert!(
            hash.as_ref() == id.map(SessionHash::of).as_ref(),
            "a known hash must be the ID's"
        );
        let opened = OnceCell::new();
        if let (Some(_), Some(known)) = (ticket, known.ticket) {
            let _ = opened.set(known);
        }
        let cookies = SessionCookies {
            id_sent: sent.is_some(),
            id,
            hash,
            ticket,
            data_version: parsed.get(&cfg.data_cookie),
            parsed,
            opened,
        };
        debug_assert!(
            (cookies.opened.get()).is_none_or(|t| {
                ticket.is_some_and(|v| *t == ticket::open(v, &cfg.keys, &cfg.ticket_cookie))
            }),
            "a known ticket must be this ticket opened"
        );
        cookies
    }

    /// The ticket cookie opened ([`ticket::open`]: its MAC checked, its claims
    /// decoded), when one was sent: opened on the first call, kept for the next.
    pub fn opened(&self, cfg: &Config) -> Option<&Result<Ticket, TicketError>> {
        let value = self.ticket?;
        Some((self.opened).get_or_init(|| ticket::open(value, &cfg.keys, &cfg.ticket_cookie)))
    }

    /// What this read found that a later read of the same header may reuse.
    pub fn known(&self) -> Known {
        Known {
            hash: self.hash.clone(),
            ticket: self.opened.get().cloned(),
        }
    }

    /// The data version this browser has seen for session `hash` at least,
    /// from the data-version cookie (`<first 8 hex of the hash>.<version>`);
    /// 0 without one, or when it names another session.
    ///
    /// Only answers to data changes (and reads that found a newer version)
    /// set it; the ticket, which every answer may re-issue, is not enough: a
    /// slow answer that read KV before a change would re-issue a ticket with
    /// the older version, and arriving last, hide the change. The cookie is a
    /// floor, not a secret: one that claims too much costs its own session a
    /// read of its data, no more.
    pub fn data_floor(&self, hash: &SessionHash) -> u64 {
        self.data_version
            .and_then(|v| v.split_once('.'))
            .filter(|(short, _)| *short == hash.short())
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or(0)
    }

    /// The `Cookie` header for the origin. The ticket never leaves the edge;
    /// the session cookie goes on only when `with_session_cookie` (attach
    /// mode, where it is the site's own cookie: the gate decides, see
    /// `Gate::admit`). Nothing is copied when nothing is removed.
    pub fn for_origin(&self, cfg: &Config, with_session_cookie: bool) -> CookieRewrite {
        let strip_session = self.id_sent && !with_session_cookie;
        let mut names = [""; 3];
        let mut n = 0;
        for (strip, name) in [
            (self.ticket.is_some(), &cfg.ticket_cookie),
            (self.data_version.is_some(), &cfg.data_cookie),
            (strip_session, &cfg.session_cookie),
        ] {
            if strip {
                names[n] = name;
                n += 1;
            }
        }
        if n == 0 {
            return CookieRewrite::Keep;
        }
        match self.parsed.without_any(&names[..n]) {
            Some(rest) => CookieRewrite::Replace(rest),
            None => CookieRewrite::Remove,
        }
    }
}

/// A request: its head, its cookies, and what kind of path it asks for.
#[derive(Debug, Clone)]
pub struct Incoming<'a> {
    /// The head.
    pub head: Head<'a>,
    /// The session cookies in it.
    pub cookies: SessionCookies<'a>,
    /// The path is in `PUBLIC_PATHS`.
    pub public: bool,
    /// The path is in `GUEST_PATHS` (and not in `PUBLIC_PATHS`).
    pub guest: bool,
    /// The path is in `PASSIVE_PATHS`.
    pub passive: bool,
    /// The path is in `STRICT_PATHS`.
    pub strict: bool,
}

impl<'a> Incoming<'a> {
    /// Reads the cookies of `head` and matches its path against the
    /// configured path lists, once.
    pub fn new(cfg: &Config, head: Head<'a>) -> Incoming<'a> {
        Self::read_known(cfg, head, Known::default())
    }

    /// As [`Incoming::new`], for a request read before: `known` is what that
    /// read found (see [`SessionCookies::read_known`]).
    pub fn read_known(cfg: &Config, head: Head<'a>, known: Known) -> Incoming<'a> {
        let cookies = SessionCookies::read_known(cfg, head.cookie, known);
        let public = cfg.is_public(head.path);
        Incoming {
            public,
            guest: !public && cfg.is_guest(head.path),
            passive: cfg.is_passive(head.path),
            strict: cfg.is_strict(head.path),
            head,
            cookies,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::tests::test_config;

    #[test]
    fn cookies_are_read_once_into_id_hash_ticket_and_forwarded_header() {
        let cfg = test_config();
        let c = SessionCookies::read(&cfg, Some("a=1; sid=abc; __Host-edge-ticket=t.k"));
        assert!(c.id_sent);
        assert_eq!(c.id, Some("abc"));
        assert_eq!(c.hash, Some(SessionHash::of("abc")));
        assert_eq!(c.ticket, Some("t.k"));
        // attach mode: the site's own session cookie goes on, the ticket never
        assert_eq!(
            c.for_origin(&cfg, true),
            CookieRewrite::Replace("a=1; sid=abc".into())
        );
        // edge mode: neither goes on
        assert_eq!(
            c.for_origin(&cfg, false),
            CookieRewrite::Replace("a=1".into())
        );

        let only_ticket = SessionCookies::read(&cfg, Some("__Host-edge-ticket=x"));
        assert!(!only_ticket.id_sent);
        assert_eq!(only_ticket.for_origin(&cfg, true), CookieRewrite::Remove);
        assert_eq!(only_ticket.for_origin(&cfg, false), CookieRewrite::Remove);

        let no_ticket = SessionCookies::read(&cfg, Some("sid=a b"));
        assert!(no_ticket.id_sent && no_ticket.id.is_none() && no_ticket.hash.is_none());
        assert_eq!(no_ticket.for_origin(&cfg, true), CookieRewrite::Keep);
        // even an implausible session cookie is the worker's in edge mode
        assert_eq!(no_ticket.for_origin(&cfg, false), CookieRewrite::Remove);
        let both = SessionCookies::read(&cfg, Some("sid=s; sid=t; x=1; __Host-edge-ticket=t"));
        assert_eq!(
            both.for_origin(&cfg, false),
            CookieRewrite::Replace("x=1".into())
        );

        let none = SessionCookies::read(&cfg, None);
        assert!(!none.id_sent && none.ticket.is_none());
        assert_eq!(none.for_origin(&cfg, false), CookieRewrite::Keep);
        let others = SessionCookies::read(&cfg, Some("theme=dark"));
        assert_eq!(others.for_origin(&cfg, false), CookieRewrite::Keep);
    }

    #[test]
    fn the_ticket_is_opened_once_and_a_second_read_of_the_request_reuses_what_the_first_found() {
        let cfg = test_config();
        let header = "sid=abc; __Host-edge-ticket=t.k";
        let first = SessionCookies::read(&cfg, Some(header));
        assert_eq!(first.known().ticket, None, "not opened until asked");
        assert_eq!(first.opened(&cfg), Some(&Err(TicketError::Malformed)));
        let known = first.known();
        assert_eq!(known.hash, Some(SessionHash::of("abc")));
        assert_eq!(known.ticket, Some(Err(TicketError::Malformed)));

        let again = SessionCookies::read_known(&cfg, Some(header), known.clone());
        assert_eq!(
            again.known().ticket,
            known.ticket,
            "carried, not opened again"
        );
        assert_eq!(again.opened(&cfg), Some(&Err(TicketError::Malformed)));
        // A request without a ticket has none to open, whatever was known.
        let without = SessionCookies::read_known(&cfg, Some("sid=abc"), known);
        assert_eq!((without.opened(&cfg), without.known().ticket), (None, None));
    }

    #[test]
    fn the_data_version_cookie_is_a_floor_for_its_own_session_only_and_never_leaves_the_edge() {
        let cfg = test_config();
        let hash = SessionHash::of("abc");
        let header = format!("sid=abc; __Host-edge-ticket-dv={}.7; a=1", hash.short());
        let c = SessionCookies::read(&cfg, Some(&header));
        assert_eq!(c.data_floor(&hash), 7);
        assert_eq!(
            c.data_floor(&SessionHash::of("other")),
            0,
            "another session's"
        );
        assert_eq!(
            c.for_origin(&cfg, true),
            CookieRewrite::Replace("sid=abc; a=1".into())
        );
        for odd in [
            "x",
            "",
            ".",
            "12345678.",
            "abc.-1",
            "abc.99999999999999999999999",
        ] {
            let header = format!("sid=abc; __Host-edge-ticket-dv={odd}");
            let c = SessionCookies::read(&cfg, Some(&header));
            assert_eq!(c.data_floor(&hash), 0, "{odd:?}");
        }
        let none = SessionCookies::read(&cfg, Some("sid=abc"));
        assert_eq!(none.data_floor(&hash), 0);
    }

    #[test]
    fn cross_origin_requests_are_told_apart_like_go_does() {
        let head = |sfs: Option<&'static str>, origin: Option<&'static str>| Head {
            method: "POST",
            site: "https://app.example",
            sec_fetch_site: sfs,
            origin,
            ..Head::default()
        };
        let trusted = vec!["https://partner.example".to_string()];
        assert!(!head(Some("same-origin"), None).is_cross_origin(&trusted));
        assert!(!head(Some("none"), None).is_cross_origin(&trusted));
        assert!(head(Some("cross-site"), None).is_cross_origin(&trusted));
        assert!(head(Some("same-site"), None).is_cross_origin(&trusted));
        assert!(!head(None, Some("https://app.example")).is_cross_origin(&trusted));
        assert!(head(None, Some("https://evil.example")).is_cross_origin(&trusted));
        assert!(head(None, Some("null")).is_cross_origin(&trusted));
        assert!(!head(None, None).is_cross_origin(&trusted));
        assert!(
            !head(Some("cross-site"), Some("https://partner.example")).is_cross_origin(&trusted)
        );
        assert!(head(Some("cross-site"), Some("https://other.example")).is_cross_origin(&trusted));
        assert!(head(Some("cross-site"), None).is_unsafe_method());
        let get = Head {
            method: "GET",
            ..head(None, None)
        };
        assert!(!get.is_unsafe_method());
    }

    #[test]
    fn navigations_and_preflights() {
        let nav = Head {
            method: "GET",
            accept: Some("Text/HTML,*/*"),
            ..Head::default()
        };
        assert!(nav.is_navigation());
        let post = Head {
            method: "POST",
            ..nav.clone()
        };
        assert!(!post.is_navigation());
        let preflight = Head {
            method: "OPTIONS",
            origin: Some("https://app.example"),
            has_acr_method: true,
            ..Head::default()
        };
        assert!(preflight.is_preflight());
        assert!(!Head {
            has_acr_method: false,
            ..preflight
        }
        .is_preflight());
    }
}
