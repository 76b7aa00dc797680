//! A request as the gate sees it: the few parts of its head that matter, and
//! its cookies, read once.

use crate::config::Config;
use crate::cookies::CookieHeader;
use crate::session::{is_plausible_id, SessionHash};
use crate::ticket::{self, Ticket, TicketError};
use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::rc::Rc;
use subtle::ConstantTimeEq;

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
    opened: OnceCell<Result<Rc<Ticket>, TicketError>>,
    /// It was opened before this read: known, or recalled from a [`TicketMemo`].
    reused: bool,
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
    pub ticket: Option<Result<Rc<Ticket>, TicketError>>,
}

/// Genuine tickets this isolate has opened, by their text, each with the
/// session ID it came with and that ID's hash: the next request with the same
/// two cookies skips SHA-256, the ticket's MAC and its decoding
/// ([`SessionCookies::read_known`]). Only a ticket opened and found genuine is
/// remembered, so a forged one is always checked in full; what the gate checks
/// against the clock and the session is checked on every request all the same.
/// Texts and IDs are compared in constant time. It holds tickets of at most
/// [`TicketMemo::MAX_BYTES`] in all (over a thousand of a sign-in's usual
/// size, or 128 of the largest a cookie may carry; with their decoded copies,
/// about twice that in memory): when full, it forgets them all. It holds what
/// `ticket::open` gave under one set of keys: one memo per configuration.
#[derive(Default)]
pub struct TicketMemo {
    entries: RefCell<HashMap<u64, Remembered>>,
    /// The bytes of the texts and IDs held.
    bytes: Cell<usize>,
}

struct Remembered {
    text: Box<str>,
    id: Box<str>,
    hash: SessionHash,
    ticket: Rc<Ticket>,
}

impl Remembered {
    fn bytes(&self) -> usize {
        self.text.len() + self.id.len()
    }
}

impl TicketMemo {
    /// Most bytes of ticket and session ID text held at once.
    pub const MAX_BYTES: usize = 512 * 1024;

    fn slot(text: &str) -> u64 {
        let mut hasher = DefaultHasher::new();
        text.hash(&mut hasher);
        hasher.finish()
    }

    /// What opening `text`, sent with session ID `id`, found before.
    fn recall(&self, id: &str, text: &str) -> Option<Known> {
        let entries = self.entries.borrow();
        let r = entries.get(&Self::slot(text))?;
        let same = r.text.as_bytes().ct_eq(text.as_bytes()) & r.id.as_bytes().ct_eq(id.as_bytes());
        bool::from(same).then(|| Known {
            hash: Some(r.hash.clone()),
            ticket: Some(Ok(Rc::clone(&r.ticket))),
        })
    }

    /// Remembers the ticket of `cookies` if this read opened it and found it
    /// genuine (not when it was known or recalled already).
    pub fn remember(&self, cookies: &SessionCookies<'_>) {
        let (Some(id), Some(text), Some(hash), Some(Ok(ticket))) = (
            cookies.id,
            cookies.ticket,
            &cookies.hash,
            cookies.opened.get(),
        ) else {
            return;
        };
        if cookies.reused {
            return;
        }
        let remembered = Remembered {
            text: text.into(),
            id: id.into(),
            hash: hash.clone(),
            ticket: Rc::clone(ticket),
        };
        let mut entries = self.entries.borrow_mut();
        let mut bytes = self.bytes.get() + remembered.bytes();
        if bytes > Self::MAX_BYTES {
            entries.clear();
            bytes = remembered.bytes();
        }
        if let Some(replaced) = entries.insert(Self::slot(text), remembered) {
            bytes -= replaced.bytes();
        }
        self.bytes.set(bytes);
    }

    /// How many tickets it holds.
    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    /// The bytes of ticket and session ID text it holds.
    pub fn bytes(&self) -> usize {
        self.bytes.get()
    }

    /// It holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The ticket cookie's value opened under the configuration's keys and cookie name.
fn open(cfg: &Config, value: &str) -> Result<Rc<Ticket>, TicketError> {
    ticket::open(value, &cfg.keys, &cfg.ticket_cookie).map(Rc::new)
}

impl<'a> SessionCookies<'a> {
    /// Reads the session and ticket cookies named by `cfg` from a `Cookie` header.
    pub fn read(cfg: &Config, header: Option<&'a str>) -> SessionCookies<'a> {
        Self::read_known(cfg, header, Known::default(), None)
    }

    /// As [`SessionCookies::read`], given what a read of the same header found
    /// before (`known`), or else what `memo` holds of the same two cookies.
    pub fn read_known(
        cfg: &Config,
        header: Option<&'a str>,
        known: Known,
        memo: Option<&TicketMemo>,
    ) -> SessionCookies<'a> {
        let parsed = header.map(CookieHeader::parse).unwrap_or_default();
        let sent = parsed.get(&cfg.session_cookie);
        let id = sent.filter(|id| is_plausible_id(id));
        let ticket = parsed.get(&cfg.ticket_cookie);
        let known = match (&known.ticket, memo, id, ticket) {
            (None, Some(memo), Some(id), Some(text)) => memo.recall(id, text).unwrap_or(known),
            _ => known,
        };
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
            reused: opened.get().is_some(),
            opened,
        };
        debug_assert!(
            (cookies.opened.get()).is_none_or(|t| ticket.is_some_and(|v| *t == open(cfg, v))),
            "a known ticket must be this ticket opened"
        );
        cookies
    }

