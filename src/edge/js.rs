//! Thin helpers over the platform's own objects (`web_sys`): the worker talks
//! to `Request`, `Response` and `Headers` directly, and nothing converts a
//! request (its `cf` object included) or a response on the way in or out.

use super::platform::Result;
use crate::headers::HeaderEdits;
use js_sys::{self, Array, Function, JsString, Object, Reflect};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, ReadableStream, Request, Response, ResponseInit, WorkerGlobalScope};

// The per-request calls, each one crossing instead of one per header (native.js).
#[wasm_bindgen(module = "/src/edge/native.js")]
extern "C" {
    #[wasm_bindgen(js_name = head)]
    fn js_head(request: &Request) -> String;
    #[wasm_bindgen(js_name = signals)]
    fn js_signals(response: &Response, names: &JsString) -> String;
    #[wasm_bindgen(js_name = edited, catch)]
    fn js_edited(headers: &Headers, edits: &str) -> std::result::Result<Headers, JsValue>;
    #[wasm_bindgen(js_name = passOn, catch)]
    fn js_pass_on(upstream: &Response, edits: &str) -> std::result::Result<Response, JsValue>;
    #[wasm_bindgen(js_name = readPlan)]
    fn js_read_plan(handle: u32, key: &str, kv: &JsValue, timeout_ms: u32) -> JsValue;
    #[wasm_bindgen(js_name = lookupPlan, catch)]
    fn js_lookup_plan(
        handle: u32,
        urls: &str,
        edits: &str,
        body: &str,
        timeout_ms: u32,
        limit: u32,
    ) -> std::result::Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = askPlan)]
    fn js_ask_plan(
        handle: u32,
        states: &JsValue,
        name: &str,
        url: &str,
        timeout_ms: u32,
        limit: u32,
    ) -> JsValue;
    #[wasm_bindgen(js_name = plan, catch)]
    fn js_plan(
        handle: u32,
        request: &Request,
        edits: &str,
        urls: &str,
        no_store: bool,
        plain: &JsValue,
    ) -> std::result::Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = served)]
    fn js_served(status: u16, reply: &str, store: Option<String>, alarm: Option<f64>) -> JsValue;
    #[wasm_bindgen(js_name = limitedText)]
    fn js_limited_text(body: &JsValue, limit: f64) -> js_sys::Promise;
    #[wasm_bindgen(js_name = plain)]
    fn js_plain(edits: &str, timing: &str, started: f64, watched: &JsString) -> JsValue;
}

/// What a session's object does with one request (native.js `served`): the
/// status and body of its answer, the state to store, the alarm to set.
pub fn served(status: u16, reply: &str, store: Option<String>, alarm: Option<u64>) -> JsValue {
    js_served(status, reply, store, alarm.map(|at| at as f64))
}

/// The plan of a forward the entry runs (native.js `plan`): the request's
/// headers with `edits` applied, the URLs to try, whether to bypass the cache,
/// and the response to make of a plain answer ([`plain`]; undefined: none).
pub fn plan(
    handle: u32,
    request: &Request,
    edits: &HeaderEdits,
    urls: &[String],
    no_store: bool,
    plain: &JsValue,
) -> Result<JsValue> {
    let urls = urls.join("\n");
    Ok(js_plan(
        handle,
        request,
        &list(edits)?,
        &urls,
        no_store,
        plain,
    )?)
}

/// The response the entry makes of the origin's answer when it holds none of
/// the headers `watched` names (native.js `plain`): the answer with `edits`
/// applied and `Server-Timing` `timing`, followed by the milliseconds since
/// `started`.
pub fn plain(edits: &HeaderEdits, timing: &str, started: u64, watched: &Names) -> Result<JsValue> {
    Ok(js_plain(&list(edits)?, timing, started as f64, &watched.0))
}

/// The plan of the synchronous path's KV read (native.js `readPlan`): the
/// entry reads `key` from the namespace `kv`, waiting at most `timeout_ms`,
/// for the request `handle` names.
pub fn read_plan(handle: u32, key: &str, kv: &JsValue, timeout_ms: u32) -> JsValue {
    js_read_plan(handle, key, kv, timeout_ms)
}

/// The plan of the synchronous path's lookup (native.js `lookupPlan`): the
/// entry posts `body` with headers of `edits` (over none) to each of `urls` in
/// turn (the next after a network error), waiting at most `timeout_ms` and
/// reading at most `limit` bytes of the answer, for the request `handle` names.
pub fn lookup_plan(
    handle: u32,
    urls: &[String],
    edits: &HeaderEdits,
    body: &str,
    timeout_ms: u32,
    limit: usize,
) -> Result<JsValue> {
    let urls = urls.join("\n");
    let plan = js_lookup_plan(handle, &urls, &list(edits)?, body, timeout_ms, limit as u32)?;
    Ok(plan)
}

/// The plan of the synchronous path's read of a session's object (native.js
/// `askPlan`): the entry fetches `url` from the object `name` names in the
/// namespace `states`, waiting at most `timeout_ms` and reading at most `limit`
/// bytes of its answer, for the request `handle` names.
pub fn ask_plan(
    handle: u32,
    states: &JsValue,
    name: &str,
    url: &str,
    timeout_ms: u32,
    limit: usize,
) -> JsValue {
    js_ask_plan(handle, states, name, url, timeout_ms, limit as u32)
}

/// The separator of native.js's lists, and its mark of an absent header.
const SEP: char = '\n';
const ABSENT: &str = "\0";

/// Values read across in one string (native.js), taken apart by [`Fields::items`].
pub struct Fields {
    text: String,
}

