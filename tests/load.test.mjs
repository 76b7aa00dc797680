// Concurrency and load (issue 9, item 4), bounded and on loopback only: 20,000 requests
// over 200 sessions (a distinct user each), 50 in flight, through the real worker in
// workerd, to the demo origin's /echo route, which answers with the identity it received.
// Every response is checked:
// - zero mis-attributed identities: the X-Session-User the origin received, and the
//   assertion's `sub`, equal the session's own user, and the echoed path is the one sent;
// - zero mis-attributed session data: half the sessions patch a marker unique to them into
//   their data at login (X-Edge-Session-Data on the login response); every request of such
//   a session carries exactly its own marker at version 1 (with the assertion's dv and dh
//   matching), and a session without data never receives any X-Session-Data;
// - zero unexpected statuses (everything is 200);
// - KV last-seen writes per session within the touch limit: at most one per
//   TOUCH_INTERVAL (plus the login's own write), from the KV wrapper's operation log.
// TICKET_TTL and TOUCH_INTERVAL are short so that the run crosses the ticket, KV and
// touch paths many times. The figures (throughput, latency) are printed and, with
// LOAD_REPORT=path, written as JSON.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import { startEdge, startOrigins, sha256hex } from "./harness.mjs";
import { setCookies, TICKET_COOKIE } from "./proof-lib.mjs";

const REQUESTS = Number(process.env.LOAD_REQUESTS ?? 20_000);
const SESSIONS = 200;
const IN_FLIGHT = 50;
const TICKET_TTL_S = Number(process.env.LOAD_TICKET_TTL ?? 5);
const TOUCH_INTERVAL_S = Number(process.env.LOAD_TOUCH ?? 5);

let origin, edge;

before(async () => {
  [origin] = await startOrigins(["load"]);
  edge = await startEdge({
    origins: [origin],
    vars: { PUBLIC_PATHS: "/echo/public/*", TICKET_TTL: `${TICKET_TTL_S}s`, TOUCH_INTERVAL: `${TOUCH_INTERVAL_S}s` },
  });
});

after(async () => {
  await edge?.close();
  await origin?.close();
});

/**
 * GET through the worker's own HTTP address with a keep-alive agent (node:http: about
 * twice the rate of fetch here, so the client is not what is measured).
 */
