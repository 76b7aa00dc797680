// The origin libraries as a new user gets them: the artifacts that would be published
// (scripts/pack.sh, `make pack`, builds them into dist/: `npm pack` and a wheel from
// `python -m build`) installed into fresh temporary projects, each a small edge-mode site
// written the way the packages' READMEs say, behind the real worker.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startEdge, Jar, browse } from "./harness.mjs";
import { freePort, startProcess } from "./processes.mjs";

const DIST = path.resolve("dist");
const PYTHON = path.resolve(process.env.EDGE_SESSION_PYTHON ?? ".tmp/django-venv/bin/python");
const artifact = (re) => {
  const found = fs.existsSync(DIST) ? fs.readdirSync(DIST).filter((f) => re.test(f)) : [];
  assert.equal(found.length, 1, `expected one ${re} in ${DIST} (scripts/pack.sh builds it; make test runs it), found ${found.join(", ") || "none"}`);
  return path.join(DIST, found[0]);
};

// The same small site in both languages: /login (public) signs "zoë" in with a claim and
// starts her data; /me counts visits in session data; /logout signs out; /cart/add (a guest
// path) counts items for anyone, signed in or not, and GET /cart shows them.
const NODE_APP = `import express from "express";
import { edgeSession, requireUser } from "edge-session";

const app = express();
app.use(edgeSession({ site: process.env.EDGE_SITE, jwksUrl: process.env.EDGE_JWKS_URL }));
app.post("/login", (req, res) => {
  req.session.login("zoë", { role: "reader" });
  req.session.data.visits = 0;
  res.redirect(303, "/me");
});
app.get("/me", requireUser, (req, res) => {
  req.session.data.visits += 1;
  res.json({ user: req.session.user, claims: req.session.claims, visits: req.session.data.visits, source: req.session.source });
});
app.post("/logout", (req, res) => {
  req.session.logout();
  res.redirect(303, "/");
});
const cart = (req) => ({ user: req.session.user, guest: req.session.guest, items: req.session.data.items ?? 0 });
app.post("/cart/add", (req, res) => {
  req.session.data.items = (req.session.data.items ?? 0) + 1;
  res.json(cart(req));
});
app.get("/cart", (req, res) => res.json(cart(req)));
const server = app.listen(Number(process.env.PORT), "127.0.0.1", () => console.log("listening"));
process.on("SIGTERM", () => server.close(() => process.exit(0)).closeAllConnections());
`;

const PYTHON_APP = `import json, os
from wsgiref.simple_server import make_server, WSGIRequestHandler
from edge_session import Verifier
from edge_session.wsgi import EdgeSessionMiddleware

def site(environ, start_response):
    session, path = environ["edge_session"], environ["PATH_INFO"]
    if path == "/login" and environ["REQUEST_METHOD"] == "POST":
        session.login("zoë", {"role": "reader"})
        session.data["visits"] = 0
        start_response("303 See Other", [("Location", "/me")])
        return [b""]
    if path == "/me":
        if session.user is None:
            start_response("401 Unauthorized", [("Content-Type", "application/json")])
            return [b'{"error":"missing_assertion"}']
        session.data["visits"] += 1
        body = {"user": session.user, "claims": session.claims, "visits": session.data["visits"], "source": session.source}
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]
    if path == "/logout" and environ["REQUEST_METHOD"] == "POST":
        session.logout()
        start_response("303 See Other", [("Location", "/")])
        return [b""]
    if path in ("/cart", "/cart/add"):
        if path == "/cart/add" and environ["REQUEST_METHOD"] == "POST":
            session.data["items"] = session.data.get("items", 0) + 1
        body = {"user": session.user, "guest": session.guest, "items": session.data.get("items", 0)}
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

verifier = Verifier(site=os.environ["EDGE_SITE"], jwks_url=os.environ["EDGE_JWKS_URL"])
server = make_server("127.0.0.1", int(os.environ["PORT"]), EdgeSessionMiddleware(site, verifier), handler_class=Quiet)
print("listening", flush=True)
server.serve_forever()
`;

let dir;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "edge-session-packages-"));
});
after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs the worker in edge mode in front of a site started by `start(port, env)`. */
async function behindWorker(start, check) {
  const port = await freePort();
  const edge = await startEdge({ vars: { ORIGIN_URL: `http://127.0.0.1:${port}`, PUBLIC_PATHS: "/,/login", GUEST_PATHS: "/cart,/cart/add", TICKET_TTL: "1s" } });
  let site;
  try {
    // the harness addresses its requests to http://127.0.0.1:8787: the assertion's audience
    site = await start(port, { EDGE_SITE: "http://127.0.0.1:8787", EDGE_JWKS_URL: `${edge.url}/.edge-session/jwks.json`, PORT: String(port) });
    await check(edge);
  } finally {
    await site?.stop();
    await edge.close();
  }
}

