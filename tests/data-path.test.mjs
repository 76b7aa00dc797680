// The session-data path under reordering, reuse and failure (issue 21; README.md "Session
// data": read-your-writes, lifecycle, caching; docs/RELIABILITY.md and docs/SECURITY.md list the cases): one end-to-end test per defect and risk the issue
// names, each asserting the behaviour after the fix. The real worker runs in workerd through
// Miniflare (tests/harness.mjs), in front of one small test origin on 127.0.0.1.
//
// The test origin serves both modes. It is told what to answer by the request header
// X-Test-Respond (base64url JSON, forwarded untouched by the worker):
//   edge mode:   login (X-Edge-Session-Login), claims (-Claims), logout (-Logout), data (-Data)
//   attach mode: setSid (answers `Set-Cookie: sid=<value>; Path=/`), clearSid (`sid=; Max-Age=0`)
//   both:        headers (more response headers), status, delayMs (waits before answering)
// Its body echoes the request headers it received. POST /lookup is the site's session lookup
// (README.md "Server-side lookup protocol"), answered from `siteSessions` (id -> user) that a
// test changes as the site would.
//
// Workers: `edge` (edge mode, two locations sharing KV and the Durable Objects, TICKET_TTL=2s),
// `small` (edge mode, SESSION_DATA_LIMIT=256) and `attach` (attach mode, TICKET_TTL=1s,
// REVALIDATE_AFTER=1s). Short settings instead of long sleeps: every test takes seconds.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startEdge, Jar, sha256hex, sleep, eventually, LOOKUP_TOKEN } from "./harness.mjs";
import { startOddOrigin, mintTicket, newSid, setCookies, TICKET_COOKIE } from "./proof-lib.mjs";
import { hit as sharedHit, wanted, answerHeaders, answeredLookup } from "./respond.mjs";

const PUBLIC = "/pub/*";
const STRICT = "/strict/*";
const T = { timeout: 30_000 };
const sameOrigin = { "sec-fetch-site": "same-origin", origin: "http://127.0.0.1:8787" };

// ------------------------------------------------------------------ the test origin

let origin;
/** The site's own sessions (attach mode): session ID -> {user, created?}. */
const siteSessions = new Map();

async function originHandler(req, res, body) {
  if (answeredLookup(req, res, body, siteSessions)) return;
  const want = wanted(req);
  const headers = answerHeaders(want);
  if (want.delayMs) await sleep(want.delayMs);
  const payload = JSON.stringify({ method: req.method, path: req.url, headers: req.headers });
  res.writeHead(want.status ?? 200, { ...headers, "content-length": Buffer.byteLength(payload) });
  res.end(payload);
}

// ------------------------------------------------------------------ helpers

let userNo = 0;
const newUser = (tag = "u") => `${tag}-${process.pid}-${++userNo}`;

/** One request through location `at`, by default to /p/see (see tests/respond.mjs). */
const hit = (at, jar, path = "/p/see", ...rest) => sharedHit(at, jar, path, ...rest);

/** A plain request that must reach the origin with an identity. */
async function see(at, jar, path = "/p/see", opts = {}) {
  const r = await hit(at, jar, path, {}, opts);
  assert.equal(r.status, 200, `${path}: ${r.status} ${r.text.slice(0, 200)}`);
  assert.ok(r.user, `${path}: forwarded without an identity`);
  return r;
}

/** Edge mode: logs a new user in through the login signal on a public path. */
async function loginWith(at, { user = newUser(), data, jar = new Jar() } = {}) {
  const r = await hit(at, jar, "/pub/login", data === undefined ? { login: user } : { login: user, data });
  assert.equal(r.status, 200, `login: ${r.status} ${r.text.slice(0, 200)}`);
  assert.ok(jar.get("sid") && jar.get(TICKET_COOKIE), "the login set no session");
  return { jar, user, sid: jar.get("sid") };
}

/** A change answered by the origin on a protected path, which must be accepted. */
async function patchOk(at, jar, data, path = "/p/patch", opts = {}) {
  const r = await hit(at, jar, path, { data }, opts);
  assert.equal(r.status, 200, `change ${data}: ${r.status} ${r.text.slice(0, 300)}`);
  assert.equal(r.res.headers.get("x-edge-session-data"), null, "the change header reached the client");
  return r;
}

