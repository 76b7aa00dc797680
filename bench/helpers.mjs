// Small helpers for bench/run.mjs: workers in Miniflare on a real port, the CPU
// time of the workerd serving each, wrk runs and their output, statistics, and
// the SVG chart. No dependencies beyond the project's devDependencies.
import { Miniflare } from "miniflare";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";

export const COMPATIBILITY_DATE = "2026-05-01"; // the same as wrangler.toml
const TMP = join(fileURLToPath(new URL("..", import.meta.url)), ".tmp", "bench");

// ------------------------------------------------------------------ workerd CPU time

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (getconf CLK_TCK; 100 on Linux). */
export const CLK_TCK = (() => {
  const n = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout?.trim());
  return Number.isInteger(n) && n > 0 ? n : 100;
})();

/** /proc/<pid>/stat as { comm, ppid, ticks: utime + stime }, or undefined when the process is gone. */
function procStat(pid) {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")".
  const close = text.lastIndexOf(")");
  const fields = text.slice(close + 2).split(" "); // fields[0] is field 3 (state)
  return { comm: text.slice(text.indexOf("(") + 1, close), ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
}

/** The pids of the workerd processes below this one (Miniflare spawns one per instance). */
function workerdDescendants() {
  const parent = new Map();
  const comm = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const s = procStat(name);
    if (!s) continue;
    parent.set(Number(name), s.ppid);
    comm.set(Number(name), s.comm);
  }
  const below = (pid) => {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) if (p === process.pid) return true;
    return false;
  };
  return new Set([...comm].filter(([pid, c]) => c === "workerd" && below(pid)).map(([pid]) => pid));
}

/** CPU time (user + system) of a process so far, in ms; throws when the process is gone. */
export function cpuMs(pid) {
  const s = procStat(pid);
  if (!s) throw new Error(`workerd ${pid} is gone`);
  return (s.ticks * 1000) / CLK_TCK;
}

// ------------------------------------------------------------------ workers

// Workers start one at a time, so that the workerd that appears is the new instance's.
let starting = Promise.resolve();

/**
 * Starts one worker in its own workerd (Miniflare) listening on 127.0.0.1 on a
 * free port, so that wrk can reach it. `worker` is Miniflare's worker options
 * (script, modules, bindings). `kv` binds the SESSIONS namespace: "direct" as is
 * (Miniflare's local KV), "counted" behind bench/workers/kv-counter.mjs (KV-count
 * runs), `{ hitRatio, seed }` behind bench/workers/kv-latency.mjs (the KV latency
 * model); undefined binds none.
 * `countSessionState`: the worker's SESSION_STATE Durable Object binding (from its
 * `durableObjects` option) goes through bench/workers/do-counter.mjs instead, which
 * records every call to an object (doOps()); the objects are still the worker's own.
 * `inspect`: workerd's V8 inspector on a free port of 127.0.0.1 (the result's
 * `inspectorUrl`, ws://127.0.0.1:<port>/; its /json lists one target per worker), for
 * bench/profile.mjs.
 * The worker's stdout (edge-session logs a line per request) is drained and dropped.
 * The result's `pid` is the workerd process serving it (and nothing else): cpuMs(pid)
 * before and after a load run is that run's CPU cost.
 */
export function startWorker(worker, options = {}) {
  const next = starting.then(() => startOne(worker, options));
  starting = next.catch(() => {});
  return next;
}

