// examples/php: a plain PHP 8.2 site (Debian's php-cli, installed by make setup) run by
// PHP's built-in server, with $_SESSION in files, attached to the real worker through
// its lookup endpoint (lookup.php), written with nothing but PHP.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startEdge, Jar, eventually, LOOKUP_TOKEN } from "./harness.mjs";
import { freePort, startProcess } from "./processes.mjs";

const PHP = "/usr/bin/php";
const APP = path.resolve("examples/php");
const COOKIE = "PHPSESSID";
let edge, site, port, dir, sessions;

before(async () => {
  assert.ok(fs.existsSync(PHP), `${PHP} is missing: make setup installs php-cli`);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "edge-session-php-"));
  sessions = path.join(dir, "sessions");
  port = await freePort();
  edge = await startEdge({
    vars: {
      ORIGIN_URL: `http://127.0.0.1:${port}`,
      SESSION_COOKIE: COOKIE,
      LOOKUP_URL: "/edge-session/lookup",
      LOOKUP_TOKEN,
      PUBLIC_PATHS: "/,/login",
      LOGIN_URL: "/login",
      TICKET_TTL: "1s",
      REVALIDATE_AFTER: "2s",
    },
  });
  site = await startProcess(PHP, ["-S", `127.0.0.1:${port}`, "router.php"], {
    cwd: APP,
    env: { SESSION_DIR: sessions, EDGE_LOOKUP_TOKEN: LOOKUP_TOKEN },
    ready: /Development Server .* started/,
  });
});

after(async () => {
  await site?.stop();
  await edge?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** A request to the worker over real HTTP on 127.0.0.1, with the jar's cookies (a body keeps its Content-Length). */
async function browse(jar, p, init = {}) {
  const headers = new Headers(init.headers || {});
  if (jar.cookies.size) headers.set("cookie", jar.header());
  return jar.take(await fetch(`${edge.url}${p}`, { ...init, headers, redirect: "manual" }));
}

async function signIn(jar, user = "alice", password = "wonderland", returnTo = "") {
  const res = await browse(jar, "/login", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ username: user, password, return_to: returnTo }).toString(),
  });
  await res.arrayBuffer();
  assert.equal(res.status, 303);
  assert.ok(jar.get(COOKIE), "PHP set no session cookie");
  return res;
}
const whoami = (jar) => browse(jar, "/api/whoami", { headers: { accept: "application/json" } });
const sessionFiles = () => fs.readdirSync(sessions).sort();

test("php: sign in at the site, the worker learns the session by lookup, identity reaches the site", async () => {
  const jar = new Jar();
  const nav = await browse(jar, "/account", { headers: { accept: "text/html" } });
  assert.equal(nav.status, 302);
  assert.equal(nav.headers.get("location"), "/login?return_to=%2Faccount");

  // an ID planted in the browser before the login (session fixation): PHP does not adopt it
  const form = await browse(jar, "/login", { headers: { accept: "text/html" } });
  assert.equal(form.status, 200);
  jar.set(COOKIE, "fixated0123456789abcdefgh");
  const login = await signIn(jar, "alice", "wonderland", "/account");
  assert.equal(login.headers.get("location"), "/account");
  assert.notEqual(jar.get(COOKIE), "fixated0123456789abcdefgh", "PHP kept an ID it did not create");
  assert.ok(!sessionFiles().includes("sess_fixated0123456789abcdefgh"));

  const first = await whoami(jar);
  assert.equal(first.status, 200);
  assert.deepEqual(await first.json(), { user: "alice", claims: { name: "Alice", role: "admin" }, source: "lookup", site_session_user: "alice" });
  const again = await whoami(jar);
  assert.match((await again.json()).source, /^(ticket|kv)$/);
  const page = await browse(jar, "/account", { headers: { accept: "text/html" } });
  assert.match(await page.text(), /Signed in as <b>alice<\/b>/);
  // a browser's own identity headers never reach the site
  const forged = await browse(new Jar(), "/", { headers: { "x-session-user": "mallory" } });
  assert.equal(forged.status, 200);
  const anon = await browse(new Jar(), "/api/whoami", { headers: { accept: "application/json", "x-session-user": "mallory" } });
  assert.equal(anon.status, 401);
  assert.equal(anon.headers.get("x-edge-session-reason"), "no_session");
});

test("php: sign-out at the site is seen by the worker at once", async () => {
  const jar = new Jar();
  await signIn(jar, "bob", "builder");
  assert.equal((await whoami(jar)).status, 200);
  const cookie = jar.get(COOKIE);
  assert.ok(sessionFiles().includes(`sess_${cookie}`));
  assert.ok(await edge.getRecord(cookie), "the worker did not cache the session in KV");

  const out = await browse(jar, "/logout", { method: "POST" });
  assert.equal(out.status, 303);
  assert.equal(jar.get(COOKIE), undefined, "PHP did not clear its cookie");
  assert.ok(!sessionFiles().includes(`sess_${cookie}`), "session_destroy() left the file");
  assert.equal(jar.get("__Host-edge-ticket"), undefined, "the worker did not clear its ticket");
  assert.equal(await edge.getRecord(cookie), null, "the worker kept the ended session in KV");
  const replay = new Jar();
  replay.set(COOKIE, cookie);
  const res = await whoami(replay);
  assert.equal(res.status, 401);
  assert.equal(res.headers.get("x-edge-session-reason"), "invalid_session");
});