/** Attach mode: the site signs `user` in on a public path, setting its own new `sid`. */
async function siteSignIn(at, { user = newUser("site"), data, jar = new Jar() } = {}) {
  const sid = newSid("site");
  siteSessions.set(sid, { user });
  const r = await hit(at, jar, "/pub/signin", data === undefined ? { setSid: sid } : { setSid: sid, data });
  assert.equal(r.status, 200, `site sign-in: ${r.status} ${r.text.slice(0, 300)}`);
  assert.equal(jar.get("sid"), sid, "the site's cookie did not reach the browser");
  assert.equal(r.res.headers.get("x-edge-session-data"), null, "the change header reached the client");
  return { jar, user, sid };
}

/** Every byte of a header value the origin received is printable ASCII (0x20-0x7E). */
function assertPrintable(value, what) {
  assert.equal(typeof value, "string", `${what}: missing`);
  const bad = [...Buffer.from(value, "latin1")].filter((b) => b < 0x20 || b > 0x7e);
  assert.deepEqual(bad, [], `${what}: bytes outside 0x20-0x7E in ${JSON.stringify(value)}`);
}

/** KV puts and deletes of `key` since the last resetOps. */
const writesOf = async (edge, key) => (await edge.allOps()).filter((o) => (o.kind === "put" || o.kind === "delete") && o.key === key);

// ------------------------------------------------------------------ the workers

let edge, small, attach;

before(async () => {
  origin = await startOddOrigin(originHandler);
  const edgeVars = { ORIGIN_URL: origin.url, PUBLIC_PATHS: PUBLIC, STRICT_PATHS: STRICT };
  [edge, small, attach] = await Promise.all([
    startEdge({ vars: { ...edgeVars, TICKET_TTL: "2s" }, locations: 2 }),
    startEdge({ vars: { ...edgeVars, SESSION_DATA_LIMIT: "256" } }),
    startEdge({
      vars: {
        ORIGIN_URL: origin.url,
        LOOKUP_URL: `${origin.url}/lookup`,
        LOOKUP_TOKEN,
        PUBLIC_PATHS: PUBLIC,
        TICKET_TTL: "1s",
        REVALIDATE_AFTER: "1s",
      },
    }),
  ]);
});

after(async () => {
  for (const e of [edge, small, attach]) {
    await e?.kvFault(null);
    await e?.doFault(null);
  }
  await Promise.all([edge?.close(), small?.close(), attach?.close()]);
  await origin?.close();
});

// ------------------------------------------------------------------ 1. a slow answer

describe("1. a slow answer must not hide the session's first change", () => {
  test("edge mode: a read answered after the session's first change leaves the browser's next request carrying that change", T, async () => {
    const { jar } = await loginWith(edge);
    await sleep(2300); // the ticket is older than TICKET_TTL: both requests read KV
    const snapshot = jar.header();
    const arrived = [];
    const read = hit(edge.at(0), null, "/p/slow-read", { delayMs: 900 }, { cookie: snapshot }).then((r) => {
      arrived.push("read");
      jar.take(r.res);
      return r;
    });
    await sleep(100);
    const change = hit(edge.at(1), null, "/p/first-change", { data: '{"cart":["a1"]}' }, { cookie: snapshot }).then((r) => {
      arrived.push("change");
      jar.take(r.res);
      return r;
    });
    const [r, c] = await Promise.all([read, change]);
    assert.equal(c.status, 200, `the change: ${c.status} ${c.text.slice(0, 200)}`);
    assert.equal(r.status, 200, `the read: ${r.status} ${r.text.slice(0, 200)}`);
    assert.deepEqual(arrived, ["change", "read"], "the answers did not arrive in the order under test");
    for (const at of [edge.at(0), edge.at(1)]) {
      const next = await see(at, jar);
      assert.notEqual(next.raw, undefined, `location ${at.index}: forwarded as a session without data (source ${next.source}, status ${next.dataStatus})`);
      assert.deepEqual(next.data, { cart: ["a1"] }, `location ${at.index}: data`);
      assert.ok(next.version >= 1, `location ${at.index}: X-Session-Data-Version ${next.version}`);
    }
  });

  test("attach mode: when the first object read of a just-learned session fails, later requests still carry the data the site gave it at sign-in", T, async () => {
    const { jar, user } = await siteSignIn(attach, { data: '{"cart":["x"]}' });
    await attach.doFault("reads");
    try {
      const first = await see(attach, jar, "/p/learn");
      assert.equal(first.user, user);
      assert.equal(first.source, "lookup", "the first request did not learn the session from the lookup");
      assert.equal(first.dataStatus, "unavailable", "a session with data that cannot be read was not forwarded as unavailable");
      assert.equal(first.raw, undefined);
    } finally {
      await attach.doFault(null);
    }
    const next = await see(attach, jar, "/p/after");
    assert.deepEqual(next.data, { cart: ["x"] }, `the next request (source ${next.source}) carries no data: ${next.raw}`);
    assert.equal(next.dataStatus, undefined);
    const kvOnly = new Jar();
    kvOnly.set("sid", jar.get("sid"));
    const fromKv = await see(attach, kvOnly, "/p/kv");
    assert.deepEqual(fromKv.data, { cart: ["x"] }, `a request without the ticket (source ${fromKv.source}) carries no data: ${fromKv.raw}`);
  });
});

