// lookupHandler(store): express-session's MemoryStore as the worker's lookup endpoint,
// with cookies made by express-session itself.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import express from "express";
import session from "express-session";
import { lookupHandler, unsignCookie } from "../src/index.js";
import { listen } from "./helpers.js";

const SECRET = "the site's express-session secret";
const OLD_SECRET = "the secret before the rotation";
const TOKEN = "lookup-token-0123456789";
let store, site, lookup, cookies;

// A real express-session site: signs in at /login, or just touches a session at /visit.
function siteApp(secret) {
  const app = express();
  app.use(session({ secret, store, resave: false, saveUninitialized: false }));
  app.post("/login", (req, res) => {
    req.session.user = req.query.user;
    req.session.claims = { name: "Alice" };
    req.session.created = 1700000000;
    res.send("ok");
  });
  app.post("/visit", (req, res) => ((req.session.theme = "dark"), res.send("ok")));
  return app;
}

async function cookieFrom(server, path) {
  const res = await fetch(server.url + path, { method: "POST" });
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith("connect.sid="));
  return cookie.split(";")[0].slice("connect.sid=".length); // the raw, percent-encoded value
}

before(async () => {
  store = new session.MemoryStore();
  site = await listen(siteApp([SECRET, OLD_SECRET]));
  const old = await listen(siteApp(OLD_SECRET));
  cookies = {
    alice: await cookieFrom(site, "/login?user=alice"),
    korean: await cookieFrom(site, `/login?user=${encodeURIComponent("김철수")}`),
    anonymous: await cookieFrom(site, "/visit"),
    oldSecret: await cookieFrom(old, "/login?user=olga"),
  };
  await old.close();
  const app = express();
  app.post("/raw", lookupHandler(store, { secret: [SECRET, OLD_SECRET], token: TOKEN }));
  app.post("/parsed", express.json({ limit: "8kb" }), lookupHandler(store, { secret: [SECRET, OLD_SECRET], token: TOKEN }));
  app.all("/any", lookupHandler(store, { secret: SECRET, token: TOKEN }));
  const broken = { get: (id, cb) => setImmediate(() => cb(new Error("redis is down"))) };
  app.post("/broken", lookupHandler(broken, { secret: SECRET, token: TOKEN }));
  lookup = await listen(app);
});
after(async () => {
  await site?.close();
  await lookup?.close();
});

async function ask(path, body, { token = TOKEN, type = "application/json" } = {}) {
  const headers = { "content-type": type };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const res = await fetch(lookup.url + path, { method: "POST", headers, body: typeof body === "string" ? body : JSON.stringify(body) });
  return { status: res.status, body: await res.json(), res };
}

test("a signed-in session: 200 {user, claims, created}, the body read by the handler or a parser", async () => {
  assert.match(cookies.alice, /^s%3A[^.]+\..+/);
  for (const path of ["/raw", "/parsed"]) {
    const { status, body, res } = await ask(path, { session_id: cookies.alice });
    assert.equal(status, 200, path);
    assert.deepEqual(body, { user: "alice", claims: { name: "Alice" }, created: 1700000000 });
    assert.equal(res.headers.get("cache-control"), "no-store");
  }
  assert.equal((await ask("/raw", { session_id: cookies.korean })).body.user, "김철수");
});

test("secret rotation: a cookie signed with the older secret still resolves", async () => {
  assert.deepEqual((await ask("/raw", { session_id: cookies.oldSecret })).body.user, "olga");
  assert.equal((await ask("/any", { session_id: cookies.oldSecret })).status, 404, "only the one secret given there");
});

test("a wrong or missing token: 401", async () => {
  for (const token of ["wrong", `${TOKEN}x`, "", null]) {
    const { status, body, res } = await ask("/raw", { session_id: cookies.alice }, { token });
    assert.equal(status, 401);
    assert.deepEqual(body, { error: "unauthorized" });
    assert.equal(res.headers.get("www-authenticate"), "Bearer");
  }
});

test("unknown, forged, unsigned or signed-out sessions: 404", async () => {
  const [id, sig] = decodeURIComponent(cookies.alice).slice(2).split(".");
  const values = [
    cookies.anonymous, // a session with no user
    `s:${id}.${sig.slice(1)}x`, // signature changed
    `s:other-id.${sig}`, // id changed
    id, // no "s:"
    `s:${id}`, // no signature
    "%E0%A4%A", // not percent-decodable
  ];
  for (const session_id of values) assert.deepEqual(await ask("/raw", { session_id }).then((a) => [a.status, a.body]), [404, { error: "not_found" }], session_id);
  const destroyed = await cookieFrom(site, "/login?user=dora");
  await new Promise((resolve) => unsignCookie(destroyed, [SECRET]).then((id) => store.destroy(id, resolve)));
  assert.equal((await ask("/raw", { session_id: destroyed })).status, 404);
});

test("a bad body: 400", async () => {
  const bodies = ["not json", "[]", JSON.stringify({ session_id: 42 }), JSON.stringify({ session_id: "" }), JSON.stringify({ session_id: "x".repeat(9000) })];
  for (const body of bodies) assert.equal((await ask("/raw", body)).status, 400, body.slice(0, 30));
  assert.equal((await ask("/raw", "", { type: "text/plain" })).status, 400);
});

test("a store error: 503 store_unavailable, never 404", async () => {
  const { status, body } = await ask("/broken", { session_id: cookies.alice });
  assert.equal(status, 503);
  assert.deepEqual(body, { error: "store_unavailable" });
});

test("only POST", async () => {
  const res = await fetch(`${lookup.url}/any`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 405);
  assert.equal(res.headers.get("allow"), "POST");
});

test("options are checked when the handler is made", () => {
  assert.throws(() => lookupHandler({}, { secret: SECRET, token: TOKEN }), /get\(id, callback\)/);
  assert.throws(() => lookupHandler(store, { secret: SECRET }), /LOOKUP_TOKEN/);
  assert.throws(() => lookupHandler(store, { token: TOKEN }), /secret/);
});
