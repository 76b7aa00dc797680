// Attach mode (the origin owns sessions): the worker learns each session from the
// origin's lookup endpoint, caches it in KV, re-verifies it, and follows the
// origin's own session cookie.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startEdge, withEdge, startOrigins, Jar, browse, login, lookupBehaves, LOOKUP_TOKEN, sleep, eventually } from "./harness.mjs";

const PUBLIC = "/,/login";
let origin, edge;

const attachVars = (extra = {}) => ({
  PUBLIC_PATHS: PUBLIC,
  LOGIN_URL: "/login",
  LOOKUP_URL: "/api/session-lookup",
  LOOKUP_TOKEN,
  ...extra,
});

before(async () => {
  [origin] = await startOrigins(["a"], { mode: "attach" });
  edge = await startEdge({ origins: [origin], vars: attachVars() });
});

after(async () => {
  await edge?.close();
  await origin?.close();
});

const me = async (e, jar) => browse(e, jar, "/api/me", { headers: { accept: "application/json" } });

/** Logs bob in at the origin, which sets its own `sid` cookie in attach mode. */
const originLogin = (e, jar) => login(e, jar, "bob");

test("a session is learned once from the lookup, then served from KV and the ticket", async () => {
  const jar = new Jar();
  await originLogin(edge, jar);
  const lookups = origin.stats.lookups;
  let res = await me(edge, jar);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { user: "bob", claims: { name: "Bob", role: "user" }, source: "lookup", instance: "a" });
  assert.equal(origin.stats.lookups - lookups, 1);
  const record = await eventually(async () => {
    const r = await edge.getRecord(jar.get("sid"));
    assert.ok(r, "the looked-up session was not cached in KV");
    return r;
  });
  assert.equal(record.origin, "lookup");
  assert.equal(record.user, "bob");
  res = await me(edge, jar);
  assert.equal((await res.json()).source, "ticket");
  jar.delete("__Host-edge-ticket");
  res = await me(edge, jar);
  assert.equal((await res.json()).source, "kv");
  assert.equal(origin.stats.lookups - lookups, 1, "the lookup was asked again");
});

test("attach mode: the origin gets its own session cookie (learned from the lookup, then on the ticket); only the ticket is removed", async () => {
  const jar = new Jar();
  await originLogin(edge, jar);
  jar.set("theme", "dark");
  for (const source of ["lookup", "ticket"]) {
    const seen = (await (await browse(edge, jar, "/echo/cookies")).json()).headers;
    assert.equal(seen["x-session-source"], source);
    assert.equal(seen.cookie, `sid=${jar.get("sid")}; theme=dark`, source);
  }
  assert.ok(jar.get("__Host-edge-ticket"), "no ticket was issued");
});

test("an unknown ID is refused; a flood of it reaches the origin once", async () => {
  const lookups = origin.stats.lookups;
  for (let i = 0; i < 25; i++) {
    const jar = new Jar();
    jar.set("sid", "forged-session-id");
    const res = await me(edge, jar);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("x-edge-session-reason"), "invalid_session");
    await res.arrayBuffer();
  }
  assert.equal(origin.stats.lookups - lookups, 1);
});

test("lookup unavailable (500, bad JSON, timeout) without a ticket: 503", async () => {
  await withEdge({ origins: [origin], vars: attachVars({ LOOKUP_TIMEOUT: "300ms" }) }, async (quick) => {
    for (const behaviour of ["error500", "badjson", "hang"]) {
      await lookupBehaves(origin, behaviour, async () => {
        const jar = new Jar();
        jar.set("sid", origin.sessions.create("bob", { role: "user" }));
        const started = Date.now();
        const res = await me(quick, jar);
        const took = Date.now() - started;
        assert.equal(res.status, 503, behaviour);
        assert.equal(res.headers.get("x-edge-session-reason"), "store_unavailable");
        assert.equal(res.headers.get("retry-after"), "5");
        await res.arrayBuffer();
        if (behaviour === "hang") assert.ok(took < 1500, `the 300 ms lookup deadline took ${took} ms`);
      });
    }
  });
});

