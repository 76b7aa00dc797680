// examples/express: an Express site with express-session (installed from npm by
// make setup) attached to the real worker through its lookup endpoint. Its cart lives
// in the worker's session data (docs/MIGRATING.md); the worker runs in two locations
// (two isolates sharing KV and the SESSION_STATE Durable Objects).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { startEdge, Jar, browse, eventually, LOOKUP_TOKEN } from "./harness.mjs";
import { cartSuite } from "./cart-suite.mjs";
import { attachVars } from "./attach-suite.mjs";
import { freePort, startProcess } from "./processes.mjs";

const SITE = "http://127.0.0.1:8787"; // the harness's requests are addressed to this
let edge, site, port;

before(async () => {
  port = await freePort();
  edge = await startEdge({
    vars: { ...attachVars(port, "connect.sid"), GUEST_PATHS: "/cart,/cart/*,/api/cart" },
    locations: 2,
  });
  site = await startProcess("node", ["examples/express/app.mjs"], {
    env: {
      PORT: String(port),
      LOOKUP_TOKEN,
      SESSION_SECRET: randomBytes(32).toString("hex"),
      EDGE_SITE: SITE,
      EDGE_JWKS_URL: `${edge.url}/.edge-session/jwks.json`,
    },
    ready: /listening on/,
  });
});

after(async () => {
  await site?.stop();
  await edge?.close();
});

async function signIn(jar, user = "alice", password = "wonderland", returnTo = "") {
  const res = await browse(edge, jar, "/login", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ username: user, password, return_to: returnTo }).toString(),
  });
  await res.arrayBuffer();
  assert.equal(res.status, 303);
  assert.ok(jar.get("connect.sid"), "express-session set no cookie");
  return res;
}
const whoami = (jar) => browse(edge, jar, "/api/whoami", { headers: { accept: "application/json" } });

test("express: sign in at the site, the worker learns the session by lookup, the site gets a verified identity", async () => {
  const jar = new Jar();
  const nav = await browse(edge, jar, "/account", { headers: { accept: "text/html" } });
  assert.equal(nav.status, 302);
  assert.equal(nav.headers.get("location"), "/login?return_to=%2Faccount");

  const login = await signIn(jar, "alice", "wonderland", "/account");
  assert.equal(login.headers.get("location"), "/account");
  const first = await whoami(jar);
  assert.equal(first.status, 200);
  assert.deepEqual(await first.json(), { user: "alice", claims: { name: "Alice", role: "admin" }, source: "lookup", site_session_user: "alice" });
  const second = await whoami(jar);
  assert.equal(second.status, 200);
  assert.match((await second.json()).source, /^(ticket|kv)$/);
  const page = await browse(edge, jar, "/account", { headers: { accept: "text/html" } });
  assert.match(await page.text(), /Signed in as <b>alice<\/b>/);

  // Around the worker, identity headers alone get nowhere: the site wants the assertion.
  const forged = await fetch(`http://127.0.0.1:${port}/api/whoami`, { headers: { "x-session-user": "alice", "x-session-source": "kv" } });
  assert.equal(forged.status, 401);
  assert.equal((await forged.json()).error, "invalid_assertion");
});

test("express: sign-out at the site is seen by the worker at once", async () => {
  const jar = new Jar();
  await signIn(jar, "bob", "builder");
  assert.equal((await whoami(jar)).status, 200);
  const cookie = jar.get("connect.sid");
  assert.ok(await edge.getRecord(cookie), "the worker did not cache the session in KV");

  const out = await browse(edge, jar, "/logout", { method: "POST" });
  assert.equal(out.status, 303);
  assert.equal(jar.get("connect.sid"), undefined, "the site's cookie was not cleared");
  assert.equal(jar.get("__Host-edge-ticket"), undefined, "the worker did not clear its ticket");
  assert.equal(await edge.getRecord(cookie), null, "the worker kept the ended session in KV");
  // The old cookie, replayed: the lookup says the site no longer knows it.
  const replay = new Jar();
  replay.set("connect.sid", cookie);
  const res = await whoami(replay);
  assert.equal(res.status, 401);
  assert.equal(res.headers.get("x-edge-session-reason"), "invalid_session");
});

test("express: a session the site ends by itself is refused once REVALIDATE_AFTER has passed", async () => {
  const laptop = new Jar();
  const phone = new Jar();
  await signIn(laptop);
  await signIn(phone);
  assert.equal((await whoami(laptop)).status, 200);
  const ended = await browse(edge, phone, "/account/sign-out-other-devices", { method: "POST" });
  assert.equal(ended.status, 200);
  assert.ok((await ended.json()).ended >= 1);
  // The worker did not see this happen; it asks the site again after REVALIDATE_AFTER (2 s).
  await eventually(async () => {
    const res = await whoami(laptop);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("x-edge-session-reason"), "invalid_session");
  }, 8000);
  assert.equal((await whoami(phone)).status, 200, "the device that asked stays signed in");
});

cartSuite({
  name: "express",
  get edge() {
    return edge;
  },
  signIn: (jar) => signIn(jar),
  async signOut(jar) {
    const out = await browse(edge, jar, "/logout", { method: "POST" });
    assert.equal(out.status, 303);
  },
  request: (jar, path, init, location) => browse(location ? edge.at(location) : edge, jar, path, init),
  redirect: 303,
  formHeaders: () => ({}),
  siteCookie: "connect.sid",
});
