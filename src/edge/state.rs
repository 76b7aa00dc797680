//! Session data in Durable Objects: the `SessionState` class (one object per
//! session, named by the session hash) and the worker's client of it. Both
//! only move bytes: what an object answers is decided by [`crate::data::serve`].
//!
//! The wire: `GET /` reads the state; `POST /` with a JSON
//! [`StateRequest`] patches or ends it. Every answer is 200 with a JSON
//! [`StateReply`]; anything else (a thrown error, another status) means the
//! object could not answer, and the caller treats it as unavailable.

use super::js;
use crate::data::{self, DataState, StateReply, StateRequest};
use crate::session::SessionHash;
use crate::store::{SessionStates, StoreError};
use worker::js_sys::Reflect;
use worker::wasm_bindgen::{self, JsCast, JsValue};
use worker::web_sys::{RequestInit, Response};
use worker::{durable_object, DurableObject, Env, State};

/// Largest answer an object gives (the state is at most `MAX_LIMIT` of JSON, escaped once more).
const MAX_REPLY: usize = 64 * 1024;
/// The one storage key of an object: its [`DataState`] as JSON.
const KEY: &str = "state";

/// The `SESSION_STATE` namespace, called directly (`idFromName`, `get`,
/// `stub.fetch`), so that any object with those methods can stand in for it.
#[derive(Clone)]
pub struct WorkersStates(JsValue);

impl WorkersStates {
    /// The namespace of `env`; `None` when the binding is missing.
    pub fn of(env: &Env) -> Option<WorkersStates> {
        let bound = Reflect::get(env.as_ref(), &data::BINDING.into()).ok()?;
        (!bound.is_undefined() && !bound.is_null()).then_some(WorkersStates(bound))
    }

    async fn send(
        &self,
        hash: &SessionHash,
        request: Option<&StateRequest>,
    ) -> Result<StateReply, String> {
        let id = js::call_sync(&self.0, "idFromName", &[hash.0.as_str().into()])?;
        let stub = js::call_sync(&self.0, "get", &[id])?;
        let init = RequestInit::new();
        if let Some(request) = request {
            init.set_method("POST");
            // Serialising plain data to JSON cannot fail.
            let body = serde_json::to_string(request).unwrap_or_default();
            init.set_body(&JsValue::from_str(&body));
        }
        let url = JsValue::from_str("https://session-state/");
        let answer: Response = js::call(&stub, "fetch", &[url, init.into()])
            .await?
            .dyn_into()
            .map_err(|_| "the session object answered with something else than a Response")?;
        let status = answer.status();
        let body = js::read_limited(answer.body(), MAX_REPLY)
            .await
            .ok_or("the session object's answer is too large")?;
        if status != 200 {
            return Err(format!("the session object answered {status}"));
        }
        serde_json::from_str(&body)
            .map_err(|e| format!("the session object's answer is not valid ({e})"))
    }
}

impl SessionStates for WorkersStates {
    async fn call(
        &self,
        hash: &SessionHash,
        request: Option<&StateRequest>,
    ) -> Result<StateReply, StoreError> {
        self.send(hash, request).await.map_err(StoreError)
    }
}

/// One session's data: applies requests one at a time. Each request's
/// storage calls are its only awaits, so the runtime's input gate delivers no
/// other request in between: a read-modify-write never loses an update.
#[durable_object]
pub struct SessionState {
    state: State,
}

impl SessionState {
    fn storage(&self) -> JsValue {
        self.state
            .as_raw()
            .storage()
            .map(JsValue::from)
            .unwrap_or(JsValue::UNDEFINED)
    }

    async fn load(&self) -> Result<Option<DataState>, String> {
        let value = js::call(&self.storage(), "get", &[KEY.into()]).await?;
        Ok(value
            .as_string()
            .and_then(|text| serde_json::from_str(&text).ok()))
    }

    /// Stores the new state, and the time after which the object forgets it.
    async fn store(&self, state: &DataState, until: u64) -> Result<(), String> {
        let storage = self.storage();
        // Serialising plain data to JSON cannot fail.
        let text = serde_json::to_string(state).unwrap_or_default();
        js::call(&storage, "put", &[KEY.into(), text.into()]).await?;
        let alarm = js::call(&storage, "getAlarm", &[]).await?;
        let later = alarm.as_f64().is_none_or(|at| at < until as f64);
        if later && until > 0 {
            js::call(&storage, "setAlarm", &[JsValue::from(until as f64)]).await?;
        }
        Ok(())
    }

    async fn answer(&self, mut req: worker::Request) -> Result<String, String> {
        let request = match req.method() {
            worker::Method::Get => None,
            _ => {
                let body = req.text().await.map_err(|e| e.to_string())?;
                Some(serde_json::from_str::<StateRequest>(&body).map_err(|e| e.to_string())?)
            }
        };
        let (reply, write) = data::serve(self.load().await?, request);
        if let Some((state, until)) = write {
            self.store(&state, until).await?;
        }
        // Serialising plain data to JSON cannot fail.
        Ok(serde_json::to_string(&reply).unwrap_or_default())
    }
}

impl DurableObject for SessionState {
    fn new(state: State, _env: Env) -> Self {
        SessionState { state }
    }

    async fn fetch(&self, req: worker::Request) -> worker::Result<worker::Response> {
        match self.answer(req).await {
            Ok(body) => worker::Response::ok(body),
            Err(e) => worker::Response::error(e, 500),
        }
    }

    /// No session can be alive any more: everything goes.
    async fn alarm(&self) -> worker::Result<worker::Response> {
        js::call(&self.storage(), "deleteAll", &[]).await?;
        worker::Response::ok("")
    }
}
