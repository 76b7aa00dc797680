//! The Workers glue: turns a `Request` into the gate's inputs and its verdict
//! into a `Response`. Compiled only for wasm32.

mod io;

use crate::config::{Config, ConfigError};
use crate::gate::{self, Counts, Gate, Incoming, IsolateMemory, Reply, Verdict, CONTROL_PREFIX};
use crate::signals;
use crate::store::StoreOp;
use io::{forward, read_limited, OriginLookup, WorkersKv};
use serde_json::json;
use std::cell::RefCell;
use std::rc::Rc;
use worker::{event, Context, Date, Env, Headers, Request, Response, Result};

thread_local! {
    /// What this isolate remembers between requests (unknown IDs, scheduled touches).
    static MEMORY: Rc<RefCell<IsolateMemory>> = Rc::default();
}

/// Request headers no client may send: identity is only ever set by the worker.
fn is_identity_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("x-session-") || n.starts_with("x-edge-session-")
}

/// Reads a var or secret; numbers in `[vars]` are accepted as their decimal text.
fn setting(env: &Env, name: &str) -> Option<String> {
    let value = worker::js_sys::Reflect::get(env.as_ref(), &name.into()).ok()?;
    if let Some(s) = value.as_string() {
        Some(s)
    } else if let Some(n) = value.as_f64() {
        Some(n.to_string())
    } else if value.is_undefined() || value.is_null() {
        None
    } else {
        Some(String::from("(not a string)"))
    }
}

/// One log line per request. Never a raw session ID, ticket or token.
struct Log {
    outcome: &'static str,
    detail: String,
    status: u16,
    path: String,
    session: Option<String>,
    counts: Counts,
    started: u64,
    event: Option<&'static str>,
    error: Option<String>,
}

impl Log {
    fn elapsed(&self) -> u64 {
        Date::now().as_millis().saturating_sub(self.started)
    }

    fn emit(&self) {
        let line = json!({
            "outcome": self.outcome,
            "detail": self.detail,
            "status": self.status,
            "path": self.path,
            "session": self.session,
            "kv_reads": self.counts.kv_reads,
            "kv_writes": self.counts.kv_writes,
            "lookups": self.counts.lookups,
            "ms": self.elapsed(),
            "event": self.event,
            "error": self.error,
        });
        worker::console_log!("{line}");
    }
}

/// Adds `Server-Timing`, writes the log line and hands the response out.
fn done(resp: Response, log: &mut Log) -> Result<Response> {
    log.status = resp.status_code();
    let timing = format!("edge-session;desc=\"{}\";dur={}", log.detail, log.elapsed());
    resp.headers().append("Server-Timing", &timing)?;
    log.emit();
    Ok(resp)
}

fn reply_response(reply: Reply) -> Result<Response> {
    let headers = Headers::new();
    for (k, v) in &reply.headers {
        headers.append(k, v)?;
    }
    let resp = if reply.body.is_empty() {
        Response::empty()?
    } else {
        Response::ok(reply.body)?
    };
    Ok(resp.with_status(reply.status).with_headers(headers))
}

/// Runs store writes after the response has been sent (counted in the log line);
/// failures are logged, never surfaced.
fn defer(ctx: &Context, kv: &WorkersKv, ops: Vec<StoreOp>, log: &mut Log) {
    log.counts.kv_writes += ops.len() as u32;
    if ops.is_empty() {
        return;
    }
    let kv = kv.clone();
    ctx.wait_until(async move {
        for op in ops {
            if let Err(e) = op.apply(&kv).await {
                worker::console_warn!(
                    "{}",
                    json!({"outcome": "background_write_failed", "key_kind": &op.key()[..2], "error": e.0})
                );
            }
        }
    });
}

