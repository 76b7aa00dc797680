// `make bench`: edge-session side by side with its floors and a JS peer, in one run.
//
// Cases, all against the same demo origin (www/origin.mjs) on 127.0.0.1:
//   origin directly                       the floor of the floor: no worker at all
//   JS passthrough                        bench/workers/passthrough.mjs: what any Worker costs
//                                         (also with the ticket path's request: its path and cookies)
//   JS passthrough reading KV once        bench/workers/kv-read.mjs: the floor of the KV path and the peer
//   workers-rs passthrough                bench/passthrough-rs: what any Rust/wasm Worker costs
//   edge-session: public, ticket, KV, lookup paths, and the ticket path with 1 KB of session data
//   JS peer                               bench/workers/peer.mjs: Hono + @hono/session on Workers KV,
//                                         without and with the same 1 KB of session data
// Every case is served by a worker in its own workerd (Miniflare) on a real port
// (cases with the same settings by twins: see workerOptions), and wrk loads
// each case in turn. Rounds alternate over the cases (and rotate where a round
// starts), so that a noisy neighbour on this machine slows every case alike
// rather than one of them; the report takes the median over rounds and gives
// ratios, which travel between machines better than absolute numbers.
//
// Phases, each a set of alternating rounds over its cases:
//   - local KV (Miniflare's, sub-millisecond), wrk -c16: every case;
//   - local KV at low concurrency (c=1, c=4): added latency over the JS passthrough;
//   - the KV latency model (bench/workers/kv-latency.mjs in front of every KV binding
//     alike) at each hit ratio h, -c16; and at h = 0.88, c=1 and c=4 too.
// Every wrk run also measures the CPU time (utime + stime) of the one workerd process
// serving its case: cases run one at a time, so that delta is the case's own cost.
//
// Also measured: cold start, code size (and the deploy bundle, as wrangler reports it), and
// KV operations per 1000 requests of an active user; and checked: the Durable Object and KV
// calls of the data path.
// Writes bench/RESULTS.md and bench/chart.svg.
//
// Settings (environment; the defaults take about 14 minutes on 2 cores, BENCH_QUICK=1
// about 2 minutes, for development only):
//   BENCH_SECONDS, BENCH_ROUNDS        local KV at -c16, per case per round (6 s, 3 rounds)
//   BENCH_MODEL_SECONDS, _ROUNDS       the latency model at -c16 (5 s, 2 rounds)
//   BENCH_LOW_SECONDS, _ROUNDS         low concurrency (4 s, 2 rounds)
//   BENCH_CONNECTIONS                  16
//   BENCH_LOW_CONNECTIONS              "1,4" (empty: no low-concurrency runs)
//   BENCH_HIT_RATIOS                   "0.99,0.88,0.5" (empty: no latency model)
//   BENCH_LOW_HIT                      0.88: the h of the low-concurrency model runs (empty: none)
//   BENCH_SEED                         the latency model's PRNG seed
//   BENCH_WARMUP_SECONDS, BENCH_COLD_REPS
//   BENCH_EDGE_BUILD                   edge-session's build directory (build/)
//   BENCH_CASES                        only these cases, a ratio to the first, no report: for one
//                                      change at a time (with BENCH_CASES_HIT=h: under the model)
import { build } from "esbuild";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import { gzipSync } from "node:zlib";
import { startOrigin } from "../www/origin.mjs";
import { Jar, newAssertionKey } from "../tests/harness.mjs";
import { CLK_TCK, barChart, killChildren, median, quantile, startWorker, wrk } from "./helpers.mjs";
import { MODEL, makeModel } from "./workers/kv-latency.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const BENCH = join(ROOT, "bench");
const OUT = join(ROOT, ".tmp", "bench");
const EDGE_BUILD = resolve(ROOT, process.env.BENCH_EDGE_BUILD || "build");
// An older build of edge-session benched beside EDGE_BUILD in the same run (its ticket, data,
// guest and KV cases, "edge-session before"), for the targets' before-and-after figures.
const BEFORE_BUILD = process.env.BENCH_BEFORE_BUILD ? resolve(ROOT, process.env.BENCH_BEFORE_BUILD) : undefined;
/** The cases of EDGE_BUILD that BEFORE_BUILD is benched in too: id → its id for BEFORE_BUILD. */
const before = (id) => (BEFORE_BUILD && ["edgeTicket", "edgeData", "edgeGuest", "edgeKv"].includes(id) ? `${id}Before` : id);
const RS_BUILD = join(BENCH, "passthrough-rs", "build");

