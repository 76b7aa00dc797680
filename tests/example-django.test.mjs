// examples/django: a Django site with its session framework and django.contrib.auth
// attached to the real worker through its lookup endpoint, with the edge-session package
// (its wheel, built from packages/python and installed with Django into .tmp/django-venv
// by make setup): the package's middleware verifies the assertion, its lookup view answers
// the worker, and the cart, ordinary request.session code, lives in the worker's session
// data (docs/MIGRATING.md); a visitor's, on the cart pages (GUEST_PATHS), in Django's own
// session until sign-in moves it there. The worker runs in two locations (two isolates
// sharing KV and the SESSION_STATE Durable Objects).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startEdge, Jar, eventually, LOOKUP_TOKEN } from "./harness.mjs";
import { cartSuite } from "./cart-suite.mjs";
import { attachVars } from "./attach-suite.mjs";
import { freePort, startProcess } from "./processes.mjs";

const VENV = path.resolve(".tmp/django-venv");
const PYTHON = path.join(VENV, "bin/python");
const APP = path.resolve("examples/django");
let edge, site, port, dir, env;

before(async () => {
  assert.ok(fs.existsSync(PYTHON), `${PYTHON} is missing: make setup creates it`);
  // The site runs the package as a user installs it: the wheel in the venv, not packages/python.
  const where = execFileSync(PYTHON, ["-c", "import edge_session; print(edge_session.__file__)"], { cwd: APP, encoding: "utf8" });
  assert.ok(where.startsWith(path.join(VENV, "lib")), `edge_session imported from ${where}`);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "edge-session-django-"));
  port = await freePort();
  edge = await startEdge({
    // the cart pages are open to visitors, whose carts are in Django's own session
    vars: { ...attachVars(port, "sessionid"), GUEST_PATHS: "/cart,/cart/*,/api/cart" },
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

cartSuite({
  name: "django",
  get edge() {
    return edge;
  },
  signIn: (jar) => signIn(jar),
  async signOut(jar) {
    const out = await post(jar, "/logout");
    assert.equal(out.status, 302);
  },
  request: (jar, path, init, location) => browse(edge, jar, path, init, location),
  redirect: 302,
  formHeaders: (jar) => ({ "x-csrftoken": jar.get("csrftoken") }),
  siteCookie: "sessionid",
});