/// Every request gets this answer while the configuration is invalid.
fn config_error(e: &ConfigError, path: &str, log: &mut Log) -> Result<Response> {
    worker::console_error!(
        "{}",
        json!({"outcome": "config_error", "setting": e.setting, "error": e.to_string()})
    );
    log.outcome = "error";
    log.detail = "config_error".into();
    log.error = Some(e.to_string());
    let reply = if path == "/.edge-session/health" {
        gate::health(Err(e))
    } else {
        Reply::json(
            500,
            json!({"error": "config_error", "setting": e.setting, "detail": e.to_string()}),
        )
    };
    done(reply_response(reply)?, log)
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, ctx: Context) -> Result<Response> {
    let started = Date::now().as_millis();
    let url = req.url()?;
    let mut log = Log {
        outcome: "control",
        detail: String::new(),
        status: 500,
        path: url.path().to_string(),
        session: None,
        counts: Counts::default(),
        started,
        event: None,
        error: None,
    };

    let cfg = match Config::from_lookup(|name| setting(&env, name)) {
        Ok(cfg) => cfg,
        Err(e) => return config_error(&e, url.path(), &mut log),
    };
    let kv = match env.kv("SESSIONS") {
        Ok(kv) => WorkersKv(kv),
        Err(e) => {
            let e = ConfigError {
                setting: "SESSIONS",
                problem: format!("the KV namespace binding is missing ({e})"),
            };
            return config_error(&e, url.path(), &mut log);
        }
    };
    let lookup = cfg
        .lookup
        .as_ref()
        .map(|(target, token)| OriginLookup::new(target, token, &cfg, &url));

    let method = req.method().to_string();
    let cookie = req.headers().get("cookie")?;
    let accept = req.headers().get("accept")?;
    let authorization = req.headers().get("authorization")?;
    let incoming = Incoming {
        method: &method,
        path: url.path(),
        query: url.query(),
        cookie: cookie.as_deref(),
        accept: accept.as_deref(),
        has_origin: req.headers().has("origin")?,
        has_acr_method: req.headers().has("access-control-request-method")?,
    };
    let memory = MEMORY.with(Rc::clone);
    let gate = Gate::new(&cfg, &kv, lookup.as_ref(), &memory, Date::now().as_millis());

    // Step 2: the worker's own endpoints.
    if url.path().starts_with(CONTROL_PREFIX) {
        log.detail = "control".into();
        // Only an authorised revoke reads its body, and only up to a limit.
        let body = if url.path() == "/.edge-session/revoke"
            && gate.check_admin(authorization.as_deref()).is_ok()
        {
            read_limited(&mut req, gate::MAX_CONTROL_BODY).await
        } else {
            None
        };
        let reply = gate
            .control(&incoming, authorization.as_deref(), body.as_deref())
            .await;
        log.counts = gate.counts();
        return done(reply_response(reply)?, &mut log);
    }

    // Steps 3 to 9.
    let decision = gate.admit(&incoming).await;
    log.session = decision.session.as_ref().map(|h| h.short().to_string());
    let identity = match &decision.verdict {
        Verdict::Deny(reason) => {
            log.outcome = "deny";
            log.detail = reason.as_str().into();
            log.counts = gate.counts();
            defer(&ctx, &kv, decision.deferred.clone(), &mut log);
            let reply = gate::deny_reply(&cfg, *reason, &incoming, &decision.set_cookies);
            return done(reply_response(reply)?, &mut log);
        }
        Verdict::Bypass => {
            log.outcome = "bypass";
            log.detail = "public".into();
            None
        }
        Verdict::Allow {
            user,
            claims,
            source,
        } => {
            log.outcome = "allow";
            log.detail = source.as_str().into();
            Some((user.clone(), claims.clone(), *source))
        }
    };

    // Forward: identity headers set by the worker only, the ticket cookie removed.
    let headers = Headers::new();
    for (name, value) in req.headers().entries() {
        if !is_identity_header(&name) && !name.eq_ignore_ascii_case("cookie") {
            headers.append(&name, &value)?;
        }
    }
    if let Some(c) = cookie
        .as_deref()
        .and_then(|c| crate::cookies::without(c, &cfg.ticket_cookie))
    {
        headers.set("Cookie", &c)?;
    }
    if let Some((user, claims, source)) = &identity {
        headers.set("X-Session-User", user)?;
        if let Some(claims) = claims {
            headers.set("X-Session-Claims", claims)?;
        }
        headers.set("X-Session-Source", source.as_str())?;
    }
    let upstream = match forward(&mut req, &url, &cfg.origins, headers).await {
        Ok(resp) => resp,
        Err(e) => {
            log.outcome = "error";
            log.detail = "origin_unreachable".into();
            log.error = Some(e.to_string());
            log.counts = gate.counts();
            defer(&ctx, &kv, decision.deferred.clone(), &mut log);
            let reply = Reply::json(502, json!({"error": "origin_unreachable"}));
            return done(reply_response(reply)?, &mut log);
        }
    };

    // After the origin: its session signals.
    let set_cookies = upstream.headers().get_all("set-cookie").unwrap_or_default();
    let header = |name: &str| upstream.headers().get(name).ok().flatten();
    let signals = signals::read(header, &set_cookies, &cfg.session_cookie, gate.now / 1000);
    if let Err(e) = &signals {
        log.error = Some(e.to_string());
        worker::console_error!(
            "{}",
            json!({"outcome": "bad_signal", "error": e.to_string()})
        );
    }
    let finish = gate
        .finish(&decision, signals, || {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).ok()?;
            use base64::Engine;
            Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
        })
        .await;
    log.event = finish.event;
    log.counts = gate.counts();
    let mut deferred = decision.deferred.clone();
    deferred.extend(finish.deferred);
    defer(&ctx, &kv, deferred, &mut log);
    if let Some(reply) = finish.replace {
        log.outcome = "error";
        log.detail = finish.event.unwrap_or("error").into();
        return done(reply_response(reply)?, &mut log);
    }

    // The origin's response, unchanged but for the signal headers and our additions.
    let out = Headers::new();
    for (name, value) in upstream.headers().entries() {
        let n = name.to_ascii_lowercase();
        if n == "set-cookie" || n == signals::LOGIN || n == signals::CLAIMS || n == signals::LOGOUT
        {
            continue;
        }
        out.append(&name, &value)?;
    }
    for c in set_cookies.iter().chain(&finish.set_cookies) {
        out.append("Set-Cookie", c)?;
    }
    done(upstream.with_headers(out), &mut log)
}