const QUICK = process.env.BENCH_QUICK === "1";
const setting = (name, full, quick) => {
  const v = Number(process.env[name] || (QUICK ? quick : full));
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a whole number >= 1`);
  return v;
};
/** A comma-separated list of numbers from the environment ("" is none). */
const numbers = (name, fallback, check) => {
  const text = process.env[name] ?? fallback;
  const list = text.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  for (const n of list) if (!check(n)) throw new Error(`${name}: ${text} is not a list of valid values`);
  return list;
};
const SECONDS = setting("BENCH_SECONDS", 6, 1);
const ROUNDS = setting("BENCH_ROUNDS", 3, 1);
const MODEL_SECONDS = setting("BENCH_MODEL_SECONDS", 5, 1);
const MODEL_ROUNDS = setting("BENCH_MODEL_ROUNDS", 2, 1);
const LOW_SECONDS = setting("BENCH_LOW_SECONDS", 4, 1);
const LOW_ROUNDS = setting("BENCH_LOW_ROUNDS", 2, 1);
const CONNECTIONS = setting("BENCH_CONNECTIONS", 16, 16);
const COLD_REPS = setting("BENCH_COLD_REPS", 3, 1);
const WARMUP_SECONDS = setting("BENCH_WARMUP_SECONDS", 2, 1); // JIT tiers, connection pools, lazily compiled wasm
const isRatio = (h) => h >= 0 && h <= 1;
const LOW_CONNECTIONS = numbers("BENCH_LOW_CONNECTIONS", "1,4", (c) => Number.isInteger(c) && c >= 1);
const HIT_RATIOS = numbers("BENCH_HIT_RATIOS", "0.99,0.88,0.5", isRatio);
const LOW_HIT = numbers("BENCH_LOW_HIT", "0.88", isRatio)[0];
const SEED = process.env.BENCH_SEED || "edge-session bench 1";
// KV-count run: an active user's 1000 requests spread over 20 minutes, replayed
// 60 times faster (20 s) with every duration setting divided by 60 too.
const KV_REQUESTS = 1000;
const KV_SPAN_MS = 20_000;
const TIME_SCALE = 60;

const PUBLIC_PATH = "/echo/public/b"; // public for edge-session and the peer
const PRIVATE_PATH = "/echo/b"; // needs a session
const GUEST_PATH = "/echo/guest/b"; // edge-session's GUEST_PATHS: a visitor's first change makes a guest session
export const LOOKUP_TOKEN = randomBytes(16).toString("hex");
const DATA_CHECK_REQUESTS = 200; // the data-path check, before the throughput runs

// The session data of the data-path cases: about 1 KB of compact JSON, a small shop's
// session (preferences and a cart). The origin sets it once, through the echo route's
// `set_header` (www/origin.mjs): `X-Edge-Session-Data: <this>` on the response of a
// first request after the login. edge-session keeps it in the session's Durable Object
// (SESSION_STATE) and the peer in its KV session record; both forward it to the origin
// in `X-Session-Data` on every request after that.
const SESSION_DATA = (() => {
  const cart = [];
  const data = { locale: "en-GB", currency: "EUR", theme: "dark", consent: { analytics: false, ads: false }, cart };
  for (let i = 1; JSON.stringify(data).length < 1000; i++) {
    cart.push({ sku: `SKU-${String(1000 + i * 7)}`, qty: 1 + (i % 3), price: 499 + i * 100, gift: i % 4 === 0 });
  }
  return data;
})();
const SESSION_DATA_BYTES = JSON.stringify(SESSION_DATA).length;
const SET_DATA_PATH = `${PRIVATE_PATH}?set_header=${encodeURIComponent(`X-Edge-Session-Data: ${JSON.stringify(SESSION_DATA)}`)}`;
const SET_GUEST_DATA_PATH = `${GUEST_PATH}?set_header=${encodeURIComponent(`X-Edge-Session-Data: ${JSON.stringify(SESSION_DATA)}`)}`;
// edge-session's binding for session data (README.md, "Session data"): one SQLite-backed
// Durable Object per session, class SessionState exported by build/index.js.
const SESSION_STATE = { SESSION_STATE: { className: "SessionState", useSQLite: true } };
const sessionKeys = () => `k1:${randomBytes(32).toString("base64")}`;

const log = (...args) => console.log("[bench]", ...args);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Everything started here, closed in reverse order however the run ends.
const open = [];
async function closeAll() {
  killChildren();
  while (open.length) await open.pop()().catch((e) => console.error("[bench] close:", e.message));
}
function started(resource) {
  open.push(resource.close);
  return resource;
}
/** Closes one resource opened with started(), before the end of the run. */
async function stop(resource) {
  const at = open.indexOf(resource.close);
  if (at >= 0) open.splice(at, 1);
  await resource.close();
}
// Run as a program (`node bench/run.mjs`), not imported: bench/profile.mjs imports the
// workers and cases below and runs none of this.
const IS_MAIN = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (IS_MAIN) {
  for (const sig of ["SIGINT", "SIGTERM"]) {
    process.on(sig, async () => {
      console.error(`[bench] ${sig}: stopping`);
      await closeAll();
      process.exit(130);
    });
  }
}

// ------------------------------------------------------------------ workers

const wasmWorker = (dir, bindings) => ({
  scriptPath: join(dir, "index.js"),
  modulesRoot: dir,
  modules: true,
  modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
  bindings,
});
const jsWorker = (file, bindings) => ({ scriptPath: file, modules: true, bindings });

/**
 * Bundles a JS worker into one file, as wrangler would (minified: what one would
 * deploy): an ES module to run, or a classic script ("iife") for the cold-start probe.
 */
export async function bundle(entry, format) {
  const outfile = join(OUT, entry.replace(/\.mjs$/, format === "esm" ? ".mjs" : ".iife.js"));
  await build({
    entryPoints: [join(BENCH, "workers", entry)],
    bundle: true,
    format,
    globalName: format === "iife" ? "worker" : undefined,
    minify: true,
    platform: "neutral",
    mainFields: ["module", "main"],
    conditions: ["workerd", "worker", "browser"],
    outfile,
    logLevel: "warning",
  });
  return outfile;
}

/** The workers that bind no KV, the only ones: the same workers serve every KV phase
 *  (startWorkers). */
const PASSTHROUGHS = new Set(["jsPassthrough", "jsPassthroughTicket", "jsTicketWork", "rsPassthrough"]);

/** Whether the worker `id` of workerOptions needs the SESSIONS namespace. */
export const usesKv = (id) => !PASSTHROUGHS.has(id);

/** The workers of the bench, as functions of the origin: name → Miniflare worker options.
 *  Each case under load has a workerd of its own (twins of one worker where cases share its
 *  settings): a workerd serving two cases back to back gets no idle time between them, and
 *  one under load without a pause grows slower as it goes (its p99 went from about 35 to
 *  about 100 ms over 30 s of continuous wrk, JS passthrough and edge-session alike, and came
 *  back after a pause), so workers that served more cases than others measured slower. */
export function workerOptions(origin, peerFile) {
  const ORIGIN_URL = origin.url;
  // Every edge-session worker has its SESSION_STATE binding, as deployed with session data on.
  const edge = (vars, build = EDGE_BUILD) => ({
    ...wasmWorker(build, { SESSION_KEYS: sessionKeys(), ASSERTION_KEYS: newAssertionKey().setting, ORIGIN_URL, PUBLIC_PATHS: "/login,/echo/public/*", GUEST_PATHS: "/echo/guest/*", ...vars }),
    durableObjects: SESSION_STATE,
  });
  const peer = (vars) => jsWorker(peerFile, { ORIGIN_URL, AUTH_SECRET: randomBytes(32).toString("hex"), ...vars });
  const STEADY = { TICKET_TTL: "1h", TOUCH_INTERVAL: "1h" };
  const PEER_TIMEOUTS = { ABSOLUTE_SECONDS: String(8 * 3600), IDLE_SECONDS: String(30 * 60) };
  return {
    jsPassthrough: () => jsWorker(join(BENCH, "workers", "passthrough.mjs"), { ORIGIN_URL }),
    jsPassthroughTicket: () => jsWorker(join(BENCH, "workers", "passthrough.mjs"), { ORIGIN_URL }),
    jsTicketWork: () => jsWorker(join(BENCH, "workers", "ticket-work.mjs"), { ORIGIN_URL }),
    jsKvRead: () => jsWorker(join(BENCH, "workers", "kv-read.mjs"), { ORIGIN_URL }),
    rsPassthrough: () => wasmWorker(RS_BUILD, { ORIGIN_URL }),
    // Ticket trusted and no last-seen write due for the whole run: the steady state between KV
    // checks. The public, data and guest paths' workers are its twins.
    edge: () => edge(STEADY),
    edgePublic: () => edge(STEADY),
    edgeData: () => edge(STEADY),
    edgeGuest: () => edge(STEADY),
    // The ticket is always too old: every request reads KV (and gets a fresh ticket).
    edgeKv: () => edge({ TICKET_TTL: "1ms", TOUCH_INTERVAL: "1h" }),
    // The same, of BENCH_BEFORE_BUILD.
    edgeBefore: () => edge(STEADY, BEFORE_BUILD),
    edgeDataBefore: () => edge(STEADY, BEFORE_BUILD),
    edgeGuestBefore: () => edge(STEADY, BEFORE_BUILD),
    edgeKvBefore: () => edge({ TICKET_TTL: "1ms", TOUCH_INTERVAL: "1h" }, BEFORE_BUILD),
    // Attach mode: KV never knows the session, the origin's lookup endpoint does.
    edgeLookup: () => edge({ LOOKUP_URL: `${ORIGIN_URL}/api/session-lookup`, LOOKUP_TOKEN }),
    // The peer, and its twin for its data path.
    peer: () => peer(PEER_TIMEOUTS),
    peerData: () => peer(PEER_TIMEOUTS),
    // KV-count run: the default durations (TICKET_TTL 60s, TOUCH_INTERVAL 60s, 30m idle, 8h absolute) / 60.
    edgeCounted: () => edge({ TICKET_TTL: "1s", TOUCH_INTERVAL: "1s", IDLE_TIMEOUT: "30s", ABSOLUTE_TIMEOUT: "8m" }),
    peerCounted: () => peer({ ABSOLUTE_SECONDS: String((8 * 3600) / TIME_SCALE), IDLE_SECONDS: String((30 * 60) / TIME_SCALE) }),
  };
}

/** Sends a request with the jar's cookies (no redirects followed) and keeps what comes back. */
async function browse(jar, url, init = {}) {
  const headers = new Headers(init.headers ?? {});
  if (jar.cookies.size) headers.set("cookie", jar.header());
  const res = await fetch(url, { redirect: "manual", ...init, headers });
  jar.take(res);
  return res;
}

/** Logs alice in through the worker at `base` (the origin's edge-mode login form); returns the jar. */
async function login(base) {
  const jar = new Jar();
  const res = await browse(jar, `${base}/login`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "username=alice&password=wonderland",
  });
  await res.arrayBuffer();
  if (res.status !== 303 || jar.cookies.size === 0) throw new Error(`login at ${base} failed: ${res.status}, cookies: ${jar.header()}`);
  return jar;
}

/**
 * The origin sets the session's data: one request whose response carries
 * `X-Edge-Session-Data: <SESSION_DATA>` (the echo route's set_header). Checks that the
 * worker answered 200 and did not pass the signal header on to the client.
 */
async function setSessionData(base, jar) {
  // The peer writes a new session to KV after the login's response (waitUntil), and under the
  // latency model that write may take up to a second; until it lands the peer answers 401 (and
  // clears its cookie, so these polls leave the jar alone).
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${base}${PRIVATE_PATH}`, { headers: { cookie: jar.header() }, redirect: "manual" });
    await res.arrayBuffer();
    if (res.status !== 401 || attempt >= 40) break;
    await sleep(100);
  }
  const res = await browse(jar, `${base}${SET_DATA_PATH}`);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`setting session data at ${base}: ${res.status} ${text.slice(0, 300)}`);
  if (res.headers.has("x-edge-session-data")) throw new Error(`setting session data at ${base}: X-Edge-Session-Data reached the client`);
  return jar;
}

/**
 * A new guest session at `base`: a visitor's request to a guest path whose response stores
 * the session data (the echo route's `set_header`); the worker answers with the guest's
 * cookies. Returns the jar.
 */
async function newGuest(base) {
  const jar = new Jar();
  const res = await browse(jar, `${base}${SET_GUEST_DATA_PATH}`);
  const text = await res.text();
  if (res.status !== 200 || !jar.cookies.has("sid")) throw new Error(`making a guest at ${base}: ${res.status}, cookies ${jar.header()}: ${text.slice(0, 200)}`);
  if (res.headers.has("x-edge-session-data")) throw new Error(`making a guest at ${base}: X-Edge-Session-Data reached the client`);
  return jar;
}

/** What the demo origin's echo route says it received: the request headers (lower-case names). */
function echoedHeaders(text) {
  try {
    return JSON.parse(text).headers ?? {};
  } catch {
    return {}; // not the echo route: caught by the status check
  }
}

/**
 * The session-data problems of one echoed request: `data` undefined checks nothing,
 * null expects no X-Session-Data, an object expects X-Session-Data to be that JSON
 * (and `version`, when given, X-Session-Data-Version).
 */
function dataProblems(seen, data, version) {
  if (data === undefined) return [];
  const raw = seen["x-session-data"];
  if (data === null) return raw === undefined ? [] : [`origin saw X-Session-Data (${raw.length} bytes), expected none`];
  if (raw === undefined) return ["origin saw no X-Session-Data"];
  let value;
  try {
    value = JSON.parse(raw);
  } catch {
    return [`origin saw X-Session-Data that is not JSON: ${raw.slice(0, 80)}`];
  }
  const problems = [];
  if (!isDeepStrictEqual(value, data)) problems.push(`origin saw X-Session-Data ${raw.slice(0, 80)}..., not the ${SESSION_DATA_BYTES} bytes set`);
  if (version !== undefined && seen["x-session-data-version"] !== String(version)) {
    problems.push(`origin saw X-Session-Data-Version ${JSON.stringify(seen["x-session-data-version"])}, expected "${version}"`);
  }
  return problems;
}

// ------------------------------------------------------------------ cases

/**
 * Checks one request as wrk will send it, before measuring: a case that answers
 * anything but the expected 200 (a wrong cookie gives 401), from another tier, or
 * whose request reaches the origin with the wrong user or session data, stops the bench.
 */
export async function sample(c, headers) {
  const res = await fetch(c.url, { headers, redirect: "manual" });
  const text = await res.text();
  const timing = /desc="([^"]*)"/.exec(res.headers.get("server-timing") ?? "")?.[1];
  const seen = echoedHeaders(text);
  const user = seen["x-session-user"];
  const problems = [];
  if (res.status !== 200) problems.push(`status ${res.status}`);
  if (c.source !== undefined && timing !== c.source) problems.push(`served from "${timing}", expected "${c.source}"`);
  if (c.user !== undefined && user !== c.user) problems.push(`origin saw user ${JSON.stringify(user)}, expected ${JSON.stringify(c.user)}`);
  if (c.guest && (user !== undefined || seen["x-session-assertion"] === undefined)) problems.push("a guest's request reached the origin with a user, or without an assertion");
  problems.push(...dataProblems(seen, c.data, c.dataVersion));
  if (problems.length) throw new Error(`case "${c.label}": ${problems.join("; ")}\n${text.slice(0, 300)}`);
}

/** The headers wrk sends for a jar's cookies. */
const cookieOf = (jar) => ({ cookie: jar.header() });

/**
 * The measured cases, on the workers `w`. `prepare(round, seconds)` returns what wrk sends
 * in that run (headers, Lua script and its arguments); `pid` is the workerd serving the case.
 */
