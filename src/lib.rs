//! edge-session: a session layer for the edge.
//!
//! A Cloudflare Worker in front of an existing site validates every request's
//! session (signed ticket → Workers KV → the origin's lookup endpoint), enforces
//! the idle and absolute timeouts, and forwards only authenticated requests,
//! with the user's identity in `X-Session-*` headers.
//!
//! The decisions live in plain Rust, testable on the host. From the bottom up:
//! [`config`], [`cookies`], [`signals`]; [`ticket`], [`session`] and [`data`]
//! (the session's own small store of values); [`store`];
//! [`request`] (a request's head and cookies, read once) and [`reply`] (the
//! answers the worker writes); then [`gate`], the request path top to bottom,
//! [`control`], the worker's own endpoints, [`assertion`], the signed token the
//! origin can verify, [`log`], the log line, and [`headers`], what is stripped
//! and added on the way to the origin and back. The wasm32-only `edge` module
//! is the thin layer that moves data between these and the Workers runtime.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod assertion;
pub mod config;
pub mod control;
pub mod cookies;
pub mod data;
pub mod gate;
pub mod headers;
pub mod log;
pub mod reply;
pub mod request;
pub mod session;
pub mod signals;
pub mod store;
pub mod ticket;

#[cfg(target_arch = "wasm32")]
mod edge;

#[cfg(test)]
mod proof_kat;
#[cfg(test)]
mod proof_props;
#[cfg(test)]
mod robustness_tests;
