// examples/django: a Django site with its session framework and django.contrib.auth
// (installed from PyPI into .tmp/django-venv by make setup) attached to the real
// worker through its lookup endpoint. Its cart lives in the worker's session data
// (docs/MIGRATING.md); the worker runs in two locations (two isolates sharing KV and
// the SESSION_STATE Durable Objects).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startEdge, Jar, eventually, sleep, LOOKUP_TOKEN } from "./harness.mjs";
import { freePort, startProcess } from "./processes.mjs";

const PYTHON = path.resolve(".tmp/django-venv/bin/python");
const APP = path.resolve("examples/django");
let edge, site, port, dir, env;

before(async () => {
  assert.ok(fs.existsSync(PYTHON), `${PYTHON} is missing: make setup creates it`);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "edge-session-django-"));
  port = await freePort();
  edge = await startEdge({
    vars: {
      ORIGIN_URL: `http://127.0.0.1:${port}`,
      SESSION_COOKIE: "sessionid",
      LOOKUP_URL: "/edge-session/lookup",
      LOOKUP_TOKEN,
      PUBLIC_PATHS: "/,/login",
      LOGIN_URL: "/login",
      TICKET_TTL: "1s",
      REVALIDATE_AFTER: "2s",
    },
    locations: 2,
  });
  env = {
    DJANGO_SECRET_KEY: randomBytes(32).toString("hex"),
    DJANGO_DB: path.join(dir, "db.sqlite3"),
    EDGE_LOOKUP_TOKEN: LOOKUP_TOKEN,
    EDGE_SITE: edge.url,
    EDGE_JWKS_URL: `${edge.url}/.edge-session/jwks.json`,
    PYTHONDONTWRITEBYTECODE: "1",
  };
  execFileSync(PYTHON, ["manage.py", "migrate", "--noinput"], { cwd: APP, env: { ...process.env, ...env }, stdio: "pipe" });
  site = await startProcess(PYTHON, ["manage.py", "runserver", `127.0.0.1:${port}`, "--noreload"], {
    cwd: APP,
    env,
    ready: /Starting development server at/,
  });
});

after(async () => {
  await site?.stop();
  await edge?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * A request to the worker over real HTTP on 127.0.0.1, with the jar's cookies. Not
 * Miniflare's dispatchFetch: that hands the worker a body of unknown length, which the
 * worker then forwards chunked, and Django's development server (wsgiref) cannot read
 * chunked request bodies. Browsers send a Content-Length, which the worker keeps.
 */
async function browse(_edge, jar, p, init = {}, location = 0) {
  const headers = new Headers(init.headers || {});
  if (jar.cookies.size) headers.set("cookie", jar.header());
  // Miniflare's entry worker sends a request with MF-Route-Override to that worker (and drops the header)
  if (location) headers.set("MF-Route-Override", edge.at(location).name);
  return jar.take(await fetch(`${edge.url}${p}`, { ...init, headers, redirect: "manual" }));
}

/** GET the login form through the worker (a public path), then POST it with Django's CSRF token. */
async function signIn(jar, user = "alice", password = "wonderland", returnTo = "") {
  const form = await browse(edge, jar, `/login${returnTo ? `?return_to=${encodeURIComponent(returnTo)}` : ""}`, { headers: { accept: "text/html" } });
  assert.equal(form.status, 200);
  const token = /name="csrfmiddlewaretoken" value="([^"]+)"/.exec(await form.text())?.[1];
  assert.ok(token && jar.get("csrftoken"), "Django's CSRF token did not come through the worker");
  const res = await browse(edge, jar, "/login", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ csrfmiddlewaretoken: token, username: user, password, return_to: returnTo }).toString(),
  });
  await res.arrayBuffer();
  assert.equal(res.status, 302);
  assert.ok(jar.get("sessionid"), "Django set no session cookie");
  return res;
}
const whoami = (jar) => browse(edge, jar, "/api/whoami", { headers: { accept: "application/json" } });
const post = (jar, p) => browse(edge, jar, p, { method: "POST", headers: { "x-csrftoken": jar.get("csrftoken") } });

/** The cart as the site reads it from X-Session-Data: {status, version, items}, at a location. */
async function cart(jar, location = 0) {
  const res = await browse(edge, jar, "/api/cart", { headers: { accept: "application/json" } }, location);
  assert.equal(res.status, 200);
  return res.json();
}
const cartPage = async (jar, location = 0) => (await browse(edge, jar, "/cart", { headers: { accept: "text/html" } }, location)).text();
/** POST /cart/add or /cart/remove as the cart page's forms do (with Django's CSRF token). */
function cartForm(jar, action, sku, location = 0) {
  const init = {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", "x-csrftoken": jar.get("csrftoken") },
    body: new URLSearchParams({ sku }).toString(),
  };
  return browse(edge, jar, `/cart/${action}`, init, location);
}
async function changeCart(jar, action, sku, location = 0) {
  const res = await cartForm(jar, action, sku, location);
  await res.arrayBuffer();
  assert.equal(res.status, 302, `${action} ${sku}`);
  assert.equal(res.headers.get("location"), "/cart");
  assert.equal(res.headers.get("x-edge-session-data"), null, "the worker let the patch reach the browser");
}
const EMPTY = { status: "none", version: null, items: [] };

