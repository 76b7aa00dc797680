//! What happens to a request: the whole request path of DESIGN.md, in its order.
//!
//! 1. identity headers from the client are dropped (by the edge layer, before this);
//! 2. `/.edge-session/*` is answered here ([`Gate::control`]);
//! 3. public paths and CORS preflights pass without identity ([`Verdict::Bypass`]);
//! 4. no session cookie → `no_session`;
//! 5. a fresh ticket bound to the session → allow from `ticket` (no KV read);
//! 6. otherwise KV: expired → delete and deny; live → allow from `kv`
//!    (lookup-born records are asked about again after `REVALIDATE_AFTER`);
//! 7. KV knows nothing → the origin's lookup: valid → learn it, allow from `lookup`;
//!    404 → `invalid_session`;
//! 8. stores failing → a stale but genuine ticket allows in degraded mode (`stale`),
//!    else `store_unavailable`;
//! 9. on allow: last-seen written at most once per `TOUCH_INTERVAL`, in the
//!    background, and a new ticket issued.
//!
//! After the origin answers, [`Gate::finish`] acts on its session signals.
//! Everything here is plain Rust over [`Kv`] and [`Lookup`] with the clock
//! passed in; the wasm layer in `edge/` only moves data in and out.

use crate::config::{Config, Millis};
use crate::cookies::{self, CookieChange};
use crate::session::{is_plausible_id, Expiry, Origin, SessionHash, SessionRecord};
use crate::signals::{MalformedSignal, Signals};
use crate::store::{self, Kv, Lookup, LookupAnswer, StoreOp};
use crate::ticket::{self, Ticket};
use serde_json::json;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// Paths the worker answers itself.
pub const CONTROL_PREFIX: &str = "/.edge-session/";
/// How long an ID the lookup answered 404 for is remembered in the isolate.
pub const UNKNOWN_ID_MEMORY: Millis = 30_000;
/// Most entries an isolate remembers of each kind.
pub const MEMORY_CAPACITY: usize = 4096;
/// Largest body a control endpoint reads.
pub const MAX_CONTROL_BODY: usize = 8 * 1024;
/// `Retry-After` seconds on `store_unavailable`.
pub const RETRY_AFTER_SECS: u32 = 5;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No session cookie.
    NoSession,
    /// The session ID is unknown, malformed or revoked.
    InvalidSession,
    /// Unused for longer than `IDLE_TIMEOUT`.
    IdleTimeout,
    /// Older than `ABSOLUTE_TIMEOUT`.
    AbsoluteTimeout,
    /// KV and/or the lookup failed and no genuine ticket could stand in.
    StoreUnavailable,
}

impl Reason {
    /// The reason as it appears in headers, bodies and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoSession => "no_session",
            Reason::InvalidSession => "invalid_session",
            Reason::IdleTimeout => "idle_timeout",
            Reason::AbsoluteTimeout => "absolute_timeout",
            Reason::StoreUnavailable => "store_unavailable",
        }
    }

    /// Whether the session is dead or unknown, so that both cookies are cleared.
    fn clears_cookies(self) -> bool {
        matches!(
            self,
            Reason::InvalidSession | Reason::IdleTimeout | Reason::AbsoluteTimeout
        )
    }
}

impl From<Expiry> for Reason {
    fn from(e: Expiry) -> Reason {
        match e {
            Expiry::Idle => Reason::IdleTimeout,
            Expiry::Absolute => Reason::AbsoluteTimeout,
        }
    }
}

/// Which tier vouched for an allowed request (`X-Session-Source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A fresh ticket; no store was read.
    Ticket,
    /// The KV record.
    Kv,
    /// The origin's lookup endpoint.
    Lookup,
    /// A stale ticket while the stores fail (degraded mode).
    Stale,
}

impl Source {
    /// The source as it appears in `X-Session-Source` and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Ticket => "ticket",
            Source::Kv => "kv",
            Source::Lookup => "lookup",
            Source::Stale => "stale",
        }
    }
}

/// What the gate decided about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Forward without identity (public path or CORS preflight).
    Bypass,
    /// Forward with identity headers.
    Allow {
        /// `X-Session-User`.
        user: String,
        /// `X-Session-Claims`, when there are claims.
        claims: Option<String>,
        /// `X-Session-Source`.
        source: Source,
    },
    /// Refuse.
    Deny(Reason),
}