// ------------------------------------------------------------------ 2. DEL and C0 controls

describe("2. DEL and C0 controls reach the origin escaped", () => {
  test("a change holding DEL and C0 controls (in values and keys) is accepted, and the next request reaches a Node origin with X-Session-Data in printable ASCII", T, async () => {
    const { jar } = await loginWith(edge);
    await patchOk(edge, jar, '{"note":"\\u007f"}');
    let r = await hit(edge, jar, "/p/after-del");
    assert.equal(r.status, 200, `the request after a DEL change: ${r.status} ${r.text.slice(0, 200)} (Node refuses a raw DEL in a header)`);
    assertPrintable(r.raw, "X-Session-Data");
    assert.match(r.raw, /\\u007f/i, "DEL did not arrive as the escape \\u007f");
    assert.deepEqual(r.data, { note: "\u007f" });

    await patchOk(edge, jar, '{"k\\u0001":"\\u0000\\u001f\\u007f","t":"a\\tb\\n"}');
    r = await hit(edge, jar, "/p/after-c0");
    assert.equal(r.status, 200, `the request after a C0 change: ${r.status} ${r.text.slice(0, 200)}`);
    assertPrintable(r.raw, "X-Session-Data");
    assert.deepEqual(r.data, { note: "\u007f", "k\u0001": "\u0000\u001f\u007f", t: "a\tb\n" });
    assert.equal(r.version, 2);
  });

  test("login claims holding DEL and C0 controls reach a Node origin as X-Session-Claims in printable ASCII", T, async () => {
    const jar = new Jar();
    const login = await hit(edge, jar, "/pub/login", { login: newUser("claims"), claims: '{"n":"\\u007f\\u0001","k\\u001f":1}' });
    assert.equal(login.status, 200, `login: ${login.status} ${login.text.slice(0, 200)}`);
    const r = await hit(edge, jar, "/p/claims");
    assert.equal(r.status, 200, `the request after the login: ${r.status} ${r.text.slice(0, 200)} (Node refuses a raw DEL in a header)`);
    assertPrintable(r.seen["x-session-claims"], "X-Session-Claims");
    assert.deepEqual(JSON.parse(r.seen["x-session-claims"]), { n: "\u007f\u0001", "k\u001f": 1 });
  });

  test("SESSION_DATA_LIMIT counts the escaped form: 42 DEL characters (50 bytes raw, 260 escaped) are refused 502, 41 (254 escaped) are accepted", T, async () => {
    const del = (n) => JSON.stringify({ f: "" }).replace('""', `"${"\\u007f".repeat(n)}"`);
    assert.equal(Buffer.byteLength(del(42)), 260);
    assert.equal(Buffer.byteLength(JSON.stringify({ f: "\u007f".repeat(42) })), 50, "raw form");
    const { jar } = await loginWith(small);
    const over = await hit(small, jar, "/p/del-over", { data: del(42) });
    assert.equal(over.status, 502, `260 bytes once escaped: ${over.status} ${over.text.slice(0, 200)}`);
    assert.equal(over.echo, null, "the origin's answer reached the client");
    const none = await see(small, jar, "/p/after-over");
    assert.equal(none.raw, undefined, `the refused change was applied: ${none.raw}`);
    await patchOk(small, jar, del(41));
    const r = await see(small, jar, "/p/after-41");
    assert.equal(Buffer.byteLength(r.raw), 254);
    assertPrintable(r.raw, "X-Session-Data");
    assert.deepEqual(r.data, { f: "\u007f".repeat(41) });
  });
});

// ------------------------------------------------------------------ 3. another user

