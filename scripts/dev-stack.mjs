#!/usr/bin/env node
// `make dev` (through scripts/dev.sh): three demo origins that share nothing, and
// `wrangler dev` in front of them, all on 127.0.0.1. Quiet: one line per thing that
// matters; "ready" only once the worker answers /.edge-session/health and every
// origin answers. Full output goes to log files. Ctrl-C (or SIGTERM) stops everything.
//
// Environment (all optional):
//   MODE=edge|attach   who owns sessions (default edge)
//   PORT               the worker's port (8787)
//   ORIGIN_PORT        the first origin's port (8081); the others follow (8082, 8083)
//   INSTANCES          origin names (a,b,c)
//   DEV_STATE          wrangler's local KV directory (.wrangler/state)
//   DEV_LOGS           where the logs go (.tmp/dev)
//   DEV_VERBOSE=1      also print every line wrangler prints
//   Worker settings passed on with --var when set: IDLE_TIMEOUT, ABSOLUTE_TIMEOUT,
//   TICKET_TTL, TOUCH_INTERVAL, REVALIDATE_AFTER, LOOKUP_TIMEOUT, PASSIVE_PATHS,
//   STRICT_PATHS, PUBLIC_PATHS, GUEST_PATHS, LOGIN_URL, LOG_REQUESTS, CSRF_PROTECTION, TRUSTED_ORIGINS.
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
process.chdir(ROOT);

const env = process.env;
const MODE = env.MODE || "edge";
const PORT = Number(env.PORT || 8787);
const ORIGIN_PORT = Number(env.ORIGIN_PORT || 8081);
const NAMES = (env.INSTANCES || "a,b,c").split(",").map((s) => s.trim()).filter(Boolean);
const STATE = env.DEV_STATE || ".wrangler/state";
const LOGS = env.DEV_LOGS || ".tmp/dev";
const VERBOSE = env.DEV_VERBOSE === "1";
const SETTINGS = ["IDLE_TIMEOUT", "ABSOLUTE_TIMEOUT", "TICKET_TTL", "TOUCH_INTERVAL", "REVALIDATE_AFTER", "LOOKUP_TIMEOUT", "PASSIVE_PATHS", "STRICT_PATHS", "PUBLIC_PATHS", "GUEST_PATHS", "LOGIN_URL", "LOG_REQUESTS", "CSRF_PROTECTION", "TRUSTED_ORIGINS"];
// The pages' idle countdown polls this; it must not count as activity.
const DEFAULT_PASSIVE = "/api/session-status";

const SITE = `http://127.0.0.1:${PORT}`;
const out = (line) => process.stdout.write(`${line}\n`);
const fail = (line) => {
  process.stderr.write(`edge-session dev: ${line}\n`);
  process.exit(1);
};

if (MODE !== "edge" && MODE !== "attach") fail(`MODE must be edge or attach, not '${MODE}'`);
for (const [name, p] of [["PORT", PORT], ["ORIGIN_PORT", ORIGIN_PORT]]) if (!Number.isInteger(p) || p < 1 || p > 65535) fail(`${name} must be a port number`);
if (NAMES.length === 0) fail("INSTANCES names no origin");

function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

const origins = NAMES.map((name, i) => ({ name, port: ORIGIN_PORT + i, url: `http://127.0.0.1:${ORIGIN_PORT + i}` }));
for (const port of [PORT, ...origins.map((o) => o.port)]) {
  if (!(await portFree(port))) fail(`port ${port} on 127.0.0.1 is in use (another make dev?); choose others with PORT=... ORIGIN_PORT=...`);
}
fs.mkdirSync(LOGS, { recursive: true });

// ------------------------------------------------------------------ children

const children = [];
let stopping = false;

function start(label, command, args, { extraEnv = {}, group = false, onLine } = {}) {
  const logFile = path.join(LOGS, `${label}.log`);
  const log = fs.createWriteStream(logFile, { flags: "w" });
  const child = spawn(command, args, {
    env: { ...env, ...extraEnv },
    stdio: ["ignore", "pipe", "pipe"],
    detached: group, // its own process group, so that its own children stop with it
  });
  const entry = { label, child, group, logFile, tail: [] };
  for (const stream of [child.stdout, child.stderr]) {
    let buf = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk) => {
      log.write(chunk);
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i).replace(/\x1b\[[0-9;]*m/g, "");
        buf = buf.slice(i + 1);
        entry.tail.push(line);
        if (entry.tail.length > 20) entry.tail.shift();
        onLine?.(line);
      }
    });
  }
  child.on("exit", (code, signal) => {
    log.end();
    if (stopping) return;
    out(`✗ ${label} stopped unexpectedly (${signal ?? `exit ${code}`}); its last lines (full log: ${logFile}):`);
    for (const l of entry.tail.slice(-10)) out(`    ${l}`);
    stop(1);
  });
  children.push(entry);
  return entry;
}

function kill(entry, signal) {
  try {
    if (entry.group) process.kill(-entry.child.pid, signal);
    else entry.child.kill(signal);
  } catch {
    /* already gone */
  }
}