/// The parts of a request the gate looks at.
#[derive(Debug, Clone, Default)]
pub struct Incoming<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// URL path (normalised by the URL parser).
    pub path: &'a str,
    /// URL query without `?`.
    pub query: Option<&'a str>,
    /// `Cookie` header.
    pub cookie: Option<&'a str>,
    /// `Accept` header.
    pub accept: Option<&'a str>,
    /// `Origin` header present.
    pub has_origin: bool,
    /// `Access-Control-Request-Method` header present.
    pub has_acr_method: bool,
}

impl Incoming<'_> {
    /// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
    pub fn is_preflight(&self) -> bool {
        self.method.eq_ignore_ascii_case("OPTIONS") && self.has_origin && self.has_acr_method
    }

    /// The raw session ID from the cookie, when it could be genuine.
    fn session_id(&self, cfg: &Config) -> Option<&str> {
        self.cookie
            .and_then(|h| cookies::get(h, &cfg.session_cookie))
            .filter(|id| is_plausible_id(id))
    }

    fn has_cookie(&self, name: &str) -> bool {
        self.cookie.and_then(|h| cookies::get(h, name)).is_some()
    }
}

/// A response the worker writes itself (denials, control endpoints, errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Headers, in order; `Set-Cookie` may repeat.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
}

impl Reply {
    /// A JSON reply that is never cached.
    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply {
            status,
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("Cache-Control".into(), "no-store".into()),
            ],
            body: body.to_string(),
        }
    }

    /// A redirect that is never cached.
    pub fn redirect(location: &str) -> Reply {
        Reply {
            status: 302,
            headers: vec![
                ("Location".into(), location.into()),
                ("Cache-Control".into(), "no-store".into()),
            ],
            body: String::new(),
        }
    }

    /// `503 {"error":"store_unavailable"}` with `Retry-After` and the reason header.
    pub fn store_unavailable() -> Reply {
        Reply::json(503, json!({"error": Reason::StoreUnavailable.as_str()}))
            .with("Retry-After", RETRY_AFTER_SECS.to_string())
            .with("X-Edge-Session-Reason", Reason::StoreUnavailable.as_str())
    }

    /// Adds a header.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// The gate's decision about one request, and what must follow from it.
#[derive(Debug, Clone)]
pub struct Decision {
    /// Allow, bypass or deny.
    pub verdict: Verdict,
    /// The request's session (hash), when it had a plausible one.
    pub session: Option<SessionHash>,
    /// The session's user when a store or ticket told it.
    pub user: Option<String>,
    /// `Set-Cookie` values the worker adds to the response.
    pub set_cookies: Vec<String>,
    /// Writes to run after the response (`ctx.wait_until`).
    pub deferred: Vec<StoreOp>,
}

impl Decision {
    fn new(verdict: Verdict, session: Option<SessionHash>) -> Decision {
        Decision {
            verdict,
            session,
            user: None,
            set_cookies: Vec::new(),
            deferred: Vec::new(),
        }
    }
}

/// What to do with the origin's response, after its signals.
#[derive(Debug, Clone, Default)]
pub struct Finish {
    /// Replace the origin's response with this (malformed signal, failed login write).
    pub replace: Option<Reply>,
    /// `Set-Cookie` values to add.
    pub set_cookies: Vec<String>,
    /// Writes to run after the response.
    pub deferred: Vec<StoreOp>,
    /// What happened, for the log line (`login`, `logout`, `cookie_changed`).
    pub event: Option<&'static str>,
}

/// What one isolate remembers between requests, by session hash: IDs the
/// lookup answered 404 for (so a flood of one bad ID reaches the origin once),
/// and the last-seen writes it already scheduled (so a burst of parallel
/// requests writes once: KV takes one write per second per key).
#[derive(Debug, Default)]
pub struct IsolateMemory {
    unknown: Recent,
    touched: Recent,
}

/// Times of recent events by key, bounded in size.
#[derive(Debug, Default)]
struct Recent(HashMap<String, Millis>);

impl Recent {
    /// When the event happened, if less than `ttl` ago.
    fn since(&self, key: &str, now: Millis, ttl: Millis) -> Option<Millis> {
        self.0
            .get(key)
            .copied()
            .filter(|&t| now.saturating_sub(t) < ttl)
    }

