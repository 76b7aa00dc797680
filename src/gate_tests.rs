//! The request path on the host: every tier, every timeout edge, the touch
//! throttle, key rotation and the session signals, over in-memory stores.

use super::*;
use crate::config::ConfigError;
use crate::control::{self, constant_time_eq, Control};
use crate::reply::{return_to, Reply};
use crate::request::{CookieRewrite, Head};
use crate::session::{Ending, DEAD_SESSION_MEMORY};
use crate::signals;
use crate::store::memory::{FakeLookup, MemoryKv, MemoryStates};
use serde_json::json;
use std::collections::HashMap;

const T0: Millis = 1_800_000_000_000;
const SEC: Millis = 1_000;
const MIN: Millis = 60 * SEC;
const KEY_A: &str = "a:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_B: &str = "b:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

fn config(extra: &[(&str, &str)]) -> Config {
    let mut map: HashMap<String, String> =
        [("SESSION_KEYS", KEY_A), ("ADMIN_TOKEN", "admin-secret")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    map.insert(
        "ASSERTION_KEYS".into(),
        crate::config::tests::assertion_key(),
    );
    for (k, v) in extra {
        map.insert(k.to_string(), v.to_string());
    }
    Config::from_lookup(|n| map.get(n).cloned()).unwrap()
}

/// One isolate's view: a config, the stores and a browser's cookie jar.
struct World {
    cfg: Config,
    kv: MemoryKv,
    lookup: FakeLookup,
    use_lookup: bool,
    states: MemoryStates,
    use_states: bool,
    memory: RefCell<IsolateMemory>,
    jar: RefCell<HashMap<String, String>>,
}

impl World {
    fn new(cfg: Config) -> World {
        World {
            cfg,
            kv: MemoryKv::default(),
            lookup: FakeLookup::default(),
            use_lookup: false,
            states: MemoryStates::default(),
            use_states: false,
            memory: RefCell::default(),
            jar: RefCell::default(),
        }
    }

    fn attach(extra: &[(&str, &str)]) -> World {
        let mut all = vec![("LOOKUP_URL", "/lookup"), ("LOOKUP_TOKEN", "t")];
        all.extend_from_slice(extra);
        let mut w = World::new(config(&all));
        w.use_lookup = true;
        w
    }

    fn gate(&self, now: Millis) -> TestGate<'_> {
        Gate::new(
            &self.cfg,
            &self.kv,
            self.use_lookup.then_some(&self.lookup),
            &self.memory,
            now,
        )
        .with_states(self.use_states.then_some(&self.states))
    }

    fn cookie_header(&self) -> Option<String> {
        let jar = self.jar.borrow();
        (!jar.is_empty()).then(|| {
            let mut pairs: Vec<_> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            pairs.sort();
            pairs.join("; ")
        })
    }

    /// Applies `Set-Cookie` values to the jar, as a browser would.
    fn store_cookies(&self, set_cookies: &[String]) {
        for c in set_cookies {
            let first = c.split(';').next().unwrap();
            let (k, v) = first.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.jar.borrow_mut().remove(k);
            } else {
                self.jar.borrow_mut().insert(k.into(), v.into());
            }
        }
    }

    fn set_sid(&self, id: &str) {
        self.jar
            .borrow_mut()
            .insert(self.cfg.session_cookie.clone(), id.into());
    }

    fn sid(&self) -> Option<String> {
        self.jar.borrow().get(&self.cfg.session_cookie).cloned()
    }

    fn ticket_value(&self) -> Option<String> {
        self.jar.borrow().get(&self.cfg.ticket_cookie).cloned()
    }

    /// One request to a protected path: decide, run the deferred writes, keep the cookies.
    fn request(&self, now: Millis) -> (Decision, Counts) {
        let header = self.cookie_header();
        let gate = self.gate(now);
        let head = dashboard(header.as_deref());
        let d = admit(&gate, &head);
        let req = Incoming::new(&self.cfg, head);
        let f = pollster::block_on(gate.finish(&req, &d, Ok(Signals::default()), || None));
        self.store_cookies(&f.set_cookies);
        if let Verdict::Deny { reply, .. } = &d.verdict {
            self.store_cookies(&reply_cookies(reply));
        }
        for op in &d.deferred {
            pollster::block_on(op.apply(&self.kv, self.use_states.then_some(&self.states)))
                .unwrap();
        }
        (d, gate.counts())
    }

    /// A response from the origin carrying `signals`, for the current cookies.
    fn respond(
        &self,
        now: Millis,
        signals: Result<Signals, MalformedSignal>,
        path: &str,
    ) -> Finish {
        let header = self.cookie_header();
        let head = Head {
            method: "POST",
            path,
            cookie: header.as_deref(),
            ..Head::default()
        };
        let gate = self.gate(now);
        let d = admit(&gate, &head);
        let req = Incoming::new(&self.cfg, head);
        let f = pollster::block_on(gate.finish(&req, &d, signals, || Some(format!("id-{now}"))));
        self.store_cookies(&f.set_cookies);
        for op in f.deferred.iter().chain(&d.deferred) {
            pollster::block_on(op.apply(&self.kv, self.use_states.then_some(&self.states)))
                .unwrap();
        }
        f
    }

    fn login(&self, now: Millis, user: &str) -> String {
        let s = Signals {
            login: Some((user.into(), json!({"role": "admin"}).as_object().cloned())),
            ..Signals::default()
        };
        let f = self.respond(now, Ok(s), "/login");
        assert_eq!(f.event, Some("login"));
        self.sid().unwrap()
    }

    fn record(&self) -> Option<SessionRecord> {
        self.kv.record(&SessionHash::of(&self.sid()?))
    }
}

/// A GET of a protected page with these cookies.
fn dashboard(cookie: Option<&str>) -> Head<'_> {
    Head {
        method: "GET",
        path: "/dashboard",
        cookie,
        ..Head::default()
    }
}

fn source(d: &Decision) -> Option<Source> {
    d.identity().map(|i| i.source)
}

fn reason(d: &Decision) -> Option<Reason> {
    match &d.verdict {
        Verdict::Deny { reason, .. } => Some(*reason),
        _ => None,
    }
}

/// The gate's decision about a request with this head.
type TestGate<'a> = Gate<'a, MemoryKv, FakeLookup, MemoryStates>;

fn admit(gate: &TestGate<'_>, head: &Head<'_>) -> Decision {
    pollster::block_on(gate.admit(&Incoming::new(gate.cfg, head.clone())))
}

/// The `Set-Cookie` values of a reply.
fn reply_cookies(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .iter()
        .filter(|(k, _)| k == "Set-Cookie")
        .map(|(_, v)| v.clone())
        .collect()
}

fn seed(w: &World, id: &str, record: SessionRecord) {
    for op in store::create_ops(&w.cfg, &SessionHash::of(id), &record, record.last_seen) {
        pollster::block_on(op.apply(&w.kv, w.use_states.then_some(&w.states))).unwrap();
    }
}

