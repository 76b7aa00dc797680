//! The `Cookie` header parser on arbitrary text: it never panics, every value it
//! finds is part of the header, and `without(name)` leaves no cookie `name`.
#![no_main]

use edge_session::cookies::CookieHeader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // the first line is the cookie name to ask for, the rest the header
    let (name, header) = text.split_once('\n').unwrap_or(("sid", text));
    let parsed = CookieHeader::parse(header);
    for n in [name, "sid", "__Host-edge-ticket"] {
        if let Some(v) = parsed.get(n) {
            assert!(header.contains(v), "{v:?} is not in the header");
        }
        if let Some(rest) = parsed.without(n) {
            if !n.is_empty() && !n.contains([';', '=']) && n.trim() == n {
                assert_eq!(
                    CookieHeader::parse(&rest).get(n),
                    None,
                    "{n:?} survived in {rest:?}"
                );
            }
        }
    }
});
