// The synchronous request path (src/edge/quick.rs), counted on the built worker: a request
// on the ticket path is two calls into the wasm (`quick`, then `answeredPlain` when the
// origin's answer is plain, or `respondNow` with any other) and the platform's fetch, with no
// wasm future (no call of the asynchronous `fetch` or `respondLater`, no closure of
// wasm-bindgen-futures run from a microtask); one on the KV path is three (`quickRead` after
// the entry's own KV read). The worker runs in Node
// (tests/node-worker.mjs) over a stand-in origin, so every call into the wasm can be counted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { sleep } from "./harness.mjs";
import { cookieOf, loadWorker, memoryStates, workerEnv } from "./node-worker.mjs";

// What the glue calls into the wasm for itself: passing strings and JS values across, and
// letting go of a closure an earlier request's future left behind (its timer's: calling one,
// `..._invoke_...`, is what a future on this request's path would do).
const GLUE = new Set([
  "__wbindgen_destroy_closure",
  "__wbindgen_malloc",
  "__wbindgen_realloc",
  "__wbindgen_free",
  "__wbindgen_exn_store",
  "__externref_table_alloc",
  "__externref_table_dealloc",
  "__externref_drop_slice",
]);

// The origin: signs alice in on POST /login, answers a small JSON body otherwise, and keeps
// the headers of the last forward; its session lookup (attach mode) keeps what it was asked.
let forwarded;
const lookups = [];
// When the site's sessions began, as its lookup says (unix seconds).
const SITE_CREATED = Math.floor(Date.now() / 1000) - 60;
globalThis.fetch = async (input, init = {}) => {
  const url = new URL(typeof input === "string" ? input : input.url);
  // The site's sessions are "site-..." IDs.
  if (url.pathname === "/lookup") {
    const request = new Request(input, init);
    const { session_id } = await request.json();
    lookups.push([request.headers.get("authorization"), session_id]);
    return session_id.startsWith("site-") ? Response.json({ user: "carol", created: SITE_CREATED }) : new Response("{}", { status: 404 });
  }
  forwarded = new Headers(init.headers ?? input.headers);
  if (url.pathname === "/down") throw new TypeError("fetch failed: connection refused");
  if (url.pathname === "/login") return new Response(null, { status: 303, headers: { location: "/", "x-edge-session-login": "alice" } });
  // A change to the session's data.
  if (url.pathname === "/cart/add") return Response.json({ ok: true }, { headers: { "x-edge-session-data": '{"cart":["a1"]}' } });
  // Not plain: a cookie of the site's own, or the origin's own caching.
  if (url.pathname === "/theme") return Response.json({ ok: true }, { headers: { "set-cookie": "theme=dark; Path=/" } });
  if (url.pathname === "/cached") return Response.json({ ok: true }, { headers: { "cache-control": "max-age=60" } });
  return Response.json({ ok: true, path: url.pathname });
};

const pending = [];
const ctx = { waitUntil: (p) => pending.push(p), passThroughOnException() {} };

/** A built worker of its own (its own wasm instance and settings, or those of `shared`: the
 *  same keys and stores, as another isolate of the same deployment has), and `send`. */
async function worker(vars, shared) {
  const { handler, calls, SessionState } = await loadWorker(undefined, { count: true });
  const env = shared ?? workerEnv({ PUBLIC_PATHS: "/login,/public/*", ...vars });
  if (vars.SESSION_STATE === true) env.SESSION_STATE = memoryStates(SessionState);
  let kvReads = 0;
  let kvPuts = 0;
  const { get, put } = env.SESSIONS;
  env.SESSIONS.get = (key) => {
    kvReads += 1;
    return get(key);
  };
  env.SESSIONS.put = (...args) => {
    kvPuts += 1;
    return put(...args);
  };
  /** The response to `path` and its body, the calls into the wasm it took by name, its KV
   *  reads and writes, and its log lines. */
  async function send(path, init = {}) {
    calls.clear();
    kvReads = kvPuts = 0;
    forwarded = undefined;
    const logs = [];
    const log = console.log;
    console.log = (line) => logs.push(JSON.parse(line));
    try {
      const response = await handler.fetch(new Request(`https://shop.example${path}`, init), env, ctx);
      const body = await response.text();
      await Promise.all(pending.splice(0));
      return { response, body, calls: Object.fromEntries(calls), kvReads, kvPuts, logs };
    } finally {
      console.log = log;
    }
  }
  return { env, send };
}

/** Only `names` (once each) and the glue's own calls. */
function assertSynchronous(counted, what, names = ["quick", "answeredPlain"]) {
  const own = Object.keys(counted).filter((name) => !GLUE.has(name));
  assert.deepEqual(own.sort(), [...names].sort(), `${what}: calls into the wasm ${JSON.stringify(counted)}`);
  for (const name of names) assert.equal(counted[name], 1, `${what}: ${name}`);
}

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