describe("3. another user must not inherit the data", () => {
  test("attach mode: when revalidation finds the site gave the session ID to another user, that user is forwarded without the previous user's data and stores its own", T, async () => {
    const a = await siteSignIn(attach, { user: newUser("A"), data: '{"cart":"A"}' });
    const asA = await see(attach, a.jar, "/p/as-a");
    assert.equal(asA.user, a.user);
    assert.deepEqual(asA.data, { cart: "A" });
    const userB = newUser("B");
    siteSessions.set(a.sid, { user: userB });
    await sleep(1300); // past REVALIDATE_AFTER and TICKET_TTL: the next request asks the lookup again
    const asB = await see(attach, a.jar, "/p/as-b");
    assert.equal(asB.user, userB, "revalidation did not switch the user");
    assert.equal(asB.raw, undefined, `user B got user A's data: ${asB.raw}`);
    assert.equal(asB.version, undefined, "X-Session-Data-Version without data");
    assert.equal(asB.dataStatus, undefined, `X-Session-Data-Status ${asB.dataStatus}`);
    assert.ok(!asB.assertion || !("dv" in asB.assertion), "the assertion signs a data version for B");
    await patchOk(attach, a.jar, '{"b":1}', "/p/b-change");
    const after = await see(attach, a.jar, "/p/b-after");
    assert.equal(after.user, userB);
    assert.deepEqual(after.data, { b: 1 });
  });
});

// ------------------------------------------------------------------ 4. a late answer

describe("4. a late answer must not sign the browser out of its new session", () => {
  test("edge mode: a change whose session was replaced by a new login meanwhile is refused 401 invalid_session without any Set-Cookie, and the browser stays in its new session", T, async () => {
    const first = await loginWith(edge);
    const oldCookies = first.jar.header();
    const late = hit(edge, null, "/p/late", { data: '{"late":1}', delayMs: 900 }, { cookie: oldCookies });
    await sleep(150);
    const second = await loginWith(edge, { user: newUser("again"), jar: first.jar });
    assert.notEqual(second.sid, first.sid, "the new login kept the session ID");
    const c = await late;
    assert.equal(c.status, 401, `the late change: ${c.status} ${c.text.slice(0, 200)}`);
    assert.equal(c.res.headers.get("x-edge-session-reason"), "invalid_session");
    assert.deepEqual(c.res.headers.getSetCookie(), [], "the refusal of the late change sets cookies");
    first.jar.take(c.res);
    assert.equal(first.jar.get("sid"), second.sid);
    const next = await see(edge, first.jar, "/p/next");
    assert.equal(next.user, second.user);
    assert.equal(next.raw, undefined, `the late change reached the new session: ${next.raw}`);
  });
});

// ------------------------------------------------------------------ 5. sign-out beside a bad change

describe("5. a malformed change must not cancel the site's sign-out", () => {
  test("attach mode: a response clearing the site's cookie with a malformed X-Edge-Session-Data passes, clears sid and the ticket, and ends the session at the edge", T, async () => {
    const s = await siteSignIn(attach, { data: '{"secret":"s5"}' });
    const learned = await see(attach, s.jar, "/p/learn");
    assert.deepEqual(learned.data, { secret: "s5" });
    await eventually(async () => assert.ok(await attach.getRecord(s.sid), "the session was not learned into KV"));
    const out = await hit(attach, s.jar, "/p/sign-out", { clearSid: true, data: '{"a":' });
    assert.equal(out.status, 200, `the sign-out: ${out.status} ${out.text.slice(0, 200)}`);
    assert.ok(out.echo, "the origin's answer did not reach the client");
    assert.equal(out.res.headers.get("x-edge-session-data"), null, "X-Edge-Session-Data reached the client");
    const cleared = setCookies(out.res);
    assert.equal(cleared.sid, "", `the site's cookie clear did not reach the browser: ${out.res.headers.getSetCookie()}`);
    assert.equal(cleared[TICKET_COOKIE], "", `the ticket was not cleared: ${out.res.headers.getSetCookie()}`);
    await eventually(async () => {
      const rec = await attach.getRecord(s.sid);
      assert.ok(rec === null || rec.ended, `the session lives on in KV: ${JSON.stringify(rec)}`);
    });
    // the site still says the ID is valid: a replay of the old sid carries none of the data
    const replay = new Jar();
    replay.set("sid", s.sid);
    const r = await hit(attach, replay, "/p/replay");
    assert.equal(r.raw, undefined, `the ended session's data came back (${r.status}): ${r.raw}`);
    if (r.status === 200) assert.notEqual(r.dataStatus, "unavailable", "ended data reported as unavailable");
  });
});

