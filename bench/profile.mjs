// A V8 CPU profile of one bench case's worker under load, and where its time goes.
//
//   node bench/profile.mjs <case> [seconds]     # e.g. edgeTicket 5, jsPassthrough 5
//   node bench/profile.mjs --report <file.cpuprofile>   # the summary of a profile written before
//
// Starts the demo origin and the one worker the case needs exactly as bench/run.mjs does
// (its workerOptions and makeCases: same bindings, same settings, same request, same
// check of the answer), in its own workerd with the V8 inspector on; warms it up with
// wrk; then connects to the inspector target of the worker (not Miniflare's own
// workers in the same workerd), starts the sampling profiler (Profiler.start, every
// PROFILE_INTERVAL_US µs) and loads the case with wrk -t1 -c16 for `seconds` (default 5,
// at most 10), stops the profiler and
//   - writes the profile to .tmp/profile-<case>.cpuprofile (Chrome DevTools, Performance
//     panel, "Load profile", or speedscope, open it as it is), and what the run measured
//     beside it to .tmp/profile-<case>.json (for --report);
//   - prints the top functions by self time (share of the samples, and ms: the samples
//     times the sampler's period, see tally()), with their script and position, the
//     totals by category: the wasm's functions, V8's wrappers between wasm and JS, the JS
//     of the worker's own modules (edge-session's index.js: entry-core, native.js,
//     wasm-bindgen's glue), workerd's and V8's builtins (native API calls such as
//     Headers.get show as their JS name with no script; a native getter called from the
//     worker's JS, such as request.method, may count as that JS function's own time),
//     and V8's states "(program)" (in the isolate but in no JS: workerd's C++ under the
//     isolate's lock), "(garbage collector)" and "(idle)"; and the worker's own JS
//     functions by total time (with what they call: wasm exports and imports too);
//   - the requests wrk completed, the workerd process's CPU time over the run (all its
//     threads: also Miniflare's own workers, workerd's HTTP outside any isolate and the
//     profiler's sampling thread, none of which the profile sees), by thread, and the
//     samples and the sampled time per request.
//
// Cases: those of bench/run.mjs's makeCases but the origin's (the usage line lists them), on
// local KV. BENCH_EDGE_BUILD picks edge-session's build as for the bench (build/). A release
// build's index.js is minified: its functions show with one-letter names, each printed with
// the start of its source text to tell which it is, and its wasm has no name section: its
// functions show as wasm-function[<index>]. A build made with EDGE_SESSION_KEEP_NAMES=1 scripts/build.sh
// keeps both kinds of names (its wasm optimised with -O rather than -Oz: close to the
// release build's profile, not the same code).
//
// Settings (environment): PROFILE_INTERVAL_US (100), PROFILE_WARMUP_SECONDS (2),
// PROFILE_CONNECTIONS (16), PROFILE_TOP (40). PROFILE_OTHERS=1 also profiles Miniflare's
// own workers in the same workerd that serve requests (core:entry, which every request
// goes through first, and strip-cf-connecting-ip, through which every subrequest goes;
// not its cache and KV workers), or PROFILE_OTHERS=<target id>,... those, and prints
// their samples per request: what of workerd's CPU is not the worker's. Each profiled
// isolate adds a sampling thread, which on 2 cores slows everything down: compare
// samples per request between cases, not the absolute figures.
//
// The profiler costs workerd CPU of its own (the warm-up's CPU per request, printed
// first, is without it): the shares are what to read, more than the absolute figures.
// Not part of `make test` or `make bench`; one profile at a time, on a quiet machine.
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnSync } from "node:child_process";
// ws: the WebSocket client Miniflare itself depends on (Node 20 has no WebSocket of its own).
import WebSocket from "ws";
import { startOrigin } from "../www/origin.mjs";
import { CLK_TCK, killChildren, startWorker, wrk } from "./helpers.mjs";
import { LOOKUP_TOKEN, bundle, makeCases, prepared, usesKv, workerOptions } from "./run.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(ROOT, ".tmp");
const EDGE_BUILD = resolve(ROOT, process.env.BENCH_EDGE_BUILD || "build");
const RS_BUILD = join(ROOT, "bench", "passthrough-rs", "build");

