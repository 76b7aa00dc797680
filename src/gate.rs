//! What happens to a request: the request path, top to bottom.
//!
//! The steps are those of the README's "What happens to a request" and of
//! docs/ARCHITECTURE.md's request path (the same numbers); each is marked in
//! the code below as `// Step N`.
//! Step 1 (identity headers from the client dropped) is planned in
//! [`crate::headers`], step 2 (the worker's own endpoints) in [`crate::control`];
//! [`Gate::admit`] runs steps 3 to 10 (10: the session's data), and after the
//! origin answers, [`Gate::finish`] acts on its session signals and data change (11). Everything here is plain Rust
//! over [`Kv`] and [`Lookup`] with the clock passed in; the wasm layer in
//! `edge/` only moves data in and out.

use crate::config::{Config, Millis, UnixMillis};
use crate::cookies::{self, CookieChange};
use crate::data::{self, DataCache, DataState, DataView, Patch, StateRequest};
use crate::identity::{Identity, Source};
use crate::reply::{Reason, Reply};
use crate::request::{CookieRewrite, Incoming};
use crate::session::{
    user_index_key, EndReason, Expiry, Provenance, SeenFrom, SessionHash, SessionRecord, Stored,
};
use crate::signals::{MalformedSignal, Signals};
use crate::store::{self, Kv, Lookup, LookupAnswer, NoStates, SessionStates, StoreError, StoreOp};
use crate::ticket::{self, Ticket, TicketError};
use serde_json::json;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;

/// How long an ID the lookup answered 404 for is remembered in the isolate.
pub const UNKNOWN_ID_MEMORY: Millis = 30_000;
/// Most entries an isolate remembers of each kind.
pub const MEMORY_CAPACITY: usize = 4096;
/// Least time between two data marks of one session's KV record from one
/// isolate: KV's own limit of one write per second per key.
pub const MARK_INTERVAL: Millis = 1_000;

impl From<Expiry> for Reason {
    fn from(e: Expiry) -> Reason {
        match e {
            Expiry::Idle => Reason::IdleTimeout,
            Expiry::Absolute => Reason::AbsoluteTimeout,
        }
    }
}

impl From<EndReason> for Reason {
    fn from(e: EndReason) -> Reason {
        match e {
            EndReason::IdleTimeout => Reason::IdleTimeout,
            EndReason::AbsoluteTimeout => Reason::AbsoluteTimeout,
            EndReason::Revoked => Reason::InvalidSession,
        }
    }
}

/// What the gate decided about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Forward without identity (public path or CORS preflight).
    Bypass,
    /// Forward with identity headers.
    Allow(Identity),
    /// Refuse with this reply.
    Deny {
        /// Why.
        reason: Reason,
        /// The answer to send, cookies included.
        reply: Reply,
    },
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
    /// `Set-Cookie` values the worker adds to the origin's response (for a
    /// denial they are already in its reply).
    pub set_cookies: Vec<String>,
    /// Writes to run after the response (`ctx.wait_until`).
    pub deferred: Vec<StoreOp>,
    /// Why the ticket sent with the request was not accepted, for the log line.
    pub ticket_problem: Option<TicketProblem>,
    /// On allow: when the session dies if nobody uses it again (idle or
    /// absolute deadline), for `X-Edge-Session-Idle-Left`.
    pub expires_at: Option<UnixMillis>,
    /// On allow: the session as the tier that vouched knows it, and when
    /// that tier vouched (a re-issued ticket keeps that time).
    pub record: Option<(SessionRecord, UnixMillis)>,
    /// The `Cookie` header for the origin (allow and bypass): never the
    /// ticket, and the session cookie only where it is the site's own
    /// (see [`Gate::admit`]).
    pub forward_cookie: CookieRewrite,
    /// A visitor on a guest path whose session cookie could not be checked
    /// (stores failing): forwarded with `X-Session-Data-Status: unavailable`,
    /// and a change on its response is refused 503 (a new guest session must
    /// never replace one that may hold data).
    pub unchecked: bool,
}

/// Why a ticket that came with the request was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketProblem {
    /// It did not open.
    Invalid(TicketError),
    /// It opened, but is bound to another session.
    OtherSession,
    /// It opened, but its times lie ahead of the clock by more than [`CLOCK_SKEW`].
    FromTheFuture,
}

impl fmt::Display for TicketProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TicketProblem::Invalid(e) => e.fmt(f),
            TicketProblem::OtherSession => f.write_str("other_session"),
            TicketProblem::FromTheFuture => f.write_str("from_the_future"),
        }
    }
}

impl Decision {
    fn new(verdict: Verdict, session: Option<SessionHash>) -> Decision {
        Decision {
            verdict,
            session,
            user: None,
            set_cookies: Vec::new(),
            deferred: Vec::new(),
            ticket_problem: None,
            expires_at: None,
            record: None,
            forward_cookie: CookieRewrite::Keep,
            unchecked: false,
        }
    }

    fn allowing(
        record: &SessionRecord,
        source: Source,
        hash: SessionHash,
        cfg: &Config,
        vouched_at: UnixMillis,
    ) -> Decision {
        let mut d = Decision::new(Verdict::Allow(Identity::of(record, source)), Some(hash));
        d.user = (!record.guest).then(|| record.user.clone());
        d.expires_at = Some(record.deadline(cfg));
        d.record = Some((record.clone(), vouched_at));
        d
    }

    /// Seconds left before the session dies of idleness (or age) if unused.
    pub fn idle_left_secs(&self, now: UnixMillis) -> Option<u64> {
        self.expires_at.map(|t| t.saturating_sub(now) / 1000)
    }