    fn insert(&mut self, key: &str, now: Millis, ttl: Millis) {
        if self.0.len() >= MEMORY_CAPACITY {
            self.0.retain(|_, t| now.saturating_sub(*t) < ttl);
            if self.0.len() >= MEMORY_CAPACITY {
                self.0.clear();
            }
        }
        self.0.insert(key.to_string(), now);
    }
}

/// Counters for the log line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// KV reads on the critical path.
    pub kv_reads: u32,
    /// KV writes and deletes made by the gate itself (deferred ones are in [`Decision::deferred`] and [`Finish::deferred`]).
    pub kv_writes: u32,
    /// Lookups sent to the origin.
    pub lookups: u32,
}

/// The request path, over a KV store, an optional lookup and a clock reading.
pub struct Gate<'a, K: Kv, L: Lookup> {
    /// Configuration.
    pub cfg: &'a Config,
    /// Workers KV (or a fake).
    pub kv: &'a K,
    /// The origin's lookup (when `LOOKUP_URL` is set).
    pub lookup: Option<&'a L>,
    /// The isolate's memory. Borrowed briefly, never across an await.
    pub memory: &'a RefCell<IsolateMemory>,
    /// The time of the request, unix milliseconds.
    pub now: Millis,
    counts: Cell<Counts>,
}

/// How a lookup turned out, in the gate's terms.
enum Asked {
    Valid(SessionRecord),
    NotFound,
    Unavailable,
}

impl<'a, K: Kv, L: Lookup> Gate<'a, K, L> {
    /// A gate for one request.
    pub fn new(
        cfg: &'a Config,
        kv: &'a K,
        lookup: Option<&'a L>,
        memory: &'a RefCell<IsolateMemory>,
        now: Millis,
    ) -> Self {
        Gate {
            cfg,
            kv,
            lookup,
            memory,
            now,
            counts: Cell::new(Counts::default()),
        }
    }

    /// KV and lookup operations so far.
    pub fn counts(&self) -> Counts {
        self.counts.get()
    }

    fn count(&self, f: impl FnOnce(&mut Counts)) {
        let mut c = self.counts.get();
        f(&mut c);
        self.counts.set(c);
    }

    /// Decides about a request that is not a control request (steps 3 to 9).
    pub async fn admit(&self, req: &Incoming<'_>) -> Decision {
        let cfg = self.cfg;
        let session = req.session_id(cfg).map(SessionHash::of);
        if req.is_preflight() || cfg.is_public(req.path) {
            return Decision::new(Verdict::Bypass, session);
        }
        let raw_cookie = req
            .cookie
            .and_then(|h| cookies::get(h, &cfg.session_cookie));
        let Some(hash) = session else {
            let reason = if raw_cookie.is_some() {
                Reason::InvalidSession
            } else {
                Reason::NoSession
            };
            return self.deny(req, reason, None, None);
        };

        // Step 5: the ticket, verified before anything in it is used.
        let ticket = req
            .cookie
            .and_then(|h| cookies::get(h, &cfg.ticket_cookie))
            .and_then(|v| ticket::open(v, &cfg.keys, &cfg.ticket_cookie))
            .filter(|t| t.is_bound_to(&hash));
        if let Some(t) = &ticket {
            let fresh = self.now.saturating_sub(t.verified_at) < cfg.ticket_ttl;
            let touch_due = self.now.saturating_sub(t.last_seen) >= cfg.touch_interval;
            let alive = t.expiry(cfg, self.now).is_none();
            if fresh && !touch_due && alive {
                let mut d = Decision::new(allow(&t.record(), Source::Ticket), Some(hash));
                d.user = Some(t.user.clone());
                return d;
            }
        }

        let known_unknown =
            self.memory
                .borrow()
                .unknown
                .since(&hash.0, self.now, UNKNOWN_ID_MEMORY);
        if known_unknown.is_some() {
            return self.deny(req, Reason::InvalidSession, Some(hash), None);
        }

        // Step 6: KV. A record that cannot be read is as good as none: it is replaced or expires.
        self.count(|c| c.kv_reads += 1);
        let stored = self
            .kv
            .get(&hash.record_key())
            .await
            .map(|v| v.and_then(|json| serde_json::from_str::<SessionRecord>(&json).ok()));
        match stored {
            Ok(Some(record)) => self.with_record(req, hash, record).await,
            Ok(None) => {
                // An edge-born session that KV no longer has was revoked or expired:
                // the origin cannot know it, so it is not asked.
                let edge_born = ticket.as_ref().is_some_and(|t| t.origin == Origin::Edge);
                if self.lookup.is_none() || edge_born {
                    return self.deny(req, Reason::InvalidSession, Some(hash), None);
                }
                match self.ask(&hash, req).await {
                    Asked::Valid(record) => {
                        if let Some(expired) = record.expiry(cfg, self.now) {
                            return self.deny(req, expired.into(), Some(hash), Some(record.user));
                        }
                        let writes = store::create_ops(cfg, &hash, &record, self.now);
                        self.allow(hash, record, Source::Lookup, writes)
                    }
                    Asked::NotFound => self.deny(req, Reason::InvalidSession, Some(hash), None),
                    Asked::Unavailable => self.degraded(req, hash, ticket),
                }
            }
            Err(_) => self.degraded(req, hash, ticket),
        }
    }

