//! Cookies in (`Cookie` request header) and out (`Set-Cookie`).
//!
//! Parsing is defensive: an oversized or malformed header yields no cookies,
//! never an error the client could turn into a 5xx.

/// A `Cookie` header longer than this is treated as carrying no cookies.
pub const MAX_COOKIE_HEADER: usize = 16 * 1024;

/// A request's `Cookie` header, split into its pairs once.
///
/// ```
/// use edge_session::cookies::CookieHeader;
/// let c = CookieHeader::parse("a=1; sid=abc; t=x");
/// assert_eq!(c.get("sid"), Some("abc"));
/// assert_eq!(c.without("t").as_deref(), Some("a=1; sid=abc"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CookieHeader<'a> {
    /// Each `;`-separated piece as sent (trimmed), with its name and value when it has `=`.
    pieces: Vec<(&'a str, Option<(&'a str, &'a str)>)>,
}

impl<'a> CookieHeader<'a> {
    /// Splits a header into its pieces. A header over [`MAX_COOKIE_HEADER`]
    /// bytes carries no cookies.
    pub fn parse(header: &'a str) -> CookieHeader<'a> {
        if header.len() > MAX_COOKIE_HEADER {
            return CookieHeader::default();
        }
        let pieces = header
            .split(';')
            .flat_map(split_joined_lines)
            .map(str::trim)
            .filter(|piece| !piece.is_empty())
            .map(|piece| {
                (
                    piece,
                    piece.split_once('=').map(|(k, v)| (k.trim(), v.trim())),
                )
            })
            .collect();
        CookieHeader { pieces }
    }

    /// The first value of cookie `name`, one pair of surrounding quotes removed.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.pieces
            .iter()
            .find_map(|(_, kv)| kv.filter(|(k, _)| *k == name).map(|(_, v)| strip_quotes(v)))
    }

    /// The header without any cookie called `name`, other pieces as they were
    /// sent; `None` when nothing is left.
    pub fn without(&self, name: &str) -> Option<String> {
        self.without_any(&[name])
    }

    /// The header without any cookie called by one of `names`, other pieces
    /// as they were sent; `None` when nothing is left.
    pub fn without_any(&self, names: &[&str]) -> Option<String> {
        let kept: Vec<&str> = self
            .pieces
            .iter()
            .filter(|(piece, kv)| !names.contains(&kv.map_or(*piece, |(k, _)| k)))
            .map(|(piece, _)| *piece)
            .collect();
        (!kept.is_empty()).then(|| kept.join("; "))
    }
}

/// Splits a piece where two `Cookie` header lines were joined with `", "` (as
/// runtimes join repeated headers): at each `", "` followed by a cookie name
/// and `=`. A comma is not a cookie-octet, so no genuine value is cut; a value
/// that holds one anyway (`a=x, y`) stays whole unless `y` looks like `name=`.
fn split_joined_lines(piece: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(piece);
    std::iter::from_fn(move || {
        let text = rest?;
        let mut from = 0;
        // A search for the comma alone (memchr), then the space: a search for ", "
        // builds a substring searcher for every piece of every request.
        while let Some(i) = text[from..].find(',').map(|i| from + i) {
            from = i + 1;
            let Some(next) = text[from..].strip_prefix(' ') else {
                continue;
            };
            let name_end = next.find('=').unwrap_or(0);
            if name_end > 0 && crate::config::is_cookie_name(next[..name_end].trim()) {
                rest = Some(next);
                return Some(&text[..i]);
            }
        }
        rest = None;
        Some(text)
    })
}

fn strip_quotes(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v)
}

/// A `Set-Cookie` value for a browser-session cookie the worker owns:
/// `Path=/; Secure; HttpOnly; SameSite=Lax`, no `Domain`, no `Max-Age`.
pub fn set(name: &str, value: &str) -> String {
    set_for(name, value, None)
}

/// [`set`], living `max_age` seconds when given (a remembered session's
/// cookies outlive the browser), else until the browser closes.
pub fn set_for(name: &str, value: &str, max_age: Option<u64>) -> String {
    match max_age {
        Some(secs) => {
            format!("{name}={value}; Path=/; Max-Age={secs}; Secure; HttpOnly; SameSite=Lax")
        }
        None => format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax"),
    }
}

/// A `Set-Cookie` value that deletes cookie `name`.
pub fn clear(name: &str) -> String {
    format!("{name}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax")
}

/// What an origin's `Set-Cookie` does to one cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieChange {
    /// The cookie gets this (non-empty) value.
    Set(String),
    /// The cookie is removed (empty value, `Max-Age` ≤ 0 or `Expires` in the past).
    Cleared,
}

/// What one `Set-Cookie` header does to cookie `name`, if it is about that cookie.
/// `now_secs` decides whether an `Expires` date lies in the past.
pub fn change_in(set_cookie: &str, name: &str, now_secs: u64) -> Option<CookieChange> {
    let mut parts = set_cookie.split(';');
    let (k, v) = parts.next()?.split_once('=')?;
    if k.trim() != name {
        return None;
    }
    let value = strip_quotes(v.trim());
    if value.is_empty() {
        return Some(CookieChange::Cleared);
    }
    let mut max_age_seen = false;
    let mut expired = false;
    for attr in parts {
        let (ak, av) = attr.split_once('=').unwrap_or((attr, ""));
        let ak = ak.trim();
        if ak.eq_ignore_ascii_case("max-age") {
            max_age_seen = true;
            expired = av.trim().parse::<i64>().is_ok_and(|n| n <= 0);
        } else if ak.eq_ignore_ascii_case("expires") && !max_age_seen {
            // Max-Age wins over Expires whichever comes first (RFC 6265 5.3).
            if let Some(t) = parse_http_date(av.trim()) {
                expired = t <= now_secs;
            }
        }
    }
    Some(if expired {
        CookieChange::Cleared
    } else {
        CookieChange::Set(value.to_string())
    })
}

