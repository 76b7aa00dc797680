// edgeSession() in a real Express app: req.session, dirty tracking, the signal headers,
// and the JSON errors (never a stack trace).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import express from "express";
import { edgeSession, requireUser } from "../src/index.js";
import { SITE, makeKey, jwksOf, workerHeaders, listen } from "./helpers.js";

let key, server, logged;
const DATA = '{"cart":["tea"],"note":"hello","n":1}';

function routes(app) {
  const data = (req) => req.session.data;
  app.get("/whoami", (req, res) => {
    const s = req.session;
    res.json({ user: s.user, guest: s.guest, remember: s.remember, claims: s.claims, source: s.source, authTime: s.authTime, dataStatus: s.dataStatus, dataVersion: s.dataVersion, data: s.data });
  });
  app.post("/read", (req, res) => res.send(`${data(req).note} ${JSON.stringify(data(req).cart)}`));
  app.post("/set", (req, res) => ((data(req).theme = "dark"), res.send("ok")));
  app.post("/same", (req, res) => ((data(req).n = 1), (data(req).cart = ["tea"]), res.send("ok")));
  app.post("/delete", (req, res) => (delete data(req).note, res.send("ok")));
  app.post("/nested", (req, res) => (data(req).cart.push("mug"), res.send("ok")));
  app.post("/null", (req, res) => ((data(req).note = null), res.send("ok")));
  app.post("/unicode", (req, res) => ((data(req).note = "café ☕ 😀"), res.send("ok")));
  app.post("/login", (req, res) => (req.session.login("김철수", { name: "Kim Chul-soo", city: "Séoul" }), res.redirect(303, "/")));
  app.post("/login-data", (req, res) => (req.session.login("bob"), (data(req).welcome = true), res.redirect(303, "/")));
  app.post("/login-remember", (req, res) => (req.session.login("bob", null, { remember: true }), res.redirect(303, "/")));
  app.get("/account", requireUser, (req, res) => res.json({ user: req.session.user }));
  app.post("/logout", (req, res) => ((data(req).theme = "dark"), req.session.logout(), res.redirect(303, "/")));
  app.post("/flash", (req, res) => (req.session.flash("notice", "Saved"), res.redirect(303, "/")));
  app.get("/flash", (req, res) => res.json({ first: req.session.flash("notice") ?? null, again: req.session.flash("notice") ?? null }));
  app.post("/big", (req, res) => ((data(req).blob = "x".repeat(5000)), res.send("a body that must not be sent")));
  const bad = { bigint: () => 1n, function: () => () => 1, nan: () => NaN, undefined: () => undefined, date: () => new Date(), cycle: () => { const a = {}; a.self = a; return a; } };
  app.post("/bad/:kind", (req, res) => ((data(req).bad = { inner: bad[req.params.kind]() }), res.set("x-handler", "1").json({ ok: true })));
  app.get("/stream", (req, res) => {
    data(req).streamed = 1;
    res.write("part one, ");
    setTimeout(() => res.end("part two"), 10);
  });
  app.get("/stream-big", (req, res) => {
    data(req).blob = "y".repeat(5000);
    res.write("part one, ");
    res.end("part two");
  });
  app.get("/head", (req, res) => {
    data(req).explicit = 1;
    res.writeHead(201, { "content-type": "text/plain" });
    res.end("created");
  });
}

before(async () => {
  key = await makeKey("k1");
  const app = express();
  app.use(edgeSession({ site: SITE, keys: jwksOf(key), log: (e) => logged.push(e) }));
  routes(app);
  server = await listen(app);
});
after(() => server?.close());

async function call(path, { method = "POST", headers = {} } = {}) {
  logged = [];
  const res = await fetch(server.url + path, { method, headers, redirect: "manual" });
  return { res, text: await res.text(), patch: res.headers.get("x-edge-session-data") };
}
const withData = () => workerHeaders(key, { data: DATA, version: 4, claims: { role: "admin" } });