    /// Step 6 with a record: dead → deleted and denied; live → allowed, after
    /// asking the lookup again when a lookup-born record is due for it.
    async fn with_record(
        &self,
        req: &Incoming<'_>,
        hash: SessionHash,
        record: SessionRecord,
    ) -> Decision {
        let cfg = self.cfg;
        if let Some(expired) = record.expiry(cfg, self.now) {
            return self.forget(req, expired.into(), hash, record.user);
        }
        let due = record.origin == Origin::Lookup
            && self.now.saturating_sub(record.verified_at) >= cfg.revalidate_after;
        if !due {
            return self.allow(hash, record, Source::Kv, Vec::new());
        }
        match self.ask(&hash, req).await {
            Asked::Valid(fresh) => {
                let merged = SessionRecord {
                    created: record.created.min(fresh.created),
                    last_seen: record.last_seen.max(fresh.last_seen),
                    ..fresh
                };
                let mut writes = Vec::new();
                if merged.user != record.user {
                    writes.extend(store::remove_ops(&hash, Some(&record.user)));
                    writes.extend(store::create_ops(cfg, &hash, &merged, self.now));
                } else {
                    writes.push(store::put_record(cfg, &hash, &merged, self.now));
                }
                self.allow(hash, merged, Source::Kv, writes)
            }
            Asked::NotFound => self.forget(req, Reason::InvalidSession, hash, record.user),
            // The lookup is down: the KV answer stands.
            Asked::Unavailable => self.allow(hash, record, Source::Kv, Vec::new()),
        }
    }

    /// Denies a dead session and deletes it (record and index entry) after the response.
    fn forget(
        &self,
        req: &Incoming<'_>,
        reason: Reason,
        hash: SessionHash,
        user: String,
    ) -> Decision {
        let mut d = self.deny(req, reason, Some(hash.clone()), None);
        d.deferred = store::remove_ops(&hash, Some(&user));
        d.user = Some(user);
        d
    }

    /// Step 8: a genuine ticket, bound to the session and within its limits,
    /// stands in for failing stores; otherwise `store_unavailable`.
    fn degraded(&self, req: &Incoming<'_>, hash: SessionHash, ticket: Option<Ticket>) -> Decision {
        match ticket {
            Some(t) if t.expiry(self.cfg, self.now).is_none() => {
                let mut d = Decision::new(allow(&t.record(), Source::Stale), Some(hash));
                d.user = Some(t.user);
                d
            }
            _ => self.deny(req, Reason::StoreUnavailable, Some(hash), None),
        }
    }

    /// Asks the origin's lookup about the request's session.
    async fn ask(&self, hash: &SessionHash, req: &Incoming<'_>) -> Asked {
        let (Some(lookup), Some(id)) = (self.lookup, req.session_id(self.cfg)) else {
            return Asked::Unavailable;
        };
        self.count(|c| c.lookups += 1);
        match lookup.lookup(id).await {
            LookupAnswer::Valid(s) => {
                let secs = |t: Option<u64>| t.map(|s| s.saturating_mul(1000)).unwrap_or(self.now);
                Asked::Valid(SessionRecord {
                    user: s.user,
                    claims: s.claims,
                    created: secs(s.created),
                    last_seen: secs(s.last_seen).min(self.now),
                    origin: Origin::Lookup,
                    verified_at: self.now,
                })
            }
            LookupAnswer::NotFound => {
                self.memory
                    .borrow_mut()
                    .unknown
                    .insert(&hash.0, self.now, UNKNOWN_ID_MEMORY);
                Asked::NotFound
            }
            LookupAnswer::Unavailable(_) => Asked::Unavailable,
        }
    }