// ------------------------------------------------------------------ 6. one KV write per second

describe("6. at most one KV write per second per key", () => {
  test("edge mode: 20 first changes in flight together (two locations) write the session's KV record at most once a second", T, async () => {
    const { jar, sid } = await loginWith(edge);
    await sleep(1100); // the login's own write is a second old
    await edge.resetOps();
    const snapshot = jar.header();
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        hit(edge.at(i % 2), null, `/p/burst/${i}`, { data: JSON.stringify({ [`k${i}`]: i }) }, { cookie: snapshot }).then((r) => {
          jar.take(r.res);
          return r;
        }),
      ),
    );
    assert.deepEqual(answers.map((r) => r.status), Array(20).fill(200), answers.map((r) => r.text.slice(0, 80)).join("\n"));
    await sleep(600); // the background writes settle
    const writes = await writesOf(edge, `s:${sha256hex(sid)}`);
    // Per second, as KV allows: a burst that a loaded machine spreads over more than a second
    // may write again a second later. The times are the KV wrapper's, when it saw each write,
    // so a gap the worker measured as a second may read a little shorter.
    const times = writes.map((w) => w.at).sort((a, b) => a - b);
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    assert.ok(
      gaps.every((gap) => gap >= 900),
      `${writes.length} KV writes (${[...new Set(writes.map((w) => w.kind))]}) of the session's record for one burst of changes, ${gaps.join(", ")} ms apart`,
    );
    const next = await see(edge, jar);
    assert.deepEqual(next.data, Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])));
  });

  test("edge mode: with every KV write refused 429 during such a burst, all 20 changes answer 200, and KV's copy still learns that the session has data", T, async () => {
    const { jar, sid } = await loginWith(edge);
    await sleep(1100);
    const snapshot = jar.header();
    const want = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`r${i}`, i]));
    await edge.kvFault("ratelimit");
    try {
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          hit(edge.at(i % 2), null, `/p/limited/${i}`, { data: JSON.stringify({ [`r${i}`]: i }) }, { cookie: snapshot }).then((r) => {
            jar.take(r.res);
            return r;
          }),
        ),
      );
      assert.deepEqual(answers.map((r) => r.status), Array(20).fill(200), answers.map((r) => r.text.slice(0, 80)).join("\n"));
      const next = await see(edge, jar, "/p/limited-next");
      assert.deepEqual(next.data, want, "the next request misses changes");
    } finally {
      await edge.kvFault(null);
    }
    // The browser goes on (its ticket soon stale: TICKET_TTL=2s, so its requests read KV);
    // a request with the session cookie alone must, eventually, be forwarded with the data.
    let last;
    await eventually(async () => {
      const full = await see(edge, jar, "/p/browser");
      assert.deepEqual(full.data, want, "the browser's own request lost the data");
      const bare = new Jar();
      bare.set("sid", sid);
      last = await see(edge, bare, "/p/sid-only");
      assert.deepEqual(last.data, want, `a request with the sid alone (source ${last.source}) carries ${last.raw}`);
    }, 6000);
  });
});

// ------------------------------------------------------------------ 7. caching

