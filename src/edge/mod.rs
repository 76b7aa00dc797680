//! The Workers glue: moves a `Request` into the gate and its decisions back
//! out as a `Response`. Compiled only for wasm32; every decision is made in
//! host-tested modules ([`crate::gate`], [`crate::control`], [`crate::headers`]).

mod assertion;
mod io;
mod js;
mod platform;
mod quick;
mod state;

use crate::config::{Config, ConfigError, LogRequests};
use crate::control::{self, Control};
use crate::gate::{Decision, Finish, Gate, IsolateMemory, Verdict};
use crate::headers::{self, HeaderEdits};
use crate::log::LogLine;
use crate::reply::Reply;
use crate::request::{Head, Incoming, Known, TicketMemo};
use crate::signals;
use crate::store::{Kv, Lookup, SessionStates, StoreOp};
use crate::url::UrlParts;
use io::{forward, OriginLookup, WorkersKv};
use platform::{Context, Env, Result};
use state::WorkersStates;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::wasm_bindgen;
use web_sys::{Headers, Request, Response};

thread_local! {
    /// What this isolate remembers between requests (unknown IDs, scheduled touches).
    static MEMORY: Rc<RefCell<IsolateMemory>> = Rc::default();
    /// The configuration, read once: an isolate runs one deployment, whose
    /// vars and secrets do not change under it.
    static CONFIG: RefCell<Option<std::result::Result<Rc<Config>, ConfigError>>> =
        const { RefCell::new(None) };
    /// The KV and session-data bindings, found once for the same reason.
    static BINDINGS: RefCell<Option<Bindings>> = const { RefCell::new(None) };
    /// Tickets opened and found genuine, under the configuration's keys (read
    /// once, as above): a request with the same cookies skips their checks.
    static TICKETS: TicketMemo = TicketMemo::default();
}

/// The bindings of a deployment: KV (missing is a configuration error) and
/// the session-data objects (optional).
type Bindings = (Option<WorkersKv>, Option<WorkersStates>);

/// Reads a var or secret; numbers in `[vars]` are accepted as their decimal text.
fn setting(env: &Env, name: &str) -> Option<String> {
    let value = js_sys::Reflect::get(env, &name.into()).ok()?;
    if let Some(s) = value.as_string() {
        Some(s)
    } else if let Some(n) = value.as_f64() {
        // Whole numbers only (`IDLE_TIMEOUT = 1800`): formatting any f64 would
        // pull 14 KB of float printing into the module.
        Some(if n.fract() == 0.0 && (0.0..9e15).contains(&n) {
            (n as u64).to_string()
        } else {
            String::from("(not a whole number)")
        })
    } else if value.is_undefined() || value.is_null() {
        None
    } else {
        Some(String::from("(not a string)"))
    }
}

/// The request's log line and when the request started.
struct Log {
    started: u64,
    line: LogLine,
    mode: LogRequests,
    /// The response has its `Server-Timing` already (the origin's, passed on with
    /// it among the edits: one call into JavaScript less).
    timed: bool,
}

impl std::ops::Deref for Log {
    type Target = LogLine;
    fn deref(&self) -> &LogLine {
        &self.line
    }
}

impl std::ops::DerefMut for Log {
    fn deref_mut(&mut self) -> &mut LogLine {
        &mut self.line
    }
}

impl Log {
    fn start(path: &str) -> Log {
        Log {
            started: now(),
            line: LogLine::new(path),
            // Until the configuration is read: a configuration error is always logged.
            mode: LogRequests::All,
            timed: false,
        }
    }

    fn elapsed(&self) -> u64 {
        now().saturating_sub(self.started)
    }

    /// The `Server-Timing` value of the response.
    fn timing(&self) -> String {
        headers::server_timing(&self.detail, self.elapsed())
    }

