// The synchronous request path (src/edge/quick.rs), counted on the built worker: a request
// on the ticket path is two calls into the wasm (`quick`, then `respondNow` with the origin's
// response) and the platform's fetch, with no wasm future (no call of the asynchronous
// `fetch` or `respondLater`, no closure of wasm-bindgen-futures run from a microtask); one on
// the KV path is three (`quickRead` after the entry's own KV read). The worker runs in Node
// (tests/node-worker.mjs) over a stand-in origin, so every call into the wasm can be counted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { newAssertionKey, sleep } from "./harness.mjs";
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

const pending = [];
const ctx = { waitUntil: (p) => pending.push(p), passThroughOnException() {} };

/** A built worker of its own (its own wasm instance and settings), and `send`. */
async function worker(vars) {
  const { handler, calls } = await loadWorker(undefined, { count: true });
  const env = {
    SESSION_KEYS: `k1:${randomBytes(32).toString("base64")}`,
    ASSERTION_KEYS: newAssertionKey().setting,
    ORIGIN_URL: "http://127.0.0.1:9",
    PUBLIC_PATHS: "/login,/public/*",
    TOUCH_INTERVAL: "1h",
    SESSIONS: memoryKv(),
    ...vars,
  };
  let kvReads = 0;
  const get = env.SESSIONS.get;
  env.SESSIONS.get = (key) => {
    kvReads += 1;
    return get(key);
  };
  /** The response to `path`, the calls into the wasm it took by name, and its KV reads. */
  async function send(path, init = {}) {
    calls.clear();
    kvReads = 0;
    forwarded = undefined;
    const response = await handler.fetch(new Request(`https://shop.example${path}`, init), env, ctx);
    await response.arrayBuffer();
    await Promise.all(pending.splice(0));
    return { response, calls: Object.fromEntries(calls), kvReads };
  }
  return { env, send };
}

/** Only `names` (once each) and the glue's own calls. */
function assertSynchronous(counted, what, names = ["quick", "respondNow"]) {
  const own = Object.keys(counted).filter((name) => !GLUE.has(name));
  assert.deepEqual(own.sort(), [...names].sort(), `${what}: calls into the wasm ${JSON.stringify(counted)}`);
  for (const name of names) assert.equal(counted[name], 1, `${what}: ${name}`);
}

/** alice's cookies, once signed in through `send`. */
const cookieOf = (response) =>
  response.headers
    .getSetCookie()
    .map((c) => c.split(";")[0])
    .join("; ");

/** The cookie header `jar` with the cookies of `set` (same form) put in. */
function merged(jar, set) {
  const all = new Map([...jar.split("; "), ...set.split("; ")].filter(Boolean).map((c) => [c.split("=")[0], c]));
  return [...all.values()].join("; ");
}

const { env, send } = await worker({ TICKET_TTL: "1h" });
const login = await send("/login", { method: "POST" });
const cookie = cookieOf(login.response);

test("signing in takes the asynchronous path (step 11 writes the session to KV)", () => {
  assert.equal(login.response.status, 303);
  assert.ok(cookie.includes(";"), `session and ticket cookies: ${cookie}`);
  assert.ok(login.calls.quick === 1 && login.calls.respondNow === 1 && login.calls.respondLater === 1, JSON.stringify(login.calls));
  assert.ok(env.SESSIONS.map.size > 0, "the session is in KV");
});

test("a request on the ticket path is quick, the forward and respondNow: no wasm future", async (t) => {
  await sleep(5);
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

test("a request on the KV path is quick, the entry's KV read, quickRead, the forward and respondNow", async (t) => {
  const kv = await worker({ TICKET_TTL: "1ms" });
  const signedIn = await kv.send("/login", { method: "POST" });
  let jar = cookieOf(signedIn.response);
  await sleep(5);
  // The first one signs the assertion header: the rest of it goes the asynchronous way, with
  // the entry's read as its answer (KV is read once).
  const first = await kv.send("/account", { headers: { cookie: jar } });
  assert.equal(first.response.status, 200);
  assert.equal(first.kvReads, 1, "one KV read");
  assert.equal(first.calls.quickRead, 1, JSON.stringify(first.calls));
  for (let i = 0; i < 3; i++) {
    await sleep(5); // past TICKET_TTL (1 ms) again
    const { response, calls: counted, kvReads } = await kv.send("/account", { headers: { cookie: jar } });
    assert.equal(response.status, 200);
    assert.equal(forwarded.get("x-session-user"), "alice");
    assert.equal(kvReads, 1, "one KV read");
    assert.ok(response.headers.getSetCookie().length > 0, "a new ticket");
    assertSynchronous(counted, "KV path", ["quick", "quickRead", "respondNow"]);
    t.diagnostic(`calls into the wasm: ${JSON.stringify(counted)}`);
    jar = merged(jar, cookieOf(response));
  }
  // A session KV no longer has is denied on the same path, with no forward.
  kv.env.SESSIONS.map.clear();
  const gone = await kv.send("/account", { headers: { cookie: jar, accept: "application/json" } });
  assert.equal(gone.response.status, 401);
  assert.equal(forwarded, undefined);
  assertSynchronous(gone.calls, "a session KV does not know", ["quick", "quickRead"]);
});
