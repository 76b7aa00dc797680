// The worker's own cost inside workerd, without the network: each measured request to a small
// driver worker runs N requests through edge-session's fetch handler (or the bench's JS
// passthrough) over a stand-in origin, and the workerd process's CPU time (/proc) over it,
// divided by N, is the cost of one. workerd's own Request, Headers and Response, unlike
// bench/hot.mjs in Node; no wrk, no origin and no HTTP, unlike bench/run.mjs.
//
//   node bench/loop.mjs [build dir ...]     # default build/; several: side by side
//
// Cases (LOOP_CASES, comma-separated; default all): `request` (making the Request only: the
// floor under the others), `passthrough` (bench/workers/passthrough.mjs), `public` (edge-session,
// a public path), `ticket` (edge-session, the ticket path after a login). Each round runs every
// case of every build once, LOOP_N (20000) requests each; LOOP_ROUNDS (6) rounds after a warm-up
// one. Prints the median and the least µs per request over rounds. CPU is read in clock ticks
// (1/100 s): keep LOOP_N large. Not part of make test or make bench; one run at a time, on a
// quiet machine (on a busy one, rounds differ by 15% or more).
import { cpSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { cpuMs, killChildren, median, startWorker } from "./helpers.mjs";
import { workerEnv } from "../tests/node-worker.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const BUILDS = process.argv.slice(2).map((dir) => resolve(dir));
if (!BUILDS.length) BUILDS.push(join(ROOT, "build"));
const N = Number(process.env.LOOP_N ?? 20000);
const ROUNDS = Number(process.env.LOOP_ROUNDS ?? 6);
const CASES = (process.env.LOOP_CASES ?? "request,passthrough,public,ticket").split(",");

// The driver: imports the build's entry beside it, stands in for the origin, and loops.
const DRIVER = `
import handler from "./index.js";
import passthrough from "./passthrough.mjs";
const BODY = JSON.stringify({ ok: true, pad: "x".repeat(600) });
globalThis.fetch = async (input) => {
  const url = typeof input === "string" ? input : input.url;
  if (url.endsWith("/login")) return new Response(null, { status: 303, headers: { location: "/", "x-edge-session-login": "alice" } });
  return new Response(BODY, { headers: { "content-type": "application/json" } });
};
let cookie = "";
const request = (path, cookie) => new Request("https://shop.example" + path, { headers: { ...(cookie ? { cookie } : {}), accept: "*/*", "user-agent": "wrk" } });
export default {
  async fetch(req, env, ctx) {
    const url = new URL(req.url);
    if (url.pathname === "/login") {
      const login = await handler.fetch(new Request("https://shop.example/login", { method: "POST" }), env, ctx);
      cookie = login.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
      // The first ticket-path request signs the assertion (asynchronously); then it is cached.
      const first = await handler.fetch(request("/echo/b", cookie), env, ctx);
      return new Response(login.status + " " + first.status);
    }
    const n = Number(url.searchParams.get("n")), what = url.searchParams.get("case");
    for (let i = 0; i < n; i++) {
      const r = what === "public" ? request("/echo/public/b") : request("/echo/b", cookie);
      if (what === "request") continue;
      const res = what === "passthrough" ? await passthrough.fetch(r, env) : await handler.fetch(r, env, ctx);
      await res.arrayBuffer();
      if (res.status !== 200) return new Response(what + ": " + res.status, { status: 500 });
    }
    return new Response("ok");
  },
};
`;

const workers = [];
try {
  for (const [i, build] of BUILDS.entries()) {
    const dir = join(ROOT, ".tmp", "loop", String(i));
    mkdirSync(dir, { recursive: true });
    cpSync(build, dir, { recursive: true });
    cpSync(join(ROOT, "bench", "workers", "passthrough.mjs"), join(dir, "passthrough.mjs"));
    writeFileSync(join(dir, "driver.mjs"), DRIVER);
    // The settings of bench/hot.mjs and tests/sync-path.test.mjs; KV is workerd's own here.
    const { SESSIONS: _inMemory, ...bindings } = workerEnv({ PUBLIC_PATHS: "/login,/echo/public/*" });
    const w = await startWorker(
      {
        scriptPath: join(dir, "driver.mjs"),
        modulesRoot: dir,
        modules: true,
        modulesRules: [{ type: "ESModule", include: ["**/*.js", "**/*.mjs"] }, { type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
        bindings,
      },
      { kv: "direct" },
    );
    const login = await (await fetch(`${w.url}/login`)).text();
    if (login !== "303 200") throw new Error(`${build}: login and first request answered ${login}`);
    workers.push({ build, w, times: new Map() });
  }
  const run = async (w, what, n) => {
    const before = cpuMs(w.pid);
    const res = await fetch(`${w.url}/?case=${what}&n=${n}`);
    const text = await res.text();
    if (res.status !== 200) throw new Error(text);
    return ((cpuMs(w.pid) - before) * 1000) / n;
  };
  for (let round = 0; round <= ROUNDS; round++) {
    for (const { w, times } of workers) {
      for (const what of CASES) {
        if (round === 0) {
          await run(w, what, 1000); // warm-up: V8 tiers the hot code up
          continue;
        }
        if (!times.has(what)) times.set(what, []);
        times.get(what).push(await run(w, what, N));
      }
    }
  }
  console.log(`${N} requests per case per round, ${ROUNDS} rounds: workerd CPU µs per request, median (least)`);
  for (const { build, times } of workers) {
    console.log(build);
    for (const [what, values] of times) console.log(`  ${what.padEnd(12)} ${median(values).toFixed(1).padStart(7)} (${Math.min(...values).toFixed(1)})`);
  }
} finally {
  for (const { w } of workers) await w.close();
  killChildren();
}