describe("7. responses built from a session are not cached by shared caches", () => {
  test("Cache-Control: private is added to identified responses and to the login's, the origin's own Cache-Control passes, and a visitor's public response gets none", T, async () => {
    const jar = new Jar();
    const login = await hit(edge, jar, "/pub/login", { login: newUser("cache") });
    assert.equal(login.status, 200);
    const plain = await see(edge, jar, "/p/cache-plain");
    assert.equal(plain.res.headers.get("cache-control"), "private", "an identified response without Cache-Control");
    await patchOk(edge, jar, '{"c":1}');
    const withData = await see(edge, jar, "/p/cache-data");
    assert.deepEqual(withData.data, { c: 1 });
    assert.equal(withData.res.headers.get("cache-control"), "private", "a response with data without Cache-Control");
    const own = await hit(edge, jar, "/p/cache-own", { headers: { "cache-control": "public, max-age=60" } });
    assert.equal(own.status, 200);
    assert.equal(own.res.headers.get("cache-control"), "public, max-age=60", "the origin's Cache-Control was changed");
    const visitor = await hit(edge, new Jar(), "/pub/page");
    assert.equal(visitor.status, 200);
    assert.equal(visitor.res.headers.get("cache-control"), null, "Cache-Control added to a visitor's public response");
    assert.equal(login.res.headers.get("cache-control"), "private", "a login response (the worker sets cookies) without Cache-Control");
  });

  test("identified forwards reach the origin marked uncacheable (workerd's cache: \"no-store\" sends Cache-Control: no-cache and Pragma: no-cache); a visitor's public forward is not", T, async () => {
    const { jar } = await loginWith(edge);
    const r = await see(edge, jar, "/p/marker");
    assert.equal(r.seen["cache-control"], "no-cache", `identified forward: Cache-Control ${r.seen["cache-control"]}`);
    assert.equal(r.seen.pragma, "no-cache", `identified forward: Pragma ${r.seen.pragma}`);
    const visitor = await hit(edge, new Jar(), "/pub/marker");
    assert.ok(visitor.echo);
    assert.equal(visitor.seen["cache-control"], undefined, "a public forward was marked");
    assert.equal(visitor.seen.pragma, undefined, "a public forward was marked");
  });
});

// ------------------------------------------------------------------ risks