    /// The ticket cookie opened ([`ticket::open`]: its MAC checked, its claims
    /// decoded), when one was sent: opened on the first call, kept for the next.
    pub fn opened(&self, cfg: &Config) -> Option<&Result<Rc<Ticket>, TicketError>> {
        let value = self.ticket?;
        Some(self.opened.get_or_init(|| open(cfg, value)))
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
        Self::read_known(cfg, head, Known::default(), None)
    }

    /// As [`Incoming::new`], given what a read of the same request found
    /// before, or a memo of tickets (see [`SessionCookies::read_known`]).
    pub fn read_known(
        cfg: &Config,
        head: Head<'a>,
        known: Known,
        memo: Option<&TicketMemo>,
    ) -> Incoming<'a> {
        let cookies = SessionCookies::read_known(cfg, head.cookie, known, memo);
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

        let again = SessionCookies::read_known(&cfg, Some(header), known.clone(), None);
        assert_eq!(
            again.known().ticket,
            known.ticket,
            "carried, not opened again"
        );
        assert_eq!(again.opened(&cfg), Some(&Err(TicketError::Malformed)));
        // A request without a ticket has none to open, whatever was known.
        let without = SessionCookies::read_known(&cfg, Some("sid=abc"), known, None);
        assert_eq!((without.opened(&cfg), without.known().ticket), (None, None));
    }

    /// A genuine ticket for session ID `id`, and the `Cookie` header that carries both.
    fn signed_in(cfg: &Config, id: &str, user: &str) -> (Ticket, String) {
        let t = Ticket {
            session_hash: SessionHash::of(id).0,
            user: user.into(),
            claims: None,
            created: 1,
            last_seen: 1,
            verified_at: 1,
            provenance: crate::session::Provenance::Edge,
            data_version: 0,
            guest: false,
            remember: false,
        };
        let sealed = ticket::seal(&t, &cfg.keys[0], &cfg.ticket_cookie).unwrap();
        let header = format!(
            "{}={id}; {}={sealed}",
            cfg.session_cookie, cfg.ticket_cookie
        );
        (t, header)
    }

    fn read<'h>(cfg: &Config, header: &'h str, memo: &TicketMemo) -> SessionCookies<'h> {
        SessionCookies::read_known(cfg, Some(header), Known::default(), Some(memo))
    }

    #[test]
    fn a_genuine_ticket_is_remembered_with_its_session_id_and_recalled_for_the_same_two_cookies_only(
    ) {
        let cfg = test_config();
        let (t, header) = signed_in(&cfg, "abc", "alice");
        let t = Rc::new(t);
        let memo = TicketMemo::default();
        let first = read(&cfg, &header, &memo);
        memo.remember(&first);
        assert!(memo.is_empty(), "not opened yet: nothing to remember");
        assert_eq!(first.opened(&cfg), Some(&Ok(t.clone())));
        memo.remember(&first);
        assert_eq!(memo.len(), 1);

        let next = read(&cfg, &header, &memo);
        assert_eq!(
            next.known().ticket,
            Some(Ok(t.clone())),
            "recalled, not opened"
        );
        assert_eq!(next.known().hash, Some(SessionHash::of("abc")));
        assert_eq!(next.opened(&cfg), Some(&Ok(Rc::clone(&t))));
        let recalled = next.opened(&cfg).and_then(|o| o.as_ref().ok());
        assert!(
            recalled.is_some_and(|r| Rc::strong_count(r) > 1),
            "the remembered ticket itself, shared, not a copy"
        );
        memo.remember(&next);
        assert_eq!(memo.len(), 1, "a recalled ticket is not remembered again");

        // The same ticket with another session ID: opened in full (and not bound to it).
        let other_id = header.replace("=abc;", "=abd;");
        assert_eq!(read(&cfg, &other_id, &memo).known().ticket, None);
        // A ticket one character off: opened in full, refused, never remembered.
        let last = if header.ends_with('A') { "B" } else { "A" };
        let forged = format!("{}{last}", &header[..header.len() - 1]);
        let f = read(&cfg, &forged, &memo);
        assert_eq!(f.known().ticket, None);
        assert!(matches!(f.opened(&cfg), Some(Err(_))));
        memo.remember(&f);
        assert_eq!(memo.len(), 1);
    }

    #[test]
    fn a_full_ticket_memo_forgets_everything_before_it_remembers_more() {
        let cfg = test_config();
        let memo = TicketMemo::default();
        let mut most = 0;
        for n in 0.. {
            let (_, header) = signed_in(&cfg, "abc", &format!("user{n}"));
            let cookies = read(&cfg, &header, &memo);
            assert!(matches!(cookies.opened(&cfg), Some(Ok(_))));
            memo.remember(&cookies);
            assert!(memo.bytes() <= TicketMemo::MAX_BYTES);
            if memo.len() < most {
                break;
            }
            most = memo.len();
        }
        assert_eq!(memo.len(), 1, "cleared, and the last one kept");
        assert!(most > 1000, "{most} tickets of a usual size fit");
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
