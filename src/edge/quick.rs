//! The synchronous request path: a request the gate decides without any store
//! (a fresh ticket, a public path, a denial the request alone decides), or
//! with what reads tell it (the session's KV record, its object's state, the
//! origin's lookup), is handled in synchronous calls into the wasm, with the
//! entry (`entry-core.mjs`) doing the I/O with the platform's own objects: the
//! reads and the forward's `fetch`. No wasm future, no microtask.
//!
//! 1. [`quick`]: the request's head in; out, the worker's own answer, or the
//!    forward's plan (its edited headers and URLs, a handle that names the
//!    request in flight, and the response to a plain answer: [`plain_answer`]),
//!    or the plan of one read (the session's KV record, ...), or `undefined`
//!    (another store must be asked, or the assertion signed: the entry runs
//!    the whole asynchronous path, `fetch`).
//! 2. [`quick_read`], after that read: its outcome in; out, what [`quick`]
//!    gives, or a promise of the response when one more store is needed (the
//!    whole asynchronous path, the read given to it as its answer). The same
//!    for a read of the session's object and the origin's lookup
//!    ([`quick_answer`]), at most one of each kind per request.
//! 3. [`answered_plain`] when the entry made the response to a plain answer as
//!    planned: the request is done. Otherwise [`respond_now`]: the origin's
//!    response in; out, the response the client gets, or `undefined` when a
//!    store must be written or asked (a touch, a login, a change): then
//!    [`respond_later`] does it asynchronously. [`origin_unreachable`] answers
//!    a forward that failed.
//!
//! Every decision is the gate's ([`Gate::admit_answered`], [`Gate::finish_now`]),
//! the same as on the asynchronous path. A run of the gate that is given up
//! for the asynchronous path is undone first ([`Gate::undo`]), so that the
//! path run instead decides as if it had not been.

use super::*;
use crate::request::SessionCookies;
use crate::session::SessionHash;
use crate::store::{LookupAnswer, StoreError, Unreachable};
use io::{KvOutcome, KV_READ_TIMEOUT};
use js_sys::Promise;
use state::StateAnswer;
use std::cell::Cell;
use std::collections::HashMap;
use std::time::Duration;
use wasm_bindgen::{prelude::wasm_bindgen, JsValue};

/// Most requests in flight on the synchronous path at once, per isolate; past
/// it the oldest is forgotten (its response then gets a 500).
const MAX_FLIGHTS: usize = 4096;

/// A request between its forward and the origin's response.
struct Flight {
    /// The request's head, as it was read ([`Read`] borrows from it).
    fields: js::Fields,
    cfg: Rc<Config>,
    decision: Decision,
    log: Log,
    now: u64,
    /// What [`quick`] found reading it (the session ID's hash, the ticket opened).
    known: Known,
    /// Whether `SESSION_STATE` is bound.
    states: bool,
}

/// A request waiting for a read [`quick`] asked the entry to make.
struct Reading {
    /// The request's head, as [`quick`] read it.
    fields: js::Fields,
    /// What [`quick`] found reading it (the session ID's hash, the ticket opened).
    known: Known,
    /// What the entry has read for it before this read.
    answered: Answered,
    /// The read asked for.
    asked: Asked,
}

/// A read the gate waits for that the entry makes.
#[derive(Clone)]
enum Asked {
    /// The value of this KV key (the session's record).
    Kv(String),
    /// The state of this session's object, for a read naming this deadline.
    State(SessionHash, u64),
    /// The origin's lookup of this session ID.
    Lookup(String),
}

/// Where the entry makes a read: from a binding (KV's, `SESSION_STATE`'s), or
/// at the origin's lookup endpoint.
enum Via {
    Binding(JsValue),
    Lookup(OriginLookup),
}

/// The stores the gate runs over on the synchronous path ([`gate_stores`]).
struct GateStores {
    kv: WorkersKv,
    states: Option<WorkersStates>,
    lookup: Option<OriginLookup>,
}

/// What the entry makes the reads from: the bindings, and the configuration
/// and the request's origin, for its lookup (made only when one is asked).
struct Real<'r> {
    kv: &'r WorkersKv,
    states: Option<&'r WorkersStates>,
    cfg: &'r Config,
    origin: String,
}

impl<'r> Real<'r> {
    fn of(
        kv: &'r WorkersKv,
        states: Option<&'r WorkersStates>,
        cfg: &'r Config,
        origin: &str,
    ) -> Self {
        let origin = origin.to_owned();
        Real {
            kv,
            states,
            cfg,
            origin,
        }
    }