test("a request on the ticket path is quick, the forward and answeredPlain: no wasm future", async (t) => {
  await sleep(5);
  // The first one signs the assertion header (asynchronously, cached for the isolate).
  const first = await send("/account", { headers: { cookie } });
  assert.equal(first.response.status, 200);
  for (let i = 0; i < 3; i++) {
    const { response, body, calls: counted } = await send("/account", { headers: { cookie, accept: "*/*" } });
    assert.equal(response.status, 200);
    assert.equal(forwarded.get("x-session-user"), "alice");
    assert.ok(forwarded.get("x-session-assertion"), "the assertion is forwarded");
    assert.match(response.headers.get("cache-control") ?? "", /private/, "a signed-in answer is private");
    assert.match(response.headers.get("server-timing") ?? "", /^edge-session;desc="ticket";dur=\d+$/);
    assert.ok(Number(response.headers.get("x-edge-session-idle-left")) > 0, "the idle time left");
    assert.deepEqual(JSON.parse(body), { ok: true, path: "/account" }, "the origin's body");
    assert.equal(pending.length, 0, "no write scheduled");
    assertSynchronous(counted, "ticket path");
    t.diagnostic(`calls into the wasm: ${JSON.stringify(counted)}`);
  }
});

test("a public path is quick, the forward and answeredPlain", async () => {
  const { response, calls: counted } = await send("/public/page");
  assert.equal(response.status, 200);
  assert.equal(forwarded.get("x-session-user"), null);
  assert.equal(response.headers.get("cache-control"), null, "a visitor's page is not made private");
  assert.equal(response.headers.get("x-edge-session-idle-left"), null);
  assertSynchronous(counted, "public path");
});

test("an answer with a cookie of the site's own goes to respondNow, and the cookie passes", async () => {
  const { response, calls: counted } = await send("/theme", { headers: { cookie } });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("set-cookie"), "theme=dark; Path=/");
  assert.match(response.headers.get("server-timing") ?? "", /^edge-session;desc="ticket";dur=\d+$/);
  assert.equal(response.headers.get("cache-control"), "private");
  assertSynchronous(counted, "an answer that sets a cookie", ["quick", "respondNow"]);
});

test("an origin's own Cache-Control stands on a plain answer", async () => {
  const { response, calls: counted } = await send("/cached", { headers: { cookie } });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("cache-control"), "max-age=60");
  assert.ok(Number(response.headers.get("x-edge-session-idle-left")) > 0);
  assertSynchronous(counted, "a plain answer with Cache-Control");
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
  const kv = await worker({ TICKET_TTL: "1ms", LOG_REQUESTS: "all" });
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
    const { response, calls: counted, kvReads, logs } = await kv.send("/account", { headers: { cookie: jar } });
    assert.equal(response.status, 200);
    assert.equal(forwarded.get("x-session-user"), "alice");
    assert.equal(kvReads, 1, "one KV read");
    assert.equal(logs.length, 1, JSON.stringify(logs));
    assert.deepEqual([logs[0].outcome, logs[0].detail, logs[0].kv_reads, logs[0].kv_writes], ["allow", "kv", 1, 0], "the log line counts the read");
    assert.ok(response.headers.getSetCookie().length > 0, "a new ticket");
    assertSynchronous(counted, "KV path", ["quick", "quickRead", "respondNow"]);
    t.diagnostic(`calls into the wasm: ${JSON.stringify(counted)}`);
    jar = merged(jar, cookieOf(response));
  }
  // A session KV no longer has is denied on the same path, with no forward.
  kv.env.SESSIONS.map.clear();
  await sleep(5); // past TICKET_TTL
  const gone = await kv.send("/account", { headers: { cookie: jar, accept: "application/json" } });
  assert.equal(gone.response.status, 401);
  assert.equal(forwarded, undefined);
  assertSynchronous(gone.calls, "a session KV does not know", ["quick", "quickRead"]);
});

test("a read of the session's object is made by the entry (quickAnswer), after its KV read (quickRead) too", async (t) => {
  // Two isolates of one deployment: the change made through one, read in the other.
  const one = await worker({ SESSION_STATE: true, TICKET_TTL: "40ms" });
  const other = await worker({}, one.env);
  const objects = one.env.SESSION_STATE;
  let jar = cookieOf((await one.send("/login", { method: "POST" })).response);
  await other.send("/account", { headers: { cookie: jar } }); // signs the assertion
  const added = await one.send("/cart/add", { headers: { cookie: jar } });
  assert.equal(added.response.status, 200);
  jar = merged(jar, cookieOf(added.response));
  // The other isolate holds no data of this version: it reads the object (once), and signs
  // the assertion of the new data (asynchronously, with the object's answer: not read again).
  let reads = objects.reads;
  const first = await other.send("/account", { headers: { cookie: jar } });
  assert.equal(first.response.status, 200);
  assert.equal(forwarded.get("x-session-data"), '{"cart":["a1"]}', "the data the other isolate wrote");
  assert.equal(objects.reads, reads + 1, "the object is read once");
  assert.equal(first.calls.quickAnswer, 1, JSON.stringify(first.calls));
  // Past TICKET_TTL, the data held is too old to trust and the ticket too: KV, then the
  // object, both read by the entry. The first of these signs the assertion of the KV tier.
  for (let i = 0; i < 3; i++) {
    await sleep(50);
    reads = objects.reads;
    const { response, calls: counted, kvReads } = await other.send("/account", { headers: { cookie: jar } });
    assert.equal(response.status, 200);
    assert.equal(forwarded.get("x-session-data"), '{"cart":["a1"]}');
    assert.equal(kvReads, 1, "KV is read once");
    assert.equal(objects.reads, reads + 1, "the object is read once");
    if (i > 0) assertSynchronous(counted, "a KV read and an object read", ["quick", "quickRead", "quickAnswer", "answeredPlain"]);
    t.diagnostic(`calls into the wasm: ${JSON.stringify(counted)}`);
    jar = merged(jar, cookieOf(response));
  }
});