export function makeCases(origin, w) {
  // The ticket path's own request, for the JS Workers given it: the cookies of a fresh login.
  const ticketRequest = async () => ({ headers: cookieOf(await login(w.edge.url)) });
  return [
    { id: "origin", label: "origin directly", url: `${origin.url}${PUBLIC_PATH}`, prepare: async () => ({}) },
    { id: "jsPassthrough", label: "JS passthrough", pid: w.jsPassthrough.pid, url: `${w.jsPassthrough.url}${PUBLIC_PATH}`, prepare: async () => ({}) },
    // The ticket path's own request (its path and the cookies of a login, which the
    // passthrough forwards and the origin echoes): what that request costs any Worker.
    {
      id: "jsPassthroughTicket",
      label: "JS passthrough, the ticket path's request",
      pid: w.jsPassthroughTicket.pid,
      url: `${w.jsPassthroughTicket.url}${PRIVATE_PATH}`,
      prepare: ticketRequest,
    },
    // The same request, given what edge-session's ticket path asks of the platform (its header
    // edits, the cache bypassed, the answer looked at and passed on with three headers), in
    // plain JS with no decision: what the contract's work costs any Worker.
    {
      id: "jsTicketWork",
      label: "JS Worker doing the ticket path's platform work",
      pid: w.jsTicketWork.pid,
      url: `${w.jsTicketWork.url}${PRIVATE_PATH}`,
      source: "ticket",
      user: "alice",
      prepare: ticketRequest,
    },
    // One KV read of a session-sized record per request, then the passthrough (no cookie):
    // what the KV path and the peer both pay before their own work.
    {
      id: "jsKvRead",
      label: "JS passthrough reading KV once",
      pid: w.jsKvRead.pid,
      url: `${w.jsKvRead.url}${PRIVATE_PATH}`,
      prepare: async () => ({}),
    },
    { id: "rsPassthrough", label: "workers-rs passthrough", pid: w.rsPassthrough.pid, url: `${w.rsPassthrough.url}${PUBLIC_PATH}`, prepare: async () => ({}) },
    { id: "edgePublic", label: "edge-session, public path", pid: w.edgePublic.pid, url: `${w.edgePublic.url}${PUBLIC_PATH}`, source: "public", prepare: async () => ({}) },
    ...edgeCases([w.edge, w.edgeData, w.edgeGuest, w.edgeKv], "", "edge-session"),
    ...(w.edgeBefore ? edgeCases([w.edgeBefore, w.edgeDataBefore, w.edgeGuestBefore, w.edgeKvBefore], "Before", "edge-session before") : []),
    {
      id: "edgeLookup",
      label: "edge-session, lookup path",
      pid: w.edgeLookup.pid,
      url: `${w.edgeLookup.url}${PRIVATE_PATH}`,
      source: "lookup",
      user: "alice",
      // Fresh session IDs for every request (bench/lookup.lua), planted at the origin
      // beforehand: 10000 per second of the run, far more than this path can serve,
      // so wrk never runs out (if it did, the 401s would fail the bench).
      prepare: async (round, seconds) => {
        const prefix = `r${round}${randomBytes(16).toString("hex")}-`;
        origin.sessions.clear();
        const now = Math.floor(Date.now() / 1000);
        const record = { user: "alice", claims: { name: "Alice", role: "admin" }, created: now, last_seen: now };
        for (let n = 0; n <= seconds * 10_000; n++) origin.sessions.set(`${prefix}${n}`, record);
        return { sampleHeaders: { cookie: `sid=${prefix}0` }, script: join(BENCH, "lookup.lua"), scriptArgs: [prefix] };
      },
    },
    {
      id: "peer",
      label: "JS peer (Hono + @hono/session, KV)",
      pid: w.peer.pid,
      url: `${w.peer.url}${PRIVATE_PATH}`,
      user: "alice",
      data: null,
      prepare: async () => ({ headers: cookieOf(await login(w.peer.url)) }),
    },
    {
      id: "peerData",
      label: "JS peer, 1 KB data",
      pid: w.peerData.pid,
      url: `${w.peerData.url}${PRIVATE_PATH}`,
      user: "alice",
      data: SESSION_DATA,
      prepare: async () => ({ headers: cookieOf(await setSessionData(w.peerData.url, await login(w.peerData.url))) }),
    },
  ];
}

/** The ticket, data, guest and KV cases of one edge-session build, each served by its own
 *  worker of the four (the first three alike); ids end in `suffix`, labels start with `name`. */
function edgeCases([edge, dataWorker, guestWorker, kvWorker], suffix, name) {
  return [
    {
      id: `edgeTicket${suffix}`,
      label: `${name}, ticket path`,
      pid: edge.pid,
      url: `${edge.url}${PRIVATE_PATH}`,
      source: "ticket",
      user: "alice",
      data: null,
      // A fresh login every round: the ticket is young and no write is due.
      prepare: async () => ({ headers: cookieOf(await login(edge.url)) }),
    },
    {
      id: `edgeData${suffix}`,
      label: `${name}, ticket path, 1 KB data`,
      pid: dataWorker.pid,
      url: `${dataWorker.url}${PRIVATE_PATH}`,
      source: "ticket",
      user: "alice",
      data: SESSION_DATA,
      dataVersion: 1,
      // A fresh login and the data set once (version 1): then the ticket path, the data
      // from the isolate's cache (checked before the runs: one Durable Object read, then none).
      prepare: async () => ({ headers: cookieOf(await setSessionData(dataWorker.url, await login(dataWorker.url))) }),
    },
    {
      id: `edgeGuest${suffix}`,
      label: `${name}, guest, ticket path, 1 KB data`,
      pid: guestWorker.pid,
      url: `${guestWorker.url}${GUEST_PATH}`,
      source: "ticket",
      guest: true,
      data: SESSION_DATA,
      dataVersion: 1,
      // A new guest every round: a visitor's request whose response stores the data makes
      // the guest session (no login, no KV write); then the ticket path, as for a user's data.
      prepare: async () => ({ headers: cookieOf(await newGuest(guestWorker.url)) }),
    },
    {
      id: `edgeKv${suffix}`,
      label: `${name}, KV path`,
      pid: kvWorker.pid,
      url: `${kvWorker.url}${PRIVATE_PATH}`,
      source: "kv",
      user: "alice",
      data: null,
      prepare: async () => ({ headers: cookieOf(await login(kvWorker.url)) }),
    },
  ];
}

/**
 * The case prepared for a run (`c.prepare`), once one request of it is answered as the case
 * expects. The peer writes a new session (and its data) to KV after answering (waitUntil),
 * and under the latency model a write may take up to a second: allow it a few.
 */
export async function prepared(c, round, seconds) {
  const plan = await c.prepare(round, seconds);
  for (let attempt = 0; ; attempt++) {
    try {
      await sample(c, plan.sampleHeaders ?? plan.headers ?? {});
      return plan;
    } catch (e) {
      if (attempt >= 40) throw e;
      await sleep(100);
    }
  }
}

/**
 * One measured run of one case: wrk with `connections` for `seconds`, and the CPU time
 * of the case's workerd over that run (`cpuMs`; the origin's case has none).
 */
async function measure(c, round, seconds, connections) {
  const plan = await prepared(c, round, seconds);
  const r = await wrk(c.url, { seconds, connections, headers: plan.headers, script: plan.script, scriptArgs: plan.scriptArgs, pid: c.pid });
  if (r.bad || r.socketErrors || r.requests === 0) {
    throw new Error(`case "${c.label}", round ${round}, c=${connections}: ${r.requests} requests, ${r.bad} not 2xx/3xx, ${r.socketErrors} socket errors`);
  }
  return r;
}

// ------------------------------------------------------------------ phases

// The cases of each kind of phase (ids of makeCases).
const BEFORE_CASES = BEFORE_BUILD ? ["edgeTicketBefore", "edgeDataBefore", "edgeGuestBefore", "edgeKvBefore"] : [];
const ALL_CASES = ["origin", "jsPassthrough", "jsPassthroughTicket", "jsTicketWork", "jsKvRead", "rsPassthrough", "edgePublic", "edgeTicket", "edgeData", "edgeGuest", "edgeKv", "edgeLookup", "peer", "peerData", ...BEFORE_CASES];
const LOW_CASES = ["jsPassthrough", "rsPassthrough", "edgePublic", "edgeTicket", "edgeData", "edgeKv", "edgeLookup", "peer", "peerData"];
const MODEL_CASES = ["jsPassthrough", "jsTicketWork", "edgeTicket", "edgeData", "edgeKv", "edgeLookup", "peer", "peerData", ...BEFORE_CASES.filter((id) => id === "edgeTicketBefore")];

const phaseKey = (kv, connections) => `${kv === "local" ? "local" : `h${kv}`}/c${connections}`;
const kvLabel = (kv) => (kv === "local" ? "local KV" : `h = ${kv}`);

/**
 * The phases of a full run, in order: local KV at -c16, then at low concurrency; then
 * for each hit ratio of the latency model -c16, and at BENCH_LOW_HIT the low
 * concurrencies too. Phases of one `kv` run on the same workers, one after the other.
 */
function planPhases() {
  const phases = [];
  const add = (kv, connections, rounds, seconds, cases) => {
    const key = phaseKey(kv, connections);
    if (phases.some((p) => p.key === key)) throw new Error(`BENCH_LOW_CONNECTIONS must not repeat or include BENCH_CONNECTIONS (${CONNECTIONS})`);
    phases.push({ key, kv, connections, rounds, seconds, cases });
  };
  add("local", CONNECTIONS, ROUNDS, SECONDS, ALL_CASES);
  for (const c of LOW_CONNECTIONS) add("local", c, LOW_ROUNDS, LOW_SECONDS, LOW_CASES);
  const hs = [...HIT_RATIOS];
  if (LOW_HIT !== undefined && LOW_CONNECTIONS.length && !hs.includes(LOW_HIT)) hs.push(LOW_HIT);
  for (const h of hs) {
    if (HIT_RATIOS.includes(h)) add(h, CONNECTIONS, MODEL_ROUNDS, MODEL_SECONDS, MODEL_CASES);
    if (h === LOW_HIT) for (const c of LOW_CONNECTIONS) add(h, c, LOW_ROUNDS, LOW_SECONDS, LOW_CASES);
  }
  return phases;
}

/** Seconds of wrk a plan takes (the rest of a run, about 90 s, is cold starts, logins and the KV count). */
const planSeconds = (phases) =>
  phases.reduce((a, p) => a + p.cases.length * p.rounds * p.seconds, 0) +
  [...new Set(phases.map((p) => p.kv))].length * 6 * WARMUP_SECONDS;

/**
 * Alternating rounds over a phase's cases; each round starts one case later than the one before.
 * Returns case id → the runs.
 */
