// The synchronous request path (src/edge/quick.rs), counted on the built worker: a request
// on the ticket path is two calls into the wasm (`quick`, then `respondNow` with the origin's
// response) and the platform's fetch, with no wasm future (no call of the asynchronous
// `fetch` or `respondLater`, no closure of wasm-bindgen-futures run from a microtask). The
// worker runs in Node (tests/node-worker.mjs) over a stand-in origin, so every call into the
// wasm can be counted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { newAssertionKey } from "./harness.mjs";
import { loadWorker, memoryKv } from "./node-worker.mjs";

// What the glue calls into the wasm for itself: passing strings and JS values across.
const GLUE = new Set([
  "__wbindgen_malloc",
  "__wbindgen_realloc",
  "__wbindgen_free",
  "__wbindgen_exn_store",
  "__externref_table_alloc",
  "__externref_table_dealloc",
  "__externref_drop_slice",
]);

// The origin: signs alice in on POST /login, answers a small JSON body otherwise, and keeps
// the headers of the last forward.
let forwarded;
globalThis.fetch = async (input, init = {}) => {
  forwarded = new Headers(init.headers ?? input.headers);
  const url = new URL(typeof input === "string" ? input : input.url);
  if (url.pathname === "/login") return new Response(null, { status: 303, headers: { location: "/", "x-edge-session-login": "alice" } });
  return Response.json({ ok: true, path: url.pathname });
};

const { handler, calls } = await loadWorker(undefined, { count: true });
const env = {
  SESSION_KEYS: `k1:${randomBytes(32).toString("base64")}`,
  ASSERTION_KEYS: newAssertionKey().setting,
  ORIGIN_URL: "http://127.0.0.1:9",
  PUBLIC_PATHS: "/login,/public/*",
  TICKET_TTL: "1h",
  TOUCH_INTERVAL: "1h",
  SESSIONS: memoryKv(),
};
const pending = [];
const ctx = { waitUntil: (p) => pending.push(p), passThroughOnException() {} };

/** The response to `path` and the calls into the wasm it took, by name. */
async function send(path, init = {}) {
  calls.clear();
  forwarded = undefined;
  const response = await handler.fetch(new Request(`https://shop.example${path}`, init), env, ctx);
  await response.arrayBuffer();
  await Promise.all(pending.splice(0));
  return { response, calls: Object.fromEntries(calls) };
}

/** Only `quick` and `respondNow` (once each) and the glue's own calls. */
function assertSynchronous(counted, what) {
  const own = Object.keys(counted).filter((name) => !GLUE.has(name));
  assert.deepEqual(own.sort(), ["quick", "respondNow"], `${what}: calls into the wasm ${JSON.stringify(counted)}`);
  assert.equal(counted.quick, 1, what);
  assert.equal(counted.respondNow, 1, what);
}

const login = await send("/login", { method: "POST" });
const cookie = login.response.headers
  .getSetCookie()
  .map((c) => c.split(";")[0])
  .join("; ");

test("signing in takes the asynchronous path (step 11 writes the session to KV)", () => {
  assert.equal(login.response.status, 303);
  assert.ok(cookie.includes(";"), `session and ticket cookies: ${cookie}`);
  assert.ok(login.calls.quick === 1 && login.calls.respondNow === 1 && login.calls.respondLater === 1, JSON.stringify(login.calls));
  assert.ok(env.SESSIONS.map.size > 0, "the session is in KV");
});

test("a request on the ticket path is quick, the forward and respondNow: no wasm future", async (t) => {
  // The first one signs the assertion header (asynchronously, cached for the isolate).
  const first = await send("/account", { headers: { cookie } });
  assert.equal(first.response.status, 200);
  for (let i = 0; i < 3; i++) {
    const { response, calls: counted } = await send("/account", { headers: { cookie, accept: "*/*" } });
    assert.equal(response.status, 200);
    assert.equal(forwarded.get("x-session-user"), "alice");
    assert.ok(forwarded.get("x-session-assertion"), "the assertion is forwarded");
    assert.match(response.headers.get("cache-control") ?? "", /private/, "a signed-in answer is private");
    assert.equal(pending.length, 0, "no write scheduled");
    assertSynchronous(counted, "ticket path");
    t.diagnostic(`calls into the wasm: ${JSON.stringify(counted)}`);
  }
});

test("a public path is quick, the forward and respondNow", async () => {
  const { response, calls: counted } = await send("/public/page");
  assert.equal(response.status, 200);
  assert.equal(forwarded.get("x-session-user"), null);
  assertSynchronous(counted, "public path");
});

test("a denial the request alone decides is one call into the wasm, with no forward", async () => {
  const { response, calls: counted } = await send("/account", { headers: { accept: "application/json" } });
  assert.equal(response.status, 401);
  assert.equal(forwarded, undefined, "nothing forwarded");
  const own = Object.keys(counted).filter((name) => !GLUE.has(name));
  assert.deepEqual(own, ["quick"], JSON.stringify(counted));
  assert.equal(counted.quick, 1);
});
