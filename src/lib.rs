//! edge-session: a session layer for the edge.
//!
//! A Cloudflare Worker in front of an existing site validates every request's
//! session (signed ticket → Workers KV → the origin's lookup endpoint), enforces
//! the idle and absolute timeouts, and forwards only authenticated requests,
//! with the user's identity in `X-Session-*` headers.
//!
//! The decisions live in plain Rust, testable on the host: [`config`],
//! [`cookies`], [`signals`], [`ticket`], [`session`], [`store`] and, reading
//! top to bottom as the request path, [`gate`]. The wasm32-only `edge` module
//! is the thin layer that talks to the Workers runtime.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod config;
pub mod cookies;
pub mod gate;
pub mod session;
pub mod signals;
pub mod store;
pub mod ticket;

#[cfg(target_arch = "wasm32")]
mod edge;

#[cfg(test)]
mod robustness_tests;
