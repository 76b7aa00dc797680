//! I/O against the Workers runtime: the KV namespace, the origin and its lookup endpoint.

use super::js;
use crate::config::{Config, LookupTarget};
use crate::request::UrlParts;
use crate::store::{Kv, Lookup, LookupAnswer, StoreError};
use futures_util::future::{select, Either};
use std::cell::{Cell, OnceCell};
use std::rc::Rc;
use std::time::Duration;
use worker::js_sys::Reflect;
use worker::wasm_bindgen::JsValue;
use worker::web_sys::{
    AbortController, AbortSignal, Headers, Request, RequestInit, RequestRedirect, Response,
};
use worker::{Delay, Env, KvStore};

/// Largest lookup answer read (a user, claims of at most 2 KB, two times).
pub const MAX_LOOKUP_ANSWER: usize = 64 * 1024;

thread_local! {
    /// Round-robin position over `ORIGIN_URL`'s origins, per isolate.
    static NEXT_ORIGIN: Cell<usize> = const { Cell::new(0) };
}

/// The `SESSIONS` KV namespace, bound on first use: the fast paths (public,
/// ticket) never touch KV, so they do not pay for looking up its methods.
#[derive(Clone)]
pub struct WorkersKv {
    env: Env,
    store: Rc<OnceCell<KvStore>>,
}

/// The binding's name.
pub const BINDING: &str = "SESSIONS";

fn store_error(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

impl WorkersKv {
    /// The namespace of `env`; `None` when the binding is missing.
    pub fn of(env: &Env) -> Option<WorkersKv> {
        let bound = Reflect::get(env.as_ref(), &BINDING.into()).ok()?;
        (!bound.is_undefined() && !bound.is_null()).then(|| WorkersKv {
            env: env.clone(),
            store: Rc::default(),
        })
    }

    fn store(&self) -> Result<&KvStore, StoreError> {
        if let Some(s) = self.store.get() {
            return Ok(s);
        }
        let s = self.env.kv(BINDING).map_err(store_error)?;
        Ok(self.store.get_or_init(|| s))
    }
}

impl Kv for WorkersKv {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.store()?.get(key).text().await.map_err(store_error)
    }

    async fn put(&self, key: &str, value: &str, ttl_secs: u64) -> Result<(), StoreError> {
        self.store()?
            .put(key, value)
            .map_err(store_error)?
            .expiration_ttl(ttl_secs)
            .execute()
            .await
            .map_err(store_error)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.store()?.delete(key).await.map_err(store_error)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = self.store()?.list().prefix(prefix.to_string());
            if let Some(c) = cursor.take() {
                q = q.cursor(c);
            }
            let page = q.execute().await.map_err(store_error)?;
            keys.extend(page.keys.into_iter().map(|k| k.name));
            match page.cursor.filter(|c| !page.list_complete && !c.is_empty()) {
                Some(c) => cursor = Some(c),
                None => return Ok(keys),
            }
        }
    }
}

/// The URLs to try, in order: `path_and_query` on each origin, the next one
/// in the rotation first. With no `ORIGIN_URL`, the request's own URL (route mode).
fn rotation(origins: &[String], own_origin: &str, path_and_query: &str) -> Vec<String> {
    if origins.is_empty() {
        return vec![format!("{own_origin}{path_and_query}")];
    }
    let start = NEXT_ORIGIN.with(|n| {
        let i = n.get();
        n.set(i.wrapping_add(1));
        i % origins.len()
    });
    origins
        .iter()
        .cycle()
        .skip(start)
        .take(origins.len())
        .map(|origin| format!("{origin}{path_and_query}"))
        .collect()
}