    /// What the gate decided, for the line.
    fn note(&mut self, decision: &Decision) {
        self.session = decision.session.as_ref().map(|h| h.short().to_string());
        self.ticket = decision.ticket_problem.map(|p| p.to_string());
        self.user = decision.user.clone();
        match &decision.verdict {
            Verdict::Deny { reason, .. } => self.set("deny", reason.as_str()),
            Verdict::Bypass => self.set("bypass", "public"),
            Verdict::Allow(identity) => self.set("allow", identity.source.as_str()),
        }
    }

    /// The gate's counts and trouble, with the writes scheduled after the
    /// response, added to the line's (the synchronous path tallies each of its
    /// gates: the decision's, then the response's).
    fn tally<K: Kv, L: Lookup, S: SessionStates>(
        &mut self,
        gate: &Gate<'_, K, L, S>,
        deferred: &[StoreOp],
    ) {
        self.error = self.error.take().or_else(|| gate.trouble());
        self.counts.add(gate.counts());
        self.counts.scheduled(deferred);
    }

    fn emit(&self, status: u16) {
        if self.line.worth_writing(self.mode) {
            platform::log(&self.line.to_json(status, self.elapsed()).to_string());
        }
    }
}

/// The request headers the worker reads, in the order [`Read`] holds them (the one
/// call that reads the request gives every header: these are kept).
const READ: [&str; 9] = [
    headers::HOP,
    "cookie",
    "accept",
    "authorization",
    "origin",
    "sec-fetch-site",
    "access-control-request-method",
    "user-agent",
    "cf-ipcountry",
];

/// What the worker reads of a request, as [`js::head`] gave it.
struct Read<'a> {
    method: &'a str,
    url: UrlParts<'a>,
    /// The values of [`READ`], in its order.
    values: [Option<&'a str>; READ.len()],
    /// The name of every header of the request.
    names: Vec<&'a str>,
}

impl<'a> Read<'a> {
    fn of(fields: &'a js::Fields) -> Option<Read<'a>> {
        let mut items = fields.items();
        let method = items.next()??;
        let url = UrlParts::split(items.next()??)?;
        let mut values = [None; READ.len()];
        let mut names = Vec::new();
        while let Some(name) = items.next() {
            let (name, value) = (name?, items.next()??);
            // The platform gives names in lower case; READ holds the hop marker's as sent.
            if let Some(i) = READ.iter().position(|n| n.eq_ignore_ascii_case(name)) {
                values[i] = Some(value);
            }
            names.push(name);
        }
        Some(Read {
            method,
            url,
            values,
            names,
        })
    }

    fn get(&self, name: &str) -> Option<&'a str> {
        let i = READ.iter().position(|n| *n == name)?;
        self.values[i]
    }

    /// The head every request is read with (before the configuration is known).
    fn head(&self) -> Head<'a> {
        Head {
            method: self.method,
            path: self.url.path,
            query: self.url.query,
            cookie: self.get("cookie"),
            accept: self.get("accept"),
            site: self.url.origin,
            ..Head::default()
        }
    }
}

/// The request as the gate reads it: the other headers given to it only
/// where it may use them.
/// `known`: what a read of the same request found before.
fn incoming<'a>(cfg: &Config, read: &Read<'a>, known: Known) -> Incoming<'a> {
    let get = |name: &str| read.get(name);
    let method = read.method;
    let mut incoming =
        TICKETS.with(|memo| Incoming::read_known(cfg, read.head(), known, Some(memo)));
    let control = read.url.path.starts_with(control::PREFIX);
    let safe = method == "GET" || method == "HEAD";
    let head = &mut incoming.head;
    if control {
        head.authorization = get("authorization");
    }
    if control || !safe {
        head.origin = get("origin");
        head.sec_fetch_site = get("sec-fetch-site");
    }
    // Sessions are created on public paths (login) or learned from the lookup.
    if incoming.public || cfg.lookup.is_some() {
        head.user_agent = get("user-agent");
        // The country Cloudflare reports in a header: reading `request.cf` would
        // convert the whole object.
        head.location = get("cf-ipcountry").filter(|c| *c != "XX" && *c != "T1");
    }
    head.has_acr_method = method == "OPTIONS"
        && head.origin.is_some()
        && get("access-control-request-method").is_some();
    incoming
}