const setting = (name, fallback, min, max) => {
  const v = Number(process.env[name] || fallback);
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${name} must be a whole number from ${min} to ${max}`);
  return v;
};
const INTERVAL_US = setting("PROFILE_INTERVAL_US", 100, 10, 10_000);
const WARMUP_SECONDS = setting("PROFILE_WARMUP_SECONDS", 2, 1, 10);
const CONNECTIONS = setting("PROFILE_CONNECTIONS", 16, 1, 256);
const TOP = setting("PROFILE_TOP", 40, 1, 1000);
const OTHERS = process.env.PROFILE_OTHERS || "";

/** The worker of bench/run.mjs's workerOptions that serves each case of its makeCases, read off
 *  the cases made over stand-in workers whose pid is their name (the origin has no worker; the
 *  cases of BENCH_BEFORE_BUILD are left to the bench). */
const WORKER_OF = Object.fromEntries(
  makeCases({ url: "" }, new Proxy({}, { get: (_, name) => ({ pid: name, url: "" }) }))
    .filter((c) => typeof c.pid === "string" && !c.id.endsWith("Before"))
    .map((c) => [c.id, c.pid]),
);
// The cases that send the ticket path's own request: the cookies of a login at its worker.
const TICKET_REQUEST = new Set(["jsPassthroughTicket", "jsTicketWork"]);
const WORKER_NAME = "bench-worker"; // the name bench/helpers.mjs gives the measured worker
const MAX_SECONDS = 10;

const log = (...args) => console.error("[profile]", ...args);
const fmt = (n, digits = 1) => n.toFixed(digits);

// ------------------------------------------------------------------ the inspector

/** A Chrome DevTools Protocol session over the inspector's WebSocket: send() → the result. */
async function cdp(wsUrl) {
  const ws = new WebSocket(wsUrl, { perMessageDeflate: false, maxPayload: 1 << 30 });
  await new Promise((ok, fail) => {
    ws.once("open", ok);
    ws.once("error", fail);
  });
  let next = 1;
  const waiting = new Map();
  ws.on("message", (data) => {
    const msg = JSON.parse(data.toString());
    const w = msg.id !== undefined && waiting.get(msg.id);
    if (!w) return; // events: none asked for
    waiting.delete(msg.id);
    if (msg.error) w.fail(new Error(`${w.method}: ${msg.error.message}`));
    else w.ok(msg.result);
  });
  ws.on("close", () => {
    for (const w of waiting.values()) w.fail(new Error(`${w.method}: the inspector closed the connection`));
    waiting.clear();
  });
  return {
    send(method, params = {}) {
      const id = next++;
      return new Promise((ok, fail) => {
        waiting.set(id, { ok, fail, method });
        ws.send(JSON.stringify({ id, method, params }));
      });
    },
    close: () => ws.close(),
  };
}

/**
 * The inspector targets (webSocketDebuggerUrl) of a workerd: workerd lists one per worker.
 * `main` is the measured worker's ("core:user:bench-worker"), `others` Miniflare's own.
 */
async function targetsOf(inspectorUrl) {
  const list = await (await fetch(new URL("/json/list", inspectorUrl.replace(/^ws/, "http")))).json();
  const t = list.find((x) => x.id === `core:user:${WORKER_NAME}`);
  if (!t) throw new Error(`no inspector target for ${WORKER_NAME} among ${list.map((x) => x.id).join(", ")}`);
  return { main: t.webSocketDebuggerUrl, others: list.filter((x) => x !== t).map((x) => ({ id: x.id, url: x.webSocketDebuggerUrl })) };
}

// ------------------------------------------------------------------ workerd's threads

/** CPU ticks (utime + stime) of each thread of a process: tid → { comm, ticks }. */
function threadTicks(pid) {
  const out = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const close = text.lastIndexOf(")");
      const fields = text.slice(close + 2).split(" ");
      out.set(tid, { comm: text.slice(text.indexOf("(") + 1, close), ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // the thread ended
    }
  }
  return out;
}

/** The CPU time (ms) each kind of thread (by name) spent between two threadTicks(), largest first. */
function threadsSince(before, after) {
  const byName = new Map();
  for (const [tid, t] of after) {
    const ms = ((t.ticks - (before.get(tid)?.ticks ?? 0)) * 1000) / CLK_TCK;
    const e = byName.get(t.comm) ?? { name: t.comm, threads: 0, ms: 0 };
    e.threads++;
    e.ms += ms;
    byName.set(t.comm, e);
  }
  return [...byName.values()].filter((e) => e.ms > 0).sort((a, b) => b.ms - a.ms);
}

// ------------------------------------------------------------------ the analysis

const STATES = new Set(["(program)", "(garbage collector)", "(idle)", "(root)"]);
const CATEGORIES = ["wasm", "wasm<->JS wrappers", "worker JS", "runtime JS", "builtins / native", "(program)", "(garbage collector)", "(idle)"];

/** The category of a call frame; `own` tells whether a script URL is one of the worker's own modules. */
function category(frame, own) {
  const { functionName: name, url } = frame;
  if (STATES.has(name)) return name === "(root)" ? "(program)" : name;
  // V8's wrappers at the boundary: js-to-wasm:<signature> (a wasm export called from JS,
  // under the module's URL) and wasm-to-js (an import called from wasm).
  if (name.startsWith("js-to-wasm") || name.startsWith("wasm-to-js")) return "wasm<->JS wrappers";
  if (url.startsWith("wasm://")) return "wasm";
  if (url === "") return "builtins / native";
  return own(url) ? "worker JS" : "runtime JS";
}

const keyOf = (f) => `${f.functionName}\u0000${f.url}\u0000${f.lineNumber}\u0000${f.columnNumber}`;

/**
 * Samples by function of a CDP profile: `self`, the samples in the function itself, and
 * `total`, those with the function anywhere on the stack (counted once per sample);
 * a function is (functionName, url, line, column), its call paths merged.
 *
 * Counts rather than the time between samples: V8 keeps a sample only when the thread
 * holds the isolate's lock (between events workerd releases it, serves its I/O and runs
 * Miniflare's other workers on the same thread; the profile's gaps of milliseconds
 * between runs of samples 0.2 ms apart show it), so a long gap after a sample is time
 * outside the isolate, not time in the function sampled before it. While the lock is
 * held the sampler ticks at a steady period, the median gap (`period`; about twice the
 * interval asked, on the 2-core machine), which turns counts into time (`ms`).
 */
function tally(profile) {
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const functions = new Map(); // key → { frame, self, total }
  const entry = (f) => {
    const k = keyOf(f);
    let e = functions.get(k);
    if (!e) functions.set(k, (e = { frame: f, self: 0, total: 0 }));
    return e;
  };
  const hits = new Map(); // node id → samples
  for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
  for (const [id, n] of hits) {
    entry(byNode.get(id).callFrame).self += n;
    const seen = new Set();
    for (let x = id; x !== undefined; x = parent.get(x)) {
      const f = byNode.get(x).callFrame;
      const k = keyOf(f);
      if (seen.has(k)) continue;
      seen.add(k);
      entry(f).total += n;
    }
  }
  const gaps = profile.timeDeltas.slice(1).sort((a, b) => a - b);
  const period = gaps.length ? gaps[gaps.length >> 1] : INTERVAL_US;
  const span = profile.endTime - profile.startTime;
  return { functions: [...functions.values()], samples: profile.samples.length, period, span, gaps };
}

/** The non-idle samples of a profile. */
function busy(profile) {
  return { busy: profile.samples.length - tally(profile).functions.filter((e) => e.frame.functionName === "(idle)").reduce((a, e) => a + e.self, 0) };
}

/** The start of a function's source text at (line, column) of a script: a minified name's function, to tell which it is. */
function snippetAt(text, line, column) {
  if (text === undefined || line < 0 || column < 0) return "";
  const src = text.split("\n")[line] ?? "";
  // Back to the start of the declaration: "function x(", "async x(", "x=(a)=>".
  const before = src.slice(Math.max(0, column - 40), column);
  const cut = Math.max(before.lastIndexOf(";"), before.lastIndexOf("}"), before.lastIndexOf("{"), before.lastIndexOf(","));
  return (before.slice(cut + 1) + src.slice(column, column + 56)).replace(/\s+/g, " ");
}

/**
 * The summary of a profile, as text. `scripts`: url → the source text of the worker's
 * own modules, for the snippets; `own`: whether a url is one of them; `run`: what wrk and
 * /proc measured ({ requests, rps, cpuMs }); `intervalUs`: the sampling interval asked.
 */
function report(profile, { scripts = new Map(), own = () => false, run, warmUp, threads, others, intervalUs = INTERVAL_US, top = TOP } = {}) {
  const { functions, samples, period, span, gaps } = tally(profile);
  const lines = [];
  const p = (s = "") => lines.push(s);
  const pct = (n) => `${fmt((100 * n) / Math.max(1, samples), 2).padStart(6)}%`;
  const ms = (n) => fmt((n * period) / 1000).padStart(8);
  const name = (f) => f.functionName || "(anonymous)";
  const where = (f) => {
    if (f.url === "") return "";
    if (f.url.startsWith("wasm://")) return `wasm@${f.columnNumber}`;
    return `${f.url.replace(/^.*\//, "")}:${f.lineNumber + 1}:${f.columnNumber + 1}`;
  };
  const describe = (e, cat) => {
    const f = e.frame;
    const snippet = cat === "worker JS" ? snippetAt(scripts.get(f.url), f.lineNumber, f.columnNumber) : "";
    return `${name(f)}${where(f) ? `  (${where(f)})` : ""}${snippet ? `  ${JSON.stringify(snippet)}` : ""}`;
  };
  const longGaps = gaps.filter((g) => g > 10 * period).reduce((a, g) => a + g, 0);
  p(
    `${samples} samples over ${fmt(span / 1000, 0)} ms; sampling asked every ${intervalUs} µs, median gap ${period} µs` +
      ` (ms below: samples x ${period} µs); ${fmt((100 * longGaps) / Math.max(1, span), 0)}% of the time in gaps over ${10 * period} µs (outside the isolate)`,
  );
  if (run) {
    p(
      `${run.requests} requests (${Math.round(run.rps)}/s) under the profiler; workerd CPU ${fmt(run.cpuMs, 0)} ms (all threads), ${fmt((run.cpuMs / run.requests) * 1000, 0)} ms per 1000 requests;` +
        ` ${fmt(samples / run.requests, 2)} samples a request`,
    );
  }
  if (warmUp) {
    p(`warm-up before it, no profiler: ${Math.round(warmUp.rps)} req/s, workerd CPU ${fmt((warmUp.cpuMs / warmUp.requests) * 1000, 0)} ms per 1000 requests`);
  }
  p();
  const selfOrder = [...functions].filter((e) => e.self > 0).sort((a, b) => b.self - a.self);
  p(`Top ${Math.min(top, selfOrder.length)} functions by self samples:`);
  p(`${"self".padStart(7)} ${"ms".padStart(8)} ${"samples".padStart(7)}  ${"category".padEnd(19)} function  (script:line:column, wasm@byte offset)`);
  for (const e of selfOrder.slice(0, top)) {
    const cat = category(e.frame, own);
    p(`${pct(e.self)} ${ms(e.self)} ${String(e.self).padStart(7)}  ${cat.padEnd(19)} ${describe(e, cat)}`);
  }
  p();
  p("By category (self samples):");
  const cats = new Map(CATEGORIES.map((c) => [c, { n: 0, functions: 0 }]));
  for (const e of functions) {
    if (e.self === 0) continue;
    const c = cats.get(category(e.frame, own));
    c.n += e.self;
    c.functions++;
  }
  const idle = cats.get("(idle)").n;
  for (const [c, s] of cats) {
    const ofBusy = c === "(idle)" ? "".padEnd(19) : `${fmt((100 * s.n) / Math.max(1, samples - idle), 2).padStart(6)}% of non-idle`;
    const perRequest = run && c !== "(idle)" ? `${fmt((s.n * period) / run.requests, 1).padStart(7)} µs a request` : "";
    p(`${c.padEnd(20)} ${pct(s.n)} ${ms(s.n)} ms  ${ofBusy}  ${perRequest}  (${s.functions} functions)`);
  }
  if (run) p(`${"non-idle".padEnd(20)} ${pct(samples - idle)} ${ms(samples - idle)} ms  ${"".padEnd(19)}  ${fmt(((samples - idle) * period) / run.requests, 1).padStart(7)} µs a request`);
  if (run && threads?.length) {
    p();
    p("workerd's CPU time by thread over the run (/proc; the profile sees only the worker's isolate on the main thread):");
    for (const t of threads) p(`${t.name.padEnd(20)} ${fmt(t.ms, 0).padStart(7)} ms  ${fmt((t.ms * 1000) / run.requests, 1).padStart(7)} µs a request  (${t.threads} thread${t.threads > 1 ? "s" : ""})`);
  }
  if (others?.length) {
    p();
    // Their own gaps say little of the sampler's period (each runs briefly per request),
    // so their samples are counted at the measured worker's period: the same sampler settings.
    p(`Miniflare's own workers in the same workerd, profiled alongside (non-idle samples; ms: x ${period} µs):`);
    const me = samples - idle;
    p(`${"(the worker)".padEnd(28)} ${String(me).padStart(7)} samples ${ms(me)} ms${run ? `  ${fmt(me / run.requests, 3)} samples a request` : ""}`);
    for (const o of others) p(`${o.id.padEnd(28)} ${String(o.busy).padStart(7)} samples ${ms(o.busy)} ms${run ? `  ${fmt(o.busy / run.requests, 3)} samples a request` : ""}`);
  }
  const mine = functions.filter((e) => ["worker JS", "wasm"].includes(category(e.frame, own)) && e.total > 0).sort((a, b) => b.total - a.total);
  if (mine.length) {
    p();
    p("The worker's own functions, JS and wasm, by total samples (with all they call):");
    p(`${"total".padStart(7)} ${"ms".padStart(8)} ${"self".padStart(7)}  ${"category".padEnd(19)} function`);
    for (const e of mine.slice(0, Math.min(30, top))) {
      const cat = category(e.frame, own);
      p(`${pct(e.total)} ${ms(e.total)} ${pct(e.self)}  ${cat.padEnd(19)} ${describe(e, cat)}`);
    }
  }
  return lines.join("\n");
}

// ------------------------------------------------------------------ the run

async function profileCase(id, seconds) {
  const workerId = WORKER_OF[id];
  if (!workerId) throw new Error(`unknown case ${id} (known: ${Object.keys(WORKER_OF).join(", ")})`);
  if (workerId.startsWith("edge")) {
    for (const f of ["index.js", "index_bg.wasm"]) {
      if (!existsSync(join(EDGE_BUILD, f))) throw new Error(`${join(EDGE_BUILD, f)} is missing: run \`make build\` (or set BENCH_EDGE_BUILD)`);
    }
  }
  if (workerId === "rsPassthrough" && !existsSync(join(RS_BUILD, "index_bg.wasm"))) throw new Error("bench/passthrough-rs/build is missing: run `bash bench/build-passthrough.sh`");
  if (spawnSync("wrk", ["-v"]).error) throw new Error("wrk is missing: run `bash bench/ensure-wrk.sh`");

  const open = [];
  const cleanup = async () => {
    killChildren();
    while (open.length) await open.pop()().catch((e) => log("close:", e.message));
  };
  for (const sig of ["SIGINT", "SIGTERM"]) {
    process.on(sig, async () => {
      log(`${sig}: stopping`);
      await cleanup();
      process.exit(130);
    });
  }
  try {
    const origin = await startOrigin({ name: "a", mode: "edge", lookupToken: LOOKUP_TOKEN });
    open.push(origin.close);
    const peerFile = workerId.startsWith("peer") ? await bundle("peer.mjs", "esm") : undefined;
    const options = workerOptions(origin, peerFile)[workerId]();
    const worker = await startWorker(options, { kv: usesKv(workerId) ? "direct" : undefined, inspect: true });
    open.push(worker.close);
    // makeCases reads every worker's url and pid: the others are not started, except the
    // ticket path's worker for the cases that send its login's cookies (their prepare logs in).
    const w = new Proxy({ [workerId]: worker }, { get: (t, k) => t[k] ?? { url: undefined, pid: undefined } });
    if (TICKET_REQUEST.has(id)) {
      const edge = await startWorker(workerOptions(origin, peerFile).edge(), { kv: "direct" });
      open.push(edge.close);
      w.edge = edge;
    }
    const c = makeCases(origin, w).find((x) => x.id === id);
    const scripts = new Map();
    const dir = workerId.startsWith("edge") ? EDGE_BUILD : workerId === "rsPassthrough" ? RS_BUILD : dirname(options.scriptPath);
    log(`${c.label}: worker from ${relative(ROOT, options.scriptPath) || options.scriptPath}, workerd pid ${worker.pid}`);

    const load = async (round, secs) => {
      const plan = await prepared(c, round, secs);
      return async () => {
        const r = await wrk(c.url, { seconds: secs, connections: CONNECTIONS, headers: plan.headers, script: plan.script, scriptArgs: plan.scriptArgs, pid: worker.pid });
        if (r.bad || r.socketErrors || r.requests === 0) throw new Error(`${c.label}: ${r.requests} requests, ${r.bad} not 2xx/3xx, ${r.socketErrors} socket errors`);
        return r;
      };
    };

    log(`warm-up: ${WARMUP_SECONDS} s, -c${CONNECTIONS}`);
    const warm = await (await load(0, WARMUP_SECONDS))();
    log(`warm-up: ${Math.round(warm.rps)} req/s, CPU ${fmt((warm.cpuMs / warm.requests) * 1000, 0)} ms per 1000 requests (no profiler)`);

    const targets = await targetsOf(worker.inspectorUrl);
    const session = await cdp(targets.main);
    open.push(async () => session.close());
    // PROFILE_OTHERS: Miniflare's own workers in the same workerd too (its entry worker
    // sees every request first, another strips a header from every subrequest), each
    // summed up in one line.
    const others = [];
    if (OTHERS) {
      const ids = OTHERS === "1" ? undefined : OTHERS.split(",").map((x) => x.trim());
      const chosen = targets.others.filter((t) => (ids ? ids.includes(t.id) : !/^(cache|kv):/.test(t.id)));
      if (ids && chosen.length !== ids.length) throw new Error(`PROFILE_OTHERS: not all of ${ids} among the targets ${targets.others.map((t) => t.id)}`);
      for (const t of chosen) {
        const s = await cdp(t.url);
        open.push(async () => s.close());
        others.push({ id: t.id, session: s });
      }
    }
    const go = await load(1, seconds);
    for (const s of [session, ...others.map((o) => o.session)]) {
      await s.send("Profiler.enable");
      await s.send("Profiler.setSamplingInterval", { interval: INTERVAL_US });
      await s.send("Profiler.start");
    }
    log(`profiling: ${seconds} s, -c${CONNECTIONS}, a sample every ${INTERVAL_US} µs${others.length ? `, with ${others.map((o) => o.id).join(", ")}` : ""}`);
    const threads0 = threadTicks(worker.pid);
    const run = await go();
    const threads = threadsSince(threads0, threadTicks(worker.pid));
    const { profile } = await session.send("Profiler.stop");
    for (const o of others) o.profile = (await o.session.send("Profiler.stop")).profile;
    mkdirSync(OUT, { recursive: true });
    const file = join(OUT, `profile-${id}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    log(`wrote ${relative(ROOT, file)}`);

    // The worker's own modules: the scripts of the profile under the worker's directory
    // (workerd names a module by its path from modulesRoot, or the script path).
    const own = ownModules(profile, dir);
    for (const url of new Set(profile.nodes.map((n) => n.callFrame.url).filter(own))) {
      const path = moduleFile(url, dir);
      if (path) scripts.set(url, readFileSync(path, "utf8"));
    }
    const meta = {
      case: id,
      label: c.label,
      seconds,
      connections: CONNECTIONS,
      intervalUs: INTERVAL_US,
      run: { requests: run.requests, rps: run.rps, cpuMs: run.cpuMs },
      warmUp: { seconds: WARMUP_SECONDS, requests: warm.requests, rps: warm.rps, cpuMs: warm.cpuMs },
      threads,
      others: others.map((o) => ({ id: o.id, ...busy(o.profile) })),
      dir,
    };
    writeFileSync(join(OUT, `profile-${id}.json`), JSON.stringify(meta, null, 2));
    console.log(`${c.label} (${id}): ${seconds} s, wrk -t1 -c${CONNECTIONS}\n`);
    console.log(report(profile, { scripts, own, run, warmUp: meta.warmUp, threads: meta.threads, others: meta.others }));
  } finally {
    await cleanup();
  }
}

/** The file of a worker module URL in `dir`, when there is one. */
function moduleFile(url, dir) {
  const path = url.replace(/^file:\/\//, "");
  for (const p of [path, join(dir, path), join(dir, path.replace(/^.*\//, ""))]) if (existsSync(p) && p.startsWith(dir)) return p;
  return undefined;
}

/** Whether a script URL of the profile is one of the worker's own modules (a file in `dir`). */
function ownModules(profile, dir) {
  return (url) => url !== "" && !url.startsWith("wasm://") && moduleFile(url, dir) !== undefined;
}

// ------------------------------------------------------------------ main

const [first, second] = process.argv.slice(2);
try {
  if (!first || first === "-h" || first === "--help") {
    console.error(`usage: node bench/profile.mjs <case> [seconds]   (cases: ${Object.keys(WORKER_OF).join(", ")}; seconds 1..${MAX_SECONDS}, default 5)`);
    console.error("       node bench/profile.mjs --report .tmp/profile-<case>.cpuprofile");
    process.exitCode = first ? 0 : 2;
  } else if (first === "--report") {
    if (!second) throw new Error("--report needs a .cpuprofile file");
    const profile = JSON.parse(readFileSync(second, "utf8"));
    const metaFile = second.replace(/\.cpuprofile$/, ".json");
    const meta = existsSync(metaFile) ? JSON.parse(readFileSync(metaFile, "utf8")) : undefined;
    const dir = meta?.dir ?? EDGE_BUILD;
    const own = ownModules(profile, dir);
    const scripts = new Map();
    for (const url of new Set(profile.nodes.map((n) => n.callFrame.url).filter(own))) scripts.set(url, readFileSync(moduleFile(url, dir), "utf8"));
    if (meta) console.log(`${meta.label} (${meta.case}): ${meta.seconds} s, wrk -t1 -c${meta.connections}\n`);
    console.log(report(profile, { scripts, own, run: meta?.run, warmUp: meta?.warmUp, threads: meta?.threads, others: meta?.others, intervalUs: meta?.intervalUs }));
  } else {
    const seconds = second === undefined ? 5 : Number(second);
    if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_SECONDS) throw new Error(`seconds: a whole number from 1 to ${MAX_SECONDS}`);
    await profileCase(first, seconds);
  }
} catch (e) {
  console.error("[profile] FAILED:", e.stack ?? e);
  process.exitCode = 1;
}