    /// The origin's lookup endpoint, as the request asks it.
    fn lookup(&self) -> Option<OriginLookup> {
        let (target, token) = self.cfg.lookup.as_ref()?;
        Some(OriginLookup::new(target, token, self.cfg, &self.origin))
    }
}

/// Values kept for a request between two calls into the wasm, by handle: at
/// most [`MAX_FLIGHTS`], past which the oldest are forgotten.
struct Held<T>(RefCell<HashMap<u32, T>>);

impl<T> Default for Held<T> {
    fn default() -> Self {
        Held(RefCell::default())
    }
}

impl<T> Held<T> {
    /// Keeps `value`; its handle.
    fn hold(&self, value: T) -> u32 {
        let handle = NEXT.with(|n| {
            let h = n.get();
            n.set(h.wrapping_add(1));
            h
        });
        let mut held = self.0.borrow_mut();
        if held.len() >= MAX_FLIGHTS {
            let oldest = handle.wrapping_sub(MAX_FLIGHTS as u32);
            held.retain(|&h, _| h.wrapping_sub(oldest) < MAX_FLIGHTS as u32);
        }
        held.insert(handle, value);
        handle
    }

    fn take(&self, handle: u32) -> Option<T> {
        self.0.borrow_mut().remove(&handle)
    }

    fn put_back(&self, handle: u32, value: T) {
        self.0.borrow_mut().insert(handle, value);
    }
}

thread_local! {
    static FLIGHTS: Held<Flight> = Held::default();
    static READS: Held<Reading> = Held::default();
    static NEXT: Cell<u32> = const { Cell::new(0) };
}

/// Keeps a request in flight; its handle.
fn hold(flight: Flight) -> u32 {
    FLIGHTS.with(|f| f.hold(flight))
}

fn take(handle: u32) -> Option<Flight> {
    FLIGHTS.with(|f| f.take(handle))
}

/// Step 1 to 10 in one synchronous call (see the module's documentation).
#[wasm_bindgen]
pub fn quick(req: Request, env: Env, ctx: Context) -> JsValue {
    match plan(&req, &env, &ctx, js::head(&req), Known::default(), None) {
        Step::Now(value) => value,
        Step::Whole => JsValue::UNDEFINED,
    }
}

/// The plan of the read `reading` asks for, made `via` a binding or the
/// lookup: its handle is the request's until the entry answers. `undefined`
/// (the whole path) when it cannot be made.
fn read_plan(reading: Reading, via: Via) -> JsValue {
    let asked = reading.asked.clone();
    let handle = READS.with(|r| r.hold(reading));
    let read_timeout = KV_READ_TIMEOUT.as_millis() as u32;
    let plan = match (asked, via) {
        (Asked::Kv(key), Via::Binding(kv)) => Ok(js::read_plan(handle, &key, &kv, read_timeout)),
        (Asked::State(hash, until), Via::Binding(states)) => {
            let url = state::read_url(until);
            Ok(js::ask_plan(
                handle,
                &states,
                &hash.0,
                &url,
                read_timeout,
                state::MAX_REPLY,
            ))
        }
        (Asked::Lookup(id), Via::Lookup(lookup)) => {
            let (urls, edits, body) = lookup.request(&id);
            let timeout = lookup.timeout().as_millis() as u32;
            js::lookup_plan(handle, &urls, &edits, &body, timeout, io::MAX_LOOKUP_ANSWER)
        }
        _ => Err("a read made other than as it was asked".into()),
    };
    plan.unwrap_or_else(|_| {
        READS.with(|r| r.take(handle));
        JsValue::UNDEFINED
    })
}

/// The reads the entry made for a request before the gate decides it.
#[derive(Clone)]
pub(super) struct Answered {
    /// When the request started (before the first read).
    pub started: u64,
    /// The session's KV record: the key and what KV gave.
    pub kv: Option<(String, KvOutcome)>,
    /// A read of the session's object.
    pub state: Option<StateAnswer>,
    /// The origin's lookup: the session ID and its answer.
    pub lookup: Option<(String, LookupAnswer)>,
}

impl Answered {
    /// No read yet, for a request that started at `started`.
    fn none(started: u64) -> Answered {
        Answered {
            started,
            kv: None,
            state: None,
            lookup: None,
        }
    }

