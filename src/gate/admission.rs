//! Steps 3 to 9: whether a request's session is valid, from its ticket, KV
//! or the site's lookup, and what is written for it (a touch, a death, a
//! record learned).

use super::*;

impl<'a, K: Kv, L: Lookup, S: SessionStates> Gate<'a, K, L, S> {
    /// The request's session, checked as on a protected path (CSRF, steps 4 to 9).
    pub(super) async fn check_session(&self, req: &Incoming<'_>) -> Decision {
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
    pub(super) fn open_ticket(&self, req: &Incoming<'_>, hash: &SessionHash) -> Opened {
        req.cookies.opened(self.cfg).map(|opened| {
            (opened.clone())
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
    pub(super) async fn check(
        &self,
        req: &Incoming<'_>,
        hash: SessionHash,
        ticket: Option<Rc<Ticket>>,
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
                return Decision::allowing(t.record(), Source::Ticket, hash, cfg, t.verified_at);
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
    pub(super) async fn check_record(
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
    pub(super) async fn restart_data(
        &self,
        hash: &SessionHash,
        record: &SessionRecord,
    ) -> Result<u64, ()> {
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
    pub(super) fn forget(&self, req: &Incoming<'_>, hash: SessionHash, user: String) -> Decision {
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
    pub(super) fn died(
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
    pub(super) fn degraded(
        &self,
        req: &Incoming<'_>,
        hash: SessionHash,
        ticket: Option<Rc<Ticket>>,
    ) -> Decision {
        // Step 8
        match ticket {
            Some(t) if !req.strict && t.expiry(self.cfg, self.now).is_none() => {
                Decision::allowing(t.record(), Source::Stale, hash, self.cfg, t.verified_at)
            }
            _ => self.deny(req, Reason::StoreUnavailable, Some(hash)),
        }
    }

    /// Asks the origin's lookup about the request's session.
    pub(super) async fn ask(&self, hash: &SessionHash, req: &Incoming<'_>) -> Asked {
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
    pub(super) fn allow(
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
        let ticket = self.ticket_cookie(&hash, &record, self.now);
        let mut d = Decision::allowing(record, source, hash, cfg, self.now);
        d.set_cookies.push(ticket);
        d.deferred = writes;
        d
    }
}