    /// The identity to forward, when the request is allowed.
    pub fn identity(&self) -> Option<&Identity> {
        match &self.verdict {
            Verdict::Allow(identity) => Some(identity),
            _ => None,
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
    /// What happened, for the log line (`login`, `logout`, `cookie_changed`, ...).
    pub event: Option<&'static str>,
    /// Why, when the event is a failure.
    pub error: Option<String>,
    /// The user who logged in, for the log line.
    pub user: Option<String>,
}

/// What one isolate remembers between requests, by session hash: IDs the
/// lookup answered 404 for (so a flood of one bad ID reaches the origin once),
/// the last-seen writes it already scheduled (so a burst of parallel
/// requests writes once: KV takes one write per second per key), and the
/// session data it read or wrote, by version.
#[derive(Debug, Default)]
pub struct IsolateMemory {
    unknown: Recent,
    touched: Recent,
    /// When this isolate last told a session's KV record that it has data.
    marked: Recent,
    data: DataCache,
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
    /// KV reads.
    pub kv_reads: u32,
    /// KV writes and deletes made by the gate itself (deferred ones are in
    /// [`Decision::deferred`] and [`Finish::deferred`], counted when scheduled).
    pub kv_writes: u32,
    /// Lookups sent to the origin.
    pub lookups: u32,
    /// Requests to sessions' Durable Objects (session data, ends).
    pub state_calls: u32,
}

impl Counts {
    /// Counts writes scheduled for after the response.
    pub fn scheduled(&mut self, ops: &[StoreOp]) {
        for op in ops {
            if op.is_state() {
                self.state_calls += 1;
            } else {
                self.kv_writes += 1;
            }
        }
    }
}

/// The request path, over a KV store, an optional lookup, the sessions'
/// data objects (when bound) and a clock reading.
pub struct Gate<'a, K: Kv, L: Lookup, S: SessionStates = NoStates> {
    /// Configuration.
    pub cfg: &'a Config,
    /// Workers KV (or a fake).
    pub kv: &'a K,
    /// The origin's lookup (when `LOOKUP_URL` is set).
    pub lookup: Option<&'a L>,
    /// The sessions' data objects (when `SESSION_STATE` is bound).
    pub states: Option<&'a S>,
    /// The isolate's memory. Borrowed briefly, never across an await.
    pub memory: &'a RefCell<IsolateMemory>,
    /// The time of the request.
    pub now: UnixMillis,
    counts: Cell<Counts>,
    trouble: RefCell<Option<String>>,
}

/// How a lookup turned out, in the gate's terms.
enum Asked {
    Valid(SessionRecord),
    NotFound,
    Unavailable,
}

/// Furthest a time may lie ahead of the clock (a lookup's `created`, a
/// ticket's times): the clocks of different machines disagree a little.
pub const CLOCK_SKEW: Millis = 5 * 60_000;

/// The ticket that came with the request, opened once.
type Opened = Option<Result<Ticket, TicketProblem>>;

/// Why a change to session data was not stored.
enum Unstored {
    /// Not applied, and answered 502 (over the limit, no binding).
    Refused(String),
    /// The session has ended.
    Ended,
    /// The object could not be reached: 503.
    Unavailable(String),
}

impl<'a, K: Kv, L: Lookup> Gate<'a, K, L> {
    /// A gate for one request, without session data (see [`Gate::with_states`]).
    pub fn new(
        cfg: &'a Config,
        kv: &'a K,
        lookup: Option<&'a L>,
        memory: &'a RefCell<IsolateMemory>,
        now: UnixMillis,
    ) -> Self {
        Gate {
            cfg,
            kv,
            lookup,
            states: None,
            memory,
            now,
            counts: Cell::new(Counts::default()),
            trouble: RefCell::default(),
        }
    }

    /// The same gate with the sessions' data objects (`None`: no binding).
    pub fn with_states<S: SessionStates>(self, states: Option<&'a S>) -> Gate<'a, K, L, S> {
        Gate {
            cfg: self.cfg,
            kv: self.kv,
            lookup: self.lookup,
            states,
            memory: self.memory,
            now: self.now,
            counts: self.counts,
            trouble: self.trouble,
        }
    }
}

impl<'a, K: Kv, L: Lookup, S: SessionStates> Gate<'a, K, L, S> {
    /// The last store or lookup failure of this request, for the log line.
    pub fn trouble(&self) -> Option<String> {
        self.trouble.borrow().clone()
    }

