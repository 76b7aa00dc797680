//! The worker's own endpoints under `/.edge-session/`: health, logout and revoke.
//!
//! A control request is routed from its head alone ([`Control::route`]), which
//! also checks the revoke token, so that the edge layer reads a body only for
//! an authorised revoke and only up to [`Control::body_limit`].

use crate::config::{Config, ConfigError};
use crate::gate::Gate;
use crate::reply::{Reason, Reply};
use crate::request::{Head, Incoming};
use crate::session::{user_index_prefix, EndReason, SessionHash, SessionRecord, Stored};
use crate::store::{Kv, Lookup, SessionStates, StoreError};

/// Paths the worker answers itself.
pub const PREFIX: &str = "/.edge-session/";
/// Largest body a control endpoint reads.
pub const MAX_BODY: usize = 8 * 1024;

/// A request for one of the worker's endpoints, routed before its body is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// `GET /.edge-session/health`.
    Health,
    /// `POST /.edge-session/logout`.
    Logout,
    /// `POST /.edge-session/revoke`, its bearer token already checked.
    Revoke,
    /// `GET /.edge-session/jwks.json`: the assertion's public keys, which the
    /// edge layer exports from WebCrypto ([`jwks_reply`]).
    Jwks,
    /// `GET /.edge-session/sessions`: the caller's live sessions.
    Sessions,
    /// `POST /.edge-session/sessions/end` with `{"handle":"..."}`.
    EndSession,
    /// `POST /.edge-session/logout-everywhere`, optionally `{"keep_current":true}`.
    LogoutEverywhere,
    /// Answered from the head alone: 404, 405, or a refused token.
    Refused(Reply),
}

impl Control {
    /// The control request `head` makes; `None` when its path is not under [`PREFIX`].
    pub fn route(cfg: &Config, head: &Head<'_>) -> Option<Control> {
        let name = head.path.strip_prefix(PREFIX)?;
        let for_the_user = matches!(
            name,
            "logout" | "sessions" | "sessions/end" | "logout-everywhere"
        );
        // Endpoints that act for the signed-in user answer this site only.
        if for_the_user && cfg.csrf_protection && head.is_cross_origin(&cfg.trusted_origins) {
            return Some(Control::Refused(
                Reply::error(403, Reason::CrossSiteRequest.as_str())
                    .with("X-Edge-Session-Reason", Reason::CrossSiteRequest.as_str()),
            ));
        }
        Some(match (name, head.is_post()) {
            ("health", _) => Control::Health,
            ("jwks.json", _) => Control::Jwks,
            ("sessions", false) => Control::Sessions,
            ("sessions/end", true) => Control::EndSession,
            ("logout-everywhere", true) => Control::LogoutEverywhere,
            ("sessions", true) => {
                Control::Refused(Reply::error(405, "method_not_allowed").with("Allow", "GET"))
            }
            ("logout", true) => Control::Logout,
            ("revoke", true) => match check_admin(cfg, head.authorization) {
                Ok(()) => Control::Revoke,
                Err(reply) => Control::Refused(reply),
            },
            ("logout" | "revoke" | "sessions/end" | "logout-everywhere", false) => {
                Control::Refused(Reply::error(405, "method_not_allowed").with("Allow", "POST"))
            }
            _ => Control::Refused(Reply::error(404, "not_found")),
        })
    }

    /// How much of the body to read: `Some(limit)` only for an authorised revoke.
    pub fn body_limit(&self) -> Option<usize> {
        matches!(
            self,
            Control::Revoke | Control::EndSession | Control::LogoutEverywhere
        )
        .then_some(MAX_BODY)
    }
}

/// `GET /.edge-session/health`, also while the configuration is invalid;
/// `session_data` says whether the `SESSION_STATE` binding is there.
pub fn health(cfg: Result<&Config, &ConfigError>, session_data: bool) -> Reply {
    match cfg {
        Ok(_) => Reply::json(
            200,
            obj!({
                "ok": true,
                "version": env!("CARGO_PKG_VERSION"),
                "session_data": if session_data { "on" } else { "off" },
            }),
        ),
        Err(e) => Reply::json(
            500,
            obj!({"ok": false, "error": e.to_string(), "setting": e.setting}),
        ),
    }
}

