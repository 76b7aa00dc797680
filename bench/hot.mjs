// The ticket path's own cost, in Node: the worker's entry (the wasm and its glue) against the
// bench's JS passthrough, without workerd, the network or an origin around them.
//
//   node bench/hot.mjs [iterations] [build dir ...]   # default 20000, build/
//
// Loads each built worker (index.js and its wasm, exactly as deployed) in Node
// (tests/node-worker.mjs), with a KV namespace in memory and a stand-in for the platform's
// fetch (the origin: it signs alice in on POST /login and answers a small JSON body
// otherwise), signs alice in through the worker's own login path, then sends ticket-path
// requests through the worker's fetch handler (src/edge/entry-core.mjs: `quick`, the
// forward, `respondNow`) and, in turn, through the bench's JS passthrough
// (bench/workers/passthrough.mjs) over the same stand-in. Batches of 1000 requests of each
// alternate, so that all see the same machine; it prints the median and the 90th percentile
// of the batches in µs per request, and each worker's median over the passthrough's. Every
// response is checked (status, the identity forwarded, no write scheduled): a failed check
// exits 1.
//
// Node's V8 is workerd's, but its Request, Headers and Response are not workerd's (they cost
// more): compare builds with it, side by side in one run (name several), and measure the
// worker itself with `make bench`. Not part of make test.
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { cookieOf, loadWorker, workerEnv } from "../tests/node-worker.mjs";
// The bench's own JS passthrough, run over the same stand-in fetch.
import passthrough from "./workers/passthrough.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const N = Number(process.argv[2] ?? 20000);
const BUILDS = process.argv.slice(3).map((dir) => resolve(dir));
if (!BUILDS.length) BUILDS.push(join(ROOT, "build"));
const BATCH = 1000;
if (!Number.isInteger(N) || N < BATCH) throw new Error(`iterations: a whole number of at least ${BATCH}`);
const BODY = JSON.stringify({ ok: true, path: "/echo/b" });

// The origin behind every worker here; `forwarded` keeps the headers of the last forward.
let forwarded;
globalThis.fetch = async (input, init = {}) => {
  forwarded = init.headers ?? input.headers;
  const url = new URL(typeof input === "string" ? input : input.url);
  if (url.pathname === "/login") return new Response(null, { status: 303, headers: { location: "/", "x-edge-session-login": "alice" } });
  return new Response(BODY, { headers: { "content-type": "application/json", "content-length": String(BODY.length) } });
};

/** The fetch handler of the worker built in `dir`, its environment, and alice's cookies. */
async function load(dir) {
  const { handler } = await loadWorker(dir);
  const env = workerEnv();
  const pending = [];
  const ctx = { waitUntil: (p) => pending.push(p), passThroughOnException() {} };
  const login = await handler.fetch(new Request("https://shop.example/login", { method: "POST" }), env, ctx);
  await Promise.all(pending.splice(0));
  const cookie = cookieOf(login);
  if (login.status !== 303 || !cookie.includes(";")) throw new Error(`${dir}: login answered ${login.status}, cookies: ${cookie}`);
  const request = () => new Request("https://shop.example/echo/b", { headers: { cookie, accept: "*/*", "user-agent": "wrk" } });
  // The first request signs the assertion (asynchronously); from then on the path is synchronous.
  await handler.fetch(request(), env, ctx);
  const run = async (req) => {
    const response = await handler.fetch(req, env, ctx);
    if (response.status !== 200 || forwarded.get("x-session-user") !== "alice" || !forwarded.get("x-session-assertion")) {
      throw new Error(`${dir}: the ticket path answered ${response.status}, forwarded as ${forwarded.get("x-session-user")}`);
    }
    if (pending.length) throw new Error(`${dir}: the ticket path scheduled a write`);
  };
  return { run, request };
}

const workers = new Map();
for (const [i, dir] of BUILDS.entries()) workers.set(BUILDS.length > 1 ? `${dir}` : "edge-session, ticket path", await load(dir));
const { request } = [...workers.values()][0];
workers.set("JS passthrough", {
  request,
  run: async (req) => {
    const response = await passthrough.fetch(req, { ORIGIN_URL: "http://127.0.0.1:9" });
    if (response.status !== 200) throw new Error(`JS passthrough: ${response.status}`);
  },
});

const times = new Map([...workers.keys()].map((name) => [name, []]));
for (let done = 0; done < N; done += BATCH) {
  for (const [name, { run, request }] of workers) {
    // A new request each time, as the platform makes one for each request.
    const requests = Array.from({ length: BATCH }, request);
    const t0 = process.hrtime.bigint();
    for (const req of requests) await run(req);
    times.get(name).push(Number(process.hrtime.bigint() - t0) / BATCH / 1000);
  }
}
// The first two batches warm V8 up: left out.
const at = (values, p) => {
  const s = values.slice(Math.min(2, values.length - 1)).sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
console.log(`${N} requests each, µs per request (median / p90 of batches of ${BATCH}), and over the JS passthrough's median`);
const floor = at(times.get("JS passthrough"), 0.5);
for (const [name, values] of times) {
  const m = at(values, 0.5);
  console.log(`  ${name.padEnd(28)} ${m.toFixed(1).padStart(6)} / ${at(values, 0.9).toFixed(1).padStart(6)}   ${(m / floor).toFixed(2)}x`);
}