/// Sends the request to an origin, body streamed, redirects passed through.
/// A GET or HEAD that one origin refuses (network error) is tried once on the next.
pub async fn forward(
    req: &Request,
    url: &UrlParts<'_>,
    origins: &[String],
    headers: &Headers,
) -> worker::Result<Response> {
    let method = req.method();
    let replayable = method == "GET" || method == "HEAD";
    let targets = rotation(origins, url.origin, url.path_and_query);
    let attempts = if replayable { targets.len().min(2) } else { 1 };
    let init = RequestInit::new();
    init.set_method(&method);
    init.set_headers(headers);
    init.set_redirect(RequestRedirect::Manual);
    if !replayable {
        if let Some(body) = req.body() {
            init.set_body(&body);
        }
    }
    let mut last_error = None;
    for target in targets.iter().take(attempts) {
        let outgoing = Request::new_with_str_and_init(target, &init)?;
        match js::fetch(&outgoing).await {
            Ok(resp) => return Ok(resp),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| "no origin to forward to".into()))
}

/// The origin's session lookup endpoint.
pub struct OriginLookup {
    /// The origin of an absolute `LOOKUP_URL`, or the request's own origin.
    base: String,
    /// The lookup's path (and query).
    path: String,
    /// With a path and `ORIGIN_URL`: every origin can answer, as every origin can serve.
    origins: Vec<String>,
    token: String,
    timeout: Duration,
}

impl OriginLookup {
    /// A lookup for this request. A path is sent to the origins in rotation
    /// (the next one on a network error), or to the request's own host in route mode.
    pub fn new(target: &LookupTarget, token: &str, cfg: &Config, request_origin: &str) -> Self {
        let (base, path, origins) = match target {
            LookupTarget::Url(u) => match UrlParts::split(u) {
                Some(parts) => (
                    parts.origin.to_string(),
                    parts.path_and_query.to_string(),
                    Vec::new(),
                ),
                None => (String::new(), u.clone(), Vec::new()),
            },
            LookupTarget::Path(p) => (request_origin.to_string(), p.clone(), cfg.origins.clone()),
        };
        OriginLookup {
            base,
            path,
            origins,
            token: token.to_string(),
            timeout: Duration::from_millis(cfg.lookup_timeout),
        }
    }

    async fn ask(&self, session_id: &str, signal: &AbortSignal) -> worker::Result<(u16, String)> {
        let headers = Headers::new()?;
        headers.set("Authorization", &format!("Bearer {}", self.token))?;
        headers.set("Content-Type", "application/json")?;
        headers.set("Accept", "application/json")?;
        let body = JsValue::from_str(&serde_json::json!({ "session_id": session_id }).to_string());
        let init = RequestInit::new();
        init.set_method("POST");
        init.set_headers(&headers);
        init.set_redirect(RequestRedirect::Manual);
        init.set_body(&body);
        init.set_signal(Some(signal));
        let mut last_error = None;
        // A lookup only reads, so asking the next origin after a network error is safe.
        for target in rotation(&self.origins, &self.base, &self.path) {
            let req = Request::new_with_str_and_init(&target, &init)?;
            match js::fetch(&req).await {
                Ok(resp) => {
                    let status = resp.status();
                    // A lookup answer is small: a huge one is refused, not buffered.
                    return match js::read_limited(resp.body(), MAX_LOOKUP_ANSWER).await {
                        Some(text) => Ok((status, text)),
                        None => Err(format!(
                            "lookup answered {status} with a body over {MAX_LOOKUP_ANSWER} bytes"
                        )
                        .into()),
                    };
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| "no lookup target".into()))
    }
}

impl Lookup for OriginLookup {
    async fn lookup(&self, session_id: &str) -> LookupAnswer {
        let controller = match AbortController::new() {
            Ok(c) => c,
            Err(_) => return LookupAnswer::Unavailable("no AbortController".into()),
        };
        let signal = controller.signal();
        let answer = Box::pin(self.ask(session_id, &signal));
        let deadline = Delay::from(self.timeout);
        let outcome = select(answer, deadline).await;
        match outcome {
            Either::Left((Ok((status, body)), _)) => LookupAnswer::from_response(status, &body),
            Either::Left((Err(e), _)) => LookupAnswer::Unavailable(format!("lookup failed: {e}")),
            Either::Right((_, pending)) => {
                drop(pending);
                controller.abort();
                LookupAnswer::Unavailable(format!(
                    "lookup timed out after {} ms",
                    self.timeout.as_millis()
                ))
            }
        }
    }
}