    fn note(&self, what: impl Into<String>) {
        *self.trouble.borrow_mut() = Some(what.into());
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

    /// Reads and decodes what KV holds for a session, counting the read. A
    /// value that cannot be decoded is as good as none: it is replaced or expires.
    pub(crate) async fn read_stored(
        &self,
        hash: &SessionHash,
    ) -> Result<Option<Stored>, StoreError> {
        self.count(|c| c.kv_reads += 1);
        let json = self.kv.get(&hash.record_key()).await.map_err(|e| {
            self.note(format!("KV read failed: {e}"));
            e
        })?;
        Ok(json.and_then(|j| Stored::parse(&j)))
    }

    /// Reads a live session record (an ended session's mark counts as none).
    pub(crate) async fn read_record(
        &self,
        hash: &SessionHash,
    ) -> Result<Option<SessionRecord>, StoreError> {
        Ok(match self.read_stored(hash).await? {
            Some(Stored::Live(record)) => Some(record),
            _ => None,
        })
    }

    /// The writes that end a session (see [`store::end_ops`]), its data included.
    pub(crate) fn end_ops(
        &self,
        hash: &SessionHash,
        user: Option<&str>,
        reason: EndReason,
    ) -> Vec<StoreOp> {
        let ops = store::end_ops(self.cfg, hash, user, reason, self.now);
        self.with_state_end(hash, ops)
    }

    /// The writes that delete a session (see [`store::remove_ops`]), its data included.
    fn remove_ops(&self, hash: &SessionHash, user: Option<&str>) -> Vec<StoreOp> {
        self.with_state_end(hash, store::remove_ops(hash, user))
    }

    /// The end of the session's data when session data is on (its object
    /// forgets it once no session could still be alive: ABSOLUTE_TIMEOUT),
    /// then `ops`. The object is told first: it is what strict paths ask, so a
    /// KV write refused after it cannot take their immediate revocation away.
    fn with_state_end(&self, hash: &SessionHash, mut ops: Vec<StoreOp>) -> Vec<StoreOp> {
        if self.states.is_some() {
            self.memory.borrow_mut().data.forget(&hash.0);
            ops.insert(
                0,
                StoreOp::EndState {
                    hash: hash.clone(),
                    until: self.now.saturating_add(self.cfg.longest_lifetime()),
                },
            );
        }
        ops
    }

    /// Applies writes now, counting each, every one of them even after a
    /// failure (an end told to the object stays told when a KV write is
    /// refused); the first failure is the answer.
    pub(crate) async fn apply(&self, ops: &[StoreOp]) -> Result<(), StoreError> {
        let mut first_error = None;
        for op in ops {
            self.count(|c| c.scheduled(std::slice::from_ref(op)));
            if let Err(e) = op.apply(self.kv, self.states).await {
                if first_error.is_none() {
                    self.note(if op.is_state() {
                        format!("session data {} failed: {e}", op.kind())
                    } else {
                        format!("KV write of {} failed: {e}", op.kind())
                    });
                    first_error = Some(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Decides about a request that is not a control request (steps 3 to 10),
    /// reads the session's data for an allowed one, and says which cookies
    /// the origin gets ([`Decision::forward_cookie`], [`Gate::owner`]).
    pub async fn admit(&self, req: &Incoming<'_>) -> Decision {
        // Step 3: public paths and preflights pass without identity.
        let mut decision = if req.head.is_preflight() || req.public {
            Decision::new(Verdict::Bypass, req.cookies.hash.clone())
        } else {
            let checked = self.check_session(req).await;
            // Step 10: the session's data.
            let read = self.read_data(req, checked).await;
            if req.guest {
                // Guest paths: whoever has no valid session passes as a visitor.
                self.as_visitor(req, read).await
            } else {
                read
            }
        };
        let site_owns_it = self.owner(req, &decision) != Provenance::Edge;
        decision.forward_cookie = req.cookies.for_origin(self.cfg, site_owns_it);
        decision
    }

    /// Whose the request's session cookie is: the worker's ([`Provenance::Edge`],
    /// edge mode: it made the session at a login signal, so the origin never
    /// needs the ID and does not get it) or the site's ([`Provenance::Lookup`],
    /// attach mode: the site set it and reads it). Without `LOOKUP_URL` every
    /// session is the worker's. With it, an allowed session's record says;
    /// on a public path (not checked) a genuine ticket bound to the session
    /// says (a MAC check, no store read); otherwise it counts as the site's.
    pub fn owner(&self, req: &Incoming<'_>, d: &Decision) -> Provenance {
        if self.cfg.lookup.is_none() {
            return Provenance::Edge;
        }
        if let Some((record, _)) = &d.record {
            return record.provenance;
        }
        let from_ticket = match (&d.verdict, req.cookies.ticket, &req.cookies.hash) {
            (Verdict::Bypass, Some(value), Some(hash)) => {
                ticket::open(value, &self.cfg.keys, &self.cfg.ticket_cookie)
                    .ok()
                    .filter(|t| t.is_bound_to(hash))
                    .map(|t| t.provenance)
            }
            _ => None,
        };
        from_ticket.unwrap_or(Provenance::Lookup)
    }

    /// The request's session, checked as on a protected path (CSRF, steps 4 to 9).
    async fn check_session(&self, req: &Incoming<'_>) -> Decision {
        let cfg = self.cfg;
        let session = req.cookies.hash.clone();
        // Cross-site unsafe requests carrying the session cookie (CSRF at the edge).
        if cfg.csrf_protection
            && req.cookies.id_sent
            && req.head.is_unsafe_method()
            && req.head.is_cross_origin(&cfg.trusted_origins)
        {
            return self.deny(req, Reason::CrossSiteRequest, session);
        }
        // Step 4: a session cookie that could be genuine.
        let Some(hash) = session else {
            let reason = if req.cookies.id_sent {
                Reason::InvalidSession
            } else {
                Reason::NoSession
            };
            return self.deny(req, reason, None);
        };

        // The ticket, verified before anything in it is used.
        let opened = self.open_ticket(req, &hash);
        let problem = opened.as_ref().and_then(|o| o.as_ref().err().copied());
        let ticket = opened.and_then(Result::ok);
        let mut decision = match ticket {
            Some(t) if t.guest => self.guest_session(req, hash, t).await,
            ticket => self.check(req, hash, ticket).await,
        };
        decision.ticket_problem = problem;
        decision
    }

    /// The request's ticket, opened (MAC first) and checked: bound to `hash`,
    /// none of its times ahead of the clock.
    fn open_ticket(&self, req: &Incoming<'_>, hash: &SessionHash) -> Opened {
        req.cookies.ticket.map(|value| {
            ticket::open(value, &self.cfg.keys, &self.cfg.ticket_cookie)
                .map_err(TicketProblem::Invalid)
                .and_then(|t| {
                    t.is_bound_to(hash)
                        .then_some(t)
                        .ok_or(TicketProblem::OtherSession)
                })
                .and_then(|t| {
                    // A ticket dated ahead of the clock (only a leaked key can
                    // make one) would stay fresh for as long as that key is kept.
                    let latest = self.now.saturating_add(CLOCK_SKEW);
                    (t.verified_at <= latest && t.last_seen <= latest && t.created <= latest)
                        .then_some(t)
                        .ok_or(TicketProblem::FromTheFuture)
                })
        })
    }

    /// Steps 5 to 9 for a plausible session and its ticket (if genuine and bound to it).
    async fn check(
        &self,
        req: &Incoming<'_>,
        hash: SessionHash,
        ticket: Option<Ticket>,
    ) -> Decision {
        let cfg = self.cfg;
        let (passive, strict) = (req.passive, req.strict);
        // Step 5: a fresh ticket, with no last-seen write due (none is ever due
        // on a passive path), vouches alone; never on a strict path.
        if let Some(t) = ticket.as_ref().filter(|_| !strict) {
            let fresh = self.now.saturating_sub(t.verified_at) < cfg.ticket_ttl;
            let touch_due = self.now.saturating_sub(t.last_seen) >= cfg.touch_interval;
            let alive = t.expiry(cfg, self.now).is_none();
            if fresh && (passive || !touch_due) && alive {
                return Decision::allowing(&t.record(), Source::Ticket, hash, cfg, t.verified_at);
            }
        }

        let recently_unknown =
            self.memory
                .borrow()
                .unknown
                .since(&hash.0, self.now, UNKNOWN_ID_MEMORY);
        if recently_unknown.is_some() {
            return self.unknown_session(req, hash);
        }

        // Step 6: KV.
        match self.read_stored(&hash).await {
            Ok(Some(Stored::Live(mut record))) => {
                // KV may lag behind the data version this browser already saw. When
                // it does not even know the session has data (a mark skipped, or not
                // yet everywhere), it is told again.
                let ticket_seen = ticket.as_ref().map_or(0, |t| t.data_version);
                let seen = ticket_seen.max(req.cookies.data_floor(&hash));
                let lagging = record.data_version == 0 && seen > 0;
                record.data_version = record.data_version.max(seen);
                let mut d = self.check_record(req, hash.clone(), record).await;
                if let (true, Verdict::Allow(_), Some((record, _))) =
                    (lagging, &d.verdict, &d.record)
                {
                    let record = record.clone();
                    self.tell_kv_of_data(&mut d.deferred, &hash, &record);
                }
                d
            }
            // Ended by the worker: never learned again from the lookup.
            Ok(Some(Stored::Ended(ending))) => self.deny(req, ending.reason.into(), Some(hash)),
            Ok(None) => {
                // Step 7: the lookup. An edge-born session that KV no longer has
                // was revoked or expired: the origin cannot know it, so it is not asked.
                // A genuine ticket still says how a session KV has forgotten died.
                if let Some(expired) = ticket.as_ref().and_then(|t| t.expiry(cfg, self.now)) {
                    return self.deny(req, expired.into(), Some(hash));
                }
                let edge_born = ticket
                    .as_ref()
                    .is_some_and(|t| t.provenance == Provenance::Edge);
                if self.lookup.is_none() || edge_born {
                    return self.deny(req, Reason::InvalidSession, Some(hash));
                }
                match self.ask(&hash, req).await {
                    Asked::Valid(record) => {
                        if let Some(expired) = record.expiry(cfg, self.now) {
                            let mut d = self.deny(req, expired.into(), Some(hash));
                            d.user = Some(record.user);
                            return d;
                        }
                        let writes = store::create_ops(cfg, &hash, &record, self.now);
                        self.allow(req, hash, record, Source::Lookup, writes)
                    }
                    Asked::NotFound => self.unknown_session(req, hash),
                    Asked::Unavailable => self.degraded(req, hash, ticket),
                }
            }
            Err(_) => self.degraded(req, hash, ticket),
        }
    }

    /// Step 6 with a record: dead → denied and marked ([`Gate::died`]); live → allowed, after
    /// asking the lookup again when a lookup-born record is due for it.
    async fn check_record(
        &self,
        req: &Incoming<'_>,
        hash: SessionHash,
        record: SessionRecord,
    ) -> Decision {
        let cfg = self.cfg;
        if let Some(expired) = record.expiry(cfg, self.now) {
            return self.died(req, expired, hash, record);
        }
        // A strict path asks the lookup again once TICKET_TTL has passed.
        let limit = if req.strict {
            cfg.revalidate_after.min(cfg.ticket_ttl)
        } else {
            cfg.revalidate_after
        };
        let due = record.provenance == Provenance::Lookup
            && self.now.saturating_sub(record.verified_at) >= limit;
        if !due {
            return self.allow(req, hash, record, Source::Kv, Vec::new());
        }
        match self.ask(&hash, req).await {
            Asked::Valid(fresh) => {
                let mut merged = SessionRecord {
                    created: record.created.min(fresh.created),
                    last_seen: record.last_seen.max(fresh.last_seen),
                    seen_from: record.seen_from.clone(),
                    data_version: record.data_version,
                    ..fresh
                };
                let mut writes = Vec::new();
                if merged.user != record.user {
                    // The site gave the ID to someone else: the previous user's data
                    // goes before anything is forwarded for the new one.
                    match self.restart_data(&hash, &merged).await {
                        Ok(version) => merged.data_version = version,
                        Err(()) => return self.deny(req, Reason::StoreUnavailable, Some(hash)),
                    }
                    writes.push(StoreOp::Delete {
                        key: user_index_key(&record.user, &hash),
                    });
                    writes.extend(store::create_ops(cfg, &hash, &merged, self.now));
                } else {
                    writes.push(store::put_record(cfg, &hash, &merged, self.now));
                }
                self.allow(req, hash, merged, Source::Kv, writes)
            }
            Asked::NotFound => self.forget(req, hash, record.user),
            // The lookup is down: the KV answer stands.
            Asked::Unavailable => self.allow(req, hash, record, Source::Kv, Vec::new()),
        }
    }

    /// Starts a session's data over for a new owner of its ID (attach mode),
    /// now, since the request is forwarded next: the previous owner's data
    /// and its end go, and the version moves on (no isolate serves a copy of
    /// the old data by version). The version to name from now on, or `Err`
    /// when the object cannot be reached (the old data might still be served).
    async fn restart_data(&self, hash: &SessionHash, record: &SessionRecord) -> Result<u64, ()> {
        let Some(states) = self.states else {
            return Ok(record.data_version);
        };
        self.memory.borrow_mut().data.forget(&hash.0);
        self.count(|c| c.state_calls += 1);
        let request = StateRequest::read(self.data_deadline(record)).restarting();
        match states.call(hash, &request).await {
            Ok(reply) => {
                let version = reply.state.version.max(record.data_version);
                let mut memory = self.memory.borrow_mut();
                memory.data.put(&hash.0, &reply.state, version, self.now);
                Ok(version)
            }
            Err(e) => {
                self.note(format!("session data restart failed: {e}"));
                Err(())
            }
        }
    }

    /// Denies a session the origin no longer knows and deletes it (record
    /// and index entry) after the response.
    fn forget(&self, req: &Incoming<'_>, hash: SessionHash, user: String) -> Decision {
        let mut d = self.unknown_session(req, hash.clone());
        d.deferred = self.remove_ops(&hash, Some(&user));
        d.user = Some(user);
        d
    }

    /// Denies a session found dead of idleness or age. After the response
    /// its record is replaced by the mark of its death, kept until the
    /// record's own KV expiry (see [`store::timeout_ops`]), so that later
    /// requests, with or without a ticket, are told `idle_timeout` /
    /// `absolute_timeout` at no further write; its index entry and its data go.
    fn died(
        &self,
        req: &Incoming<'_>,
        expired: Expiry,
        hash: SessionHash,
        record: SessionRecord,
    ) -> Decision {
        let mut d = self.deny(req, expired.into(), Some(hash.clone()));
        let ops = store::timeout_ops(self.cfg, &hash, &record, expired.into(), self.now);
        d.deferred = self.with_state_end(&hash, ops);
        d.user = Some(record.user);
        d
    }

    /// Step 8: a genuine ticket, bound to the session and within its limits,
    /// stands in for failing stores (never on a strict path, whose revocation
    /// bound is KV's alone); otherwise `store_unavailable`.
    fn degraded(&self, req: &Incoming<'_>, hash: SessionHash, ticket: Option<Ticket>) -> Decision {
        // Step 8
        match ticket {
            Some(t) if !req.strict && t.expiry(self.cfg, self.now).is_none() => {
                Decision::allowing(&t.record(), Source::Stale, hash, self.cfg, t.verified_at)
            }
            _ => self.deny(req, Reason::StoreUnavailable, Some(hash)),
        }
    }

    /// Asks the origin's lookup about the request's session.
    async fn ask(&self, hash: &SessionHash, req: &Incoming<'_>) -> Asked {
        let (Some(lookup), Some(id)) = (self.lookup, req.cookies.id) else {
            return Asked::Unavailable;
        };
        self.count(|c| c.lookups += 1);
        match lookup.lookup(id).await {
            LookupAnswer::Valid(s) => {
                let secs = |t: Option<u64>| t.map(|s| s.saturating_mul(1000)).unwrap_or(self.now);
                if secs(s.created) > self.now.saturating_add(CLOCK_SKEW) {
                    self.note(
                        "lookup answer created is in the future (milliseconds instead of seconds?)",
                    );
                    return Asked::Unavailable;
                }
                Asked::Valid(SessionRecord {
                    user: s.user,
                    claims: s.claims,
                    created: secs(s.created),
                    last_seen: secs(s.last_seen).min(self.now),
                    provenance: Provenance::Lookup,
                    verified_at: self.now,
                    seen_from: SeenFrom::of(req.head.user_agent, req.head.location),
                    data_version: 0,
                    guest: false,
                    remember: false,
                })
            }
            LookupAnswer::NotFound => {
                self.memory
                    .borrow_mut()
                    .unknown
                    .insert(&hash.0, self.now, UNKNOWN_ID_MEMORY);
                Asked::NotFound
            }
            LookupAnswer::Unavailable(why) => {
                self.note(why);
                Asked::Unavailable
            }
        }
    }

    /// Step 9: allow, touching last-seen when due (never on a passive path)
    /// and issuing a fresh ticket.
    fn allow(
        &self,
        req: &Incoming<'_>,
        hash: SessionHash,
        mut record: SessionRecord,
        source: Source,
        mut writes: Vec<StoreOp>,
    ) -> Decision {
        let cfg = self.cfg;
        // Step 9: the last-seen write, at most once per TOUCH_INTERVAL.
        if !req.passive && self.now.saturating_sub(record.last_seen) >= cfg.touch_interval {
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
        let mut d = Decision::allowing(&record, source, hash.clone(), cfg, self.now);
        d.set_cookies
            .push(self.ticket_cookie(&hash, &record, self.now));
        d.deferred = writes;
        d
    }

    /// A `Set-Cookie` with a new ticket vouched for at `verified_at` (or
    /// clearing it, when claims make it too large).
    fn ticket_cookie(
        &self,
        hash: &SessionHash,
        record: &SessionRecord,
        verified_at: UnixMillis,
    ) -> String {
        let t = Ticket::for_record(hash, record, verified_at);
        match ticket::seal(&t, &self.cfg.keys[0], &self.cfg.ticket_cookie) {
            Some(sealed) => {
                cookies::set_for(&self.cfg.ticket_cookie, &sealed, self.cookie_life(record))
            }
            None => cookies::clear(&self.cfg.ticket_cookie),
        }
    }

    /// Refuses the request: the reply, with cookies cleared for a dead or
    /// unknown session (or a ticket without a session).
    fn deny(&self, req: &Incoming<'_>, reason: Reason, session: Option<SessionHash>) -> Decision {
        let set_cookies = if reason.clears_cookies() {
            self.clear_cookies(req)
        } else if reason == Reason::NoSession && req.cookies.ticket.is_some() {
            vec![cookies::clear(&self.cfg.ticket_cookie)]
        } else {
            Vec::new()
        };
        let reply = Reply::denial(self.cfg, reason, &req.head).with_cookies(&set_cookies);
        Decision::new(Verdict::Deny { reason, reply }, session)
    }

    /// Refuses a session ID that names no session: `invalid_session`. In
    /// attach mode (the lookup answered 404, now or recently) only the
    /// worker's own cookies are cleared: the site's cookie is the site's, and
    /// may name its own guest session (a cart), which must survive a trip to
    /// the login page.
    fn unknown_session(&self, req: &Incoming<'_>, hash: SessionHash) -> Decision {
        if self.cfg.lookup.is_none() {
            return self.deny(req, Reason::InvalidSession, Some(hash));
        }
        let reason = Reason::InvalidSession;
        let set_cookies = self.clear_own_cookies(req);
        let reply = Reply::denial(self.cfg, reason, &req.head).with_cookies(&set_cookies);
        Decision::new(Verdict::Deny { reason, reply }, Some(hash))
    }

    /// `Set-Cookie` values that clear the session's cookies: both, and the
    /// data-version cookie when the request carried one.
    pub(crate) fn clear_cookies(&self, req: &Incoming<'_>) -> Vec<String> {
        let mut out = vec![cookies::clear(&self.cfg.session_cookie)];
        out.extend(self.clear_own_cookies(req));
        out
    }

    /// `Set-Cookie` values that clear the worker's own cookies: the ticket,
    /// and the data-version cookie when the request carried one.
    fn clear_own_cookies(&self, req: &Incoming<'_>) -> Vec<String> {
        let mut out = vec![cookies::clear(&self.cfg.ticket_cookie)];
        if req.cookies.data_version.is_some() {
            out.push(cookies::clear(&self.cfg.data_cookie));
        }
        out
    }

    /// The data-version cookie for a session whose data reached `version`
    /// (see [`crate::request::SessionCookies::data_floor`]), living as long
    /// as its other cookies (`life`, [`Gate::cookie_life`]).
    fn data_cookie(&self, hash: &SessionHash, version: u64, life: Option<u64>) -> String {
        let value = format!("{}.{version}", hash.short());
        cookies::set_for(&self.cfg.data_cookie, &value, life)
    }

    /// `cookies` with the ticket and the data-version cookie replaced by these.
    fn with_new_cookies(
        cookies: &[String],
        cfg: &Config,
        ticket: String,
        data: String,
    ) -> Vec<String> {
        let ticket_prefix = format!("{}=", cfg.ticket_cookie);
        let data_prefix = format!("{}=", cfg.data_cookie);
        let mut out: Vec<String> = cookies
            .iter()
            .filter(|c| !c.starts_with(&ticket_prefix) && !c.starts_with(&data_prefix))
            .cloned()
            .collect();
        out.push(ticket);
        out.push(data);
        out
    }

    /// Reads the data of an allowed request's session: from the isolate when
    /// it holds the version the request must see at least (the ticket's or
    /// KV's), otherwise from the session's object, which also says whether
    /// the session has ended. A session just learned from the lookup is asked
    /// about once (the site may have given it data as it signed in). A strict
    /// path always asks the object (immediate revocation) and is refused when
    /// it cannot; elsewhere data that cannot be read is forwarded as
    /// unavailable, never as no data.
    async fn read_data(&self, req: &Incoming<'_>, mut d: Decision) -> Decision {
        let (Some(states), Some(hash)) = (self.states, d.session.clone()) else {
            return d;
        };
        // What the ticket (or KV) names, and what this browser has seen at least.
        let (named, until) = match &d.record {
            Some((record, _)) => (record.data_version, self.data_deadline(record)),
            None => return d,
        };
        let floor = named.max(req.cookies.data_floor(&hash));
        let learned = d.identity().is_some_and(|i| i.source == Source::Lookup);
        if floor == 0 && !req.strict && !learned {
            return d;
        }
        let cached = (!req.strict)
            .then(|| {
                let memory = self.memory.borrow();
                memory
                    .data
                    .get(&hash.0, floor, self.now, self.cfg.ticket_ttl)
            })
            .flatten();
        let view = match cached {
            Some(view) => view,
            None => {
                self.count(|c| c.state_calls += 1);
                match states.call(&hash, &StateRequest::read(until)).await {
                    Ok(reply) if reply.state.ended => return self.ended_elsewhere(req, d, hash),
                    Ok(reply) => {
                        let state = &reply.state;
                        let mut memory = self.memory.borrow_mut();
                        memory.data.put(&hash.0, state, floor, self.now);
                        drop(memory);
                        if state.version > named {
                            self.catch_up(&mut d, &hash, state.version);
                        }
                        DataView::of(state)
                    }
                    Err(e) => {
                        self.note(format!("session data read failed: {e}"));
                        if req.strict {
                            let user = d.user.take();
                            let mut denied = self.deny(req, Reason::StoreUnavailable, Some(hash));
                            denied.user = user;
                            return denied;
                        }
                        if floor == 0 && !learned {
                            DataView::None
                        } else {
                            if floor == 0 {
                                // A session just learned, whose data could not be read: the
                                // browser's next requests ask again (version 1 at least is a
                                // floor that no version 0 answers), instead of passing as a
                                // session without data on a ticket that says version 0.
                                d.set_cookies.push(self.data_cookie(&hash, 1, None));
                            }
                            DataView::Unavailable
                        }
                    }
                }
            }
        };
        if let Verdict::Allow(identity) = &mut d.verdict {
            identity.data = view;
        }
        d
    }

    /// When a session can no longer be alive (its object may forget it then).
    fn data_deadline(&self, record: &SessionRecord) -> UnixMillis {
        record.absolute_deadline(self.cfg)
    }

    /// The object holds a newer version than the ticket or KV named (the site
    /// gave a session data as it signed in, its first read failed, or a
    /// browser kept a slower answer's ticket): the ticket and the data-version
    /// cookie the request gets, and KV's record, name it from now on.
    fn catch_up(&self, d: &mut Decision, hash: &SessionHash, version: u64) {
        let Some((record, vouched_at)) = d.record.as_mut() else {
            return;
        };
        record.data_version = version;
        let record = record.clone();
        let ticket = self.ticket_cookie(hash, &record, *vouched_at);
        let data = self.data_cookie(hash, version, self.cookie_life(&record));
        d.set_cookies = Self::with_new_cookies(&d.set_cookies, self.cfg, ticket, data);
        self.tell_kv_of_data(&mut d.deferred, hash, &record);
    }

    /// Tells KV's record that the session has data of `record.data_version`:
    /// in the record write this request already makes (a touch), or with a
    /// [`StoreOp::MarkData`] at most once per [`MARK_INTERVAL`] from this
    /// isolate (KV takes one write per second per key; a mark writes only
    /// when the record is behind). A mark that is skipped or fails costs
    /// nothing the browser depends on: its ticket and data-version cookie
    /// carry the version, and a later request through KV that finds the
    /// record behind them marks it again.
    fn tell_kv_of_data(&self, ops: &mut Vec<StoreOp>, hash: &SessionHash, record: &SessionRecord) {
        if record.guest {
            // A guest is never in KV: its ticket and its object hold it.
            return;
        }
        let key = hash.record_key();
        if let Some(write @ StoreOp::Put { .. }) = ops.iter_mut().find(|op| op.key() == key) {
            *write = store::put_record(self.cfg, hash, record, self.now);
            return;
        }
        let mut memory = self.memory.borrow_mut();
        if memory
            .marked
            .since(&hash.0, self.now, MARK_INTERVAL)
            .is_none()
        {
            memory.marked.insert(&hash.0, self.now, MARK_INTERVAL);
            ops.push(self.mark_data(hash, record.data_version));
        }
    }

    /// The write that tells KV's record of a session that it has data.
    fn mark_data(&self, hash: &SessionHash, version: u64) -> StoreOp {
        StoreOp::MarkData {
            key: hash.record_key(),
            version,
            limits: [self.cfg.limits(false), self.cfg.limits(true)],
            now: self.now,
        }
    }

    /// The session's object says the session ended (revoked, perhaps in
    /// another location, while KV here still has it): refused, and KV told.
    fn ended_elsewhere(&self, req: &Incoming<'_>, d: Decision, hash: SessionHash) -> Decision {
        self.memory.borrow_mut().data.forget(&hash.0);
        let mut denied = self.deny(req, Reason::InvalidSession, Some(hash.clone()));
        denied.deferred = self.kv_end_ops(&d, &hash);
        denied.user = d.user;
        denied
    }

    /// The KV writes that tell KV a session its object says has ended; none
    /// for a guest, which is never in KV.
    fn kv_end_ops(&self, d: &Decision, hash: &SessionHash) -> Vec<StoreOp> {
        if d.record.as_ref().is_some_and(|(r, _)| r.guest) {
            return Vec::new();
        }
        let user = d.user.as_deref();
        store::end_ops(self.cfg, hash, user, EndReason::Revoked, self.now)
    }

    /// A change to a session's data for its object; `until` is when the
    /// session can no longer be alive.
    fn patch_request(&self, patch: &Patch, until: UnixMillis) -> StateRequest {
        StateRequest::patch(patch, self.cfg.session_data_limit, until)
    }

    /// Applies a request that changes a session's data (a patch, a restart) in its object.
    async fn change_data(
        &self,
        hash: &SessionHash,
        request: StateRequest,
    ) -> Result<DataState, Unstored> {
        let Some(states) = self.states else {
            return Err(Unstored::Refused(no_binding()));
        };
        self.count(|c| c.state_calls += 1);
        match states.call(hash, &request).await {
            Ok(reply) if reply.state.ended => Err(Unstored::Ended),
            Ok(reply) => match reply.refused {
                Some(why) => Err(Unstored::Refused(why)),
                None => {
                    // Not kept: a change of the same browser applied elsewhere
                    // may be newer (see `DataCache`); the next read asks the object.
                    self.memory.borrow_mut().data.forget(&hash.0);
                    Ok(reply.state)
                }
            },
            Err(e) => Err(Unstored::Unavailable(format!(
                "session data write failed: {e}"
            ))),
        }
    }

    /// Step 11: acts on the origin's session signals and its change to the
    /// session data after a forwarded request.
    /// `new_id` draws a fresh session ID (256 bits from the platform CSPRNG).
    pub async fn finish(
        &self,
        req: &Incoming<'_>,
        decision: &Decision,
        signals: Result<Signals, MalformedSignal>,
        new_id: impl FnOnce() -> Option<String>,
    ) -> Finish {
        let signals = match signals {
            Ok(s) => s,
            Err(MalformedSignal(problem)) => return bad_signal(problem),
        };
        // A change that cannot be applied anywhere is refused before anything else.
        let unusable = signals.data.as_ref().and_then(|patch| {
            if self.states.is_none() {
                return Some(no_binding());
            }
            patch.check_size(self.cfg.session_data_limit).err()
        });
        // (A change sent with a sign-out is ignored, not refused: the sign-out happens.)
        if let Some(problem) = unusable.filter(|_| !signals.signs_out()) {
            return bad_signal(problem);
        }

        let guest = self.guest_of(req, decision);
        if let Some((user, claims)) = signals.login {
            // A guest's data goes into the new session (the login's change on top).
            let carried = match self.carried_data(guest.as_ref()).await {
                Ok(carried) => carried,
                Err(failed) => return failed,
            };
            let new = NewSession {
                user,
                claims,
                seen_from: SeenFrom::of(req.head.user_agent, req.head.location),
                data: signals.data.as_ref(),
                carried,
                remember: signals.remember == Some(true),
                had_data_cookie: req.cookies.data_version.is_some(),
            };
            let previous = self.forget_previous(decision, guest.as_ref(), false);
            return self.login(new, new_id, previous).await;
        }

        // A change sent with a logout goes with the session.
        if signals.logout {
            return Finish {
                set_cookies: self.clear_cookies(req),
                deferred: self.forget_previous(decision, guest.as_ref(), true),
                event: Some("logout"),
                ..Finish::default()
            };
        }
        self.site_cookie_and_data(req, decision, &signals, new_id)
            .await
    }

    /// The writes that end the request's previous session. The origin ended
    /// it itself (its logout signal or cookie): deleting it is enough. A login
    /// ends it on the worker's behalf: it is marked ended, so no lookup can
    /// bring it back. A guest (never in KV) is ended in its object only.
    fn forget_previous(
        &self,
        decision: &Decision,
        guest: Option<&SessionHash>,
        by_the_origin: bool,
    ) -> Vec<StoreOp> {
        let user = decision.user.as_deref();
        match (&decision.session, guest) {
            (_, Some(g)) => self.with_state_end(g, Vec::new()),
            (Some(h), None) if by_the_origin => self.remove_ops(h, user),
            (Some(h), None) => self.end_ops(h, user, EndReason::Revoked),
            (None, None) => Vec::new(),
        }
    }

    /// Step 11 without a login or logout signal: in attach mode, the origin
    /// cleared the session cookie or set another ID; and the change to the data.
    async fn site_cookie_and_data(
        &self,
        req: &Incoming<'_>,
        decision: &Decision,
        signals: &Signals,
        new_id: impl FnOnce() -> Option<String>,
    ) -> Finish {
        let current = decision.session.as_ref();
        let (ended, new_session) = match &signals.session_cookie {
            Some(CookieChange::Cleared) => (current.is_some(), None),
            Some(CookieChange::Set(v)) => {
                let set = SessionHash::of(v);
                let other = current != Some(&set);
                (other && current.is_some(), other.then_some(set))
            }
            None => (false, None),
        };
        // A change sent with the site's new session ID (a sign-in) is that
        // session's first data: whatever the ID held before (a previous owner's
        // data, an end) goes. One sent as the site ends its session goes with it.
        let mut set_cookies = Vec::new();
        // A change beside a sign-out was not even read: it is neither applied nor refused.
        let data = signals.data.as_ref().filter(|_| !signals.signs_out());
        match (data, &new_session) {
            (Some(patch), Some(hash)) if !patch.is_empty() => {
                let until = self.now.saturating_add(self.cfg.absolute_timeout);
                let first = self.patch_request(patch, until).restarting();
                match self.change_data(hash, first).await {
                    Ok(state) => set_cookies.push(self.data_cookie(hash, state.version, None)),
                    Err(unstored) => return self.unstored(req, decision, unstored),
                }
            }
            // On a guest path, a visitor's first change makes a guest session.
            (Some(patch), None) if req.guest && matches!(decision.verdict, Verdict::Bypass) => {
                return self.create_guest(decision, patch, new_id).await
            }
            (Some(patch), None) if !ended => return self.change(req, decision, patch).await,
            _ => {}
        }
        if ended {
            set_cookies.push(cookies::clear(&self.cfg.ticket_cookie));
            return Finish {
                set_cookies,
                deferred: self.forget_previous(decision, None, true),
                event: Some("cookie_changed"),
                ..Finish::default()
            };
        }
        set_cookies.extend(decision.set_cookies.iter().cloned());
        Finish {
            set_cookies,
            ..Finish::default()
        }
    }

    /// A change to the request's session data: applied by its object, and a
    /// ticket naming the new version issued, so that this browser reads its
    /// own write wherever it goes next. On a public path the session is
    /// checked first, as on a protected one.
    async fn change(&self, req: &Incoming<'_>, decision: &Decision, patch: &Patch) -> Finish {
        let checked;
        let d = match &decision.verdict {
            Verdict::Allow(_) => decision,
            _ => {
                checked = self.check_session(req).await;
                match checked.verdict {
                    Verdict::Allow(_) => &checked,
                    _ => return bad_signal(
                        "X-Edge-Session-Data on a response to a request without a valid session"
                            .into(),
                    ),
                }
            }
        };
        let (Some(hash), Some((record, vouched_at))) = (&d.session, &d.record) else {
            return bad_signal("X-Edge-Session-Data without a session".into());
        };
        // Writes the check itself scheduled (a touch on a public path); on a
        // protected path, the decision's own record write (already scheduled:
        // a write here of the same key takes its place, see `store::merge`).
        let key = hash.record_key();
        let mut deferred: Vec<StoreOp> = if std::ptr::eq(d, decision) {
            d.deferred
                .iter()
                .filter(|op| op.key() == key)
                .cloned()
                .collect()
        } else {
            d.deferred.clone()
        };
        if patch.is_empty() {
            return Finish {
                set_cookies: d.set_cookies.clone(),
                deferred,
                ..Finish::default()
            };
        }
        let state = match self
            .change_data(hash, self.patch_request(patch, self.data_deadline(record)))
            .await
        {
            Ok(state) => state,
            Err(unstored) => return self.unstored(req, d, unstored),
        };
        let mut record = record.clone();
        record.data_version = state.version;
        if state.version == 1 {
            // KV's record learns that the session has data, for requests without
            // a ticket: from the one change that made version 1, however many
            // run together (one write per second per key).
            self.tell_kv_of_data(&mut deferred, hash, &record);
        }
        // The data-version cookie, which no read-only answer sets, keeps this
        // change from being hidden by a slower answer's ticket.
        let set_cookies = Self::with_new_cookies(
            &d.set_cookies,
            self.cfg,
            self.ticket_cookie(hash, &record, *vouched_at),
            self.data_cookie(hash, state.version, self.cookie_life(&record)),
        );
        Finish {
            set_cookies,
            deferred,
            event: Some("data_changed"),
            user: Some(record.user),
            ..Finish::default()
        }
    }

    /// The answer when a change was not stored: 502 (refused), a denial (the
    /// session has ended) or 503 (the object is unreachable): never the
    /// origin's response, as if the change had been kept.
    fn unstored(&self, req: &Incoming<'_>, d: &Decision, unstored: Unstored) -> Finish {
        match unstored {
            Unstored::Refused(problem) => bad_signal(problem),
            Unstored::Unavailable(error) => Finish {
                replace: Some(Reply::store_unavailable()),
                event: Some("data_write_failed"),
                error: Some(error),
                ..Finish::default()
            },
            // The session ended while its request was at the origin (a sign-in in
            // another tab replaced it, a revocation): the change is refused, and the
            // cookies are left alone, since this answer may reach the browser after
            // the one that gave it its new session.
            Unstored::Ended => {
                let deferred = match &d.session {
                    Some(h) => self.kv_end_ops(d, h),
                    None => Vec::new(),
                };
                Finish {
                    replace: Some(Reply::denial(self.cfg, Reason::InvalidSession, &req.head)),
                    deferred,
                    event: Some("session_ended"),
                    error: Some("the session's object says it has ended".into()),
                    ..Finish::default()
                }
            }
        }
    }

    /// The login signal: a new session, its first data (if the response
    /// changes it) applied before anything else, then in KV before the
    /// browser gets its cookies; the request's previous session is forgotten
    /// (no fixation). A change that is refused or cannot be stored creates no session.
    async fn login(
        &self,
        new: NewSession<'_>,
        new_id: impl FnOnce() -> Option<String>,
        forget_previous: Vec<StoreOp>,
    ) -> Finish {
        let cfg = self.cfg;
        let failed = |error: String| Finish {
            replace: Some(Reply::store_unavailable()),
            event: Some("login_failed"),
            error: Some(error),
            ..Finish::default()
        };
        let Some(id) = new_id() else {
            return failed("no random session ID could be drawn".into());
        };
        let hash = SessionHash::of(&id);
        let first = match new.first_data(cfg.session_data_limit) {
            Ok(first) => first,
            Err(problem) => return bad_signal(problem),
        };
        let mut record = SessionRecord {
            user: new.user,
            claims: new.claims,
            created: self.now,
            last_seen: self.now,
            provenance: Provenance::Edge,
            verified_at: self.now,
            seen_from: new.seen_from,
            data_version: 0,
            guest: false,
            remember: new.remember,
        };
        if let Some(patch) = &first {
            let until = record.absolute_deadline(cfg);
            match self
                .change_data(&hash, self.patch_request(patch, until))
                .await
            {
                Ok(state) => record.data_version = state.version,
                Err(Unstored::Refused(problem)) => return bad_signal(problem),
                Err(Unstored::Ended) => {
                    return failed("a new session's object says it ended".into())
                }
                Err(Unstored::Unavailable(e)) => return failed(e),
            }
        }
        if let Err(e) = self
            .apply(&store::create_ops(cfg, &hash, &record, self.now))
            .await
        {
            // Best effort: the data of a session nobody will ever present goes too.
            let mut f = failed(self.trouble().unwrap_or_else(|| e.to_string()));
            f.deferred = self.with_state_end(&hash, Vec::new());
            return f;
        }
        Finish {
            replace: None,
            set_cookies: self.login_cookies(&id, &hash, &record, new.had_data_cookie),
            deferred: forget_previous,
            event: Some("login"),
            error: None,
            user: Some(record.user),
        }
    }

    /// The cookies of a new session: its ID and ticket, and its data-version
    /// cookie when it starts with data (cleared when the replaced session had one).
    fn login_cookies(
        &self,
        id: &str,
        hash: &SessionHash,
        record: &SessionRecord,
        had_data_cookie: bool,
    ) -> Vec<String> {
        let cfg = self.cfg;
        let mut out = vec![
            cookies::set_for(&cfg.session_cookie, id, self.cookie_life(record)),
            self.ticket_cookie(hash, record, self.now),
        ];
        if record.data_version > 0 {
            out.push(self.data_cookie(hash, record.data_version, self.cookie_life(record)));
        } else if had_data_cookie {
            out.push(cookies::clear(&cfg.data_cookie));
        }
        out
    }

    /// How long a session's cookies live in the browser: until its absolute
    /// deadline when it is remembered ("remember me"); `None` (until the
    /// browser closes) otherwise.
    fn cookie_life(&self, record: &SessionRecord) -> Option<u64> {
        record
            .remember
            .then(|| record.absolute_deadline(self.cfg).saturating_sub(self.now) / 1000)
    }
}

/// What a login signal asks for.
struct NewSession<'p> {
    user: String,
    claims: Option<serde_json::Map<String, serde_json::Value>>,
    seen_from: Option<SeenFrom>,
    /// The first change to its data, when the login response carries one.
    data: Option<&'p Patch>,
    /// The data of the guest session it replaces (compact JSON), kept.
    carried: Option<String>,
    /// "Remember me" (`X-Edge-Session-Remember: 1`).
    remember: bool,
    /// The request carried a data-version cookie (of the session it replaces).
    had_data_cookie: bool,
}

impl NewSession<'_> {
    /// The new session's first data, as one patch of an empty object: the
    /// guest's data with the login's change on top, or the change alone.
    /// `Err` when the two together exceed `limit` (a malformed signal: no
    /// session, and the guest session is kept).
    fn first_data(&self, limit: usize) -> Result<Option<Patch>, String> {
        let Some(carried) = &self.carried else {
            return Ok(self.data.filter(|p| !p.is_empty()).cloned());
        };
        let mut state = DataState {
            data: Some(carried.clone()),
            ..DataState::default()
        };
        if let Some(patch) = self.data {
            state.apply(patch, limit).map_err(|refusal| {
                format!("the guest session's data and the login's change together: {refusal}")
            })?;
        }
        let members = state
            .data
            .and_then(|d| {
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&d).ok()
            })
            .unwrap_or_default();
        Ok((!members.is_empty()).then_some(Patch(members)))
    }
}

/// Why a change cannot be applied without the binding.
fn no_binding() -> String {
    format!(
        "X-Edge-Session-Data needs session data: bind the {} Durable Object \
         (class SessionState, see the README's session data section)",
        data::BINDING
    )
}

/// The answer to a malformed signal or a refused change: 502, nothing applied.
fn bad_signal(problem: String) -> Finish {
    Finish {
        // The detail (a parser's message, SESSION_DATA_LIMIT) goes to the log only.
        replace: Some(Reply::json(502, json!({"error": "bad_signal"}))),
        event: Some("bad_signal"),
        error: Some(problem),
        ..Finish::default()
    }
}

#[path = "guest.rs"]
mod guest;

#[cfg(test)]
#[path = "gate_tests.rs"]
mod tests;
