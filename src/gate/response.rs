//! Step 11: the origin's session signals (login, logout, its own session
//! cookie in attach mode) and the cookies the response carries.

use super::*;

impl<'a, K: Kv, L: Lookup, S: SessionStates> Gate<'a, K, L, S> {
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
    pub(super) fn forget_previous(
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
    pub(super) async fn site_cookie_and_data(
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

    /// The login signal: a new session, its first data (if the response
    /// changes it) applied before anything else, then in KV before the
    /// browser gets its cookies; the request's previous session is forgotten
    /// (no fixation). A change that is refused or cannot be stored creates no session.
    pub(super) async fn login(
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
    pub(super) fn login_cookies(
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
    pub(super) fn cookie_life(&self, record: &SessionRecord) -> Option<u64> {
        record
            .remember
            .then(|| record.absolute_deadline(self.cfg).saturating_sub(self.now) / 1000)
    }
}

/// What a login signal asks for.
pub(super) struct NewSession<'p> {
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
    pub(super) fn first_data(&self, limit: usize) -> Result<Option<Patch>, String> {
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
