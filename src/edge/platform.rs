//! The few pieces of the Workers runtime the worker uses beside the request's
//! own objects (`web_sys`), bound directly: the request's execution context,
//! a timer, the console, the glue's error type, and the panic hook that the
//! entry's recovery reads (`entry-core.mjs`). A Workers SDK crate would bring
//! its router, streams and R2 and container types along (18 KB of wasm
//! gzipped, measured) for these.

use js_sys::Promise;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

#[wasm_bindgen(module = "/src/edge/platform.js")]
extern "C" {
    #[wasm_bindgen(thread_local_v2, js_name = state)]
    static STATE: JsValue;
    #[wasm_bindgen(js_name = panicked)]
    fn js_panicked(message: &str);
    #[wasm_bindgen(js_name = timer)]
    fn js_timer(ms: u32) -> Promise;
    #[wasm_bindgen(js_name = clear)]
    fn js_clear(timer: &Promise);
}

#[wasm_bindgen]
extern "C" {
    /// The platform's `ExecutionContext` of a request.
    #[derive(Clone)]
    pub type Context;
    #[wasm_bindgen(method, js_name = waitUntil)]
    fn wait_until_promise(this: &Context, promise: &Promise);

    #[wasm_bindgen(js_namespace = console, js_name = log)]
    pub fn log(line: &str);
    #[wasm_bindgen(js_namespace = console, js_name = warn)]
    pub fn warn(line: &str);
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    pub fn error(line: &str);
}

impl Context {
    /// Runs `work` after the response, for as long as it takes (`waitUntil`).
    pub fn wait_until(&self, work: impl Future<Output = ()> + 'static) {
        self.wait_until_promise(&promise(async move {
            work.await;
            Ok(JsValue::UNDEFINED)
        }));
    }
}

/// A promise of what `work` gives. Every future the worker hands to the
/// platform goes through here, boxed, so that the executor's glue is made
/// once rather than once for each kind of future (about 1 KB of wasm each).
pub fn promise(
    work: impl Future<Output = std::result::Result<JsValue, JsValue>> + 'static,
) -> Promise {
    let work: Pin<Box<dyn Future<Output = std::result::Result<JsValue, JsValue>>>> = Box::pin(work);
    future_to_promise(work)
}

/// The bindings and vars of the deployment, as the platform passes them.
pub type Env = JsValue;

/// Why the glue failed: a platform call that threw, or a value it would refuse.
#[derive(Debug)]
pub struct Error(pub String);

pub type Result<T> = std::result::Result<T, Error>;

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<JsValue> for Error {
    fn from(e: JsValue) -> Error {
        Error(super::js::js_error(e))
    }
}

impl From<String> for Error {
    fn from(message: String) -> Error {
        Error(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Error {
        Error(message.to_string())
    }
}

impl From<Error> for JsValue {
    fn from(e: Error) -> JsValue {
        js_sys::Error::new(&e.0).into()
    }
}

/// A future ready after its duration (`setTimeout`); its timer is cleared
/// when it is dropped before, as when the read it races answers first.
pub struct Delay {
    timer: Promise,
    fired: JsFuture,
}

impl From<Duration> for Delay {
    fn from(duration: Duration) -> Delay {
        let timer = js_timer(duration.as_millis().min(u32::MAX as u128) as u32);
        Delay {
            fired: JsFuture::from(timer.clone()),
            timer,
        }
    }
}

impl Future for Delay {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        Pin::new(&mut self.fired).poll(cx).map(drop)
    }
}

impl Drop for Delay {
    fn drop(&mut self) {
        js_clear(&self.timer);
    }
}

/// The state the entry reads after each call (`criticalError`: a panic
/// aborted the instance, and the entry starts a fresh one).
#[wasm_bindgen(js_name = initState)]
pub fn init_state() -> JsValue {
    STATE.with(JsValue::clone)
}

/// Run when the instance starts (again after a panic): a panic is logged
/// with its message and marks the instance as aborted, and wasm-bindgen's
/// glue starts the next call from a fresh instance.
#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| js_panicked(&info.to_string())));
    wasm_bindgen::handler::set_on_abort(wasm_bindgen::handler::schedule_reinit);
}