/// The worker's fetch handler: one request in phases (configuration, control
/// endpoints, the gate's decision, forwarding, the origin's signals), with one
/// exit that adds `Server-Timing` and writes the log line. It takes the
/// platform's own `Request` (no conversion of the whole request, `cf` object
/// included) and answers with the platform's `Response`.
#[wasm_bindgen]
pub fn fetch(req: Request, env: Env, ctx: Context) -> js_sys::Promise {
    whole_promise(req, env, ctx, None)
}

/// A promise of the whole asynchronous path's response ([`whole`]); when even
/// the path fails (a request URL that is not absolute), 500 `internal_error`,
/// and why in the log.
fn whole_promise(
    req: Request,
    env: Env,
    ctx: Context,
    answered: Option<quick::Answered>,
) -> js_sys::Promise {
    platform::promise(async move {
        let response = whole(req, env, ctx, answered)
            .await
            .or_else(|e| internal_error(&e.to_string()));
        Ok(response?.into())
    })
}

/// The answer when the path itself failed: 500 `internal_error`, and why in the log.
fn internal_error(why: &str) -> Result<Response> {
    platform::error(&obj!({"outcome": "internal_error", "error": why}).to_string());
    reply_response(Reply::error(500, "internal_error"))
}

/// The whole asynchronous path of a request; `answered`: the reads the entry
/// has made for it already ([`quick::quick_read`], [`quick::quick_answer`]).
async fn whole(
    req: Request,
    env: Env,
    ctx: Context,
    answered: Option<quick::Answered>,
) -> Result<Response> {
    // One call reads what the worker needs of the request; the runtime's URL is
    // already normalised: sliced, not parsed again.
    let fields = js::head(&req);
    let read = Read::of(&fields).ok_or("the request URL is not absolute")?;
    let mut log = Log::start(read.url.path);
    if let Some(a) = &answered {
        log.started = a.started;
    }
    let response = match serve(req, &read, &env, &ctx, answered, &mut log).await {
        Ok(response) => response,
        Err(e) => {
            log.set("error", "internal_error");
            log.error = Some(e.to_string());
            reply_response(Reply::error(500, "internal_error"))?
        }
    };
    respond(response, &log)
}

/// The clock, in unix milliseconds (`Date.now()`: one call, no `Date` object).
fn now() -> u64 {
    js_sys::Date::now() as u64
}

/// The single exit: `Server-Timing` on the response, then the log line.
fn respond(response: Response, log: &Log) -> Result<Response> {
    if !log.timed {
        response.headers().append("Server-Timing", &log.timing())?;
    }
    log.emit(response.status());
    Ok(response)
}

async fn serve(
    req: Request,
    read: &Read<'_>,
    env: &Env,
    ctx: &Context,
    answered: Option<quick::Answered>,
    log: &mut Log,
) -> Result<Response> {
    let url = &read.url;
    let head = read.head();

    // Step 1, first half: a request that carries our own hop marker came back to us.
    if read.get(headers::HOP).is_some() {
        log.set("error", "loop_detected");
        log.error = Some("the request came back to the worker: set ORIGIN_URL or a route".into());
        return answer(control::loop_detected(), &head);
    }

    let (cfg, kv, states) = match configure(env) {
        Ok(ready) => ready,
        Err(e) => return config_error(&e, &head, log),
    };
    log.mode = cfg.log_requests;
    // What the entry has read already is read once.
    let (kv, states, looked_up) = match answered {
        Some(a) => {
            let kv = match a.kv {
                Some((key, outcome)) => kv.answering(key, outcome),
                None => kv,
            };
            (kv, states.map(|s| s.answering(a.state)), a.lookup)
        }
        None => (kv, states, None),
    };

    let incoming = incoming(&cfg, read, Known::default());

    let lookup = cfg
        .lookup
        .as_ref()
        .map(|(target, token)| OriginLookup::new(target, token, &cfg, url.origin))
        .map(|lookup| lookup.answering(looked_up));
    let memory = MEMORY.with(Rc::clone);
    let gate = Gate::new(&cfg, &kv, lookup.as_ref(), &memory, now()).with_states(states.as_ref());
    let mut deferred = Vec::new();
    let result = exchange(req, read, &gate, &incoming, log, &mut deferred).await;
    log.tally(&gate, &deferred);
    defer(ctx, &kv, states, deferred);
    result
}

