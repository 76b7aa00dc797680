//! The session-data path under reordering, reuse and failure (issue 21), on
//! the host: answers applied in the order a browser receives them, session
//! IDs given to someone else, stores that refuse writes. The end-to-end
//! versions are in `tests/data-path.test.mjs`.

use super::*;

/// One exchange whose answer is held back: admitted at `now` with the
/// cookies `cookie` (a browser's snapshot), then `meanwhile` runs (other
/// exchanges), then the origin's `answer` is finished. The writes run
/// (failures ignored, as `ctx.waitUntil` does); the jar is left alone: the
/// caller applies the answer's cookies when the browser would get them.
fn held(
    w: &World,
    now: Millis,
    cookie: Option<&str>,
    answer: Answer<'_>,
    meanwhile: impl FnOnce(),
) -> (Decision, Finish) {
    let head = Head {
        method: "POST",
        path: "/x",
        cookie,
        site: "https://app.example",
        ..Head::default()
    };
    let gate = w.gate(now);
    let d = admit(&gate, &head);
    meanwhile();
    let req = Incoming::new(&w.cfg, head);
    let signals = Ok(Signals {
        data: answer.patch.map(|p| Patch::parse(p).unwrap()),
        ..Signals::default()
    });
    let f = match &d.verdict {
        Verdict::Deny { .. } => Finish::default(),
        _ => pollster::block_on(gate.finish(&req, &d, signals, || None)),
    };
    let mut ops = d.deferred.clone();
    store::merge(&mut ops, f.deferred.clone());
    for op in &ops {
        let _ = pollster::block_on(op.apply(&w.kv, Some(&w.states)));
    }
    (d, f)
}

fn change(patch: &str) -> Answer<'_> {
    Answer {
        patch: Some(patch),
        ..Answer::default()
    }
}

/// The cookies an answer gives the browser (its own reply's, when it replaced the origin's).
fn cookies_of(f: &Finish) -> Vec<String> {
    match &f.replace {
        Some(reply) => reply_cookies(reply),
        None => f.set_cookies.clone(),
    }
}

fn kv_writes_of(ops: &[StoreOp], hash: &SessionHash) -> usize {
    let key = hash.record_key();
    ops.iter().filter(|op| op.key() == key).count()
}