    /// Step 9: allow, touching last-seen when due and issuing a fresh ticket.
    fn allow(
        &self,
        hash: SessionHash,
        mut record: SessionRecord,
        source: Source,
        mut writes: Vec<StoreOp>,
    ) -> Decision {
        let cfg = self.cfg;
        if self.now.saturating_sub(record.last_seen) >= cfg.touch_interval {
            let scheduled =
                self.memory
                    .borrow()
                    .touched
                    .since(&hash.0, self.now, cfg.touch_interval);
            match scheduled {
                // A parallel request of this isolate already writes this last-seen.
                Some(t) if t > record.last_seen => record.last_seen = t,
                _ => {
                    record.last_seen = self.now;
                    // A touch supersedes any plain record write planned above.
                    let key = hash.record_key();
                    writes.retain(|op| op.key() != key);
                    writes.insert(0, store::put_record(cfg, &hash, &record, self.now));
                    let mut memory = self.memory.borrow_mut();
                    memory.touched.insert(&hash.0, self.now, cfg.touch_interval);
                }
            }
        }
        let mut d = Decision::new(allow(&record, source), Some(hash.clone()));
        d.set_cookies.push(self.ticket_cookie(&hash, &record));
        d.user = Some(record.user);
        d.deferred = writes;
        d
    }

    /// A `Set-Cookie` with a new ticket (or clearing it, when claims make it too large).
    fn ticket_cookie(&self, hash: &SessionHash, record: &SessionRecord) -> String {
        let t = Ticket::for_record(hash, record, self.now);
        match ticket::seal(&t, &self.cfg.keys[0], &self.cfg.ticket_cookie) {
            Some(sealed) => cookies::set(&self.cfg.ticket_cookie, &sealed),
            None => cookies::clear(&self.cfg.ticket_cookie),
        }
    }

    fn deny(
        &self,
        req: &Incoming<'_>,
        reason: Reason,
        session: Option<SessionHash>,
        user: Option<String>,
    ) -> Decision {
        let mut d = Decision::new(Verdict::Deny(reason), session);
        d.user = user;
        if reason.clears_cookies() {
            d.set_cookies = self.clear_both();
        } else if reason == Reason::NoSession && req.has_cookie(&self.cfg.ticket_cookie) {
            d.set_cookies.push(cookies::clear(&self.cfg.ticket_cookie));
        }
        d
    }

    fn clear_both(&self) -> Vec<String> {
        vec![
            cookies::clear(&self.cfg.session_cookie),
            cookies::clear(&self.cfg.ticket_cookie),
        ]
    }

    /// Acts on the origin's session signals after a forwarded request.
    /// `new_id` draws a fresh session ID (256 bits from the platform CSPRNG).
    pub async fn finish(
        &self,
        decision: &Decision,
        signals: Result<Signals, MalformedSignal>,
        new_id: impl FnOnce() -> Option<String>,
    ) -> Finish {
        let cfg = self.cfg;
        let signals = match signals {
            Ok(s) => s,
            Err(MalformedSignal(problem)) => {
                return Finish {
                    replace: Some(Reply::json(
                        502,
                        json!({"error": "bad_signal", "detail": problem}),
                    )),
                    event: Some("bad_signal"),
                    ..Finish::default()
                };
            }
        };
        let previous = decision.session.as_ref();
        let forget_previous = || -> Vec<StoreOp> {
            previous
                .map(|h| store::remove_ops(h, decision.user.as_deref()))
                .unwrap_or_default()
        };

        if let Some((user, claims)) = signals.login {
            let failed = || Finish {
                replace: Some(Reply::store_unavailable()),
                event: Some("login_failed"),
                ..Finish::default()
            };
            let Some(id) = new_id() else {
                return failed();
            };
            let hash = SessionHash::of(&id);
            let record = SessionRecord {
                user,
                claims,
                created: self.now,
                last_seen: self.now,
                origin: Origin::Edge,
                verified_at: self.now,
            };
            // The new session must be in KV before the browser gets its cookie.
            for op in store::create_ops(cfg, &hash, &record, self.now) {
                self.count(|c| c.kv_writes += 1);
                if op.apply(self.kv).await.is_err() {
                    return failed();
                }
            }
            let deferred = forget_previous();
            return Finish {
                replace: None,
                set_cookies: vec![
                    cookies::set(&cfg.session_cookie, &id),
                    self.ticket_cookie(&hash, &record),
                ],
                deferred,
                event: Some("login"),
            };
        }

        if signals.logout {
            let deferred = forget_previous();
            return Finish {
                set_cookies: self.clear_both(),
                deferred,
                event: Some("logout"),
                ..Finish::default()
            };
        }

        // Attach mode: the origin cleared the session cookie or set another ID.
        let current = decision.session.as_ref();
        let ended = match &signals.session_cookie {
            Some(CookieChange::Cleared) => current.is_some(),
            Some(CookieChange::Set(v)) => current.is_some_and(|h| *h != SessionHash::of(v)),
            None => false,
        };
        if ended {
            let deferred = forget_previous();
            return Finish {
                set_cookies: vec![cookies::clear(&cfg.ticket_cookie)],
                deferred,
                event: Some("cookie_changed"),
                ..Finish::default()
            };
        }
        Finish {
            set_cookies: decision.set_cookies.clone(),
            ..Finish::default()
        }
    }