test("a lookup is made by the entry (quickAnswer) after the KV read that did not find the session", async (t) => {
  const site = await worker({ LOOKUP_URL: "http://127.0.0.1:9/lookup", LOOKUP_TOKEN: "t0ken", TICKET_TTL: "1h" });
  const sid = `site-${"a".repeat(40)}`;
  lookups.length = 0;
  const first = await site.send("/account", { headers: { cookie: `sid=${sid}` } });
  assert.equal(first.response.status, 200);
  assert.equal(forwarded.get("x-session-user"), "carol", "the user the lookup gave");
  assert.deepEqual(lookups, [["Bearer t0ken", sid]], "asked once, with the token");
  // The decision's reads in synchronous calls; the assertion's signing and the session's KV
  // writes (after the response) are the asynchronous path's, with the lookup's answer.
  for (const name of ["quick", "quickRead", "quickAnswer"]) assert.equal(first.calls[name], 1, `${name}: ${JSON.stringify(first.calls)}`);
  assert.ok(site.env.SESSIONS.map.size > 0, "the session learned is in KV");
  t.diagnostic(`calls into the wasm: ${JSON.stringify(first.calls)}`);
  // One the site does not know: denied after its lookup, with no forward.
  lookups.length = 0;
  forwarded = undefined;
  const unknown = await site.send("/account", { headers: { cookie: `sid=nobody-${"c".repeat(40)}`, accept: "application/json" } });
  assert.equal(unknown.response.status, 401);
  assert.equal(forwarded, undefined);
  assert.equal(lookups.length, 1);
  assertSynchronous(unknown.calls, "a session the site does not know", ["quick", "quickRead", "quickAnswer"]);
});

test("a session revalidated with the lookup (REVALIDATE_AFTER) is decided in synchronous calls", async (t) => {
  const site = await worker({ LOOKUP_URL: "http://127.0.0.1:9/lookup", LOOKUP_TOKEN: "t0ken", TICKET_TTL: "20ms", REVALIDATE_AFTER: "20ms" });
  let jar = `sid=site-${"d".repeat(40)}`;
  // Learned (its assertion of the lookup tier signed, asynchronously), then revalidated: the
  // first time, the assertion of the KV tier is signed; from then on, no signing.
  for (let i = 0; i < 4; i++) {
    await sleep(30); // past TICKET_TTL and REVALIDATE_AFTER
    lookups.length = 0;
    const { response, calls: counted } = await site.send("/account", { headers: { cookie: jar } });
    assert.equal(response.status, 200);
    assert.equal(forwarded.get("x-session-user"), "carol");
    assert.equal(lookups.length, 1, "asked again");
    t.diagnostic(`calls into the wasm: ${JSON.stringify(counted)}`);
    jar = merged(jar, cookieOf(response));
    if (i < 2) continue;
    // The session's record is written again after the response (respondLater).
    for (const name of ["quick", "quickRead", "quickAnswer", "respondNow", "respondLater"]) {
      assert.equal(counted[name], 1, `${name}: ${JSON.stringify(counted)}`);
    }
    assert.equal(counted.fetch, undefined, "not the whole asynchronous path");
  }
});

test("a touch due on the KV path is written even when the forward fails (502 origin_unreachable)", async () => {
  const kv = await worker({ TICKET_TTL: "1ms", TOUCH_INTERVAL: "20ms", LOG_REQUESTS: "all" });
  const jar = cookieOf((await kv.send("/login", { method: "POST" })).response);
  await kv.send("/account", { headers: { cookie: jar } }); // signs the assertion
  await sleep(30); // past TOUCH_INTERVAL
  const { response, calls: counted, kvReads, kvPuts, logs } = await kv.send("/down", { headers: { cookie: jar } });
  assert.equal(response.status, 502);
  assert.equal(kvReads, 1);
  assert.equal(kvPuts, 1, "the touch is written");
  // The decision in synchronous calls; the touch in the background (a wasm future, after the response).
  for (const name of ["quick", "quickRead", "originUnreachable"]) assert.equal(counted[name], 1, `${name}: ${JSON.stringify(counted)}`);
  assert.equal(counted.fetch, undefined, "not the asynchronous path");
  assert.equal(counted.respondLater, undefined);
  assert.match(logs.at(-1).error, /connection refused/, JSON.stringify(logs));
  assert.equal(logs.at(-1).kv_writes, 1, JSON.stringify(logs));
});