#[test]
fn a_slow_answer_that_read_kv_before_the_first_change_cannot_hide_it() {
    let w = data_world(&[("TICKET_TTL", "2s")]);
    w.login(T0, "alice");
    // the ticket is stale: both requests read KV, which says "no data"
    let at = T0 + 2300;
    let snapshot = w.cookie_header();
    let (_, slow) = held(&w, at, snapshot.as_deref(), Answer::default(), || {});
    let (_, first) = held(
        &w,
        at + 100,
        snapshot.as_deref(),
        change(r#"{"cart":["a1"]}"#),
        || {},
    );
    assert_eq!(status_of(&first), None);
    // the change's answer arrives first; the slow read's re-issued ticket (version 0) last
    w.store_cookies(&cookies_of(&first));
    w.store_cookies(&cookies_of(&slow));
    let ticket = ticket::open(
        &w.ticket_value().unwrap(),
        &w.cfg.keys,
        &w.cfg.ticket_cookie,
    );
    assert_eq!(
        ticket.unwrap().data_version,
        0,
        "the slow answer's ticket won"
    );
    // another isolate: nothing cached
    *w.memory.borrow_mut() = IsolateMemory::default();
    let (d, c) = w.request(at + 1000);
    assert_eq!(source(&d), Some(Source::Ticket));
    assert_eq!(data_of(&d), present(1, r#"{"cart":["a1"]}"#));
    assert_eq!(c.state_calls, 1);
}

#[test]
fn a_session_without_data_still_costs_no_object_call_on_the_ticket_path() {
    let w = data_world(&[]);
    w.login(T0, "alice");
    assert!(!w.jar.borrow().contains_key(&w.cfg.data_cookie));
    let (d, c) = w.request(T0 + SEC);
    assert_eq!((source(&d), c.state_calls), (Some(Source::Ticket), 0));
    assert_eq!(data_of(&d), DataView::None);
}

#[test]
fn attach_a_just_learned_session_whose_data_could_not_be_read_is_asked_again() {
    let mut w = World::attach(&[]);
    w.use_states = true;
    // the site signs bob in with a first change to his data
    let signals = Signals {
        session_cookie: Some(CookieChange::Set("site-1".into())),
        data: Some(Patch::parse(r#"{"cart":["x"]}"#).unwrap()),
        ..Signals::default()
    };
    let gate = w.gate(T0);
    let head = Head::default();
    let d = admit(&gate, &head);
    let f = pollster::block_on(gate.finish(&Incoming::new(&w.cfg, head), &d, Ok(signals), || None));
    assert_eq!(status_of(&f), None);
    w.lookup.add("site-1", "bob");
    w.set_sid("site-1");
    // the first request learns the session while the object cannot be read
    w.states.down.set(true);
    let (d, _) = w.request(T0 + SEC);
    assert_eq!(source(&d), Some(Source::Lookup));
    assert_eq!(data_of(&d), DataView::Unavailable);
    w.states.down.set(false);
    // the next ones, on the ticket, ask again and find the data
    let (d, _) = w.request(T0 + 2 * SEC);
    assert_eq!(source(&d), Some(Source::Ticket));
    assert_eq!(data_of(&d), present(1, r#"{"cart":["x"]}"#));
    let (d, c) = w.request(T0 + 3 * SEC);
    assert_eq!(
        (data_of(&d), c.state_calls),
        (present(1, r#"{"cart":["x"]}"#), 0)
    );
}

/// Attach mode: alice's session `s1`, learned from the lookup, with a cart in its data.
fn alice_with_a_cart() -> World {
    let mut w = World::attach(&[("REVALIDATE_AFTER", "1m")]);
    w.use_states = true;
    w.lookup.add("s1", "alice");
    w.set_sid("s1");
    w.request(T0);
    send_patch(&w, T0 + SEC, r#"{"cart":"alice's"}"#);
    w
}

#[test]
fn attach_a_session_id_given_to_another_user_takes_none_of_the_previous_users_data() {
    let w = alice_with_a_cart();
    // the site now gives s1 to bob
    w.lookup.add("s1", "bob");
    let (d, _) = w.request(T0 + 2 * MIN);
    assert_eq!(d.identity().map(|i| i.user.as_str()), Some("bob"));
    assert_eq!(data_of(&d), DataView::None, "bob got alice's data");
    let hash = SessionHash::of("s1");
    assert_eq!(w.states.state(&hash).version, 2, "the version moved on");
    assert_eq!(w.record().unwrap().data_version, 2);
    // bob stores data like any session
    let f = send_patch(&w, T0 + 2 * MIN + SEC, r#"{"b":1}"#);
    assert_eq!(status_of(&f), None);
    let (d, _) = w.request(T0 + 2 * MIN + 2 * SEC);
    assert_eq!(data_of(&d), present(3, r#"{"b":1}"#));
    assert!(
        !w.kv.keys().iter().any(|k| k.starts_with("u:alice")),
        "{:?}",
        w.kv.keys()
    );
}

#[test]
fn attach_when_the_previous_users_data_cannot_be_dropped_the_new_user_is_not_let_in() {
    let w = alice_with_a_cart();
    w.lookup.add("s1", "bob");
    w.states.writes_down.set(true);
    let (d, _) = w.request(T0 + 2 * MIN);
    assert_eq!(reason(&d), Some(Reason::StoreUnavailable));
    assert_eq!(
        w.record().unwrap().user,
        "alice",
        "nothing was written for bob"
    );
    w.states.writes_down.set(false);
    let (d, _) = w.request(T0 + 3 * MIN);
    assert_eq!(d.identity().map(|i| i.user.as_str()), Some("bob"));
    assert_eq!(data_of(&d), DataView::None);
}

#[test]
fn a_change_whose_session_ended_meanwhile_leaves_the_new_sessions_cookies_alone() {
    let w = data_world(&[]);
    w.login(T0, "alice");
    let snapshot = w.cookie_header();
    // sent with the first session; meanwhile the user signs in again in another tab
    let (_, late) = held(
        &w,
        T0 + SEC,
        snapshot.as_deref(),
        change(r#"{"a":1}"#),
        || {
            w.login(T0 + 2 * SEC, "alice");
        },
    );
    let reply = late.replace.as_ref().expect("the change is refused");
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply_cookies(reply),
        Vec::<String>::new(),
        "no cookie cleared"
    );
    let new_sid = w.sid().unwrap();
    w.store_cookies(&cookies_of(&late));
    assert_eq!(w.sid(), Some(new_sid));
    let (d, _) = w.request(T0 + 3 * SEC);
    assert_eq!(source(&d), Some(Source::Ticket));
}

#[test]
fn twenty_first_changes_in_flight_together_write_the_kv_record_once() {
    let w = data_world(&[]);
    w.login(T0, "alice");
    let hash = SessionHash::of(&w.sid().unwrap());
    let snapshot = w.cookie_header();
    let mut writes = 0;
    let mut answers = Vec::new();
    for i in 0..20 {
        let (d, f) = held(
            &w,
            T0 + 1100 + i,
            snapshot.as_deref(),
            change(&format!(r#"{{"k{i}":{i}}}"#)),
            || {},
        );
        assert_eq!(status_of(&f), None);
        writes += kv_writes_of(&d.deferred, &hash) + kv_writes_of(&f.deferred, &hash);
        answers.push(f);
    }
    assert_eq!(writes, 1);
    assert_eq!(w.record().unwrap().data_version, 1);
    assert_eq!(w.states.state(&hash).version, 20);
}

#[test]
fn a_skipped_kv_mark_is_made_up_by_a_later_request_through_kv() {
    let w = data_world(&[]);
    w.login(T0, "alice");
    let sid = w.sid().unwrap();
    w.kv.writes_down.set(true);
    send_patch_lossy(&w, T0 + SEC, r#"{"a":1}"#);
    w.kv.writes_down.set(false);
    assert_eq!(w.record().unwrap().data_version, 0, "the mark was refused");
    // the browser still sees its data on the ticket path
    let (d, _) = w.request(T0 + 2 * SEC);
    assert_eq!(data_of(&d), present(1, r#"{"a":1}"#));
    // once the ticket is stale, the request through KV finds KV behind the browser
    let (d, _) = w.request(T0 + 2 * MIN);
    assert_eq!(source(&d), Some(Source::Kv));
    assert_eq!(w.record().unwrap().data_version, 1, "KV told again");
    // a request with the session ID alone now carries the data too
    w.jar.borrow_mut().clear();
    w.set_sid(&sid);
    let (d, _) = w.request(T0 + 2 * MIN + SEC);
    assert_eq!(data_of(&d), present(1, r#"{"a":1}"#));
}

/// [`send_patch`], with writes that may fail (a refused KV write is logged, never surfaced).
fn send_patch_lossy(w: &World, now: Millis, patch: &str) {
    let header = w.cookie_header();
    let (_, f) = held(w, now, header.as_deref(), change(patch), || {});
    assert_eq!(status_of(&f), None);
    w.store_cookies(&f.set_cookies);
}

#[test]
fn a_change_on_a_response_that_touches_writes_the_record_once() {
    let w = data_world(&[]);
    w.login(T0, "alice");
    let hash = SessionHash::of(&w.sid().unwrap());
    // a minute on: the request touches last-seen, and its answer brings the first change
    let (d, f, _) = exchange(&w, T0 + 2 * MIN, "/x", change(r#"{"a":1}"#));
    let mut ops = d.deferred.clone();
    store::merge(&mut ops, f.deferred.clone());
    assert_eq!(kv_writes_of(&ops, &hash), 1, "{ops:?}");
    let record = w.record().unwrap();
    assert_eq!((record.data_version, record.last_seen), (1, T0 + 2 * MIN));
}

#[test]
fn ending_a_session_tells_its_object_first_so_strict_paths_refuse_it_when_kv_writes_fail() {
    let w = data_world(&[("STRICT_PATHS", "/strict/*")]);
    w.login(T0, "alice");
    send_patch(&w, T0 + SEC, r#"{"a":1}"#);
    let before = w.cookie_header();
    w.kv.writes_down.set(true);
    let r = control(&w, "POST", "/.edge-session/logout", None, "");
    assert_eq!(r.status, 503);
    w.kv.writes_down.set(false);
    assert!(w.record().is_some(), "KV still holds the session");
    let gate = w.gate(T0 + 2 * SEC);
    let head = Head {
        method: "GET",
        path: "/strict/x",
        cookie: before.as_deref(),
        ..Head::default()
    };
    let d = admit(&gate, &head);
    assert_eq!(reason(&d), Some(Reason::InvalidSession));
}

#[test]
fn attach_an_ended_id_the_site_gives_out_again_takes_its_new_first_data() {
    let mut w = World::attach(&[]);
    w.use_states = true;
    w.lookup.add("x", "bob");
    w.set_sid("x");
    w.request(T0);
    // the site signs bob out: the worker ends x at the edge
    let cleared = Signals {
        session_cookie: Some(CookieChange::Cleared),
        ..Signals::default()
    };
    let f = w.respond(T0 + SEC, Ok(cleared), "/logout");
    assert_eq!(f.event, Some("cookie_changed"));
    assert!(w.states.state(&SessionHash::of("x")).ended);
    // on another session's request, the site hands x out again with first data
    w.lookup.add("a", "carol");
    w.jar.borrow_mut().clear();
    w.set_sid("a");
    w.request(T0 + 2 * SEC);
    let again = Signals {
        session_cookie: Some(CookieChange::Set("x".into())),
        data: Some(Patch::parse(r#"{"x":1}"#).unwrap()),
        ..Signals::default()
    };
    let f = w.respond(T0 + 3 * SEC, Ok(again), "/login");
    assert_eq!((status_of(&f), f.event), (None, Some("cookie_changed")));
    assert!(
        w.kv.record(&SessionHash::of("a")).is_none(),
        "the old session ended"
    );
    let x = w.states.state(&SessionHash::of("x"));
    assert_eq!((x.ended, x.data.as_deref()), (false, Some(r#"{"x":1}"#)));
    assert!(w.states.state(&SessionHash::of("a")).ended);
}

#[test]
fn a_malformed_change_beside_the_site_clearing_its_cookie_does_not_cancel_the_sign_out() {
    let read = |set_cookie: &str| {
        let header = |name: &str| (name == data::PATCH).then(|| r#"{"a":"#.to_string());
        signals::read(header, &[set_cookie.to_string()], "sid", T0 / 1000)
    };
    let s = read("sid=; Max-Age=0; Path=/").expect("not malformed");
    assert_eq!(s.session_cookie, Some(CookieChange::Cleared));
    assert_eq!(
        s.data,
        Some(Patch::default()),
        "read as nothing, still removed from the response"
    );
    assert!(
        read("sid=new; Path=/").is_err(),
        "beside a new session it is still malformed"
    );
}