    /// Answers `/.edge-session/*` (`health` also has [`health`] for an invalid configuration).
    /// `authorization` is the request's `Authorization` header; `body` its body, read only
    /// for an authorised revoke, and `None` when it was over [`MAX_CONTROL_BODY`].
    pub async fn control(
        &self,
        req: &Incoming<'_>,
        authorization: Option<&str>,
        body: Option<&str>,
    ) -> Reply {
        let name = req.path.strip_prefix(CONTROL_PREFIX).unwrap_or("");
        let post = req.method.eq_ignore_ascii_case("POST");
        match (name, post) {
            ("health", _) => health(Ok(self.cfg)),
            ("logout", true) => self.logout(req).await,
            ("revoke", true) => self.revoke(authorization, body).await,
            ("logout" | "revoke", false) => {
                Reply::json(405, json!({"error": "method_not_allowed"})).with("Allow", "POST")
            }
            _ => Reply::json(404, json!({"error": "not_found"})),
        }
    }

    async fn logout(&self, req: &Incoming<'_>) -> Reply {
        let target = self.cfg.login_url.as_deref().unwrap_or("/");
        let mut reply = Reply::redirect(target);
        if let Some(hash) = req.session_id(self.cfg).map(SessionHash::of) {
            if self.end_session(&hash).await.is_err() {
                reply = Reply::store_unavailable();
            }
        }
        with_cookies(reply, &self.clear_both())
    }

    /// Deletes a session and its index entry; `Ok(true)` if it existed.
    async fn end_session(&self, hash: &SessionHash) -> Result<bool, store::StoreError> {
        self.count(|c| c.kv_reads += 1);
        let user = self
            .kv
            .get(&hash.record_key())
            .await?
            .and_then(|json| serde_json::from_str::<SessionRecord>(&json).ok())
            .map(|r| r.user);
        let existed = user.is_some();
        for op in store::remove_ops(hash, user.as_deref()) {
            self.count(|c| c.kv_writes += 1);
            op.apply(self.kv).await?;
        }
        Ok(existed)
    }

    /// Checks the revoke endpoint's bearer token: 404 while `ADMIN_TOKEN` is
    /// unset, 401 when it does not match. Done before the body is read.
    pub fn check_admin(&self, authorization: Option<&str>) -> Result<(), Reply> {
        let Some(expected) = &self.cfg.admin_token else {
            return Err(Reply::json(404, json!({"error": "not_found"})));
        };
        let given = authorization
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or("");
        if !constant_time_eq(given.trim().as_bytes(), expected.as_bytes()) {
            return Err(Reply::json(401, json!({"error": "unauthorized"}))
                .with("WWW-Authenticate", "Bearer"));
        }
        Ok(())
    }

