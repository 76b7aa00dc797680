//! I/O against the Workers runtime: the KV namespace, the origin and its lookup endpoint.

use super::js;
use super::platform::{Delay, Env};
use crate::config::{Config, LookupTarget};
use crate::headers::HeaderEdits;
use crate::store::{Kv, Lookup, LookupAnswer, StoreError, Unreachable};
use crate::url::UrlParts;
use futures_util::future::{select, Either};
use js_sys::{Array, Object, Reflect};
use std::borrow::Borrow;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;
use wasm_bindgen::JsValue;
use web_sys::{
    AbortController, AbortSignal, Headers, Request, RequestInit, RequestRedirect, Response,
};

/// Largest lookup answer read (a user, claims of at most 2 KB, two times).
pub const MAX_LOOKUP_ANSWER: usize = 64 * 1024;

thread_local! {
    /// Round-robin position over `ORIGIN_URL`'s origins, per isolate.
    static NEXT_ORIGIN: Cell<usize> = const { Cell::new(0) };
}

/// The `SESSIONS` KV namespace, called directly (`get`, `put`, `delete`,
/// `list` on the binding).
#[derive(Clone)]
pub struct WorkersKv {
    binding: JsValue,
    /// The synchronous path's read, made by the entry ([`WorkersKv::answering`]).
    read: Option<Rc<EntryRead<String, KvOutcome>>>,
}

/// A read of the synchronous path (`src/edge/quick.rs`), which the entry makes:
/// its answer for one key (a KV key, an object's read, a session ID looked up),
/// given once, and the first key asked that nothing answered.
pub struct EntryRead<K, V> {
    asked: RefCell<Option<K>>,
    answer: RefCell<Option<(K, V)>>,
}

impl<K: Clone, V> EntryRead<K, V> {
    /// A read answered by `answer` (none: not made yet).
    pub fn answering(answer: Option<(K, V)>) -> Rc<EntryRead<K, V>> {
        Rc::new(EntryRead {
            asked: RefCell::new(None),
            answer: RefCell::new(answer),
        })
    }

    /// The answer for `key`, taken; or, when there is none, `key` kept as the
    /// first asked, unless one was kept already (a key is copied only to be kept).
    pub fn take<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + PartialEq + ToOwned<Owned = K>,
    {
        let mut answer = self.answer.borrow_mut();
        if answer.as_ref().is_some_and(|(k, _)| k.borrow() == key) {
            return answer.take().map(|(_, v)| v);
        }
        self.asked
            .borrow_mut()
            .get_or_insert_with(|| key.to_owned());
        None
    }

    /// The first key asked that nothing answered.
    pub fn asked(&self) -> Option<K> {
        self.asked.borrow().clone()
    }
}

/// What a KV read gave: the value (`None`: no such key) or the failure.
pub type KvOutcome = Result<Option<String>, StoreError>;

/// The binding's name.
pub const BINDING: &str = "SESSIONS";

/// Longest a KV read on the critical path may take before it counts as failed.
pub const KV_READ_TIMEOUT: Duration = Duration::from_millis(1000);

impl WorkersKv {
    /// The namespace of `env`; `None` when the binding is missing.
    pub fn of(env: &Env) -> Option<WorkersKv> {
        let bound = Reflect::get(env, &BINDING.into()).ok()?;
        (!bound.is_undefined() && !bound.is_null()).then_some(WorkersKv {
            binding: bound,
            read: None,
        })
    }

    /// The binding itself, for the entry's own read.
    pub fn binding(&self) -> &JsValue {
        &self.binding
    }

    /// This namespace, with the read of `key` answered by `outcome` (once):
    /// the entry has read it already.
    pub fn answering(&self, key: String, outcome: KvOutcome) -> WorkersKv {
        WorkersKv {
            binding: self.binding.clone(),
            read: Some(EntryRead::answering(Some((key, outcome)))),
        }
    }

    /// A namespace that never answers and keeps the first key read.
    pub fn asking() -> WorkersKv {
        WorkersKv {
            binding: JsValue::UNDEFINED,
            read: Some(EntryRead::answering(None)),
        }
    }

    /// The first key read that was not answered.
    pub fn asked(&self) -> Option<String> {
        self.read.as_ref()?.asked()
    }

    async fn call(&self, method: &str, args: &[JsValue]) -> Result<JsValue, StoreError> {
        if self.binding.is_undefined() {
            return std::future::pending().await;
        }
        js::call(&self.binding, method, args)
            .await
            .map_err(StoreError)
    }
}

