//! The synchronous request path: a request the gate decides without any store
//! (a fresh ticket, a public path, a denial the request alone decides) is
//! handled in two synchronous calls into the wasm, with the entry
//! (`entry-core.mjs`) doing the one I/O, the forward, with the platform's own
//! `fetch`: no wasm future, no microtask.
//!
//! 1. [`quick`]: the request's head in; out, the worker's own answer, or the
//!    forward's plan (its edited headers and URLs, and a handle that names the
//!    request in flight), or `undefined` (a store must be asked, or the
//!    assertion signed: the entry runs the whole asynchronous path, `fetch`).
//! 2. [`respond_now`]: the origin's response in; out, the response the client
//!    gets, or `undefined` when step 11 needs a store (a login, a change):
//!    then [`respond_later`] does it asynchronously. [`origin_unreachable`]
//!    answers a forward that failed.
//!
//! Every decision is the gate's ([`Gate::admit_now`], [`Gate::finish_now`]),
//! the same as on the asynchronous path.

use super::*;
use crate::store::Unreachable;
use std::cell::Cell;
use std::collections::HashMap;
use worker::js_sys::Promise;
use worker::wasm_bindgen::{self, prelude::wasm_bindgen, JsValue};
use worker::wasm_bindgen_futures::future_to_promise;

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
    /// The hash of its session ID, as [`quick`] read it.
    hash: Option<SessionHash>,
    /// Whether `SESSION_STATE` is bound.
    states: bool,
}

thread_local! {
    static FLIGHTS: RefCell<HashMap<u32, Flight>> = RefCell::default();
    static NEXT: Cell<u32> = const { Cell::new(0) };
}

/// Keeps a request in flight; its handle.
fn hold(flight: Flight) -> u32 {
    let handle = NEXT.with(|n| {
        let h = n.get();
        n.set(h.wrapping_add(1));
        h
    });
    FLIGHTS.with(|f| {
        let mut flights = f.borrow_mut();
        if flights.len() >= MAX_FLIGHTS {
            let oldest = handle.wrapping_sub(MAX_FLIGHTS as u32);
            flights.retain(|&h, _| h.wrapping_sub(oldest) < MAX_FLIGHTS as u32);
        }
        flights.insert(handle, flight);
    });
    handle
}

fn take(handle: u32) -> Option<Flight> {
    FLIGHTS.with(|f| f.borrow_mut().remove(&handle))
}

/// Step 1 to 10 in one synchronous call (see the module's documentation).
#[wasm_bindgen]
pub fn quick(req: Request, env: Env) -> JsValue {
    plan(&req, &env).unwrap_or(JsValue::UNDEFINED)
}

fn plan(req: &Request, env: &Env) -> Option<JsValue> {
    let fields = js::head(req);
    let read = Read::of(&fields)?;
    // The loop answer, the worker's endpoints and a configuration error: the whole path.
    if read.get(headers::HOP).is_some() || read.url.path.starts_with(control::PREFIX) {
        return None;
    }
    let (cfg, kv, states) = configure(env).ok()?;
    let mut log = Log::start(read.url.path);
    log.mode = cfg.log_requests;
    let now = log.started;
    let memory = MEMORY.with(Rc::clone);
    let lookup = cfg.lookup.as_ref().map(|_| OriginLookup::unreached());
    let gate = Gate::new(&cfg, &kv, lookup.as_ref(), &memory, now).with_states(states.as_ref());
    let incoming = incoming(&cfg, &read, None);
    let decision = gate.admit_now(&incoming)?;
    if !decision.deferred.is_empty() {
        return None;
    }
    log.note(&decision);
    if let Verdict::Deny { reply, .. } = &decision.verdict {
        log.tally(&gate, &[]);
        let response = answer(reply.clone(), &incoming.head).ok()?;
        return respond(response, &log).ok().map(JsValue::from);
    }
    let token = match (decision.identity(), &decision.session) {
        (Some(identity), Some(session)) => {
            Some(assertion::cached(identity, session, read.url.origin, now)?)
        }
        _ => None,
    };
    let edits = forward_edits(&read, &decision, token);
    let urls = io::targets(read.method, &cfg.origins, &read.url);
    let identified = decision.identity().is_some();
    let hash = incoming.cookies.hash.clone();
    drop(incoming);
    let handle = hold(Flight {
        fields,
        cfg,
        decision,
        log,
        now,
        hash,
        states: states.is_some(),
    });
    match js::plan(handle, req, &edits, &urls, identified) {
        Ok(plan) => Some(plan),
        Err(_) => {
            // A header the platform refuses: the whole path answers it as it would.
            take(handle);
            None
        }
    }
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
    let (signals, answered) = read_answer(&upstream, &cfg, flight.now);
    let read = Read::of(&flight.fields)?;
    let incoming = incoming(&cfg, &read, flight.hash.clone());
    let finish = gate
        .finish_now(&incoming, &flight.decision, signals, new_session_id)
        .filter(|f| f.deferred.is_empty());
    let Some(finish) = finish else {
        FLIGHTS.with(|f| f.borrow_mut().insert(handle, flight));
        return None;
    };
    let log = &mut flight.log;
    let result = pass_answer(
        upstream,
        flight.now,
        &incoming,
        &flight.decision,
        answered,
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
pub fn respond_later(
    handle: u32,
    upstream: Response,
    env: Env,
    ctx: worker::worker_sys::Context,
) -> Promise {
    future_to_promise(async move {
        let response = later(handle, upstream, env, ctx).await;
        Ok(response.map_or(JsValue::UNDEFINED, JsValue::from))
    })
}

async fn later(
    handle: u32,
    upstream: Response,
    env: Env,
    ctx: worker::worker_sys::Context,
) -> Option<Response> {
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
    let incoming = incoming(&cfg, &read, flight.hash.clone());
    let mut deferred = Vec::new();
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
    defer(&Context::new(ctx), &kv, states, deferred);
    finished(result, log)
}

/// The answer to a forward that failed: 502 `origin_unreachable`.
#[wasm_bindgen(js_name = originUnreachable)]
pub fn origin_unreachable(handle: u32, error: String) -> Option<Response> {
    let Some(mut flight) = take(handle) else {
        return internal_error("a request in flight was forgotten");
    };
    let read = Read::of(&flight.fields)?;
    let log = &mut flight.log;
    log.set("error", "origin_unreachable");
    log.error = Some(error);
    let reply = Reply::json(502, json!({"error": "origin_unreachable"}));
    finished(answer(reply, &read.head()), log)
}

/// The response with `Server-Timing` and the log line, or the internal error.
fn finished(result: Result<Response>, log: &Log) -> Option<Response> {
    let response = result.or_else(|e| {
        worker::console_error!(
            "{}",
            json!({"outcome": "internal_error", "error": e.to_string()})
        );
        reply_response(Reply::json(500, json!({"error": "internal_error"})))
    });
    respond(response.ok()?, log).ok()
}

/// The answer when the path itself failed (a handle this isolate no longer
/// holds, past [`MAX_FLIGHTS`]): 500, and why in the log.
fn internal_error(why: &str) -> Option<Response> {
    worker::console_error!("{}", json!({"outcome": "internal_error", "error": why}));
    reply_response(Reply::json(500, json!({"error": "internal_error"}))).ok()
}
