//! Step 10 and the data half of step 11: the session's data read for an
//! allowed request, and the origin's change to it applied.

use super::*;

impl<'a, K: Kv, L: Lookup, S: SessionStates> Gate<'a, K, L, S> {
    /// Reads the data of an allowed request's session: from the isolate when
    /// it holds the version the request must see at least (the ticket's or
    /// KV's), otherwise from the session's object, which also says whether
    /// the session has ended. A session just learned from the lookup is asked
    /// about once (the site may have given it data as it signed in). A strict
    /// path always asks the object (immediate revocation) and is refused when
    /// it cannot; elsewhere data that cannot be read is forwarded as
    /// unavailable, never as no data.
    pub(super) async fn read_data(&self, req: &Incoming<'_>, mut d: Decision) -> Decision {
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
    pub(super) fn data_deadline(&self, record: &SessionRecord) -> UnixMillis {
        record.absolute_deadline(self.cfg)
    }

    /// The object holds a newer version than the ticket or KV named (the site
    /// gave a session data as it signed in, its first read failed, or a
    /// browser kept a slower answer's ticket): the ticket and the data-version
    /// cookie the request gets, and KV's record, name it from now on.
    pub(super) fn catch_up(&self, d: &mut Decision, hash: &SessionHash, version: u64) {
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
    pub(super) fn tell_kv_of_data(
        &self,
        ops: &mut Vec<StoreOp>,
        hash: &SessionHash,
        record: &SessionRecord,
    ) {
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
    pub(super) fn mark_data(&self, hash: &SessionHash, version: u64) -> StoreOp {
        StoreOp::MarkData {
            key: hash.record_key(),
            version,
            limits: [self.cfg.limits(false), self.cfg.limits(true)],
            now: self.now,
        }
    }

    /// The session's object says the session ended (revoked, perhaps in
    /// another location, while KV here still has it): refused, and KV told.
    pub(super) fn ended_elsewhere(
        &self,
        req: &Incoming<'_>,
        d: Decision,
        hash: SessionHash,
    ) -> Decision {
        self.memory.borrow_mut().data.forget(&hash.0);
        let mut denied = self.deny(req, Reason::InvalidSession, Some(hash.clone()));
        denied.deferred = self.kv_end_ops(&d, &hash);
        denied.user = d.user;
        denied
    }

    /// The KV writes that tell KV a session its object says has ended; none
    /// for a guest, which is never in KV.
    pub(super) fn kv_end_ops(&self, d: &Decision, hash: &SessionHash) -> Vec<StoreOp> {
        if d.record.as_ref().is_some_and(|(r, _)| r.guest) {
            return Vec::new();
        }
        let user = d.user.as_deref();
        store::end_ops(self.cfg, hash, user, EndReason::Revoked, self.now)
    }

    /// A change to a session's data for its object; `until` is when the
    /// session can no longer be alive.
    pub(super) fn patch_request(&self, patch: &Patch, until: UnixMillis) -> StateRequest {
        StateRequest::patch(patch, self.cfg.session_data_limit, until)
    }

    /// Applies a request that changes a session's data (a patch, a restart) in its object.
    pub(super) async fn change_data(
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

    /// A change to the request's session data: applied by its object, and a
    /// ticket naming the new version issued, so that this browser reads its
    /// own write wherever it goes next. On a public path the session is
    /// checked first, as on a protected one.
    pub(super) async fn change(
        &self,
        req: &Incoming<'_>,
        decision: &Decision,
        patch: &Patch,
    ) -> Finish {
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
    pub(super) fn unstored(&self, req: &Incoming<'_>, d: &Decision, unstored: Unstored) -> Finish {
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
}
