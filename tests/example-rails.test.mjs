// examples/rails: a Rails 6.1 site (Debian's ruby-rails, ruby-jwt and puma, installed by
// make setup) with server-side sessions (the cache store over a FileStore), attached to
// the real worker through its lookup endpoint, written with nothing but Rails.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startEdge, Jar, sha256hex, LOOKUP_TOKEN } from "./harness.mjs";
import { attachSuite, attachVars, browser } from "./attach-suite.mjs";
import { freePort, startProcess } from "./processes.mjs";

const PUMA = "/usr/bin/puma";
const APP = path.resolve("examples/rails");
const COOKIE = "_edgesite_session";
let edge, site, port, dir;

before(async () => {
  assert.ok(fs.existsSync(PUMA), `${PUMA} is missing: make setup installs ruby-rails, ruby-jwt and puma`);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "edge-session-rails-"));
  port = await freePort();
  edge = await startEdge({ vars: attachVars(port, COOKIE) });
  site = await startProcess(PUMA, ["--bind", `tcp://127.0.0.1:${port}`, "--threads", "0:4", "config.ru"], {
    cwd: APP,
    env: {
      RAILS_ENV: "production",
      SECRET_KEY_BASE: randomBytes(64).toString("hex"),
      EDGE_LOOKUP_TOKEN: LOOKUP_TOKEN,
      EDGE_SITE: edge.url,
      SESSION_DIR: path.join(dir, "sessions"),
    },
    ready: /Listening on/,
    timeoutMs: 60000,
  });
});

after(async () => {
  await site?.stop();
  await edge?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

// the site as a browser addresses it: the assertion's audience is edge.url
const { browse, whoami } = browser(() => edge);

/** Rails' authenticity token of the form posting to `action` in `html` (per-form tokens). */
function formToken(html, action) {
  const form = [...html.matchAll(/<form\b[^>]*>[\s\S]*?<\/form>/g)].map((m) => m[0]).find((f) => f.includes(`action="${action}"`));
  const token = form && /name="authenticity_token" value="([^"]+)"/.exec(form)?.[1];
  assert.ok(token, `no authenticity token for ${action} in:\n${html}`);
  return token;
}

const formPost = (jar, p, fields) =>
  browse(jar, p, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(fields).toString() });

/** GET the login form through the worker (a public path), then POST it with its CSRF token. */
async function signIn(jar, user = "alice", password = "wonderland", returnTo = "") {
  const form = await browse(jar, `/login${returnTo ? `?return_to=${encodeURIComponent(returnTo)}` : ""}`, { headers: { accept: "text/html" } });
  assert.equal(form.status, 200);
  const res = await formPost(jar, "/login", { authenticity_token: formToken(await form.text(), "/login"), username: user, password, return_to: returnTo });
  await res.arrayBuffer();
  assert.equal(res.status, 303);
  assert.ok(jar.get(COOKIE), "Rails set no session cookie");
  return res;
}

/** POSTs one of the account page's buttons ("/logout", "/account/sign-out-other-devices"). */
async function press(jar, action) {
  const page = await browse(jar, "/account", { headers: { accept: "text/html" } });
  assert.equal(page.status, 200);
  return formPost(jar, action, { authenticity_token: formToken(await page.text(), action) });
}

test("rails: sign in at the site, the worker learns the session by lookup, the site gets a verified identity", async () => {
  const jar = new Jar();
  const nav = await browse(jar, "/account", { headers: { accept: "text/html" } });
  assert.equal(nav.status, 302);
  assert.equal(nav.headers.get("location"), "/login?return_to=%2Faccount");

  const login = await signIn(jar, "alice", "wonderland", "/account");
  assert.equal(login.headers.get("location"), "/account");
  const first = await whoami(jar);
  assert.equal(first.status, 200);
  assert.deepEqual(await first.json(), { user: "alice", claims: { name: "Alice", role: "admin" }, source: "lookup", site_session_user: "alice" });
  const again = await browse(jar, "/api/me", { headers: { accept: "application/json" } });
  assert.equal(again.status, 200);
  const me = await again.json();
  assert.match(me.source, /^(ticket|kv)$/);
  assert.deepEqual({ ...me, source: "" }, { user: "alice", claims: { name: "Alice", role: "admin" }, source: "" });
  const page = await browse(jar, "/account", { headers: { accept: "text/html" } });
  assert.match(await page.text(), /Signed in as <b>alice<\/b>/);

  // Around the worker, identity headers alone get nowhere: the site wants the assertion.
  const forged = await fetch(`http://127.0.0.1:${port}/api/whoami`, { headers: { "x-session-user": "alice", "x-session-assertion": "e30.e30.AAAA" } });
  assert.equal(forged.status, 401);
  assert.equal((await forged.json()).error, "invalid_assertion");
});

attachSuite({
  name: "rails",
  cookie: COOKIE,
  running: () => ({ edge, port }),
  signIn,
  signOut: (jar) => press(jar, "/logout"),
  endOtherDevices: (jar) => press(jar, "/account/sign-out-other-devices"),
  // The JSON API never loads the Rails session (a page that loads the dead session would:
  // Rails then starts a new one, and the worker reads the changed cookie as the end of it).
  quietPath: "/api/me",
  async signedOut(jar, cookie) {
    // reset_session answers with a new, empty session's cookie: a different value, which the
    // worker reads as the end of the old session
    assert.ok(jar.get(COOKIE) && jar.get(COOKIE) !== cookie, "Rails did not replace its cookie");
    // and the new cookie is nobody's: the lookup says so
    const anon = await whoami(jar);
    assert.equal(anon.status, 401);
    assert.equal(anon.headers.get("x-edge-session-reason"), "invalid_session");
  },
  lookup: {
    title: "the lookup endpoint",
    unknownId: () => randomBytes(16).toString("hex"),
    async ids(ask, id) {
      assert.equal((await ask({ session_id: "../../etc/passwd" })).status, 404, "an ID Rails never makes");
      // the store's key for this session (its private ID) is no cookie value: it would be a second name for it
      assert.equal((await ask({ session_id: `2::${sha256hex(id)}` })).status, 404, "the private ID");
    },
    breakStore() {
      const sessions = path.join(dir, "sessions");
      fs.renameSync(sessions, `${sessions}.away`);
      return () => fs.renameSync(`${sessions}.away`, sessions);
    },
  },
});

test("rails: docs/ATTACH.md shows the lookup controller and the session store exactly as the example has them", () => {
  const doc = fs.readFileSync("docs/ATTACH.md", "utf8");
  const controller = fs.readFileSync(path.join(APP, "app/controllers/edge_session_lookups_controller.rb"), "utf8").trimEnd();
  assert.ok(doc.includes("```ruby\n" + controller + "\n```"), "ATTACH.md's Rails lookup differs from examples/rails");
  const store = /\n( +config\.session_store :cache_store,[\s\S]*?)\nend\n/.exec(fs.readFileSync(path.join(APP, "config.ru"), "utf8"))[1];
  const dedented = store.replace(/^ {2}/gm, "");
  assert.ok(doc.includes("```ruby\n" + dedented + "\n"), "ATTACH.md's Rails session store differs from examples/rails/config.ru");
});
