// Shared end-to-end harness: the real worker (build/index.js + wasm, built once by
// `make test`) in workerd through Miniflare, in front of demo origins on 127.0.0.1.
//
// KV goes through a small wrapper (Miniflare wrappedBindings) that lets a test
// count the worker's KV operations and make KV fail. Its state lives in the
// inner namespace itself (keys starting with "__"), because the wrapper runs
// inside the worker's isolate where a test cannot reach it otherwise.
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

const KV_WRAPPER = `
const FAULT = "__fault__";
export default function (env) {
  const kv = env.INNER;
  async function op(kind, key) {
    const fault = await kv.get(FAULT);
    if (fault === "down" || (fault === "writes" && kind !== "get" && kind !== "list")) {
      throw new Error("injected KV failure");
    }
    // More faults, comma-separated: "reads" (get and list throw), "ratelimit" (put and
    // delete throw as KV does past one write per second per key), "slow:<ms>" (every
    // operation waits that long first).
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
  }
  return {
    async get(key, opts) { await op("get", key); return kv.get(key, opts); },
    async getWithMetadata(key, opts) { await op("get", key); return kv.getWithMetadata(key, opts); },
    async put(key, value, opts) { await op("put", key); return kv.put(key, value, opts); },
    async delete(key) { await op("delete", key); return kv.delete(key); },
    async list(opts) { await op("list", (opts && opts.prefix) || ""); return kv.list(opts); },
  };
}`;

/**
 * Starts the worker. `vars` are its settings (strings), merged over defaults that
 * point it at `origins`. Returns helpers to send requests and inspect KV.
 * `wrapKv: false` binds KV directly (no counting, no faults), for benchmarks.
 */
export async function startEdge({ origins = [], vars = {}, logs = false, wrapKv = true } = {}) {
  const lines = [];
  const bindings = {
    SESSION_KEYS: newKey(),
    ASSERTION_KEYS: ASSERTION_KEY.setting,
    ADMIN_TOKEN,
    ...(origins.length ? { ORIGIN_URL: origins.map((o) => o.url).join(",") } : {}),
    ...vars,
  };
  for (const [k, v] of Object.entries(bindings)) if (v === undefined) delete bindings[k];
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
      {
        name: "edge-session",
        scriptPath: join(BUILD, "index.js"),
        modulesRoot: BUILD,
        modules: true,
        modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
        compatibilityDate: "2026-05-01",
        bindings,
        ...(wrapKv ? { wrappedBindings: { SESSIONS: { scriptName: "kv-wrapper" } } } : { kvNamespaces: { SESSIONS: "sessions" } }),
      },
      {
        name: "kv-wrapper",
        modules: [{ type: "ESModule", path: "kv-wrapper.mjs", contents: KV_WRAPPER }],
        kvNamespaces: { INNER: "sessions" },
      },
    ],
  });
  // The worker's own address on 127.0.0.1 (a random port), for clients that must reach
  // it over the network, such as an origin fetching /.edge-session/jwks.json.
  const url = (await mf.ready).toString().replace(/\/$/, "");
  const inner = (await mf.getBindings("kv-wrapper")).INNER;

  const edge = {
    mf,
    bindings,
    url,
    /** Raw request through the worker; never follows redirects. */
    async fetch(path, init = {}) {
      return mf.dispatchFetch(new URL(path, "http://127.0.0.1:8787").toString(), { redirect: "manual", ...init });
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
    /** KV operations since the last reset, every page of them (ops() reads one page of 1000). */
    async allOps() {
      const out = [];
      let cursor;
      do {
        const page = await inner.list({ prefix: "__op__:", cursor });
        const values = await Promise.all(page.keys.map((k) => inner.get(k.name)));
        out.push(...values.filter((v) => v !== null).map((v) => ({ kind: v.split(" ")[0], key: v.slice(v.indexOf(" ") + 1) })));
        cursor = page.list_complete ? undefined : page.cursor;
      } while (cursor);
      return out;
    },
    /** Sets the KV fault: "down", "writes", "reads", "ratelimit", "slow:<ms>", comma-separated; "" or null for none. */
    async kvFault(fault) {
      if (fault) await inner.put("__fault__", fault);
      else await inner.delete("__fault__");
    },
    /** Makes every KV operation fail (true), only writes and deletes ("writes"), or none (false). */
    async kvDown(down) {
      if (down) await inner.put("__fault__", down === "writes" ? "writes" : "down");
      else await inner.delete("__fault__");
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
