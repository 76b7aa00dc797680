// Small helpers for bench/run.mjs: workers in Miniflare on a real port, wrk runs
// and their output, statistics, and the SVG chart. No dependencies beyond the
// project's devDependencies.
import { Miniflare } from "miniflare";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";

export const COMPATIBILITY_DATE = "2026-05-01"; // the same as wrangler.toml

/**
 * Starts one worker in its own workerd (Miniflare) listening on 127.0.0.1 on a
 * free port, so that wrk can reach it. `worker` is Miniflare's worker options
 * (script, modules, bindings). `kv`: "direct" binds the SESSIONS namespace
 * as is (throughput runs), "counted" puts bench/workers/kv-counter.mjs in front
 * of it (KV-count runs), undefined binds none.
 * `countSessionState`: the worker's SESSION_STATE Durable Object binding (from its
 * `durableObjects` option) goes through bench/workers/do-counter.mjs instead, which
 * records every call to an object (doOps()); the objects are still the worker's own.
 * The worker's stdout (edge-session logs a line per request) is drained and dropped.
 */
export async function startWorker(worker, { kv, countSessionState = false } = {}) {
  const main = {
    name: "bench-worker",
    compatibilityDate: COMPATIBILITY_DATE,
    ...worker,
    ...(kv === "direct" ? { kvNamespaces: { SESSIONS: "sessions" } } : {}),
  };
  const wrapped = {};
  if (kv === "counted") wrapped.SESSIONS = { scriptName: "kv-counter" };
  if (countSessionState) {
    if (!main.durableObjects?.SESSION_STATE) throw new Error("countSessionState: the worker has no SESSION_STATE Durable Object binding");
    const { SESSION_STATE: _own, ...others } = main.durableObjects;
    main.durableObjects = others;
    wrapped.SESSION_STATE = { scriptName: "do-counter" };
  }
  if (Object.keys(wrapped).length) main.wrappedBindings = wrapped;
  const workers = [main];
  if (kv === "counted") {
    workers.push({
      // No compatibilityDate: a wrapped-binding worker must not set its own.
      name: "kv-counter",
      modules: [{ type: "ESModule", path: "kv-counter.mjs", contents: readFileSync(new URL("./workers/kv-counter.mjs", import.meta.url), "utf8") }],
      kvNamespaces: { INNER: "sessions" },
    });
  }
  if (countSessionState) {
    const own = worker.durableObjects.SESSION_STATE;
    workers.push({
      name: "do-counter",
      modules: [{ type: "ESModule", path: "do-counter.mjs", contents: readFileSync(new URL("./workers/do-counter.mjs", import.meta.url), "utf8") }],
      // The records go to a namespace of their own: the worker's KV is not touched.
      kvNamespaces: { OPS: "do-ops" },
      durableObjects: { INNER: { ...own, scriptName: "bench-worker" } },
    });
  }
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: 0,
    handleRuntimeStdio(stdout, stderr) {
      stdout.resume();
      stderr.resume();
    },
    workers,
  });
  let url;
  try {
    url = (await mf.ready).toString().replace(/\/$/, "");
  } catch (e) {
    await mf.dispose().catch(() => {});
    throw e;
  }
  return {
    url,
    mf,
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

/** Parses `wrk --latency` output into numbers. */
export function parseWrk(out) {
  const grab = (re) => {
    const m = re.exec(out);
    if (!m) throw new Error(`wrk output without ${re}:\n${out}`);
    return m;
  };
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    rps: Number(grab(/Requests\/sec:\s+([\d.]+)/)[1]),
    requests: Number(grab(/(\d+) requests in/)[1]),
    p50: ms(grab(/^\s+50%\s+(\S+)/m)[1]),
    p99: ms(grab(/^\s+99%\s+(\S+)/m)[1]),
    // wrk counts 2xx and 3xx as good; the runner's sample check makes sure the case answers 200.
    bad: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    socketErrors: socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
  };
}

/**
 * One wrk run: `connections` connections on one thread for `seconds`, with
 * extra request headers and optionally a Lua script (and its arguments).
 */
export async function wrk(url, { seconds, connections, headers = {}, script, scriptArgs = [] }) {
  const args = ["-t1", `-c${connections}`, `-d${seconds}s`, "--latency"];
  for (const [k, v] of Object.entries(headers)) args.push("-H", `${k}: ${v}`);
  if (script) args.push("-s", script);
  args.push(url);
  if (scriptArgs.length) args.push("--", ...scriptArgs);
  return parseWrk(await run("wrk", args, { timeoutMs: (seconds + 30) * 1000 }));
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
