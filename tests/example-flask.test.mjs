// examples/flask: a Flask site in edge mode (it keeps no sessions: the worker does), with the
// edge-session package's WSGI middleware (its wheel, built from packages/python and
// installed with Flask into .tmp/django-venv by make setup). Its login form signs users in
// with the worker's login signal, its logout with the logout signal, and its cart lives in
// the worker's session data. The worker runs in two locations (two isolates sharing KV and
// the SESSION_STATE Durable Objects).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { startEdge, Jar } from "./harness.mjs";
import { cartSuite } from "./cart-suite.mjs";
import { freePort, startProcess } from "./processes.mjs";

const VENV = path.resolve(".tmp/django-venv");
const PYTHON = path.join(VENV, "bin/python");
const APP = path.resolve("examples/flask");
let edge, site, port;

before(async () => {
  assert.ok(fs.existsSync(PYTHON), `${PYTHON} is missing: make setup creates it`);
  // The site runs the package as a user installs it: the wheel in the venv, not packages/python.
  const where = execFileSync(PYTHON, ["-c", "import edge_session; print(edge_session.__file__)"], { cwd: APP, encoding: "utf8" });
  assert.ok(where.startsWith(path.join(VENV, "lib")), `edge_session imported from ${where}`);
  port = await freePort();
  edge = await startEdge({
    vars: { ORIGIN_URL: `http://127.0.0.1:${port}`, PUBLIC_PATHS: "/,/login", LOGIN_URL: "/login", TICKET_TTL: "1s" },
    locations: 2,
  });
  site = await startProcess(PYTHON, ["-m", "flask", "--app", "app", "run", "--host", "127.0.0.1", "--port", String(port)], {
    cwd: APP,
    env: { EDGE_SITE: edge.url, EDGE_JWKS_URL: `${edge.url}/.edge-session/jwks.json`, PYTHONDONTWRITEBYTECODE: "1" },
    ready: /Running on http:\/\/127\.0\.0\.1/,
  });
});

after(async () => {
  await site?.stop();
  await edge?.close();
});

/** A request to the worker over real HTTP on 127.0.0.1 (at location `location`), with the jar's cookies. */
async function browse(jar, p, init = {}, location = 0) {
  const headers = new Headers(init.headers || {});
  if (jar.cookies.size) headers.set("cookie", jar.header());
  // Miniflare's entry worker sends a request with MF-Route-Override to that worker (and drops the header)
  if (location) headers.set("MF-Route-Override", edge.at(location).name);
  return jar.take(await fetch(`${edge.url}${p}`, { ...init, headers, redirect: "manual" }));
}

const form = (fields) => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded", origin: edge.url },
  body: new URLSearchParams(fields).toString(),
});

async function signIn(jar, username = "alice", password = "wonderland", returnTo = "") {
  const res = await browse(jar, "/login", form({ username, password, return_to: returnTo }));
  await res.arrayBuffer();
  assert.equal(res.status, 303);
  assert.ok(jar.get("sid"), "the worker set no session cookie at the login signal");
  assert.equal(res.headers.get("x-edge-session-login"), null, "the login signal reached the browser");
  return res;
}
const whoami = (jar) => browse(jar, "/api/whoami", { headers: { accept: "application/json" } });

test("flask: a navigation without a session goes to the login page; a user signs in at the site and the site gets the verified identity", async () => {
  const jar = new Jar();
  const nav = await browse(jar, "/account", { headers: { accept: "text/html" } });
  assert.equal(nav.status, 302);
  assert.equal(nav.headers.get("location"), "/login?return_to=%2Faccount");
  const page = await browse(jar, "/login?return_to=%2Faccount", { headers: { accept: "text/html" } });
  assert.equal(page.status, 200);
  assert.match(await page.text(), /name="return_to" value="\/account"/);

  const wrong = await browse(jar, "/login", form({ username: "김철수", password: "nope" }));
  assert.equal(wrong.status, 401);
  assert.match(await wrong.text(), /Wrong username or password/);
  assert.equal(jar.get("sid"), undefined);

  const login = await signIn(jar, "김철수", "비밀번호", "/account");
  assert.equal(login.headers.get("location"), "/account");
  const me = await whoami(jar);
  assert.equal(me.status, 200);
  const body = await me.json();
  assert.deepEqual({ ...body, source: undefined }, { user: "김철수", claims: { name: "김철수", role: "user" }, source: undefined });
  assert.match(body.source, /^(ticket|kv)$/);
  assert.match(await (await browse(jar, "/account", { headers: { accept: "text/html" } })).text(), /Signed in as <b>김철수<\/b>/);

  // Straight to the site, around the worker: headers anyone can send are refused.
  const forged = await fetch(`http://127.0.0.1:${port}/api/whoami`, { headers: { "x-session-user": "alice", "x-session-assertion": "e30.e30.AAAA" } });
  assert.equal(forged.status, 401);
  assert.equal((await forged.json()).error, "invalid_assertion");
  const bare = await fetch(`http://127.0.0.1:${port}/api/whoami`, { headers: { "x-session-user": "alice" } });
  assert.equal(bare.status, 401);
});

test("flask: signing out ends the session at the worker at once", async () => {
  const jar = new Jar();
  await signIn(jar);
  assert.equal((await whoami(jar)).status, 200);
  const cookie = jar.get("sid");
  assert.ok(await edge.getRecord(cookie), "the worker did not store the session in KV");
  const out = await browse(jar, "/logout", form({}));
  assert.equal(out.status, 303);
  assert.equal(jar.get("sid"), undefined, "the worker did not clear its session cookie");
  assert.equal(jar.get("__Host-edge-ticket"), undefined, "the worker did not clear its ticket");
  assert.equal(await edge.getRecord(cookie), null, "the worker kept the ended session in KV");
  const replay = new Jar();
  replay.set("sid", cookie);
  const res = await whoami(replay);
  assert.equal(res.status, 401);
  assert.equal(res.headers.get("x-edge-session-reason"), "invalid_session");
});

test("flask: a flash message kept in session data is shown once", async () => {
  const jar = new Jar();
  await signIn(jar);
  for (const action of ["add", "remove"]) {
    const res = await browse(jar, `/cart/${action}`, form({ sku: "mug" }));
    assert.equal(res.status, 303);
  }
  const first = await (await browse(jar, "/cart", { headers: { accept: "text/html" } })).text();
  assert.match(first, /<p class="notice">Mug removed from your cart.<\/p>/);
  assert.match(first, /Your cart is empty/);
  const again = await (await browse(jar, "/cart", { headers: { accept: "text/html" } })).text();
  assert.doesNotMatch(again, /removed from your cart/);
});

cartSuite({
  name: "flask",
  get edge() {
    return edge;
  },
  signIn: (jar) => signIn(jar),
  async signOut(jar) {
    const out = await browse(jar, "/logout", form({}));
    assert.equal(out.status, 303);
  },
  request: (jar, p, init, location) => browse(jar, p, init, location),
  redirect: 303,
  formHeaders: () => ({ origin: edge.url }),
});