/// The answer while a setting is wrong: logged with its details, which only
/// the health endpoint repeats.
fn config_error(e: &ConfigError, head: &Head<'_>, log: &mut Log) -> Result<Response> {
    let line = obj!({"outcome": "config_error", "setting": e.setting, "error": e.to_string()});
    platform::error(&line.to_string());
    log.set("error", "config_error");
    log.error = Some(e.to_string());
    answer(control::config_error(e, head), head)
}

/// The assertion signer, or the configuration error its keys make.
async fn signer(cfg: &Config) -> std::result::Result<Rc<assertion::Signer>, ConfigError> {
    assertion::signer(&cfg.assertion_keys)
        .await
        .map_err(|problem| ConfigError {
            setting: "ASSERTION_KEYS",
            problem,
        })
}

/// The configuration (parsed once per isolate), the KV binding and the
/// session data binding (optional), or the setting that is wrong.
fn configure(
    env: &Env,
) -> std::result::Result<(Rc<Config>, WorkersKv, Option<WorkersStates>), ConfigError> {
    let cfg = CONFIG.with(|cell| {
        cell.borrow_mut()
            .get_or_insert_with(|| Config::from_lookup(|name| setting(env, name)).map(Rc::new))
            .clone()
    })?;
    let (kv, states) = BINDINGS.with(|cell| {
        cell.borrow_mut()
            .get_or_insert_with(|| (WorkersKv::of(env), WorkersStates::of(env)))
            .clone()
    });
    let kv = kv.ok_or_else(|| ConfigError {
        setting: io::BINDING,
        problem: "the KV namespace binding is missing (add [[kv_namespaces]] binding = \"SESSIONS\" to wrangler.toml)".into(),
    })?;
    Ok((cfg, kv, states))
}

/// Everything after the configuration: the worker's endpoints, or the gate's
/// decision, the origin and its signals. Writes to run after the response go to `deferred`.
async fn exchange(
    req: Request,
    read: &Read<'_>,
    gate: &EdgeGate<'_>,
    incoming: &Incoming<'_>,
    log: &mut Log,
    deferred: &mut Vec<StoreOp>,
) -> Result<Response> {
    // Step 2: the worker's own endpoints.
    if let Some(control) = Control::route(gate.cfg, &incoming.head) {
        return own_endpoint(control, &req, gate, incoming, log).await;
    }

    // Steps 3 to 9.
    let decision = gate.admit(incoming).await;
    log.note(&decision);
    deferred.extend(decision.deferred.iter().cloned());
    if let Verdict::Deny { reply, .. } = &decision.verdict {
        return answer(reply.clone(), &incoming.head);
    }

    // Forward: identity set by the worker only, the ticket cookie removed.
    let url = &read.url;
    let token = match assertion_for(gate, &decision, url.origin, incoming, log).await {
        Ok(token) => token,
        Err(answer) => return answer,
    };
    let outgoing = js::edited(&req.headers(), &forward_edits(read, &decision, token))?;
    // A request that carries an identity never reads or fills a shared cache.
    let identified = decision.identity().is_some();
    let upstream = match forward(
        &req,
        read.method,
        url,
        &gate.cfg.origins,
        &outgoing,
        identified,
    )
    .await
    {
        Ok(resp) => resp,
        Err(e) => {
            log.set("error", "origin_unreachable");
            log.error = Some(e.to_string());
            return answer(Reply::error(502, "origin_unreachable"), &incoming.head);
        }
    };

    // After the origin: its session signals.
    after_origin(upstream, gate, incoming, &decision, log, deferred).await
}