describe("risks", () => {
  test("R1: a logout answered 503 (KV writes failing) has still ended the session for strict paths: its data never reaches the origin", T, async () => {
    const { jar, user } = await loginWith(edge, { data: '{"secret":"r1"}' });
    assert.deepEqual((await see(edge, jar, "/strict/before")).data, { secret: "r1" });
    const oldCookies = jar.header();
    await edge.kvFault("writes");
    try {
      const res = await edge.fetch("/.edge-session/logout", { method: "POST", headers: { ...sameOrigin, cookie: oldCookies, accept: "application/json" } });
      await res.arrayBuffer();
      assert.equal(res.status, 503, `logout while KV writes fail: ${res.status}`);
    } finally {
      await edge.kvFault(null);
    }
    const before = origin.seen.length;
    const r = await hit(edge, null, "/strict/after-logout", {}, { cookie: oldCookies });
    assert.notEqual(r.status, 200, `the strict path still served the logged-out session (user ${r.user}, data ${r.raw})`);
    const leaked = origin.seen.slice(before).filter((q) => q.headers["x-session-data"] !== undefined || q.headers["x-session-user"] === user);
    assert.deepEqual(leaked.map((q) => q.path), [], "the logged-out session reached the origin");
  });

  test("R2: a frozen tab's hours-old genuine ticket falls back to KV and is allowed, with or without data (with or without dv)", T, async () => {
    const now = Date.now();
    const H = 3600_000;
    const user = newUser("frozen");
    const sid = newSid("frozen");
    await edge.seedSession(sid, { user, created: now - 3 * H, last_seen: now - 60_000, origin: "edge", verified_at: now - 60_000 });
    const jar = new Jar();
    jar.set("sid", sid);
    jar.set(TICKET_COOKIE, mintTicket(edge, sid, { u: user, cr: now - 3 * H, ls: now - 2 * H, va: now - 2 * H }));
    const plain = await hit(edge, jar, "/p/frozen");
    assert.equal(plain.status, 200, `without data: ${plain.status} ${plain.res.headers.get("x-edge-session-reason")}`);
    assert.equal(plain.source, "kv");
    assert.equal(plain.user, user);

    for (const withDv of [true, false]) {
      const s = await loginWith(edge, { data: '{"tab":"frozen"}' });
      const record = await edge.getRecord(s.sid);
      const version = (await see(edge, s.jar, "/p/version")).version;
      assert.equal(version, 1);
      // the session is 3 h old, last used a minute ago (another tab); this tab slept 2 h
      await edge.seedSession(s.sid, { ...record, created: now - 3 * H, last_seen: now - 60_000 });
      const tab = new Jar();
      tab.set("sid", s.sid);
      const fields = { u: s.user, cr: now - 3 * H, ls: now - 2 * H, va: now - 2 * H, ...(withDv ? { dv: version } : {}) };
      tab.set(TICKET_COOKIE, mintTicket(edge, s.sid, fields));
      const r = await hit(edge, tab, "/p/frozen-data");
      assert.equal(r.status, 200, `with data (dv ${withDv}): ${r.status} ${r.res.headers.get("x-edge-session-reason")}`);
      assert.equal(r.source, "kv");
      assert.deepEqual(r.data, { tab: "frozen" }, `with data (dv ${withDv})`);
    }
  });

  test("R3: the 502 for a refused change shows visitors only {\"error\":\"bad_signal\"}; the detail is in the worker's log", T, async () => {
    const { jar } = await loginWith(edge);
    const bad = await hit(edge, jar, "/p/r3-malformed", { data: '{"a":' });
    assert.equal(bad.status, 502);
    assert.deepEqual(bad.json, { error: "bad_signal" }, `malformed change: ${bad.text}`);
    await eventually(async () => {
      const line = edge.logs().find((l) => l.path === "/p/r3-malformed" && /JSON/.test(l.error ?? ""));
      assert.ok(line, "no log line with the parser's detail");
    });

    const s = await loginWith(small);
    const big = await hit(small, s.jar, "/p/r3-big", { data: JSON.stringify({ f: "y".repeat(300) }) });
    assert.equal(big.status, 502);
    assert.deepEqual(big.json, { error: "bad_signal" }, `over the limit: ${big.text}`);
    assert.ok(!big.text.includes("SESSION_DATA_LIMIT"), `the body names the setting: ${big.text}`);
    await eventually(async () => {
      const line = small.logs().find((l) => l.path === "/p/r3-big" && /SESSION_DATA_LIMIT/.test(l.error ?? ""));
      assert.ok(line, "no log line naming SESSION_DATA_LIMIT");
    });
  });

  test("R4: the assertion signs the data status: \"ds\":\"unavailable\" beside X-Session-Data-Status, no ds otherwise", T, async () => {
    const { jar } = await loginWith(edge, { data: '{"r4":1}' });
    const fine = await see(edge.at(0), jar, "/p/r4-fine");
    assert.deepEqual(fine.data, { r4: 1 });
    assert.ok(fine.assertion && !("ds" in fine.assertion), `ds with readable data: ${JSON.stringify(fine.assertion)}`);
    await edge.doFault("reads");
    let down;
    try {
      // location 1's isolate has never read this session: it must ask the (failing) object
      down = await see(edge.at(1), jar, "/p/r4-down");
    } finally {
      await edge.doFault(null);
    }
    assert.equal(down.dataStatus, "unavailable");
    assert.equal(down.assertion?.ds, "unavailable", `assertion: ${JSON.stringify(down.assertion)}`);
    const plain = await loginWith(edge);
    const none = await see(edge, plain.jar, "/p/r4-none");
    assert.ok(none.assertion && !("ds" in none.assertion), `ds without data: ${JSON.stringify(none.assertion)}`);
  });

  test("R5: attach mode: the site handing out again an ID whose object ended (the site cleared it) stores that ID's new first data, and ends the request's session", T, async () => {
    // X: learned, then cleared by the site (its KV record deleted, its object ended)
    const x = await siteSignIn(attach, { user: newUser("X") });
    await see(attach, x.jar, "/p/x-learn");
    await eventually(async () => assert.ok(await attach.getRecord(x.sid)));
    const out = await hit(attach, x.jar, "/p/x-out", { clearSid: true });
    assert.equal(out.status, 200);
    await eventually(async () => assert.equal(await attach.getRecord(x.sid), null, "the cleared session is still in KV"));
    await sleep(200); // its object's end (background)

    // A: another live site session; on its request the site sets sid=X again, with data
    const a = await siteSignIn(attach, { user: newUser("A") });
    await see(attach, a.jar, "/p/a-learn");
    await eventually(async () => assert.ok(await attach.getRecord(a.sid)));
    const xOwner = newUser("X2");
    siteSessions.set(x.sid, { user: xOwner });
    const again = await hit(attach, a.jar, "/p/x-again", { setSid: x.sid, data: '{"x":1}' });
    assert.equal(again.status, 200, `the answer setting sid=X again: ${again.status} ${again.res.headers.get("x-edge-session-reason")} ${again.text.slice(0, 200)}`);
    assert.equal(a.jar.get("sid"), x.sid, "the browser did not get sid=X");
    await eventually(async () => {
      const rec = await attach.getRecord(a.sid);
      assert.ok(rec === null || rec.ended, `A lives on in KV: ${JSON.stringify(rec)}`);
    });
    const next = await see(attach, a.jar, "/p/x-next");
    assert.equal(next.user, xOwner);
    assert.deepEqual(next.data, { x: 1 });
  });
});
