//! Guest sessions and remembered sessions on the host (README "Guest
//! sessions", "Remembered sessions"): lazy creation, a guest never in KV, the
//! cart kept at sign-in, guests elsewhere, stores failing, attach mode, and
//! "remember me". The end-to-end versions are in `tests/guests.test.mjs`.

use super::*;

fn guest_world(extra: &[(&str, &str)]) -> World {
    let mut all = vec![("PUBLIC_PATHS", "/login"), ("GUEST_PATHS", "/shop/*")];
    all.extend_from_slice(extra);
    let mut w = World::new(config(&all));
    w.use_states = true;
    w
}

/// One exchange on `path` whose answer carries `signals` ([`answered`]), its
/// writes run with failures ignored, as `ctx.waitUntil` does.
fn answer(
    w: &World,
    now: Millis,
    method: &str,
    path: &str,
    signals: Signals,
) -> (Decision, Finish) {
    let (d, f, _, writes) = answered(w, now, method, path, Ok(signals));
    for op in &writes {
        let _ = pollster::block_on(op.apply(&w.kv, Some(&w.states)));
    }
    (d, f)
}

fn visit(w: &World, now: Millis, path: &str) -> Decision {
    answer(w, now, "GET", path, Signals::default()).0
}

fn stores(patch: &str) -> Signals {
    Signals {
        data: Some(Patch::parse(patch).unwrap()),
        ..Signals::default()
    }
}

fn guest_of(d: &Decision) -> bool {
    d.identity().is_some_and(|i| i.guest)
}

fn kv_writes(w: &World) -> u32 {
    w.kv.writes.get() + w.kv.deletes.get()
}