    /// The step of a request the gate waits on a store for: the read its
    /// `stores` were asked first, made by the entry from what is `real` when
    /// it may ([`Answered::via`]); the whole path otherwise.
    fn next(self, fields: js::Fields, known: Known, stores: &GateStores, real: Real<'_>) -> Step {
        let asked = stores.kv.asked().map(Asked::Kv).or_else(|| {
            if let Some((hash, until)) = stores.states.as_ref().and_then(WorkersStates::asked) {
                return Some(Asked::State(hash, until));
            }
            stores.lookup.as_ref()?.asked().map(Asked::Lookup)
        });
        let Some((via, asked)) = asked.and_then(|a| self.via(a, &real)) else {
            return Step::Whole;
        };
        let answered = self;
        let reading = Reading {
            fields,
            known,
            answered,
            asked,
        };
        Step::Now(read_plan(reading, via))
    }

    /// How the entry makes the read `asked`, when it may: one KV read, one
    /// read of an object and one lookup per request; a second of any kind
    /// (another key, the same again) is the whole path's.
    fn via(&self, asked: Asked, real: &Real<'_>) -> Option<(Via, Asked)> {
        let via = match &asked {
            Asked::Kv(_) => Via::Binding(real.kv.binding().clone()),
            Asked::State(..) => Via::Binding(real.states?.binding().clone()),
            Asked::Lookup(..) => Via::Lookup(real.lookup()?),
        };
        let first = match &asked {
            Asked::Kv(_) => self.kv.is_none(),
            Asked::State(..) => self.state.is_none(),
            Asked::Lookup(_) => self.lookup.is_none(),
        };
        first.then_some((via, asked))
    }
}

/// Step 1 to 10 again, now that the entry has made the KV read [`quick`]
/// asked for (`handle` names the request): its value (a string, or null when
/// KV has no such key), or the read failed (`error`, or it took longer than
/// [`KV_READ_TIMEOUT`]: `timed_out`). When one more store has to be asked, the
/// whole request goes the asynchronous way with this read as its answer: then
/// a `Promise` of the response.
#[wasm_bindgen(js_name = quickRead)]
pub fn quick_read(
    req: Request,
    env: Env,
    ctx: Context,
    handle: u32,
    value: JsValue,
    error: JsValue,
    timed_out: bool,
) -> JsValue {
    let outcome = if timed_out {
        Err(io::timed_out())
    } else if !error.is_undefined() {
        Err(StoreError(js::js_error(error)))
    } else {
        Ok(value.as_string())
    };
    let answer = |reading: &mut Reading, _: &Env| {
        let Asked::Kv(key) = &reading.asked else {
            return false;
        };
        reading.answered.kv = Some((key.clone(), outcome));
        true
    };
    resume(req, env, ctx, handle, answer)
}

/// Step 1 to 10 again, now that the entry has made the read of the session's
/// object or the origin's lookup that [`quick`] planned (`handle` names the
/// request): its status and body (null when over the plan's limit), or it
/// failed (`error`: for a lookup, a network error on every URL), or it took
/// longer than its timeout (`timed_out`). Then as [`quick_read`].
#[wasm_bindgen(js_name = quickAnswer)]
#[allow(clippy::too_many_arguments)]
pub fn quick_answer(
    req: Request,
    env: Env,
    ctx: Context,
    handle: u32,
    status: u16,
    body: JsValue,
    error: JsValue,
    timed_out: bool,
) -> JsValue {
    let failed = (!error.is_undefined()).then(|| js::js_error(error));
    let answer = |reading: &mut Reading, env: &Env| {
        match &reading.asked {
            Asked::State(hash, until) => {
                let outcome = match failed {
                    _ if timed_out => Err(state::late()),
                    Some(e) => Err(StoreError(e)),
                    None => state::reply_of(status, body.as_string()).map_err(StoreError),
                };
                let (hash, until) = (hash.clone(), *until);
                reading.answered.state = Some(StateAnswer {
                    hash,
                    until,
                    outcome,
                });
            }
            Asked::Lookup(id) => {
                let answer = match (failed, body.as_string()) {
                    _ if timed_out => {
                        let timeout = configure(env).map_or(0, |(cfg, ..)| cfg.lookup_timeout);
                        io::lookup_late(Duration::from_millis(timeout))
                    }
                    (Some(e), _) => io::lookup_failed(e),
                    (None, Some(body)) => LookupAnswer::from_response(status, &body),
                    (None, None) => io::lookup_failed(io::too_large(status)),
                };
                reading.answered.lookup = Some((id.clone(), answer));
            }
            Asked::Kv(_) => return false,
        }
        true
    };
    resume(req, env, ctx, handle, answer)
}