async function runPhase(phase, cases) {
  const runs = Object.fromEntries(phase.cases.map((id) => [id, []]));
  const list = phase.cases.map((id) => cases.find((c) => c.id === id));
  for (let round = 1; round <= phase.rounds; round++) {
    for (let i = 0; i < list.length; i++) {
      const c = list[(i + round - 1) % list.length];
      const r = await measure(c, round, phase.seconds, phase.connections);
      runs[c.id].push(r);
      log(
        `${phase.key.padEnd(10)} round ${round}/${phase.rounds} ${c.label.padEnd(36)} ${String(Math.round(r.rps)).padStart(6)} req/s  ` +
          `p50 ${fmt(r.p50)} ms  p99 ${fmt(r.p99)} ms  CPU ${r.cpuMs === undefined ? "–" : fmt((r.cpuMs / r.requests) * 1000, 0)} ms/1000 req`,
      );
    }
  }
  return runs;
}

/** One case's runs in one phase, summed up: median req/s; latencies over all rounds' requests pooled; CPU per 1000 requests. */
function summarize(runs) {
  if (!runs?.length) return undefined;
  const withCpu = runs.filter((r) => r.cpuMs !== undefined);
  const requests = withCpu.reduce((a, r) => a + r.requests, 0);
  const latencies = runs.map((r) => r.latency);
  return {
    rps: median(runs.map((r) => r.rps)),
    p50: quantile(latencies, 50),
    p95: quantile(latencies, 95),
    p99: quantile(latencies, 99),
    cpu: withCpu.length ? (withCpu.reduce((a, r) => a + r.cpuMs, 0) / requests) * 1000 : undefined,
    perRound: runs.map((r) => Math.round(r.rps)).join(", "),
  };
}

/** The model's own latencies (ms) at hit ratio h, from a million draws of the same PRNG. */
function modelFigures(h) {
  const model = makeModel(h, SEED);
  const reads = Float64Array.from({ length: 1_000_000 }, () => model.delay("read")).sort();
  const writes = Float64Array.from({ length: 200_000 }, () => model.delay("write")).sort();
  const at = (a, p) => a[Math.min(a.length - 1, Math.floor((p / 100) * a.length))];
  const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;
  return { read: { p50: at(reads, 50), p95: at(reads, 95), p99: at(reads, 99), mean: mean(reads) }, write: { p50: at(writes, 50), p95: at(writes, 95), p99: at(writes, 99), mean: mean(writes) } };
}

// ------------------------------------------------------------------ cold start

function timeMs(t0) {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/**
 * Inside workerd, through bench/workers/cold-probe.mjs: compiling and instantiating
 * each wasm module, parsing and evaluating each JS worker (as one classic script).
 * Medians of 5 calls, each the mean of 20 loads of code made unique so that no cache answers.
 * (Node 20's V8 cannot compile edge-session's wasm at all: it uses the wasm
 * exception-handling and reference-type features of newer engines.)
 */
async function engineColdStart(items) {
  const probe = await startWorker({
    scriptPath: join(BENCH, "workers", "cold-probe.mjs"),
    modules: true,
    unsafeEvalBinding: "UNSAFE_EVAL",
  });
  try {
    const out = new Map();
    for (const [label, kind, file] of items) {
      const body = readFileSync(file);
      const runs = [];
      for (let i = 0; i < 5; i++) {
        const res = await fetch(`${probe.url}/${kind}?n=20`, { method: "POST", body });
        if (res.status !== 200) throw new Error(`cold-start probe, ${label}: ${res.status} ${await res.text()}`);
        runs.push((await res.json()).ms);
      }
      const m = {};
      for (const k of Object.keys(runs[0])) m[k] = median(runs.map((r) => r[k]));
      out.set(label, m);
    }
    return out;
  } finally {
    await probe.close();
  }
}

/** Miniflare start → ready, and ready → first 200, for one worker. */
async function workerColdStart(options, kv) {
  const t0 = process.hrtime.bigint();
  const worker = await startWorker(options, { kv });
  try {
    const ready = timeMs(t0);
    const res = await fetch(`${worker.url}${PUBLIC_PATH}`);
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`cold start: first response ${res.status}`);
    return { ready, first: timeMs(t0) - ready };
  } finally {
    await worker.close();
  }
}

// ------------------------------------------------------------------ KV counts

/**
 * An active user's requests, paced, through a worker whose KV is counted. Returns
 * the operations of the login and those of the requests after it.
 */
async function kvCount(worker) {
  await worker.resetKvOps();
  const jar = await login(worker.url);
  await sleep(300); // the peer's session write happens after the login's response
  const loginOps = await worker.kvOps();
  await worker.resetKvOps();
  const t0 = Date.now();
  for (let i = 0; i < KV_REQUESTS; i++) {
    const wait = t0 + (i * KV_SPAN_MS) / KV_REQUESTS - Date.now();
    if (wait > 0) await sleep(wait);
    const res = await browse(jar, `${worker.url}${PRIVATE_PATH}`);
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`KV count: request ${i} answered ${res.status}`);
  }
  await sleep(300); // background writes (waitUntil) land after the last response
  return { login: loginOps, requests: await worker.kvOps() };
}

// ------------------------------------------------------------------ data-path check

/**
 * What the data-path cases cost in store calls, counted before the throughput runs:
 * the worker of each (the same settings) with its Durable Object and KV calls recorded
 * (bench/workers/do-counter.mjs, kv-counter.mjs), a login, the data set once, then
 * DATA_CHECK_REQUESTS requests, each checked at the origin (X-Session-Data is the data
 * set). edge-session must make exactly one Durable Object read and no KV call after the
 * data is set (the first request reads the object: the isolate that applied the change
 * does not keep its result; then the ticket names the data's version and the isolate has
 * it cached); the peer reads its session from KV once a request. Anything else fails the bench.
 */
async function dataPathCheck(opts) {
  const out = new Map();
  for (const [label, id, doCounted] of [
    ["edge-session", "edge", true],
    ["JS peer", "peer", false],
  ]) {
    const worker = await startWorker(opts[id](), { kv: "counted", countSessionState: doCounted });
    try {
      const jar = await login(worker.url);
      await setSessionData(worker.url, jar);
      await sleep(300); // the peer's write lands after its response (waitUntil)
      const setup = { kv: await worker.kvOps(), do: doCounted ? await worker.doOps() : undefined };
      await worker.resetKvOps();
      if (doCounted) await worker.resetDoOps();
      let bytes;
      for (let i = 0; i < DATA_CHECK_REQUESTS; i++) {
        const res = await browse(jar, `${worker.url}${PRIVATE_PATH}`);
        const text = await res.text();
        const seen = echoedHeaders(text);
        const problems = res.status === 200 ? dataProblems(seen, SESSION_DATA, doCounted ? 1 : undefined) : [`status ${res.status}`];
        if (problems.length) throw new Error(`data-path check, ${label}, request ${i}: ${problems.join("; ")}\n${text.slice(0, 300)}`);
        bytes = seen["x-session-data"].length;
      }
      await sleep(300); // background writes, if any
      const run = { kv: await worker.kvOps(), do: doCounted ? await worker.doOps() : undefined };
      const r = { requests: DATA_CHECK_REQUESTS, bytes, setup, run };
      if (doCounted && (run.do.total !== 1 || run.kv.read + run.kv.write + run.kv.delete + run.kv.list !== 0)) {
        throw new Error(`data-path check, ${label}: ${run.do.total} Durable Object calls and ${JSON.stringify(run.kv)} KV operations in ${DATA_CHECK_REQUESTS} requests after the data was set, expected one Durable Object read and no KV operation`);
      }
      if (!doCounted && (run.kv.read !== DATA_CHECK_REQUESTS || run.kv.write !== 0)) {
        throw new Error(`data-path check, ${label}: KV ${JSON.stringify(run.kv)} in ${DATA_CHECK_REQUESTS} requests, expected one read each and no write`);
      }
      out.set(label, r);
      log(`data-path check, ${label}: ${DATA_CHECK_REQUESTS} requests, X-Session-Data ${bytes} bytes each; DO calls ${run.do?.total ?? "–"}, KV reads ${run.kv.read}, writes ${run.kv.write}`);
    } finally {
      await worker.close();
    }
  }
  return out;
}

// ------------------------------------------------------------------ facts

function fact(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: "utf8", cwd: ROOT });
  return `${r.stdout ?? ""}${r.stderr ?? ""}`.split("\n")[0].trim() || "?";
}
const pkgVersion = (name) => JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")).version;