/// The header edits of the forward: identity set by the worker only (with
/// the assertion, when one is due), the ticket cookie removed.
fn forward_edits(read: &Read<'_>, decision: &Decision, assertion: Option<String>) -> HeaderEdits {
    let mut edits = headers::plan_request(
        read.names.iter().copied(),
        &decision.forward_cookie,
        decision.identity(),
    );
    if decision.unchecked {
        // A visitor whose session cookie could not be checked (guest paths).
        edits
            .set
            .push((crate::data::STATUS, "unavailable".to_string()));
    }
    if let Some(token) = assertion {
        edits.set.push(("X-Session-Assertion", token));
    }
    edits
}

/// The `X-Session-Assertion` of an allowed request (none for a bypass), or
/// the answer when it cannot be signed: an identity the origin could not
/// verify is never forwarded.
async fn assertion_for(
    gate: &EdgeGate<'_>,
    decision: &Decision,
    audience: &str,
    incoming: &Incoming<'_>,
    log: &mut Log,
) -> std::result::Result<Option<String>, Result<Response>> {
    let (Some(identity), Some(session)) = (decision.identity(), &decision.session) else {
        return Ok(None);
    };
    let signer = signer(gate.cfg)
        .await
        .map_err(|e| config_error(&e, &incoming.head, log))?;
    match signer
        .assertion(identity, session, audience, gate.now)
        .await
    {
        Ok(token) => Ok(Some(token)),
        Err(e) => {
            log.set("error", "assertion_failed");
            log.error = Some(e);
            let reply = Reply::error(500, "assertion_failed");
            Err(answer(reply, &incoming.head))
        }
    }
}

/// The answer of one of the worker's own endpoints (`/.edge-session/*`).
async fn own_endpoint(
    control: Control,
    req: &Request,
    gate: &EdgeGate<'_>,
    incoming: &Incoming<'_>,
    log: &mut Log,
) -> Result<Response> {
    if control == Control::Jwks {
        return match signer(gate.cfg).await {
            Ok(s) => answer(control::jwks_reply(s.public_keys()), &incoming.head),
            Err(e) => config_error(&e, &incoming.head, log),
        };
    }
    let body = match control.body_limit() {
        Some(limit) => js::read_limited(req.body(), limit).await,
        None => None,
    };
    let reply = gate.control(control, incoming, body.as_deref()).await;
    answer(reply, &incoming.head)
}

/// The session signals of the origin's response, as step 11 takes them.
type OriginSignals = std::result::Result<signals::Signals, signals::MalformedSignal>;

/// Reads the origin's response, in one call: the signal headers, then each
/// `Set-Cookie`. Its signals, and the signal headers it sent (which only the
/// worker reads: they are removed from the response passed on).
fn read_answer(upstream: &Response, cfg: &Config, now: u64) -> (OriginSignals, Vec<String>) {
    thread_local! {
        static NAMES: js::Names = js::Names::new(&signals::NAMES);
    }
    let fields = NAMES.with(|names| js::signals(upstream, names));
    let mut items = fields.items();
    let values: Vec<Option<&str>> = items.by_ref().take(signals::NAMES.len()).collect();
    let set_cookies: Vec<String> = items.flatten().map(str::to_string).collect();
    let header = |name: &str| {
        let i = signals::NAMES.iter().position(|n| *n == name)?;
        values.get(i).copied().flatten().map(str::to_string)
    };
    let signals = signals::read(header, &set_cookies, &cfg.session_cookie, now / 1000);
    let sent = signals
        .as_ref()
        .map(headers::signals_sent)
        .unwrap_or_default();
    (signals, sent)
}

