//! Session data in Durable Objects: the decisions of the `SessionState` class
//! (one object per session, named by the session hash; the class itself, in
//! entry-core.mjs, does its storage calls) and the worker's client of it. Both
//! only move bytes: what an object answers is decided by [`crate::data::serve`].
//! The object stores its [`DataState`] as JSON under one key.
//!
//! The wire: `GET /` reads the state; `POST /` with a JSON
//! [`StateRequest`] patches or ends it. Every answer is 200 with a JSON
//! [`StateReply`]; anything else (a thrown error, another status) means the
//! object could not answer, and the caller treats it as unavailable.

use super::io::EntryRead;
use super::js;
use super::platform::{Delay, Env};
use crate::data::{self, DataState, StateReply, StateRequest};
use crate::session::SessionHash;
use crate::store::{SessionStates, StoreError, Unreachable};
use futures_util::future::{select, Either};
use js_sys::Reflect;
use std::rc::Rc;
use std::time::Duration;
use wasm_bindgen::{prelude::wasm_bindgen, JsCast, JsValue};
use web_sys::{RequestInit, Response};

/// Largest request or answer between the worker and an object (the data is
/// at most `MAX_LIMIT` of JSON, escaped once more inside the envelope).
pub const MAX_REPLY: usize = 64 * 1024;

/// The `SESSION_STATE` namespace, called directly (`idFromName`, `get`,
/// `stub.fetch`), so that any object with those methods can stand in for it.
#[derive(Clone)]
pub struct WorkersStates {
    binding: JsValue,
    /// The synchronous path's read, made by the entry ([`WorkersStates::answering`]):
    /// by the object's session and the deadline its read names.
    read: Option<Rc<EntryRead<(SessionHash, u64), StateOutcome>>>,
}

/// What a read of an object gave: its reply or the failure.
type StateOutcome = Result<StateReply, StoreError>;

/// What the entry's read of a session's object gave: for the session of this
/// hash, the read naming this deadline, its reply or the failure.
#[derive(Clone)]
pub struct StateAnswer {
    pub hash: SessionHash,
    pub until: u64,
    pub outcome: StateOutcome,
}

impl Unreachable for WorkersStates {
    /// A namespace that never answers (no binding behind it).
    fn unreached() -> Self {
        WorkersStates {
            binding: JsValue::UNDEFINED,
            read: None,
        }
    }
}

impl WorkersStates {
    /// The namespace of `env`; `None` when the binding is missing.
    pub fn of(env: &Env) -> Option<WorkersStates> {
        let bound = Reflect::get(env, &data::BINDING.into()).ok()?;
        (!bound.is_undefined() && !bound.is_null()).then_some(WorkersStates {
            binding: bound,
            read: None,
        })
    }

    /// The binding itself, for the entry's own read.
    pub fn binding(&self) -> &JsValue {
        &self.binding
    }

    /// A namespace that never answers, but the read `answer` (once), and
    /// keeps the first read it was asked that nothing answered.
    pub fn asking(answer: Option<StateAnswer>) -> WorkersStates {
        WorkersStates::unreached().answering(answer)
    }

    /// This namespace, with the read `answer` answered (once): the entry has
    /// made it already.
    pub fn answering(&self, answer: Option<StateAnswer>) -> WorkersStates {
        let answer = answer.map(|a| ((a.hash, a.until), a.outcome));
        WorkersStates {
            binding: self.binding.clone(),
            read: Some(EntryRead::answering(answer)),
        }
    }

    /// The first read asked that was not answered: the session, the deadline.
    pub fn asked(&self) -> Option<(SessionHash, u64)> {
        self.read.as_ref()?.asked()
    }

    /// The answer given to [`WorkersStates::asking`] for this read, taken; or,
    /// when there is none, this read kept as the first asked.
    fn answered(
        &self,
        hash: &SessionHash,
        request: &StateRequest,
    ) -> Option<Result<StateReply, StoreError>> {
        let read = self.read.as_ref().filter(|_| request.is_read())?;
        read.take(&(hash.clone(), request.until))
    }

    async fn send(&self, hash: &SessionHash, request: &StateRequest) -> Result<StateReply, String> {
        if self.binding.is_undefined() {
            return std::future::pending().await;
        }
        let id = js::call_sync(&self.binding, "idFromName", &[hash.0.as_str().into()])?;
        let stub = js::call_sync(&self.binding, "get", &[id])?;
        let init = RequestInit::new();
        let url = if request.is_read() {
            read_url(request.until)
        } else {
            init.set_method("POST");
            // Serialising plain data to JSON cannot fail.
            let body = serde_json::to_string(request).unwrap_or_default();
            init.set_body(&JsValue::from_str(&body));
            "https://session-state/".to_string()
        };
        let url = JsValue::from_str(&url);
        let answer: Response = js::call(&stub, "fetch", &[url, init.into()])
            .await?
            .dyn_into()
            .map_err(|_| "the session object answered with something else than a Response")?;
        let status = answer.status();
        reply_of(status, js::read_limited(answer.body(), MAX_REPLY).await)
    }
}