/// `GET /.edge-session/jwks.json`: public, cacheable for a few minutes (a
/// rotated key is published before it signs, so caches catch up in time).
pub fn jwks_reply(public_keys: &[(String, serde_json::Value)]) -> Reply {
    let mut reply = Reply::json(200, crate::assertion::jwks(public_keys));
    reply.headers.retain(|(k, _)| k != "Cache-Control");
    reply.with("Cache-Control", "public, max-age=300")
}

/// The answer to every request while the configuration is invalid: the
/// setting is named, the details go only to the log and the health endpoint.
pub fn config_error(e: &ConfigError, head: &Head<'_>) -> Reply {
    if head.path.strip_prefix(PREFIX) == Some("health") {
        return health(Err(e), false);
    }
    Reply::json(500, obj!({"error": "config_error", "setting": e.setting}))
}

/// The answer to a request that carries the worker's own hop marker: it came
/// back to the worker, and forwarding it again would loop.
pub fn loop_detected() -> Reply {
    Reply::json(
        508,
        obj!({
            "error": "loop_detected",
            "detail": "this request came back to edge-session: set ORIGIN_URL to your origin \
                       (e.g. ORIGIN_URL=\"http://127.0.0.1:8081\" in wrangler.toml [vars]), \
                       or add a route so the worker runs in front of an origin that serves the hostname"
        }),
    )
}

/// Checks the revoke endpoint's bearer token: 404 while `ADMIN_TOKEN` is
/// unset, 401 when it does not match.
fn check_admin(cfg: &Config, authorization: Option<&str>) -> Result<(), Reply> {
    let Some(expected) = &cfg.admin_token else {
        return Err(Reply::error(404, "not_found"));
    };
    let given = authorization
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(given.trim().as_bytes(), expected.as_bytes()) {
        return Err(Reply::error(401, "unauthorized").with("WWW-Authenticate", "Bearer"));
    }
    Ok(())
}

/// Compares two secrets without an early exit on the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

