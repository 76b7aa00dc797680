//! Thin helpers over the platform's own objects (`web_sys`): the worker talks
//! to `Request`, `Response` and `Headers` directly instead of through the
//! `worker` crate's wrappers, which convert every request (its `cf` object
//! included) and every response on the way in and out.

use worker::js_sys::{self, Array, Function, Object, Reflect, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{
    Headers, ReadableStream, ReadableStreamDefaultReader, Request, Response, ResponseInit,
    WorkerGlobalScope,
};
use worker::Result;

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

/// A copy of `headers` (made on the JavaScript side, so a response's
/// immutable headers become editable).
pub fn copy(headers: &Headers) -> Result<Headers> {
    Ok(Headers::new_with_headers(headers)?)
}

/// Each `Set-Cookie` of `headers` on its own (`getSetCookie()`): joined with
/// commas they would be ambiguous, since `Expires` dates hold commas.
pub fn set_cookies(headers: &Headers) -> Vec<String> {
    let Ok(f) = Reflect::get(headers, &"getSetCookie".into()) else {
        return Vec::new();
    };
    let Some(f) = f.dyn_ref::<Function>() else {
        return Vec::new();
    };
    match f.call0(headers) {
        Ok(list) => Array::from(&list)
            .iter()
            .filter_map(|v| v.as_string())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Reads a body of at most `limit` bytes as text (lossy UTF-8); `None` when
/// it is larger or cannot be read. No body counts as empty.
pub async fn read_limited(body: Option<ReadableStream>, limit: usize) -> Option<String> {
    let Some(body) = body else {
        return Some(String::new());
    };
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut buf = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read()).await.ok()?;
        if Reflect::get(&chunk, &"done".into()).ok()?.is_truthy() {
            break;
        }
        let bytes = Uint8Array::new(&Reflect::get(&chunk, &"value".into()).ok()?);
        if buf.len() + bytes.length() as usize > limit {
            let _ = reader.cancel();
            return None;
        }
        buf.extend(bytes.to_vec());
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// A new response over `body` (streamed, never buffered) with this status and
/// headers; a WebSocket the origin accepted is passed on.
pub fn response(
    body: Option<&ReadableStream>,
    status: u16,
    status_text: &str,
    headers: &Headers,
    web_socket: Option<&JsValue>,
) -> Result<Response> {
    let init = ResponseInit::new();
    init.set_status(status);
    init.set_status_text(status_text);
    init.set_headers(headers);
    if let Some(ws) = web_socket {
        Reflect::set(&init, &"webSocket".into(), ws)?;
    }
    Ok(Response::new_with_opt_readable_stream_and_init(
        body, &init,
    )?)
}

/// A response with a text body (or none).
pub fn text_response(body: &str, status: u16, headers: &Headers) -> Result<Response> {
    let init = ResponseInit::new();
    init.set_status(status);
    init.set_headers(headers);
    let body = (!body.is_empty()).then_some(body);
    Ok(Response::new_with_opt_str_and_init(body, &init)?)
}

/// The WebSocket of an origin's `101` response, if it has one.
pub fn web_socket(response: &Response) -> Option<JsValue> {
    Reflect::get(response, &"webSocket".into())
        .ok()
        .filter(|ws| !ws.is_null() && !ws.is_undefined())
}