async function startOne(worker, { kv, countSessionState = false, inspect = false }) {
  const model = typeof kv === "object" && kv !== null ? kv : undefined;
  const main = {
    name: "bench-worker",
    compatibilityDate: COMPATIBILITY_DATE,
    ...worker,
    ...(kv === "direct" ? { kvNamespaces: { SESSIONS: "sessions" } } : {}),
  };
  const wrapped = {};
  if (kv === "counted") wrapped.SESSIONS = { scriptName: "kv-counter" };
  if (model) wrapped.SESSIONS = { scriptName: "kv-latency" };
  if (countSessionState) {
    if (!main.durableObjects?.SESSION_STATE) throw new Error("countSessionState: the worker has no SESSION_STATE Durable Object binding");
    const { SESSION_STATE: _own, ...others } = main.durableObjects;
    main.durableObjects = others;
    wrapped.SESSION_STATE = { scriptName: "do-counter" };
  }
  if (Object.keys(wrapped).length) main.wrappedBindings = wrapped;
  const workers = [main];
  const wrapper = (name, bindings) => ({
    // No compatibilityDate: a wrapped-binding worker must not set its own.
    name,
    modules: [{ type: "ESModule", path: `${name}.mjs`, contents: readFileSync(new URL(`./workers/${name}.mjs`, import.meta.url), "utf8") }],
    ...bindings,
  });
  if (kv === "counted") workers.push(wrapper("kv-counter", { kvNamespaces: { INNER: "sessions" } }));
  if (model) {
    workers.push(wrapper("kv-latency", { kvNamespaces: { INNER: "sessions" }, bindings: { HIT_RATIO: String(model.hitRatio), SEED: String(model.seed) } }));
  }
  if (countSessionState) {
    const own = worker.durableObjects.SESSION_STATE;
    // The records go to a namespace of their own: the worker's KV is not touched.
    workers.push(wrapper("do-counter", { kvNamespaces: { OPS: "do-ops" }, durableObjects: { INNER: { ...own, scriptName: "bench-worker" } } }));
  }
  const before = workerdDescendants();
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: 0,
    ...(inspect ? { inspectorPort: 0 } : {}),
    handleRuntimeStdio(stdout, stderr) {
      stdout.resume();
      stderr.resume();
    },
    workers,
  });
  let url;
  let pid;
  let inspectorUrl;
  try {
    url = (await mf.ready).toString().replace(/\/$/, "");
    if (inspect) inspectorUrl = (await mf.getInspectorURL()).toString();
    const fresh = [...workerdDescendants()].filter((p) => !before.has(p));
    if (fresh.length !== 1) throw new Error(`expected one new workerd process for the worker, found ${fresh.length}`);
    pid = fresh[0];
  } catch (e) {
    await mf.dispose().catch(() => {});
    throw e;
  }
  return {
    url,
    mf,
    pid,
    inspectorUrl,
    /** KV operations recorded by the counter since the last reset: { read, write, delete, list }. */
    async kvOps() {
      const inner = (await mf.getBindings("kv-counter")).INNER;
      const counts = { read: 0, write: 0, delete: 0, list: 0 };
      let cursor;
      do {
        const page = await inner.list({ prefix: "__op__:", cursor });
        for (const k of page.keys) counts[k.name.split(":")[1]]++;
        cursor = page.list_complete ? undefined : page.cursor;
      } while (cursor);
      return counts;
    },
    /** Calls to a Durable Object (stub.fetch) recorded by do-counter since the last reset, by HTTP method. */
    async doOps() {
      const ops = (await mf.getBindings("do-counter")).OPS;
      const counts = { total: 0 };
      let cursor;
      do {
        const page = await ops.list({ prefix: "__doop__:", cursor });
        for (const k of page.keys) {
          const method = k.name.split(":")[1];
          counts[method] = (counts[method] ?? 0) + 1;
          counts.total++;
        }
        cursor = page.list_complete ? undefined : page.cursor;
      } while (cursor);
      return counts;
    },
    async resetDoOps() {
      const ops = (await mf.getBindings("do-counter")).OPS;
      for (;;) {
        const page = await ops.list({ prefix: "__doop__:" });
        if (page.keys.length === 0) return;
        await Promise.all(page.keys.map((k) => ops.delete(k.name)));
      }
    },
    async resetKvOps() {
      const inner = (await mf.getBindings("kv-counter")).INNER;
      for (;;) {
        const page = await inner.list({ prefix: "__op__:" });
        if (page.keys.length === 0) return;
        await Promise.all(page.keys.map((k) => inner.delete(k.name)));
      }
    },
    close: () => mf.dispose(),
  };
}

// Children still running (wrk), killed by killChildren() when the bench stops early.
const children = new Set();
export function killChildren() {
  for (const child of children) child.kill("SIGKILL");
}