    async fn revoke(&self, authorization: Option<&str>, body: Option<&str>) -> Reply {
        if let Err(reply) = self.check_admin(authorization) {
            return reply;
        }
        let Some(body) = body else {
            return Reply::json(
                413,
                json!({"error": "body_too_large", "limit": MAX_CONTROL_BODY}),
            );
        };
        #[derive(serde::Deserialize)]
        struct Body {
            session_id: Option<String>,
            user: Option<String>,
        }
        match serde_json::from_str::<Body>(body) {
            Ok(Body {
                session_id: Some(id),
                user: None,
            }) if !id.is_empty() => match self.end_session(&SessionHash::of(&id)).await {
                Ok(existed) => Reply::json(200, json!({"revoked": u32::from(existed)})),
                Err(_) => Reply::store_unavailable(),
            },
            Ok(Body {
                session_id: None,
                user: Some(user),
            }) if !user.is_empty() => match self.revoke_user(&user).await {
                Ok(n) => Reply::json(200, json!({"revoked": n})),
                Err(_) => Reply::store_unavailable(),
            },
            _ => Reply::json(
                400,
                json!({"error": "bad_request", "detail": "send {\"session_id\":\"...\"} or {\"user\":\"...\"}"}),
            ),
        }
    }

    async fn revoke_user(&self, user: &str) -> Result<u32, store::StoreError> {
        let prefix = crate::session::user_index_prefix(user);
        let keys = self.kv.list(&prefix).await?;
        let mut revoked = 0;
        for key in keys {
            let Some(hex) = key.strip_prefix(&prefix) else {
                continue;
            };
            let hash = SessionHash(hex.to_string());
            self.count(|c| c.kv_reads += 1);
            if self.kv.get(&hash.record_key()).await?.is_some() {
                revoked += 1;
            }
            for op in store::remove_ops(&hash, Some(user)) {
                self.count(|c| c.kv_writes += 1);
                op.apply(self.kv).await?;
            }
        }
        Ok(revoked)
    }
}

fn allow(record: &SessionRecord, source: Source) -> Verdict {
    Verdict::Allow {
        user: record.user.clone(),
        claims: record.claims_json(),
        source,
    }
}

/// `GET /.edge-session/health`.
pub fn health(cfg: Result<&Config, &crate::config::ConfigError>) -> Reply {
    match cfg {
        Ok(_) => Reply::json(
            200,
            json!({"ok": true, "version": env!("CARGO_PKG_VERSION")}),
        ),
        Err(e) => Reply::json(
            500,
            json!({"ok": false, "error": e.to_string(), "setting": e.setting}),
        ),
    }
}

/// The reply to a request the gate refused: a redirect to `LOGIN_URL` for a
/// browser navigation, JSON 401 otherwise; 503 for `store_unavailable`. `set_cookies` come from the [`Decision`].
pub fn deny_reply(
    cfg: &Config,
    reason: Reason,
    req: &Incoming<'_>,
    set_cookies: &[String],
) -> Reply {
    let navigation = (req.method.eq_ignore_ascii_case("GET")
        || req.method.eq_ignore_ascii_case("HEAD"))
        && req
            .accept
            .is_some_and(|a| a.to_ascii_lowercase().contains("text/html"));
    // An outage is not the user's fault: a login page would not help, so 503 even for browsers.
    let reply = match (&cfg.login_url, navigation) {
        _ if reason == Reason::StoreUnavailable => Reply::store_unavailable(),
        (Some(login), true) => {
            let sep = if login.contains('?') { '&' } else { '?' };
            Reply::redirect(&format!(
                "{login}{sep}return_to={}",
                encode_component(&return_to(req.path, req.query))
            ))
            .with("X-Edge-Session-Reason", reason.as_str())
        }
        _ => Reply::json(401, json!({"error": reason.as_str()}))
            .with("X-Edge-Session-Reason", reason.as_str()),
    };
    with_cookies(reply, set_cookies)
}

fn with_cookies(mut reply: Reply, set_cookies: &[String]) -> Reply {
    for c in set_cookies {
        reply.headers.push(("Set-Cookie".into(), c.clone()));
    }
    reply
}

/// The path and query to come back to after login: always a path on this
/// site. Leading slashes and backslashes collapse to one `/`, so that
/// `//evil.example` or `/\evil.example` cannot become another host.
pub fn return_to(path: &str, query: Option<&str>) -> String {
    // Also percent-encoded ones (`%2F`, `%5C`), in case the login page decodes twice.
    let mut rest = path;
    loop {
        let trimmed = rest.trim_start_matches(['/', '\\']);
        let lower = trimmed.get(..3).map(str::to_ascii_lowercase);
        match lower.as_deref() {
            Some("%2f" | "%5c") => rest = &trimmed[3..],
            _ => {
                rest = trimmed;
                break;
            }
        }
    }
    let mut out = format!("/{rest}");
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Compares two secrets without an early exit on the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
#[path = "gate_tests.rs"]
mod tests;
