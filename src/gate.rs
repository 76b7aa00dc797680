//! What happens to a request: the request path, top to bottom.
//!
//! The steps are those of the README's "What happens to a request" and of
//! docs/ARCHITECTURE.md's request path (the same numbers); each is marked in
//! the code below as `// Step N`.
//! Step 1 (identity headers from the client dropped) is planned in
//! [`crate::headers`], step 2 (the worker's own endpoints) in [`crate::control`];
//! [`Gate::admit`] runs steps 3 to 10 (10: the session's data), and after the
//! origin answers, [`Gate::finish`] acts on its session signals and data change (11).
//! Everything here is plain Rust over [`Kv`] and [`Lookup`] with the clock
//! passed in; the wasm layer in `edge/` only moves data in and out.
//!
//! This file holds the types, the stores' helpers, [`Gate::admit`] and the
//! cookies; each phase has its own file: `admission` (steps 3 to 9: is the
//! session valid), `session_data` (step 10 and the origin's change),
//! `response` (step 11: login, logout, the site's cookie) and `guest` (guest
//! sessions, across the phases).

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
use crate::store::{
    self, Kv, Lookup, LookupAnswer, NoStates, SessionStates, StoreError, StoreOp, Unreachable,
};
use crate::ticket::{self, Ticket, TicketError};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

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
        record: SessionRecord,
        source: Source,
        hash: SessionHash,
        cfg: &Config,
        vouched_at: UnixMillis,
    ) -> Decision {
        let mut d = Decision::new(Verdict::Allow(Identity::of(&record, source)), Some(hash));
        d.user = (!record.guest).then(|| record.user.clone());
        d.expires_at = Some(record.deadline(cfg));
        d.record = Some((record, vouched_at));
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

/// What a run of the gate may have written to the isolate's memory for one
/// session before it waited for a store: its touch, its data mark and its data
/// as read from its object (the entry's read, `src/edge/quick.rs`). Every other
/// write comes after an answer only the asynchronous path gets, or only drops
/// a cached copy. Saved before a run that may be given up ([`Gate::admit_answered`]).
#[derive(Debug)]
struct Checkpoint {
    key: String,
    touched: Option<Millis>,
    marked: Option<Millis>,
    data: data::SavedData,
}

/// How to put a session's memory back as it was before a run of the gate
/// ([`Gate::admit_answered`], [`Gate::undo`]).
#[derive(Debug)]
#[must_use = "a run given up is undone with Gate::undo"]
pub struct Undo(Option<Checkpoint>);

impl IsolateMemory {
    fn checkpoint(&self, key: &str) -> Checkpoint {
        Checkpoint {
            key: key.to_string(),
            touched: self.touched.0.get(key).copied(),
            marked: self.marked.0.get(key).copied(),
            data: self.data.save(key),
        }
    }

    /// Puts the session's touch, mark and data back as they were at `saved`.
    fn rollback(&mut self, saved: Checkpoint) {
        self.touched.set(&saved.key, saved.touched);
        self.marked.set(&saved.key, saved.marked);
        self.data.restore(&saved.key, saved.data);
    }
}

impl Recent {
    fn set(&mut self, key: &str, at: Option<Millis>) {
        match at {
            Some(t) => {
                self.0.insert(key.to_string(), t);
            }
            None => {
                self.0.remove(key);
            }
        }
    }

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
    /// These and `more` together.
    pub fn add(&mut self, more: Counts) {
        self.kv_reads += more.kv_reads;
        self.kv_writes += more.kv_writes;
        self.lookups += more.lookups;
        self.state_calls += more.state_calls;
    }

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
type Opened = Option<Result<Rc<Ticket>, TicketProblem>>;

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

impl<'a, K, L, S> Gate<'a, K, L, S>
where
    K: Kv + Unreachable,
    L: Lookup + Unreachable,
    S: SessionStates + Unreachable,
{
    /// Steps 3 to 10 decided now, in one synchronous call, over this gate's own
    /// KV, session objects and lookup, which answer what has been read for them
    /// already and leave any other call waiting (the synchronous path's reads,
    /// `src/edge/quick.rs`): the decision [`Gate::admit`] makes, or `None` when
    /// a store has to be asked. The session's touch, data mark and data that
    /// the run wrote are then put back ([`Checkpoint`]), and with a decision
    /// they can be ([`Gate::undo`]): the asynchronous path, run instead,
    /// decides as if this run had never been.
    pub fn admit_answered(&self, req: &Incoming<'_>) -> Option<(Decision, Undo)> {
        let (no_lookup, no_states) = (L::unreached(), S::unreached());
        let lookup = self.lookup.unwrap_or(&no_lookup);
        let twin = self.over(self.kv, lookup, self.states.unwrap_or(&no_states));
        let saved = (req.cookies.hash.as_ref()).map(|h| self.memory.borrow().checkpoint(&h.0));
        match poll_once(twin.admit(req)) {
            Some(decision) => {
                self.adopt(&twin);
                Some((decision, Undo(saved)))
            }
            None => {
                self.undo(Undo(saved));
                None
            }
        }
    }

    /// Puts back what a run of [`Gate::admit_answered`] wrote for the session.
    pub fn undo(&self, undo: Undo) {
        if let Some(saved) = undo.0 {
            self.memory.borrow_mut().rollback(saved);
        }
    }

    /// Step 11 done now, in one synchronous call, when it needs no store (a
    /// response without signals or data change, most of all): what
    /// [`Gate::finish`] returns. `None` when a store must be asked.
    pub fn finish_now(
        &self,
        req: &Incoming<'_>,
        decision: &Decision,
        signals: Result<Signals, MalformedSignal>,
        new_id: impl FnOnce() -> Option<String>,
    ) -> Option<Finish> {
        let (kv, lookup, states) = (K::unreached(), L::unreached(), S::unreached());
        let twin = self.over(&kv, &lookup, &states);
        let finish = poll_once(twin.finish(req, decision, signals, new_id))?;
        self.adopt(&twin);
        Some(finish)
    }

    /// This gate over other stores of the same kinds (those that never answer).
    fn over<'t>(&'t self, kv: &'t K, lookup: &'t L, states: &'t S) -> Gate<'t, K, L, S> {
        Gate {
            cfg: self.cfg,
            kv,
            lookup: self.lookup.map(|_| lookup),
            states: self.states.map(|_| states),
            memory: self.memory,
            now: self.now,
            counts: Cell::new(self.counts()),
            trouble: RefCell::new(self.trouble()),
        }
    }

    /// What a twin counted and noticed, as this gate's.
    fn adopt(&self, twin: &Gate<'_, K, L, S>) {
        self.counts.set(twin.counts());
        *self.trouble.borrow_mut() = twin.trouble();
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
        self.denial(req, reason, session, &set_cookies)
    }

    /// Refuses the request with these `Set-Cookie` values.
    fn denial(
        &self,
        req: &Incoming<'_>,
        reason: Reason,
        session: Option<SessionHash>,
        set_cookies: &[String],
    ) -> Decision {
        let reply = Reply::denial(self.cfg, reason, &req.head).with_cookies(set_cookies);
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
        let own = self.clear_own_cookies(req);
        self.denial(req, Reason::InvalidSession, Some(hash), &own)
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
}

/// The future's output when it is ready at its first poll, without waiting
/// for anything.
fn poll_once<T>(future: impl std::future::Future<Output = T>) -> Option<T> {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(value) => Some(value),
        std::task::Poll::Pending => None,
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
        replace: Some(Reply::error(502, "bad_signal")),
        event: Some("bad_signal"),
        error: Some(problem),
        ..Finish::default()
    }
}

mod admission;
mod guest;
mod response;
mod session_data;

#[cfg(test)]
#[path = "gate_tests.rs"]
mod tests;