test("django: sign in at the site, the worker learns the session by lookup, the site gets a verified identity", async () => {
  const jar = new Jar();
  const nav = await browse(edge, jar, "/account", { headers: { accept: "text/html" } });
  assert.equal(nav.status, 302);
  assert.equal(nav.headers.get("location"), "/login?return_to=%2Faccount");

  const login = await signIn(jar, "alice", "wonderland", "/account");
  assert.equal(login.headers.get("location"), "/account");
  const first = await whoami(jar);
  assert.equal(first.status, 200);
  assert.deepEqual(await first.json(), { user: "alice", claims: { name: "Alice", role: "admin" }, source: "lookup", site_session_user: "alice" });
  const again = await whoami(jar);
  assert.match((await again.json()).source, /^(ticket|kv)$/);
  const page = await browse(edge, jar, "/account", { headers: { accept: "text/html" } });
  assert.match(await page.text(), /Signed in as <b>alice<\/b>/);

  const forged = await fetch(`http://127.0.0.1:${port}/api/whoami`, { headers: { "x-session-user": "alice", "x-session-assertion": "e30.e30.AAAA" } });
  assert.equal(forged.status, 401);
});

test("django: sign-out at the site is seen by the worker at once", async () => {
  const jar = new Jar();
  await signIn(jar, "bob", "builder");
  assert.equal((await whoami(jar)).status, 200);
  const cookie = jar.get("sessionid");
  assert.ok(await edge.getRecord(cookie), "the worker did not cache the session in KV");

  const out = await post(jar, "/logout");
  assert.equal(out.status, 302);
  assert.equal(jar.get("sessionid"), undefined, "Django did not clear its cookie");
  assert.equal(jar.get("__Host-edge-ticket"), undefined, "the worker did not clear its ticket");
  assert.equal(await edge.getRecord(cookie), null, "the worker kept the ended session in KV");
  const replay = new Jar();
  replay.set("sessionid", cookie);
  const res = await whoami(replay);
  assert.equal(res.status, 401);
  assert.equal(res.headers.get("x-edge-session-reason"), "invalid_session");
});

test("django: a session the site ends by itself is refused, at the latest after REVALIDATE_AFTER", async () => {
  const laptop = new Jar();
  const phone = new Jar();
  await signIn(laptop);
  await signIn(phone);
  assert.equal((await (await whoami(laptop)).json()).site_session_user, "alice");
  const cookie = laptop.get("sessionid");
  const ended = await post(phone, "/account/sign-out-other-devices");
  assert.equal(ended.status, 200);
  assert.ok((await ended.json()).ended >= 1);
  const started = Date.now();
  // Django answers a request whose session is gone as anonymous and deletes the cookie;
  // the worker reads the deleted cookie as the site's logout and ends the session too.
  // (A site that does not clear the cookie is caught by the lookup after
  // REVALIDATE_AFTER instead: see the Express example.)
  const next = await whoami(laptop);
  assert.equal(next.status, 200);
  assert.equal((await next.json()).site_session_user, null, "the site still knew the ended session");
  assert.equal(laptop.get("sessionid"), undefined, "Django did not clear the dead session's cookie");
  assert.equal(laptop.get("__Host-edge-ticket"), undefined, "the worker did not end the session with it");
  assert.equal(await edge.getRecord(cookie), null);
  const replay = new Jar();
  replay.set("sessionid", cookie);
  const res = await whoami(replay);
  assert.equal(res.status, 401);
  assert.equal(res.headers.get("x-edge-session-reason"), "invalid_session");
  assert.ok(Date.now() - started < 3000, "refused later than REVALIDATE_AFTER + TICKET_TTL (3 s)");
  assert.equal((await whoami(phone)).status, 200, "the device that asked stays signed in");
});

test("django: the cart lives in session data: shown by the next request, counted, gone after signing out", async () => {
  const jar = new Jar();
  await signIn(jar);
  assert.deepEqual(await cart(jar), EMPTY, "a new session has no data");

  await changeCart(jar, "add", "cafe");
  assert.deepEqual(await cart(jar), { status: "ok", version: 1, items: [{ sku: "cafe", name: "Café crème", qty: 1 }] });
  await changeCart(jar, "add", "cafe");
  assert.match(await cartPage(jar), /Café crème × 2/);

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
  assert.deepEqual(await cart(jar, 1), now);
  assert.deepEqual(await cart(jar, 1), now);
  assert.equal((await edge.doOps()).filter((op) => op.loc === "1").length, 1);
  // After the ticket expired (TICKET_TTL 1 s), the version comes from KV's record.
  await sleep(1200);
  assert.deepEqual(await cart(jar), now);

  const out = await post(jar, "/logout");
  assert.equal(out.status, 302);
  await signIn(jar);
  assert.deepEqual(await cart(jar), EMPTY, "the cart outlived the session");
  assert.deepEqual(await cart(jar, 1), EMPTY);
  assert.match(await cartPage(jar), /Your cart is empty/);
});

test("django: a cart that cannot be read is shown as unavailable, not empty, and a change then is refused, not lost", async () => {
  const jar = new Jar();
  await signIn(jar);
  await changeCart(jar, "add", "tea");
  await edge.doFault("down");
  try {
    // Location 1 has never held this session's data: it must ask the Durable Object.
    assert.deepEqual(await cart(jar, 1), { status: "unavailable", version: null, items: null });
    const html = await cartPage(jar, 1);
    assert.match(html, /cannot be shown right now/);
    assert.doesNotMatch(html, /Your cart is empty/);
    // Adding needs the current quantity: the site itself declines.
    const add = await cartForm(jar, "add", "mug", 1);
    assert.equal(add.status, 503);
    assert.match(await add.text(), /cannot be changed right now/);
    // Removing needs no read: the site sends the patch, the worker cannot store it.
    const remove = await cartForm(jar, "remove", "tea", 1);
    assert.equal(remove.status, 503);
    assert.ok(remove.headers.get("retry-after"));
    assert.deepEqual(await remove.json(), { error: "store_unavailable" });
  } finally {
    await edge.doFault(null);
  }
  assert.deepEqual(await cart(jar, 1), { status: "ok", version: 1, items: [{ sku: "tea", name: "Green tea", qty: 1 }] });
});
