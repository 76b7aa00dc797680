// Features beyond the anchors (issue 11) and friendly answers for people (issue 10):
// sessions a user can see and end, passive and strict paths, CSRF at the edge,
// the idle time left, step-up freshness, HTML pages for 5xx navigations.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startEdge, withEdge, startOrigins, Jar, browse, login, sleep, ADMIN_TOKEN, LOOKUP_TOKEN } from "./harness.mjs";

const PUBLIC = "/,/login,/echo/public/*";
const SITE = "http://127.0.0.1:8787";
let origin, edge;

before(async () => {
  [origin] = await startOrigins(["a"]);
  edge = await startEdge({
    origins: [origin],
    vars: { PUBLIC_PATHS: PUBLIC, LOGIN_URL: "/login", TICKET_TTL: "1s", TRUSTED_ORIGINS: "https://partner.example" },
  });
});

after(async () => {
  await edge?.close();
  await origin?.close();
});

const sameOrigin = { "sec-fetch-site": "same-origin", origin: SITE };
const crossSite = { "sec-fetch-site": "cross-site", origin: "https://evil.example" };
const FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const SAFARI = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Version/17.5 Mobile/15E148 Safari/604.1";

async function loginWithAgent(e, user, agent) {
  const jar = new Jar();
  const res = await browse(e, jar, "/login", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", "user-agent": agent },
    body: new URLSearchParams({ username: user, password: { alice: "wonderland", bob: "builder" }[user] }).toString(),
  });
  await res.arrayBuffer();
  assert.equal(res.status, 303);
  return jar;
}

const listSessions = async (e, jar) => browse(e, jar, "/.edge-session/sessions", { headers: sameOrigin });
const post = (e, jar, path, body, headers = sameOrigin) =>
  browse(e, jar, path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });

test("a user sees their sessions (device, current) and ends another one by its opaque handle", async () => {
  const laptop = await loginWithAgent(edge, "alice", FIREFOX);
  const phone = await loginWithAgent(edge, "alice", SAFARI);
  const bob = await loginWithAgent(edge, "bob", FIREFOX);
  const res = await listSessions(edge, phone);
  assert.equal(res.status, 200);
  const { user, sessions } = await res.json();
  assert.equal(user, "alice");
  const mine = sessions.filter((s) => s.device === "Firefox on Linux" || s.device === "Safari on iOS");
  assert.ok(mine.length >= 2, JSON.stringify(sessions));
  const current = sessions.filter((s) => s.current);
  assert.equal(current.length, 1);
  assert.equal(current[0].device, "Safari on iOS");
  const text = JSON.stringify(sessions);
  for (const jar of [laptop, phone, bob]) assert.ok(!text.includes(jar.get("sid")), "a session ID was exposed");
  // bob's handle does not work for alice, and alice's list never shows bob's sessions
  const bobs = (await (await listSessions(edge, bob)).json()).sessions;
  assert.ok(bobs.every((s) => !sessions.some((m) => m.handle === s.handle)));
  assert.equal((await post(edge, phone, "/.edge-session/sessions/end", { handle: bobs[0].handle })).status, 404);
  // a cross-site request cannot end a session
  const laptopHandle = sessions.find((s) => s.device === "Firefox on Linux").handle;
  assert.equal((await post(edge, phone, "/.edge-session/sessions/end", { handle: laptopHandle }, crossSite)).status, 403);
  const ended = await post(edge, phone, "/.edge-session/sessions/end", { handle: laptopHandle });
  assert.equal(ended.status, 200);
  assert.deepEqual(await ended.json(), { ended: 1, current: false });
  // the laptop is signed out once its ticket (TICKET_TTL 1 s) has aged
  await sleep(1100);
  const gone = await browse(edge, laptop, "/api/me", { headers: { accept: "application/json" } });
  assert.equal(gone.status, 401);
  assert.equal((await browse(edge, phone, "/api/me", { headers: { accept: "application/json" } })).status, 200);
});

test("logout everywhere ends every other session, or all of them", async () => {
  const a = await loginWithAgent(edge, "bob", FIREFOX);
  const b = await loginWithAgent(edge, "bob", SAFARI);
  const res = await post(edge, b, "/.edge-session/logout-everywhere", { keep_current: true });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.ok(body.ended >= 1 && body.kept_current === true);
  assert.deepEqual((await (await listSessions(edge, b)).json()).sessions.length, 1);
  const all = await post(edge, b, "/.edge-session/logout-everywhere", {});
  assert.equal(all.status, 200);
  assert.equal(b.get("sid"), undefined, "the current session's cookies were not cleared");
  await sleep(1100);
  assert.equal((await browse(edge, a, "/api/me", { headers: { accept: "application/json" } })).status, 401);
});

