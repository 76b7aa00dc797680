//! Guest sessions: a session from the first request (README "Guest sessions").
//!
//! A visitor who has not signed in gets a session only when the origin stores
//! something for it on a `GUEST_PATHS` path ([`Gate::create_guest`]). A guest
//! is never written to KV: its ticket (marked `g`) and its Durable Object
//! (which keeps its creation, last use and end) hold it. On guest paths a guest
//! is forwarded with its data and an assertion without a user; whoever has no
//! valid session passes as a visitor ([`Gate::as_visitor`]). Elsewhere a
//! guest is not signed in: `no_session`, its cookies kept. A login keeps the
//! guest's data ([`Gate::carried_data`]).

use super::*;

impl<'a, K: Kv, L: Lookup, S: SessionStates> Gate<'a, K, L, S> {
    /// A request whose genuine ticket is a guest's. On a protected path it is
    /// not signed in (`no_session`; its cookies are kept, so the cart survives
    /// the trip to the login page, and its object is not asked). On guest and
    /// public paths the guest is checked: its fresh ticket vouches alone, as a
    /// user's does; otherwise its object does.
    pub(super) async fn guest_session(
        &self,
        req: &Incoming<'_>,
        hash: SessionHash,
        t: Rc<Ticket>,
    ) -> Decision {
        if !req.guest && !req.public {
            return self.denial(req, Reason::NoSession, Some(hash), &[]);
        }
        let cfg = self.cfg;
        let fresh = self.now.saturating_sub(t.verified_at) < cfg.ticket_ttl;
        let touch_due = !req.passive && self.now.saturating_sub(t.last_seen) >= cfg.touch_interval;
        let alive = t.expiry(cfg, self.now).is_none();
        let record = t.record();
        if fresh && alive && !touch_due && !req.strict {
            return Decision::allowing(record, Source::Ticket, hash, cfg, t.verified_at);
        }
        let Some(states) = self.states else {
            return self.not_a_session(req, Some(hash));
        };
        let mut request = StateRequest::read(self.data_deadline(&record));
        if touch_due {
            request = request.touching(self.now, cfg.idle_timeout);
        }
        self.count(|c| c.state_calls += 1);
        match states.call(&hash, &request).await {
            Ok(reply) => self.guest_from_state(req, hash, &reply.state),
            Err(e) => {
                self.note(format!("guest session check failed: {e}"));
                // Step 8 for guests: the genuine ticket stands in, never on a strict path.
                if alive && !req.strict {
                    Decision::allowing(record, Source::Stale, hash, cfg, t.verified_at)
                } else {
                    self.deny(req, Reason::StoreUnavailable, Some(hash))
                }
            }
        }
    }

    /// A guest as its object describes it: allowed (source `state`, a fresh
    /// ticket) while alive; otherwise not a session (ended, never a guest, or
    /// dead of idleness or age, which its object is then told).
    fn guest_from_state(
        &self,
        req: &Incoming<'_>,
        hash: SessionHash,
        state: &DataState,
    ) -> Decision {
        if !self.is_alive_guest(state) {
            let mut d = self.not_a_session(req, Some(hash.clone()));
            if state.is_guest() && !state.ended {
                // Dead of idleness or age: its object learns it now.
                d.deferred = self.with_state_end(&hash, Vec::new());
            }
            return d;
        }
        let record = self.guest_record(state);
        // The data came with the answer: the read that follows finds it here.
        let floor = state.version.max(req.cookies.data_floor(&hash));
        self.memory
            .borrow_mut()
            .data
            .put(&hash.0, state, floor, self.now);
        let ticket = self.ticket_cookie(&hash, &record, self.now);
        let mut d = Decision::allowing(record, Source::State, hash, self.cfg, self.now);
        d.set_cookies.push(ticket);
        d
    }

    /// The guest an object holds, as the session record the gate reasons
    /// about (no user, never in KV), vouched for now.
    fn guest_record(&self, state: &DataState) -> SessionRecord {
        SessionRecord {
            user: String::new(),
            claims: None,
            created: state.guest_created,
            last_seen: state.guest_seen,
            provenance: Provenance::Edge,
            verified_at: self.now,
            seen_from: None,
            data_version: state.version,
            guest: true,
            remember: false,
        }
    }

