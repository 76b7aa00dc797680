// Shared end-to-end harness: the real worker (build/index.js + wasm, built once by
// `make test`) in workerd through Miniflare, in front of demo origins on 127.0.0.1.
//
// KV goes through a small wrapper (Miniflare wrappedBindings) that lets a test
// count the worker's KV operations and make KV fail. Its state lives in the
// inner namespace itself (keys starting with "__"), because the wrapper runs
// inside the worker's isolate where a test cannot reach it otherwise.
// The Durable Object binding SESSION_STATE (session data, see README.md) goes
// through a second wrapper of the same kind, with its fault flag and its call log
// in that same inner KV namespace.
//
// `locations: 2` starts a second worker from the same build (its own isolate, so its
// own isolate caches) that shares the KV namespace and the Durable Objects: another
// Cloudflare location. The KV fault "lag:<ms>" makes KV eventually consistent between
// them, as Workers KV is (up to 60 s): a write made through one location is seen there
// at once and by the other location only <ms> later.
import { Miniflare } from "miniflare";
import { randomBytes, createHash, generateKeyPairSync } from "node:crypto";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { startOrigin } from "../www/origin.mjs";
import { eachLine } from "./processes.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const BUILD = join(ROOT, "build");

if (!existsSync(join(BUILD, "index.js"))) {
  throw new Error("build/index.js is missing: run `make build` (make test does it) first");
}

export const newKey = (kid = "k1") => `${kid}:${randomBytes(32).toString("base64")}`;
export const sha256hex = (s) => createHash("sha256").update(s).digest("hex");