test("CSRF: cross-site unsafe requests with the session cookie are refused; same-origin, trusted and cookieless ones are not", async () => {
  const jar = new Jar();
  await login(edge, jar);
  const send = (headers, j = jar) => browse(edge, j, "/echo/private/transfer", { method: "POST", headers, body: "amount=1" });
  const refused = await send({ "sec-fetch-site": "cross-site", origin: "https://evil.example" });
  assert.equal(refused.status, 403);
  assert.equal(refused.headers.get("x-edge-session-reason"), "cross_site_request");
  assert.deepEqual(await refused.json(), { error: "cross_site_request" });
  assert.equal(jar.get("sid") !== undefined, true, "a refused CSRF attempt logged the user out");
  assert.equal((await send({ origin: "https://evil.example" })).status, 403, "Origin alone, without Sec-Fetch-Site");
  assert.equal((await send({ "sec-fetch-site": "same-site", origin: "https://sub.127.0.0.1" })).status, 403);
  for (const ok of [{ "sec-fetch-site": "same-origin", origin: SITE }, { origin: SITE }, {}, { "sec-fetch-site": "cross-site", origin: "https://partner.example" }]) {
    const res = await send(ok);
    assert.equal(res.status, 200, JSON.stringify(ok));
    await res.arrayBuffer();
  }
  const get = await browse(edge, jar, "/echo/private/x", { headers: crossSite });
  assert.equal(get.status, 200, "a safe method is never affected");
  await get.arrayBuffer();
  const anonymous = await edge.fetch("/echo/public/form", { method: "POST", headers: crossSite, body: "x" });
  assert.equal(anonymous.status, 200, "a request without cookies is never affected");
  await anonymous.arrayBuffer();
  await withEdge({ origins: [origin], vars: { PUBLIC_PATHS: PUBLIC, CSRF_PROTECTION: "off" } }, async (open) => {
    const j = new Jar();
    await login(open, j);
    const res = await browse(open, j, "/echo/private/transfer", { method: "POST", headers: crossSite, body: "x" });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  });
});

test("passive paths validate but do not count as activity: a polling page goes idle; the page learns the time left", async () => {
  await withEdge(
    { origins: [origin], vars: { PUBLIC_PATHS: PUBLIC, PASSIVE_PATHS: "/echo/poll", IDLE_TIMEOUT: "3s", TOUCH_INTERVAL: "1s", TICKET_TTL: "1s" } },
    async (e) => {
      const poller = new Jar();
      await login(e, poller);
      const person = new Jar();
      await login(e, person);
      const lefts = [];
      let status = 200;
      const started = Date.now();
      while (Date.now() - started < 4500 && status === 200) {
        const res = await browse(e, poller, "/echo/poll", { headers: { accept: "application/json" } });
        status = res.status;
        if (status === 200) lefts.push(Number(res.headers.get("x-edge-session-idle-left")));
        await res.arrayBuffer();
        const active = await browse(e, person, "/echo/page", { headers: { accept: "application/json" } });
        assert.equal(active.status, 200, "a person using the site went idle");
        await active.arrayBuffer();
        await sleep(400);
      }
      assert.equal(status, 401, "polling kept the session alive");
      assert.ok(lefts.length >= 3 && lefts[0] <= 3 && lefts.at(-1) < lefts[0], `idle left: ${lefts}`);
    },
  );
});

test("strict paths are never served from the ticket alone: a revoked session is refused there at once", async () => {
  await withEdge({ origins: [origin], vars: { PUBLIC_PATHS: PUBLIC, STRICT_PATHS: "/echo/admin/*" } }, async (e) => {
    const jar = new Jar();
    await login(e, jar);
    const admin = await browse(e, jar, "/echo/admin/users");
    assert.equal(admin.status, 200);
    assert.equal((await admin.json()).headers["x-session-source"], "kv");
    const res = await e.fetch("/.edge-session/revoke", {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      body: JSON.stringify({ session_id: jar.get("sid") }),
    });
    assert.equal(res.status, 200);
    const ticketPath = await browse(e, jar, "/echo/page");
    assert.equal(ticketPath.status, 200, "within TICKET_TTL the ticket still vouches on ordinary paths");
    await ticketPath.arrayBuffer();
    const strict = await browse(e, jar, "/echo/admin/users", { headers: { accept: "application/json" } });
    assert.equal(strict.status, 401);
    assert.equal(strict.headers.get("x-edge-session-reason"), "invalid_session");
  });
});

