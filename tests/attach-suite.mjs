// The lookup protocol (docs/ATTACH.md) as both server-side-session examples (PHP, Rails)
// implement it, as one behaviour suite each example's test file runs against its own site
// behind the real worker: what the worker sees when the site signs a user out or ends a
// session by itself, and the lookup endpoint asked directly on the origin. What only one
// site has (PHP's session files, Rails' store directory and CSRF forms) comes in as hooks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { eventually, Jar, LOOKUP_TOKEN } from "./harness.mjs";

/** The worker's vars for a site on 127.0.0.1:`port` that it learns sessions from by lookup. */
export const attachVars = (port, cookie) => ({
  ORIGIN_URL: `http://127.0.0.1:${port}`,
  SESSION_COOKIE: cookie,
  LOOKUP_URL: "/edge-session/lookup",
  LOOKUP_TOKEN,
  PUBLIC_PATHS: "/,/login",
  LOGIN_URL: "/login",
  TICKET_TTL: "1s",
  REVALIDATE_AFTER: "2s",
});

/**
 * `browse(jar, path, init)`: a request to the worker (`getEdge()`, read when called) over
 * real HTTP on 127.0.0.1, as a browser addresses the site, with the jar's cookies, so that
 * a body keeps its Content-Length as a browser's does; `whoami(jar)`: GET /api/whoami.
 */
export function browser(getEdge) {
  async function browse(jar, p, init = {}) {
    const headers = new Headers(init.headers || {});
    if (jar.cookies.size) headers.set("cookie", jar.header());
    return jar.take(await fetch(`${getEdge().url}${p}`, { ...init, headers, redirect: "manual" }));
  }
  const whoami = (jar) => browse(jar, "/api/whoami", { headers: { accept: "application/json" } });
  return { browse, whoami };
}

/** The lookup bodies every site must answer 400 {error: "bad_request"}. */
const BAD_BODIES = ["not json", "[1]", "{}", JSON.stringify({ session_id: 5 }), JSON.stringify({ session_id: "" }), JSON.stringify({ session_id: "x".repeat(9000) })];

/**
 * Registers the attach tests for one site. `site` gives: `name`; `cookie` (the site's
 * session cookie); `running()` ({edge, port}: read when the tests run, since they
 * are set in the file's `before`); `signIn(jar, user, password)` (checks its own
 * answer); `signOut(jar)` and `endOtherDevices(jar)` (the site's buttons: their responses);
 * `quietPath` (a signed-in path that never loads the site's session, so the site never
 * answers it with a new cookie); `signedIn(cookie)` and `signedOut(jar, cookie)` (the site's
 * own checks after signing in and out); `lookup`: `{ title, unknownId(), ids(ask, id),
 * extraBadBodies, before(), after(snapshot), breakStore() (returns the repair) }`.
 */
export function attachSuite(site) {
  const { name, cookie: COOKIE, lookup } = site;
  const { browse, whoami } = browser(() => site.running().edge);

  test(`${name}: sign-out at the site is seen by the worker at once`, async () => {
    const jar = new Jar();
    await site.signIn(jar, "bob", "builder");
    assert.equal((await whoami(jar)).status, 200);
    const cookie = jar.get(COOKIE);
    await site.signedIn?.(cookie);
    assert.ok(await site.running().edge.getRecord(cookie), "the worker did not cache the session in KV");

    const out = await site.signOut(jar);
    assert.equal(out.status, 303);
    assert.equal(jar.get("__Host-edge-ticket"), undefined, "the worker did not clear its ticket");
    assert.equal(await site.running().edge.getRecord(cookie), null, "the worker kept the ended session in KV");
    const replay = new Jar();
    replay.set(COOKIE, cookie);
    const res = await whoami(replay);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("x-edge-session-reason"), "invalid_session");
    await site.signedOut(jar, cookie);
  });

  test(`${name}: a session the site ends by itself is refused once REVALIDATE_AFTER has passed`, async () => {
    const laptop = new Jar();
    const phone = new Jar();
    await site.signIn(laptop);
    await site.signIn(phone);
    assert.equal((await (await whoami(laptop)).json()).site_session_user, "alice");
    const ended = await site.endOtherDevices(phone);
    assert.equal(ended.status, 200);
    assert.ok((await ended.json()).ended >= 1);
    const cookie = laptop.get(COOKIE);
    const started = Date.now();
    // The worker did not see this happen; it asks the site again after REVALIDATE_AFTER (2 s).
    // The laptop asks for `quietPath`, so the site never answers it with a new session
    // cookie (the worker would read that as the end of the old session at once): the
    // lookup's 404 is what ends it.
    let sent;
    await eventually(async () => {
      sent = laptop.get(COOKIE);
      const res = await browse(laptop, site.quietPath, { headers: { accept: "application/json" } });
      assert.equal(res.status, 401);
      assert.equal(res.headers.get("x-edge-session-reason"), "invalid_session");
    }, 8000);
    assert.ok(Date.now() - started < 5000, "refused later than REVALIDATE_AFTER + TICKET_TTL (3 s) and a little");
    assert.equal(sent, cookie, "the site changed the laptop's cookie before the worker refused it");
    assert.equal((await (await whoami(phone)).json()).site_session_user, "alice", "the device that asked stays signed in");
  });

  test(`${name}: ${lookup.title} answers exactly the protocol (asked directly, on the origin)`, async () => {
    const jar = new Jar();
    await site.signIn(jar, "bob", "builder");
    const id = jar.get(COOKIE);
    const url = `http://127.0.0.1:${site.running().port}/edge-session/lookup`;
    const ask = (body, token = LOOKUP_TOKEN) =>
      fetch(url, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
    const snapshot = await lookup.before?.();
    const ok = await ask({ session_id: id });
    assert.equal(ok.status, 200);
    const answer = await ok.json();
    assert.deepEqual(Object.keys(answer).sort(), ["claims", "created", "user"]);
    assert.equal(answer.user, "bob");
    assert.deepEqual(answer.claims, { name: "Bob", role: "user" });
    assert.ok(Math.abs(answer.created - Date.now() / 1000) < 60, `created ${answer.created} is not the login time`);
    assert.equal(ok.headers.get("set-cookie"), null, "the lookup started a session of its own");

    const wrong = await ask({ session_id: id }, "x".repeat(LOOKUP_TOKEN.length));
    assert.equal(wrong.status, 401);
    const none = await fetch(url, { method: "POST", body: JSON.stringify({ session_id: id }) });
    assert.equal(none.status, 401);
    assert.equal((await ask({ session_id: lookup.unknownId() })).status, 404, "an unknown ID");
    await lookup.ids(ask, id);
    for (const bad of [...BAD_BODIES, ...(lookup.extraBadBodies || [])]) {
      const res = await ask(bad);
      assert.equal(res.status, 400, `body ${bad.slice(0, 40)}`);
      assert.deepEqual(await res.json(), { error: "bad_request" });
    }
    await lookup.after?.(snapshot, url);
    // a store it cannot read is "unavailable" (503), never "signed out" (404)
    const repair = lookup.breakStore();
    try {
      const down = await ask({ session_id: id });
      assert.equal(down.status, 503);
      assert.deepEqual(await down.json(), { error: "store_unavailable" });
    } finally {
      repair();
    }
    // still signed in: nothing above touched the session
    assert.equal((await ask({ session_id: id })).status, 200);
  });
}