test("lookup down with a stale genuine ticket: degraded allow", async () => {
  await withEdge({ origins: [origin], vars: attachVars({ TICKET_TTL: "300ms" }) }, async (short) => {
    const jar = new Jar();
    await originLogin(short, jar);
    assert.equal((await (await me(short, jar)).json()).source, "lookup");
    await eventually(async () => assert.ok(await short.getRecord(jar.get("sid"))));
    // KV loses the record (it expired, say) while the lookup is down
    await short.dropRecord(jar.get("sid"));
    await lookupBehaves(origin, "error500", async () => {
      await sleep(300);
      const lookups = origin.stats.lookups;
      const res = await me(short, jar);
      assert.equal(res.status, 200);
      assert.equal((await res.json()).source, "stale");
      assert.equal(origin.stats.lookups - lookups, 1, "the lookup was not asked");
    });
  });
});

test("looked-up sessions are revalidated after REVALIDATE_AFTER; a lookup outage keeps the KV answer", async () => {
  await withEdge({ origins: [origin], vars: attachVars({ REVALIDATE_AFTER: "1s" }) }, async (short) => {
    const jar = new Jar();
    await originLogin(short, jar);
    const lookups = origin.stats.lookups;
    await me(short, jar);
    await sleep(1100);
    jar.delete("__Host-edge-ticket");
    let res = await me(short, jar);
    assert.equal((await res.json()).source, "kv");
    assert.equal(origin.stats.lookups - lookups, 2, "no revalidation happened");
    await sleep(1100);
    await lookupBehaves(origin, "error500", async () => {
      jar.delete("__Host-edge-ticket");
      const down = await me(short, jar);
      assert.equal(down.status, 200);
      assert.equal((await down.json()).source, "kv");
    });
    // the origin forgets the session: the next revalidation ends it
    origin.sessions.delete(jar.get("sid"));
    await sleep(1100);
    jar.delete("__Host-edge-ticket");
    res = await me(short, jar);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("x-edge-session-reason"), "invalid_session");
  });
});

test("the origin clearing its cookie (logout) removes the session from KV and clears the ticket", async () => {
  const jar = new Jar();
  await originLogin(edge, jar);
  const sid = jar.get("sid");
  await (await me(edge, jar)).arrayBuffer();
  await eventually(async () => assert.ok(await edge.getRecord(sid)));
  const res = await browse(edge, jar, "/logout", { method: "POST" });
  assert.equal(res.status, 303);
  assert.equal(jar.get("sid"), undefined);
  assert.equal(jar.get("__Host-edge-ticket"), undefined);
  await eventually(async () => assert.equal(await edge.getRecord(sid), null));
  // the old ID, replayed, is refused: the origin no longer knows it either
  const replay = new Jar();
  replay.set("sid", sid);
  assert.equal((await me(edge, replay)).status, 401);
});

test("a session whose origin times are past the idle limit is refused at the edge", async () => {
  const jar = new Jar();
  const now = Math.floor(Date.now() / 1000);
  const sid = origin.sessions.create("bob", null, { created: now - 40 * 60, last_seen: now - 31 * 60 });
  jar.set("sid", sid);
  const res = await me(edge, jar);
  assert.equal(res.status, 401);
  assert.equal(res.headers.get("x-edge-session-reason"), "idle_timeout");
});

test("the lookup request carries the bearer token and the ID only in the body", async () => {
  const jar = new Jar();
  jar.set("sid", origin.sessions.create("bob", null));
  const res = await me(edge, jar);
  assert.equal(res.status, 200);
  const last = origin.lastLookup;
  assert.equal(last.authorization, `Bearer ${LOOKUP_TOKEN}`);
  assert.equal(last.contentType, "application/json");
  assert.equal(last.path, "/api/session-lookup");
  assert.ok(!last.url.includes(jar.get("sid")));
  assert.deepEqual(JSON.parse(last.body), { session_id: jar.get("sid") });
});

test("with several origins, a lookup refused by one origin is asked of the next", async () => {
  const dead = { url: "http://127.0.0.1:9" }; // nothing listens on the discard port
  await withEdge({ origins: [dead, origin], vars: attachVars() }, async (both) => {
    for (let i = 0; i < 3; i++) {
      const jar = new Jar();
      jar.set("sid", origin.sessions.create("bob", null));
      const res = await me(both, jar);
      assert.equal(res.status, 200, `request ${i}`);
      assert.equal((await res.json()).source, "lookup");
    }
  });
});
