// examples/php: a plain PHP 8.2 site (Debian's php-cli, installed by make setup) run by
// PHP's built-in server, with $_SESSION in files, attached to the real worker through
// its lookup endpoint (lookup.php), written with nothing but PHP.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startEdge, Jar, LOOKUP_TOKEN } from "./harness.mjs";
import { attachSuite, attachVars, browser } from "./attach-suite.mjs";
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
  edge = await startEdge({ vars: attachVars(port, COOKIE) });
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

const { browse, whoami } = browser(() => edge);

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

attachSuite({
  name: "php",
  cookie: COOKIE,
  running: () => ({ edge, port }),
  signIn,
  signOut: (jar) => browse(jar, "/logout", { method: "POST" }),
  endOtherDevices: (jar) => browse(jar, "/account/sign-out-other-devices", { method: "POST" }),
  // A page that does not open the PHP session: with session.use_strict_mode PHP replaces an
  // ID whose session is gone, which the worker would read as the end of the old session.
  quietPath: "/account",
  signedIn(cookie) {
    assert.ok(sessionFiles().includes(`sess_${cookie}`));
  },
  signedOut(jar, cookie) {
    assert.equal(jar.get(COOKIE), undefined, "PHP did not clear its cookie");
    assert.ok(!sessionFiles().includes(`sess_${cookie}`), "session_destroy() left the file");
  },
  lookup: {
    title: "lookup.php, which never creates a session,",
    unknownId: () => randomBytes(13).toString("hex"),
    async ids(ask, id) {
      for (const outside of ["../../../../etc/passwd", `${id}/../${id}`, `${id}\u0000`, "short", "x".repeat(257)]) {
        const res = await ask({ session_id: outside });
        assert.equal(res.status, 404, `ID ${JSON.stringify(outside.slice(0, 40))}`);
        assert.deepEqual(await res.json(), { error: "not_found" });
      }
      // a session file without a user (an anonymous session) is no signed-in session
      fs.writeFileSync(path.join(sessions, "sess_anonymous0123456789abc"), 'a:1:{s:4:"cart";a:0:{}}');
      assert.equal((await ask({ session_id: "anonymous0123456789abc" })).status, 404);
      fs.rmSync(path.join(sessions, "sess_anonymous0123456789abc"));
    },
    extraBadBodies: ["null"],
    before: () => sessionFiles(),
    async after(files, url) {
      assert.equal((await fetch(url)).status, 405);
      assert.deepEqual(sessionFiles(), files, "the lookup created or removed a session file");
    },
    breakStore() {
      fs.renameSync(sessions, `${sessions}.away`);
      fs.writeFileSync(sessions, "not a directory");
      return () => {
        fs.rmSync(sessions);
        fs.renameSync(`${sessions}.away`, sessions);
      };
    },
  },
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
