// The entry's logic over a wasm-bindgen module (`wasm`), kept apart from entry.mjs so
// that tests/entry.test.mjs can drive it with a stand-in module. See entry.mjs.

const FAILED = JSON.stringify({ error: "internal_error" });

/** The worker's handler object and its Durable Object class, over `wasm`. */
export function entry(wasm) {
  const state = wasm.__worker_init_state();

  /** A fresh wasm instance after a panic, before anything else calls into it. */
  function recover() {
    if (state.criticalError) {
      console.error(JSON.stringify({ outcome: "wasm_reinitialized", reason: "a panic aborted the previous instance" }));
      wasm.__wbg_reset_state();
      state.criticalError = false;
    }
  }

  function failed(e) {
    console.error(JSON.stringify({ outcome: "internal_error", error: String(e?.message ?? e) }));
    return new Response(FAILED, {
      status: 500,
      headers: { "Content-Type": "application/json", "Cache-Control": "no-store" },
    });
  }

  const handler = {
    async fetch(request, env, ctx) {
      recover();
      try {
        return await wasm.fetch(request, env, ctx);
      } catch (e) {
        return failed(e);
      }
    },
  };

  /** One session's data: the wasm object, made again after the instance was reset. */
  class SessionState {
    constructor(ctx, env) {
      this.ctx = ctx;
      this.env = env;
      this.inner = null;
      this.instance = -1;
    }

    object() {
      recover();
      if (this.instance !== state.instanceId) {
        this.inner = new wasm.SessionState(this.ctx, this.env);
        this.instance = state.instanceId;
      }
      return this.inner;
    }

    fetch(request) {
      return this.object().fetch(request);
    }

    alarm() {
      return this.object().alarm();
    }
  }

  return { handler, SessionState };
}
