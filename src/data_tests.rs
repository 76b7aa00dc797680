use super::*;

fn patch(text: &str) -> Patch {
    Patch::parse(text).unwrap()
}

fn state_after(patches: &[&str]) -> DataState {
    let mut s = DataState::default();
    for p in patches {
        s.apply(&patch(p), DEFAULT_LIMIT).unwrap();
    }
    s
}

#[test]
fn a_patch_sets_replaces_and_removes_top_level_keys() {
    let s = state_after(&[
        r#"{"cart":[1,2],"draft":{"title":"a","body":"b"}}"#,
        r#"{"draft":{"title":"c"}}"#,
        r#"{"cart":null,"flash":"Saved"}"#,
    ]);
    // a member replaces its key whole: no deep merge of "draft"
    assert_eq!(
        s.data.as_deref(),
        Some(r#"{"draft":{"title":"c"},"flash":"Saved"}"#)
    );
    assert_eq!(s.version, 3);
}

#[test]
fn an_empty_patch_changes_nothing_and_is_not_counted() {
    let mut s = state_after(&[r#"{"a":1}"#]);
    assert_eq!(s.apply(&patch("{}"), DEFAULT_LIMIT), Ok(false));
    assert_eq!((s.version, s.data.as_deref()), (1, Some(r#"{"a":1}"#)));
}

#[test]
fn emptying_the_object_removes_the_data_and_the_version_keeps_counting() {
    let mut s = state_after(&[r#"{"a":1}"#, r#"{"a":null}"#]);
    assert_eq!((s.version, s.data.as_deref()), (2, None));
    assert_eq!(DataView::of(&s), DataView::None);
    s.apply(&patch(r#"{"b":true}"#), DEFAULT_LIMIT).unwrap();
    assert_eq!((s.version, s.data.as_deref()), (3, Some(r#"{"b":true}"#)));
    // removing a key that is not there is still a change that counts
    s.apply(&patch(r#"{"zzz":null}"#), DEFAULT_LIMIT).unwrap();
    assert_eq!(s.version, 4);
}

#[test]
fn non_ascii_is_escaped_in_the_data_both_spellings_accepted() {
    let raw = state_after(&[r#"{"name":"김철수","e":"é😀"}"#]);
    let escaped = state_after(&[r#"{"name":"\uae40\ucca0\uc218","e":"\u00e9\ud83d\ude00"}"#]);
    assert_eq!(raw.data, escaped.data);
    let data = raw.data.unwrap();
    assert!(data.is_ascii(), "{data}");
    let back: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(back["e"], "é😀");
}

#[test]
fn a_result_over_the_limit_is_refused_and_nothing_is_applied() {
    let mut s = state_after(&[r#"{"a":"xxxxxxxxxx"}"#]);
    let before = s.clone();
    let big = format!(r#"{{"b":"{}","a":null}}"#, "y".repeat(100));
    assert_eq!(
        s.apply(&patch(&big), 64),
        Err(Refusal::TooLarge {
            size: 108,
            limit: 64
        })
    );
    assert_eq!(s, before);
    // exactly at the limit is accepted: the size is that of the X-Session-Data value
    let at = format!(r#"{{"b":"{}"}}"#, "y".repeat(64 - 8));
    let mut fresh = DataState::default();
    assert_eq!(fresh.apply(&patch(&at), 64), Ok(true));
    assert_eq!(fresh.data.unwrap().len(), 64);
    // the size counts the escaped form the origin receives
    let korean = format!(r#"{{"k":"{}"}}"#, "김".repeat(9));
    assert!(DataState::default().apply(&patch(&korean), 62).is_ok());
    assert!(DataState::default().apply(&patch(&korean), 61).is_err());
}

#[test]
fn the_size_precheck_refuses_without_the_current_data() {
    let big = patch(&format!(r#"{{"b":"{}"}}"#, "y".repeat(5000)));
    assert!(big
        .check_size(DEFAULT_LIMIT)
        .unwrap_err()
        .contains("SESSION_DATA_LIMIT is 4096"));
    // removals are not counted against the limit
    assert!(patch(r#"{"a":null,"b":null}"#).check_size(2).is_ok());
}

#[test]
fn an_ended_session_takes_no_patch_and_has_no_data() {
    let mut s = state_after(&[r#"{"a":1}"#]);
    s.end();
    assert_eq!(
        s.apply(&patch(r#"{"a":2}"#), DEFAULT_LIMIT),
        Err(Refusal::Ended)
    );
    assert_eq!((s.data, s.ended), (None, true));
}

#[test]
fn hostile_patches_are_refused_with_a_reason() {
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(200), "]".repeat(200));
    let cases: Vec<(String, &str)> = vec![
        ("[]".into(), "not a JSON object"),
        ("\"x\"".into(), "not a JSON object"),
        ("1".into(), "not a JSON object"),
        ("null".into(), "not a JSON object"),
        ("{".into(), "not valid JSON"),
        ("{} {}".into(), "not valid JSON"),
        (deep, "recursion limit"),
        (r#"{"n":1e400}"#.into(), "out of range"),
        (r#"{"a":1,"a":2}"#.into(), "appears twice"),
        (r#"{"a":{"b":1,"b":1}}"#.into(), "appears twice"),
        (r#"{"a":[{"x":1,"x":2}]}"#.into(), "appears twice"),
        ("{\"a\":\"\\ud800\"}".into(), "not valid JSON"),
        (
            format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_PATCH)),
            "at most 32768",
        ),
    ];
    for (text, why) in cases {
        let err = Patch::parse(&text).unwrap_err();
        assert!(err.contains(why), "{text:?}: {err}");
    }
}

#[test]
fn proto_keys_are_plain_keys() {
    let s = state_after(&[r#"{"__proto__":{"admin":true},"constructor":1}"#]);
    assert_eq!(
        s.data.as_deref(),
        Some(r#"{"__proto__":{"admin":true},"constructor":1}"#)
    );
}

#[test]
fn ten_thousand_keys_are_refused_before_they_are_parsed() {
    let members: Vec<String> = (0..10_000).map(|i| format!("\"k{i}\":{i}")).collect();
    let text = format!("{{{}}}", members.join(","));
    assert!(Patch::parse(&text).unwrap_err().contains("at most 32768"));
    // a thousand parse, and are refused by the size of the result alone
    let members: Vec<String> = (0..1_000).map(|i| format!("\"k{i}\":{i}")).collect();
    let p = patch(&format!("{{{}}}", members.join(",")));
    assert_eq!(p.0.len(), 1_000);
    assert!(p.check_size(MAX_LIMIT).is_err());
    let mut s = DataState::default();
    assert!(matches!(
        s.apply(&p, MAX_LIMIT),
        Err(Refusal::TooLarge { .. })
    ));
    assert_eq!(s.version, 0);
}

#[test]
fn header_bytes_are_read_as_utf8() {
    // "é" as the runtime hands UTF-8 bytes over: one character per byte
    assert_eq!(
        header_text("{\"a\":\"\u{c3}\u{a9}\"}").unwrap(),
        "{\"a\":\"é\"}"
    );
    assert!(
        header_text("{\"a\":\"\u{e9}\"}").is_err(),
        "a lone Latin-1 byte is not UTF-8"
    );
    assert!(
        header_text("{\"a\":\"\u{ed}\u{a0}\u{80}\"}").is_err(),
        "an encoded surrogate"
    );
    // already decoded text (a character past U+00FF) is taken as it is
    assert_eq!(header_text("{\"a\":\"김\"}").unwrap(), "{\"a\":\"김\"}");
}

#[test]
fn the_object_serves_reads_patches_and_ends() {
    let p = |text: &str| StateRequest::patch(&patch(text), 64, 99);
    let read = serve(None, &StateRequest::read(99));
    assert_eq!(
        (read.reply.state.version, read.store, read.alarm),
        (0, None, None)
    );

    let first = serve(None, &p(r#"{"a":1}"#));
    assert_eq!(first.reply.state.version, 1);
    let stored = first.store.unwrap();
    assert_eq!(
        (stored.data.as_deref(), stored.until),
        (Some(r#"{"a":1}"#), 99)
    );
    assert_eq!(first.alarm, Some(99), "the first write sets the alarm");

    // refused: nothing stored, the reason in the reply, the state as it was
    let big = format!(r#"{{"b":"{}"}}"#, "y".repeat(100));
    let refused = serve(Some(stored.clone()), &p(&big));
    assert!(refused.store.is_none());
    assert!(refused
        .reply
        .refused
        .unwrap()
        .contains("SESSION_DATA_LIMIT"));
    assert_eq!(refused.reply.state, stored);

    // an empty patch stores nothing; a later change of the same deadline sets no alarm
    assert!(serve(Some(stored.clone()), &p("{}")).store.is_none());
    assert_eq!(serve(Some(stored.clone()), &p(r#"{"a":2}"#)).alarm, None);

    let ended = serve(Some(stored), &StateRequest::end(107));
    assert!(ended.reply.state.ended && ended.reply.state.data.is_none());
    assert_eq!((ended.store.unwrap().until, ended.alarm), (107, Some(107)));
    let after = serve(Some(ended.reply.state), &p(r#"{"a":2}"#));
    assert_eq!(
        after.reply.refused.as_deref(),
        Some("the session has ended")
    );
}

#[test]
fn a_deadline_that_moves_later_moves_the_alarm_and_the_alarm_never_fires_early() {
    let stored = serve(None, &StateRequest::patch(&patch(r#"{"a":1}"#), 64, 1_000))
        .store
        .unwrap();
    // ABSOLUTE_TIMEOUT raised, or an attach session learned again with a later
    // `created`: a plain read names the later deadline, and the alarm follows it
    let read = serve(Some(stored.clone()), &StateRequest::read(5_000));
    assert_eq!(read.alarm, Some(5_000));
    assert_eq!(
        read.store.as_ref().map(|s| (s.until, s.version)),
        Some((5_000, 1))
    );
    // an earlier deadline never brings it back
    let earlier = serve(read.store.clone(), &StateRequest::read(2_000));
    assert_eq!((earlier.store, earlier.alarm), (None, None));
    // an alarm set for the old deadline finds the new one and waits for it
    assert_eq!(on_alarm(read.store.as_ref(), 1_000), Some(5_000));
    assert_eq!(
        on_alarm(read.store.as_ref(), 5_000),
        None,
        "then it forgets"
    );
    assert_eq!(on_alarm(Some(&stored), 1_000), None);
    assert_eq!(on_alarm(None, 1_000), None);
    // an object stored before deadlines were kept forgets at its alarm, as it did
    let old: DataState = serde_json::from_str(r#"{"v":2,"d":"{}"}"#).unwrap();
    assert_eq!((old.until, on_alarm(Some(&old), 1)), (0, None));
}

#[test]
fn a_restart_for_a_new_owner_drops_the_data_and_the_end_and_moves_the_version_on() {
    let with_data = serve(None, &StateRequest::patch(&patch(r#"{"a":1}"#), 64, 9))
        .store
        .unwrap();
    let fresh = serve(Some(with_data.clone()), &StateRequest::read(9).restarting());
    let state = fresh.reply.state;
    assert_eq!((state.version, state.data, state.ended), (2, None, false));
    assert!(fresh.store.is_some());
    // with the new owner's first change: the old data never mixes in
    let first = StateRequest::patch(&patch(r#"{"b":1}"#), 64, 9).restarting();
    let served = serve(Some(with_data.clone()), &first);
    assert_eq!(
        (
            served.reply.state.version,
            served.reply.state.data.as_deref()
        ),
        (3, Some(r#"{"b":1}"#))
    );
    // an ended ID given out again takes changes again
    let ended = serve(Some(with_data), &StateRequest::end(9)).store.unwrap();
    let again = serve(Some(ended), &first);
    assert_eq!(again.reply.refused, None);
    assert_eq!(again.reply.state.data.as_deref(), Some(r#"{"b":1}"#));
    // an object that holds nothing starts at version 1, as any session does
    let new = serve(None, &first);
    assert_eq!(new.reply.state.version, 1);
}

#[test]
fn the_wire_format_round_trips() {
    let req = StateRequest::patch(&patch(r#"{"a":null}"#), 4096, 5);
    let text = serde_json::to_string(&req).unwrap();
    assert_eq!(text, r#"{"patch":{"a":null},"limit":4096,"until":5}"#);
    assert_eq!(serde_json::from_str::<StateRequest>(&text).unwrap(), req);
    let end = serde_json::to_string(&StateRequest::end(9)).unwrap();
    assert_eq!(end, r#"{"end":true,"until":9}"#);
    let reply = StateReply {
        state: DataState {
            version: 3,
            data: Some("{\"a\":1}".into()),
            ..DataState::default()
        },
        refused: None,
    };
    let text = serde_json::to_string(&reply).unwrap();
    assert_eq!(text, r#"{"v":3,"d":"{\"a\":1}"}"#);
    assert_eq!(serde_json::from_str::<StateReply>(&text).unwrap(), reply);
}

#[test]
fn the_cache_serves_a_version_at_least_the_floor_for_a_while() {
    let mut cache = DataCache::default();
    let v2 = state_after(&[r#"{"a":1}"#, r#"{"b":2}"#]);
    cache.put("h", &v2, 0, 1_000);
    assert!(matches!(
        cache.get("h", 2, 1_000, 60_000),
        Some(DataView::Present { version: 2, .. })
    ));
    assert!(
        cache.get("h", 1, 1_000, 60_000).is_some(),
        "a newer version than the ticket names is fine"
    );
    assert_eq!(
        cache.get("h", 3, 1_000, 60_000),
        None,
        "an older one is not"
    );
    // trusted for the ttl after it was read, then read again
    assert!(cache.get("h", 2, 60_999, 60_000).is_some());
    assert_eq!(cache.get("h", 2, 61_000, 60_000), None);
    // an older state never replaces a newer one
    cache.put("h", &state_after(&[r#"{"a":1}"#]), 0, 2_000);
    assert_eq!(cache.version("h"), 2);
    let mut ended = v2.clone();
    ended.end();
    cache.put("h", &ended, 0, 3_000);
    assert_eq!(cache.get("h", 0, 3_000, 60_000), None);
    assert_eq!(cache.bytes, 0);
}

#[test]
fn a_read_for_a_floor_the_object_is_behind_answers_that_floor_for_a_while() {
    // a data-version cookie that claims version 5 of an object at version 1:
    // the object is the truth, and the isolate does not ask it again per request
    let mut cache = DataCache::default();
    cache.put("h", &state_after(&[r#"{"a":1}"#]), 5, 1_000);
    assert!(matches!(
        cache.get("h", 5, 2_000, 60_000),
        Some(DataView::Present { version: 1, .. })
    ));
    assert_eq!(cache.get("h", 6, 2_000, 60_000), None);
}

#[test]
fn del_and_control_characters_are_escaped_and_counted_escaped() {
    let s = state_after(&[r#"{"note":"\u007f","k\u0001":"\u0000\u001f"}"#]);
    let data = s.data.unwrap();
    assert!(data.bytes().all(|b| (0x20..0x7f).contains(&b)), "{data}");
    assert!(data.contains(r"\u007f") && data.contains(r"k\u0001"));
    // 40 DEL characters are 40 bytes of UTF-8 but 240 bytes escaped
    let dels = format!(r#"{{"d":"{}"}}"#, "\\u007f".repeat(40));
    let mut small = DataState::default();
    assert!(matches!(
        small.apply(&patch(&dels), 200),
        Err(Refusal::TooLarge {
            size: 248,
            limit: 200
        })
    ));
    // data stored before the escape existed is escaped on its way out
    let old = DataState {
        version: 1,
        data: Some("{\"n\":\"\u{7f}\"}".into()),
        ..DataState::default()
    };
    match DataView::of(&old) {
        DataView::Present { json, .. } => assert_eq!(&*json, r#"{"n":"\u007f"}"#),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_cache_is_bounded_in_bytes() {
    let mut cache = DataCache::default();
    let s = DataState {
        version: 1,
        data: Some("x".repeat(MAX_LIMIT)),
        ..DataState::default()
    };
    for i in 0..2_000 {
        cache.put(&format!("{i:064}"), &s, 0, 0);
        assert!(cache.bytes <= CACHE_BYTES);
    }
}

#[test]
fn merging_a_1kb_patch_into_1kb_of_data_is_quick() {
    // The bench (benches/hot_path.rs) measures it; this only pins that it works.
    let members: Vec<String> = (0..40)
        .map(|i| format!("\"key{i}\":\"{}\"", "v".repeat(16)))
        .collect();
    let text = format!("{{{}}}", members.join(","));
    assert!(text.len() > 1000);
    let mut s = state_after(&[&text]);
    s.apply(&patch(&text), DEFAULT_LIMIT).unwrap();
    assert_eq!(s.version, 2);
}

#[test]
fn a_guest_is_made_by_its_first_applied_change_and_a_use_never_revives_it_once_idle() {
    let first = StateRequest::patch(&patch(r#"{"cart":[1]}"#), 64, 9_000).new_guest(100, 100);
    let made = serve(None, &first).store.unwrap();
    assert_eq!(
        (made.guest_created, made.guest_seen, made.version),
        (100, 100, 1)
    );
    // a refused or empty first change makes nothing
    let empty = StateRequest::patch(&patch("{}"), 64, 9_000).new_guest(100, 100);
    assert!(serve(None, &empty).store.is_none());
    // a use within the idle limit moves the last use; one after it does not
    let used = serve(
        Some(made.clone()),
        &StateRequest::read(9_000).touching(150, 100),
    );
    assert_eq!(used.store.map(|s| s.guest_seen), Some(150));
    let late = serve(
        Some(made.clone()),
        &StateRequest::read(9_000).touching(300, 100),
    );
    assert_eq!((late.store, late.reply.state.guest_seen), (None, 100));
    // not a guest: a touch changes nothing
    let user = serve(None, &StateRequest::patch(&patch(r#"{"a":1}"#), 64, 9_000))
        .store
        .unwrap();
    assert!(
        serve(Some(user), &StateRequest::read(9_000).touching(150, 100))
            .store
            .is_none()
    );
    // the wire carries its life
    let text = serde_json::to_string(&serve(Some(made), &StateRequest::read(0)).reply).unwrap();
    assert!(
        text.contains(r#""gc":100"#) && text.contains(r#""gl":100"#),
        "{text}"
    );
}

#[test]
fn an_abandoned_guest_object_empties_itself_once_idle_not_only_at_its_absolute_deadline() {
    // made at 100, idle limit 1_000, absolute deadline 9_000: the first alarm is at 1_100
    let first = StateRequest::patch(&patch(r#"{"cart":[1]}"#), 64, 9_000).new_guest(100, 1_000);
    let made = serve(None, &first);
    assert_eq!(made.alarm, Some(1_100));
    let made = made.store.unwrap();
    assert_eq!(
        on_alarm(Some(&made), 1_100),
        None,
        "idle: it forgets everything"
    );
    // used at 600: the alarm set for 1_100 finds it used and waits until 1_600
    let used = serve(
        Some(made.clone()),
        &StateRequest::read(9_000).touching(600, 1_000),
    );
    assert_eq!(
        used.alarm, None,
        "a use sets no alarm: the pending one re-arms"
    );
    let used = used.store.unwrap();
    assert_eq!(on_alarm(Some(&used), 1_100), Some(1_600));
    assert_eq!(on_alarm(Some(&used), 1_600), None);
    // never past the absolute deadline
    let late = DataState {
        guest_seen: 8_500,
        ..used.clone()
    };
    assert_eq!(on_alarm(Some(&late), 8_600), Some(9_000));
    // an ended guest keeps its end until the deadline, so that late requests are told
    let ended = serve(Some(used), &StateRequest::end(9_000)).store.unwrap();
    assert_eq!(on_alarm(Some(&ended), 1_600), Some(9_000));
    // a signed-in session's object waits for its deadline, as before
    let user = serve(None, &StateRequest::patch(&patch(r#"{"a":1}"#), 64, 9_000));
    assert_eq!(user.alarm, Some(9_000));
}