#[test]
fn a_visitor_who_stores_nothing_gets_no_cookie_no_write_and_no_object() {
    let w = guest_world(&[]);
    let d = visit(&w, T0, "/shop/tea");
    assert_eq!(d.verdict, Verdict::Bypass);
    for nothing in [Signals::default(), stores("{}"), stores(r#"{"cart":null}"#)] {
        let (_, f) = answer(&w, T0, "POST", "/shop/tea", nothing);
        assert_eq!((status_of(&f), f.set_cookies.len()), (None, 0));
    }
    assert!(w.jar.borrow().is_empty());
    assert_eq!(
        (kv_writes(&w), w.states.writes.get(), w.states.reads.get()),
        (0, 0, 0)
    );
}

#[test]
fn the_first_change_makes_a_guest_session_that_is_never_written_to_kv() {
    let w = guest_world(&[("TICKET_TTL", "1m"), ("TOUCH_INTERVAL", "1m")]);
    let (_, f) = answer(&w, T0, "POST", "/shop/add", stores(r#"{"cart":["tea"]}"#));
    assert_eq!((status_of(&f), f.event), (None, Some("guest_created")));
    let sid = w.sid().expect("a session cookie");
    let hash = SessionHash::of(&sid);
    assert!(w.jar.borrow().contains_key(&w.cfg.ticket_cookie));
    let state = w.states.state(&hash);
    assert_eq!((state.version, state.guest_created), (1, T0));
    // on the ticket: a guest, its data, no user
    let d = visit(&w, T0 + SEC, "/shop/cart");
    assert!(guest_of(&d) && source(&d) == Some(Source::Ticket));
    assert_eq!(data_of(&d), present(1, r#"{"cart":["tea"]}"#));
    let names: Vec<_> = d
        .identity()
        .unwrap()
        .headers()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(
        !names.contains(&"X-Session-User") && names.contains(&"X-Session-Source"),
        "{names:?}"
    );
    // past TICKET_TTL: its object vouches (and moves its last use once)
    let d = visit(&w, T0 + 2 * MIN, "/shop/cart");
    assert_eq!(source(&d), Some(Source::State));
    assert_eq!(w.states.state(&hash).guest_seen, T0 + 2 * MIN);
    answer(
        &w,
        T0 + 2 * MIN + SEC,
        "POST",
        "/shop/add",
        stores(r#"{"tea":2}"#),
    );
    let d = visit(&w, T0 + 2 * MIN + 2 * SEC, "/shop/cart");
    assert_eq!(data_of(&d), present(2, r#"{"cart":["tea"],"tea":2}"#));
    // idle past IDLE_TIMEOUT: a visitor again, its cookies cleared, its object ended
    let d = visit(&w, T0 + 2 * MIN + 31 * MIN, "/shop/cart");
    assert_eq!(d.verdict, Verdict::Bypass);
    assert!(w.sid().is_none(), "the dead guest's cookie was not cleared");
    assert!(w.states.state(&hash).ended);
    assert_eq!(
        kv_writes(&w),
        0,
        "a guest was written to KV: {:?}",
        w.kv.keys()
    );
}

#[test]
fn a_refused_first_change_creates_nothing() {
    let w = guest_world(&[]);
    let big = format!(r#"{{"x":"{}"}}"#, "y".repeat(5000));
    let (_, f) = answer(&w, T0, "POST", "/shop/add", stores(&big));
    assert_eq!(status_of(&f), Some(502));
    assert!(w.jar.borrow().is_empty());
    assert_eq!(w.states.writes.get(), 0);
}

#[test]
fn a_guest_on_a_protected_path_is_not_signed_in_and_keeps_its_cookies() {
    let w = guest_world(&[]);
    answer(&w, T0, "POST", "/shop/add", stores(r#"{"cart":["tea"]}"#));
    let jar = w.jar.borrow().clone();
    let calls = w.states.reads.get() + w.states.writes.get();
    let d = visit(&w, T0 + SEC, "/account");
    assert_eq!(reason(&d), Some(Reason::NoSession));
    let Verdict::Deny { reply, .. } = &d.verdict else {
        unreachable!()
    };
    assert!(reply_cookies(reply).is_empty());
    assert_eq!(*w.jar.borrow(), jar);
    assert_eq!(
        w.states.reads.get() + w.states.writes.get(),
        calls,
        "the guest's object was asked"
    );
}

#[test]
fn signing_in_keeps_the_cart_under_a_new_id_and_ends_the_guest() {
    let w = guest_world(&[]);
    answer(
        &w,
        T0,
        "POST",
        "/shop/add",
        stores(r#"{"cart":["tea"],"lang":"ko"}"#),
    );
    let guest = SessionHash::of(&w.sid().unwrap());
    let login = Signals {
        login: Some(("alice".into(), None)),
        data: Some(Patch::parse(r#"{"lang":null,"welcome":true}"#).unwrap()),
        ..Signals::default()
    };
    let (_, f) = answer(&w, T0 + SEC, "POST", "/login", login);
    assert_eq!((status_of(&f), f.event), (None, Some("login")));
    let user = SessionHash::of(&w.sid().unwrap());
    assert_ne!(user, guest, "no fixation: a new ID");
    let state = w.states.state(&user);
    assert_eq!(
        (state.version, state.data.as_deref()),
        (1, Some(r#"{"cart":["tea"],"welcome":true}"#))
    );
    assert!(w.states.state(&guest).ended, "the guest session ended");
    let d = visit(&w, T0 + 2 * SEC, "/account");
    assert_eq!(
        d.identity().map(|i| (i.user.as_str(), i.guest)),
        Some(("alice", false))
    );
    // signing out leaves no guest behind
    let logout = Signals {
        logout: true,
        ..Signals::default()
    };
    answer(&w, T0 + 3 * SEC, "POST", "/shop/out", logout);
    assert!(w.sid().is_none());
    assert_eq!(
        visit(&w, T0 + 4 * SEC, "/shop/cart").verdict,
        Verdict::Bypass
    );
}

#[test]
fn a_cart_and_a_login_change_over_the_limit_together_create_no_session_and_keep_the_guest() {
    let w = guest_world(&[("SESSION_DATA_LIMIT", "64")]);
    answer(
        &w,
        T0,
        "POST",
        "/shop/add",
        stores(r#"{"cart":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#),
    );
    let guest_sid = w.sid().unwrap();
    let login = Signals {
        login: Some(("alice".into(), None)),
        data: Some(Patch::parse(r#"{"more":"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"}"#).unwrap()),
        ..Signals::default()
    };
    let (_, f) = answer(&w, T0 + SEC, "POST", "/login", login);
    assert_eq!(status_of(&f), Some(502));
    assert_eq!(w.sid(), Some(guest_sid.clone()));
    assert!(!w.states.state(&SessionHash::of(&guest_sid)).ended);
    assert!(w.kv.keys().is_empty());
}

#[test]
fn a_dead_or_unknown_session_on_a_guest_path_is_a_visitor_with_its_cookies_cleared() {
    let w = guest_world(&[]);
    w.set_sid("nobody-knows-this-one");
    let d = visit(&w, T0, "/shop/tea");
    assert_eq!(d.verdict, Verdict::Bypass);
    assert!(w.sid().is_none());
    // and a guest whose ticket was lost is found through its object
    answer(&w, T0 + SEC, "POST", "/shop/add", stores(r#"{"a":1}"#));
    let sid = w.sid().unwrap();
    w.jar.borrow_mut().clear();
    w.set_sid(&sid);
    let d = visit(&w, T0 + 2 * SEC, "/shop/tea");
    assert!(guest_of(&d));
    assert_eq!(source(&d), Some(Source::State));
}

#[test]
fn when_the_stores_fail_a_guest_path_never_replaces_a_session_that_may_hold_data() {
    let w = guest_world(&[]);
    answer(&w, T0, "POST", "/shop/add", stores(r#"{"a":1}"#));
    let sid = w.sid().unwrap();
    // a stale genuine ticket stands in (degraded), as for users
    w.states.down.set(true);
    let d = visit(&w, T0 + 2 * MIN, "/shop/tea");
    assert_eq!(source(&d), Some(Source::Stale));
    assert_eq!(data_of(&d), DataView::Unavailable);
    // without its ticket: a visitor whose session could not be checked, cookies kept
    w.jar.borrow_mut().clear();
    w.set_sid(&sid);
    w.kv.down.set(true);
    let (d, f) = answer(&w, T0 + 3 * MIN, "POST", "/shop/add", stores(r#"{"b":1}"#));
    assert!(d.unchecked && d.verdict == Verdict::Bypass);
    assert_eq!(status_of(&f), Some(503));
    assert_eq!(w.sid(), Some(sid));
}

#[test]
fn attach_mode_creates_no_guests_and_leaves_the_sites_cookie_alone_on_guest_paths() {
    let mut w = World::attach(&[("GUEST_PATHS", "/shop/*")]);
    w.use_states = true;
    w.set_sid("the-sites-own-guest");
    let d = visit(&w, T0, "/shop/tea");
    assert_eq!(d.verdict, Verdict::Bypass);
    assert_eq!(
        w.sid().as_deref(),
        Some("the-sites-own-guest"),
        "the site's cookie was cleared"
    );
    assert_eq!(w.lookup.calls.get(), 1);
    visit(&w, T0 + SEC, "/shop/tea");
    assert_eq!(
        w.lookup.calls.get(),
        1,
        "an unknown ID is asked about once per 30 s per isolate"
    );
    let (_, f) = answer(&w, T0 + 2 * SEC, "POST", "/shop/add", stores(r#"{"a":1}"#));
    assert_eq!(status_of(&f), Some(502));
}

#[test]
fn csrf_protection_applies_to_guest_paths() {
    let w = guest_world(&[]);
    answer(&w, T0, "POST", "/shop/add", stores(r#"{"a":1}"#));
    let header = w.cookie_header();
    let head = Head {
        method: "POST",
        path: "/shop/add",
        cookie: header.as_deref(),
        site: "https://app.example",
        sec_fetch_site: Some("cross-site"),
        ..Head::default()
    };
    let d = admit(&w.gate(T0 + SEC), &head);
    assert_eq!(reason(&d), Some(Reason::CrossSiteRequest));
}

#[test]
fn remember_me_makes_both_cookies_outlive_the_browser_and_uses_the_remembered_limits() {
    let w = guest_world(&[]);
    let login = Signals {
        login: Some(("alice".into(), None)),
        remember: Some(true),
        ..Signals::default()
    };
    let (_, f) = answer(&w, T0, "POST", "/login", login);
    let month = 30 * 24 * 60 * MIN / 1000;
    for c in &f.set_cookies {
        assert!(c.contains(&format!("Max-Age={month};")), "{c}");
    }
    let record = w.record().unwrap();
    assert!(record.remember);
    // idle for a day: alive (REMEMBER_IDLE_TIMEOUT is 14 days), and the ticket
    // re-issued on the way counts down to the same absolute deadline
    let later = T0 + 24 * 60 * MIN;
    let (d, _) = w.request(later);
    assert_eq!(source(&d), Some(Source::Kv));
    assert!(d.identity().unwrap().remember);
    let reissued = d
        .set_cookies
        .iter()
        .find(|c| c.starts_with(&w.cfg.ticket_cookie))
        .unwrap();
    assert!(
        reissued.contains(&format!("Max-Age={};", month - 24 * 60 * 60)),
        "{reissued}"
    );
    // without it, nothing changes: no Max-Age
    let w = guest_world(&[]);
    let (_, f) = answer(
        &w,
        T0,
        "POST",
        "/login",
        Signals {
            login: Some(("bob".into(), None)),
            ..Signals::default()
        },
    );
    assert!(f.set_cookies.iter().all(|c| !c.contains("Max-Age")));
}

#[test]
fn the_remember_signal_takes_only_1_and_is_ignored_without_a_login() {
    let read = |login: bool, value: &str| {
        let header = |name: &str| match name {
            signals::LOGIN if login => Some("alice".to_string()),
            signals::REMEMBER => Some(value.to_string()),
            _ => None,
        };
        signals::read(header, &[], "sid", T0 / 1000)
    };
    assert_eq!(read(true, "1").unwrap().remember, Some(true));
    for bad in ["0", "yes", "true", ""] {
        assert!(read(true, bad).is_err(), "{bad:?} accepted");
    }
    let ignored = read(false, "1").unwrap();
    assert_eq!(ignored.remember, Some(false));
    assert!(crate::headers::signals_sent(&ignored).contains(&signals::REMEMBER.to_string()));
}

#[test]
fn a_sign_out_beside_a_change_is_never_refused_even_for_a_visitor() {
    let mut w = World::attach(&[("GUEST_PATHS", "/shop/*"), ("PUBLIC_PATHS", "/bye")]);
    w.use_states = true;
    // as signals::read gives it: the change beside the cleared cookie, not even read
    let sign_out = || Signals {
        session_cookie: Some(CookieChange::Cleared),
        data: Some(Patch::default()),
        ..Signals::default()
    };
    for path in ["/shop/out", "/bye"] {
        let (_, f) = answer(&w, T0, "POST", path, sign_out());
        assert_eq!(status_of(&f), None, "{path}: {:?}", f.error);
    }
}