/** Runs a command; resolves with its stdout, rejects on a non-zero exit or after `timeoutMs`. */
export function run(cmd, args, { timeoutMs = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    children.add(child);
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      children.delete(child);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(" ")}: ${signal ? `killed (${signal})` : `exit ${code}`}\n${err}${out}`));
    });
  });
}

/** A wrk duration ("812.00us", "3.24ms", "1.02s", "1.5m") in milliseconds. */
function ms(text) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text);
  if (!m) throw new Error(`unexpected wrk duration: ${text}`);
  return Number(m[1]) * { us: 1e-3, ms: 1, s: 1e3, m: 60e3 }[m[2]];
}

// Appended to every wrk script (or the whole script when a case has none): after the
// run, wrk's done() prints its latency distribution as percentiles (µs) on one line,
// fine enough in the tail (every 0.1 from 97) for the runner to pool rounds. A script
// with only done() costs wrk nothing per request.
const LATENCY_GRID = [...Array.from({ length: 97 }, (_, i) => i + 1), ...Array.from({ length: 29 }, (_, i) => (971 + i) / 10), 99.95, 99.99];
const DONE_LUA = `
function done(summary, latency, requests)
  local out = {}
  for _, p in ipairs({ ${LATENCY_GRID.join(", ")} }) do
    out[#out + 1] = string.format("%g:%d", p, latency:percentile(p))
  end
  io.write(string.format("BENCH-LATENCY requests=%d min=%d max=%d ", summary.requests, latency.min, latency.max), table.concat(out, " "), "\\n")
end
`;

/** The script wrk runs: the case's own (if any) with done() appended, written under .tmp/bench. */
function wrkScript(script) {
  mkdirSync(TMP, { recursive: true });
  const file = join(TMP, `wrk-${script ? basename(script) : "plain.lua"}`);
  writeFileSync(file, `${script ? readFileSync(script, "utf8") : ""}\n${DONE_LUA}`);
  return file;
}

/**
 * Parses wrk's output (its summary and the done() line) into numbers. `latency` is the
 * run's distribution: { requests, min, max, grid: [[percentile, ms], ...] } (pool it
 * with quantile()); p50, p95 and p99 are this run's own, in ms.
 */
export function parseWrk(out) {
  const grab = (re) => {
    const m = re.exec(out);
    if (!m) throw new Error(`wrk output without ${re}:\n${out}`);
    return m;
  };
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const line = grab(/^BENCH-LATENCY (.*)$/m)[1].trim().split(/\s+/);
  const field = (name) => Number(line.find((f) => f.startsWith(`${name}=`)).slice(name.length + 1));
  const grid = line.filter((f) => /^[\d.]+:\d+$/.test(f)).map((f) => f.split(":").map(Number)).map(([p, us]) => [p, us / 1000]);
  const latency = { requests: field("requests"), min: field("min") / 1000, max: field("max") / 1000, grid };
  const at = (p) => grid.find(([q]) => q === p)[1];
  return {
    rps: Number(grab(/Requests\/sec:\s+([\d.]+)/)[1]),
    requests: Number(grab(/(\d+) requests in/)[1]),
    p50: at(50),
    p95: at(95),
    p99: at(99),
    latency,
    // wrk counts 2xx and 3xx as good; the runner's sample check makes sure the case answers 200.
    bad: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    socketErrors: socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
  };
}

/**
 * The `p`-th percentile (0 to 100), in ms, of several runs' latencies pooled as if they
 * were one run: each run's distribution is taken as linear between its grid points
 * (and its min and max), weighted by its requests, and the pooled CDF is inverted by
 * bisection. With one run this is that run's own percentile.
 */
export function quantile(latencies, p) {
  const runs = latencies.filter((l) => l.requests > 0).map((l) => ({ n: l.requests, pts: [[0, l.min], ...l.grid, [100, l.max]] }));
  if (runs.length === 0) return NaN;
  const total = runs.reduce((a, r) => a + r.n, 0);
  const cdf = (x) => {
    let sum = 0;
    for (const { n, pts } of runs) {
      let f;
      if (x < pts[0][1]) f = 0;
      else if (x >= pts[pts.length - 1][1]) f = 100;
      else {
        let k = pts.length - 2;
        while (pts[k][1] > x) k--;
        const [p0, v0] = pts[k];
        const [p1, v1] = pts[k + 1];
        f = v1 > v0 ? p0 + ((p1 - p0) * (x - v0)) / (v1 - v0) : p1;
      }
      sum += n * f;
    }
    return sum / total;
  };
  let lo = Math.min(...runs.map((r) => r.pts[0][1]));
  let hi = Math.max(...runs.map((r) => r.pts[r.pts.length - 1][1]));
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (cdf(mid) >= p) hi = mid;
    else lo = mid;
  }
  return hi;
}

/**
 * One wrk run: `connections` connections on one thread for `seconds`, with
 * extra request headers and optionally a Lua script (and its arguments).
 * `pid`: a process whose CPU time over the run is measured (`cpuMs` in the result:
 * read just before wrk starts and just after it exits).
 */
export async function wrk(url, { seconds, connections, headers = {}, script, scriptArgs = [], pid, timeoutSeconds = 5 }) {
  const args = ["-t1", `-c${connections}`, `-d${seconds}s`, `--timeout`, `${timeoutSeconds}s`, "--latency", "-s", wrkScript(script)];
  for (const [k, v] of Object.entries(headers)) args.push("-H", `${k}: ${v}`);
  args.push(url);
  if (scriptArgs.length) args.push("--", ...scriptArgs);
  const cpu0 = pid === undefined ? undefined : cpuMs(pid);
  const out = await run("wrk", args, { timeoutMs: (seconds + timeoutSeconds + 30) * 1000 });
  const cpu = pid === undefined ? undefined : cpuMs(pid) - cpu0;
  return { ...parseWrk(out), cpuMs: cpu };
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/**
 * A horizontal bar chart as SVG text: one bar per row ({ label, value, note, colour }),
 * scaled to the largest value, with light grid lines every 0.25 and a legend
 * ([{ colour, text }]) under it.
 */
export function barChart({ title, subtitle, rows, legend = [] }) {
  const labelW = 260;
  const barW = 420;
  const rowH = 28;
  const top = 62;
  const width = labelW + barW + 150;
  const bottom = top + rows.length * rowH;
  const height = bottom + 56;
  const max = Math.max(1, ...rows.map((r) => r.value));
  const x = (v) => labelW + (v / max) * barW;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="12" y="24" font-size="16" font-weight="bold">${esc(title)}</text>`,
    `<text x="12" y="44" fill="#555">${esc(subtitle)}</text>`,
  ];
  for (let v = 0; v <= max + 1e-9; v += 0.25) {
    const gx = x(v).toFixed(1);
    parts.push(
      `<line x1="${gx}" y1="${top}" x2="${gx}" y2="${bottom}" stroke="${v % 1 === 0 ? "#999" : "#ddd"}"/>`,
      `<text x="${gx}" y="${bottom + 16}" text-anchor="middle" fill="#555" font-size="11">${v.toFixed(2)}</text>`,
    );
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    parts.push(
      `<text x="${labelW - 8}" y="${y + 18}" text-anchor="end">${esc(r.label)}</text>`,
      `<rect x="${labelW}" y="${y + 4}" width="${Math.max(1, x(r.value) - labelW).toFixed(1)}" height="${rowH - 8}" fill="${r.colour ?? "#4a7bd0"}"/>`,
      `<text x="${(x(r.value) + 6).toFixed(1)}" y="${y + 18}">${esc(r.note ?? r.value.toFixed(2))}</text>`,
    );
  });
  let lx = labelW;
  for (const item of legend) {
    parts.push(
      `<rect x="${lx}" y="${bottom + 30}" width="12" height="12" fill="${item.colour}"/>`,
      `<text x="${lx + 17}" y="${bottom + 40}" fill="#333">${esc(item.text)}</text>`,
    );
    lx += 30 + item.text.length * 7;
  }
  parts.push(`</svg>`, "");
  return parts.join("\n");
}