/// The request `handle` names, with the entry's answer to the read it asked
/// (given to it by `answer`, with the worker's env: false when it answers
/// another kind of read),
/// decided again; the whole asynchronous path with the reads made so far when
/// it needs more (then a `Promise` of the response).
fn resume(
    req: Request,
    env: Env,
    ctx: Context,
    handle: u32,
    answer: impl FnOnce(&mut Reading, &Env) -> bool,
) -> JsValue {
    let Some(mut reading) = READS.with(|r| r.take(handle)) else {
        // Forgotten (past MAX_FLIGHTS): the whole path, which reads the stores itself.
        return whole_later(req, env, ctx, None);
    };
    if !answer(&mut reading, &env) {
        return whole_later(req, env, ctx, Some(reading.answered));
    }
    let answered = reading.answered;
    match plan(
        &req,
        &env,
        &ctx,
        reading.fields,
        reading.known,
        Some(answered.clone()),
    ) {
        Step::Now(value) => value,
        Step::Whole => whole_later(req, env, ctx, Some(answered)),
    }
}

/// A promise of the whole asynchronous path's response.
fn whole_later(req: Request, env: Env, ctx: Context, answered: Option<Answered>) -> JsValue {
    whole_promise(req, env, ctx, answered).into()
}

/// What the synchronous path makes of a request.
enum Step {
    /// The worker's own answer, or the forward's plan, or the plan of a read
    /// the gate waits for (its KV record, its object's state, the origin's
    /// lookup), which the entry makes.
    Now(JsValue),
    /// It takes the asynchronous path.
    Whole,
}

/// KV, the session objects (when `SESSION_STATE` is bound) and the lookup
/// (when there is one) as the gate sees them on the synchronous path: they
/// never reach the platform or the origin, answer the entry's reads, and keep
/// the first read they cannot answer.
fn gate_stores(answered: Option<&Answered>, states: bool, lookup: bool) -> GateStores {
    let kv = match answered.and_then(|a| a.kv.clone()) {
        Some((key, outcome)) => WorkersKv::unreached().answering(key, outcome),
        None => WorkersKv::asking(),
    };
    let state = answered.and_then(|a| a.state.clone());
    let looked_up = answered.and_then(|a| a.lookup.clone());
    GateStores {
        kv,
        states: states.then(|| WorkersStates::asking(state)),
        lookup: lookup.then(|| OriginLookup::asking(looked_up)),
    }
}

/// Steps 1 to 10 for the request whose head is `fields` (`known`: what reading
/// it found before).
fn plan(
    req: &Request,
    env: &Env,
    ctx: &Context,
    fields: js::Fields,
    known: Known,
    answered: Option<Answered>,
) -> Step {
    // The loop answer, the worker's endpoints and a configuration error: the whole path.
    let ours =
        |r: &Read<'_>| r.get(headers::HOP).is_none() && !r.url.path.starts_with(control::PREFIX);
    let Some(read) = Read::of(&fields).filter(ours) else {
        return Step::Whole;
    };
    let Ok((cfg, kv, states)) = configure(env) else {
        return Step::Whole;
    };
    let mut log = Log::start(read.url.path);
    log.mode = cfg.log_requests;
    let now = log.started;
    // The request's log starts when the request did, before the entry's reads.
    log.started = answered.as_ref().map_or(now, |a| a.started);
    let memory = MEMORY.with(Rc::clone);
    let first = answered.is_none();
    let stores = gate_stores(answered.as_ref(), states.is_some(), cfg.lookup.is_some());
    let gate = Gate::new(&cfg, &stores.kv, stores.lookup.as_ref(), &memory, now)
        .with_states(stores.states.as_ref());
    let incoming = incoming(&cfg, &read, known);
    let Some((decision, undo)) = gate.admit_answered(&incoming) else {
        let known = incoming.cookies.known();
        let real = Real::of(&kv, states.as_ref(), &cfg, read.url.origin);
        return answered
            .unwrap_or(Answered::none(now))
            .next(fields, known, &stores, real);
    };
    // Given up from here on, the request goes the whole way as if this had not run.
    let whole = |undo| {
        gate.undo(undo);
        Step::Whole
    };
    log.note(&decision);
    if let Verdict::Deny { reply, .. } = &decision.verdict {
        log.tally(&gate, &decision.deferred);
        let Ok(response) = answer(reply.clone(), &incoming.head).and_then(|r| respond(r, &log))
        else {
            return whole(undo);
        };
        defer(ctx, &kv, states, decision.deferred);
        return Step::Now(response.into());
    }
    let Some(token) = cached_assertion(&decision, read.url.origin, now) else {
        return whole(undo);
    };
    let edits = forward_edits(&read, &decision, token);
    let urls = io::targets(read.method, &cfg.origins, &read.url);
    let identified = decision.identity().is_some();
    // The KV read and any trouble with it (its writes are counted when scheduled).
    log.tally(&gate, &[]);
    let plain = plain_answer(&gate, &incoming, &decision, &log);
    let handle = hold(Flight {
        known: kept(&incoming.cookies, first),
        fields,
        cfg: Rc::clone(&cfg),
        decision,
        log,
        now,
        states: states.is_some(),
    });
    match js::plan(handle, req, &edits, &urls, identified, &plain) {
        Ok(plan) => Step::Now(plan),
        Err(_) => {
            // A header the platform refuses: the whole path answers it as it would.
            take(handle);
            whole(undo)
        }
    }
}