function sizes(file) {
  const bytes = readFileSync(file);
  return { file: relative(ROOT, file), raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
}

const DEPLOYED = "edge-session, as deployed (the wasm and its JS)";
/** The worker as `wrangler deploy --dry-run` bundles it (wrangler.toml: build/, after its build
 *  command), from wrangler's "Total Upload: <raw> KiB / gzip: <gzip> KiB" line. */
function deployBundle() {
  const outdir = join(OUT, "deploy");
  // Its build command is a no-op on a built tree; a wrangler that hangs is stopped, not waited for.
  const r = spawnSync(join(ROOT, "node_modules", ".bin", "wrangler"), ["deploy", "--dry-run", "--outdir", outdir], { cwd: ROOT, encoding: "utf8", timeout: 300_000 });
  const output = `${r.stdout ?? ""}${r.stderr ?? ""}`.replace(/\x1b\[[0-9;]*m/g, "");
  const m = /Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/.exec(output);
  if (r.status !== 0 || !m) throw new Error(`wrangler deploy --dry-run: no bundle size (${r.error ? r.error.message : `exit ${r.status}`}):\n${output}`);
  return { file: "wrangler deploy --dry-run", raw: Math.round(Number(m[1]) * 1024), gzip: Math.round(Number(m[2]) * 1024) };
}

// ------------------------------------------------------------------ report

const fmt = (n, digits = 2) => (n === undefined || Number.isNaN(n) ? "–" : n.toFixed(digits));
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const signed = (n, digits = 2) => (n === undefined || Number.isNaN(n) ? "–" : `${n >= 0 ? "+" : "−"}${Math.abs(n).toFixed(digits)}`);
const WASM_TARGET_BYTES = 170 * 1024; // 174,080 B
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

/**
 * The targets of issue 23, read off this run (never timed tests): each
 * { target, measured, before, met: true | false | undefined (not measured) }, `before` the same
 * figure for BENCH_BEFORE_BUILD in this run (undefined without one).
 */
function targets(S, size) {
  const main = phaseKey("local", CONNECTIONS);
  const at088 = phaseKey(0.88, CONNECTIONS);
  const ratio = (a, b, key, field) => {
    const x = S(a, key)?.[field];
    const y = S(b, key)?.[field];
    return x === undefined || y === undefined ? undefined : x / y;
  };
  const rps = (id) => (S(id, main) ? `${Math.round(S(id, main).rps)}` : "–");
  const cpu = (id) => (S(id, main)?.cpu === undefined ? "–" : fmt(S(id, main).cpu, 0));
  const p99 = (id) => fmt(S(id, at088)?.p99, 1);
  const throughput = (a, b) => [(v) => ratio(v(a), v(b), main, "rps"), (v) => `${rps(v(a))} vs ${rps(v(b))} req/s`];
  // [target, [value of a case naming, its detail], limit, at least (or at most)]; v names the cases.
  const specs = [
    ["Ticket path throughput ≥ 0.95x the JS passthrough's", throughput("edgeTicket", "jsPassthrough"), 0.95, true],
    ["Ticket path throughput ≥ 1.00x the bare workers-rs passthrough's", throughput("edgeTicket", "rsPassthrough"), 1.0, true],
    ["Ticket path throughput ≥ 1.50x the JS peer's", throughput("edgeTicket", "peer"), 1.5, true],
    [
      "Ticket path workerd CPU per request ≤ 1.10x the JS passthrough's",
      [(v) => ratio(v("edgeTicket"), "jsPassthrough", main, "cpu"), (v) => `${cpu(v("edgeTicket"))} vs ${cpu("jsPassthrough")} ms per 1000 requests`],
      1.1,
      false,
    ],
    ["KV path throughput ≥ 1.20x the JS peer's", throughput("edgeKv", "peer"), 1.2, true],
    [
      `Latency model h = 0.88, -c${CONNECTIONS}: ticket path p99 ≤ 1.20x the JS passthrough's p99`,
      [(v) => ratio(v("edgeTicket"), "jsPassthrough", at088, "p99"), (v) => `${p99(v("edgeTicket"))} vs ${p99("jsPassthrough")} ms`],
      1.2,
      false,
    ],
    ["Signed in, 1 KB of data on the ticket path ≥ 0.95x the ticket path without data", throughput("edgeData", "edgeTicket"), 0.95, true],
    ["A guest with 1 KB of data on the ticket path ≥ 0.95x the ticket path without data", throughput("edgeGuest", "edgeTicket"), 0.95, true],
    ["Data path (1 KB) throughput ≥ 1.20x the JS peer's data path", throughput("edgeData", "peerData"), 1.2, true],
  ];
  const shown = (value, detail) => (value === undefined ? "not measured" : `${fmt(value)}x${detail ? ` (${detail})` : ""}`);
  const rows = specs.map(([target, [value, detail], limit, atLeast]) => {
    const x = value((id) => id);
    return {
      target,
      measured: shown(x, detail((id) => id)),
      before: BEFORE_BUILD ? shown(value(before), detail(before)) : undefined,
      met: x === undefined ? undefined : atLeast ? x >= limit : x <= limit,
    };
  });
  const wasm = size.get("edge-session").gzip;
  const deployed = size.get(DEPLOYED);
  rows.push({
    target: "edge-session's wasm ≤ 170 KiB gzip -9 (174,080 B), session data in",
    measured: `${wasm.toLocaleString("en-US")} B${deployed ? `; the deploy bundle ${kb(deployed.raw)}, ${kb(deployed.gzip)} gzipped (wrangler)` : ""}`,
    before: size.has("edge-session before") ? `${size.get("edge-session before").gzip.toLocaleString("en-US")} B` : undefined,
    met: wasm <= WASM_TARGET_BYTES,
  });
  return rows;
}

function report({ facts, phases, S, cases, cold, size, kv, dataCheck, wallSeconds }) {
  const main = phaseKey("local", CONNECTIONS);
  const base = S("jsPassthrough");
  const peer = S("peer");
  const rows = ALL_CASES.map((id) => ({ c: cases.find((c) => c.id === id), ...S(id) }));
  const lines = [];
  const p = (s = "") => lines.push(s);
  p("# edge-session benchmark");
  p();
  p(`Written by \`make bench\` (bench/run.mjs) on ${facts.date}, commit ${facts.commit}, in ${Math.round(wallSeconds)} s.`);
  if (QUICK || process.env.BENCH_NOTE) {
    p();
    p(`**${[QUICK ? "A quick development run (BENCH_QUICK=1): runs of a second or two, not figures to quote." : "", process.env.BENCH_NOTE ?? ""].filter(Boolean).join(" ")}**`);
    p();
  }
  p("All traffic on 127.0.0.1; every case served by a worker in its own workerd (Miniflare), in front of the same demo origin (www/origin.mjs).");
  p("Cases with the same settings get twin workers, never one shared: a workerd under wrk without a pause grows slower as");
  p("it goes (its p99 went from about 35 to about 100 ms over 30 s of continuous load, the JS passthrough's and");
  p("edge-session's alike, and recovered after a pause), so a workerd serving two cases back to back measured slower.");
  p("Absolute numbers belong to this machine at that moment (2 cores shared by wrk, workerd, the origin and anything");
  p("else running); the ratios within one run are the result.");
  p();
  p("## Machine");
  p();
  p("| | |");
  p("|---|---|");
  for (const [k, v] of Object.entries(facts.machine)) p(`| ${k} | ${v} |`);
  p();
  p("## Targets");
  p();
  p("The targets of issue 23, read off this run (they are never timed tests). Throughput and CPU per request from");
  p(`\"Throughput and latency\" (local KV, -c${CONNECTIONS}); the p99 from \"KV latency model\".`);
  if (BEFORE_BUILD) {
    p(`"Before": the same figures, in this run, of the build in ${relative(ROOT, BEFORE_BUILD) || "."}/ (BENCH_BEFORE_BUILD: ${process.env.BENCH_BEFORE_NOTE ?? "an older build"}),`);
    p("whose cases are \"edge-session before\" below; the JS passthrough, the workers-rs passthrough and the peer are the same workers for both.");
  }
  p();
  const withBefore = Boolean(BEFORE_BUILD);
  p(`| target | measured |${withBefore ? " before |" : ""} met or not |`);
  p(`|---|---|${withBefore ? "---|" : ""}---|`);
  for (const t of targets(S, size)) {
    p(`| ${t.target} | ${t.measured} |${withBefore ? ` ${t.before} |` : ""} ${t.met === undefined ? "not measured" : t.met ? "met" : "**not met**"} |`);
  }
  p();
  const same = S("jsPassthroughTicket", main);
  const ticket = S("edgeTicket", main);
  if (same && ticket && base) {
    p("The JS passthrough of the targets answers `GET /echo/public/b` without a cookie. Given the ticket path's own request");
    p(`(\`GET /echo/b\` with the cookies of a login, which it forwards and the origin echoes) it serves ${Math.round(same.rps)} req/s`);
    p(`(${fmt(same.rps / base.rps)}x) at ${fmt(same.cpu, 0)} ms of CPU per 1000 requests (${fmt(same.cpu / base.cpu)}x): what that request costs any Worker.`);
    p(`Against it, the ticket path serves ${fmt(ticket.rps / same.rps)}x the requests per second at ${fmt(ticket.cpu / same.cpu)}x the CPU per request.`);
    p();
  }
  const work = S("jsTicketWork", main);
  if (work && ticket && base) {
    p("The ticket path's platform work in plain JS (bench/workers/ticket-work.mjs: the same request, its session cookies taken out,");
    p("the identity, the hop marker and an assertion-sized token set, the cache bypassed, the answer looked at for signals and");
    p(`passed on with Idle-Left, Cache-Control and Server-Timing; no wasm, no decision) serves ${Math.round(work.rps)} req/s (${fmt(work.rps / base.rps)}x the`);
    p(`JS passthrough) at ${fmt(work.cpu, 0)} ms of CPU per 1000 requests (${fmt(work.cpu / base.cpu)}x): what the contract's work on that request costs any`);
    p(`Worker. Against it, the ticket path serves ${fmt(ticket.rps / work.rps)}x the requests per second at ${fmt(ticket.cpu / work.cpu)}x the CPU per request.`);
    const at088 = phaseKey(0.88, CONNECTIONS);
    const [model, modelTicket] = [S("jsTicketWork", at088), S("edgeTicket", at088)];
    if (model && modelTicket) p(`With the latency model at h = 0.88 its p99 is ${fmt(model.p99, 1)} ms, the ticket path's ${fmt(modelTicket.p99, 1)} ms (${fmt(modelTicket.p99 / model.p99)}x).`);
    p();
  }
  const floor = S("jsKvRead", main);
  const [kvPath, peerKv] = [S("edgeKv", main), S("peer", main)];
  if (floor && kvPath && peerKv) {
    p("The KV path's floor: the JS passthrough after one read of a session-sized record from KV per request");
    p(`(bench/workers/kv-read.mjs, \`GET /echo/b\` without a cookie) serves ${Math.round(floor.rps)} req/s, ${fmt(floor.rps / peerKv.rps)}x the peer's, at`);
    p(`${fmt(floor.cpu, 0)} ms of CPU per 1000 requests (${fmt(floor.cpu / peerKv.cpu)}x the peer's): the most a Worker that reads KV once per request serves`);
    p(`here, before it does anything with the session. Against it, the KV path serves ${fmt(kvPath.rps / floor.rps)}x the requests per second at`);
    p(`${fmt(kvPath.cpu / floor.cpu)}x the CPU per request.`);
    p();
  }
  p("## Throughput and latency");
  p();
  p(`\`wrk -t1 -c${CONNECTIONS} -d${SECONDS}s\` per case per round, ${plural(ROUNDS, "round")}, over Miniflare's local KV; each round runs every case`);
  p("once, and each round starts one case later than the one before. Requests per second: the median over rounds; p50 and");
  p("p99: over all rounds' requests together (wrk's latency distribution, printed by a `done()` hook as percentiles and");
  p("pooled). Ratios are requests per second relative to the JS passthrough (what any Worker in front of this origin");
  p("costs) and to the JS peer. CPU: the workerd process's, per 1000 requests (see \"CPU per request\").");
  p();
  p("| case | req/s | p50 ms | p99 ms | vs JS passthrough | vs JS peer | CPU ms / 1000 req | req/s per round |");
  p("|---|---:|---:|---:|---:|---:|---:|---|");
  for (const r of rows) {
    p(`| ${r.c.label} | ${Math.round(r.rps)} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.rps / base.rps)} | ${fmt(r.rps / peer.rps)} | ${fmt(r.cpu, 0)} | ${r.perRound} |`);
  }
  p();
  p(`Each data path relative to the same worker without data: edge-session ${fmt(S("edgeData").rps / S("edgeTicket").rps)}x its ticket path,`);
  p(`the peer ${fmt(S("peerData").rps / peer.rps)}x. edge-session's code, session data included: \`${size.get("edge-session").file}\``);
  p(`${kb(size.get("edge-session").raw)} raw, ${kb(size.get("edge-session").gzip)} gzip -9 (all sizes under "Size").`);
  p();
  p("What each case sends:");
  p();
  p(`- origin directly, the passthroughs and the public path: \`GET ${PUBLIC_PATH}\` (the origin's echo route) with no cookie.`);
  p(`- ticket path: \`GET ${PRIVATE_PATH}\` with the cookies of a fresh login (session ID and ticket); \`TICKET_TTL\` and`);
  p("  `TOUCH_INTERVAL` are 1h so the whole run is the steady state between two KV checks: no KV access at all.");
  p("- KV path: the same with `TICKET_TTL=1ms`, `TOUCH_INTERVAL=1h`: every request reads KV and gets a fresh ticket");
  p("  (a `Set-Cookie` that wrk ignores, so the next request reads KV again); no last-seen writes.");
  p("- lookup path: attach mode (`LOOKUP_URL` = the origin's lookup endpoint) and a session ID never seen before in");
  p("  every request (bench/lookup.lua; the IDs are planted at the origin first), so each request costs a KV read");
  p("  that misses, a lookup request to the origin, then the forward, and after the response (waitUntil) two KV writes");
  p("  (the session record and the per-user index). This is the first request of each session; the ones after it take");
  p("  the ticket path. Miniflare's local KV puts every write in SQLite and files in a temporary directory;");
  p("  those writes are the slowest operation in this bench, so this case measures Miniflare's KV writes as much");
  p("  as edge-session.");
  p(`- guest, ticket path, 1 KB data: a twin of the ticket path's worker (\`GUEST_PATHS=/echo/guest/*\` in all); every round a visitor's request to`);
  p(`  \`${GUEST_PATH}\` whose response stores the same data makes a guest session (no login, nothing in KV); then`);
  p("  that path with the guest's cookies: the ticket path of a guest, its data from the isolate's cache, an assertion");
  p("  without a user.");
  p("- ticket path, 1 KB data: a twin of the ticket path's worker (the same settings), a fresh login every round, then one request whose");
  p(`  response sets the session's data: the origin answers with \`X-Edge-Session-Data: <${SESSION_DATA_BYTES} bytes of JSON>\``);
  p("  (the echo route's `set_header`; preferences and a small cart). edge-session stores it in the session's Durable");
  p("  Object (`SESSION_STATE`, SQLite-backed, Miniflare's local implementation) and answers with a fresh ticket naming");
  p(`  the data's version. Then \`GET ${PRIVATE_PATH}\` with those cookies: the ticket path, and the origin sees`);
  p("  `X-Session-Data` (and `X-Session-Data-Version: 1`) on every request. The first request reads the Durable Object");
  p("  (the isolate that applied the change does not keep its result); the isolate then caches the data by version, so");
  p("  no request after the first reads it (counted, see \"Session data: store calls\" below).");
  p("  Every edge-session worker in this bench has the `SESSION_STATE` binding; the other cases' sessions have no data.");
  p("- JS peer: Hono + @hono/session with Workers KV as its session storage, logged in once (through the same origin's");
  p(`  login form), \`GET ${PRIVATE_PATH}\`: it decrypts its session cookie (a JWE), reads the session from KV (every`);
  p("  request) and forwards to the origin with `X-Session-User` / `X-Session-Claims`.");
  p("- JS peer, 1 KB data: a twin of the peer and the same origin signal after the login (the peer merges `X-Edge-Session-Data`");
  p("  into its session record at the top level, as edge-session does, and strips it); then every request reads the");
  p("  session (data included) from KV, one read as before, and forwards the data as `X-Session-Data` (compact JSON,");
  p("  non-ASCII escaped). @hono/session 0.2.1 calls its storage's `set()` without awaiting it; the bench's storage");
  p("  hands the KV write to `waitUntil`, so it completes after the response.");
  p();
  p("Before each measurement one request is checked (200, served from the expected tier, the origin saw user alice, and");
  p("the session data set, byte for byte as JSON, or none where the case has none); any non-2xx answer or socket error");
  p("during a run fails the bench.");
  p();
  p("![throughput relative to the JS passthrough](chart.svg)");
  p();
  p("(The chart leaves out the origin alone, many times faster than any worker here.)");
  p();
  const modelPhases = phases.filter((ph) => ph.kv !== "local" && ph.connections === CONNECTIONS);
  p("## KV latency model");
  p();
  p("Miniflare's local KV answers in well under a millisecond; Workers KV does not. The bench puts a wrapper");
  p("(bench/workers/kv-latency.mjs, a Miniflare wrapped binding) in front of every KV binding alike, edge-session's");
  p("`SESSIONS` and the JS peer's, that waits before each operation. **The parameters are a model, not a measurement:**");
  p(`- a read is a cache hit with probability h: lognormal, median ${MODEL.hit.median} ms, sigma ${MODEL.hit.sigma};`);
  p(`- otherwise it goes to the central store: lognormal, median ${MODEL.miss.median} ms, sigma ${MODEL.miss.sigma}, capped at ${MODEL.miss.cap / 1000} s;`);
  p("- writes (put, delete) pay the central store's latency (so would a list; no case here lists).");
  p();
  p("They are chosen to be near Cloudflare's published figures for Workers KV, as issue 16 quotes them: about 1 ms on a");
  p("cache hit; p95 about 50 ms and p99 about 250 ms overall. The delays come from a seeded PRNG (mulberry32, seed");
  p(`\`${SEED}\`, BENCH_SEED), four draws per operation, so the k-th KV operation of every worker waits the same in every`);
  p("run. The wait comes first (rounded to a whole millisecond, up with a probability equal to its fraction so that the mean");
  p("stays, as workerd's timers may not honour fractions), then the operation on Miniflare's KV (a fraction of a millisecond");
  p("more). A timer can wake late on a busy machine, so a wait is at least the one drawn. The model's own latencies, from");
  p("a million draws (before rounding):");
  p();
  p("| h | read p50 | read p95 | read p99 | read mean | write p50 / p95 / p99 |");
  p("|---:|---:|---:|---:|---:|---:|");
  for (const ph of modelPhases) {
    const m = modelFigures(ph.kv);
    p(`| ${ph.kv} | ${fmt(m.read.p50)} ms | ${fmt(m.read.p95, 1)} ms | ${fmt(m.read.p99, 1)} ms | ${fmt(m.read.mean, 1)} ms | ${fmt(m.write.p50, 1)} / ${fmt(m.write.p95, 1)} / ${fmt(m.write.p99, 1)} ms |`);
  }
  p();
  p("What the cases ask of KV: the KV path reads once per request; the lookup path reads once (a miss: the session is");
  p("new), and writes twice after the response (`waitUntil`); the JS peer reads its session once per request. The ticket");
  p("and data paths read no KV in these runs (the ticket is young and no write is due): the model reaches them only through");
  p("the login before each run. **The peer:** @hono/session 0.2.1 calls its storage's `set()` without awaiting it, so with");
  p("KV latency a write that the response does not wait for would be cancelled with the request; the bench's peer");
  p("(bench/workers/peer.mjs) registers every storage write and delete with `waitUntil`, so its sessions are written.");
  p();
  if (modelPhases.length) {
    p(`\`wrk -t1 -c${CONNECTIONS} -d${MODEL_SECONDS}s\`, ${plural(MODEL_ROUNDS, "alternating round")} at each h (their own workers; the passthroughs are the`);
    p("same as above), medians and pooled percentiles as above. Each cell: req/s · p50 ms · p99 ms; local KV from the table above.");
    p();
    p(`| case | local KV | ${modelPhases.map((ph) => kvLabel(ph.kv)).join(" | ")} |`);
    p(`|---|---:|${modelPhases.map(() => "---:").join("|")}|`);
    const cell = (s) => (s ? `${Math.round(s.rps)} · ${fmt(s.p50, 1)} · ${fmt(s.p99, 1)}` : "–");
    for (const id of MODEL_CASES) {
      p(`| ${cases.find((c) => c.id === id).label} | ${cell(S(id))} | ${modelPhases.map((ph) => cell(S(id, ph.key))).join(" | ")} |`);
    }
    p();
    p("Ratios at each h: the ticket path's p99 over the JS passthrough's and over its platform work's; the KV path's p99 over the peer's; req/s of the KV path");
    p("over the peer's.");
    p();
    p(`| | ${modelPhases.map((ph) => kvLabel(ph.kv)).join(" | ")} |`);
    p(`|---|${modelPhases.map(() => "---:").join("|")}|`);
    const r = (a, b, field) => modelPhases.map((ph) => fmt(S(a, ph.key)?.[field] / S(b, ph.key)?.[field])).join(" | ");
    p(`| ticket p99 / JS passthrough p99 | ${r("edgeTicket", "jsPassthrough", "p99")} |`);
    p(`| ticket p99 / its platform work's p99 (ticket-work.mjs) | ${r("edgeTicket", "jsTicketWork", "p99")} |`);
    p(`| KV path p99 / peer p99 | ${r("edgeKv", "peer", "p99")} |`);
    p(`| KV path req/s / peer req/s | ${r("edgeKv", "peer", "rps")} |`);
    p();
  } else {
    p("(Not run: BENCH_HIT_RATIOS was empty.)");
    p();
  }

  const lowPhases = phases.filter((ph) => ph.connections !== CONNECTIONS);
  p("## Added latency at low concurrency");
  p();
  if (lowPhases.length) {
    p(`What a user waits for, without queueing behind other requests: \`wrk -t1 -c<c> -d${LOW_SECONDS}s\`, ${plural(LOW_ROUNDS, "alternating round")} per`);
    p("column, over local KV and under the latency model. Each path's p50 and p99 minus the JS passthrough's in the same");
    p("column (pooled over rounds), in ms: what the path adds to a request over any Worker. The first row is the JS");
    p("passthrough's own.");
    p();
    p(`| case | ${lowPhases.map((ph) => `${kvLabel(ph.kv)}, c=${ph.connections}: p50 | p99`).join(" | ")} |`);
    p(`|---|${lowPhases.map(() => "---:|---:").join("|")}|`);
    p(`| JS passthrough itself | ${lowPhases.map((ph) => `${fmt(S("jsPassthrough", ph.key)?.p50)} | ${fmt(S("jsPassthrough", ph.key)?.p99)}`).join(" | ")} |`);
    for (const id of LOW_CASES.filter((x) => x !== "jsPassthrough")) {
      const cells = lowPhases.map((ph) => {
        const s = S(id, ph.key);
        const b = S("jsPassthrough", ph.key);
        return `${signed(s?.p50 - b?.p50)} | ${signed(s?.p99 - b?.p99)}`;
      });
      p(`| ${cases.find((c) => c.id === id).label} | ${cells.join(" | ")} |`);
    }
    p();
  } else {
    p("(Not run: BENCH_LOW_CONNECTIONS was empty.)");
    p();
  }

  p("## CPU per request");
  p();
  p("The CPU time of the workerd process serving each case (utime + stime from /proc/<pid>/stat, in clock ticks of");
  p(`1/${CLK_TCK} s), read just before and just after each of the case's wrk runs, summed over its rounds and divided by the`);
  p("requests wrk completed: ms of CPU per 1000 requests. Every case has its own workerd (the pid Miniflare spawned for it");
  p("is found when it starts) and cases run one at a time, so no other case's traffic is counted; the worker's KV,");
  p("Durable Objects and the latency model's wrapper run in that process and are counted, the origin and wrk are not.");
  p("CPU is what Workers bills, and it is steadier on a busy machine than throughput. Ratio: to the JS passthrough in the");
  p("same phase.");
  p();
  const cpuPhases = [phaseKey("local", CONNECTIONS), ...modelPhases.map((ph) => ph.key)];
  const cpuLabel = (key) => (key === main ? `local KV, -c${CONNECTIONS}` : `${kvLabel(phases.find((ph) => ph.key === key).kv)}, -c${CONNECTIONS}`);
  p(`| case | ${cpuPhases.map(cpuLabel).join(" | ")} |`);
  p(`|---|${cpuPhases.map(() => "---:").join("|")}|`);
  for (const id of ALL_CASES.filter((x) => x !== "origin")) {
    const cells = cpuPhases.map((key) => {
      const s = S(id, key);
      const b = S("jsPassthrough", key);
      return s?.cpu === undefined ? "–" : `${fmt(s.cpu, 0)} ms (${fmt(s.cpu / b?.cpu)}x)`;
    });
    p(`| ${cases.find((c) => c.id === id).label} | ${cells.join(" | ")} |`);
  }
  p();
  p("(The origin alone has no row: it runs in the bench's own Node process.)");
  p();
  p("## Cold start");
  p();
  p("Loading the code, inside workerd (bench/workers/cold-probe.mjs; median of 5 means of 20 loads, the code made unique");
  p("each time so that no cache answers): compiling and instantiating the wasm module, or parsing and evaluating the");
  p("bundled JS (esbuild, minified, as one script). V8 compiles wasm lazily (a function is compiled when first called),");
  p("so part of the wasm's cost lands on the first request instead.");
  p(`Then the whole start with Miniflare, medians of ${COLD_REPS}: from \`new Miniflare()\` to ready (spawning workerd,`);
  p(`loading the worker), and from ready to the first 200 from \`GET ${PUBLIC_PATH}\` through it.`);
  p();
  p("| worker | compile | instantiate | JS parse + eval | Miniflare: to ready | then first response |");
  p("|---|---:|---:|---:|---:|---:|");
  for (const [label, v] of cold) {
    p(`| ${label} | ${fmt(v.compile)} ms | ${fmt(v.instantiate)} ms | ${fmt(v.eval)} ms | ${fmt(v.ready, 0)} ms | ${fmt(v.first, 1)} ms |`);
  }
  p();
  p("## Size");
  p();
  p("| worker | file | raw | gzip -9 |");
  p("|---|---|---:|---:|");
  for (const [label, s] of size) p(`| ${label} | \`${s.file}\` | ${kb(s.raw)} | ${kb(s.gzip)} |`);
  p();
  p("The peer's bundle is esbuild's, minified (hono, @hono/session and jose included); edge-session's files are");
  p("scripts/build.sh's (wasm-opt -Oz; the `.js`, its entry bundled with the wasm-bindgen glue), the passthrough's worker-build's.");
  p();
  p("## KV operations of an active user");
  p();
  p(`${KV_REQUESTS} requests of one logged-in user to \`${PRIVATE_PATH}\`, spread evenly over ${KV_SPAN_MS / 1000} s, each worker's KV wrapped by a`);
  p(`counter (bench/workers/kv-counter.mjs), the browser's cookie jar updated from every response. This stands for`);
  p(`${KV_REQUESTS} requests over ${(KV_SPAN_MS * TIME_SCALE) / 60000} minutes (one every ${((KV_SPAN_MS * TIME_SCALE) / KV_REQUESTS / 1000).toFixed(1)} s) with every duration setting divided by ${TIME_SCALE}:`);
  p("edge-session with its defaults (`TICKET_TTL` and `TOUCH_INTERVAL` 60s → 1s, idle 30m → 30s, absolute 8h → 8m),");
  p("the peer with an 8h absolute and 30m inactivity duration (→ 8m and 30s). The login is counted separately.");
  p();
  p("| worker | reads | writes | deletes | lists | per 1000 requests: reads / writes | login: reads / writes / deletes |");
  p("|---|---:|---:|---:|---:|---:|---:|");
  for (const [label, k] of kv) {
    const per = (n) => fmt((n * 1000) / KV_REQUESTS, 0);
    p(`| ${label} | ${k.requests.read} | ${k.requests.write} | ${k.requests.delete} | ${k.requests.list} | ${per(k.requests.read)} / ${per(k.requests.write)} | ${k.login.read} / ${k.login.write} / ${k.login.delete} |`);
  }
  p();
  p("edge-session promises at most one read per `min(TICKET_TTL, TOUCH_INTERVAL)` and one write per `TOUCH_INTERVAL` for an");
  p("active user (README, \"Revocation bound and KV budget\"); @hono/session keeps only the session ID in its cookie and reads");
  p("the session from its storage on every request, and writes it again only when the session is created or refreshed.");
  p();
  p("## Session data: store calls");
  p();
  p(`Before the throughput runs, each data path's worker (same settings) with its store calls counted: a login, the data`);
  p(`set once, then ${DATA_CHECK_REQUESTS} requests to \`${PRIVATE_PATH}\`, each checked at the origin (\`X-Session-Data\` is the data set).`);
  p("Durable Object calls are counted by bench/workers/do-counter.mjs in front of `SESSION_STATE`, KV operations by");
  p("kv-counter.mjs. The bench fails if edge-session makes any store call after the data is set but the first request's");
  p("Durable Object read, or the peer anything but one KV read per request.");
  p();
  p("| worker | X-Session-Data | login + set: DO calls / KV reads / writes | requests | DO calls | KV reads | KV writes |");
  p("|---|---:|---:|---:|---:|---:|---:|");
  for (const [label, d] of dataCheck) {
    const doSetup = d.setup.do ? String(d.setup.do.total) : "–";
    p(`| ${label} | ${d.bytes} bytes | ${doSetup} / ${d.setup.kv.read} / ${d.setup.kv.write} | ${d.requests} | ${d.run.do ? d.run.do.total : "–"} | ${d.run.kv.read} | ${d.run.kv.write} |`);
  }
  p();
  p("## Reproduce");
  p();
  p("```sh");
  p("make bench                        # everything above, about 14 minutes on 2 cores");
  p("BENCH_QUICK=1 make bench          # every phase for a second or so: about 2 minutes, to check the bench itself");
  p("BENCH_CASES=rsPassthrough,edgeTicket node bench/run.mjs   # a few cases, ratios and CPU to the first, no report");
  p("```");
  p();
  p("Settings (environment): `BENCH_SECONDS` / `BENCH_ROUNDS` (local KV, -c16; 6 s, 3 rounds), `BENCH_MODEL_SECONDS` /");
  p("`BENCH_MODEL_ROUNDS` (the model, 5 s, 2), `BENCH_LOW_SECONDS` / `BENCH_LOW_ROUNDS` (low concurrency, 4 s, 2),");
  p("`BENCH_CONNECTIONS` (16), `BENCH_LOW_CONNECTIONS` (`1,4`), `BENCH_HIT_RATIOS` (`0.99,0.88,0.5`), `BENCH_LOW_HIT` (0.88),");
  p("`BENCH_SEED`, `BENCH_WARMUP_SECONDS` (2), `BENCH_COLD_REPS` (3), `BENCH_EDGE_BUILD` (edge-session's build directory,");
  p("`build/`), `BENCH_BEFORE_BUILD` (an older build benched beside it, its ticket, data, guest and KV cases, with `BENCH_BEFORE_NOTE`");
  p("saying which), `BENCH_CASES` with `BENCH_CASES_HIT` (one h of the model instead of local KV), `BENCH_NOTE` (a line at the top).");
  p(`This run: ${phases.map((ph) => `${ph.key} ${ph.cases.length} cases × ${ph.rounds} × ${ph.seconds} s`).join("; ")}.`);
  p();
  writeFileSync(join(BENCH, "RESULTS.md"), lines.join("\n"));

  // The origin alone is left out: it is many times faster than any worker and would flatten the other bars.
  const colours = { floor: "#4a7bd0", edge: "#d0692a", peer: "#7a5bbf" };
  const chartRows = rows
    .filter((r) => r.c.id !== "origin")
    .map((r) => ({
      label: r.c.label,
      value: r.rps / base.rps,
      note: `${fmt(r.rps / base.rps)}  (${Math.round(r.rps)} req/s)`,
      colour: r.c.id.startsWith("edge") ? colours.edge : r.c.id.startsWith("peer") ? colours.peer : colours.floor,
    }));
  writeFileSync(
    join(BENCH, "chart.svg"),
    barChart({
      title: "Throughput relative to a JS passthrough Worker (higher is better)",
      subtitle: `wrk -c${CONNECTIONS}, local KV, median of ${ROUNDS} alternating rounds of ${SECONDS} s; workerd via Miniflare, 127.0.0.1, ${facts.date}`,
      rows: chartRows,
      legend: [
        { colour: colours.floor, text: "passthrough Workers" },
        { colour: colours.edge, text: "edge-session" },
        { colour: colours.peer, text: "JS peer" },
      ],
    }),
  );


  // The main table and the targets on the terminal.
  console.log();
  for (const r of rows) {
    console.log(
      `${r.c.label.padEnd(36)} ${String(Math.round(r.rps)).padStart(6)} req/s  p50 ${fmt(r.p50).padStart(6)} ms  p99 ${fmt(r.p99).padStart(6)} ms  ` +
        `CPU ${fmt(r.cpu, 0).padStart(4)} ms/1000  x${fmt(r.rps / base.rps)} JS passthrough  x${fmt(r.rps / peer.rps)} peer`,
    );
  }
  console.log();
  for (const t of targets(S, size)) {
    console.log(`${t.met === undefined ? "not measured" : t.met ? "met    " : "NOT MET"}  ${t.target}: ${t.measured}${t.before ? `; before ${t.before}` : ""}`);
  }
}

// ------------------------------------------------------------------ main

/** The workers of the load phases, of workerOptions: all but the KV-count run's, and the
 *  before build's only when there is one. */
const loadWorkers = (opts) => Object.keys(opts).filter((id) => !id.endsWith("Counted") && (BEFORE_BUILD || !id.endsWith("Before")));

/** Starts the workers of one `kv` ("local" or a hit ratio): those that use KV, plus the passthroughs (shared). */
async function startWorkers(opts, kv, shared) {
  const w = { ...shared };
  const fresh = [];
  for (const id of loadWorkers(opts)) {
    if (w[id]) continue;
    const model = kv === "local" ? "direct" : { hitRatio: kv, seed: SEED };
    w[id] = started(await startWorker(opts[id](), { kv: usesKv(id) ? model : undefined }));
    fresh.push(id);
  }
  return { w, fresh };
}

/** Warm-up runs (not kept) of the cases served by freshly started workers. */
async function warmUp(cases, w, fresh, ids) {
  const pids = new Set(fresh.map((id) => w[id].pid));
  const list = cases.filter((c) => ids.includes(c.id) && (c.pid === undefined || pids.has(c.pid)));
  log(`warm-up: ${WARMUP_SECONDS} s for each of ${list.length} cases`);
  for (const c of list) await measure(c, 0, WARMUP_SECONDS, CONNECTIONS);
}

/** BENCH_CASES=rsPassthrough,edgeTicket: only these cases under load, ratios to the first, no report. */
async function onlyCases(opts, origin, only) {
  const hit = process.env.BENCH_CASES_HIT ? Number(process.env.BENCH_CASES_HIT) : undefined;
  if (hit !== undefined && !isRatio(hit)) throw new Error("BENCH_CASES_HIT must be in [0, 1]");
  const kv = hit === undefined ? "local" : hit;
  const { w, fresh } = await startWorkers(opts, kv, {});
  if (only.includes("edgeData") || only.includes("peerData")) await dataPathCheck(opts);
  const all = makeCases(origin, w);
  const cases = only.map((id) => all.find((c) => c.id === id));
  if (cases.includes(undefined)) throw new Error(`BENCH_CASES: unknown case in ${only} (known: ${all.map((c) => c.id)})`);
  await warmUp(all, w, fresh, only);
  const phase = { key: phaseKey(kv, CONNECTIONS), kv, connections: CONNECTIONS, rounds: ROUNDS, seconds: SECONDS, cases: only };
  const runs = await runPhase(phase, all);
  const s = Object.fromEntries(only.map((id) => [id, summarize(runs[id])]));
  const first = s[only[0]];
  for (const c of cases) {
    const x = s[c.id];
    log(
      `${c.label.padEnd(36)} ${String(Math.round(x.rps)).padStart(6)} req/s  ${fmt(x.rps / first.rps)}x  p50 ${fmt(x.p50)} ms  p99 ${fmt(x.p99)} ms  ` +
        `CPU ${fmt(x.cpu, 0)} ms/1000 req ${fmt(x.cpu / first.cpu)}x  (${kvLabel(kv)}, -c${CONNECTIONS}, ${ROUNDS} x ${SECONDS} s)`,
    );
  }
}

async function main() {
  const wall = process.hrtime.bigint();
  for (const f of [join(EDGE_BUILD, "index.js"), join(EDGE_BUILD, "index_bg.wasm")]) {
    if (!existsSync(f)) throw new Error(`${relative(ROOT, f)} is missing: run \`make build\` (make bench does it)`);
  }
  for (const f of [join(RS_BUILD, "index.js"), join(RS_BUILD, "index_bg.wasm")]) {
    if (!existsSync(f)) throw new Error(`${relative(ROOT, f)} is missing: run \`bash bench/build-passthrough.sh\` (make bench does it)`);
  }
  if (spawnSync("wrk", ["-v"]).error) throw new Error("wrk is missing: run `bash bench/ensure-wrk.sh` (make bench does it)");
  mkdirSync(OUT, { recursive: true });
  // What a deploy uploads, as wrangler bundles build/: only when that is the build measured.
  const deployed = EDGE_BUILD === resolve(ROOT, "build") ? deployBundle() : undefined;
  const loadBefore = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  log(`edge-session from ${relative(ROOT, EDGE_BUILD) || "."}/`);

  const peerFile = await bundle("peer.mjs", "esm");
  const origin = started(await startOrigin({ name: "a", mode: "edge", lookupToken: LOOKUP_TOKEN }));
  const opts = workerOptions(origin, peerFile);

  const only = process.env.BENCH_CASES?.split(",").map((c) => c.trim()).filter(Boolean);
  if (only) return onlyCases(opts, origin, only);

  const phases = planPhases();
  log(`plan: ${phases.map((ph) => ph.key).join(", ")}: about ${Math.round(planSeconds(phases) / 60)} min of wrk, plus about 1.5 min`);

  // Cold start first, while no other workerd is running.
  log("cold start");
  const cold = await engineColdStart([
    ["JS passthrough", "js", await bundle("passthrough.mjs", "iife")],
    ["workers-rs passthrough", "wasm", join(RS_BUILD, "index_bg.wasm")],
    ["edge-session", "wasm", join(EDGE_BUILD, "index_bg.wasm")],
    ["JS peer", "js", await bundle("peer.mjs", "iife")],
  ]);
  const coldWorkers = [
    ["JS passthrough", "jsPassthrough"],
    ["workers-rs passthrough", "rsPassthrough"],
    ["edge-session", "edge"],
    ["JS peer", "peer"],
  ];
  const coldRuns = new Map(coldWorkers.map(([label]) => [label, []]));
  for (let rep = 0; rep < COLD_REPS; rep++) {
    for (let i = 0; i < coldWorkers.length; i++) {
      const [label, id] = coldWorkers[(i + rep) % coldWorkers.length];
      coldRuns.get(label).push(await workerColdStart(opts[id](), usesKv(id) ? "direct" : undefined));
    }
  }
  for (const [label, runs] of coldRuns) {
    Object.assign(cold.get(label), { ready: median(runs.map((r) => r.ready)), first: median(runs.map((r) => r.first)) });
  }

  log("data-path check");
  const dataCheck = await dataPathCheck(opts);

  // The phases, grouped by KV: each group on its own workers (the passthroughs, which have no
  // KV, serve every group), closed when the group is done.
  const results = new Map(); // phase key → case id → runs
  let shared = {};
  let cases;
  for (const kv of [...new Set(phases.map((ph) => ph.kv))]) {
    log(`starting workers: ${kvLabel(kv)}`);
    const { w, fresh } = await startWorkers(opts, kv, shared);
    shared = Object.fromEntries([...PASSTHROUGHS].map((id) => [id, w[id]]));
    const group = phases.filter((ph) => ph.kv === kv);
    cases = makeCases(origin, w);
    await warmUp(cases, w, fresh, [...new Set(group.flatMap((ph) => ph.cases))]);
    for (const ph of group) results.set(ph.key, await runPhase(ph, cases));
    for (const id of fresh.filter(usesKv)) await stop(w[id]);
  }
  // Free the machine for the paced KV-count run: close the workers, keep the origin (opened first).
  while (open.length > 1) await open.pop()();

  log(`KV operations: ${KV_REQUESTS} requests over ${KV_SPAN_MS / 1000} s, edge-session and the peer at once`);
  const edgeCounted = started(await startWorker(opts.edgeCounted(), { kv: "counted" }));
  const peerCounted = started(await startWorker(opts.peerCounted(), { kv: "counted" }));
  const [edgeKv, peerKv] = await Promise.all([kvCount(edgeCounted), kvCount(peerCounted)]);
  const kv = new Map([
    ["edge-session", edgeKv],
    ["JS peer", peerKv],
  ]);

  const size = new Map([
    ["edge-session", sizes(join(EDGE_BUILD, "index_bg.wasm"))],
    ["edge-session (glue)", sizes(join(EDGE_BUILD, "index.js"))],
    ...(deployed ? [[DEPLOYED, deployed]] : []),
    ...(BEFORE_BUILD ? [["edge-session before", sizes(join(BEFORE_BUILD, "index_bg.wasm"))]] : []),
    ["workers-rs passthrough", sizes(join(RS_BUILD, "index_bg.wasm"))],
    ["workers-rs passthrough (glue)", sizes(join(RS_BUILD, "index.js"))],
    ["JS peer (bundle)", sizes(peerFile)],
    ["JS passthrough", sizes(join(BENCH, "workers", "passthrough.mjs"))],
  ]);

  const facts = {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    commit: fact("git", ["-C", ROOT, "rev-parse", "--short", "HEAD"]),
    machine: {
      "cores (nproc)": fact("nproc", []),
      "kernel (uname -r)": fact("uname", ["-r"]),
      CPU: fact("sh", ["-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"]),
      node: process.version,
      workerd: fact(join(ROOT, "node_modules", ".bin", "workerd"), ["--version"]),
      miniflare: pkgVersion("miniflare"),
      wrangler: pkgVersion("wrangler"),
      "hono / @hono/session": `${pkgVersion("hono")} / ${pkgVersion("@hono/session")}`,
      wrk: fact("sh", ["-c", "dpkg-query -W -f '${Version}' wrk 2>/dev/null || wrk -v"]),
      rustc: fact("bash", ["-c", ". scripts/env.sh && rustc --version"]),
      "load average (1/5/15 min) before / after": `${loadBefore} / ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`,
    },
  };
  const summaries = new Map([...results].map(([key, byCase]) => [key, Object.fromEntries(Object.entries(byCase).map(([id, runs]) => [id, summarize(runs)]))]));
  const S = (id, key = phaseKey("local", CONNECTIONS)) => summaries.get(key)?.[id];
  report({ facts, phases, S, cases, cold, size, kv, dataCheck, wallSeconds: timeMs(wall) / 1000 });
  log(`wrote bench/RESULTS.md and bench/chart.svg in ${Math.round(timeMs(wall) / 1000)} s`);
}

if (IS_MAIN) {
  try {
    await main();
  } catch (e) {
    console.error("[bench] FAILED:", e.stack ?? e);
    process.exitCode = 1;
  } finally {
    await closeAll();
  }
}