test("req.session: the verified user, claims (frozen), source, data", async () => {
  const { res, text } = await call("/whoami", { method: "GET", headers: await withData() });
  assert.equal(res.status, 200);
  const body = JSON.parse(text);
  assert.equal(body.user, "alice");
  assert.deepEqual(body.claims, { role: "admin" });
  assert.equal(body.source, "kv");
  assert.equal(typeof body.authTime, "number");
  assert.equal(body.dataStatus, "ok");
  assert.equal(body.dataVersion, 4);
  assert.deepEqual(body.data, JSON.parse(DATA));
});

test("a visitor without a session: user null, data {}, and its changes are sent", async () => {
  const who = await call("/whoami", { method: "GET" });
  assert.deepEqual(JSON.parse(who.text), { user: null, guest: false, remember: false, claims: {}, source: null, authTime: null, dataStatus: "none", dataVersion: null, data: {} });
  assert.equal(who.patch, null);
  assert.equal((await call("/set")).patch, '{"theme":"dark"}', "on a guest path the worker makes it a guest session");
});

test("a guest: guest true, user null, its data read and written like a user's", async () => {
  const guest = await workerHeaders(key, { guest: true, data: DATA, version: 2 });
  const who = JSON.parse((await call("/whoami", { method: "GET", headers: guest })).text);
  assert.deepEqual(who, { user: null, guest: true, remember: false, claims: {}, source: "state", authTime: null, dataStatus: "ok", dataVersion: 2, data: JSON.parse(DATA) });
  assert.equal((await call("/nested", { headers: await workerHeaders(key, { guest: true, data: DATA }) })).patch, '{"cart":["tea","mug"]}');
  assert.equal((await call("/set", { headers: await workerHeaders(key, { guest: true }) })).patch, '{"theme":"dark"}');
});

test("requireUser refuses a guest as it refuses a visitor without a session: 401 missing_assertion", async () => {
  const guest = await call("/account", { method: "GET", headers: await workerHeaders(key, { guest: true, data: DATA }) });
  assert.match(assertErrorAnswer(guest, 401, "missing_assertion").detail, /signed-in user: the request comes from a guest session/);
  const visitor = await call("/account", { method: "GET" });
  assert.match(assertErrorAnswer(visitor, 401, "missing_assertion").detail, /signed-in user: the request carries no X-Session-Assertion/);
  assert.deepEqual(JSON.parse((await call("/account", { method: "GET", headers: await workerHeaders(key) })).text), { user: "alice" });
});

test("login from a guest: the login, and only the changes made, on top of the guest's data", async () => {
  const { res, patch } = await call("/login-data", { headers: await workerHeaders(key, { guest: true, data: DATA }) });
  assert.equal(res.headers.get("x-edge-session-login"), "bob");
  assert.equal(patch, '{"welcome":true}', "no removal of the guest's keys: the worker carries them");
});

test("login with remember: X-Edge-Session-Remember: 1; a remembered session says remember", async () => {
  const { res } = await call("/login-remember");
  assert.equal(res.headers.get("x-edge-session-login"), "bob");
  assert.equal(res.headers.get("x-edge-session-remember"), "1");
  assert.equal((await call("/login")).res.headers.get("x-edge-session-remember"), null);
  const who = JSON.parse((await call("/whoami", { method: "GET", headers: await workerHeaders(key, { remember: true }) })).text);
  assert.deepEqual([who.user, who.remember], ["alice", true]);
});

test("X-Session-Data-Status: unavailable alone: a visitor whose data cannot be read; any other lone identity header is refused", async () => {
  const who = JSON.parse((await call("/whoami", { method: "GET", headers: { "x-session-data-status": "unavailable" } })).text);
  assert.deepEqual([who.user, who.guest, who.data, who.dataStatus], [null, false, null, "unavailable"]);
  assertErrorAnswer(await call("/whoami", { method: "GET", headers: { "x-session-source": "state" } }), 401, "invalid_assertion");
  assertErrorAnswer(await call("/whoami", { method: "GET", headers: { "x-session-data-status": "unavailable", "x-session-data-version": "1" } }), 401, "invalid_assertion");
});

test("a request that only reads sends no patch, nor one that writes the same values", async () => {
  const read = await call("/read", { headers: await withData() });
  assert.equal(read.text, 'hello ["tea"]');
  assert.equal(read.patch, null);
  assert.equal((await call("/same", { headers: await withData() })).patch, null);
});