test("the assertion's auth_time is the login time, and a new login refreshes it", async () => {
  const jar = new Jar();
  await login(edge, jar);
  const claims = async () => {
    const seen = await (await browse(edge, jar, "/echo/private")).json();
    return JSON.parse(Buffer.from(seen.headers["x-session-assertion"].split(".")[1], "base64url"));
  };
  const first = await claims();
  await sleep(1100);
  assert.equal((await claims()).auth_time, first.auth_time);
  await login(edge, jar);
  assert.ok((await claims()).auth_time > first.auth_time, "a fresh login did not refresh auth_time");
});

test("browser navigations answered 5xx get a small HTML page; APIs keep the JSON; configuration details stay out", async () => {
  await withEdge({ origins: [origin], vars: { PUBLIC_PATHS: PUBLIC, LOGIN_URL: "/login" } }, async (e) => {
    const jar = new Jar();
    await login(e, jar);
    jar.delete("__Host-edge-ticket");
    await e.kvDown(true);
    const page = await browse(e, jar, "/dashboard", { headers: { accept: "text/html" } });
    assert.equal(page.status, 503);
    assert.match(page.headers.get("content-type"), /^text\/html/);
    assert.equal(page.headers.get("retry-after"), "5");
    assert.match(await page.text(), /try again in 5 seconds/i);
    const api = await browse(e, jar, "/api/me", { headers: { accept: "application/json" } });
    assert.deepEqual(await api.json(), { error: "store_unavailable" });
    await e.kvDown(false);
  });
  await withEdge({ origins: [{ url: "http://127.0.0.1:9" }], vars: { PUBLIC_PATHS: PUBLIC } }, async (e) => {
    const page = await e.fetch("/echo/public/x", { headers: { accept: "text/html" } });
    assert.equal(page.status, 502);
    assert.match(await page.text(), /not answering/);
  });
  await withEdge({ origins: [origin], vars: { SESSION_KEYS: "k1:tooshort" } }, async (e) => {
    const page = await e.fetch("/dashboard", { headers: { accept: "text/html" } });
    assert.equal(page.status, 500);
    const html = await page.text();
    assert.ok(!html.includes("SESSION_KEYS") && !html.includes("tooshort"), "configuration details reached a visitor");
    const api = await e.fetch("/api/me", { headers: { accept: "application/json" } });
    assert.deepEqual(await api.json(), { error: "config_error", setting: "SESSION_KEYS" });
    const health = await (await e.fetch("/.edge-session/health")).json();
    assert.equal(health.setting, "SESSION_KEYS");
    assert.match(health.error, /bytes/);
  });
});

test("attach mode: a session ended from the user's list stays ended although the site still knows it", async () => {
  const [site] = await startOrigins(["s"], { mode: "attach" });
  try {
    await withEdge(
      { origins: [site], vars: { PUBLIC_PATHS: "/,/login", LOOKUP_URL: "/api/session-lookup", LOOKUP_TOKEN, TICKET_TTL: "1s" } },
      async (e) => {
        const laptop = new Jar();
        await login(e, laptop, "alice");
        const phone = new Jar();
        await login(e, phone, "alice");
        for (const jar of [laptop, phone]) {
          const res = await browse(e, jar, "/api/me", { headers: { accept: "application/json" } });
          assert.equal(res.status, 200);
          await res.arrayBuffer();
        }
        const list = await (await listSessions(e, phone)).json();
        const other = list.sessions.find((s) => !s.current);
        assert.ok(other, JSON.stringify(list));
        assert.equal((await post(e, phone, "/.edge-session/sessions/end", { handle: other.handle })).status, 200);
        await sleep(1100);
        const lookups = site.stats.lookups;
        const gone = await browse(e, laptop, "/api/me", { headers: { accept: "application/json" } });
        assert.equal(gone.status, 401, "the lookup brought the ended session back");
        assert.equal(site.stats.lookups, lookups, "the lookup was asked about an ended session");
        const still = await browse(e, phone, "/api/me", { headers: { accept: "application/json" } });
        assert.equal(still.status, 200);
      },
    );
  } finally {
    await site.close();
  }
});
