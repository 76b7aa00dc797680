//! The origin's session signals (`signals::read`) on arbitrary header values and
//! Set-Cookie lines: it never panics, and a login it accepts has a user of 1 to 256
//! bytes without control characters and claims whose text is at most 2 KB.
#![no_main]

use edge_session::signals::{self, MAX_CLAIMS, MAX_USER};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // fields separated by NUL: login, claims, logout, then Set-Cookie lines
    let mut fields = text.split('\0');
    let login = fields.next().filter(|s| !s.is_empty()).map(str::to_string);
    let claims = fields.next().filter(|s| !s.is_empty()).map(str::to_string);
    let logout = fields.next().filter(|s| !s.is_empty()).map(str::to_string);
    let set_cookies: Vec<String> = fields.map(str::to_string).collect();
    let header = |name: &str| match name {
        signals::LOGIN => login.clone(),
        signals::CLAIMS => claims.clone(),
        signals::LOGOUT => logout.clone(),
        _ => None,
    };
    if let Ok(s) = signals::read(header, &set_cookies, "sid", 1_800_000_000) {
        if let Some((user, read_claims)) = s.login {
            assert!(
                !user.trim().is_empty() && user.len() <= MAX_USER,
                "user {user:?}"
            );
            assert!(
                !user.chars().any(char::is_control),
                "control character in {user:?}"
            );
            if read_claims.is_some() {
                // the claims header was read: its text is within the limit
                assert!(claims.as_ref().is_some_and(|t| t.len() <= MAX_CLAIMS));
            }
        }
        assert_eq!(s.logout, logout.is_some());
    }
});