/// The assertion of the decision's identity for `audience`, when this isolate
/// has it signed already: `Some(None)` when none is due (no identity), `None`
/// when it has yet to be signed (asynchronously).
fn cached_assertion(decision: &Decision, audience: &str, now: u64) -> Option<Option<String>> {
    match decision.identity().zip(decision.session.as_ref()) {
        None => Some(None),
        Some((id, session)) => assertion::cached(id, session, audience, now).map(Some),
    }
}

/// The response the entry makes itself when the origin answers plainly, with
/// none of the session signals and no `Set-Cookie` (native.js `Plain`): step 11
/// decided now, as [`respond_now`] would decide it then, when it has nothing
/// more to do (no write, no event, no log line). `undefined` otherwise.
fn plain_answer(
    gate: &EdgeGate<'_>,
    incoming: &Incoming<'_>,
    decision: &Decision,
    log: &Log,
) -> JsValue {
    thread_local! {
        static WATCHED: js::Names = js::Names::new(&[&signals::NAMES[..], &["set-cookie"]].concat());
    }
    let quiet = |f: &Finish| {
        f.replace.is_none()
            && f.deferred.is_empty()
            && f.event.is_none()
            && f.error.is_none()
            && f.user.is_none()
    };
    let none = signals::read(|_| None, &[], &gate.cfg.session_cookie, gate.now / 1000);
    let finish = (decision.deferred.is_empty() && !log.worth_writing(log.mode))
        .then(|| gate.finish_now(incoming, decision, none, new_session_id))
        .flatten()
        .filter(quiet);
    let Some(finish) = finish else {
        return JsValue::UNDEFINED;
    };
    let edits = response_edits(decision, gate.now, Vec::new(), None, finish.set_cookies);
    let timing = headers::server_timing_until_duration(&log.detail);
    WATCHED
        .with(|watched| js::plain(&edits, &timing, log.started, watched))
        .unwrap_or(JsValue::UNDEFINED)
}

/// The origin answered plainly, and the entry made the response [`plan`]
/// planned for it: the request in flight is done.
#[wasm_bindgen(js_name = answeredPlain)]
pub fn answered_plain(handle: u32) {
    take(handle);
}

/// What reading a request found, for its next read (`respondNow`). A request
/// decided without a store (`first`) leaves its genuine ticket in the memo:
/// the next one with the same cookies will be decided so too.
fn kept(cookies: &SessionCookies<'_>, first: bool) -> Known {
    if first {
        TICKETS.with(|memo| memo.remember(cookies));
    }
    cookies.known()
}