/// The URL of a read of an object's state, naming the deadline its data keeps to.
pub fn read_url(until: u64) -> String {
    format!("https://session-state/?until={until}")
}

/// An object's answer, as its status and body (`None`: over [`MAX_REPLY`]).
pub fn reply_of(status: u16, body: Option<String>) -> Result<StateReply, String> {
    let body = body.ok_or("the session object's answer is too large")?;
    if status != 200 {
        return Err(format!("the session object answered {status}"));
    }
    serde_json::from_str(&body)
        .map_err(|e| format!("the session object's answer is not valid ({e})"))
}

/// A read of an object that took longer than [`READ_TIMEOUT`].
pub fn late() -> StoreError {
    StoreError(format!(
        "the session object did not answer within {} ms",
        READ_TIMEOUT.as_millis() as u64
    ))
}

/// Longest a read of session data on the critical path may take before it
/// counts as failed (the data is then forwarded as unavailable), as for a KV read.
/// A change has no such deadline: cut short, it might still be applied after
/// the worker had said it was not.
pub const READ_TIMEOUT: Duration = super::io::KV_READ_TIMEOUT;

impl SessionStates for WorkersStates {
    async fn call(
        &self,
        hash: &SessionHash,
        request: &StateRequest,
    ) -> Result<StateReply, StoreError> {
        if let Some(outcome) = self.answered(hash, request) {
            return outcome;
        }
        if !request.is_read() {
            return self.send(hash, request).await.map_err(StoreError);
        }
        let read = Box::pin(self.send(hash, request));
        match select(read, Delay::from(READ_TIMEOUT)).await {
            Either::Left((answer, _)) => answer.map_err(StoreError),
            Either::Right(_) => Err(late()),
        }
    }
}

/// One request to a session's object, decided: `url` is the request's (a read
/// names its deadline in it), `body` a change's JSON [`StateRequest`]
/// (`undefined` for a read; null when it was over [`MAX_REPLY`]), `stored`
/// what the object's storage holds. Out, `served` (native.js): the status and
/// body of the answer, the state to store and the alarm to set, if any. The
/// object's class (`SessionState` in entry-core.mjs) does the storage calls
/// around this one synchronous call: no wasm future.
#[wasm_bindgen(js_name = serveState)]
pub fn serve_state(url: &str, body: JsValue, stored: JsValue) -> JsValue {
    let request = if body.is_undefined() {
        Ok(StateRequest::read(until_of(url)))
    } else {
        body.as_string()
            .ok_or_else(|| "the request to the session object is too large".to_string())
            .and_then(|body| serde_json::from_str::<StateRequest>(&body).map_err(|e| e.to_string()))
    };
    let request = match request {
        Ok(request) => request,
        Err(e) => return js::served(500, &e, None, None),
    };
    let served = data::serve(parsed(&stored), &request);
    // Serialising plain data to JSON cannot fail.
    let store = served
        .store
        .map(|state| serde_json::to_string(&state).unwrap_or_default());
    let reply = serde_json::to_string(&served.reply).unwrap_or_default();
    js::served(200, &reply, store, served.alarm)
}

/// The object's alarm has come, `stored` being what it holds: the time to set
/// it again to, when a request named a later deadline meanwhile; `undefined`
/// when everything goes ([`data::on_alarm`]).
#[wasm_bindgen(js_name = stateAlarm)]
pub fn state_alarm(stored: JsValue) -> Option<f64> {
    data::on_alarm(parsed(&stored).as_ref(), super::now()).map(|at| at as f64)
}

/// The largest change an object reads ([`MAX_REPLY`]).
#[wasm_bindgen(js_name = stateLimit)]
pub fn state_limit() -> u32 {
    MAX_REPLY as u32
}

/// The state an object's storage holds (JSON); none when it holds none, or
/// what it holds cannot be read.
fn parsed(stored: &JsValue) -> Option<DataState> {
    serde_json::from_str(&stored.as_string()?).ok()
}

/// The deadline a read names (`?until=<unix ms>`); 0 when it names none.
fn until_of(url: &str) -> u64 {
    url.split_once("?until=")
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0)
}