function makeClient(url) {
  const u = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
  const get = (path, headers) =>
    new Promise((resolve, reject) => {
      const req = http.request({ host: u.hostname, port: u.port, path, headers, agent }, (res) => {
        const chunks = [];
        res.on("data", (d) => chunks.push(d));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end();
    });
  return { get, close: () => agent.destroy() };
}

/** The ticket a Set-Cookie list (node:http's array) sets, if any. */
function ticketIn(setCookie = []) {
  for (const c of setCookie) {
    const m = /^__Host-edge-ticket=([^;]*)/.exec(c);
    if (m && m[1] && !/max-age=0/i.test(c)) return m[1];
  }
  return null;
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

test(`load: ${REQUESTS} requests over ${SESSIONS} sessions, ${IN_FLIGHT} in flight, zero mis-attributed identities or session data`, { timeout: 180_000 }, async () => {
  const t00 = Date.now();
  // 200 sessions, one user each, logged in through the login signal; the even ones with
  // session data holding a marker no other session has
  const sessions = [];
  for (let i = 0; i < SESSIONS; i++) {
    const user = `load-user-${i}`;
    const marker = i % 2 === 0 ? `marker-${i}-${randomBytes(6).toString("hex")}` : null;
    const q = new URLSearchParams({ set_header: `X-Edge-Session-Login:${user}` });
    if (marker) q.append("set_header", `X-Edge-Session-Data:${JSON.stringify({ marker, i })}`);
    const res = await edge.fetch(`/echo/public/login?${q}`);
    await res.arrayBuffer();
    assert.equal(res.status, 200, `login ${i}`);
    const c = setCookies(res);
    assert.ok(c.sid && c[TICKET_COOKIE], `login ${i}`);
    sessions.push({ user, sid: c.sid, ticket: c[TICKET_COOKIE], requests: 0, marker, i });
  }

  const loginSeconds = (Date.now() - t00) / 1000;
  // the worker's session IDs: 256 bits, base64url (43 characters), all distinct
  assert.ok(sessions.every((s) => /^[A-Za-z0-9_-]{43}$/.test(s.sid)), "a session ID is not 43 base64url characters");
  assert.equal(new Set(sessions.map((s) => s.sid)).size, SESSIONS, "two logins drew the same session ID");
  const problems = { misattributed: 0, wrongPath: 0, badAssertion: 0, unexpectedStatus: 0, errors: 0, foreignData: 0, wrongData: 0, badDataAssertion: 0 };
  const sha = (v) => createHash("sha256").update(v).digest("base64url");
  // the X-Session-Data a session must receive: {marker, i} (in any key order), or none
  const sameData = (header, s) => {
    if (header === undefined || s.marker === null) return header === undefined && s.marker === null;
    const d = JSON.parse(header);
    return Object.keys(d).length === 2 && d.marker === s.marker && d.i === s.i;
  };
  const examples = [];
  const sources = {};
  const latencies = [];
  let next = 0;
  const started = Date.now();

  const client = makeClient(String(edge.url));
  async function one(i) {
    const s = sessions[i % SESSIONS];
    s.requests++;
    const path = `/echo/private/${i}?n=${i}`;
    const t0 = performance.now();
    let res, text;
    try {
      res = await client.get(path, { cookie: `sid=${s.sid}; ${TICKET_COOKIE}=${s.ticket}`, accept: "application/json" });
      text = res.text;
    } catch (e) {
      problems.errors++;
      if (examples.length < 5) examples.push(`${path}: ${e.message}`);
      return;
    }
    latencies.push(performance.now() - t0);
    if (res.status !== 200) {
      problems.unexpectedStatus++;
      if (examples.length < 5) examples.push(`${path}: ${res.status} ${text.slice(0, 100)}`);
      return;
    }
    const t = ticketIn(res.headers["set-cookie"]);
    if (t) s.ticket = t;
    const echo = JSON.parse(text);
    const h = echo.headers;
    if (h["x-session-user"] !== s.user) {
      problems.misattributed++;
      if (examples.length < 5) examples.push(`${path}: ${s.user} arrived as ${h["x-session-user"]}`);
    }
    if (echo.path !== `/echo/private/${i}` || echo.query !== `n=${i}`) problems.wrongPath++;
    const data = h["x-session-data"];
    // another session's marker anywhere in what the origin received
    const markers = text.match(/marker-\d+-[0-9a-f]{12}/g) ?? [];
    if (markers.some((m) => m !== s.marker)) {
      problems.foreignData++;
      if (examples.length < 5) examples.push(`${path}: ${s.user} (${s.marker}) received ${markers}`);
    } else if (!sameData(data, s) || h["x-session-data-version"] !== (s.marker ? "1" : undefined)) {
      problems.wrongData++;
      if (examples.length < 5) examples.push(`${path}: ${s.user} wanted ${s.marker} v1, got ${data} v${h["x-session-data-version"]} (${h["x-session-data-status"] ?? ""})`);
    }
    try {
      const claims = JSON.parse(Buffer.from(h["x-session-assertion"].split(".")[1], "base64url"));
      if (claims.sub !== s.user || claims.sid !== sha256hex(s.sid) || claims.src !== h["x-session-source"]) problems.badAssertion++;
      if (data !== undefined ? claims.dv !== Number(h["x-session-data-version"]) || claims.dh !== sha(data) : "dv" in claims || "dh" in claims) problems.badDataAssertion++;
    } catch {
      problems.badAssertion++;
    }
    sources[h["x-session-source"]] = (sources[h["x-session-source"]] ?? 0) + 1;
  }

  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < REQUESTS) await one(next++);
    }),
  );
  const seconds = (Date.now() - started) / 1000;
  client.close();

  // KV: last-seen writes per session, from the wrapper's log (background writes finish first)
  await new Promise((r) => setTimeout(r, 500));
  const ops = await edge.allOps();
  const hashToSession = new Map(sessions.map((s) => [`s:${sha256hex(s.sid)}`, s]));
  const puts = new Map();
  let reads = 0;
  for (const op of ops) {
    if (op.kind === "get") reads++;
    if (op.kind === "put" && hashToSession.has(op.key)) puts.set(op.key, (puts.get(op.key) ?? 0) + 1);
  }
  // one write at login, then at most one per TOUCH_INTERVAL of the run (and one for a
  // partial interval at each end)
  const limit = 1 + Math.ceil(seconds / TOUCH_INTERVAL_S) + 1;
  const maxPuts = Math.max(...sessions.map((s) => puts.get(`s:${sha256hex(s.sid)}`) ?? 0));
  const overLimit = sessions.filter((s) => (puts.get(`s:${sha256hex(s.sid)}`) ?? 0) > limit).length;

  latencies.sort((a, b) => a - b);
  const report = {
    requests: REQUESTS,
    sessions: SESSIONS,
    inFlight: IN_FLIGHT,
    loginSeconds: Number(loginSeconds.toFixed(2)),
    seconds: Number(seconds.toFixed(2)),
    throughputPerSecond: Math.round(REQUESTS / seconds),
    latencyMs: {
      p50: Number(percentile(latencies, 50).toFixed(1)),
      p95: Number(percentile(latencies, 95).toFixed(1)),
      p99: Number(percentile(latencies, 99).toFixed(1)),
      max: Number(latencies.at(-1).toFixed(1)),
    },
    sources,
    kv: { reads, maxLastSeenWritesPerSession: maxPuts, limitPerSession: limit, sessionsOverLimit: overLimit, totalRecordWrites: [...puts.values()].reduce((a, b) => a + b, 0) },
    problems,
  };
  console.log(`load report: ${JSON.stringify(report)}`);
  if (process.env.LOAD_REPORT) writeFileSync(process.env.LOAD_REPORT, JSON.stringify(report, null, 2) + "\n");

  assert.deepEqual(problems, { misattributed: 0, wrongPath: 0, badAssertion: 0, unexpectedStatus: 0, errors: 0, foreignData: 0, wrongData: 0, badDataAssertion: 0 }, examples.join("\n"));
  assert.equal(latencies.length, REQUESTS);
  assert.equal(overLimit, 0, `${overLimit} sessions wrote last-seen more than ${limit} times`);
  // the run crossed every path it is meant to: tickets, KV reads and touches
  assert.ok(sources.ticket > 0 && sources.kv > 0, `sources ${JSON.stringify(sources)}`);
  assert.ok(maxPuts >= 2, "no last-seen write happened during the run");
});