/// Step 11 in one synchronous call, when it needs no store: the response the
/// client gets; `undefined` otherwise (then [`respond_later`]).
#[wasm_bindgen(js_name = respondNow)]
pub fn respond_now(handle: u32, upstream: Response) -> Option<Response> {
    let Some(mut flight) = take(handle) else {
        return internal_error("a request in flight was forgotten");
    };
    let cfg = Rc::clone(&flight.cfg);
    let memory = MEMORY.with(Rc::clone);
    // Stores of the right kinds, present where the real ones are: finish_now never asks them.
    let (kv, lookup, states) = (
        WorkersKv::unreached(),
        cfg.lookup.as_ref().map(|_| OriginLookup::unreached()),
        flight.states.then(WorkersStates::unreached),
    );
    let gate =
        Gate::new(&cfg, &kv, lookup.as_ref(), &memory, flight.now).with_states(states.as_ref());
    let (signals, sent) = read_answer(&upstream, &cfg, flight.now);
    let read = Read::of(&flight.fields)?;
    let incoming = incoming(&cfg, &read, flight.known.clone());
    // Writes the decision scheduled (a touch after a KV read) run after the
    // response, before those of step 11, as on the asynchronous path: later.
    let finish = (flight.decision.deferred.is_empty())
        .then(|| gate.finish_now(&incoming, &flight.decision, signals, new_session_id))
        .flatten()
        .filter(|f| f.deferred.is_empty());
    let Some(finish) = finish else {
        FLIGHTS.with(|f| f.put_back(handle, flight));
        return None;
    };
    let log = &mut flight.log;
    let result = pass_answer(
        upstream,
        flight.now,
        &incoming,
        &flight.decision,
        sent,
        finish,
        log,
        &mut Vec::new(),
    );
    log.tally(&gate, &[]);
    finished(result, log)
}

/// Step 11 with its stores (a login, a change to the session's data), and
/// the writes it schedules after the response.
#[wasm_bindgen(js_name = respondLater)]
pub fn respond_later(handle: u32, upstream: Response, env: Env, ctx: Context) -> Promise {
    platform::promise(async move {
        let response = later(handle, upstream, env, ctx).await;
        Ok(response.map_or(JsValue::UNDEFINED, JsValue::from))
    })
}

async fn later(handle: u32, upstream: Response, env: Env, ctx: Context) -> Option<Response> {
    let Some(mut flight) = take(handle) else {
        return internal_error("a request in flight was forgotten");
    };
    let Ok((_, kv, states)) = configure(&env) else {
        return internal_error("the configuration changed under a request in flight");
    };
    let read = Read::of(&flight.fields)?;
    let cfg = Rc::clone(&flight.cfg);
    let lookup = cfg
        .lookup
        .as_ref()
        .map(|(target, token)| OriginLookup::new(target, token, &cfg, read.url.origin));
    let memory = MEMORY.with(Rc::clone);
    let gate =
        Gate::new(&cfg, &kv, lookup.as_ref(), &memory, flight.now).with_states(states.as_ref());
    let incoming = incoming(&cfg, &read, flight.known.clone());
    let mut deferred = flight.decision.deferred.clone();
    let log = &mut flight.log;
    let result = after_origin(
        upstream,
        &gate,
        &incoming,
        &flight.decision,
        log,
        &mut deferred,
    )
    .await;
    log.tally(&gate, &deferred);
    defer(&ctx, &kv, states, deferred);
    finished(result, log)
}

/// The answer to a forward that failed: 502 `origin_unreachable`. The writes
/// the decision scheduled (a touch) are made all the same, as on the
/// asynchronous path.
#[wasm_bindgen(js_name = originUnreachable)]
pub fn origin_unreachable(handle: u32, error: String, env: Env, ctx: Context) -> Option<Response> {
    let Some(mut flight) = take(handle) else {
        return internal_error("a request in flight was forgotten");
    };
    let deferred = std::mem::take(&mut flight.decision.deferred);
    if let (false, Ok((_, kv, states))) = (deferred.is_empty(), configure(&env)) {
        flight.log.counts.scheduled(&deferred);
        defer(&ctx, &kv, states, deferred);
    }
    let read = Read::of(&flight.fields)?;
    let log = &mut flight.log;
    log.set("error", "origin_unreachable");
    log.error = Some(error);
    let reply = Reply::error(502, "origin_unreachable");
    finished(answer(reply, &read.head()), log)
}

/// The response with `Server-Timing` and the log line, or the internal error.
fn finished(result: Result<Response>, log: &Log) -> Option<Response> {
    let response = result.or_else(|e| super::internal_error(&e.to_string()));
    respond(response.ok()?, log).ok()
}

/// The answer when the path itself failed (a handle this isolate no longer
/// holds, past [`MAX_FLIGHTS`]): 500, and why in the log.
fn internal_error(why: &str) -> Option<Response> {
    super::internal_error(why).ok()
}
