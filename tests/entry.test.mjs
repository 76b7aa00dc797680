// The worker's entry (src/edge/entry-core.mjs) over a stand-in for the wasm module:
// how it hands events on, and how it recovers after a panic aborted the instance.
import { test } from "node:test";
import assert from "node:assert/strict";
import { entry } from "../src/edge/entry-core.mjs";
import { lookupPlan, plain, plan as nativePlan } from "../src/edge/native.js";

/** A stand-in for wasm-bindgen's module: records calls; `panicNext` makes the next call "panic". */
function fakeWasm() {
  const state = { criticalError: false, instanceId: 1 };
  const calls = [];
  let panicNext = false;
  const wasm = {
    calls,
    state,
    panic(where = "fetch") {
      panicNext = where;
    },
    initState: () => state,
    __wbg_reset_state() {
      calls.push("reset");
      state.instanceId += 1; // the start function runs again in the new instance
    },
    // The synchronous path: `plans` says what quick() answers (undefined by default: the
    // whole asynchronous path), `later` whether respondNow() leaves the response to respondLater().
    plans: [],
    later: false,
    quick(request) {
      calls.push(["quick", request.url]);
      if (panicNext === "quick") {
        panicNext = false;
        state.criticalError = true;
        throw new WebAssembly.RuntimeError("unreachable");
      }
      return wasm.plans.shift();
    },
    // After the entry's KV read: `reads` says what quickRead() answers (a plan by default).
    reads: [],
    quickRead(request, env, ctx, handle, value, error, timedOut) {
      calls.push(["quickRead", request.url, ctx.id, handle, value, error === undefined ? undefined : String(error?.message ?? error), timedOut]);
      return wasm.reads.length ? wasm.reads.shift() : plan(["https://origin.example/a?b=1"]);
    },
    // After the entry's read of a session's object or its lookup: `answers` says what
    // quickAnswer() answers.
    answers: [],
    quickAnswer(request, env, ctx, handle, status, body, error, timedOut) {
      calls.push(["quickAnswer", handle, status, body, error === undefined ? undefined : String(error?.message ?? error), timedOut]);
      return wasm.answers.length ? wasm.answers.shift() : plan(["https://origin.example/a?b=1"]);
    },
    answeredPlain(handle) {
      calls.push(["answeredPlain", handle]);
    },
    respondNow(handle, upstream) {
      calls.push(["respondNow", handle, upstream.status]);
      return wasm.later ? undefined : new Response(`now: ${upstream.headers.get("x-origin")}`, { status: upstream.status });
    },
    async respondLater(handle, upstream, env, ctx) {
      calls.push(["respondLater", handle, upstream.status, env.NAME, ctx.id]);
      return new Response("later", { status: 201 });
    },
    originUnreachable(handle, error) {
      calls.push(["originUnreachable", handle, error]);
      return new Response('{"error":"origin_unreachable"}', { status: 502 });
    },
    async fetch(request, env, ctx) {
      calls.push(["fetch", request.url, env.NAME, ctx.id]);
      if (panicNext === "fetch") {
        panicNext = false;
        state.criticalError = true; // what the panic hook does
        throw new WebAssembly.RuntimeError("unreachable");
      }
      return new Response("from wasm", { status: 200 });
    },
    // A session's object: serveState() answers `served` (by default, the state the
    // object holds, echoed), after the storage calls the entry makes.
    served: undefined,
    stateLimit: () => 16,
    serveState(url, body, stored) {
      calls.push(["serveState", url, body, stored, state.instanceId]);
      if (panicNext === "serveState") {
        panicNext = false;
        state.criticalError = true;
        throw new WebAssembly.RuntimeError("unreachable");
      }
      return wasm.served ?? { status: 200, reply: `holds ${stored}`, store: undefined, alarm: undefined };
    },
    alarmAt: undefined,
    stateAlarm(stored) {
      calls.push(["stateAlarm", stored, state.instanceId]);
      return wasm.alarmAt;
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
  assert.deepEqual(wasm.calls, [
    ["quick", "https://site.example/a?b=1"],
    ["fetch", "https://site.example/a?b=1", "env", "ctx"],
  ]);
});

/** Runs `body` with globalThis.fetch replaced by `fake` (its calls recorded). */
async function withFetch(fake, body) {
  const original = globalThis.fetch;
  const seen = [];
  globalThis.fetch = async (url, init) => {
    seen.push({ url, init });
    return fake(url, init);
  };
  try {
    await body(seen);
  } finally {
    globalThis.fetch = original;
  }
}

const plan = (urls, noStore = true) => ({ handle: 7, headers: new Headers({ "x-session-user": "alice" }), urls, noStore });

test("the worker's own answer from quick() is returned as it is, with no forward and no other call", async () => {
  const wasm = fakeWasm();
  wasm.plans.push(new Response("denied", { status: 401 }));
  const { handler } = entry(wasm);
  await withFetch(() => assert.fail("forwarded"), async () => {
    const res = await handler.fetch(req(), { NAME: "env" }, { id: "ctx" });
    assert.equal(res.status, 401);
    assert.equal(await res.text(), "denied");
  });
  assert.deepEqual(wasm.calls, [["quick", "https://site.example/a?b=1"]]);
});

test("a plan is forwarded with its headers, manual redirects and no-store, and respondNow() makes the response", async () => {
  const wasm = fakeWasm();
  wasm.plans.push(plan(["https://origin.example/a?b=1"]));
  const { handler } = entry(wasm);
  await withFetch(() => new Response("body", { status: 203, headers: { "x-origin": "o1" } }), async (seen) => {
    const res = await handler.fetch(req(), { NAME: "env" }, { id: "ctx" });
    assert.equal(res.status, 203);
    assert.equal(await res.text(), "now: o1");
    assert.equal(seen.length, 1);
    assert.equal(seen[0].url, "https://origin.example/a?b=1");
    assert.equal(seen[0].init.method, "GET");
    assert.equal(seen[0].init.redirect, "manual");
    assert.equal(seen[0].init.cache, "no-store");
    assert.equal(seen[0].init.headers.get("x-session-user"), "alice");
    assert.equal(seen[0].init.body, undefined, "a GET has no body");
  });
  assert.deepEqual(wasm.calls.map((c) => c[0]), ["quick", "respondNow"]);
});

// What the wasm watches for in an answer (src/edge/quick.rs): the session signals, Set-Cookie.
const WATCHED = "x-edge-session-login\nx-edge-session-logout\nset-cookie";

/** A plan as native.js makes it, with the response to a plain answer: the idle time left,
 *  private unless the origin says otherwise, Server-Timing. */
function plainPlan(started) {
  const edits = "=X-Edge-Session-Idle-Left\n1799\n?Cache-Control\nprivate";
  const request = new Request("https://site.example/a", { headers: { "x-session-user": "mallory", accept: "*/*" } });
  const answer = plain(edits, 'edge-session;desc="ticket";dur=', started, WATCHED);
  return nativePlan(7, request, "-x-session-user\n=X-Session-User\nalice", "https://origin.example/a", true, answer);
}

test("a plain answer is made by the plan, and answeredPlain() tells the wasm the request is done", async () => {
  const wasm = fakeWasm();
  wasm.plans.push(plainPlan(Date.now() - 5));
  const { handler } = entry(wasm);
  await withFetch(() => new Response("body", { status: 203, statusText: "Partial", headers: { "x-origin": "o1" } }), async (seen) => {
    const res = await handler.fetch(req(), { NAME: "env" }, { id: "ctx" });
    assert.equal(res.status, 203);
    assert.equal(res.statusText, "Partial");
    assert.equal(await res.text(), "body", "the origin's own body");
    assert.equal(res.headers.get("x-origin"), "o1");
    assert.equal(res.headers.get("x-edge-session-idle-left"), "1799");
    assert.equal(res.headers.get("cache-control"), "private");
    const dur = Number(/^edge-session;desc="ticket";dur=(\d+)$/.exec(res.headers.get("server-timing"))?.[1]);
    assert.ok(dur >= 5 && dur < 5000, `the time since the request started: ${dur}`);
    assert.equal(seen[0].init.headers.get("x-session-user"), "alice", "the forward's own edits");
    assert.equal(seen[0].init.headers.get("accept"), "*/*");
  });
  assert.deepEqual(wasm.calls.slice(1), [["answeredPlain", 7]]);
});

test("an answer with a watched header goes to respondNow(); an origin's own Cache-Control stands on a plain one", async () => {
  for (const [headers, calls] of [
    [{ "set-cookie": "theme=dark" }, ["respondNow", 7, 200]],
    [{ "X-Edge-Session-Logout": "1" }, ["respondNow", 7, 200]],
    [{ "cache-control": "max-age=60", "x-origin": "o" }, ["answeredPlain", 7]],
  ]) {
    const wasm = fakeWasm();
    wasm.plans.push(plainPlan(Date.now()));
    const { handler } = entry(wasm);
    await withFetch(() => new Response("ok", { headers }), async () => {
      const res = await handler.fetch(req(), { NAME: "env" }, { id: "ctx" });
      if (calls[0] === "answeredPlain") assert.equal(res.headers.get("cache-control"), "max-age=60");
    });
    assert.deepEqual(wasm.calls.slice(1), [calls], JSON.stringify(headers));
  }
});

test("a POST's body is streamed to the origin; a bypass does not set no-store", async () => {
  const wasm = fakeWasm();
  wasm.plans.push(plan(["https://origin.example/form"], false));
  const { handler } = entry(wasm);
  await withFetch(async (url, init) => new Response(await new Response(init.body).text(), { headers: { "x-origin": "posted" } }), async (seen) => {
    const post = new Request("https://site.example/form", { method: "POST", body: "a=1" });
    const res = await handler.fetch(post, { NAME: "env" }, { id: "ctx" });
    assert.equal(await res.text(), "now: posted");
    assert.equal(seen[0].init.method, "POST");
    assert.equal(seen[0].init.cache, undefined);
  });
});

test("a response whose signals need a store goes to respondLater(), with env and ctx", async () => {
  const wasm = fakeWasm();
  wasm.plans.push(plan(["https://origin.example/login"]));
  wasm.later = true;
  const { handler } = entry(wasm);
  await withFetch(() => new Response("ok", { status: 200 }), async () => {
    const res = await handler.fetch(req(), { NAME: "env" }, { id: "ctx" });
    assert.equal(res.status, 201);
    assert.equal(await res.text(), "later");
  });
  assert.deepEqual(wasm.calls.slice(1), [
    ["respondNow", 7, 200],
    ["respondLater", 7, 200, "env", "ctx"],
  ]);
});

test("a network error tries the plan's next URL; when every one fails, originUnreachable() answers", async () => {
  const wasm = fakeWasm();
  wasm.plans.push(plan(["https://down.example/a", "https://up.example/a"]));
  wasm.plans.push(plan(["https://down.example/a", "https://down.example/b"]));
  // One URL: the platform's promise rejects (a real fetch never throws at once).
  wasm.plans.push(plan(["https://rejects.example/c"]));
  const { handler } = entry(wasm);
  await withFetch((url) => {
    if (url.startsWith("https://down.")) throw new TypeError(`connection refused: ${url}`);
    if (url.startsWith("https://rejects.")) return Promise.reject(new TypeError(`reset: ${url}`));
    return new Response("ok", { headers: { "x-origin": "up" } });
  }, async (seen) => {
    const res = await handler.fetch(req(), { NAME: "env" }, { id: "ctx" });
    assert.equal(await res.text(), "now: up");
    assert.deepEqual(seen.map((s) => s.url), ["https://down.example/a", "https://up.example/a"]);
    const failed = await handler.fetch(req(), { NAME: "env" }, { id: "ctx" });
    assert.equal(failed.status, 502);
    assert.deepEqual(wasm.calls.at(-1), ["originUnreachable", 7, "connection refused: https://down.example/b"]);
    const rejected = await handler.fetch(req(), { NAME: "env" }, { id: "ctx" });
    assert.equal(rejected.status, 502);
  });
  assert.deepEqual(wasm.calls.at(-1), ["originUnreachable", 7, "reset: https://rejects.example/c"]);
});

test("a panic in quick() is answered 500 internal_error, and the next request runs in a fresh instance", async () => {
  const wasm = fakeWasm();
  const { handler } = entry(wasm);
  const original = console.error;
  console.error = () => {};
  try {
    wasm.panic("quick");
    const failed = await handler.fetch(req(), { NAME: "env" }, { id: "ctx" });
    assert.equal(failed.status, 500);
    assert.deepEqual(await failed.json(), { error: "internal_error" });
    wasm.plans.push(new Response("fresh"));
    assert.equal(await (await handler.fetch(req(), { NAME: "env" }, { id: "ctx" })).text(), "fresh");
  } finally {
    console.error = original;
  }
  assert.equal(wasm.calls.filter((c) => c === "reset").length, 1);
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
    const calls = () => wasm.calls.filter((c) => c[0] !== "quick");
    assert.deepEqual(calls().slice(1), ["reset", ["fetch", "https://site.example/a?b=1", "env", "ctx"]]);
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

/** A Durable Object's storage in memory that records its calls in `calls`; `failing`
 *  names a call that rejects. */
function memoryStorage(calls, failing) {
  const map = new Map();
  const call = async (name, ...args) => {
    calls.push([name, ...args]);
    if (name === failing) throw new Error(`storage ${name} failed`);
  };
  return {
    map,
    async get(key) {
      await call("get", key);
      return map.get(key);
    },
    async put(key, value) {
      await call("put", key, value);
      map.set(key, value);
    },
    setAlarm: (at) => call("setAlarm", at),
    async deleteAll() {
      await call("deleteAll");
      map.clear();
    },
  };
}

test("a session object reads its state, has the wasm answer, then stores what it says and sets the alarm", async () => {
  const wasm = fakeWasm();
  const { SessionState } = entry(wasm);
  const storage = memoryStorage(wasm.calls);
  const object = new SessionState({ storage }, {});

  const read = await object.fetch(new Request("https://session-state/?until=9"));
  assert.equal(read.status, 200);
  assert.equal(await read.text(), "holds undefined");

  wasm.served = { status: 200, reply: '{"version":1}', store: '{"v":1}', alarm: 1234 };
  const change = await object.fetch(new Request("https://session-state/", { method: "POST", body: '{"patch":{}}' }));
  assert.equal(await change.text(), '{"version":1}');
  assert.equal(storage.map.get("state"), '{"v":1}');

  wasm.served = { status: 500, reply: "the request to the session object is too large", store: undefined, alarm: undefined };
  const large = await object.fetch(new Request("https://session-state/", { method: "POST", body: "x".repeat(17) }));
  assert.equal(large.status, 500);
  assert.equal(await large.text(), "the request to the session object is too large");

  assert.deepEqual(wasm.calls, [
    ["get", "state"],
    ["serveState", "https://session-state/?until=9", undefined, undefined, 1],
    ["get", "state"],
    ["serveState", "https://session-state/", '{"patch":{}}', undefined, 1],
    ["put", "state", '{"v":1}'],
    ["setAlarm", 1234],
    ["get", "state"],
    // Over stateLimit(): the body is not read past it, and the wasm is told so (null).
    ["serveState", "https://session-state/", null, '{"v":1}', 1],
  ]);
});

test("a session object's alarm sets itself again when the wasm says so, and otherwise deletes everything", async () => {
  const wasm = fakeWasm();
  const { SessionState } = entry(wasm);
  const storage = memoryStorage(wasm.calls);
  storage.map.set("state", '{"v":2}');
  const object = new SessionState({ storage }, {});
  wasm.alarmAt = 5000;
  await object.alarm();
  wasm.alarmAt = undefined;
  await object.alarm();
  assert.equal(storage.map.size, 0);
  assert.deepEqual(wasm.calls, [
    ["get", "state"],
    ["stateAlarm", '{"v":2}', 1],
    ["setAlarm", 5000],
    ["get", "state"],
    ["stateAlarm", '{"v":2}', 1],
    ["deleteAll"],
  ]);
});

test("a session object whose storage fails answers 500 naming it, and stores nothing after it", async () => {
  for (const failing of ["get", "put"]) {
    const wasm = fakeWasm();
    const { SessionState } = entry(wasm);
    const storage = memoryStorage(wasm.calls, failing);
    wasm.served = { status: 200, reply: "{}", store: '{"v":1}', alarm: 10 };
    const res = await new SessionState({ storage }, {}).fetch(new Request("https://session-state/", { method: "POST", body: "{}" }));
    assert.equal(res.status, 500);
    assert.equal(await res.text(), `storage ${failing} failed`);
    assert.ok(!wasm.calls.some((c) => c[0] === "setAlarm"), `no alarm after a failed ${failing}`);
  }
});

test("after a panic, a session object's next call starts from a fresh instance, and so does the worker's", async () => {
  const wasm = fakeWasm();
  const { handler, SessionState } = entry(wasm);
  const object = new SessionState({ storage: memoryStorage([]) }, {});
  const original = console.error;
  console.error = () => {};
  try {
    wasm.panic("serveState");
    const failed = await object.fetch(new Request("https://session-state/"));
    assert.equal(failed.status, 500);
    assert.match(await failed.text(), /unreachable/);
    const next = await object.fetch(new Request("https://session-state/"));
    assert.equal(next.status, 200);
    wasm.panic("serveState");
    await object.fetch(new Request("https://session-state/"));
    assert.equal((await handler.fetch(req(), { NAME: "env" }, { id: "ctx" })).status, 200);
  } finally {
    console.error = original;
  }
  const seen = wasm.calls.filter((c) => c === "reset" || c[0] === "serveState" || c[0] === "quick").map((c) => (c === "reset" ? c : [c[0], c.at(-1)]));
  assert.deepEqual(seen, [["serveState", 1], "reset", ["serveState", 2], ["serveState", 2], "reset", ["quick", "https://site.example/a?b=1"]]);
});

/** The plan of a KV read (native.js `readPlan`) over `get`, the namespace's read. */
const readPlan = (get, timeout = 1000) => ({ handle: 3, read: "s:abc", kv: { get }, timeout });

test("a KV read asked for by quick() is made by the entry, and quickRead() decides with its value", async () => {
  const wasm = fakeWasm();
  const keys = [];
  wasm.plans.push(
    readPlan(async (key) => {
      keys.push(key);
      return '{"user":"alice"}';
    }),
  );
  const { handler } = entry(wasm);
  await withFetch(
    () => new Response("origin", { headers: { "x-origin": "o" } }),
    async (seen) => {
      const res = await handler.fetch(req(), { NAME: "env" }, { id: "ctx" });
      assert.equal(await res.text(), "now: o");
      assert.equal(seen.length, 1, "forwarded once");
    },
  );
  assert.deepEqual(keys, ["s:abc"]);
  assert.deepEqual(
    wasm.calls.map((c) => c[0]),
    ["quick", "quickRead", "respondNow"],
  );
  assert.deepEqual(wasm.calls[1], ["quickRead", "https://site.example/a?b=1", "ctx", 3, '{"user":"alice"}', undefined, false]);
});

test("a KV read that fails or outlasts its timeout is handed to quickRead() as such", async () => {
  const wasm = fakeWasm();
  wasm.plans.push(
    readPlan(async () => {
      throw new Error("KV GET failed: 503");
    }),
    readPlan(() => new Promise(() => {}), 20),
    readPlan(async () => null),
    readPlan(() => {
      throw new TypeError("not a KV namespace");
    }),
  );
  const denied = () => new Response("denied", { status: 503 });
  wasm.reads.push(denied(), denied(), denied(), denied());
  const { handler } = entry(wasm);
  for (let i = 0; i < 4; i++) assert.equal((await handler.fetch(req(), {}, { id: "ctx" })).status, 503);
  const reads = wasm.calls.filter((c) => c[0] === "quickRead").map((c) => c.slice(4));
  assert.deepEqual(reads, [
    [null, "KV GET failed: 503", false],
    [null, undefined, true],
    [null, undefined, false],
    [null, "not a KV namespace", false],
  ]);
});

test("when quickRead() needs another store, its promise (the asynchronous path) is the response", async () => {
  const wasm = fakeWasm();
  wasm.plans.push(readPlan(async () => "record"));
  wasm.reads.push(Promise.resolve(new Response("the whole path", { status: 202 })));
  const { handler } = entry(wasm);
  await withFetch(
    () => assert.fail("forwarded by the entry"),
    async () => {
      const res = await handler.fetch(req(), {}, { id: "ctx" });
      assert.equal(res.status, 202);
      assert.equal(await res.text(), "the whole path");
    },
  );
  assert.deepEqual(
    wasm.calls.map((c) => c[0]),
    ["quick", "quickRead"],
  );
});

/** The plan of a read of a session's object (native.js `askPlan`) over `answer(url)`, the
 *  object's fetch; the names the namespace was asked for go to `named`. */
function askPlan(answer, { timeout = 1000, limit = 64, named = [] } = {}) {
  const states = {
    idFromName: (name) => ({ name }),
    get: (id) => {
      named.push(id.name);
      return { fetch: answer };
    },
  };
  return { handle: 5, ask: "https://session-state/?until=9", states, name: "hash-of-the-session", timeout, limit };
}

test("a read of a session's object asked for by quick() is made by the entry, and quickAnswer() decides with it", async () => {
  const wasm = fakeWasm();
  const named = [];
  const urls = [];
  wasm.plans.push(
    askPlan(
      async (url) => {
        urls.push(url);
        return new Response('{"state":1}');
      },
      { named },
    ),
  );
  const { handler } = entry(wasm);
  await withFetch(
    () => new Response("origin", { headers: { "x-origin": "o" } }),
    async () => assert.equal(await (await handler.fetch(req(), {}, { id: "ctx" })).text(), "now: o"),
  );
  assert.deepEqual(named, ["hash-of-the-session"]);
  assert.deepEqual(urls, ["https://session-state/?until=9"]);
  assert.deepEqual(wasm.calls.slice(1), [
    ["quickAnswer", 5, 200, '{"state":1}', undefined, false],
    ["respondNow", 7, 200],
  ]);
});

test("an object's read that fails, outlasts its timeout or answers too much is handed to quickAnswer() as such", async () => {
  const wasm = fakeWasm();
  const big = () => new Response(new ReadableStream({ pull: (c) => c.enqueue(new Uint8Array(40)) }));
  wasm.plans.push(
    askPlan(async () => {
      throw new Error("the object is overloaded");
    }),
    askPlan(() => new Promise(() => {}), { timeout: 20 }),
    askPlan(big),
    askPlan(async () => new Response("busy", { status: 503 })),
    askPlan(async () => new Response(null, { status: 200 })),
  );
  const denied = () => new Response("denied", { status: 503 });
  wasm.answers.push(denied(), denied(), denied(), denied(), denied());
  const { handler } = entry(wasm);
  for (let i = 0; i < 5; i++) assert.equal((await handler.fetch(req(), {}, { id: "ctx" })).status, 503);
  const asks = wasm.calls.filter((c) => c[0] === "quickAnswer").map((c) => c.slice(2));
  assert.deepEqual(asks, [
    [0, null, "the object is overloaded", false],
    [0, null, undefined, true],
    [200, null, undefined, false],
    [503, "busy", undefined, false],
    [200, "", undefined, false],
  ]);
});

test("a KV read, then a read of the object, then the forward: each answered back to the wasm in turn", async () => {
  const wasm = fakeWasm();
  wasm.plans.push(readPlan(async () => "record"));
  wasm.reads.push(askPlan(async () => new Response("state")));
  const { handler } = entry(wasm);
  await withFetch(
    () => new Response("origin", { headers: { "x-origin": "o" } }),
    async () => assert.equal(await (await handler.fetch(req(), {}, { id: "ctx" })).text(), "now: o"),
  );
  assert.deepEqual(
    wasm.calls.map((c) => c[0]),
    ["quick", "quickRead", "quickAnswer", "respondNow"],
  );
});

/** The plan of a lookup (native.js `lookupPlan`) to `urls`, with the lookup's own headers. */
const lookupOf = (urls, { timeout = 1000, limit = 64 } = {}) =>
  lookupPlan(9, urls.join("\n"), "=Authorization\nBearer t0ken\n=Content-Type\napplication/json", '{"session_id":"s1"}', timeout, limit);

test("a lookup asked for by quick() is posted by the entry to each URL in turn, and quickAnswer() decides with it", async () => {
  const wasm = fakeWasm();
  wasm.plans.push(lookupOf(["https://down.example/lookup", "https://up.example/lookup"]));
  const { handler } = entry(wasm);
  await withFetch(
    async (url, init) => {
      if (url.startsWith("https://down.example")) throw new TypeError("connection refused");
      if (url.startsWith("https://up.example")) return new Response('{"user":"alice"}', { status: 200 });
      return new Response("origin", { headers: { "x-origin": "o" } });
    },
    async (seen) => {
      assert.equal(await (await handler.fetch(req(), {}, { id: "ctx" })).text(), "now: o");
      const [down, up] = seen;
      assert.deepEqual([down.url, up.url], ["https://down.example/lookup", "https://up.example/lookup"]);
      assert.equal(up.init.method, "POST");
      assert.equal(up.init.redirect, "manual");
      assert.equal(up.init.body, '{"session_id":"s1"}');
      assert.equal(up.init.headers.get("authorization"), "Bearer t0ken");
      assert.equal(up.init.headers.get("content-type"), "application/json");
    },
  );
  assert.deepEqual(wasm.calls.slice(1), [
    ["quickAnswer", 9, 200, '{"user":"alice"}', undefined, false],
    ["respondNow", 7, 200],
  ]);
});

test("a lookup that fails everywhere, outlasts its timeout (aborted) or answers too much is handed to quickAnswer() as such", async () => {
  const wasm = fakeWasm();
  wasm.plans.push(lookupOf(["https://a.example/l", "https://b.example/l"]), lookupOf(["https://slow.example/l"], { timeout: 20 }), lookupOf(["https://big.example/l"]));
  const denied = () => new Response("denied", { status: 503 });
  wasm.answers.push(denied(), denied(), denied());
  const { handler } = entry(wasm);
  let aborted = false;
  await withFetch(
    (url, init) => {
      if (url.startsWith("https://slow.example")) {
        return new Promise((_, reject) => init.signal.addEventListener("abort", () => ((aborted = true), reject(new Error("aborted")))));
      }
      if (url.startsWith("https://big.example")) return new Response("x".repeat(65));
      throw new TypeError(`${new URL(url).host} refused`);
    },
    async () => {
      for (let i = 0; i < 3; i++) assert.equal((await handler.fetch(req(), {}, { id: "ctx" })).status, 503);
    },
  );
  assert.ok(aborted, "the late lookup is aborted");
  const lookups = wasm.calls.filter((c) => c[0] === "quickAnswer").map((c) => c.slice(2));
  assert.deepEqual(lookups, [
    [0, null, "b.example refused", false],
    [0, null, undefined, true],
    [200, null, undefined, false],
  ]);
});