test("php: a session the site ends by itself is refused once REVALIDATE_AFTER has passed", async () => {
  const laptop = new Jar();
  const phone = new Jar();
  await signIn(laptop);
  await signIn(phone);
  assert.equal((await (await whoami(laptop)).json()).site_session_user, "alice");
  const ended = await browse(phone, "/account/sign-out-other-devices", { method: "POST" });
  assert.equal(ended.status, 200);
  assert.ok((await ended.json()).ended >= 1);
  const cookie = laptop.get(COOKIE);
  const started = Date.now();
  // The worker did not see this happen; it asks the site again after REVALIDATE_AFTER (2 s).
  // The laptop asks for a page that does not open the PHP session, so the site never
  // answers it with a new session ID (with session.use_strict_mode PHP replaces an ID whose
  // session is gone, which the worker would read as the end of the old session at once):
  // the lookup's 404 is what ends it.
  let sent;
  await eventually(async () => {
    sent = laptop.get(COOKIE);
    const res = await browse(laptop, "/account", { headers: { accept: "application/json" } });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("x-edge-session-reason"), "invalid_session");
  }, 8000);
  assert.ok(Date.now() - started < 5000, "refused later than REVALIDATE_AFTER + TICKET_TTL (3 s) and a little");
  assert.equal(sent, cookie, "the site changed the laptop's cookie before the worker refused it");
  assert.equal((await (await whoami(phone)).json()).site_session_user, "alice", "the device that asked stays signed in");
});

test("php: lookup.php answers exactly the protocol and never creates a session (asked directly, on the origin)", async () => {
  const jar = new Jar();
  await signIn(jar, "bob", "builder");
  const id = jar.get(COOKIE);
  const ask = (body, token = LOOKUP_TOKEN) =>
    fetch(`http://127.0.0.1:${port}/edge-session/lookup`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  const files = sessionFiles();
  const ok = await ask({ session_id: id });
  assert.equal(ok.status, 200);
  const answer = await ok.json();
  assert.deepEqual(Object.keys(answer).sort(), ["claims", "created", "user"]);
  assert.equal(answer.user, "bob");
  assert.deepEqual(answer.claims, { name: "Bob", role: "user" });
  assert.ok(Math.abs(answer.created - Date.now() / 1000) < 60, `created ${answer.created} is not the login time`);
  assert.equal(ok.headers.get("set-cookie"), null, "the lookup started a session");

  const wrong = await ask({ session_id: id }, "x".repeat(LOOKUP_TOKEN.length));
  assert.equal(wrong.status, 401);
  const none = await fetch(`http://127.0.0.1:${port}/edge-session/lookup`, { method: "POST", body: JSON.stringify({ session_id: id }) });
  assert.equal(none.status, 401);
  const unknown = randomBytes(13).toString("hex");
  assert.equal((await ask({ session_id: unknown })).status, 404, "an unknown ID");
  for (const outside of ["../../../../etc/passwd", `${id}/../${id}`, `${id}\u0000`, "short", "x".repeat(257)]) {
    const res = await ask({ session_id: outside });
    assert.equal(res.status, 404, `ID ${JSON.stringify(outside.slice(0, 40))}`);
    assert.deepEqual(await res.json(), { error: "not_found" });
  }
  // a session file without a user (an anonymous session) is no signed-in session
  fs.writeFileSync(path.join(sessions, "sess_anonymous0123456789abc"), 'a:1:{s:4:"cart";a:0:{}}');
  assert.equal((await ask({ session_id: "anonymous0123456789abc" })).status, 404);
  fs.rmSync(path.join(sessions, "sess_anonymous0123456789abc"));
  for (const bad of ["not json", "[1]", "{}", "null", JSON.stringify({ session_id: 5 }), JSON.stringify({ session_id: "" }), JSON.stringify({ session_id: "x".repeat(9000) })]) {
    const res = await ask(bad);
    assert.equal(res.status, 400, `body ${bad.slice(0, 40)}`);
    assert.deepEqual(await res.json(), { error: "bad_request" });
  }
  assert.equal((await fetch(`http://127.0.0.1:${port}/edge-session/lookup`)).status, 405);
  assert.deepEqual(sessionFiles(), files, "the lookup created or removed a session file");
  // a store it cannot read is "unavailable" (503), never "signed out" (404)
  fs.renameSync(sessions, `${sessions}.away`);
  fs.writeFileSync(sessions, "not a directory");
  try {
    const down = await ask({ session_id: id });
    assert.equal(down.status, 503);
    assert.deepEqual(await down.json(), { error: "store_unavailable" });
  } finally {
    fs.rmSync(sessions);
    fs.renameSync(`${sessions}.away`, sessions);
  }
  assert.equal((await ask({ session_id: id })).status, 200);
});

test("php: docs/ATTACH.md shows lookup.php and read_session exactly as the example has them", () => {
  const doc = fs.readFileSync("docs/ATTACH.md", "utf8");
  const lookup = fs.readFileSync(path.join(APP, "lookup.php"), "utf8").trimEnd();
  assert.ok(doc.includes("```php\n" + lookup + "\n```"), "ATTACH.md's lookup.php differs from examples/php");
  const session = fs.readFileSync(path.join(APP, "session.php"), "utf8");
  const reader = session.slice(session.indexOf("// Every character PHP may put")).trimEnd();
  assert.ok(reader.includes("function read_session"));
  assert.ok(doc.includes("```php\n" + reader + "\n```"), "ATTACH.md's read_session differs from examples/php/session.php");
});
