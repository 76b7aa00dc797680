//! Every parser that sees client or origin input, fed random and mutated
//! input: none may panic. A small deterministic generator keeps runs repeatable.

use crate::config::{parse_duration, SigningKey};
use crate::session::{is_plausible_id, Provenance, SessionHash};
use crate::{cookies, signals, store, ticket};

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A string mixing the characters parsers care about with random Unicode.
    fn text(&mut self, max: usize) -> String {
        const PIECES: &[&str] = &[
            "=", ";", ",", ".", ":", " ", "\"", "\\", "/", "%", "v1", "k1", "sid", "{", "}", "[",
            "]", "-", "0", "9", "Max-Age", "Expires", "GMT", "é", "😀", "\u{0}", "\n",
        ];
        let len = self.below(max + 1);
        let mut s = String::new();
        while s.len() < len {
            if self.below(3) == 0 {
                s.push(char::from_u32(self.below(0x11_0000) as u32).unwrap_or('x'));
            } else {
                s.push_str(PIECES[self.below(PIECES.len())]);
            }
        }
        s
    }
}

const ROUNDS: usize = 20_000;

#[test]
fn ticket_open_never_panics_and_never_accepts_mutations() {
    let key = SigningKey::new("k1", vec![9; 32]);
    let good = ticket::Ticket {
        session_hash: SessionHash::of("s").0,
        user: "alice".into(),
        claims: None,
        created: 1,
        last_seen: 2,
        verified_at: 3,
        provenance: Provenance::Edge,
        data_version: 0,
        guest: false,
        remember: false,
    };
    let sealed = ticket::seal(&good, &key, "t").unwrap();
    let keys = [key];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..ROUNDS {
        assert!(ticket::open(&rng.text(300), &keys, "t").is_err());
        // mutate the genuine ticket: cut, splice or insert
        let mut m = sealed.clone();
        let at = rng.below(m.len());
        match rng.below(3) {
            0 => m.truncate(at),
            1 => m.insert_str(at, &rng.text(4)),
            _ => {
                let end = (at + 1 + rng.below(8)).min(m.len());
                m.replace_range(at..end, &rng.text(3));
            }
        }
        if m != sealed {
            assert!(ticket::open(&m, &keys, "t").is_err(), "{m}");
        }
    }
}

#[test]
fn cookie_and_signal_parsers_never_panic() {
    let mut rng = Rng(42);
    for _ in 0..ROUNDS {
        let header = rng.text(200);
        let parsed = cookies::CookieHeader::parse(&header);
        let _ = parsed.get("sid");
        let _ = parsed.without("sid");
        let _ = cookies::change_in(&header, "sid", 1_800_000_000);
        let _ = cookies::parse_http_date(&header);
        let _ = parse_duration(&header);
        let _ = is_plausible_id(&header);
        let _ = store::LookupAnswer::from_response(200, &header);
        let value = rng.text(100);
        let _ = signals::read(
            |name| (name != signals::LOGOUT).then(|| value.clone()),
            std::slice::from_ref(&header),
            "sid",
            1_800_000_000,
        );
        let _ = crate::reply::return_to(&header, Some(&value));
    }
}