impl Fields {
    /// The items, in order (none at all for an empty string): an absent header is `None`.
    pub fn items(&self) -> impl Iterator<Item = Option<&str>> {
        let body = self.text.strip_suffix(SEP).unwrap_or(&self.text);
        body.split(SEP)
            .filter(|_| !self.text.is_empty())
            .map(|item| (item != ABSENT).then_some(item))
    }
}

/// The request's method and URL, then the name and value of each of its headers
/// (names in lower case, a repeated header's values joined): one call.
pub fn head(request: &Request) -> Fields {
    Fields {
        text: js_head(request),
    }
}

/// Header names to read, as native.js takes them: made once per isolate, so that
/// no call copies them across again.
pub struct Names(JsString);

impl Names {
    pub fn new(names: &[&str]) -> Names {
        Names(JsString::from(names.join("\n")))
    }
}

/// The values of `names` in `response`'s headers (in their order), then each of its
/// `Set-Cookie` on its own (joined, they would be ambiguous: `Expires` holds commas).
pub fn signals(response: &Response, names: &Names) -> Fields {
    Fields {
        text: js_signals(response, &names.0),
    }
}

/// A copy of `headers` (a response's own are immutable) with `edits` applied: one call.
pub fn edited(headers: &Headers, edits: &HeaderEdits) -> Result<Headers> {
    Ok(js_edited(headers, &list(edits)?)?)
}

/// `edits` as the one list native.js's `edited` takes, in the order they apply:
/// `-name` for each removal, then `=name` and the value for each header set,
/// `?name` and the value for each set only where there is none, and `+name` and
/// the value for each appended.
fn list(edits: &HeaderEdits) -> Result<String> {
    let mut list = String::new();
    for name in &edits.remove {
        push_item(&mut list, "-", name)?;
    }
    let ops = [
        ("=", &edits.set),
        ("?", &edits.unless_present),
        ("+", &edits.append),
    ];
    for (op, pairs) in ops {
        for (name, value) in pairs {
            push_item(&mut list, op, name)?;
            push_item(&mut list, "", value)?;
        }
    }
    Ok(list)
}

/// Appends one list item (`mark` then `item`); a value no header may hold is
/// refused here, as the Headers class would refuse it (and it would break the list).
fn push_item(list: &mut String, mark: &str, item: &str) -> Result<()> {
    // Bytes, not chars: a char pattern decodes every UTF-8 sequence (a fifth of the
    // ticket path's wasm time, for values as long as the assertion).
    if item.bytes().any(|b| matches!(b, b'\n' | b'\r' | 0)) {
        return Err("a header name or value holds CR, LF or NUL".into());
    }
    if !list.is_empty() {
        list.push(SEP);
    }
    list.push_str(mark);
    list.push_str(item);
    Ok(())
}

/// The origin's response passed on with `edits` applied to its headers: its
/// body streamed, never buffered, and a WebSocket it accepted passed on. One call.
pub fn pass_on(upstream: &Response, edits: &HeaderEdits) -> Result<Response> {
    Ok(js_pass_on(upstream, &list(edits)?)?)
}

/// The message of a JavaScript error (or its debug form).
pub fn js_error(e: JsValue) -> String {
    e.as_string()
        .or_else(|| {
            Reflect::get(&e, &"message".into())
                .ok()
                .and_then(|m| m.as_string())
        })
        .unwrap_or_else(|| format!("{e:?}"))
}

/// Calls `this[method](...args)` and awaits the promise it returns.
pub async fn call(
    this: &JsValue,
    method: &str,
    args: &[JsValue],
) -> std::result::Result<JsValue, String> {
    let promise: js_sys::Promise = call_sync(this, method, args)?
        .dyn_into()
        .map_err(|_| format!("{method} did not return a promise"))?;
    JsFuture::from(promise).await.map_err(js_error)
}

/// Calls `this[method](...args)`, which returns a value, not a promise.
pub fn call_sync(
    this: &JsValue,
    method: &str,
    args: &[JsValue],
) -> std::result::Result<JsValue, String> {
    let f: Function = Reflect::get(this, &method.into())
        .map_err(js_error)?
        .dyn_into()
        .map_err(|_| format!("{method} is not a function"))?;
    f.apply(this, &args.iter().collect::<Array>())
        .map_err(js_error)
}

/// A plain object of string properties.
pub fn object(pairs: &[(&str, &str)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        let _ = Reflect::set(&o, &(*k).into(), &(*v).into());
    }
    o.into()
}

/// `fetch(request)`.
pub async fn fetch(request: &Request) -> Result<Response> {
    let scope: WorkerGlobalScope = js_sys::global().unchecked_into();
    let value = JsFuture::from(scope.fetch_with_request(request)).await?;
    Ok(value.unchecked_into())
}

/// Reads a body of at most `limit` bytes as text (lossy UTF-8, as the entry
/// reads one: native.js `limitedText`); `None` when it is larger or cannot be
/// read. No body counts as empty.
pub async fn read_limited(body: Option<ReadableStream>, limit: usize) -> Option<String> {
    let text = js_limited_text(&body.map_or(JsValue::NULL, JsValue::from), limit as f64);
    JsFuture::from(text).await.ok()?.as_string()
}

/// A response with a text body (or none).
pub fn text_response(body: &str, status: u16, headers: &Headers) -> Result<Response> {
    let init = ResponseInit::new();
    init.set_status(status);
    init.set_headers(headers);
    let body = (!body.is_empty()).then_some(body);
    Ok(Response::new_with_opt_str_and_init(body, &init)?)
}
