// The fetch-style helper: read(request) -> session, session.commit(response) -> Response.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { fetchSession, withEdgeSession, createVerifier } from "../src/index.js";
import { SITE, makeKey, jwksOf, workerHeaders } from "./helpers.js";

let key, options;
before(async () => {
  key = await makeKey("k1");
  options = { site: SITE, keys: jwksOf(key), log: () => {} };
});
const request = async (init = {}, path = "/") => new Request(SITE + path, { method: "POST", ...init });

test("commit on an immutable Response (Response.redirect) returns a new one with the headers", async () => {
  const handler = withEdgeSession(options, async (req, session) => {
    session.login("김철수", { name: "Kim" });
    session.data.first = "visit";
    return Response.redirect(`${SITE}/dashboard`, 303);
  });
  const res = await handler(await request());
  assert.equal(res.status, 303);
  assert.equal(res.headers.get("location"), `${SITE}/dashboard`);
  assert.equal(res.headers.get("x-edge-session-login"), "%EA%B9%80%EC%B2%A0%EC%88%98");
  assert.equal(res.headers.get("x-edge-session-claims"), '{"name":"Kim"}');
  assert.equal(res.headers.get("x-edge-session-data"), '{"first":"visit"}');
});

test("read + commit: the patch added, status, body and every Set-Cookie kept", async () => {
  const edge = fetchSession(options);
  const session = await edge.read(await request({ headers: await workerHeaders(key, { data: '{"count":1}' }) }));
  assert.equal(session.user, "alice");
  session.data.count += 1;
  const original = new Response("hello", { status: 201, headers: [["set-cookie", "a=1"], ["set-cookie", "b=2"], ["x-site", "yes"]] });
  const res = session.commit(original);
  assert.notEqual(res, original);
  assert.equal(res.status, 201);
  assert.equal(await res.text(), "hello");
  assert.deepEqual(res.headers.getSetCookie(), ["a=1", "b=2"]);
  assert.equal(res.headers.get("x-site"), "yes");
  assert.equal(res.headers.get("x-edge-session-data"), '{"count":2}');
});

test("nothing changed: the same Response, untouched", async () => {
  const edge = fetchSession(createVerifier(options));
  const session = await edge.read(await request({ headers: await workerHeaders(key, { data: '{"count":1}' }) }));
  assert.equal(session.data.count, 1);
  const original = new Response("same");
  assert.equal(session.commit(original), original);
});

test("a bad assertion is a 401 JSON answer; required: anonymous is 401 missing_assertion", async () => {
  let ran = 0;
  const handler = withEdgeSession({ ...options, required: true }, () => (ran++, new Response("secret")));
  const forged = await handler(await request({ headers: { "x-session-user": "alice" } }));
  assert.equal(forged.status, 401);
  assert.equal((await forged.json()).error, "invalid_assertion");
  const anonymous = await handler(await request());
  assert.equal(anonymous.status, 401);
  assert.equal(anonymous.headers.get("cache-control"), "no-store");
  assert.equal((await anonymous.json()).error, "missing_assertion");
  assert.equal(ran, 0);
  assert.equal(await (await handler(await request({ headers: await workerHeaders(key) }))).text(), "secret");
});

test("data over the limit at commit: a 503 JSON answer instead of the response", async () => {
  const logged = [];
  const handler = withEdgeSession({ ...options, dataLimit: 100, log: (e) => logged.push(e.code) }, (req, session) => {
    session.data.blob = "z".repeat(200);
    return new Response("would lose the change");
  });
  const res = await handler(await request({ headers: await workerHeaders(key) }));
  assert.equal(res.status, 503);
  assert.equal(res.headers.get("x-edge-session-data"), null);
  const body = await res.json();
  assert.equal(body.error, "data_too_large");
  assert.match(body.detail, /over its limit of 100/);
  assert.deepEqual(logged, ["data_too_large"]);
});

test("unavailable data: patch() still sends a blind change (a removal needs no read)", async () => {
  const edge = fetchSession(options);
  const session = await edge.read(await request({ headers: await workerHeaders(key, { status: "unavailable" }) }));
  assert.equal(session.data, null);
  assert.equal(session.flash("notice"), undefined);
  session.patch({ "cart:tea": null });
  assert.equal(session.commit(new Response("ok")).headers.get("x-edge-session-data"), '{"cart:tea":null}');
});

test("a guest through the fetch helper: session.data read and written, guest true, refused where required", async () => {
  const edge = fetchSession(options);
  const session = await edge.read(await request({ headers: await workerHeaders(key, { guest: true, data: '{"cart:tea":1}' }) }));
  assert.deepEqual([session.user, session.guest, session.data], [null, true, { "cart:tea": 1 }]);
  session.data["cart:tea"] += 1;
  assert.equal(session.commit(new Response("ok")).headers.get("x-edge-session-data"), '{"cart:tea":2}');
  let ran = 0;
  const handler = withEdgeSession({ ...options, required: true }, () => (ran++, new Response("secret")));
  const refused = await handler(await request({ headers: await workerHeaders(key, { guest: true }) }));
  assert.equal(refused.status, 401);
  assert.deepEqual(await refused.json(), { error: "missing_assertion", detail: "this page needs a signed-in user: the request comes from a guest session (not signed in)" });
  assert.equal(ran, 0);
});

test("a visitor's change is sent; a lone unavailable status makes its data null", async () => {
  const handler = withEdgeSession(options, (req, session) => {
    if (session.dataStatus === "unavailable") session.patch({ seen: true });
    else session.data.lang = "fr";
    return new Response(JSON.stringify({ guest: session.guest, data: session.data }));
  });
  const fresh = await handler(await request());
  assert.equal(fresh.headers.get("x-edge-session-data"), '{"lang":"fr"}');
  assert.deepEqual(await fresh.json(), { guest: false, data: { lang: "fr" } });
  const unchecked = await handler(await request({ headers: { "x-session-data-status": "unavailable" } }));
  assert.equal(unchecked.headers.get("x-edge-session-data"), '{"seen":true}', "sent: the worker answers it 503 if it still cannot check");
  assert.deepEqual(await unchecked.json(), { guest: false, data: null });
  const forged = await handler(await request({ headers: { "x-session-data": "{}" } }));
  assert.equal(forged.status, 401);
});