/** What a new user checks first: sign in, data kept across requests, sign out. */
async function signInCountSignOut(edge) {
  const jar = new Jar();
  const anonymous = await browse(edge, jar, "/me", { headers: { accept: "application/json" } });
  assert.equal(anonymous.status, 401);
  const login = await browse(edge, jar, "/login", { method: "POST" });
  assert.equal(login.status, 303, await login.text());
  assert.ok(jar.get("sid"), "the worker set no session cookie at the login signal");
  for (const visits of [1, 2, 3]) {
    const me = await browse(edge, jar, "/me", { headers: { accept: "application/json" } });
    assert.equal(me.status, 200, await me.clone().text());
    const body = await me.json();
    assert.deepEqual({ ...body, source: undefined }, { user: "zoë", claims: { role: "reader" }, visits, source: undefined });
    assert.match(body.source, /^(ticket|kv)$/);
    assert.equal(me.headers.get("x-edge-session-data"), null, "the patch header reached the client");
  }
  const out = await browse(edge, jar, "/logout", { method: "POST", headers: { origin: "http://127.0.0.1:8787" } });
  assert.equal(out.status, 303);
  const after = await browse(edge, jar, "/me", { headers: { accept: "application/json" } });
  assert.equal(after.status, 401);
}

/** A visitor's cart: its first item makes a guest session, and signing in keeps it. */
async function guestCartThroughSignIn(edge) {
  const jar = new Jar();
  const cart = async (method = "GET") => {
    const res = await browse(edge, jar, method === "GET" ? "/cart" : "/cart/add", { method, headers: { accept: "application/json" } });
    assert.equal(res.status, 200, await res.clone().text());
    return res.json();
  };
  assert.deepEqual(await cart(), { user: null, guest: false, items: 0 }, "a visitor");
  assert.equal(jar.get("sid"), undefined, "a visitor who stored nothing got a session");
  assert.deepEqual(await cart("POST"), { user: null, guest: false, items: 1 }, "the first item, sent by a visitor");
  const guestSid = jar.get("sid");
  assert.ok(guestSid, "the first item made no guest session");
  assert.deepEqual(await cart("POST"), { user: null, guest: true, items: 2 }, "the second item, in the guest session");
  const login = await browse(edge, jar, "/login", { method: "POST" });
  assert.equal(login.status, 303, await login.text());
  assert.notEqual(jar.get("sid"), guestSid, "signing in kept the guest's session ID");
  assert.deepEqual(await cart(), { user: "zoë", guest: false, items: 2 }, "the cart did not come through sign-in");
}

test("packages: the npm artifact, installed into a fresh project with express, runs a site behind the worker", async () => {
  const tgz = artifact(/^edge-session-\d+\.\d+\.\d+\.tgz$/);
  const project = path.join(dir, "node-site");
  fs.mkdirSync(project);
  const pkg = { name: "fresh-site", private: true, type: "module", dependencies: { "edge-session": `file:${tgz}`, express: "5.3.0" } };
  fs.writeFileSync(path.join(project, "package.json"), JSON.stringify(pkg, null, 2));
  fs.writeFileSync(path.join(project, "app.mjs"), NODE_APP);
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"], { cwd: project, stdio: "pipe" });
  const installed = JSON.parse(fs.readFileSync(path.join(project, "node_modules/edge-session/package.json"), "utf8"));
  assert.ok(!fs.lstatSync(path.join(project, "node_modules/edge-session")).isSymbolicLink(), "installed as a copy of the artifact");
  assert.deepEqual(Object.keys(installed.dependencies), ["jose"]);
  await behindWorker(
    (port, env) => startProcess("node", ["app.mjs"], { cwd: project, env, ready: /listening/ }),
    async (edge) => {
      await signInCountSignOut(edge);
      await guestCartThroughSignIn(edge);
    },
  );
});

test("packages: the wheel, installed into a fresh venv, runs a WSGI site behind the worker", async () => {
  const wheel = artifact(/^edge_session-\d+\.\d+\.\d+-py3-none-any\.whl$/);
  const venv = path.join(dir, "venv");
  execFileSync(PYTHON, ["-m", "venv", venv], { stdio: "pipe" });
  const py = path.join(venv, "bin/python");
  execFileSync(py, ["-m", "pip", "install", "-q", "--disable-pip-version-check", wheel], { stdio: "pipe" });
  const site = path.join(dir, "site.py");
  fs.writeFileSync(site, PYTHON_APP);
  await behindWorker(
    (port, env) => startProcess(py, [site], { cwd: dir, env: { ...env, PYTHONDONTWRITEBYTECODE: "1" }, ready: /listening/ }),
    async (edge) => {
      await signInCountSignOut(edge);
      await guestCartThroughSignIn(edge);
    },
  );
});