fn edge_record(user: &str, created: Millis, last_seen: Millis) -> SessionRecord {
    SessionRecord {
        user: user.into(),
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

// ---- steps 3 and 4 -----------------------------------------------------------

#[test]
fn no_cookie_is_no_session() {
    let w = World::new(config(&[]));
    let (d, c) = w.request(T0);
    assert_eq!(reason(&d), Some(Reason::NoSession));
    assert_eq!(c, Counts::default());
}

#[test]
fn implausible_ids_are_invalid_without_any_store_access() {
    let w = World::attach(&[]);
    for id in ["a\"b", &"x".repeat(300)] {
        w.set_sid(id);
        let (d, c) = w.request(T0);
        assert_eq!(reason(&d), Some(Reason::InvalidSession), "{id}");
        assert_eq!(c, Counts::default());
    }
    assert_eq!(w.lookup.calls.get(), 0);
}

#[test]
fn public_paths_and_preflights_bypass() {
    let w = World::new(config(&[("PUBLIC_PATHS", "/login,/assets/*")]));
    let gate = w.gate(T0);
    for req in [
        Head {
            method: "GET",
            path: "/login",
            ..Head::default()
        },
        Head {
            method: "GET",
            path: "/assets/app.css",
            ..Head::default()
        },
        Head {
            method: "OPTIONS",
            path: "/api/x",
            origin: Some("http://app.example"),
            has_acr_method: true,
            ..Head::default()
        },
    ] {
        assert_eq!(admit(&gate, &req).verdict, Verdict::Bypass, "{}", req.path);
    }
    let plain_options = Head {
        method: "OPTIONS",
        path: "/api/x",
        origin: Some("http://app.example"),
        ..Head::default()
    };
    assert_eq!(
        reason(&admit(&gate, &plain_options)),
        Some(Reason::NoSession)
    );
}

// ---- edge mode: login, tickets, KV ----------------------------------------------

#[test]
fn login_writes_record_and_index_and_sets_both_cookies() {
    let w = World::new(config(&[]));
    let sid = w.login(T0, "alice");
    let hash = SessionHash::of(&sid);
    let r = w.record().unwrap();
    assert_eq!(
        (r.user.as_str(), r.provenance, r.created, r.last_seen),
        ("alice", Provenance::Edge, T0, T0)
    );
    assert_eq!(r.claims_json().as_deref(), Some(r#"{"role":"admin"}"#));
    // the idle deadline, plus the hour in which a dead session still says why it died
    assert_eq!(w.kv.ttl(&hash.record_key()), Some(30 * 60 + 3600));
    assert_eq!(w.kv.ttl(&format!("u:alice:{}", hash.0)), Some(8 * 3600));
    assert!(w.ticket_value().is_some());
    assert!(
        w.kv.keys().iter().all(|k| !k.contains(&sid)),
        "a raw ID reached a KV key"
    );
}

#[test]
fn fresh_ticket_allows_without_reading_kv() {
    let w = World::new(config(&[]));
    w.login(T0, "alice");
    let reads = w.kv.reads.get();
    let (d, c) = w.request(T0 + 30 * SEC);
    assert_eq!(source(&d), Some(Source::Ticket));
    assert_eq!(c, Counts::default());
    assert_eq!(w.kv.reads.get(), reads);
    match d.verdict {
        Verdict::Allow(Identity { user, claims, .. }) => {
            assert_eq!(user, "alice");
            assert_eq!(claims.as_deref(), Some(r#"{"role":"admin"}"#));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn expired_ticket_falls_back_to_kv_and_is_reissued() {
    let w = World::new(config(&[]));
    w.login(T0, "alice");
    let old = w.ticket_value();
    let (d, c) = w.request(T0 + 61 * SEC);
    assert_eq!(source(&d), Some(Source::Kv));
    assert_eq!(c.kv_reads, 1);
    assert_ne!(w.ticket_value(), old);
    let (d, _) = w.request(T0 + 62 * SEC);
    assert_eq!(source(&d), Some(Source::Ticket));
}

#[test]
fn missing_ticket_is_reissued_from_kv() {
    let w = World::new(config(&[]));
    w.login(T0, "alice");
    w.jar.borrow_mut().remove(&w.cfg.ticket_cookie);
    let (d, _) = w.request(T0 + SEC);
    assert_eq!(source(&d), Some(Source::Kv));
    assert!(w.ticket_value().is_some());
}

#[test]
fn tampered_ticket_is_not_trusted() {
    let w = World::new(config(&[]));
    w.login(T0, "alice");
    let t = w.ticket_value().unwrap();
    let mut forged = t.clone().into_bytes();
    let i = forged.len() - 3;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    w.jar.borrow_mut().insert(
        w.cfg.ticket_cookie.clone(),
        String::from_utf8(forged).unwrap(),
    );
    let (d, c) = w.request(T0 + SEC);
    assert_eq!(source(&d), Some(Source::Kv));
    assert_eq!(c.kv_reads, 1);
    assert!(
        matches!(d.ticket_problem, Some(TicketProblem::Invalid(_))),
        "{:?}",
        d.ticket_problem
    );
}

#[test]
fn ticket_of_another_session_is_not_trusted() {
    let w = World::new(config(&[]));
    w.login(T0, "alice");
    let alice_ticket = w.ticket_value().unwrap();
    w.login(T0 + SEC, "mallory");
    // mallory presents alice's ticket with her own session ID
    w.jar
        .borrow_mut()
        .insert(w.cfg.ticket_cookie.clone(), alice_ticket);
    let (d, _) = w.request(T0 + 2 * SEC);
    assert_eq!(source(&d), Some(Source::Kv));
    assert!(matches!(d.verdict, Verdict::Allow(Identity { ref user, .. }) if user == "mallory"));
    assert_eq!(d.ticket_problem, Some(TicketProblem::OtherSession));
}

#[test]
fn ticket_signed_by_a_retired_key_falls_back_to_kv_without_logging_out() {
    let mut w = World::new(config(&[("SESSION_KEYS", KEY_B)]));
    w.login(T0, "alice");
    // rotate: key b is retired, key a signs
    w.cfg = config(&[("SESSION_KEYS", KEY_A)]);
    let (d, c) = w.request(T0 + SEC);
    assert_eq!(source(&d), Some(Source::Kv));
    assert_eq!(c.kv_reads, 1);
    // the log says why the ticket was not used: a retired key, not a forgery
    assert_eq!(
        d.ticket_problem,
        Some(TicketProblem::Invalid(TicketError::UnknownKey))
    );
    assert!(w.ticket_value().unwrap().starts_with("v1.a."));
    let (d, _) = w.request(T0 + 2 * SEC);
    assert_eq!(source(&d), Some(Source::Ticket));
}

#[test]
fn ticket_signed_by_the_second_key_still_verifies() {
    let mut w = World::new(config(&[("SESSION_KEYS", KEY_B)]));
    w.login(T0, "alice");
    w.cfg = config(&[("SESSION_KEYS", &format!("{KEY_A},{KEY_B}"))]);
    let (d, _) = w.request(T0 + SEC);
    assert_eq!(source(&d), Some(Source::Ticket));
}

// ---- timeouts --------------------------------------------------------------------

#[test]
fn idle_session_is_marked_dead_and_both_cookies_cleared() {
    let w = World::new(config(&[]));
    let sid = w.login(T0, "alice");
    let (d, _) = w.request(T0 + 30 * MIN);
    assert_eq!(reason(&d), Some(Reason::IdleTimeout));
    let Verdict::Deny { reply, .. } = &d.verdict else {
        panic!("{d:?}")
    };
    let cleared = reply_cookies(reply);
    assert_eq!(cleared.len(), 2);
    assert!(cleared.iter().all(|c| c.contains("Max-Age=0")));
    assert_eq!(w.kv.record(&SessionHash::of(&sid)), None);
    assert!(matches!(
        w.kv.stored(&SessionHash::of(&sid)),
        Some(Stored::Ended(Ending {
            reason: EndReason::IdleTimeout,
            ..
        }))
    ));
    assert!(
        !w.kv.keys().iter().any(|k| k.starts_with("u:alice:")),
        "index entry left behind"
    );
}

#[test]
fn idle_expiry_is_reported_as_such_even_after_kv_forgot_the_session() {
    let w = World::new(config(&[("IDLE_TIMEOUT", "90s")]));
    w.login(T0, "alice");
    // the browser comes back after 100 s: the record is still in KV (its
    // expiration is the deadline plus an hour) and says why it died
    let (d, _) = w.request(T0 + 100 * SEC);
    assert_eq!(reason(&d), Some(Reason::IdleTimeout));
    // KV has dropped it, but the genuine ticket still tells
    let w = World::new(config(&[("IDLE_TIMEOUT", "90s")]));
    w.login(T0, "alice");
    w.kv.data.borrow_mut().clear();
    let (d, _) = w.request(T0 + 100 * SEC);
    assert_eq!(reason(&d), Some(Reason::IdleTimeout));
}

/// What KV holds for a session, and that key's expiration TTL.
fn stored(w: &World, id: &str) -> (Option<Stored>, Option<u64>) {
    let hash = SessionHash::of(id);
    (w.kv.stored(&hash), w.kv.ttl(&hash.record_key()))
}

/// The browser (another tab's request in flight, or a client that ignores
/// `Set-Cookie`) still sends the session cookie, without its ticket.
fn keep_only_the_session_cookie(w: &World, id: &str) {
    w.jar.borrow_mut().clear();
    w.set_sid(id);
}

#[test]
fn a_session_dead_of_idleness_is_reported_so_without_its_ticket_until_its_kv_expiry() {
    // edge mode without a lookup: the first request after the death used to
    // delete the record, and the next one without a ticket was told invalid_session
    let w = World::new(config(&[("LOGIN_URL", "/login")]));
    let sid = w.login(T0, "alice");
    let deadline = T0 + w.cfg.idle_timeout;
    let (d, _) = w.request(deadline + 5 * MIN);
    assert_eq!(reason(&d), Some(Reason::IdleTimeout));
    // the record is replaced by the mark of its death, which expires when the
    // record would have: an hour after the deadline
    let (mark, ttl) = stored(&w, &sid);
    let Some(Stored::Ended(ending)) = mark else {
        panic!("{mark:?}")
    };
    assert_eq!(ending.reason, EndReason::IdleTimeout);
    assert_eq!(ttl, Some((DEAD_SESSION_MEMORY - 5 * MIN) / 1000));
    assert!(
        !w.kv.keys().iter().any(|k| k.starts_with("u:")),
        "index entry left"
    );

    keep_only_the_session_cookie(&w, &sid);
    let (writes, deletes) = (w.kv.writes.get(), w.kv.deletes.get());
    let (d, c) = w.request(deadline + 50 * MIN);
    assert_eq!(reason(&d), Some(Reason::IdleTimeout));
    assert!(
        d.deferred.is_empty() && c.kv_writes == 0,
        "{:?}",
        d.deferred
    );
    assert_eq!((w.kv.writes.get(), w.kv.deletes.get()), (writes, deletes));
    // and the login page is told why
    w.set_sid(&sid);
    let header = w.cookie_header();
    let head = Head {
        cookie: header.as_deref(),
        ..nav("/dashboard", None)
    };
    let Verdict::Deny { reply, .. } = admit(&w.gate(deadline + 55 * MIN), &head).verdict else {
        panic!("allowed")
    };
    assert_eq!(reply.status, 302);
    assert_eq!(
        reply.headers[0],
        (
            "Location".to_string(),
            "/login?return_to=%2Fdashboard&reason=idle_timeout".to_string()
        )
    );
}

#[test]
fn a_session_dead_of_age_is_reported_so_without_its_ticket() {
    let w = World::new(config(&[
        ("ABSOLUTE_TIMEOUT", "2h"),
        ("TOUCH_INTERVAL", "1m"),
    ]));
    let sid = w.login(T0, "alice");
    // active until its absolute deadline
    for minutes in (20..120).step_by(20) {
        assert!(source(&w.request(T0 + minutes * MIN).0).is_some());
    }
    let (d, _) = w.request(T0 + 2 * 60 * MIN);
    assert_eq!(reason(&d), Some(Reason::AbsoluteTimeout));
    keep_only_the_session_cookie(&w, &sid);
    let (d, _) = w.request(T0 + 2 * 60 * MIN + 30 * MIN);
    assert_eq!(reason(&d), Some(Reason::AbsoluteTimeout));
    let (_, ttl) = stored(&w, &sid);
    assert_eq!(
        ttl,
        Some(DEAD_SESSION_MEMORY / 1000),
        "the record's own expiry"
    );
}

#[test]
fn with_a_lookup_the_mark_of_a_timeout_also_lasts_an_hour_past_the_death() {
    // the mark of an end lasts ABSOLUTE_TIMEOUT with a lookup; a short one
    // must not cut the hour the README promises
    let w = World::attach(&[("IDLE_TIMEOUT", "5m"), ("ABSOLUTE_TIMEOUT", "10m")]);
    w.lookup.add("s1", "bob");
    w.set_sid("s1");
    assert_eq!(source(&w.request(T0).0), Some(Source::Lookup));
    assert_eq!(
        reason(&w.request(T0 + 6 * MIN).0),
        Some(Reason::IdleTimeout)
    );
    let (_, ttl) = stored(&w, "s1");
    assert_eq!(ttl, Some((5 * MIN + DEAD_SESSION_MEMORY - 6 * MIN) / 1000));
    keep_only_the_session_cookie(&w, "s1");
    let calls = w.lookup.calls.get();
    assert_eq!(
        reason(&w.request(T0 + 50 * MIN).0),
        Some(Reason::IdleTimeout)
    );
    assert_eq!(
        w.lookup.calls.get(),
        calls,
        "the lookup was asked about a dead session"
    );
}

#[test]
fn a_dead_session_is_never_revived_touched_or_given_data() {
    let w = data_world(&[("PUBLIC_PATHS", "/login,/shop")]);
    let sid = w.login(T0, "alice");
    send_patch(&w, T0 + SEC, r#"{"cart":1}"#);
    let copied = w.jar.borrow().clone();
    let dead_at = T0 + SEC + w.cfg.idle_timeout;
    assert_eq!(reason(&w.request(dead_at).0), Some(Reason::IdleTimeout));
    let hash = SessionHash::of(&sid);
    assert!(w.states.state(&hash).ended, "its data was not ended");
    let mark = w.kv.stored(&hash);
    // the copied cookies (the genuine ticket included), on every kind of path
    *w.jar.borrow_mut() = copied.clone();
    assert_eq!(
        reason(&w.request(dead_at + MIN).0),
        Some(Reason::IdleTimeout)
    );
    *w.jar.borrow_mut() = copied.clone();
    let (d, f, _) = exchange(
        &w,
        dead_at + 2 * MIN,
        "/shop",
        Answer {
            patch: Some(r#"{"cart":2}"#),
            ..Answer::default()
        },
    );
    assert_eq!(d.verdict, Verdict::Bypass);
    assert_eq!(
        status_of(&f),
        Some(502),
        "a change was taken for a dead session"
    );
    // KV down: the old ticket is past its idle limit, so it cannot stand in either
    *w.jar.borrow_mut() = copied.clone();
    w.kv.down.set(true);
    assert_eq!(
        reason(&w.request(dead_at + 3 * MIN).0),
        Some(Reason::StoreUnavailable)
    );
    w.kv.down.set(false);
    // a data mark that raced the death leaves the mark as it was
    let late = StoreOp::MarkData {
        key: hash.record_key(),
        version: 9,
        limits: [w.cfg.limits(false), w.cfg.limits(true)],
        now: dead_at,
    };
    pollster::block_on(late.apply(&w.kv, Some(&w.states))).unwrap();
    assert_eq!(w.kv.stored(&hash), mark);
    assert!(w.states.state(&hash).ended && w.states.state(&hash).data.is_none());
    // the user's list does not show it, and the endpoints say how it died
    *w.jar.borrow_mut() = copied;
    let (r, body) = user_control(&w, "GET", "/.edge-session/sessions", "");
    assert_eq!((r.status, body), (401, json!({"error": "idle_timeout"})));
    // logout still works: cookies cleared, the mark goes (no lookup to keep out)
    let r = control(&w, "POST", "/.edge-session/logout", None, "");
    assert_eq!(r.status, 302);
    // the session cookie, the ticket and (the session had data) the data-version cookie
    assert_eq!(reply_cookies(&r).len(), 3);
    assert!(w.kv.keys().is_empty(), "{:?}", w.kv.keys());
}

#[test]
fn one_millisecond_before_idle_is_still_alive() {
    let w = World::new(config(&[]));
    w.login(T0, "alice");
    let (d, _) = w.request(T0 + 30 * MIN - 1);
    assert_eq!(source(&d), Some(Source::Kv));
}

#[test]
fn active_session_lives_past_the_idle_timeout() {
    let w = World::new(config(&[]));
    w.login(T0, "alice");
    for step in 1..=12 {
        let (d, _) = w.request(T0 + step * 10 * MIN);
        assert!(
            source(&d).is_some(),
            "request at {} min denied: {:?}",
            step * 10,
            d.verdict
        );
    }
    assert_eq!(w.record().unwrap().last_seen, T0 + 120 * MIN);
}

#[test]
fn absolute_timeout_ends_even_an_active_session() {
    let w = World::new(config(&[("ABSOLUTE_TIMEOUT", "1h")]));
    w.login(T0, "alice");
    for step in 1..6 {
        assert!(source(&w.request(T0 + step * 10 * MIN).0).is_some());
    }
    let (d, _) = w.request(T0 + 60 * MIN);
    assert_eq!(reason(&d), Some(Reason::AbsoluteTimeout));
    assert!(w.record().is_none());
}

#[test]
fn ticket_cannot_outlive_idle_timeout_even_if_fresh() {
    // a ticket younger than TICKET_TTL but past the idle limit is not enough
    let w = World::new(config(&[
        ("IDLE_TIMEOUT", "30s"),
        ("TICKET_TTL", "5m"),
        ("TOUCH_INTERVAL", "10m"),
    ]));
    w.login(T0, "alice");
    let (d, c) = w.request(T0 + 31 * SEC);
    assert_eq!(reason(&d), Some(Reason::IdleTimeout));
    assert_eq!(c.kv_reads, 1);
}

// ---- touch throttle and the KV operation budget ----------------------------------

#[test]
fn replay_of_one_active_user_respects_the_kv_budget() {
    // 300 requests, one every 2 s for 10 minutes, with the default TTL and touch interval.
    let w = World::new(config(&[]));
    w.login(T0, "alice");
    let (reads0, writes0) = (w.kv.reads.get(), w.kv.writes.get());
    let mut sources: HashMap<&str, u32> = HashMap::new();
    for i in 1..=300 {
        let (d, _) = w.request(T0 + i * 2 * SEC);
        *sources
            .entry(source(&d).expect("denied").as_str())
            .or_default() += 1;
    }
    let reads = w.kv.reads.get() - reads0;
    let writes = w.kv.writes.get() - writes0;
    // 600 s of traffic: at most one read per TICKET_TTL and one write per TOUCH_INTERVAL.
    assert!(reads <= 10, "{reads} reads");
    assert!(writes <= 10, "{writes} writes");
    assert!(
        reads >= 9 && writes >= 9,
        "the session was not refreshed: {reads} reads, {writes} writes"
    );
    assert_eq!(sources["ticket"] + sources["kv"], 300);
    assert_eq!(w.record().unwrap().last_seen, T0 + 600 * SEC);
}

#[test]
fn touch_is_not_written_before_the_interval() {
    let w = World::new(config(&[("TICKET_TTL", "1s")]));
    w.login(T0, "alice");
    let writes = w.kv.writes.get();
    for i in 1..=59 {
        let (d, _) = w.request(T0 + i * SEC);
        assert!(d.deferred.is_empty(), "write at {i} s");
    }
    assert_eq!(w.kv.writes.get(), writes);
    let (d, _) = w.request(T0 + 60 * SEC);
    assert_eq!(d.deferred.len(), 1);
    assert_eq!(w.record().unwrap().last_seen, T0 + 60 * SEC);
}

#[test]
fn a_burst_of_parallel_requests_writes_last_seen_once() {
    // A page load: several requests leave with the same expired ticket before
    // any of them has written; KV takes one write per second per key.
    let w = World::new(config(&[]));
    w.login(T0, "alice");
    let header = w.cookie_header();
    let req = dashboard(header.as_deref());
    let gate = w.gate(T0 + 2 * MIN);
    let decisions: Vec<Decision> = (0..5).map(|_| admit(&gate, &req)).collect();
    let writes: Vec<usize> = decisions.iter().map(|d| d.deferred.len()).collect();
    assert_eq!(writes, [1, 0, 0, 0, 0]);
    assert!(decisions.iter().all(|d| source(d) == Some(Source::Kv)));
    // every new ticket carries the last-seen that is being written
    for d in &decisions {
        w.store_cookies(&d.set_cookies);
        let t = ticket::open(
            &w.ticket_value().unwrap(),
            &w.cfg.keys,
            &w.cfg.ticket_cookie,
        )
        .unwrap();
        assert_eq!(t.last_seen, T0 + 2 * MIN);
    }
}

#[test]
fn touch_due_on_a_fresh_ticket_goes_through_kv() {
    // TOUCH_INTERVAL shorter than TICKET_TTL: the touch is made after reading
    // KV, so a revoked session is never written back.
    let w = World::new(config(&[("TICKET_TTL", "5m"), ("TOUCH_INTERVAL", "1m")]));
    w.login(T0, "alice");
    assert_eq!(source(&w.request(T0 + 30 * SEC).0), Some(Source::Ticket));
    let (d, _) = w.request(T0 + 61 * SEC);
    assert_eq!(source(&d), Some(Source::Kv));
    assert_eq!(d.deferred.len(), 1);
}

// ---- revocation ------------------------------------------------------------------

#[test]
fn revoked_session_is_refused_once_ticket_ttl_has_passed() {
    let w = World::new(config(&[]));
    let sid = w.login(T0, "alice");
    w.kv.data
        .borrow_mut()
        .remove(&SessionHash::of(&sid).record_key());
    // within TICKET_TTL the ticket still passes: the documented revocation bound
    assert_eq!(source(&w.request(T0 + 59 * SEC).0), Some(Source::Ticket));
    let (d, c) = w.request(T0 + 60 * SEC);
    assert_eq!(reason(&d), Some(Reason::InvalidSession));
    assert_eq!(c.lookups, 0);
}

#[test]
fn edge_session_missing_from_kv_is_not_looked_up() {
    let w = World::attach(&[]);
    let sid = w.login(T0, "alice");
    w.kv.data
        .borrow_mut()
        .remove(&SessionHash::of(&sid).record_key());
    let (d, c) = w.request(T0 + 2 * MIN);
    assert_eq!(reason(&d), Some(Reason::InvalidSession));
    assert_eq!(c.lookups, 0);
}

// ---- degraded mode -----------------------------------------------------------------

#[test]
fn kv_down_with_a_stale_genuine_ticket_allows_degraded() {
    let w = World::new(config(&[]));
    w.login(T0, "alice");
    w.kv.down.set(true);
    let (d, _) = w.request(T0 + 5 * MIN);
    assert_eq!(source(&d), Some(Source::Stale));
    assert!(d.deferred.is_empty());
}

#[test]
fn kv_down_without_a_ticket_is_store_unavailable() {
    let w = World::new(config(&[]));
    w.login(T0, "alice");
    w.jar.borrow_mut().remove(&w.cfg.ticket_cookie);
    w.kv.down.set(true);
    let (d, _) = w.request(T0 + SEC);
    assert_eq!(reason(&d), Some(Reason::StoreUnavailable));
    let Verdict::Deny { reply, .. } = &d.verdict else {
        panic!("{d:?}")
    };
    assert!(
        reply_cookies(reply).is_empty(),
        "an outage must not log the user out"
    );
    assert!(w.sid().is_some());
}

#[test]
fn stale_ticket_past_the_idle_limit_does_not_stand_in() {
    let w = World::new(config(&[]));
    w.login(T0, "alice");
    w.kv.down.set(true);
    let (d, _) = w.request(T0 + 31 * MIN);
    assert_eq!(reason(&d), Some(Reason::StoreUnavailable));
}

#[test]
fn stale_ticket_of_another_session_does_not_stand_in() {
    let w = World::new(config(&[]));
    w.login(T0, "alice");
    let t = w.ticket_value().unwrap();
    w.login(T0 + SEC, "bob");
    w.jar.borrow_mut().insert(w.cfg.ticket_cookie.clone(), t);
    w.kv.down.set(true);
    assert_eq!(
        reason(&w.request(T0 + 2 * MIN).0),
        Some(Reason::StoreUnavailable)
    );
}

// ---- attach mode: the origin's lookup ------------------------------------------------

#[test]
fn lookup_is_asked_once_then_kv_serves() {
    let mut w = World::attach(&[]);
    w.lookup = FakeLookup::with("origin-sid", "bob");
    w.set_sid("origin-sid");
    let (d, c) = w.request(T0);
    assert_eq!(source(&d), Some(Source::Lookup));
    assert_eq!((c.kv_reads, c.lookups, d.deferred.len()), (1, 1, 2));
    let r = w.record().unwrap();
    assert_eq!((r.user.as_str(), r.provenance), ("bob", Provenance::Lookup));
    // drop the ticket so the next request must read KV
    w.jar.borrow_mut().remove(&w.cfg.ticket_cookie);
    let (d, c) = w.request(T0 + SEC);
    assert_eq!(source(&d), Some(Source::Kv));
    assert_eq!(c.lookups, 0);
    assert_eq!(w.lookup.calls.get(), 1);
}

#[test]
fn lookup_times_are_respected_at_the_edge() {
    let mut w = World::attach(&[]);
    w.lookup = FakeLookup::with("old", "bob");
    w.lookup
        .sessions
        .borrow_mut()
        .get_mut("old")
        .unwrap()
        .last_seen = Some((T0 - 31 * MIN) / 1000);
    w.set_sid("old");
    let (d, _) = w.request(T0);
    assert_eq!(reason(&d), Some(Reason::IdleTimeout));
    assert!(w.kv.keys().is_empty());
}

#[test]
fn lookup_404_is_invalid_and_remembered() {
    let w = World::attach(&[]);
    w.set_sid("bogus");
    let (d, _) = w.request(T0);
    assert_eq!(reason(&d), Some(Reason::InvalidSession));
    let Verdict::Deny { reply, .. } = &d.verdict else {
        unreachable!()
    };
    // The site's cookie may name the site's own guest session (its cart): it is the site's.
    let cleared = reply_cookies(reply);
    assert!(
        cleared.iter().all(|c| !c.starts_with("sid=")),
        "{cleared:?}"
    );
    assert!(cleared
        .iter()
        .any(|c| c.starts_with(&format!("{}=;", w.cfg.ticket_cookie))));
    assert_eq!(w.sid().as_deref(), Some("bogus"));
    for i in 1..20 {
        w.set_sid("bogus");
        let (d, c) = w.request(T0 + i * 100);
        assert_eq!(reason(&d), Some(Reason::InvalidSession));
        assert_eq!(c, Counts::default());
        assert_eq!(
            w.sid().as_deref(),
            Some("bogus"),
            "remembered as unknown, still the site's"
        );
    }
    assert_eq!(w.lookup.calls.get(), 1);
    w.set_sid("bogus");
    w.request(T0 + UNKNOWN_ID_MEMORY);
    assert_eq!(
        w.lookup.calls.get(),
        2,
        "the memory of unknown IDs is short"
    );
}

#[test]
fn lookup_down_without_ticket_is_store_unavailable() {
    let w = World::attach(&[]);
    w.lookup.down.set(true);
    w.set_sid("some-sid");
    assert_eq!(reason(&w.request(T0).0), Some(Reason::StoreUnavailable));
}

#[test]
fn no_lookup_configured_means_unknown_ids_are_invalid() {
    let w = World::new(config(&[]));
    w.set_sid("never-seen");
    let (d, c) = w.request(T0);
    assert_eq!(reason(&d), Some(Reason::InvalidSession));
    assert_eq!(c.kv_reads, 1);
}

#[test]
fn looked_up_sessions_are_revalidated_after_the_interval() {
    let mut w = World::attach(&[]);
    w.lookup = FakeLookup::with("s1", "bob");
    w.set_sid("s1");
    w.request(T0);
    w.jar.borrow_mut().remove(&w.cfg.ticket_cookie);
    w.request(T0 + 4 * MIN);
    assert_eq!(w.lookup.calls.get(), 1);
    w.jar.borrow_mut().remove(&w.cfg.ticket_cookie);
    let (d, c) = w.request(T0 + 5 * MIN);
    assert_eq!((source(&d), c.lookups), (Some(Source::Kv), 1));
    assert_eq!(w.record().unwrap().verified_at, T0 + 5 * MIN);
}

#[test]
fn revalidation_with_lookup_down_keeps_the_kv_answer() {
    let mut w = World::attach(&[]);
    w.lookup = FakeLookup::with("s1", "bob");
    w.set_sid("s1");
    w.request(T0);
    w.lookup.down.set(true);
    w.jar.borrow_mut().remove(&w.cfg.ticket_cookie);
    let (d, c) = w.request(T0 + 6 * MIN);
    assert_eq!((source(&d), c.lookups), (Some(Source::Kv), 1));
}

#[test]
fn revalidation_404_deletes_the_session() {
    let mut w = World::attach(&[]);
    w.lookup = FakeLookup::with("s1", "bob");
    w.set_sid("s1");
    w.request(T0);
    w.lookup.sessions.borrow_mut().clear();
    w.jar.borrow_mut().remove(&w.cfg.ticket_cookie);
    let (d, _) = w.request(T0 + 6 * MIN);
    assert_eq!(reason(&d), Some(Reason::InvalidSession));
    assert!(w.kv.keys().is_empty(), "{:?}", w.kv.keys());
    assert_eq!(
        w.sid().as_deref(),
        Some("s1"),
        "the site's cookie is the site's to clear"
    );
}

// ---- the Cookie header the origin gets --------------------------------------------

/// The `Cookie` header the origin would get for a GET of `path` with the
/// browser's cookies and a `theme=dark` of the site's.
fn cookie_to_origin(w: &World, now: Millis, path: &str) -> (Decision, Option<String>) {
    w.jar.borrow_mut().insert("theme".into(), "dark".into());
    let header = w.cookie_header();
    let head = Head {
        method: "GET",
        path,
        cookie: header.as_deref(),
        ..Head::default()
    };
    let d = admit(&w.gate(now), &head);
    w.jar.borrow_mut().remove("theme");
    w.store_cookies(&d.set_cookies);
    for op in &d.deferred {
        pollster::block_on(op.apply(&w.kv, None::<&MemoryStates>)).unwrap();
    }
    let sent = match &d.forward_cookie {
        CookieRewrite::Keep => header,
        CookieRewrite::Replace(rest) => Some(rest.clone()),
        CookieRewrite::Remove => None,
    };
    (d, sent)
}

#[test]
fn edge_mode_the_origin_never_gets_the_session_cookie() {
    let w = World::new(config(&[("PUBLIC_PATHS", "/login,/assets/*")]));
    w.login(T0, "alice");
    // protected paths, from the ticket and from KV; public paths; a CORS preflight
    let (d, sent) = cookie_to_origin(&w, T0 + SEC, "/dashboard");
    assert_eq!(source(&d), Some(Source::Ticket));
    assert_eq!(sent.as_deref(), Some("theme=dark"));
    let (_, sent) = cookie_to_origin(&w, T0 + SEC, "/assets/app.css");
    assert_eq!(sent.as_deref(), Some("theme=dark"));
    w.jar.borrow_mut().remove(&w.cfg.ticket_cookie);
    let (d, sent) = cookie_to_origin(&w, T0 + 2 * SEC, "/dashboard");
    assert_eq!(source(&d), Some(Source::Kv));
    assert_eq!(sent.as_deref(), Some("theme=dark"));
    // a session cookie the worker cannot vouch for is still not the site's
    w.set_sid("made-up");
    let (d, sent) = cookie_to_origin(&w, T0 + 3 * SEC, "/login");
    assert_eq!(d.verdict, Verdict::Bypass);
    assert_eq!(sent.as_deref(), Some("theme=dark"));
    // with only the worker's cookies, no Cookie header at all
    let w = World::new(config(&[]));
    w.login(T0, "bob");
    let (d, _) = w.request(T0 + SEC);
    assert_eq!(source(&d), Some(Source::Ticket));
    assert_eq!(d.forward_cookie, CookieRewrite::Remove);
}

#[test]
fn attach_mode_the_origin_keeps_its_own_session_cookie() {
    let w = World::attach(&[("PUBLIC_PATHS", "/login")]);
    w.lookup.add("site-id", "bob");
    w.set_sid("site-id");
    for (now, path, from) in [
        (T0, "/dashboard", Some(Source::Lookup)),
        (T0 + SEC, "/dashboard", Some(Source::Ticket)),
        (T0 + 2 * SEC, "/login", None),
    ] {
        let (d, sent) = cookie_to_origin(&w, now, path);
        assert_eq!(source(&d), from, "{path}");
        assert_eq!(sent.as_deref(), Some("sid=site-id; theme=dark"), "{path}");
    }
    w.jar.borrow_mut().remove(&w.cfg.ticket_cookie);
    let (d, sent) = cookie_to_origin(&w, T0 + 3 * SEC, "/dashboard");
    assert_eq!(source(&d), Some(Source::Kv));
    assert_eq!(sent.as_deref(), Some("sid=site-id; theme=dark"));
}

#[test]
fn both_modes_at_once_the_session_cookie_follows_whose_session_it_is() {
    // LOOKUP_URL set, and a session the worker made at a login signal
    let w = World::attach(&[("PUBLIC_PATHS", "/login,/")]);
    let sid = w.login(T0, "alice");
    let (d, sent) = cookie_to_origin(&w, T0 + SEC, "/dashboard");
    assert_eq!(source(&d), Some(Source::Ticket));
    assert_eq!(sent.as_deref(), Some("theme=dark"));
    // a public path: the genuine ticket bound to the session says it is the worker's
    let (d, sent) = cookie_to_origin(&w, T0 + SEC, "/");
    assert_eq!(d.verdict, Verdict::Bypass);
    assert_eq!(sent.as_deref(), Some("theme=dark"));
    // from KV (no ticket): the record says so
    w.jar.borrow_mut().remove(&w.cfg.ticket_cookie);
    let (d, sent) = cookie_to_origin(&w, T0 + 2 * SEC, "/dashboard");
    assert_eq!(source(&d), Some(Source::Kv));
    assert_eq!(sent.as_deref(), Some("theme=dark"));
    // a public path without a ticket cannot tell without a store read: it
    // counts as the site's cookie (the README says so)
    w.jar.borrow_mut().remove(&w.cfg.ticket_cookie);
    let (_, sent) = cookie_to_origin(&w, T0 + 3 * SEC, "/");
    assert_eq!(sent, Some(format!("sid={sid}; theme=dark")));
    // a ticket of another session, or a forged one, proves nothing
    let other = World::attach(&[]);
    other.login(T0 + 7, "mallory");
    let foreign = other.ticket_value().unwrap();
    w.jar
        .borrow_mut()
        .insert(w.cfg.ticket_cookie.clone(), foreign);
    let (_, sent) = cookie_to_origin(&w, T0 + 3 * SEC, "/");
    assert_eq!(sent, Some(format!("sid={sid}; theme=dark")));
    // and a site's session learned from the lookup keeps its cookie
    w.lookup.add("site-id", "bob");
    w.jar.borrow_mut().clear();
    w.set_sid("site-id");
    let (d, sent) = cookie_to_origin(&w, T0 + 4 * SEC, "/dashboard");
    assert_eq!(source(&d), Some(Source::Lookup));
    assert_eq!(sent.as_deref(), Some("sid=site-id; theme=dark"));
    let (_, sent) = cookie_to_origin(&w, T0 + 5 * SEC, "/");
    assert_eq!(sent.as_deref(), Some("sid=site-id; theme=dark"));
}

// ---- signals ----------------------------------------------------------------------

#[test]
fn login_replaces_the_previous_session() {
    let w = World::new(config(&[]));
    let first = w.login(T0, "alice");
    let second = w.login(T0 + SEC, "alice");
    assert_ne!(first, second);
    assert_eq!(
        w.kv.record(&SessionHash::of(&first)),
        None,
        "old session survived a new login"
    );
    assert!(w.kv.record(&SessionHash::of(&second)).is_some());
}

#[test]
fn attacker_planted_id_is_replaced_at_login() {
    let w = World::new(config(&[]));
    w.set_sid("planted-by-attacker");
    let sid = w.login(T0, "alice");
    assert_ne!(sid, "planted-by-attacker");
}

#[test]
fn logout_signal_deletes_and_clears() {
    let w = World::new(config(&[]));
    let sid = w.login(T0, "alice");
    let f = w.respond(
        T0 + SEC,
        Ok(Signals {
            logout: true,
            ..Signals::default()
        }),
        "/dashboard",
    );
    assert_eq!(f.event, Some("logout"));
    assert_eq!(w.kv.record(&SessionHash::of(&sid)), None);
    assert!(w.kv.keys().is_empty(), "{:?}", w.kv.keys());
    assert!(w.sid().is_none() && w.ticket_value().is_none());
}

#[test]
fn malformed_signal_is_502_and_creates_nothing() {
    let w = World::new(config(&[]));
    let f = w.respond(T0, Err(MalformedSignal("claims".into())), "/login");
    assert_eq!(f.replace.unwrap().status, 502);
    assert!(w.kv.keys().is_empty());
    assert!(w.sid().is_none());
}

#[test]
fn login_write_failure_is_503_and_sets_no_cookie() {
    let w = World::new(config(&[]));
    w.kv.down.set(true);
    let s = Signals {
        login: Some(("alice".into(), None)),
        ..Signals::default()
    };
    let f = w.respond(T0, Ok(s), "/login");
    assert_eq!(f.replace.unwrap().status, 503);
    assert!(w.sid().is_none());
}

#[test]
fn origin_clearing_its_cookie_ends_the_cached_session() {
    let mut w = World::attach(&[]);
    w.lookup = FakeLookup::with("s1", "bob");
    w.set_sid("s1");
    w.request(T0);
    assert!(w.record().is_some());
    let signals = signals::read(
        |_| None,
        &["sid=; Max-Age=0; Path=/".to_string()],
        "sid",
        T0 / 1000,
    );
    let f = w.respond(T0 + SEC, signals, "/logout");
    assert_eq!(f.event, Some("cookie_changed"));
    assert!(w.kv.keys().is_empty(), "{:?}", w.kv.keys());
    assert!(w.ticket_value().is_none());
}

#[test]
fn origin_replacing_its_cookie_ends_the_old_session() {
    let mut w = World::attach(&[]);
    w.lookup = FakeLookup::with("s1", "bob");
    w.set_sid("s1");
    w.request(T0);
    let signals = signals::read(|_| None, &["sid=s2; Path=/".to_string()], "sid", T0 / 1000);
    let f = w.respond(T0 + SEC, signals, "/login");
    assert_eq!(f.event, Some("cookie_changed"));
    assert_eq!(w.kv.record(&SessionHash::of("s1")), None);
    // the same value again is no change
    w.set_sid("s2");
    let signals = signals::read(|_| None, &["sid=s2; Path=/".to_string()], "sid", T0 / 1000);
    assert_eq!(w.respond(T0 + 2 * SEC, signals, "/x").event, None);
}

// ---- deny replies -----------------------------------------------------------------

fn nav<'a>(path: &'a str, query: Option<&'a str>) -> Head<'a> {
    Head {
        method: "GET",
        path,
        query,
        accept: Some("text/html,application/xhtml+xml"),
        ..Head::default()
    }
}

/// The reply to a request refused for `reason`, with these cookies.
fn deny_reply(cfg: &Config, reason: Reason, head: &Head<'_>, set_cookies: &[String]) -> Reply {
    Reply::denial(cfg, reason, head).with_cookies(set_cookies)
}

#[test]
fn browser_navigation_is_redirected_to_login_with_return_to() {
    let cfg = config(&[("LOGIN_URL", "/login")]);
    let r = deny_reply(
        &cfg,
        Reason::NoSession,
        &nav("/dash board", Some("a=1&b=2")),
        &[],
    );
    assert_eq!(r.status, 302);
    let location = &r.headers.iter().find(|(k, _)| k == "Location").unwrap().1;
    assert_eq!(location, "/login?return_to=%2Fdash%20board%3Fa%3D1%26b%3D2");
    assert!(r
        .headers
        .contains(&("X-Edge-Session-Reason".into(), "no_session".into())));
    let cfg = config(&[("LOGIN_URL", "https://id.example/login?app=1")]);
    let r = deny_reply(&cfg, Reason::IdleTimeout, &nav("/x", None), &[]);
    assert_eq!(
        r.headers[0].1,
        "https://id.example/login?app=1&return_to=%2Fx&reason=idle_timeout"
    );
}

#[test]
fn login_redirect_says_why_unless_there_was_no_session() {
    let cfg = config(&[("LOGIN_URL", "/login")]);
    let expired = deny_reply(&cfg, Reason::IdleTimeout, &nav("/x", None), &[]);
    assert_eq!(
        expired.headers[0].1,
        "/login?return_to=%2Fx&reason=idle_timeout"
    );
    let fresh = deny_reply(&cfg, Reason::NoSession, &nav("/x", None), &[]);
    assert_eq!(fresh.headers[0].1, "/login?return_to=%2Fx");
}

#[test]
fn return_to_never_leaves_the_site() {
    for (path, want) in [
        ("//evil.example/x", "/evil.example/x"),
        ("/\\evil.example", "/evil.example"),
        ("/\\/\\evil", "/evil"),
        ("/%2F%2fevil", "/evil"),
        ("/%5C%5cevil", "/evil"),
        ("/%2", "/%2"),
        ("/%09/evil.com", "/evil.com"),
        ("/\t/evil.com", "/evil.com"),
        ("/%0d%0A/%2f/evil.com", "/evil.com"),
        ("/%20%7F%00/evil.com", "/evil.com"),
        ("/%E2%80%8B", "/%E2%80%8B"),
        ("/ok", "/ok"),
        ("", "/"),
    ] {
        assert_eq!(return_to(path, None), want, "{path}");
    }
}

#[test]
fn api_requests_get_json_401_and_503() {
    let cfg = config(&[("LOGIN_URL", "/login")]);
    let api = Head {
        method: "GET",
        path: "/api/me",
        accept: Some("application/json"),
        ..Head::default()
    };
    let r = deny_reply(
        &cfg,
        Reason::InvalidSession,
        &api,
        &["sid=; Max-Age=0".into()],
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.body, r#"{"error":"invalid_session"}"#);
    assert!(r
        .headers
        .contains(&("Cache-Control".into(), "no-store".into())));
    assert!(r
        .headers
        .contains(&("Set-Cookie".into(), "sid=; Max-Age=0".into())));
    let r = deny_reply(&cfg, Reason::StoreUnavailable, &api, &[]);
    assert_eq!(r.status, 503);
    assert!(r.headers.iter().any(|(k, _)| k == "Retry-After"));
    // an outage is answered 503 even to a browser: the login page would not help
    let r = deny_reply(&cfg, Reason::StoreUnavailable, &nav("/x", None), &[]);
    assert_eq!(r.status, 503);
    assert!(r
        .headers
        .contains(&("X-Edge-Session-Reason".into(), "store_unavailable".into())));
    // a POST from a browser is not a navigation
    let post = Head {
        method: "POST",
        path: "/x",
        accept: Some("text/html"),
        ..Head::default()
    };
    assert_eq!(deny_reply(&cfg, Reason::NoSession, &post, &[]).status, 401);
}

// ---- control endpoints --------------------------------------------------------------

fn control(w: &World, method: &str, path: &str, auth: Option<&str>, body: &str) -> Reply {
    control_with(w, method, path, auth, Some(body))
}

/// A control request; `body` is `None` when it was over the limit.
fn control_with(
    w: &World,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> Reply {
    let header = w.cookie_header();
    let head = Head {
        method,
        path,
        cookie: header.as_deref(),
        authorization: auth,
        ..Head::default()
    };
    let route = Control::route(&w.cfg, &head).expect("a control path");
    let req = Incoming::new(&w.cfg, head);
    pollster::block_on(w.gate(T0 + SEC).control(route, &req, body))
}

#[test]
fn health_reports_version_or_the_bad_setting() {
    let w = World::new(config(&[]));
    let r = control(&w, "GET", "/.edge-session/health", None, "");
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            200,
            concat!(
                r#"{"ok":true,"session_data":"off","version":""#,
                env!("CARGO_PKG_VERSION"),
                r#""}"#
            )
        )
    );
    let err = ConfigError {
        setting: "SESSION_KEYS",
        problem: "required".into(),
    };
    let r = control::health(Err(&err), false);
    assert_eq!(r.status, 500);
    assert!(r.body.contains("SESSION_KEYS"));
}

/// `/.edge-session/revoke` called with `method`, `auth` and `body`.
fn revoke(w: &World, method: &str, auth: Option<&str>, body: &str) -> Reply {
    control(w, method, "/.edge-session/revoke", auth, body)
}

const ADMIN: Option<&str> = Some("Bearer admin-secret");

#[test]
fn revoke_needs_the_admin_token() {
    let status = |w: &World, method: &str, auth: Option<&str>, body: &str| {
        revoke(w, method, auth, body).status
    };
    let mut w = World::new(config(&[]));
    assert_eq!(status(&w, "POST", None, "{}"), 401);
    assert_eq!(status(&w, "POST", Some("Bearer wrong"), "{}"), 401);
    assert_eq!(status(&w, "GET", ADMIN, "{}"), 405);
    assert_eq!(status(&w, "POST", ADMIN, "nope"), 400);
    assert_eq!(
        status(&w, "POST", ADMIN, r#"{"session_id":"a","user":"b"}"#),
        400
    );
    // a body over the limit is never handed to the gate: None stands for it
    let too_large = control_with(&w, "POST", "/.edge-session/revoke", ADMIN, None);
    assert_eq!(too_large.status, 413);
    // the token is checked while routing, before any body is read
    let head = Head {
        method: "POST",
        path: "/.edge-session/revoke",
        authorization: Some("Bearer wrong"),
        ..Head::default()
    };
    let route = Control::route(&w.cfg, &head).unwrap();
    assert_eq!(route.body_limit(), None);
    assert!(matches!(route, Control::Refused(Reply { status: 401, .. })));
    let authorised = Head {
        authorization: ADMIN,
        ..head
    };
    assert_eq!(
        Control::route(&w.cfg, &authorised).unwrap().body_limit(),
        Some(control::MAX_BODY)
    );
    w.cfg.admin_token = None;
    assert_eq!(status(&w, "POST", ADMIN, "{}"), 404);
}

#[test]
fn revoke_by_session_id_and_by_user() {
    let w = World::new(config(&[]));
    seed(&w, "a1", edge_record("alice", T0, T0));
    seed(&w, "a2", edge_record("alice", T0, T0));
    seed(&w, "b1", edge_record("bob", T0, T0));
    seed(&w, "x1", edge_record("alice:x", T0, T0));
    let r = revoke(&w, "POST", ADMIN, r#"{"session_id":"b1"}"#);
    assert_eq!((r.status, r.body.as_str()), (200, r#"{"revoked":1}"#));
    let r = revoke(&w, "POST", ADMIN, r#"{"session_id":"b1"}"#);
    assert_eq!(r.body, r#"{"revoked":0}"#);
    let r = revoke(&w, "POST", ADMIN, r#"{"user":"alice"}"#);
    assert_eq!(r.body, r#"{"revoked":2}"#);
    assert_eq!(
        w.kv.keys().len(),
        2,
        "only alice:x remains: {:?}",
        w.kv.keys()
    );
    assert!(w.kv.record(&SessionHash::of("x1")).is_some());
}

#[test]
fn logout_endpoint_ends_the_session_and_redirects() {
    let w = World::new(config(&[("LOGIN_URL", "/login")]));
    let sid = w.login(T0, "alice");
    let r = control(&w, "POST", "/.edge-session/logout", None, "");
    assert_eq!(r.status, 302);
    assert!(r.headers.contains(&("Location".into(), "/login".into())));
    assert_eq!(
        r.headers.iter().filter(|(k, _)| k == "Set-Cookie").count(),
        2
    );
    assert_eq!(w.kv.record(&SessionHash::of(&sid)), None);
    assert!(w.kv.keys().is_empty());
}

#[test]
fn unknown_control_paths_are_404() {
    let w = World::new(config(&[]));
    assert_eq!(
        control(&w, "GET", "/.edge-session/nope", None, "").status,
        404
    );
}

#[test]
fn constant_time_eq_compares_exactly() {
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"ab"));
}

// ---- passive and strict paths, CSRF at the edge -----------------------------------

/// A request with the jar's cookies: `method` on `path`, with these fetch headers.
fn request_to(
    w: &World,
    now: Millis,
    method: &str,
    path: &str,
    sec_fetch_site: Option<&str>,
    origin: Option<&str>,
) -> (Decision, Counts) {
    let header = w.cookie_header();
    let head = Head {
        method,
        path,
        cookie: header.as_deref(),
        sec_fetch_site,
        origin,
        site: "https://app.example",
        ..Head::default()
    };
    let gate = w.gate(now);
    let d = admit(&gate, &head);
    if let Verdict::Deny { reply, .. } = &d.verdict {
        w.store_cookies(&reply_cookies(reply));
    } else {
        w.store_cookies(&d.set_cookies);
    }
    for op in &d.deferred {
        pollster::block_on(op.apply(&w.kv, w.use_states.then_some(&w.states))).unwrap();
    }
    (d, gate.counts())
}

#[test]
fn passive_paths_never_move_last_seen_so_polling_goes_idle() {
    let w = World::new(config(&[
        ("PASSIVE_PATHS", "/api/poll"),
        ("IDLE_TIMEOUT", "5m"),
    ]));
    w.login(T0, "alice");
    let writes = w.kv.writes.get();
    // a dashboard polls every 30 s for five minutes
    for i in 1..10 {
        let (d, _) = request_to(&w, T0 + i * 30 * SEC, "GET", "/api/poll", None, None);
        assert!(source(&d).is_some(), "poll {i} refused: {d:?}");
        assert!(d.deferred.is_empty(), "poll {i} wrote last-seen");
        let left = d.idle_left_secs(T0 + i * 30 * SEC).unwrap();
        assert_eq!(left, 300 - i * 30, "idle time left at poll {i}");
    }
    assert_eq!(w.kv.writes.get(), writes);
    assert_eq!(w.record().unwrap().last_seen, T0);
    let (d, _) = request_to(&w, T0 + 5 * MIN, "GET", "/api/poll", None, None);
    assert_eq!(reason(&d), Some(Reason::IdleTimeout));
}

#[test]
fn a_person_on_an_active_path_moves_the_idle_clock() {
    let w = World::new(config(&[("PASSIVE_PATHS", "/api/poll")]));
    w.login(T0, "alice");
    let (d, _) = request_to(&w, T0 + 2 * MIN, "GET", "/dashboard", None, None);
    assert_eq!(
        d.deferred.len(),
        1,
        "an active request after TOUCH_INTERVAL writes last-seen"
    );
    assert_eq!(d.idle_left_secs(T0 + 2 * MIN), Some(30 * 60));
}

#[test]
fn strict_paths_read_kv_every_time_and_never_run_on_a_stale_ticket() {
    let w = World::new(config(&[("STRICT_PATHS", "/admin/*")]));
    let sid = w.login(T0, "alice");
    let (d, c) = request_to(&w, T0 + SEC, "GET", "/admin/users", None, None);
    assert_eq!((source(&d), c.kv_reads), (Some(Source::Kv), 1));
    let (d, c) = request_to(&w, T0 + 2 * SEC, "GET", "/dashboard", None, None);
    assert_eq!((source(&d), c.kv_reads), (Some(Source::Ticket), 0));
    // revoked: the strict path knows at once, the ticket path only after TICKET_TTL
    w.kv.data
        .borrow_mut()
        .remove(&SessionHash::of(&sid).record_key());
    let (d, _) = request_to(&w, T0 + 3 * SEC, "GET", "/admin/users", None, None);
    assert_eq!(reason(&d), Some(Reason::InvalidSession));
    // an outage: no degraded allow on a strict path
    let w = World::new(config(&[("STRICT_PATHS", "/admin/*")]));
    w.login(T0, "alice");
    w.kv.down.set(true);
    let (d, _) = request_to(&w, T0 + 2 * MIN, "GET", "/admin/users", None, None);
    assert_eq!(reason(&d), Some(Reason::StoreUnavailable));
    let (d, _) = request_to(&w, T0 + 2 * MIN, "GET", "/dashboard", None, None);
    assert_eq!(source(&d), Some(Source::Stale));
}

#[test]
fn looked_up_sessions_are_asked_again_after_ticket_ttl_on_strict_paths() {
    let w = World::attach(&[("STRICT_PATHS", "/admin/*")]);
    w.lookup.add("s1", "bob");
    w.set_sid("s1");
    let (d, _) = request_to(&w, T0, "GET", "/dashboard", None, None);
    assert_eq!(source(&d), Some(Source::Lookup));
    let calls = w.lookup.calls.get();
    let (d, _) = request_to(&w, T0 + 2 * MIN, "GET", "/admin/x", None, None);
    assert_eq!(source(&d), Some(Source::Kv));
    assert_eq!(
        w.lookup.calls.get(),
        calls + 1,
        "the strict path did not revalidate"
    );
}

#[test]
fn cross_site_unsafe_requests_with_the_session_cookie_are_refused() {
    let w = World::new(config(&[("TRUSTED_ORIGINS", "https://partner.example")]));
    w.login(T0, "alice");
    let post = |sfs, origin| request_to(&w, T0 + SEC, "POST", "/transfer", sfs, origin).0;
    let d = post(Some("cross-site"), Some("https://evil.example"));
    assert_eq!(reason(&d), Some(Reason::CrossSiteRequest));
    let Verdict::Deny { reply, .. } = &d.verdict else {
        panic!()
    };
    assert_eq!(reply.status, 403);
    assert!(
        reply_cookies(reply).is_empty(),
        "a CSRF attempt must not log the user out"
    );
    assert_eq!(
        reason(&post(None, Some("https://evil.example"))),
        Some(Reason::CrossSiteRequest)
    );
    assert_eq!(
        source(&post(Some("same-origin"), Some("https://app.example"))),
        Some(Source::Ticket)
    );
    assert_eq!(
        source(&post(None, Some("https://app.example"))),
        Some(Source::Ticket)
    );
    assert_eq!(source(&post(None, None)), Some(Source::Ticket));
    assert_eq!(
        source(&post(Some("cross-site"), Some("https://partner.example"))),
        Some(Source::Ticket)
    );
    // safe methods and requests without the session cookie are never affected
    let get = request_to(
        &w,
        T0 + SEC,
        "GET",
        "/x",
        Some("cross-site"),
        Some("https://evil.example"),
    )
    .0;
    assert_eq!(source(&get), Some(Source::Ticket));
    w.jar.borrow_mut().clear();
    let anonymous = request_to(&w, T0 + SEC, "POST", "/x", Some("cross-site"), None).0;
    assert_eq!(reason(&anonymous), Some(Reason::NoSession));
    // and the setting turns it off
    let off = World::new(config(&[("CSRF_PROTECTION", "off")]));
    off.login(T0, "alice");
    let d = request_to(
        &off,
        T0 + SEC,
        "POST",
        "/x",
        Some("cross-site"),
        Some("https://evil.example"),
    )
    .0;
    assert_eq!(source(&d), Some(Source::Ticket));
}

// ---- sessions a user can see and end --------------------------------------------

/// A control request from the jar's browser, same-origin.
fn user_control(w: &World, method: &str, path: &str, body: &str) -> (Reply, serde_json::Value) {
    let header = w.cookie_header();
    let head = Head {
        method,
        path,
        cookie: header.as_deref(),
        sec_fetch_site: Some("same-origin"),
        site: "https://app.example",
        ..Head::default()
    };
    let route = Control::route(&w.cfg, &head).unwrap();
    let req = Incoming::new(&w.cfg, head);
    let reply = pollster::block_on(w.gate(T0 + 10 * SEC).control(route, &req, Some(body)));
    let json = serde_json::from_str(&reply.body).unwrap_or(serde_json::Value::Null);
    (reply, json)
}

#[test]
fn a_user_lists_their_sessions_and_ends_one_by_handle() {
    let w = World::new(config(&[]));
    // alice on two devices, bob on one
    let laptop = w.login(T0, "alice");
    let laptop_jar = w.jar.borrow().clone();
    w.jar.borrow_mut().clear();
    let phone = w.login(T0 + SEC, "alice");
    let phone_jar = w.jar.borrow().clone();
    w.jar.borrow_mut().clear();
    w.login(T0 + 2 * SEC, "bob");
    let (_, bobs) = user_control(&w, "GET", "/.edge-session/sessions", "");
    let bobs_handle = bobs["sessions"][0]["handle"].as_str().unwrap().to_string();
    *w.jar.borrow_mut() = phone_jar;
    // alice cannot end bob's session with his handle
    let (r, _) = user_control(
        &w,
        "POST",
        "/.edge-session/sessions/end",
        &format!(r#"{{"handle":"{bobs_handle}"}}"#),
    );
    assert_eq!(r.status, 404);

    let (r, list) = user_control(&w, "GET", "/.edge-session/sessions", "");
    assert_eq!(r.status, 200);
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{list}");
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    for s in sessions {
        let handle = s["handle"].as_str().unwrap();
        for secret in [
            &laptop,
            &phone,
            &SessionHash::of(&laptop).0,
            &SessionHash::of(&phone).0,
        ] {
            assert!(
                !handle.contains(secret.as_str()) && !list.to_string().contains(secret.as_str())
            );
        }
    }
    let other = sessions.iter().find(|s| s["current"] == false).unwrap();
    // another user's handle, or a made-up one, ends nothing
    let (r, _) = user_control(
        &w,
        "POST",
        "/.edge-session/sessions/end",
        r#"{"handle":"nope"}"#,
    );
    assert_eq!(r.status, 404);
    let handle = other["handle"].as_str().unwrap();
    let (r, body) = user_control(
        &w,
        "POST",
        "/.edge-session/sessions/end",
        &format!(r#"{{"handle":"{handle}"}}"#),
    );
    assert_eq!((r.status, body["ended"].as_u64()), (200, Some(1)));
    assert!(w.kv.record(&SessionHash::of(&laptop)).is_none());
    assert!(w.kv.record(&SessionHash::of(&phone)).is_some());
    // the laptop is signed out
    *w.jar.borrow_mut() = laptop_jar;
    let (r, _) = user_control(&w, "GET", "/.edge-session/sessions", "");
    assert_eq!(
        r.status, 401,
        "the ended laptop session is no longer signed in"
    );
}

#[test]
fn logout_everywhere_ends_all_or_all_but_the_current_one() {
    let w = World::new(config(&[]));
    for i in 0..3 {
        w.jar.borrow_mut().clear();
        w.login(T0 + i * SEC, "alice");
    }
    let current = w.sid().unwrap();
    let (r, body) = user_control(
        &w,
        "POST",
        "/.edge-session/logout-everywhere",
        r#"{"keep_current":true}"#,
    );
    assert_eq!((r.status, body["ended"].as_u64()), (200, Some(2)));
    assert!(reply_cookies(&r).is_empty());
    assert!(w.kv.record(&SessionHash::of(&current)).is_some());
    let (r, body) = user_control(&w, "POST", "/.edge-session/logout-everywhere", "");
    assert_eq!((r.status, body["ended"].as_u64()), (200, Some(1)));
    assert_eq!(reply_cookies(&r).len(), 2);
    assert!(w.kv.keys().is_empty(), "{:?}", w.kv.keys());
}

#[test]
fn session_endpoints_refuse_cross_site_callers_and_strangers() {
    let w = World::new(config(&[]));
    w.login(T0, "alice");
    let header = w.cookie_header();
    for (method, path) in [
        ("POST", "/.edge-session/logout-everywhere"),
        ("POST", "/.edge-session/sessions/end"),
        ("GET", "/.edge-session/sessions"),
        ("POST", "/.edge-session/logout"),
    ] {
        let head = Head {
            method,
            path,
            cookie: header.as_deref(),
            sec_fetch_site: Some("cross-site"),
            origin: Some("https://evil.example"),
            site: "https://app.example",
            ..Head::default()
        };
        match Control::route(&w.cfg, &head).unwrap() {
            Control::Refused(r) => assert_eq!(r.status, 403, "{path}"),
            other => panic!("{path}: {other:?}"),
        }
    }
    w.jar.borrow_mut().clear();
    let (r, _) = user_control(&w, "GET", "/.edge-session/sessions", "");
    assert_eq!(r.status, 401);
}

// ---- ended sessions stay ended in attach mode -----------------------------------

#[test]
fn a_revoked_looked_up_session_is_not_learned_again_from_the_lookup() {
    let w = World::attach(&[]);
    w.lookup.add("s1", "bob");
    w.set_sid("s1");
    assert_eq!(source(&w.request(T0).0), Some(Source::Lookup));
    let r = revoke(&w, "POST", ADMIN, r#"{"session_id":"s1"}"#);
    assert_eq!(r.body, r#"{"revoked":1}"#);
    assert!(matches!(
        w.kv.stored(&SessionHash::of("s1")),
        Some(crate::session::Stored::Ended(_))
    ));
    w.jar.borrow_mut().remove(&w.cfg.ticket_cookie);
    let calls = w.lookup.calls.get();
    let (d, _) = w.request(T0 + 2 * SEC);
    assert_eq!(reason(&d), Some(Reason::InvalidSession));
    assert_eq!(
        w.lookup.calls.get(),
        calls,
        "the lookup was asked about a revoked session"
    );
}

#[test]
fn an_idle_looked_up_session_stays_ended_even_if_the_origin_reports_no_times() {
    let w = World::attach(&[("IDLE_TIMEOUT", "5m")]);
    w.lookup.add("s1", "bob");
    w.set_sid("s1");
    assert_eq!(source(&w.request(T0).0), Some(Source::Lookup));
    let (d, _) = w.request(T0 + 6 * MIN);
    assert_eq!(reason(&d), Some(Reason::IdleTimeout));
    // the browser kept the cookie (or an attacker did): still ended, not re-learned
    w.set_sid("s1");
    let calls = w.lookup.calls.get();
    let (d, _) = w.request(T0 + 7 * MIN);
    assert_eq!(reason(&d), Some(Reason::IdleTimeout));
    assert_eq!(w.lookup.calls.get(), calls);
}

#[test]
fn without_a_lookup_ended_sessions_are_simply_deleted() {
    let w = World::new(config(&[]));
    let sid = w.login(T0, "alice");
    let r = revoke(&w, "POST", ADMIN, &format!(r#"{{"session_id":"{sid}"}}"#));
    assert_eq!(r.body, r#"{"revoked":1}"#);
    assert!(w.kv.keys().is_empty(), "{:?}", w.kv.keys());
}

#[test]
fn a_ticket_dated_ahead_of_the_clock_is_not_trusted() {
    let w = World::new(config(&[]));
    let sid = w.login(T0, "alice");
    let hash = SessionHash::of(&sid);
    // what only someone holding SESSION_KEYS could sign: a year ahead
    let mut record = w.record().unwrap();
    record.last_seen = T0 + 365 * 24 * 60 * MIN;
    let t = Ticket::for_record(&hash, &record, T0 + 365 * 24 * 60 * MIN);
    let forged = ticket::seal(&t, &w.cfg.keys[0], &w.cfg.ticket_cookie).unwrap();
    w.jar
        .borrow_mut()
        .insert(w.cfg.ticket_cookie.clone(), forged);
    w.kv.data.borrow_mut().clear();
    let (d, _) = w.request(T0 + SEC);
    assert_eq!(reason(&d), Some(Reason::InvalidSession));
    assert_eq!(d.ticket_problem, Some(TicketProblem::FromTheFuture));
}

// ---- session data ------------------------------------------------------------

/// A world with session data on (the `SESSION_STATE` objects bound).
fn data_world(extra: &[(&str, &str)]) -> World {
    let mut all = vec![("PUBLIC_PATHS", "/login")];
    all.extend_from_slice(extra);
    let mut w = World::new(config(&all));
    w.use_states = true;
    w
}

/// What the origin answers with, in signals.
#[derive(Default)]
struct Answer<'a> {
    login: Option<&'a str>,
    logout: bool,
    patch: Option<&'a str>,
}

/// One whole exchange: the gate's decision, the origin's answer and what the
/// worker does with it (cookies kept, every deferred write run), as the edge does.
fn exchange(w: &World, now: Millis, path: &str, answer: Answer<'_>) -> (Decision, Finish, Counts) {
    let signals = match answer.patch.map(Patch::parse) {
        Some(Err(e)) => Err(MalformedSignal(e)),
        patch => Ok(Signals {
            login: answer.login.map(|u| (u.to_string(), None)),
            logout: answer.logout,
            data: patch.map(Result::unwrap),
            ..Signals::default()
        }),
    };
    let (d, f, counts, writes) = answered(w, now, "POST", path, signals);
    for op in &writes {
        pollster::block_on(op.apply(&w.kv, w.use_states.then_some(&w.states))).unwrap();
    }
    (d, f, counts)
}

/// One request with the jar's cookies whose answer carries `signals`, as the
/// edge handles it: the decision, what the worker does with the answer (its
/// cookies kept in the jar: the reply's when it replaced the answer), the
/// store calls, and the writes to run after the response (not yet run).
fn answered(
    w: &World,
    now: Millis,
    method: &str,
    path: &str,
    signals: Result<Signals, MalformedSignal>,
) -> (Decision, Finish, Counts, Vec<StoreOp>) {
    let header = w.cookie_header();
    let head = Head {
        method,
        path,
        cookie: header.as_deref(),
        site: "https://app.example",
        ..Head::default()
    };
    let gate = w.gate(now);
    let d = admit(&gate, &head);
    let req = Incoming::new(&w.cfg, head);
    let f = if let Verdict::Deny { reply, .. } = &d.verdict {
        w.store_cookies(&reply_cookies(reply));
        Finish::default()
    } else {
        let f = pollster::block_on(gate.finish(&req, &d, signals, || Some(format!("id-{now}"))));
        match &f.replace {
            Some(reply) => w.store_cookies(&reply_cookies(reply)),
            None => w.store_cookies(&f.set_cookies),
        }
        f
    };
    let mut writes = d.deferred.clone();
    store::merge(&mut writes, f.deferred.clone());
    (d, f, gate.counts(), writes)
}

/// A login signal for `user` on `/login` whose response also changes the data by `patch`.
fn login_with_data(w: &World, now: Millis, user: &str, patch: &str) -> Finish {
    let answer = Answer {
        login: Some(user),
        patch: Some(patch),
        ..Answer::default()
    };
    exchange(w, now, "/login", answer).1
}

/// A request to a protected path whose response changes the data by `patch`.
fn send_patch(w: &World, now: Millis, patch: &str) -> Finish {
    let answer = Answer {
        patch: Some(patch),
        ..Answer::default()
    };
    exchange(w, now, "/x", answer).1
}

fn data_of(d: &Decision) -> DataView {
    d.identity().map(|i| i.data.clone()).unwrap_or_default()
}

fn present(version: u64, json: &str) -> DataView {
    DataView::Present {
        version,
        json: json.into(),
    }
}

fn status_of(f: &Finish) -> Option<u16> {
    f.replace.as_ref().map(|r| r.status)
}

#[test]
fn a_login_with_data_starts_the_session_with_it() {
    let w = data_world(&[]);
    let f = login_with_data(&w, T0, "alice", r#"{"cart":[1]}"#);
    assert_eq!((f.event, status_of(&f)), (Some("login"), None));
    let hash = SessionHash::of(&w.sid().unwrap());
    assert_eq!(w.states.state(&hash).version, 1);
    assert_eq!(
        w.record().unwrap().data_version,
        1,
        "KV knows there is data"
    );
    // the next request reads it once (the isolate that applied a change does not
    // keep its result), then the isolate holds it: no store read at all
    let (d, c) = w.request(T0 + SEC);
    assert_eq!(
        (data_of(&d), c.state_calls, c.kv_reads),
        (present(1, r#"{"cart":[1]}"#), 1, 0)
    );
    let (d, c) = w.request(T0 + 2 * SEC);
    assert_eq!(
        (data_of(&d), c.state_calls, c.kv_reads),
        (present(1, r#"{"cart":[1]}"#), 0, 0)
    );
    // another isolate reads it once, then holds it
    *w.memory.borrow_mut() = IsolateMemory::default();
    let (_, c) = w.request(T0 + 3 * SEC);
    assert_eq!(c.state_calls, 1);
    let (_, c) = w.request(T0 + 4 * SEC);
    assert_eq!(c.state_calls, 0);
    assert_eq!(w.states.reads.get(), 2);
    // and trusts what it read for TICKET_TTL, then reads again
    let (_, c) = w.request(T0 + 3 * SEC + w.cfg.ticket_ttl);
    assert_eq!(c.state_calls, 1);
}

#[test]
fn a_change_applied_elsewhere_is_not_hidden_by_an_older_ticket() {
    // Two requests of one browser in flight together, each changing a key, answered
    // in the other order: the browser keeps the ticket of the older version.
    let w = data_world(&[]);
    w.login(T0, "alice");
    send_patch(&w, T0 + SEC, r#"{"a":1}"#);
    let older = w.ticket_value().unwrap();
    // the other change is applied by another isolate
    let first_isolate = std::mem::take(&mut *w.memory.borrow_mut());
    send_patch(&w, T0 + SEC, r#"{"b":2}"#);
    *w.memory.borrow_mut() = first_isolate;
    let ticket = w.cfg.ticket_cookie.clone();
    w.jar.borrow_mut().insert(ticket, older);
    // the first isolate does not answer from the result of its own change
    let (d, _) = w.request(T0 + 2 * SEC);
    assert_eq!(data_of(&d), present(2, r#"{"a":1,"b":2}"#));
}

#[test]
fn a_session_without_data_costs_no_state_call() {
    let w = data_world(&[]);
    w.login(T0, "alice");
    for (i, now) in [T0 + SEC, T0 + 2 * MIN, T0 + 3 * MIN]
        .into_iter()
        .enumerate()
    {
        let (d, c) = w.request(now);
        assert_eq!(
            (data_of(&d), c.state_calls),
            (DataView::None, 0),
            "request {i}"
        );
    }
    assert_eq!((w.states.reads.get(), w.states.writes.get()), (0, 0));
}

#[test]
fn a_change_moves_the_version_and_the_ticket_names_it() {
    let w = data_world(&[]);
    w.login(T0, "alice");
    let before = ticket::open(
        &w.ticket_value().unwrap(),
        &w.cfg.keys,
        &w.cfg.ticket_cookie,
    )
    .unwrap();
    let (d, f, _) = exchange(
        &w,
        T0 + SEC,
        "/cart",
        Answer {
            patch: Some(r#"{"cart":[1],"flash":"Saved"}"#),
            ..Answer::default()
        },
    );
    assert_eq!(
        (source(&d), f.event),
        (Some(Source::Ticket), Some("data_changed"))
    );
    let after = ticket::open(
        &w.ticket_value().unwrap(),
        &w.cfg.keys,
        &w.cfg.ticket_cookie,
    )
    .unwrap();
    assert_eq!(after.data_version, 1);
    // a ticket re-issued on the ticket path keeps the time KV last vouched
    assert_eq!(after.verified_at, before.verified_at);
    send_patch(&w, T0 + 2 * SEC, r#"{"flash":null}"#);
    let (d, _) = w.request(T0 + 3 * SEC);
    assert_eq!(data_of(&d), present(2, r#"{"cart":[1]}"#));
    // an empty patch changes nothing, a patch that empties the object removes the data
    exchange(
        &w,
        T0 + 4 * SEC,
        "/x",
        Answer {
            patch: Some("{}"),
            ..Answer::default()
        },
    );
    send_patch(&w, T0 + 5 * SEC, r#"{"cart":null}"#);
    let (d, _) = w.request(T0 + 6 * SEC);
    assert_eq!(data_of(&d), DataView::None);
    let hash = SessionHash::of(&w.sid().unwrap());
    assert_eq!(w.states.state(&hash).version, 3);
}

#[test]
fn refused_changes_are_502_and_apply_nothing() {
    let w = data_world(&[("SESSION_DATA_LIMIT", "64")]);
    w.login(T0, "alice");
    send_patch(&w, T0 + SEC, r#"{"a":1}"#);
    let big = format!(r#"{{"b":"{}"}}"#, "y".repeat(80));
    for patch in [big.as_str(), "[1]", r#"{"a":2,"a":3}"#] {
        let f = send_patch(&w, T0 + 2 * SEC, patch);
        assert_eq!(
            (status_of(&f), f.event),
            (Some(502), Some("bad_signal")),
            "{patch}"
        );
    }
    // over the limit only with the current data: refused by the object
    let near = format!(r#"{{"b":"{}"}}"#, "y".repeat(51));
    let f = send_patch(&w, T0 + 3 * SEC, &near);
    assert_eq!(status_of(&f), Some(502));
    assert!(f.error.unwrap().contains("SESSION_DATA_LIMIT is 64"));
    let (d, _) = w.request(T0 + 4 * SEC);
    assert_eq!(data_of(&d), present(1, r#"{"a":1}"#));
}

#[test]
fn without_the_binding_a_change_is_502_naming_it() {
    let w = World::new(config(&[("PUBLIC_PATHS", "/login")]));
    w.login(T0, "alice");
    let f = send_patch(&w, T0 + SEC, r#"{"a":1}"#);
    assert_eq!(status_of(&f), Some(502));
    assert!(f.error.unwrap().contains("SESSION_STATE"));
    // and a login that carries data creates no session
    w.jar.borrow_mut().clear();
    let f = login_with_data(&w, T0 + SEC, "bob", r#"{"a":1}"#);
    assert_eq!((status_of(&f), w.sid()), (Some(502), None));
}

#[test]
fn a_change_that_cannot_be_stored_is_503_never_a_silent_loss() {
    let w = data_world(&[]);
    w.login(T0, "alice");
    w.states.writes_down.set(true);
    let f = send_patch(&w, T0 + SEC, r#"{"a":1}"#);
    assert_eq!(
        (status_of(&f), f.event),
        (Some(503), Some("data_write_failed"))
    );
    // a login whose first data cannot be stored creates no session
    w.jar.borrow_mut().clear();
    let f = login_with_data(&w, T0 + SEC, "bob", r#"{"a":1}"#);
    assert_eq!((status_of(&f), w.sid()), (Some(503), None));
}

#[test]
fn data_that_cannot_be_read_is_unavailable_never_empty() {
    let w = data_world(&[("STRICT_PATHS", "/admin/*")]);
    w.login(T0, "alice");
    send_patch(&w, T0 + SEC, r#"{"a":1}"#);
    *w.memory.borrow_mut() = IsolateMemory::default();
    w.states.down.set(true);
    let (d, _) = w.request(T0 + 2 * SEC);
    assert_eq!(
        (source(&d), data_of(&d)),
        (Some(Source::Ticket), DataView::Unavailable)
    );
    let headers = d.identity().unwrap().headers();
    assert!(headers.contains(&(data::STATUS, "unavailable".to_string())));
    assert!(!headers.iter().any(|(k, _)| *k == data::DATA));
    // a strict path is refused, data or not
    let (d, _) = request_to(&w, T0 + 3 * SEC, "GET", "/admin/x", None, None);
    assert_eq!(reason(&d), Some(Reason::StoreUnavailable));
}

#[test]
fn kv_failing_with_data_present_still_reads_the_data() {
    let w = data_world(&[]);
    w.login(T0, "alice");
    send_patch(&w, T0 + SEC, r#"{"a":1}"#);
    *w.memory.borrow_mut() = IsolateMemory::default();
    w.kv.down.set(true);
    let (d, _) = w.request(T0 + 2 * MIN);
    assert_eq!(
        (source(&d), data_of(&d)),
        (Some(Source::Stale), present(1, r#"{"a":1}"#))
    );
}

#[test]
fn strict_paths_know_at_once_that_a_session_ended_while_kv_still_has_it() {
    let w = data_world(&[("STRICT_PATHS", "/admin/*")]);
    let sid = w.login(T0, "alice");
    let (d, c) = request_to(&w, T0 + SEC, "GET", "/admin/x", None, None);
    assert_eq!(
        (source(&d), c.kv_reads, c.state_calls),
        (Some(Source::Kv), 1, 1)
    );
    // revoked in another location: its object knows, KV here does not yet
    let hash = SessionHash::of(&sid);
    let end = StateRequest::end(T0 + 8 * 60 * MIN);
    pollster::block_on(w.states.call(&hash, &end)).unwrap();
    assert!(w.record().is_some());
    let (d, _) = request_to(&w, T0 + 2 * SEC, "GET", "/admin/x", None, None);
    assert_eq!(reason(&d), Some(Reason::InvalidSession));
    assert!(w.record().is_none(), "KV here is told too");
}

#[test]
fn every_end_of_a_session_ends_its_data() {
    let w = data_world(&[]);
    // logout (a change sent with it is ignored)
    let sid = w.login(T0, "alice");
    send_patch(&w, T0 + SEC, r#"{"a":1}"#);
    let (_, f, _) = exchange(
        &w,
        T0 + 2 * SEC,
        "/logout",
        Answer {
            logout: true,
            patch: Some(r#"{"b":1}"#),
            ..Answer::default()
        },
    );
    assert_eq!(f.event, Some("logout"));
    let s = w.states.state(&SessionHash::of(&sid));
    assert!(s.ended && s.data.is_none());
    // a login on top of a session ends the old one; the new one starts empty
    let old = w.login(T0 + 3 * SEC, "alice");
    send_patch(&w, T0 + 4 * SEC, r#"{"a":1}"#);
    let new = w.login(T0 + 5 * SEC, "alice");
    assert!(w.states.state(&SessionHash::of(&old)).ended);
    assert_eq!(w.states.state(&SessionHash::of(&new)), DataState::default());
    let (d, _) = w.request(T0 + 6 * SEC);
    assert_eq!(data_of(&d), DataView::None);
    // the idle timeout
    send_patch(&w, T0 + 7 * SEC, r#"{"a":1}"#);
    let (d, _) = w.request(T0 + 7 * SEC + w.cfg.idle_timeout);
    assert_eq!(reason(&d), Some(Reason::IdleTimeout));
    assert!(w.states.state(&SessionHash::of(&new)).ended);
}

#[test]
fn a_change_on_a_public_path_needs_a_valid_session() {
    let w = data_world(&[("PUBLIC_PATHS", "/login,/api/public")]);
    let (_, f, _) = exchange(
        &w,
        T0,
        "/api/public",
        Answer {
            patch: Some(r#"{"a":1}"#),
            ..Answer::default()
        },
    );
    assert_eq!(status_of(&f), Some(502));
    let sid = w.login(T0, "alice");
    let (d, f, _) = exchange(
        &w,
        T0 + SEC,
        "/api/public",
        Answer {
            patch: Some(r#"{"a":1}"#),
            ..Answer::default()
        },
    );
    assert_eq!(
        (&d.verdict, f.event),
        (&Verdict::Bypass, Some("data_changed"))
    );
    assert_eq!(w.states.state(&SessionHash::of(&sid)).version, 1);
    let (d, _) = w.request(T0 + 2 * SEC);
    assert_eq!(data_of(&d), present(1, r#"{"a":1}"#));
}

#[test]
fn a_browser_reads_its_own_write_where_kv_lags() {
    let w = data_world(&[]);
    w.login(T0, "alice");
    send_patch(&w, T0 + SEC, r#"{"a":1}"#);
    // elsewhere: this isolate held version 1, and the browser then changed it twice more
    let hash = SessionHash::of(&w.sid().unwrap());
    send_patch(&w, T0 + 2 * SEC, r#"{"a":2}"#);
    send_patch(&w, T0 + 3 * SEC, r#"{"a":3}"#);
    *w.memory.borrow_mut() = IsolateMemory::default();
    w.memory.borrow_mut().data.put(
        &hash.0,
        &DataState {
            version: 1,
            data: Some(r#"{"a":1}"#.into()),
            ..DataState::default()
        },
        1,
        T0 + 2 * MIN - SEC,
    );
    // KV's record still says version 1 (one write per second per key, propagation)
    let (d, c) = w.request(T0 + 2 * MIN);
    assert_eq!(source(&d), Some(Source::Kv));
    assert_eq!((data_of(&d), c.state_calls), (present(3, r#"{"a":3}"#), 1));
    assert_eq!(
        w.record().unwrap().data_version,
        3,
        "the touch carries the version the ticket named"
    );
}

#[test]
fn a_request_without_a_ticket_learns_from_kv_that_there_is_data() {
    let w = data_world(&[]);
    w.login(T0, "alice");
    send_patch(&w, T0 + SEC, r#"{"a":1}"#);
    assert_eq!(
        w.record().unwrap().data_version,
        1,
        "marked in KV after the first change"
    );
    // the mark keeps the record's own expiration (it follows KV's last-seen, not the ticket's)
    let record = w.record().unwrap();
    let key = SessionHash::of(&w.sid().unwrap()).record_key();
    assert_eq!(w.kv.ttl(&key), Some(record.kv_ttl_secs(&w.cfg, T0 + SEC)));
    let ticket = w.cfg.ticket_cookie.clone();
    w.jar.borrow_mut().remove(&ticket);
    *w.memory.borrow_mut() = IsolateMemory::default();
    let (d, _) = w.request(T0 + 2 * SEC);
    assert_eq!(data_of(&d), present(1, r#"{"a":1}"#));
}

#[test]
fn the_assertion_cache_tells_data_versions_apart() {
    let w = data_world(&[]);
    w.login(T0, "alice");
    send_patch(&w, T0 + SEC, r#"{"a":1}"#);
    let (one, _) = w.request(T0 + 2 * SEC);
    send_patch(&w, T0 + 3 * SEC, r#"{"a":2}"#);
    let (two, _) = w.request(T0 + 4 * SEC);
    assert_ne!(one.identity(), two.identity());
}

#[test]
fn attach_mode_a_change_sent_with_a_new_session_cookie_is_its_first_data() {
    let mut w = World::attach(&[("PUBLIC_PATHS", "/login")]);
    w.use_states = true;
    // a visitor without a session signs in: the site sets its cookie and the first data
    let head = Head {
        method: "POST",
        path: "/login",
        site: "https://app.example",
        ..Head::default()
    };
    let gate = w.gate(T0);
    let d = admit(&gate, &head);
    let req = Incoming::new(&w.cfg, head);
    let signals = Signals {
        session_cookie: Some(CookieChange::Set("site-sid".into())),
        data: Some(Patch::parse(r#"{"welcome":true}"#).unwrap()),
        ..Signals::default()
    };
    let f = pollster::block_on(gate.finish(&req, &d, Ok(signals), || None));
    assert_eq!((status_of(&f), f.event), (None, None));
    assert_eq!(w.states.state(&SessionHash::of("site-sid")).version, 1);
    // the next request is learned from the lookup and carries that data
    w.lookup.add("site-sid", "bob");
    w.set_sid("site-sid");
    let (d, _) = w.request(T0 + SEC);
    assert_eq!(source(&d), Some(Source::Lookup));
    assert_eq!(data_of(&d), present(1, r#"{"welcome":true}"#));
    // a change sent as the site clears its cookie goes with the session
    let signals = Signals {
        session_cookie: Some(CookieChange::Cleared),
        data: Some(Patch::parse(r#"{"bye":true}"#).unwrap()),
        ..Signals::default()
    };
    let header = w.cookie_header();
    let gate = w.gate(T0 + 2 * SEC);
    let d = admit(&gate, &dashboard(header.as_deref()));
    let req = Incoming::new(&w.cfg, dashboard(header.as_deref()));
    let f = pollster::block_on(gate.finish(&req, &d, Ok(signals), || None));
    assert_eq!(f.event, Some("cookie_changed"));
    for op in &f.deferred {
        pollster::block_on(op.apply(&w.kv, Some(&w.states))).unwrap();
    }
    let s = w.states.state(&SessionHash::of("site-sid"));
    assert!(s.ended && s.data.is_none());
}

#[test]
fn revalidation_keeps_the_data_version_kv_knows() {
    let mut w = World::attach(&[]);
    w.use_states = true;
    w.lookup.add("s1", "bob");
    w.set_sid("s1");
    let (d, _) = w.request(T0);
    assert_eq!(source(&d), Some(Source::Lookup));
    send_patch(&w, T0 + SEC, r#"{"a":1}"#);
    assert_eq!(w.record().unwrap().data_version, 1);
    // past REVALIDATE_AFTER: the lookup is asked again, and KV's record keeps its version
    let (d, _) = w.request(T0 + 6 * MIN);
    assert_eq!(source(&d), Some(Source::Kv));
    assert_eq!(w.lookup.calls.get(), 2);
    assert_eq!(w.record().unwrap().data_version, 1);
    assert_eq!(data_of(&d), present(1, r#"{"a":1}"#));
}

#[test]
fn a_logout_with_a_change_happens_even_without_the_binding() {
    let w = World::new(config(&[("PUBLIC_PATHS", "/login")]));
    let sid = w.login(T0, "alice");
    let logout = Answer {
        logout: true,
        patch: Some(r#"{"a":1}"#),
        ..Answer::default()
    };
    let (_, f, _) = exchange(&w, T0 + SEC, "/logout", logout);
    assert_eq!((status_of(&f), f.event), (None, Some("logout")));
    assert!(w.kv.record(&SessionHash::of(&sid)).is_none());
}

#[path = "data_path_tests.rs"]
mod data_path;

#[path = "guest_tests.rs"]
mod guest;

// ---- decided now: the synchronous path ---------------------------------------------------

/// Steps 3 to 10 in one poll over stores that never answer: the decision
/// [`Gate::admit`] makes when the request needs no store (a fresh ticket whose
/// data, if any, this isolate holds; a public path; a denial the request alone
/// decides), `None` when a store must be asked. Unlike
/// [`Gate::admit_answered`] it puts nothing back: the tests below show the gate
/// writes nothing to the isolate's memory before a store has answered.
fn admit_now<K, L, S>(gate: &Gate<'_, K, L, S>, req: &Incoming<'_>) -> Option<Decision>
where
    K: Kv + Unreachable,
    L: Lookup + Unreachable,
    S: SessionStates + Unreachable,
{
    let (kv, lookup, states) = (K::unreached(), L::unreached(), S::unreached());
    let twin = gate.over(&kv, &lookup, &states);
    let decision = poll_once(twin.admit(req))?;
    gate.adopt(&twin);
    Some(decision)
}

/// What `admit_now` makes of the jar's next GET of `path` at `now`: when it
/// decides, the very decision `admit` makes; when it cannot, the isolate's
/// memory is as it was. `true` when it decided.
fn decides_now(w: &World, now: Millis, path: &str) -> bool {
    let header = w.cookie_header();
    let head = Head {
        path,
        cookie: header.as_deref(),
        ..dashboard(None)
    };
    let req = Incoming::new(&w.cfg, head.clone());
    let before = format!("{:?}", w.memory.borrow());
    let gate = w.gate(now);
    let quick = admit_now(&gate, &req);
    assert_eq!(
        gate.counts(),
        Counts::default(),
        "{path}: a store was asked"
    );
    let Some(quick) = quick else {
        assert_eq!(
            format!("{:?}", w.memory.borrow()),
            before,
            "{path}: memory changed"
        );
        return false;
    };
    let full = admit(&w.gate(now), &head);
    assert_eq!(format!("{quick:?}"), format!("{full:?}"), "{path}");
    true
}

#[test]
fn admit_now_decides_what_needs_no_store_exactly_as_admit_does() {
    let w = World::new(config(&[("PUBLIC_PATHS", "/login")]));
    assert!(decides_now(&w, T0, "/dashboard"), "no cookie: no_session");
    w.login(T0, "alice");
    assert!(decides_now(&w, T0 + SEC, "/dashboard"), "a fresh ticket");
    assert!(decides_now(&w, T0 + SEC, "/login"), "a public path");
    assert!(
        !decides_now(&w, T0 + 2 * MIN, "/dashboard"),
        "past TICKET_TTL: KV"
    );
    w.jar.borrow_mut().remove(&w.cfg.ticket_cookie);
    assert!(
        !decides_now(&w, T0 + 2 * SEC, "/dashboard"),
        "no ticket: KV"
    );
    w.set_sid("never-seen");
    assert!(
        !decides_now(&w, T0 + 2 * SEC, "/dashboard"),
        "an unknown ID: KV"
    );
}

/// Signs alice in at T0 and applies `{"a":1}` to her data at T0 + 1 s: the
/// isolate that applied the change keeps no copy of the data.
fn signed_in_with_a_change(w: &World) {
    w.login(T0, "alice");
    exchange(
        w,
        T0 + SEC,
        "/cart",
        Answer {
            patch: Some(r#"{"a":1}"#),
            ..Answer::default()
        },
    );
}

#[test]
fn admit_now_with_data_decides_once_the_isolate_holds_the_version() {
    let w = data_world(&[]);
    signed_in_with_a_change(&w);
    // the isolate that applied a change keeps no copy: the next read asks the object
    assert!(!decides_now(&w, T0 + 2 * SEC, "/cart"));
    let (d, _) = w.request(T0 + 2 * SEC);
    assert_eq!(data_of(&d), present(1, r#"{"a":1}"#));
    assert!(
        decides_now(&w, T0 + 3 * SEC, "/cart"),
        "the version is held"
    );
}

#[test]
fn admit_now_changes_nothing_when_it_cannot_decide() {
    // attach mode: the lookup is asked; once it answered 404, the memory decides
    let w = World::attach(&[]);
    w.set_sid("bogus");
    assert!(!decides_now(&w, T0, "/dashboard"));
    w.request(T0);
    w.set_sid("bogus");
    assert!(
        decides_now(&w, T0 + SEC, "/dashboard"),
        "a recently unknown ID"
    );
    // a touch due on a fresh ticket is written through KV
    let w = World::new(config(&[("TOUCH_INTERVAL", "10s")]));
    seed(&w, "s1", edge_record("bob", T0, T0));
    w.set_sid("s1");
    w.request(T0);
    assert!(decides_now(&w, T0 + SEC, "/dashboard"));
    assert!(
        !decides_now(&w, T0 + 11 * SEC, "/dashboard"),
        "a touch is due"
    );
}

/// `admit_answered` over the world's KV (every read answered, as after the
/// entry's read) for the jar's next GET of `path` at `now`: its decision, and
/// the isolate's memory as it was before it ran.
/// [`Gate::admit_answered`] over the world's KV (which answers), and session
/// objects and a lookup that never answer, as the synchronous path runs it
/// before the entry has read an object or asked the lookup.
fn admitted_answered(w: &World, now: Millis, path: &str) -> (Option<Decision>, String) {
    let header = w.cookie_header();
    let head = Head {
        path,
        cookie: header.as_deref(),
        ..dashboard(None)
    };
    let req = Incoming::new(&w.cfg, head);
    let before = format!("{:?}", w.memory.borrow());
    let (objects, lookup) = (MemoryStates::unreached(), FakeLookup::unreached());
    let gate = Gate::new(
        &w.cfg,
        &w.kv,
        w.use_lookup.then_some(&lookup),
        &w.memory,
        now,
    )
    .with_states(w.use_states.then_some(&objects));
    let decided = gate.admit_answered(&req).map(|(d, undo)| {
        gate.undo(undo);
        d
    });
    (decided, before)
}

#[test]
fn admit_answered_decides_with_the_kv_read_as_admit_does_and_its_touch_can_be_undone() {
    let w = World::new(config(&[
        ("PUBLIC_PATHS", "/login"),
        ("TOUCH_INTERVAL", "10s"),
    ]));
    w.login(T0, "alice");
    // past TICKET_TTL and TOUCH_INTERVAL: KV is read, the touch is written
    let now = T0 + 2 * MIN;
    let (d, before) = admitted_answered(&w, now, "/dashboard");
    let d = d.expect("KV answered: decided");
    assert_eq!(format!("{:?}", w.memory.borrow()), before, "undone");
    let full = admit(
        &w.gate(now),
        &Head {
            cookie: w.cookie_header().as_deref(),
            ..dashboard(None)
        },
    );
    assert_eq!(format!("{d:?}"), format!("{full:?}"));
    assert!(matches!(d.verdict, Verdict::Allow(_)));
    let record_key = SessionHash::of(&w.sid().unwrap()).record_key();
    assert!(
        d.deferred.iter().any(|op| op.key() == record_key),
        "the touch is written: {:?}",
        d.deferred
    );
    // the full run wrote the touch to memory, and undoing the quick one did not take it away
    assert_ne!(format!("{:?}", w.memory.borrow()), before);
}

#[test]
fn admit_answered_that_waits_for_another_store_leaves_no_touch_behind() {
    // the session has data the isolate holds no copy of: after KV, the object is asked
    let w = data_world(&[("TOUCH_INTERVAL", "10s")]);
    signed_in_with_a_change(&w);
    let now = T0 + 2 * MIN;
    let (d, before) = admitted_answered(&w, now, "/cart");
    assert!(d.is_none(), "the session's object is asked");
    assert_eq!(
        format!("{:?}", w.memory.borrow()),
        before,
        "no touch left behind"
    );
    // so the whole path, run instead, still writes the touch
    let (full, _) = w.request(now);
    let record_key = SessionHash::of(&w.sid().unwrap()).record_key();
    assert!(
        full.deferred.iter().any(|op| op.key() == record_key),
        "the touch is written: {:?}",
        full.deferred
    );
}

#[test]
fn admit_answered_decides_with_the_objects_answer_as_admit_does() {
    // the session has data the isolate holds no copy of: its object answers this time
    let w = data_world(&[]);
    signed_in_with_a_change(&w);
    w.memory.borrow_mut().data = DataCache::default();
    let now = T0 + 2 * SEC;
    let header = w.cookie_header();
    let head = Head {
        path: "/cart",
        cookie: header.as_deref(),
        ..dashboard(None)
    };
    let (answered, _) = w
        .gate(now)
        .admit_answered(&Incoming::new(&w.cfg, head.clone()))
        .expect("decided with the object's answer");
    w.memory.borrow_mut().data = DataCache::default();
    let full = admit(&w.gate(now), &head);
    assert_eq!(format!("{answered:?}"), format!("{full:?}"));
    let id = answered.identity().expect("allowed");
    assert!(matches!(id.data, DataView::Present { .. }), "{:?}", id.data);
}

#[test]
fn a_run_given_up_after_the_objects_answer_leaves_the_data_as_it_was() {
    // the asynchronous path, run instead, reads the data itself and catches the ticket up
    let w = data_world(&[]);
    signed_in_with_a_change(&w);
    w.memory.borrow_mut().data = DataCache::default();
    let before = format!("{:?}", w.memory.borrow());
    let header = w.cookie_header();
    let head = Head {
        path: "/cart",
        cookie: header.as_deref(),
        ..dashboard(None)
    };
    let gate = w.gate(T0 + 2 * SEC);
    let (_, undo) = gate
        .admit_answered(&Incoming::new(&w.cfg, head))
        .expect("decided with the object's answer");
    assert_ne!(
        format!("{:?}", w.memory.borrow()),
        before,
        "the data is held"
    );
    gate.undo(undo);
    assert_eq!(format!("{:?}", w.memory.borrow()), before);
}

#[test]
fn finish_now_passes_a_plain_answer_and_leaves_a_change_to_finish() {
    let w = data_world(&[]);
    w.login(T0, "alice");
    let header = w.cookie_header();
    let head = Head {
        method: "POST",
        path: "/cart",
        cookie: header.as_deref(),
        ..Head::default()
    };
    let gate = w.gate(T0 + SEC);
    let req = Incoming::new(&w.cfg, head);
    let d = admit_now(&gate, &req).expect("a fresh ticket");
    let plain = gate.finish_now(&req, &d, Ok(Signals::default()), || None);
    let full = pollster::block_on(gate.finish(&req, &d, Ok(Signals::default()), || None));
    assert_eq!(format!("{plain:?}"), format!("{:?}", Some(full)));
    let change = Signals {
        data: Some(Patch::parse(r#"{"a":1}"#).unwrap()),
        ..Signals::default()
    };
    let before = format!("{:?}", w.memory.borrow());
    assert!(gate.finish_now(&req, &d, Ok(change), || None).is_none());
    assert_eq!(format!("{:?}", w.memory.borrow()), before);
    assert_eq!(
        w.states.state(&SessionHash::of(&w.sid().unwrap())).version,
        0
    );
}