/// Acts on the origin's signals and passes its response on, or replaces it.
async fn after_origin(
    upstream: Response,
    gate: &EdgeGate<'_>,
    incoming: &Incoming<'_>,
    decision: &Decision,
    log: &mut Log,
    deferred: &mut Vec<StoreOp>,
) -> Result<Response> {
    let (signals, sent) = read_answer(&upstream, gate.cfg, gate.now);
    let finish = gate
        .finish(incoming, decision, signals, new_session_id)
        .await;
    pass_answer(
        upstream, gate.now, incoming, decision, sent, finish, log, deferred,
    )
}

/// The origin's response as the client gets it, after step 11 (`finish`):
/// its signals removed, the worker's cookies and `Idle-Left` added; or the
/// worker's own answer instead.
#[allow(clippy::too_many_arguments)]
fn pass_answer(
    upstream: Response,
    now: u64,
    incoming: &Incoming<'_>,
    decision: &Decision,
    sent: Vec<String>,
    finish: Finish,
    log: &mut Log,
    deferred: &mut Vec<StoreOp>,
) -> Result<Response> {
    log.event = finish.event;
    if finish.user.is_some() {
        log.user = finish.user;
    }
    if finish.error.is_some() {
        log.error = finish.error;
    }
    crate::store::merge(deferred, finish.deferred);
    if let Some(reply) = finish.replace {
        log.set("error", finish.event.unwrap_or("error"));
        return answer(reply, &incoming.head);
    }
    let mut edits = response_edits(decision, now, sent, finish.event, finish.set_cookies);
    edits.append.push(("Server-Timing", log.timing()));
    let response = js::pass_on(&upstream, &edits)?;
    log.timed = true;
    Ok(response)
}

/// The edits of the origin's response after step 11, but its `Server-Timing`:
/// the signal headers it `sent` removed, the idle time left (none after an
/// `event`: a login, logout or ended session has none to announce), private
/// where due, the worker's cookies appended.
fn response_edits(
    decision: &Decision,
    now: u64,
    sent: Vec<String>,
    event: Option<&str>,
    set_cookies: Vec<String>,
) -> HeaderEdits {
    let idle_left = match event {
        None => decision.idle_left_secs(now),
        Some(_) => None,
    };
    let private = headers::needs_private(decision.identity().is_some(), !set_cookies.is_empty());
    headers::plan_response(sent, idle_left, set_cookies, private)
}

/// A fresh session ID: 256 bits from the platform CSPRNG, base64url.
fn new_session_id() -> Option<String> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// A reply of the worker's own, as a person or a program should get it.
fn answer(reply: Reply, head: &Head<'_>) -> Result<Response> {
    reply_response(reply.for_people(head))
}

fn reply_response(reply: Reply) -> Result<Response> {
    let headers = Headers::new()?;
    for (k, v) in &reply.headers {
        headers.append(k, v)?;
    }
    js::text_response(&reply.body, reply.status, &headers)
}

/// Runs store writes after the response has been sent; failures are logged
/// with their cause, never surfaced.
fn defer(ctx: &Context, kv: &WorkersKv, states: Option<WorkersStates>, ops: Vec<StoreOp>) {
    if ops.is_empty() {
        return;
    }
    let kv = kv.clone();
    ctx.wait_until(async move {
        for op in ops {
            if let Err(e) = op.apply(&kv, states.as_ref()).await {
                let line = obj!({"outcome": "background_write_failed", "key_kind": op.key().get(..2).unwrap_or("state"), "error": e.0});
                platform::warn(&line.to_string());
            }
        }
    });
}

/// The gate as the worker runs it.
type EdgeGate<'a> = Gate<'a, WorkersKv, OriginLookup, WorkersStates>;