impl<K: Kv, L: Lookup, S: SessionStates> Gate<'_, K, L, S> {
    /// Answers a routed control request. `body` is the request body, read only
    /// when [`Control::body_limit`] asked for it, and `None` when it was larger.
    pub async fn control(&self, control: Control, req: &Incoming<'_>, body: Option<&str>) -> Reply {
        let body = match (control.body_limit(), body) {
            (Some(limit), None) => {
                return Reply::json(413, obj!({"error": "body_too_large", "limit": limit}))
            }
            (_, body) => body.unwrap_or(""),
        };
        match control {
            Control::Health => health(Ok(self.cfg), self.states.is_some()),
            Control::Logout => self.logout(req).await,
            Control::Revoke => self.revoke(body).await,
            Control::Jwks => Reply::error(500, "jwks_unavailable"),
            Control::Sessions => self.list_sessions(req).await,
            Control::EndSession => self.end_one(req, body).await,
            Control::LogoutEverywhere => self.end_all(req, body).await,
            Control::Refused(reply) => reply,
        }
    }

    async fn logout(&self, req: &Incoming<'_>) -> Reply {
        let target = self.cfg.login_url.as_deref().unwrap_or("/");
        let mut reply = Reply::redirect(target);
        if let Some(hash) = &req.cookies.hash {
            if self.end_session(hash, None).await.is_err() {
                reply = Reply::store_unavailable();
            }
        }
        reply.with_cookies(&self.clear_cookies(req))
    }

    /// Deletes a session and its index entry (under `user`, or the user its
    /// record names); `Ok(true)` if its record existed.
    async fn end_session(
        &self,
        hash: &SessionHash,
        user: Option<&str>,
    ) -> Result<bool, StoreError> {
        // Ended even when KV cannot be read: the session's object still learns it.
        let record = self.read_record(hash).await;
        let known = record.as_ref().ok().and_then(Option::as_ref);
        let user = user.or(known.map(|r| r.user.as_str()));
        let ended = self
            .apply(&self.end_ops(hash, user, EndReason::Revoked))
            .await;
        let existed = record?.is_some();
        ended.map(|()| existed)
    }

    async fn revoke(&self, body: &str) -> Reply {
        #[derive(serde::Deserialize)]
        struct Body {
            session_id: Option<String>,
            user: Option<String>,
        }
        let revoked = match serde_json::from_str::<Body>(body) {
            Ok(Body {
                session_id: Some(id),
                user: None,
            }) if !id.is_empty() => self
                .end_session(&SessionHash::of(&id), None)
                .await
                .map(u32::from),
            Ok(Body {
                session_id: None,
                user: Some(user),
            }) if !user.is_empty() => self.revoke_user(&user).await,
            _ => {
                return Reply::json(
                    400,
                    obj!({"error": "bad_request", "detail": "send {\"session_id\":\"...\"} or {\"user\":\"...\"}"}),
                )
            }
        };
        match revoked {
            Ok(n) => Reply::json(200, obj!({ "revoked": n })),
            Err(_) => Reply::store_unavailable(),
        }
    }

    async fn revoke_user(&self, user: &str) -> Result<u32, StoreError> {
        let prefix = user_index_prefix(user);
        let keys = self.kv.list(&prefix).await?;
        let mut revoked = 0;
        for key in keys {
            let Some(hex) = key.strip_prefix(&prefix) else {
                continue;
            };
            let hash = SessionHash(hex.to_string());
            if self.end_session(&hash, Some(user)).await? {
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    /// The caller's live session (its hash and record), or the reply that says why not.
    async fn caller(&self, req: &Incoming<'_>) -> Result<(SessionHash, SessionRecord), Reply> {
        let refuse = |reason: Reason| Err(Reply::denial(self.cfg, reason, &Head::default()));
        let Some(hash) = req.cookies.hash.clone() else {
            return refuse(Reason::NoSession);
        };
        match self.read_stored(&hash).await {
            Err(_) => Err(Reply::store_unavailable()),
            Ok(None) => refuse(Reason::InvalidSession),
            // A session that died or was ended says how, as on any path.
            Ok(Some(Stored::Ended(ending))) => refuse(ending.reason.into()),
            Ok(Some(Stored::Live(record))) => match record.expiry(self.cfg, self.now) {
                Some(expired) => refuse(expired.into()),
                None => Ok((hash, record)),
            },
        }
    }

    /// The caller's session, its record, and all live sessions of its user.
    async fn caller_and_sessions(
        &self,
        req: &Incoming<'_>,
    ) -> Result<
        (
            SessionHash,
            SessionRecord,
            Vec<(SessionHash, SessionRecord)>,
        ),
        Reply,
    > {
        let (current, me) = self.caller(req).await?;
        match self.sessions_of(&me.user).await {
            Ok(sessions) => Ok((current, me, sessions)),
            Err(_) => Err(Reply::store_unavailable()),
        }
    }

    /// The live sessions of `user`, by hash, most recently used first.
    async fn sessions_of(
        &self,
        user: &str,
    ) -> Result<Vec<(SessionHash, SessionRecord)>, StoreError> {
        let prefix = user_index_prefix(user);
        let mut out = Vec::new();
        for key in self.kv.list(&prefix).await? {
            let Some(hex) = key.strip_prefix(&prefix) else {
                continue;
            };
            let hash = SessionHash(hex.to_string());
            if let Some(r) = self.read_record(&hash).await? {
                if r.user == user && r.expiry(self.cfg, self.now).is_none() {
                    out.push((hash, r));
                }
            }
        }
        // Most recent first, ties in the order KV listed them. An insertion sort: a
        // user has a handful of sessions, and the library's sorts cost 1.6 KB of wasm.
        for i in 1..out.len() {
            let mut j = i;
            while j > 0 && out[j].1.last_seen > out[j - 1].1.last_seen {
                out.swap(j, j - 1);
                j -= 1;
            }
        }
        Ok(out)
    }

    /// An opaque handle for one of the caller's sessions: a MAC of its hash,
    /// so that it names the session without revealing its ID or hash.
    fn handle(&self, hash: &SessionHash) -> String {
        use base64::Engine;
        use hmac::Mac;
        let mut mac = self.cfg.keys[0].mac();
        mac.update(b"edge-session-handle\n");
        mac.update(hash.0.as_bytes());
        let tag = mac.finalize().into_bytes();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag[..18])
    }

    async fn list_sessions(&self, req: &Incoming<'_>) -> Reply {
        let (current, me, sessions) = match self.caller_and_sessions(req).await {
            Ok(found) => found,
            Err(reply) => return reply,
        };
        let list: Vec<serde_json::Value> = sessions
            .iter()
            .map(|(hash, r)| {
                let seen = r.seen_from.as_ref();
                obj!({
                    "handle": self.handle(hash),
                    "created": r.created / 1000,
                    "last_seen": r.last_seen / 1000,
                    "device": seen.and_then(|s| s.device.as_deref()),
                    "location": seen.and_then(|s| s.location.as_deref()),
                    "current": *hash == current,
                    "remembered": r.remember,
                })
            })
            .collect();
        Reply::json(200, obj!({"user": me.user.as_str(), "sessions": list}))
    }

    async fn end_one(&self, req: &Incoming<'_>, body: &str) -> Reply {
        #[derive(serde::Deserialize)]
        struct Body {
            handle: String,
        }
        let Ok(Body { handle }) = serde_json::from_str::<Body>(body) else {
            return Reply::json(
                400,
                obj!({"error": "bad_request", "detail": "send {\"handle\":\"...\"}"}),
            );
        };
        let (current, me, sessions) = match self.caller_and_sessions(req).await {
            Ok(found) => found,
            Err(reply) => return reply,
        };
        let Some((hash, _)) = sessions.iter().find(|(h, _)| self.handle(h) == handle) else {
            return Reply::error(404, "not_found");
        };
        if self
            .apply(&self.end_ops(hash, Some(&me.user), EndReason::Revoked))
            .await
            .is_err()
        {
            return Reply::store_unavailable();
        }
        let reply = Reply::json(200, obj!({"ended": 1, "current": *hash == current}));
        if *hash == current {
            reply.with_cookies(&self.clear_cookies(req))
        } else {
            reply
        }
    }

    async fn end_all(&self, req: &Incoming<'_>, body: &str) -> Reply {
        #[derive(serde::Deserialize, Default)]
        struct Body {
            #[serde(default)]
            keep_current: bool,
        }
        let keep_current = if body.trim().is_empty() {
            false
        } else {
            match serde_json::from_str::<Body>(body) {
                Ok(b) => b.keep_current,
                Err(_) => {
                    return Reply::json(
                        400,
                        obj!({"error": "bad_request", "detail": "send {} or {\"keep_current\":true}"}),
                    )
                }
            }
        };
        let (current, me, sessions) = match self.caller_and_sessions(req).await {
            Ok(found) => found,
            Err(reply) => return reply,
        };
        let mut targets: Vec<&SessionHash> = sessions
            .iter()
            .map(|(h, _)| h)
            .filter(|h| !(keep_current && **h == current))
            .collect();
        // The caller's own session ends too, even if its index entry was lost.
        if !keep_current && !targets.contains(&&current) {
            targets.push(&current);
        }
        for hash in &targets {
            let ops = self.end_ops(hash, Some(&me.user), EndReason::Revoked);
            if self.apply(&ops).await.is_err() {
                return Reply::store_unavailable();
            }
        }
        let ended = targets.len();
        let reply = Reply::json(200, obj!({"ended": ended, "kept_current": keep_current}));
        if keep_current {
            reply
        } else {
            reply.with_cookies(&self.clear_cookies(req))
        }
    }
}