    /// Whether an object holds a guest that has not ended and is within its limits.
    fn is_alive_guest(&self, state: &DataState) -> bool {
        state.is_guest()
            && !state.ended
            && self
                .guest_record(state)
                .expiry(self.cfg, self.now)
                .is_none()
    }

    /// A session cookie that names no live session: refused on a protected
    /// path (`invalid_session`, cookies cleared); [`Gate::as_visitor`] makes a
    /// visitor of it on a guest path.
    fn not_a_session(&self, req: &Incoming<'_>, hash: Option<SessionHash>) -> Decision {
        self.deny(req, Reason::InvalidSession, hash)
    }

    /// On a guest path, a request without a valid session is forwarded as a
    /// visitor, never denied: a dead or unknown session's cookies are cleared
    /// (in attach mode only the worker's own: the site's cookie is the
    /// site's); one that could not be checked (stores failing) keeps them and
    /// is marked [`Decision::unchecked`]. In edge mode a session cookie that
    /// KV does not know, without its ticket, may be a guest's: its object is
    /// asked (once per [`UNKNOWN_ID_MEMORY`] per isolate for an unknown one).
    pub(super) async fn as_visitor(&self, req: &Incoming<'_>, d: Decision) -> Decision {
        let reason = match &d.verdict {
            Verdict::Deny { reason, .. } if *reason != Reason::CrossSiteRequest => *reason,
            _ => return d,
        };
        if reason == Reason::InvalidSession {
            if let Some(found) = self.find_guest(req).await {
                return found;
            }
        }
        let mut visitor = Decision::new(Verdict::Bypass, None);
        visitor.deferred = d.deferred;
        visitor.ticket_problem = d.ticket_problem;
        if reason == Reason::StoreUnavailable {
            visitor.unchecked = true;
            return visitor;
        }
        let sent_ticket = req.cookies.ticket.is_some();
        visitor.set_cookies = match (self.cfg.lookup.is_some(), reason) {
            (false, r) if r.clears_cookies() => self.clear_cookies(req),
            (true, r) if r.clears_cookies() => {
                let mut own = Vec::new();
                if sent_ticket {
                    own.push(cookies::clear(&self.cfg.ticket_cookie));
                }
                if req.cookies.data_version.is_some() {
                    own.push(cookies::clear(&self.cfg.data_cookie));
                }
                own
            }
            (_, Reason::NoSession) if sent_ticket => vec![cookies::clear(&self.cfg.ticket_cookie)],
            _ => Vec::new(),
        };
        visitor
    }

    /// The guest a session cookie without a genuine ticket names, when its
    /// object says it is one (edge mode with session data only). `None`: not
    /// a guest, or its object could not say (then it stays a visitor).
    async fn find_guest(&self, req: &Incoming<'_>) -> Option<Decision> {
        let (Some(states), Some(hash)) = (self.states, req.cookies.hash.clone()) else {
            return None;
        };
        let known_unknown = self
            .memory
            .borrow()
            .unknown
            .since(&hash.0, self.now, UNKNOWN_ID_MEMORY)
            .is_some();
        // A genuine ticket already said what the session is (a dead guest's, a user's).
        let genuine_ticket = matches!(self.open_ticket(req, &hash), Some(Ok(_)));
        if self.cfg.lookup.is_some() || known_unknown || genuine_ticket {
            return None;
        }
        self.count(|c| c.state_calls += 1);
        let reply = states.call(&hash, &StateRequest::read(0)).await.ok()?;
        if !reply.state.is_guest() {
            let mut memory = self.memory.borrow_mut();
            memory.unknown.insert(&hash.0, self.now, UNKNOWN_ID_MEMORY);
            return None;
        }
        let d = self.guest_from_state(req, hash, &reply.state);
        match d.verdict {
            Verdict::Allow(_) => Some(self.read_data(req, d).await),
            _ => None,
        }
    }