impl Unreachable for WorkersKv {
    /// A namespace that never answers (no binding behind it).
    fn unreached() -> Self {
        WorkersKv {
            binding: JsValue::UNDEFINED,
            read: None,
        }
    }
}

impl Kv for WorkersKv {
    /// A read on the request's critical path: one slower than
    /// [`KV_READ_TIMEOUT`] counts as a failure, so that a KV brownout falls
    /// back to the stale ticket instead of holding every request.
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        if let Some(outcome) = self.read.as_ref().and_then(|r| r.take(key)) {
            return outcome;
        }
        if self.binding.is_undefined() {
            // Unreached: no timer either.
            return std::future::pending().await;
        }
        let args = [JsValue::from(key)];
        let read = Box::pin(self.call("get", &args));
        let outcome = select(read, Delay::from(KV_READ_TIMEOUT)).await;
        match outcome {
            Either::Left((value, _)) => Ok(value?.as_string()),
            Either::Right(_) => Err(timed_out()),
        }
    }

    async fn put(&self, key: &str, value: &str, ttl_secs: u64) -> Result<(), StoreError> {
        let options = Object::new();
        let ttl = JsValue::from(ttl_secs as f64);
        Reflect::set(&options, &"expirationTtl".into(), &ttl)
            .map_err(|e| StoreError(js::js_error(e)))?;
        self.call("put", &[key.into(), value.into(), options.into()])
            .await
            .map(drop)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.call("delete", &[key.into()]).await.map(drop)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let field =
            |o: &JsValue, name: &str| Reflect::get(o, &name.into()).unwrap_or(JsValue::UNDEFINED);
        let mut keys = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let options = Object::new();
            let _ = Reflect::set(&options, &"prefix".into(), &prefix.into());
            if let Some(c) = cursor.take() {
                let _ = Reflect::set(&options, &"cursor".into(), &c.into());
            }
            let page = self.call("list", &[options.into()]).await?;
            for key in Array::from(&field(&page, "keys")).iter() {
                if let Some(name) = field(&key, "name").as_string() {
                    keys.push(name);
                }
            }
            let complete = field(&page, "list_complete").is_truthy();
            match field(&page, "cursor")
                .as_string()
                .filter(|c| !complete && !c.is_empty())
            {
                Some(c) => cursor = Some(c),
                None => return Ok(keys),
            }
        }
    }
}

