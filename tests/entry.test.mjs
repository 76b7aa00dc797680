// The worker's entry (src/edge/entry-core.mjs) over a stand-in for the wasm module:
// how it hands events on, and how it recovers after a panic aborted the instance.
import { test } from "node:test";
import assert from "node:assert/strict";
import { entry } from "../src/edge/entry-core.mjs";

/** A stand-in for wasm-bindgen's module: records calls; `panicNext` makes the next call "panic". */
function fakeWasm() {
  const state = { criticalError: false, instanceId: 1 };
  const calls = [];
  let panicNext = false;
  const wasm = {
    calls,
    state,
    panic() {
      panicNext = true;
    },
    __worker_init_state: () => state,
    __wbg_reset_state() {
      calls.push("reset");
      state.instanceId += 1; // the start function runs again in the new instance
    },
    async fetch(request, env, ctx) {
      calls.push(["fetch", request.url, env.NAME, ctx.id]);
      if (panicNext) {
        panicNext = false;
        state.criticalError = true; // what the panic hook does
        throw new WebAssembly.RuntimeError("unreachable");
      }
      return new Response("from wasm", { status: 200 });
    },
    SessionState: class {
      constructor(ctx, env) {
        this.made = [ctx.id, env.NAME, state.instanceId];
        calls.push(["new SessionState", ...this.made]);
      }
      async fetch(request) {
        return new Response(`object of instance ${this.made[2]}: ${request.method}`);
      }
      async alarm() {
        calls.push(["alarm", this.made[2]]);
      }
    },
  };
  return wasm;
}

const req = () => new Request("https://site.example/a?b=1");

test("fetch hands the request, env and ctx to the wasm and returns its response as it is", async () => {
  const wasm = fakeWasm();
  const { handler } = entry(wasm);
  const res = await handler.fetch(req(), { NAME: "env" }, { id: "ctx" });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "from wasm");
  assert.deepEqual(wasm.calls, [["fetch", "https://site.example/a?b=1", "env", "ctx"]]);
});

test("a panic is answered 500 internal_error as JSON, and the next request runs in a fresh instance", async () => {
  const wasm = fakeWasm();
  const { handler } = entry(wasm);
  const errors = [];
  const original = console.error;
  console.error = (line) => errors.push(JSON.parse(line));
  try {
    wasm.panic();
    const failed = await handler.fetch(req(), { NAME: "env" }, { id: "ctx" });
    assert.equal(failed.status, 500);
    assert.equal(failed.headers.get("content-type"), "application/json");
    assert.equal(failed.headers.get("cache-control"), "no-store");
    assert.deepEqual(await failed.json(), { error: "internal_error" });
    assert.equal(wasm.calls.includes("reset"), false, "no reset before the next event");

    const next = await handler.fetch(req(), { NAME: "env" }, { id: "ctx" });
    assert.equal(next.status, 200);
    assert.deepEqual(wasm.calls.slice(1), ["reset", ["fetch", "https://site.example/a?b=1", "env", "ctx"]]);
    assert.equal(wasm.state.criticalError, false);
    const third = await handler.fetch(req(), { NAME: "env" }, { id: "ctx" });
    assert.equal(third.status, 200);
    assert.equal(wasm.calls.filter((c) => c === "reset").length, 1, "reset once per panic, not per request");
  } finally {
    console.error = original;
  }
  assert.deepEqual(errors.map((e) => e.outcome), ["internal_error", "wasm_reinitialized"]);
  assert.match(errors[0].error, /unreachable/);
});

test("a session object is made lazily, once, and made again in the new instance after a panic", async () => {
  const wasm = fakeWasm();
  const { handler, SessionState } = entry(wasm);
  const object = new SessionState({ id: "state" }, { NAME: "env" });
  assert.deepEqual(wasm.calls, [], "nothing is made before the first call");
  assert.equal(await (await object.fetch(new Request("https://session-state/"))).text(), "object of instance 1: GET");
  assert.equal(await (await object.fetch(new Request("https://session-state/", { method: "POST" }))).text(), "object of instance 1: POST");
  assert.deepEqual(wasm.calls, [["new SessionState", "state", "env", 1]]);

  const original = console.error;
  console.error = () => {};
  try {
    wasm.panic();
    await handler.fetch(req(), { NAME: "env" }, { id: "ctx" });
    await object.alarm(); // the first call after the panic: reset, then a new object
  } finally {
    console.error = original;
  }
  assert.deepEqual(wasm.calls.slice(1), [
    ["fetch", "https://site.example/a?b=1", "env", "ctx"],
    "reset",
    ["new SessionState", "state", "env", 2],
    ["alarm", 2],
  ]);
});
