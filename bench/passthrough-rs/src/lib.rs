//! A bare workers-rs passthrough: the same forwarding edge-session does
//! (scheme, host and port replaced by `ORIGIN_URL`; method, headers and body
//! kept; redirects passed through), with no session work at all.

use worker::wasm_bindgen::JsValue;
use worker::{
    event, Context, Env, Fetch, Request, RequestInit, RequestRedirect, Response, Result, Url,
};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let origin = Url::parse(&env.var("ORIGIN_URL")?.to_string())?;
    let mut url = req.url()?;
    // Both are http(s) URLs with a host, so these setters cannot fail.
    let _ = url.set_scheme(origin.scheme());
    let _ = url.set_host(origin.host_str());
    let _ = url.set_port(origin.port());
    let mut init = RequestInit::new();
    init.with_method(req.method())
        .with_headers(req.headers().clone())
        .with_redirect(RequestRedirect::Manual)
        .with_body(req.inner().body().map(JsValue::from));
    Fetch::Request(Request::new_with_init(url.as_str(), &init)?)
        .send()
        .await
}