/// The failure of a read slower than [`KV_READ_TIMEOUT`].
pub fn timed_out() -> StoreError {
    StoreError(format!(
        "KV read timed out after {} ms",
        KV_READ_TIMEOUT.as_millis() as u64
    ))
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

/// The URLs a forward tries, in order: a GET or HEAD that one origin refuses
/// (network error) is tried once on the next.
pub fn targets(method: &str, origins: &[String], url: &UrlParts<'_>) -> Vec<String> {
    let mut all = rotation(origins, url.origin, url.path_and_query);
    let replayable = method == "GET" || method == "HEAD";
    all.truncate(if replayable { 2 } else { 1 });
    all
}

/// Sends the request to an origin, body streamed, redirects passed through.
/// A GET or HEAD that one origin refuses (network error) is tried once on the next.
pub async fn forward(
    req: &Request,
    method: &str,
    url: &UrlParts<'_>,
    origins: &[String],
    headers: &Headers,
    identified: bool,
) -> super::platform::Result<Response> {
    let replayable = method == "GET" || method == "HEAD";
    let targets = targets(method, origins, url);
    let init = RequestInit::new();
    init.set_method(method);
    init.set_headers(headers);
    init.set_redirect(RequestRedirect::Manual);
    if identified {
        // Past Cloudflare's cache (in route mode the zone's own): the runtime
        // neither looks a response up nor keeps it, and tells the origin so
        // (`Cache-Control: no-cache`, `Pragma: no-cache`).
        Reflect::set(&init, &"cache".into(), &"no-store".into())?;
    }
    if !replayable {
        if let Some(body) = req.body() {
            init.set_body(&body);
        }
    }
    let mut last_error = None;
    for target in &targets {
        let outgoing = Request::new_with_str_and_init(target, &init)?;
        match js::fetch(&outgoing).await {
            Ok(resp) => return Ok(resp),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| "no origin to forward to".into()))
}

/// The origin's session lookup endpoint.
#[derive(Clone)]
pub struct OriginLookup {
    /// The origin of an absolute `LOOKUP_URL`, or the request's own origin.
    base: String,
    /// The lookup's path (and query).
    path: String,
    /// With a path and `ORIGIN_URL`: every origin can answer, as every origin can serve.
    origins: Vec<String>,
    token: String,
    timeout: Duration,
    /// It never asks the origin itself ([`Unreachable`], [`OriginLookup::asking`]).
    never: bool,
    /// The synchronous path's lookup, made by the entry ([`OriginLookup::asking`]).
    read: Option<Rc<EntryRead<String, LookupAnswer>>>,
}

impl Unreachable for OriginLookup {
    fn unreached() -> Self {
        OriginLookup {
            base: String::new(),
            path: String::new(),
            origins: Vec::new(),
            token: String::new(),
            timeout: Duration::ZERO,
            never: true,
            read: None,
        }
    }
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
            never: false,
            read: None,
        }
    }

    /// A lookup that never asks the origin, but answers `answer` (once, for its
    /// session ID), and keeps the first session ID it was asked about otherwise.
    pub fn asking(answer: Option<(String, LookupAnswer)>) -> OriginLookup {
        OriginLookup::unreached().answering(answer)
    }

    /// This lookup, with `answer` given for its session ID (once): the entry
    /// has asked the origin already.
    pub fn answering(&self, answer: Option<(String, LookupAnswer)>) -> OriginLookup {
        OriginLookup {
            read: Some(EntryRead::answering(answer)),
            ..self.clone()
        }
    }

    /// The first session ID asked about that was not answered.
    pub fn asked(&self) -> Option<String> {
        self.read.as_ref()?.asked()
    }

    /// The lookup's request, as the entry sends it (native.js `lookupPlan`): the
    /// URLs to try in turn (the next after a network error), its header edits
    /// (over no headers) and its body, for session ID `session_id`.
    pub fn request(&self, session_id: &str) -> (Vec<String>, HeaderEdits, String) {
        let urls = rotation(&self.origins, &self.base, &self.path);
        let set = vec![
            ("Authorization", format!("Bearer {}", self.token)),
            ("Content-Type", "application/json".to_string()),
            ("Accept", "application/json".to_string()),
        ];
        let edits = HeaderEdits {
            set,
            ..HeaderEdits::default()
        };
        let body = obj!({ "session_id": session_id }).to_string();
        (urls, edits, body)
    }

    /// Its timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn ask(
        &self,
        session_id: &str,
        signal: &AbortSignal,
    ) -> super::platform::Result<(u16, String)> {
        let (targets, edits, body) = self.request(session_id);
        let headers = Headers::new()?;
        for (name, value) in &edits.set {
            headers.set(name, value)?;
        }
        let body = JsValue::from_str(&body);
        let init = RequestInit::new();
        init.set_method("POST");
        init.set_headers(&headers);
        init.set_redirect(RequestRedirect::Manual);
        init.set_body(&body);
        init.set_signal(Some(signal));
        let mut last_error = None;
        // A lookup only reads, so asking the next origin after a network error is safe.
        for target in targets {
            let req = Request::new_with_str_and_init(&target, &init)?;
            match js::fetch(&req).await {
                Ok(resp) => {
                    let status = resp.status();
                    // A lookup answer is small: a huge one is refused, not buffered.
                    let body = js::read_limited(resp.body(), MAX_LOOKUP_ANSWER).await;
                    return Ok((status, body.ok_or_else(|| too_large(status))?));
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| "no lookup target".into()))
    }
}

/// Why a lookup answer of `status` was refused: its body is over [`MAX_LOOKUP_ANSWER`].
pub fn too_large(status: u16) -> String {
    format!("lookup answered {status} with a body over {MAX_LOOKUP_ANSWER} bytes")
}

/// What the gate makes of a lookup that failed (a network error, or `too_large`).
pub fn lookup_failed(e: impl std::fmt::Display) -> LookupAnswer {
    LookupAnswer::Unavailable(format!("lookup failed: {e}"))
}

/// What the gate makes of a lookup that took longer than `timeout`.
pub fn lookup_late(timeout: Duration) -> LookupAnswer {
    LookupAnswer::Unavailable(format!(
        "lookup timed out after {} ms",
        timeout.as_millis() as u64
    ))
}

impl Lookup for OriginLookup {
    async fn lookup(&self, session_id: &str) -> LookupAnswer {
        let read = self.read.as_ref();
        if let Some(answered) = read.and_then(|r| r.take(session_id)) {
            return answered;
        }
        if self.never {
            return std::future::pending().await;
        }
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
            Either::Left((Err(e), _)) => lookup_failed(e),
            Either::Right((_, pending)) => {
                drop(pending);
                controller.abort();
                lookup_late(self.timeout)
            }
        }
    }
}