async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  for (const c of children) kill(c, "SIGTERM");
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && children.some((c) => c.child.exitCode === null && c.child.signalCode === null)) {
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) kill(c, "SIGKILL");
  // wrangler's own children (workerd) are in its process group: make sure they are gone too.
  for (const c of children) if (c.group) kill(c, "SIGKILL");
  out("edge-session dev: stopped");
  process.exit(code);
}
process.on("SIGINT", () => stop(130));
process.on("SIGTERM", () => stop(143));
process.on("SIGHUP", () => stop(129));

// ------------------------------------------------------------------ origins

const store = path.join(LOGS, `attach-sessions-${PORT}.json`);
for (const o of origins) {
  const args = ["www/server.mjs", "--name", o.name, "--mode", MODE, "--port", String(o.port), "--jwks-url", `${SITE}/.edge-session/jwks.json`, "--audience", SITE, "--require-assertion"];
  // Attach mode: the site owns its sessions. A real multi-server site keeps them where
  // every server can read them (a database, Redis): here a shared JSON file does.
  if (MODE === "attach") args.push("--store", store);
  start(`origin-${o.name}`, process.execPath, args);
}

// ------------------------------------------------------------------ worker

const vars = { ORIGIN_URL: origins.map((o) => o.url).join(",") };
if (MODE === "attach") vars.LOOKUP_URL = "/api/session-lookup";
vars.PASSIVE_PATHS = DEFAULT_PASSIVE;
for (const name of SETTINGS) if (env[name] !== undefined && env[name] !== "") vars[name] = env[name];

let ready = false;
function workerLine(line) {
  if (VERBOSE) return out(`  | ${line}`);
  // The worker's own log lines are JSON (LOG_REQUESTS): one short line per event.
  const at = line.indexOf("{");
  if (at >= 0) {
    try {
      const e = JSON.parse(line.slice(at));
      if (e && typeof e.outcome === "string") {
        // The origins fetching the assertion keys is routine, not news.
        if (e.outcome === "control" && e.path === "/.edge-session/jwks.json") return;
        return ready && out(`  worker: ${describe(e)}`);
      }
    } catch {
      /* not a log line of ours */
    }
  }
  if (/^\s*(✘|\[ERROR\]|\[wrangler:error\])/.test(line)) out(`  wrangler: ${line.trim()}`);
}

function describe(e) {
  const who = e.user ? ` ${e.user}` : "";
  const session = e.session ? ` (session ${e.session})` : "";
  if (e.event) return `${e.event}${who}${session} ${e.path}`;
  const detail = e.detail && e.detail !== e.outcome ? ` ${e.detail}` : "";
  const extra = e.error ? `: ${e.error}` : "";
  return `${e.outcome}${detail} ${e.status} ${e.path}${session}${extra}`;
}

const wranglerArgs = ["dev", "--ip", "127.0.0.1", "--port", String(PORT), "--show-interactive-dev-session=false", "--persist-to", STATE];
for (const [k, v] of Object.entries(vars)) wranglerArgs.push("--var", `${k}:${v}`);
if (env.INSPECTOR_PORT) wranglerArgs.push("--inspector-port", env.INSPECTOR_PORT);
const wrangler = start("wrangler", path.join(ROOT, "node_modules/.bin/wrangler"), wranglerArgs, {
  group: true,
  onLine: workerLine,
  extraEnv: {
    // Offline: no Request.cf download (Miniflare uses placeholder values), no metrics.
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    WRANGLER_SEND_METRICS: "false",
    // The worker's JSON lines are what dev shows; wrangler's own chatter stays in its log.
    FORCE_COLOR: "0",
  },
});

out(`edge-session dev: ${MODE} mode, ${origins.length} origins behind one worker (logs in ${LOGS}/)`);

// ------------------------------------------------------------------ readiness

async function answers(url, check) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000), redirect: "manual" });
    const body = await res.text();
    return check(res, body);
  } catch {
    return false;
  }
}

const up = new Set();
const deadline = Date.now() + Number(env.DEV_READY_TIMEOUT_MS || 90000);
while (!stopping) {
  for (const o of origins) {
    if (!up.has(o.name) && (await answers(`${o.url}/`, (res) => res.headers.get("x-served-by") === o.name))) {
      up.add(o.name);
      out(`  origin ${o.name}  ${o.url}  up${MODE === "attach" ? ` (sessions in ${store}, shared)` : ""}`);
    }
  }
  if (!up.has("worker") && (await answers(`${SITE}/.edge-session/health`, (res, body) => res.status === 200 && /"ok":true/.test(body)))) {
    up.add("worker");
    const shown = Object.entries(vars).filter(([k]) => k !== "ORIGIN_URL").map(([k, v]) => `${k}=${v}`).join(" ");
    out(`  worker    ${SITE}  up (wrangler dev, local KV in ${STATE}; ${shown})`);
  }
  if (up.size === origins.length + 1) break;
  if (Date.now() > deadline) {
    out(`✗ not ready after ${Math.round(Number(env.DEV_READY_TIMEOUT_MS || 90000) / 1000)} s; waiting for: ${[...origins.map((o) => o.name), "worker"].filter((n) => !up.has(n)).join(", ")}`);
    for (const l of wrangler.tail.slice(-10)) out(`    ${l}`);
    await stop(1);
  }
  await new Promise((r) => setTimeout(r, 250));
}
ready = true;
out(`ready: open ${SITE}/  (alice / wonderland, bob / builder, 김철수 / 비밀번호) · Ctrl-C stops everything`);
