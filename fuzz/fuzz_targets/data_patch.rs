//! A change to session data (`X-Edge-Session-Data`) on arbitrary header bytes:
//! decoding, parsing and merging never panic; what is accepted merges within the
//! limit into printable ASCII JSON that parses back to an object, and what is refused
//! changes nothing.
#![no_main]

use edge_session::data::{header_text, DataState, Patch, MAX_LIMIT};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // the header as the runtime hands it over: one character per byte
    let raw: String = data.iter().map(|&b| char::from(b)).collect();
    let Ok(text) = header_text(&raw) else {
        return;
    };
    let Ok(patch) = Patch::parse(&text) else {
        return;
    };
    let mut state = DataState {
        version: 3,
        data: Some(r#"{"cart":[1,2],"flash":"Saved"}"#.into()),
        ..DataState::default()
    };
    let before = state.clone();
    let limit = 64 + usize::from(data.first().copied().unwrap_or(0)) * 32;
    match state.apply(&patch, limit.min(MAX_LIMIT)) {
        Ok(changed) => {
            assert_eq!(changed, !patch.is_empty());
            assert_eq!(state.version, before.version + u64::from(changed));
            if let Some(json) = &state.data {
                // printable ASCII only: DEL and the controls are escaped too
                let printable = json.bytes().all(|b| (0x20..0x7f).contains(&b));
                assert!(printable && json.len() <= limit, "{json}");
                let back: serde_json::Value = serde_json::from_str(json).expect("valid JSON");
                assert!(back.as_object().is_some_and(|o| !o.is_empty()));
            }
        }
        Err(_) => assert_eq!(state, before, "a refused change changed the data"),
    }
});