/// Parses an IMF-fixdate (`Thu, 01 Jan 1970 00:00:00 GMT`) into unix seconds.
/// Other date forms give `None` (and are then ignored).
pub fn parse_http_date(s: &str) -> Option<u64> {
    let s = s.split_once(',').map_or(s, |(_, rest)| rest).trim();
    let mut it = s.split_whitespace();
    let day: u64 = it.next()?.parse().ok()?;
    let month = match it.next()?.to_ascii_lowercase().as_str() {
        "jan" => 1,
        "feb" => 2,
        "mar" => 3,
        "apr" => 4,
        "may" => 5,
        "jun" => 6,
        "jul" => 7,
        "aug" => 8,
        "sep" => 9,
        "oct" => 10,
        "nov" => 11,
        "dec" => 12,
        _ => return None,
    };
    let mut year: u64 = it.next()?.parse().ok()?;
    if year < 100 {
        year += if year < 70 { 2000 } else { 1900 };
    }
    let mut hms = it.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    // Years past 9999 are not dates a cookie can carry, and would overflow below.
    if !(1..=31).contains(&day) || !(1970..=9999).contains(&year) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // Days from 1970-01-01 to the civil date (Howard Hinnant's algorithm).
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + h * 3_600 + m * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(header: &'a str, name: &str) -> Option<&'a str> {
        CookieHeader::parse(header).get(name)
    }

    fn without(header: &str, name: &str) -> Option<String> {
        CookieHeader::parse(header).without(name)
    }

    #[test]
    fn finds_cookies_by_exact_name() {
        let h = "a=1; sid=abc; sidx=no; __Host-edge-ticket=t.k";
        assert_eq!(get(h, "sid"), Some("abc"));
        assert_eq!(get(h, "__Host-edge-ticket"), Some("t.k"));
        assert_eq!(get(h, "nope"), None);
        assert_eq!(get("sid=\"quoted\"", "sid"), Some("quoted"));
        assert_eq!(get("sid=first; sid=second", "sid"), Some("first"));
    }

    #[test]
    fn cookie_lines_joined_with_a_comma_are_read_as_separate_cookies() {
        let h = "sid=abc, __Host-edge-ticket=v1.k1.p.m";
        assert_eq!(get(h, "sid"), Some("abc"));
        assert_eq!(get(h, "__Host-edge-ticket"), Some("v1.k1.p.m"));
        assert_eq!(without(h, "__Host-edge-ticket").as_deref(), Some("sid=abc"));
        // a comma inside a value that is not followed by `name=` stays in the value
        assert_eq!(get("pref=a, b; sid=x", "pref"), Some("a, b"));
        assert_eq!(get("a=1; b=2, c=3; d=4", "c"), Some("3"));
    }

    #[test]
    fn oversized_or_malformed_headers_carry_nothing() {
        let huge = format!("sid={}", "a".repeat(MAX_COOKIE_HEADER));
        assert_eq!(get(&huge, "sid"), None);
        assert_eq!(get(";;;==;", "sid"), None);
        assert_eq!(get("sid", "sid"), None);
        assert_eq!(get("", "sid"), None);
    }

    #[test]
    fn removes_only_the_named_cookie() {
        assert_eq!(without("a=1; t=x; b=2", "t").as_deref(), Some("a=1; b=2"));
        assert_eq!(without("t=x", "t"), None);
        assert_eq!(without("tt=1;t=2", "t").as_deref(), Some("tt=1"));
    }

    #[test]
    fn set_and_clear_have_the_required_attributes() {
        assert_eq!(
            set("sid", "v"),
            "sid=v; Path=/; Secure; HttpOnly; SameSite=Lax"
        );
        assert!(clear("sid").starts_with("sid=; Path=/; Max-Age=0;"));
    }

    #[test]
    fn detects_cleared_and_replaced_cookies() {
        let now = 1_700_000_000;
        assert_eq!(
            change_in("sid=; Path=/", "sid", now),
            Some(CookieChange::Cleared)
        );
        assert_eq!(
            change_in("sid=x; Max-Age=0", "sid", now),
            Some(CookieChange::Cleared)
        );
        assert_eq!(
            change_in("sid=x; max-age=-1", "sid", now),
            Some(CookieChange::Cleared)
        );
        assert_eq!(
            change_in("sid=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "sid", now),
            Some(CookieChange::Cleared)
        );
        assert_eq!(
            change_in(
                "sid=new; Expires=Fri, 01 Jan 2100 00:00:00 GMT; HttpOnly",
                "sid",
                now
            ),
            Some(CookieChange::Set("new".into()))
        );
        assert_eq!(
            change_in(
                "sid=new; Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
                "sid",
                now
            ),
            Some(CookieChange::Set("new".into()))
        );
        assert_eq!(change_in("other=; Max-Age=0", "sid", now), None);
        assert_eq!(change_in("garbage", "sid", now), None);
    }

    #[test]
    fn http_dates() {
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Wed, 25 Nov 2026 00:00:00 GMT"),
            Some(1_795_564_800)
        );
        assert_eq!(parse_http_date("not a date"), None);
        assert_eq!(parse_http_date("Thu, 99 Jan 1970 00:00:00 GMT"), None);
        // a 17-digit year once overflowed the day count
        assert_eq!(
            parse_http_date("Thu, 01 Jan 99999999999999999 00:00:00 GMT"),
            None
        );
        assert_eq!(
            parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(253_402_300_799)
        );
    }
}
