//! edge-session: a session layer for the edge.
//!
//! A Cloudflare Worker in front of an existing site validates every request's
//! session (signed ticket → Workers KV → the origin's lookup endpoint), enforces
//! the idle and absolute timeouts, and forwards only authenticated requests,
//! with the user's identity in `X-Session-*` headers.
//!
//! The decisions live in plain Rust, testable on the host, in layers that
//! depend only on layers below them (`src/shape_tests.rs` fails `cargo test`
//! on any import cycle and on any function over 80 lines). From the bottom up:
//!
//! 1. [`url`]: URLs split by slicing.
//! 2. [`config`]: the settings, typed (durations, keys, path lists).
//! 3. [`cookies`] (the `Cookie` and `Set-Cookie` headers) and [`session`]
//!    (the KV record, its timeouts, hashes and index keys).
//! 4. [`data`] (the session's own small store of values) and [`ticket`] (the
//!    signed cookie).
//! 5. [`signals`]: what the origin's response asks for (login, logout, data).
//! 6. [`store`] (the KV, lookup and session-object traits, with fakes),
//!    [`request`] (a request's head and cookies, read once) and [`identity`]
//!    (who the request is, as the origin is told).
//! 7. [`reply`] (the answers the worker writes), [`assertion`] (the signed
//!    token the origin can verify) and [`headers`] (what is stripped and added
//!    on the way to the origin and back).
//! 8. [`gate`]: the request path top to bottom.
//! 9. [`control`]: the worker's own endpoints, over the gate.
//! 10. [`log`]: the log line.
//!
//! On top, the wasm32-only `edge` module is the thin layer that moves data
//! between these and the Workers runtime. docs/ARCHITECTURE.md describes the
//! request path step by step and where each decision lives.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// A JSON object of `"key": value` pairs, each value taken by
/// `serde_json::Value::from`. Unlike `serde_json::json!`, nothing can fail
/// (it calls no `to_value(...).unwrap()`), so serde_json's error formatting
/// stays out of the worker's wasm.
macro_rules! obj {
    ({ $($key:literal : $value:expr),* $(,)? }) => {{
        #[allow(unused_mut)]
        let mut map = serde_json::Map::new();
        $(map.insert(String::from($key), serde_json::Value::from($value));)*
        serde_json::Value::Object(map)
    }};
}

pub mod assertion;
pub mod config;
pub mod control;
pub mod cookies;
pub mod data;
pub mod gate;
pub mod headers;
pub mod identity;
pub mod log;
pub mod reply;
pub mod request;
pub mod session;
pub mod signals;
pub mod store;
pub mod ticket;
pub mod url;

#[cfg(target_arch = "wasm32")]
mod edge;

#[cfg(test)]
mod proof_kat;
#[cfg(test)]
mod proof_props;
#[cfg(test)]
mod robustness_tests;
#[cfg(test)]
mod shape_tests;
