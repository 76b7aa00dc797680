// The worker's entry module: what workerd loads. scripts/build.sh bundles it with
// wasm-bindgen's glue (./index.js) into build/index.js, beside build/index_bg.wasm.
//
// It hands each event to the wasm, where every decision is made, and does the I/O of the
// requests the wasm decides synchronously: the reads, the forward (entry-core.mjs,
// src/edge/quick.rs), and a session object's storage calls.
// It exists so that the per-request path is plain function calls. (worker-build's
// generated entry wraps the entry class in a Proxy built per request and each call in a
// second one.)
//
// A Rust panic aborts the wasm instance (panic = "abort"): the panic hook
// (src/edge/platform.rs) logs it and sets `criticalError` on the state `initState()`
// gives. The next event then
// starts from a fresh instance of the same module (wasm-bindgen's
// __wbg_reset_state, which runs the start function again). A session's object holds
// nothing of the wasm's between calls, so it goes on with the new instance.
// The request that panicked is answered 500 {"error":"internal_error"} when the
// panic surfaces in it; one that panics in a later microtask is failed by the
// runtime itself. Either way the isolate goes on serving.
import * as wasm from "./index.js";
import { entry } from "./entry-core.mjs";

const built = entry(wasm);
export default built.handler;
export const SessionState = built.SessionState;