test("set, delete, nested mutation, null: each key sent once, as changed", async () => {
  assert.equal((await call("/set", { headers: await withData() })).patch, '{"theme":"dark"}');
  assert.equal((await call("/delete", { headers: await withData() })).patch, '{"note":null}');
  assert.equal((await call("/nested", { headers: await withData() })).patch, '{"cart":["tea","mug"]}');
  assert.equal((await call("/null", { headers: await withData() })).patch, '{"note":null}');
  assert.equal((await call("/set", { headers: await workerHeaders(key) })).patch, '{"theme":"dark"}', "a session without data yet");
});

test("the patch is ASCII: non-ASCII as \\uXXXX", async () => {
  const { patch } = await call("/unicode", { headers: await withData() });
  assert.equal(patch, '{"note":"caf\\u00e9 \\u2615 \\ud83d\\ude00"}');
  assert.equal(JSON.parse(patch).note, "café ☕ 😀");
});

test("login: the user percent-encoded, the claims as ASCII JSON, no patch", async () => {
  const { res } = await call("/login");
  assert.equal(res.status, 303);
  assert.equal(res.headers.get("x-edge-session-login"), "%EA%B9%80%EC%B2%A0%EC%88%98");
  assert.equal(res.headers.get("x-edge-session-claims"), '{"name":"Kim Chul-soo","city":"S\\u00e9oul"}');
  assert.equal(res.headers.get("x-edge-session-data"), null);
});

test("login + data: the new session's first data goes with the login, not the old session's", async () => {
  const { res, patch } = await call("/login-data", { headers: await withData() });
  assert.equal(res.headers.get("x-edge-session-login"), "bob");
  assert.equal(res.headers.get("x-edge-session-claims"), null);
  assert.equal(patch, '{"welcome":true}');
});

test("logout: the signal and no patch", async () => {
  const { res, patch } = await call("/logout", { headers: await withData() });
  assert.equal(res.headers.get("x-edge-session-logout"), "1");
  assert.equal(patch, null);
});

test("flash: stored by one request, read once and removed by the next", async () => {
  assert.equal((await call("/flash", { headers: await workerHeaders(key) })).patch, '{"notice":"Saved"}');
  const next = await call("/flash", { method: "GET", headers: await workerHeaders(key, { data: '{"notice":"Saved"}' }) });
  assert.deepEqual(JSON.parse(next.text), { first: "Saved", again: null });
  assert.equal(next.patch, '{"notice":null}');
});

function assertErrorAnswer({ res, text, patch }, status, code) {
  assert.equal(res.status, status);
  assert.equal(res.headers.get("content-type"), "application/json; charset=utf-8");
  assert.equal(res.headers.get("cache-control"), "no-store");
  assert.equal(patch, null);
  const body = JSON.parse(text);
  assert.deepEqual(Object.keys(body), ["error", "detail"]);
  assert.equal(body.error, code);
  assert.doesNotMatch(text, /\n\s+at |node_modules|\.js:\d+/, "a stack trace in the answer");
  return body;
}

test("oversized data: 503 data_too_large, no patch, the handler's body not sent, logged", async () => {
  const answer = await call("/big", { headers: await withData() });
  const body = assertErrorAnswer(answer, 503, "data_too_large");
  assert.match(body.detail, /over its limit of 4096/);
  assert.equal(answer.res.headers.get("x-handler"), null);
  assert.equal(logged.length, 1);
  assert.equal(logged[0].code, "data_too_large");
});

test("values that are not JSON: 503 data_not_serializable", async () => {
  for (const [kind, why] of [["bigint", /bigint/], ["function", /function/], ["nan", /NaN/], ["undefined", /undefined/], ["date", /Date/], ["cycle", /cycle/]]) {
    const answer = await call(`/bad/${kind}`, { headers: await withData() });
    const body = assertErrorAnswer(answer, 503, "data_not_serializable");
    assert.match(body.detail, why, kind);
    assert.equal(answer.res.headers.get("x-handler"), null, kind);
  }
});

