//! Host micro-benchmarks of the per-request work (`cargo bench`): ticket
//! open and seal, cookie parsing, the whole ticket-path decision, and the
//! session data merge a Durable Object runs for each change.
//! A plain harness (no extra dependencies): each case runs for about half a
//! second after a warm-up and reports the mean time per operation.

use edge_session::config::{Config, SigningKey};
use edge_session::cookies::CookieHeader;
use edge_session::data::{DataState, Patch};
use edge_session::gate::{Gate, IsolateMemory};
use edge_session::request::{Head, Incoming};
use edge_session::session::{Provenance, SessionHash};
use edge_session::store::{Kv, Lookup, LookupAnswer, StoreError};
use edge_session::ticket::{self, Ticket};
use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// A store the ticket path must never touch.
struct Untouched;

impl Kv for Untouched {
    async fn get(&self, _: &str) -> Result<Option<String>, StoreError> {
        unreachable!("the ticket path read KV")
    }
    async fn put(&self, _: &str, _: &str, _: u64) -> Result<(), StoreError> {
        unreachable!("the ticket path wrote KV")
    }
    async fn delete(&self, _: &str) -> Result<(), StoreError> {
        unreachable!("the ticket path deleted from KV")
    }
    async fn list(&self, _: &str) -> Result<Vec<String>, StoreError> {
        unreachable!("the ticket path listed KV")
    }
}

impl Lookup for Untouched {
    async fn lookup(&self, _: &str) -> LookupAnswer {
        unreachable!("the ticket path asked the lookup")
    }
}

/// `cargo bench` passes `--bench`; `cargo test --all-targets` runs this as a
/// quick smoke test of the same code (the assertions still hold).
fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn bench(name: &str, mut f: impl FnMut()) -> Duration {
    for _ in 0..1_000 {
        f();
    }
    if !measuring() {
        return Duration::ZERO;
    }
    let started = Instant::now();
    let mut n: u32 = 0;
    while started.elapsed() < Duration::from_millis(500) {
        for _ in 0..100 {
            f();
        }
        n += 100;
    }
    let per = started.elapsed() / n;
    println!(
        "{name:<40} {:>9.2} µs/op  ({n} ops)",
        per.as_secs_f64() * 1e6
    );
    per
}

fn main() {
    let cfg = Config::from_lookup(|name| match name {
        "SESSION_KEYS" => Some("k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into()),
        // A syntactically valid PKCS#8 header: the host never signs.
        "ASSERTION_KEYS" => Some(format!(
            "a1:MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg{}",
            "A".repeat(128)
        )),
        _ => None,
    })
    .expect("a valid configuration");
    let key = SigningKey::new("k1", cfg.keys[0].secret().to_vec());
    let now = 1_800_000_000_000;
    let session_id = "pX8kXb0b6wQ5oQjQ3b8mXyV8n3wYk2wq9mJ8f4b7Q0c";
    let ticket = Ticket {
        session_hash: SessionHash::of(session_id).0,
        user: "alice@example.com".into(),
        claims: serde_json::json!({"name": "Alice", "role": "admin"})
            .as_object()
            .cloned(),
        created: now - 60_000,
        last_seen: now - 10_000,
        verified_at: now - 10_000,
        provenance: Provenance::Edge,
        data_version: 0,
        guest: false,
        remember: false,
    };
    let sealed = ticket::seal(&ticket, &key, &cfg.ticket_cookie).expect("a ticket");
    let cookie = format!(
        "_ga=GA1.1.123; theme=dark; sid={session_id}; {}={sealed}; consent=yes",
        cfg.ticket_cookie
    );

    bench("ticket::seal", || {
        black_box(ticket::seal(black_box(&ticket), &key, &cfg.ticket_cookie));
    });
    bench("ticket::open", || {
        black_box(
            ticket::open(
                black_box(&sealed),
                std::slice::from_ref(&key),
                &cfg.ticket_cookie,
            )
            .ok(),
        );
    });
    bench("CookieHeader::parse + get", || {
        let c = CookieHeader::parse(black_box(&cookie));
        black_box(c.get("sid"));
    });
    let memory = RefCell::new(IsolateMemory::default());
    let decision = bench("whole ticket-path decision (admit)", || {
        let head = Head {
            method: "GET",
            path: "/dashboard",
            cookie: Some(black_box(&cookie)),
            accept: Some("text/html"),
            site: "https://app.example",
            ..Head::default()
        };
        let incoming = Incoming::new(&cfg, head);
        let gate = Gate::new(&cfg, &Untouched, Some(&Untouched), &memory, now);
        let d = pollster::block_on(gate.admit(&incoming));
        assert!(d.identity().is_some(), "not allowed: {d:?}");
        black_box(d);
    });
    if decision > Duration::from_micros(5) {
        println!("note: the ticket-path decision took more than the 5 µs target");
    }

    // A 1 KB patch (40 keys) merged into 1 KB of data, as the session's object does.
    let members: Vec<String> = (0..40)
        .map(|i| format!("\"item{i:02}\":\"{}\"", "v".repeat(16)))
        .collect();
    let text = format!("{{{}}}", members.join(","));
    assert!(text.len() >= 1000, "{} bytes", text.len());
    let patch = Patch::parse(&text).expect("a patch");
    let mut current = DataState::default();
    current.apply(&patch, 4096).expect("it fits");
    let merge = bench("session data: parse + merge 1 KB into 1 KB", || {
        let mut s = current.clone();
        let p = Patch::parse(black_box(&text)).expect("a patch");
        black_box(s.apply(&p, 4096).expect("it fits"));
    });
    if merge > Duration::from_micros(20) {
        println!("note: the 1 KB merge took more than the 20 µs target");
    }
}