    /// The request's guest session, when it has one: the guest allowed on a
    /// guest path, or on a public path (not checked there) the one its genuine
    /// guest ticket names.
    pub(super) fn guest_of(&self, req: &Incoming<'_>, d: &Decision) -> Option<SessionHash> {
        if let (Some((record, _)), Some(hash)) = (&d.record, &d.session) {
            return record.guest.then(|| hash.clone());
        }
        let hash = req.cookies.hash.as_ref()?;
        match self.open_ticket(req, hash) {
            Some(Ok(t)) if t.guest => Some(hash.clone()),
            _ => None,
        }
    }

    /// A change on a guest path's response to a visitor without a valid
    /// session: a new guest session whose first data it is (version 1), with
    /// a fresh 256-bit ID and the cookies of a login. A change that stores
    /// nothing creates nothing; a refused one creates nothing (502); in
    /// attach mode (the site's guests are the site's) it is refused like a
    /// change without a session on a public path; when the visitor's cookie
    /// could not be checked, 503: it may name a guest that holds data.
    pub(super) async fn create_guest(
        &self,
        decision: &Decision,
        patch: &Patch,
        new_id: impl FnOnce() -> Option<String>,
    ) -> Finish {
        if self.cfg.lookup.is_some() {
            return bad_signal(
                "X-Edge-Session-Data on a response to a request without a valid session \
                 (attach mode creates no guest sessions)"
                    .into(),
            );
        }
        if decision.unchecked {
            return Finish {
                replace: Some(Reply::store_unavailable()),
                event: Some("data_write_failed"),
                error: Some("the visitor's session could not be checked".into()),
                ..Finish::default()
            };
        }
        if !patch.stores_something() {
            return Finish {
                set_cookies: decision.set_cookies.clone(),
                ..Finish::default()
            };
        }
        let Some(id) = new_id() else {
            return Finish {
                replace: Some(Reply::store_unavailable()),
                event: Some("guest_failed"),
                error: Some("no random session ID could be drawn".into()),
                ..Finish::default()
            };
        };
        let hash = SessionHash::of(&id);
        let until = self.now.saturating_add(self.cfg.absolute_timeout);
        let first = self
            .patch_request(patch, until)
            .new_guest(self.now, self.cfg.idle_timeout);
        let state = match self.change_data(&hash, first).await {
            Ok(state) => state,
            Err(Unstored::Refused(problem)) => return bad_signal(problem),
            Err(Unstored::Ended) => return bad_signal("a new guest's object says it ended".into()),
            Err(Unstored::Unavailable(error)) => {
                return Finish {
                    replace: Some(Reply::store_unavailable()),
                    event: Some("data_write_failed"),
                    error: Some(error),
                    ..Finish::default()
                }
            }
        };
        let record = self.guest_record(&state);
        Finish {
            set_cookies: vec![
                cookies::set(&self.cfg.session_cookie, &id),
                self.ticket_cookie(&hash, &record, self.now),
                self.data_cookie(&hash, record.data_version, None),
            ],
            event: Some("guest_created"),
            ..Finish::default()
        }
    }

    /// The data a login carries over from the request's guest session: its
    /// object's data as it is now (`None`: no guest, or nothing stored), or
    /// the answer when it cannot be read (503: a login must not drop a cart
    /// silently).
    pub(super) async fn carried_data(
        &self,
        guest: Option<&SessionHash>,
    ) -> Result<Option<String>, Finish> {
        let (Some(states), Some(hash)) = (self.states, guest) else {
            return Ok(None);
        };
        self.count(|c| c.state_calls += 1);
        match states.call(hash, &StateRequest::read(0)).await {
            // A guest dead of idleness or age carries nothing, even before its object knows.
            Ok(reply) if self.is_alive_guest(&reply.state) => Ok(reply.state.data),
            Ok(_) => Ok(None),
            Err(e) => Err(Finish {
                replace: Some(Reply::store_unavailable()),
                event: Some("login_failed"),
                error: Some(format!("the guest session's data could not be read: {e}")),
                ..Finish::default()
            }),
        }
    }
}
