// examples/express: an Express site with express-session (installed from npm by
// make setup) attached to the real worker through its lookup endpoint. Its cart lives
// in the worker's session data (docs/MIGRATING.md); the worker runs in two locations
// (two isolates sharing KV and the SESSION_STATE Durable Objects).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { startEdge, Jar, browse, eventually, sleep, LOOKUP_TOKEN } from "./harness.mjs";
import { freePort, startProcess } from "./processes.mjs";

const SITE = "http://127.0.0.1:8787"; // the harness's requests are addressed to this
let edge, site, port;

before(async () => {
  port = await freePort();
  edge = await startEdge({
    vars: {
      ORIGIN_URL: `http://127.0.0.1:${port}`,
      SESSION_COOKIE: "connect.sid",
      LOOKUP_URL: "/edge-session/lookup",
      LOOKUP_TOKEN,
      PUBLIC_PATHS: "/,/login",
      LOGIN_URL: "/login",
      TICKET_TTL: "1s",
      REVALIDATE_AFTER: "2s",
    },
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

/** The cart as the site reads it from X-Session-Data: {status, version, items}. `at`: a location. */
async function cart(jar, at = edge) {
  const res = await browse(at, jar, "/api/cart", { headers: { accept: "application/json" } });
  assert.equal(res.status, 200);
  return res.json();
}
/** POST /cart/add or /cart/remove as the cart page's forms do. */
function cartForm(jar, action, sku, at = edge) {
  return browse(at, jar, `/cart/${action}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ sku }).toString(),
  });
}
async function changeCart(jar, action, sku, at = edge) {
  const res = await cartForm(jar, action, sku, at);
  await res.arrayBuffer();
  assert.equal(res.status, 303, `${action} ${sku}`);
  assert.equal(res.headers.get("location"), "/cart");
  assert.equal(res.headers.get("x-edge-session-data"), null, "the worker let the patch reach the browser");
}

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

test("express: the cart lives in session data: shown by the next request, counted, gone after signing out", async () => {
  const jar = new Jar();
  await signIn(jar);
  assert.deepEqual(await cart(jar), { status: "none", version: null, items: [] }, "a new session has no data");

  await changeCart(jar, "add", "cafe");
  assert.deepEqual(await cart(jar), { status: "ok", version: 1, items: [{ sku: "cafe", name: "Café crème", qty: 1 }] });
  await changeCart(jar, "add", "cafe");
  const html = await (await browse(edge, jar, "/cart", { headers: { accept: "text/html" } })).text();
  assert.match(html, /Café crème × 2/);

  // Two products added at once (two requests in flight): one key each, both kept.
  await Promise.all([changeCart(jar, "add", "tea"), changeCart(jar, "add", "mug")]);
  let now = await cart(jar);
  assert.equal(now.version, 4);
  assert.deepEqual(now.items.map((i) => [i.sku, i.qty]), [["cafe", 2], ["mug", 1], ["tea", 1]]);

  await changeCart(jar, "remove", "cafe");
  // The isolate that applied the change holds that version: no Durable Object call to read it.
  await edge.resetDoOps();
  now = await cart(jar);
  assert.equal(now.version, 5);
  assert.deepEqual(now.items.map((i) => i.sku), ["mug", "tea"]);
  assert.deepEqual(await edge.doOps(), []);
  // Another location (another isolate) reads the object once, then holds the version too.
  assert.deepEqual(await cart(jar, edge.at(1)), now);
  assert.deepEqual(await cart(jar, edge.at(1)), now);
  assert.equal((await edge.doOps()).filter((op) => op.loc === "1").length, 1);
  // After the ticket expired (TICKET_TTL 1 s), the version comes from KV's record.
  await sleep(1200);
  assert.deepEqual(await cart(jar), now);

  const out = await browse(edge, jar, "/logout", { method: "POST" });
  assert.equal(out.status, 303);
  await signIn(jar);
  assert.deepEqual(await cart(jar), { status: "none", version: null, items: [] }, "the cart outlived the session");
  assert.deepEqual(await cart(jar, edge.at(1)), { status: "none", version: null, items: [] });
  assert.match(await (await browse(edge, jar, "/cart", { headers: { accept: "text/html" } })).text(), /Your cart is empty/);
});

test("express: a cart that cannot be read is shown as unavailable, not empty, and a change then is refused, not lost", async () => {
  const jar = new Jar();
  await signIn(jar);
  await changeCart(jar, "add", "tea");
  await edge.doFault("down");
  try {
    // Location 1 has never held this session's data: it must ask the Durable Object.
    const far = edge.at(1);
    assert.deepEqual(await cart(jar, far), { status: "unavailable", version: null, items: null });
    const html = await (await browse(far, jar, "/cart", { headers: { accept: "text/html" } })).text();
    assert.match(html, /cannot be shown right now/);
    assert.doesNotMatch(html, /Your cart is empty/);
    // Adding needs the current quantity: the site itself declines.
    const add = await cartForm(jar, "add", "mug", far);
    assert.equal(add.status, 503);
    assert.match(await add.text(), /cannot be changed right now/);
    // Removing needs no read: the site sends the patch, the worker cannot store it.
    const remove = await cartForm(jar, "remove", "tea", far);
    assert.equal(remove.status, 503);
    assert.ok(remove.headers.get("retry-after"));
    assert.deepEqual(await remove.json(), { error: "store_unavailable" });
  } finally {
    await edge.doFault(null);
  }
  assert.deepEqual(await cart(jar, edge.at(1)), { status: "ok", version: 1, items: [{ sku: "tea", name: "Green tea", qty: 1 }] });
});