/** The per-user index key, encoded as src/session.rs encodes it (`user_index_prefix`). */
export function userIndexKey(user, hash) {
  let out = "u:";
  for (const b of Buffer.from(user, "utf8")) {
    const graphic = b > 0x20 && b < 0x7f && b !== 0x25 && b !== 0x3a;
    out += graphic ? String.fromCharCode(b) : "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return `${out}:${hash}`;
}
export const LOOKUP_TOKEN = randomBytes(16).toString("hex");

/** A fresh ES256 key for ASSERTION_KEYS (`kid:base64 PKCS#8`), with its public JWK. */
export function newAssertionKey(kid = "a1") {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const pkcs8 = privateKey.export({ type: "pkcs8", format: "der" }).toString("base64");
  return { setting: `${kid}:${pkcs8}`, jwk: { ...publicKey.export({ format: "jwk" }), kid, alg: "ES256", use: "sig" } };
}
/** The assertion key every worker of this test process signs with, unless a test sets its own. */
export const ASSERTION_KEY = newAssertionKey();
export const ADMIN_TOKEN = randomBytes(16).toString("hex");

/**
 * What location `loc` reads for a key under the KV fault "lag:<ms>", from the key's
 * history `h` ({base, entries: [{at, from, value}]}, oldest first; value null = absent):
 * its own writes at once, other locations' writes once `lag` ms old. `latest` says the
 * answer is the newest write, so the real namespace can answer (with its expiration).
 * Runs in the KV wrapper (its source is copied there) and in the test process (kvView).
 */
function visibleValue(h, loc, lag, now) {
  let value = h.base;
  let latest = h.entries.length === 0;
  h.entries.forEach((e, i) => {
    if (e.from === loc || e.at <= now - lag) {
      value = e.value;
      latest = i === h.entries.length - 1;
    }
  });
  return { value, latest };
}

/** The lag in ms a KV fault string asks for ("lag:<ms>" among comma-separated faults), 0 for none. */
function lagOf(fault) {
  const f = (fault || "").split(",").find((x) => x.startsWith("lag:"));
  return f ? Number(f.slice(4)) || 0 : 0;
}

const KV_WRAPPER = `
const FAULT = "__fault__";
const HIST = "__hist:";
${visibleValue.toString()}
${lagOf.toString()}
function typed(value, opts) {
  if (value === null) return null;
  const type = typeof opts === "string" ? opts : (opts && opts.type) || "text";
  if (type === "json") return JSON.parse(value);
  if (type === "arrayBuffer") return new TextEncoder().encode(value).buffer;
  if (type === "stream") return new Response(value).body;
  return value;
}
export default function (env) {
  const kv = env.INNER;
  // which location this binding belongs to (a binding var of the wrapped binding)
  const loc = String(env.LOCATION ?? 0);
  async function op(kind, key) {
    const fault = await kv.get(FAULT);
    if (fault === "down" || (fault === "writes" && kind !== "get" && kind !== "list")) {
      throw new Error("injected KV failure");
    }
    // More faults, comma-separated: "reads" (get and list throw), "ratelimit" (put and
    // delete throw as KV does past one write per second per key), "slow:<ms>" (every
    // operation waits that long first), "lag:<ms>" (see visibleValue).
    const faults = fault ? fault.split(",") : [];
    const write = kind !== "get" && kind !== "list";
    for (const f of faults) {
      if (f.startsWith("slow:")) await new Promise((r) => setTimeout(r, Number(f.slice(5))));
    }
    if (faults.includes("reads") && !write) throw new Error("injected KV read failure");
    if (faults.includes("ratelimit") && write) {
      throw new Error("KV PUT failed: 429 Too Many Requests (injected: one write per second per key)");
    }
    await kv.put("__op__:" + Date.now() + ":" + crypto.randomUUID(), kind + " " + key);
    return lagOf(fault);
  }
  // Under lag: the key's value as this location sees it ({value, latest}), or null
  // when the key has no recent history (the namespace answers).
  async function view(key, lag) {
    if (!lag) return null;
    const h = await kv.get(HIST + key);
    if (h === null) return null;
    const v = visibleValue(JSON.parse(h), loc, lag, Date.now());
    return v.latest ? null : v;
  }
  // Under lag: remembers a write (value null for a delete) in the key's history, before it is made.
  async function remember(key, value, lag) {
    if (!lag) return;
    const now = Date.now();
    const raw = await kv.get(HIST + key);
    const h = raw === null ? { base: await kv.get(key), entries: [] } : JSON.parse(raw);
    // writes every location sees by now fold into the base
    while (h.entries.length && h.entries[0].at <= now - lag) h.base = h.entries.shift().value;
    h.entries.push({ at: now, from: loc, value });
    await kv.put(HIST + key, JSON.stringify(h));
  }
  return {
    async get(key, opts) {
      const v = await view(key, await op("get", key));
      return v ? typed(v.value, opts) : kv.get(key, opts);
    },
    async getWithMetadata(key, opts) {
      const v = await view(key, await op("get", key));
      return v ? { value: typed(v.value, opts), metadata: null } : kv.getWithMetadata(key, opts);
    },
    async put(key, value, opts) {
      await remember(key, String(value), await op("put", key));
      return kv.put(key, value, opts);
    },
    async delete(key) {
      await remember(key, null, await op("delete", key));
      return kv.delete(key);
    },
    async list(opts) { await op("list", (opts && opts.prefix) || ""); return kv.list(opts); },
  };
}`;

// The SESSION_STATE wrapper: the worker reaches the binding only through
// ns.idFromName(name), ns.get(id) and stub.fetch(url, init) (README.md, "Session data"),
// so a plain object with those stands in for the namespace. Every stub.fetch is logged
// in the inner KV ("__doop__:" keys, JSON {loc, method, name, path}) and can be made to
// fail with the fault flag "__dofault__": "down" (every call throws), "writes" (calls
// other than GET and HEAD throw), "reads" (GET and HEAD throw), "slow:<ms>", comma-separated.
const DO_WRAPPER = `
const DO_FAULT = "__dofault__";
const names = new Map(); // id string -> the name it came from, for the call log
export default function (env) {
  const ns = env.INNER;
  const kv = env.STATE;
  const loc = String(env.LOCATION ?? 0);
  async function gate(method, name, url) {
    const fault = await kv.get(DO_FAULT);
    const faults = fault ? fault.split(",") : [];
    const read = method === "GET" || method === "HEAD";
    let path = url;
    try { path = new URL(url).pathname; } catch {}
    await kv.put("__doop__:" + Date.now() + ":" + crypto.randomUUID(), JSON.stringify({ loc, method, name, path }));
    for (const f of faults) {
      if (f.startsWith("slow:")) await new Promise((r) => setTimeout(r, Number(f.slice(5))));
    }
    if (faults.includes("down") || (faults.includes("writes") && !read) || (faults.includes("reads") && read)) {
      throw new Error("injected Durable Object failure (" + method + ")");
    }
  }
  function wrap(id, stub) {
    const name = names.get(id.toString()) ?? id.toString();
    return {
      id,
      async fetch(input, init) {
        const isRequest = typeof input === "object" && input !== null && typeof input.url === "string";
        const method = String((init && init.method) || (isRequest ? input.method : "GET")).toUpperCase();
        await gate(method, name, isRequest ? input.url : String(input));
        return stub.fetch(input, init);
      },
    };
  }
  return {
    idFromName(name) {
      const id = ns.idFromName(name);
      names.set(id.toString(), String(name));
      return id;
    },
    idFromString(s) { return ns.idFromString(s); },
    newUniqueId(o) { return ns.newUniqueId(o); },
    get(id, opts) { return wrap(id, ns.get(id, opts)); },
    getByName(name) { return this.get(this.idFromName(name)); },
  };
}`;

/**
 * Starts the worker. `vars` are its settings (strings), merged over defaults that
 * point it at `origins`. Returns helpers to send requests and inspect KV.
 * `wrapKv: false` binds KV and SESSION_STATE directly (no counting, no faults), for benchmarks.
 * `sessionState: false` runs without the SESSION_STATE binding (no session data).
 * `locations: n` starts n workers from the same build, one per "location": each its own
 * isolate, all sharing the KV namespace and the Durable Objects; `edge.at(i)` sends
 * requests to location i (`edge.fetch` is location 0). `locationVars[i]` adds settings
 * to location i only.
 */
export async function startEdge({ origins = [], vars = {}, logs = false, wrapKv = true, sessionState = true, locations = 1, locationVars = [] } = {}) {
  const lines = [];
  const bindings = {
    SESSION_KEYS: newKey(),
    ASSERTION_KEYS: ASSERTION_KEY.setting,
    ADMIN_TOKEN,
    ...(origins.length ? { ORIGIN_URL: origins.map((o) => o.url).join(",") } : {}),
    ...vars,
  };
  for (const [k, v] of Object.entries(bindings)) if (v === undefined) delete bindings[k];
  const workerName = (i) => (i === 0 ? "edge-session" : `edge-session-${i}`);
  const edgeWorker = (i) => {
    const own = { ...bindings, ...(locationVars[i] ?? {}) };
    for (const [k, v] of Object.entries(own)) if (v === undefined) delete own[k];
    const wrapped = {};
    const direct = {};
    if (wrapKv) wrapped.SESSIONS = { scriptName: "kv-wrapper", bindings: { LOCATION: i } };
    else direct.kvNamespaces = { SESSIONS: "sessions" };
    if (sessionState) {
      // location 0 owns the class; every other location reaches the same objects
      if (wrapKv) wrapped.SESSION_STATE = { scriptName: "do-wrapper", bindings: { LOCATION: i } };
      else direct.durableObjects = { SESSION_STATE: { className: "SessionState", useSQLite: true, ...(i ? { scriptName: "edge-session" } : {}) } };
    }
    return {
      name: workerName(i),
      scriptPath: join(BUILD, "index.js"),
      modulesRoot: BUILD,
      modules: true,
      modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
      compatibilityDate: "2026-05-01",
      bindings: own,
      ...direct,
      ...(Object.keys(wrapped).length ? { wrappedBindings: wrapped } : {}),
    };
  };
  const mf = new Miniflare({
    log: undefined,
    handleRuntimeStdio(stdout, stderr) {
      for (const stream of [stdout, stderr]) {
        eachLine(stream, (line) => {
          lines.push(line);
          if (logs) console.log(line);
        });
      }
    },
    workers: [
      ...Array.from({ length: locations }, (_, i) => edgeWorker(i)),
      {
        name: "kv-wrapper",
        modules: [{ type: "ESModule", path: "kv-wrapper.mjs", contents: KV_WRAPPER }],
        kvNamespaces: { INNER: "sessions" },
      },
      ...(sessionState && wrapKv
        ? [
            {
              name: "do-wrapper",
              modules: [{ type: "ESModule", path: "do-wrapper.mjs", contents: DO_WRAPPER }],
              kvNamespaces: { STATE: "sessions" },
              durableObjects: { INNER: { className: "SessionState", scriptName: "edge-session", useSQLite: true } },
            },
          ]
        : []),
    ],
  });
  // The worker's own address on 127.0.0.1 (a random port), for clients that must reach
  // it over the network, such as an origin fetching /.edge-session/jwks.json.
  const url = (await mf.ready).toString().replace(/\/$/, "");
  const inner = (await mf.getBindings("kv-wrapper")).INNER;

  /** Sends a request to location i; never follows redirects. */
  const fetchAt = (i, path, init = {}) => {
    const target = new URL(path, "http://127.0.0.1:8787").toString();
    if (i === 0) return mf.dispatchFetch(target, { redirect: "manual", ...init });
    // Miniflare's entry worker routes a request carrying MF-Route-Override to that
    // worker, and removes the header before the worker sees it.
    const headers = new Headers(init.headers ?? {});
    headers.set("MF-Route-Override", workerName(i));
    return mf.dispatchFetch(target, { redirect: "manual", ...init, headers });
  };
  const locationHandles = Array.from({ length: locations }, (_, i) => ({
    index: i,
    name: workerName(i),
    fetch: (path, init) => fetchAt(i, path, init),
    /** The value location i reads for KV key `key` now (under "lag:<ms>", maybe an older one). */
    async kvView(key) {
      const lag = lagOf(await inner.get("__fault__"));
      if (lag) {
        const h = await inner.get(`__hist:${key}`);
        if (h !== null) {
          const v = visibleValue(JSON.parse(h), String(i), lag, Date.now());
          if (!v.latest) return v.value;
        }
      }
      return inner.get(key);
    },
    /** The session record location i reads from KV now (null when it sees none). */
    async viewRecord(sessionId) {
      const v = await this.kvView(`s:${sha256hex(sessionId)}`);
      return v === null ? null : JSON.parse(v);
    },
  }));

  const doOpsPage = async (cursor) => inner.list({ prefix: "__doop__:", cursor });
  const edge = {
    mf,
    bindings,
    url,
    locations,
    /** Raw request through the worker (location 0); never follows redirects. */
    async fetch(path, init = {}) {
      return fetchAt(0, path, init);
    },
    /** Location i: {index, name, fetch(path, init), kvView(key), viewRecord(sessionId)}. */
    at(i) {
      if (!locationHandles[i]) throw new Error(`no location ${i}: start with locations: ${i + 1} or more`);
      return locationHandles[i];
    },
    /** Every KV key the worker wrote (bookkeeping keys excluded), with its expiration (unix s). */
    async entries(prefix = "") {
      const out = [];
      let cursor;
      do {
        const page = await inner.list({ prefix, cursor });
        out.push(...page.keys.filter((k) => !k.name.startsWith("__")));
        cursor = page.list_complete ? undefined : page.cursor;
      } while (cursor);
      return out;
    },
    async keys(prefix = "") {
      return (await edge.entries(prefix)).map((k) => k.name);
    },
    async getRecord(sessionId) {
      const v = await inner.get(`s:${sha256hex(sessionId)}`);
      return v === null ? null : JSON.parse(v);
    },
    /** Removes a session's record from KV behind the worker's back (as if it expired). */
    async dropRecord(sessionId) {
      await inner.delete(`s:${sha256hex(sessionId)}`);
    },
    async seedSession(sessionId, record) {
      const hash = sha256hex(sessionId);
      await inner.put(`s:${hash}`, JSON.stringify(record), { expirationTtl: 3600 });
      await inner.put(userIndexKey(record.user, hash), "", { expirationTtl: 3600 });
    },
    /** KV operations the worker made since the last reset: [{kind, key}]. */
    async ops() {
      const page = await inner.list({ prefix: "__op__:" });
      const values = await Promise.all(page.keys.map((k) => inner.get(k.name)));
      return values.map((v) => ({ kind: v.split(" ")[0], key: v.slice(v.indexOf(" ") + 1) }));
    },
    async resetOps() {
      const page = await inner.list({ prefix: "__op__:" });
      await Promise.all(page.keys.map((k) => inner.delete(k.name)));
    },
    /** KV operations since the last reset, every page of them (ops() reads one page of 1000):
     *  [{kind, key, at}], `at` when the wrapper saw the operation (ms since the epoch). */
    async allOps() {
      const out = [];
      let cursor;
      do {
        const page = await inner.list({ prefix: "__op__:", cursor });
        const values = await Promise.all(page.keys.map((k) => inner.get(k.name)));
        values.forEach((v, i) => {
          if (v !== null) out.push({ kind: v.split(" ")[0], key: v.slice(v.indexOf(" ") + 1), at: Number(page.keys[i].name.split(":")[1]) });
        });
        cursor = page.list_complete ? undefined : page.cursor;
      } while (cursor);
      return out;
    },
    /**
     * Sets the KV fault: "down", "writes", "reads", "ratelimit", "slow:<ms>", "lag:<ms>"
     * (writes reach the other locations <ms> late), comma-separated; "" or null for none.
     */
    async kvFault(fault) {
      if (fault) await inner.put("__fault__", fault);
      else await inner.delete("__fault__");
    },
    /** Makes every KV operation fail (true), only writes and deletes ("writes"), or none (false). */
    async kvDown(down) {
      if (down) await inner.put("__fault__", down === "writes" ? "writes" : "down");
      else await inner.delete("__fault__");
    },
    /**
     * Sets the SESSION_STATE fault: "down" (every stub.fetch throws), "writes" (methods other
     * than GET and HEAD throw), "reads" (GET and HEAD throw), "slow:<ms>", comma-separated;
     * "" or null for none. Applies to every location.
     */
    async doFault(fault) {
      if (fault) await inner.put("__dofault__", fault);
      else await inner.delete("__dofault__");
    },
    /** Durable Object calls (stub.fetch) since the last reset: [{loc, method, name, path}], oldest first. */
    async doOps() {
      const out = [];
      let cursor;
      do {
        const page = await doOpsPage(cursor);
        const values = await Promise.all(page.keys.map((k) => inner.get(k.name)));
        out.push(...values.filter((v) => v !== null).map((v) => JSON.parse(v)));
        cursor = page.list_complete ? undefined : page.cursor;
      } while (cursor);
      return out;
    },
    async resetDoOps() {
      let cursor;
      do {
        const page = await doOpsPage(cursor);
        await Promise.all(page.keys.map((k) => inner.delete(k.name)));
        cursor = page.list_complete ? undefined : page.cursor;
      } while (cursor);
    },
    /** Log lines the worker printed (JSON ones parsed). */
    logs() {
      return lines.flatMap((l) => {
        const at = l.indexOf("{");
        if (at < 0) return [];
        try {
          return [JSON.parse(l.slice(at))];
        } catch {
          return [];
        }
      });
    },
    rawLogs: () => lines.join("\n"),
    async close() {
      await mf.dispose();
    },
  };
  return edge;
}

/** Runs `fn` with a worker started by `startEdge(options)`, and closes it whatever happens. */
export async function withEdge(options, fn) {
  const edge = await startEdge(options);
  try {
    return await fn(edge);
  } finally {
    await edge.close();
  }
}

export async function startOrigins(names, opts = {}) {
  return Promise.all(names.map((name) => startOrigin({ name, lookupToken: LOOKUP_TOKEN, ...opts })));
}

/** A minimal cookie jar for one browser. */
export class Jar {
  constructor() {
    this.cookies = new Map();
  }
  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }
  take(response) {
    for (const c of response.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === "" || /max-age=0/i.test(c)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return response;
  }
  get(name) {
    return this.cookies.get(name);
  }
  set(name, value) {
    this.cookies.set(name, value);
  }
  delete(name) {
    this.cookies.delete(name);
  }
}

/** Sends a request with the jar's cookies and stores what comes back. */
export async function browse(edge, jar, path, init = {}) {
  const headers = new Headers(init.headers || {});
  if (jar.cookies.size) headers.set("cookie", jar.header());
  return jar.take(await edge.fetch(path, { ...init, headers }));
}

/**
 * Logs `user` in through the demo origin's login form (either mode: in edge mode
 * the worker sets the session cookie, in attach mode the origin does).
 */
export async function login(edge, jar, user = "alice", password = { alice: "wonderland", bob: "builder" }[user]) {
  const res = await browse(edge, jar, "/login", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ username: user, password }).toString(),
  });
  await res.arrayBuffer();
  if (res.status !== 303) throw new Error(`login failed: ${res.status}`);
  if (!jar.get("sid")) throw new Error("login set no session cookie");
  return res;
}

/** Runs `fn` while the demo origin's lookup endpoint behaves like `behaviour`, then restores it. */
export async function lookupBehaves(origin, behaviour, fn) {
  origin.control.lookupBehaviour = behaviour;
  try {
    return await fn();
  } finally {
    origin.control.lookupBehaviour = "normal";
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Retries `check` (an async function that throws while its condition does not
 * hold) until it passes or `ms` have passed: for effects that happen after the
 * response, such as writes in ctx.waitUntil or log lines on their way.
 */
export async function eventually(check, ms = 3000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await sleep(25);
    }
  }
}