test("streamed responses (write, then end) and an explicit writeHead still carry the headers", async () => {
  const streamed = await call("/stream", { method: "GET", headers: await withData() });
  assert.equal(streamed.text, "part one, part two");
  assert.equal(streamed.patch, '{"streamed":1}');
  const head = await call("/head", { method: "GET", headers: await withData() });
  assert.equal(head.res.status, 201);
  assert.equal(head.text, "created");
  assert.equal(head.patch, '{"explicit":1}');
  const big = await call("/stream-big", { method: "GET", headers: await withData() });
  assertErrorAnswer(big, 503, "data_too_large");
});

test("bad assertions: 401 JSON before any handler runs", async () => {
  const forged = { "x-session-user": "alice", "x-session-source": "kv" };
  assertErrorAnswer(await call("/set", { headers: forged }), 401, "invalid_assertion");
  const tampered = { ...(await withData()), "x-session-data": '{"cart":[],"admin":true}' };
  assertErrorAnswer(await call("/set", { headers: tampered }), 401, "data_mismatch");
  const other = await makeKey("k1");
  assertErrorAnswer(await call("/whoami", { method: "GET", headers: await workerHeaders(other) }), 401, "invalid_assertion");
});

test("JWKS unreachable: 503 keys_unavailable", async (t) => {
  const app = express();
  app.use(edgeSession({ site: SITE, jwksUrl: "http://127.0.0.1:9/jwks.json", jwksTimeout: 300 }));
  routes(app);
  const down = await listen(app);
  t.after(down.close);
  const res = await fetch(`${down.url}/whoami`, { headers: await workerHeaders(key) });
  assertErrorAnswer({ res, text: await res.text(), patch: res.headers.get("x-edge-session-data") }, 503, "keys_unavailable");
});

test("unavailable data: data null, and the handler decides", async () => {
  const { text } = await call("/whoami", { method: "GET", headers: await workerHeaders(key, { status: "unavailable" }) });
  const body = JSON.parse(text);
  assert.equal(body.dataStatus, "unavailable");
  assert.equal(body.data, null);
});

test("requireUser is the middleware itself for req.session, and makes one for another property", async (t) => {
  const app = express();
  app.use(edgeSession({ site: SITE, keys: jwksOf(key) }));
  app.get("/direct", requireUser, (req, res) => res.json({ user: req.session.user }));
  app.get("/made", requireUser(), (req, res) => res.json({ user: req.session.user }));
  const site = await listen(app);
  t.after(site.close);
  for (const path of ["/direct", "/made"]) {
    const ok = await fetch(`${site.url}${path}`, { headers: await workerHeaders(key) });
    assert.deepEqual(await ok.json(), { user: "alice" }, path);
    const anonymous = await fetch(`${site.url}${path}`, { signal: AbortSignal.timeout(5000) });
    assertErrorAnswer({ res: anonymous, text: await anonymous.text(), patch: null }, 401, "missing_assertion");
  }
});

test("property and .required: req.edge next to express-session's req.session", async (t) => {
  const app = express();
  app.use((req, res, next) => ((req.session = { user: "site-side" }), next())); // as express-session would
  const edge = edgeSession({ site: SITE, keys: jwksOf(key), property: "edge" });
  app.use(edge);
  app.use(edge); // mounted twice: the first one's session stays
  app.get("/account", edge.required, (req, res) => res.json({ edge: req.edge.user, site: req.session.user }));
  const site = await listen(app);
  t.after(site.close);
  const ok = await fetch(`${site.url}/account`, { headers: await workerHeaders(key) });
  assert.deepEqual(await ok.json(), { edge: "alice", site: "site-side" });
  const anonymous = await fetch(`${site.url}/account`);
  assertErrorAnswer({ res: anonymous, text: await anonymous.text(), patch: null }, 401, "missing_assertion");

  const clash = express();
  clash.use((req, res, next) => ((req.session = {}), next()));
  clash.use(edgeSession({ site: SITE, keys: jwksOf(key) }));
  clash.use((err, req, res, next) => res.status(500).send(err.message));
  const clashing = await listen(clash);
  t.after(clashing.close);
  assert.match(await (await fetch(clashing.url)).text(), /req.session is already set.*property: "edge"/);
});
