//! What an origin's `Set-Cookie` does to the session cookie (`cookies::change_in`,
//! with its `Expires` date parser `parse_http_date`), on arbitrary text: never a panic.
//!
//! It found an overflow on a 17-digit year (`Expires=Thu, 01 Jan 19707777777777777
//! 00:00:00 GMT`: a panic in debug builds, a wrapped date in release), fixed in 30b3fbc;
//! that input is kept in fuzz/seeds/set_cookie/.
#![no_main]

use edge_session::cookies::{change_in, parse_http_date};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (name, set_cookie) = text.split_once('\n').unwrap_or(("sid", text));
    let _ = change_in(set_cookie, name, 1_800_000_000);
    if let Some(t) = parse_http_date(set_cookie) {
        // a date it accepts lies between 1970 and the end of year 9999
        assert!(t < 253_402_300_800, "{set_cookie:?} gave {t}");
    }
});
