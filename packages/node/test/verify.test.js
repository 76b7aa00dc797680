// createVerifier().verify(): what the worker vouches for, and every way it refuses.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { createVerifier, InvalidAssertionError, DataMismatchError, EdgeSessionError } from "../src/index.js";
import { SITE, SID, makeKey, jwksOf, sign, unsigned, payloadFor, guestPayload, workerHeaders, nowSec } from "./helpers.js";

let key, other, verifier;
before(async () => {
  key = await makeKey("k1");
  other = await makeKey("k1"); // same kid, another key: a forgery
  verifier = createVerifier({ site: SITE, keys: jwksOf(key) });
});

async function refused(headers, Kind, pattern) {
  await assert.rejects(verifier.verify(headers), (e) => {
    assert.ok(e instanceof Kind, `${e.name}: ${e.message}`);
    assert.ok(e instanceof EdgeSessionError);
    assert.match(e.message, pattern);
    return true;
  });
}

test("a valid assertion gives the identity", async () => {
  const headers = await workerHeaders(key, { user: "김철수", claims: { name: "Kim", role: "admin" } });
  const { keyId, payload, ...identity } = await verifier.verify(headers);
  assert.equal(keyId, "k1");
  assert.equal(payload.sub, "김철수");
  assert.equal(payload.iss, "edge-session");
  assert.equal(payload.sid, SID);
  assert.ok(Object.isFrozen(payload));
  assert.ok(Math.abs(payload.auth_time - (nowSec() - 60)) <= 1, "auth_time as signed");
  assert.deepEqual(identity, {
    user: "김철수",
    guest: false,
    remember: false,
    claims: { name: "Kim", role: "admin" },
    source: "kv",
    authTime: payload.auth_time, // the helper signs nowSec() - 60; read back, not recomputed across a second boundary
    sessionHash: SID,
    data: {},
    dataVersion: null,
    dataStatus: "none",
  });
});

test("a Fetch Request, a Headers object and any header case are read alike", async () => {
  const headers = await workerHeaders(key);
  const upper = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toUpperCase(), v]));
  for (const input of [new Request(SITE, { headers }), new Headers(headers), upper, { headers }]) {
    assert.equal((await verifier.verify(input)).user, "alice");
  }
});

test("no assertion at all is an anonymous request: null", async () => {
  assert.equal(await verifier.verify({ accept: "text/html" }), null);
  assert.equal(await verifier.verify(new Request(SITE)), null);
});

test("identity headers without an assertion are forged", async () => {
  await refused({ "x-session-user": "alice", "x-session-source": "kv" }, InvalidAssertionError, /x-session-user without X-Session-Assertion/);
  await refused({ "x-session-data": "{}" }, InvalidAssertionError, /x-session-data without/);
  for (const name of ["x-session-claims", "x-session-source", "x-session-data-version"]) {
    await refused({ [name]: "1" }, InvalidAssertionError, new RegExp(`${name} without X-Session-Assertion`));
  }
});

test("X-Session-Data-Status: unavailable alone is a visitor the worker could not check: null, not forged", async () => {
  assert.equal(await verifier.verify({ "x-session-data-status": "unavailable" }), null);
  assert.equal(await verifier.verify(new Request(SITE, { headers: { "X-Session-Data-Status": "unavailable" } })), null);
  // any other value, or beside any other identity header, is still forged
  await refused({ "x-session-data-status": "later" }, InvalidAssertionError, /x-session-data-status without X-Session-Assertion.*only "unavailable"/);
  await refused({ "x-session-data-status": "unavailable", "x-session-user": "alice" }, InvalidAssertionError, /x-session-user without/);
  await refused({ "x-session-data-status": "unavailable", "x-session-data": "{}" }, InvalidAssertionError, /x-session-data without/);
  await refused({ "x-session-data-status": "unavailable", "x-session-source": "ticket" }, InvalidAssertionError, /x-session-source without/);
});

test("a guest's assertion: no user, guest true, its sid, source and data", async () => {
  const data = '{"cart:tea":{"qty":2}}';
  for (const src of ["state", "ticket", "stale"]) {
    const headers = await workerHeaders(key, { guest: true, data, version: 3, payload: { src } });
    assert.equal(headers["x-session-user"], undefined);
    const { keyId, payload, ...identity } = await verifier.verify(headers);
    assert.equal(payload.guest, true);
    assert.equal(payload.sub, undefined);
    assert.deepEqual(identity, {
      user: null,
      guest: true,
      remember: false,
      claims: {},
      source: src,
      authTime: null,
      sessionHash: SID,
      data: { "cart:tea": { qty: 2 } },
      dataVersion: 3,
      dataStatus: "ok",
    });
  }
  const unavailable = await verifier.verify(await workerHeaders(key, { guest: true, status: "unavailable" }));
  assert.deepEqual([unavailable.guest, unavailable.data, unavailable.dataStatus], [true, null, "unavailable"]);
  const empty = await verifier.verify(await workerHeaders(key, { guest: true }));
  assert.deepEqual([empty.guest, empty.data, empty.dataStatus], [true, {}, "none"]);
});

test("a guest's data is checked as a user's (dh, dv, ds)", async () => {
  const headers = await workerHeaders(key, { guest: true, data: '{"qty":1}' });
  await refused({ ...headers, "x-session-data": '{"qty":9}' }, DataMismatchError, /dh does not match/);
  await refused({ ...headers, "x-session-data-version": "2" }, DataMismatchError, /dv does not match/);
  const plain = await workerHeaders(key, { guest: true });
  await refused({ ...plain, "x-session-data-status": "unavailable" }, DataMismatchError, /no ds/);
});

test("a guest never passes as a user: guest with sub, auth_time, claims or remember, or beside X-Session-User, is refused", async () => {
  const guest = async (changes, extraHeaders = {}) => ({
    "x-session-assertion": await sign(key, guestPayload(changes)),
    "x-session-source": changes.src ?? "state",
    ...extraHeaders,
  });
  await refused(await guest({ sub: "alice" }), InvalidAssertionError, /a guest's assertion has no sub/);
  await refused(await guest({ sub: "alice" }, { "x-session-user": "alice" }), InvalidAssertionError, /a guest's assertion has no sub/);
  await refused(await guest({ auth_time: nowSec() }), InvalidAssertionError, /no auth_time/);
  await refused(await guest({ claims: { role: "admin" } }), InvalidAssertionError, /no claims/);
  await refused(await guest({ remember: true }), InvalidAssertionError, /no remember/);
  await refused(await guest({}, { "x-session-user": "alice" }), InvalidAssertionError, /X-Session-User beside a guest's assertion/);
  await refused(await guest({}, { "x-session-claims": "{}" }), InvalidAssertionError, /X-Session-Claims beside a guest's assertion/);
  for (const src of ["kv", "lookup"]) await refused(await guest({ src }), InvalidAssertionError, /src must be one of ticket, state, stale for a guest/);
  await refused(await guest({}, { "x-session-source": "ticket" }), InvalidAssertionError, /src does not match/);
  const { "x-session-source": _, ...noSource } = await guest({});
  await refused(noSource, InvalidAssertionError, /X-Session-Source is missing/);
  // "guest" is true or absent: false (or anything else) is not a way to say "a user"
  for (const value of [false, "true", 1]) {
    const p = payloadFor("alice", { guest: value });
    await refused({ "x-session-assertion": await sign(key, p), "x-session-user": "alice", "x-session-source": "kv" }, InvalidAssertionError, /guest must be true when present/);
  }
});

test("no sub and no guest: refused; state is a guest's source only", async () => {
  const p = payloadFor("alice", { sub: undefined });
  await refused({ "x-session-assertion": await sign(key, p), "x-session-user": "alice", "x-session-source": "kv" }, InvalidAssertionError, /sub is missing/);
  await refused({ "x-session-assertion": await sign(key, p), "x-session-source": "kv" }, InvalidAssertionError, /sub is missing/);
  await refused(await workerHeaders(key, { payload: { src: "state" } }), InvalidAssertionError, /src must be one of ticket, kv, lookup, stale, not "state"/);
});

test("remember: true is a remembered session, exposed; false or absent is not; anything else refused", async () => {
  assert.equal((await verifier.verify(await workerHeaders(key, { remember: true }))).remember, true);
  assert.equal((await verifier.verify(await workerHeaders(key))).remember, false);
  assert.equal((await verifier.verify(await workerHeaders(key, { payload: { remember: false } }))).remember, false);
  await refused(await workerHeaders(key, { payload: { remember: "yes" } }), InvalidAssertionError, /remember must be true or false/);
});

test("data with dh and dv: the parsed object and its version", async () => {
  const data = '{"cart:tea":{"name":"Green tea","qty":2},"note":"caf\\u00e9"}';
  const identity = await verifier.verify(await workerHeaders(key, { data, version: 7 }));
  assert.equal(identity.dataStatus, "ok");
  assert.equal(identity.dataVersion, 7);
  assert.deepEqual(identity.data, { "cart:tea": { name: "Green tea", qty: 2 }, note: "café" });
});

test("data bytes as Node hands them (Latin-1) are hashed as received", async () => {
  const bytes = Buffer.from('{"n":"é"}', "utf8").toString("latin1"); // what a raw UTF-8 header looks like in Node
  const headers = await workerHeaders(key, { data: bytes });
  assert.deepEqual((await verifier.verify(headers)).data, { n: "é" });
});

test("unavailable data: status unavailable, data null", async () => {
  const identity = await verifier.verify(await workerHeaders(key, { status: "unavailable" }));
  assert.equal(identity.dataStatus, "unavailable");
  assert.equal(identity.data, null);
  assert.equal(identity.dataVersion, null);
});

test("a forged assertion (another key, same kid) is refused", async () => {
  const headers = await workerHeaders(other);
  await refused(headers, InvalidAssertionError, /bad signature/);
});

test("expired, not yet issued, wrong aud, wrong iss: refused", async () => {
  const t = nowSec();
  const cases = [
    [{ iat: t - 300, exp: t - 31 }, /expired/],
    [{ iat: t + 120, exp: t + 240 }, /future/],
    [{ aud: "https://other.example" }, /aud/],
    [{ iss: "someone-else" }, /iss/],
    [{ aud: undefined }, /aud/],
    [{ exp: undefined }, /exp/],
  ];
  for (const [changes, pattern] of cases) {
    const headers = await workerHeaders(key, { payload: changes });
    await refused(headers, InvalidAssertionError, pattern);
  }
});

test("clock skew within clockTolerance is accepted", async () => {
  const t = nowSec();
  const headers = await workerHeaders(key, { payload: { iat: t - 150, exp: t - 20 } });
  assert.equal((await verifier.verify(headers)).user, "alice");
});

test("the fields the worker always sends are checked", async () => {
  const cases = [
    [{ sub: "" }, /sub/],
    [{ src: "cookie" }, /src must be one of/],
    [{ sid: "ABC" }, /sid must be 64/],
    [{ auth_time: "yesterday" }, /auth_time/],
    [{ claims: ["admin"] }, /claims must be a JSON object/],
  ];
  for (const [changes, pattern] of cases) {
    const p = payloadFor("alice", changes);
    const headers = { "x-session-assertion": await sign(key, p), "x-session-user": "alice", "x-session-source": "kv" };
    await refused(headers, InvalidAssertionError, pattern);
  }
});

test("X-Session-User and X-Session-Source must say what the assertion says", async () => {
  const headers = await workerHeaders(key);
  await refused({ ...headers, "x-session-user": "mallory" }, InvalidAssertionError, /sub does not match X-Session-User/);
  await refused({ ...headers, "x-session-user": "%E0%A4%A" }, InvalidAssertionError, /percent-encoded/);
  await refused({ ...headers, "x-session-source": "lookup" }, InvalidAssertionError, /src does not match/);
  const { "x-session-user": _, ...noUser } = headers;
  await refused(noUser, InvalidAssertionError, /X-Session-User is missing/);
});

test("alg none, HS256 and a typ other than JWT are refused", async () => {
  const p = payloadFor();
  const idHeaders = { "x-session-user": "alice", "x-session-source": "kv" };
  await refused({ ...idHeaders, "x-session-assertion": unsigned({ alg: "none", kid: "k1" }, p) }, InvalidAssertionError, /alg must be ES256/);
  const hs = await new SignJWT(p).setProtectedHeader({ alg: "HS256", kid: "k1" }).sign(new TextEncoder().encode("a shared secret of 32 bytes....."));
  await refused({ ...idHeaders, "x-session-assertion": hs }, InvalidAssertionError, /alg must be ES256/);
  await refused({ ...idHeaders, "x-session-assertion": await sign(key, p, { typ: "at+jwt" }) }, InvalidAssertionError, /typ must be JWT/);
});

test("malformed assertions are refused", async () => {
  const idHeaders = { "x-session-user": "alice", "x-session-source": "kv" };
  const good = await sign(key, payloadFor());
  const [h, , s] = good.split(".");
  for (const token of ["", "garbage", "a.b", `${h}.not-json.${s}`, `${h}.${Buffer.from("[1]").toString("base64url")}.${s}`, "x".repeat(9000), `${good}, ${good}`]) {
    await refused({ ...idHeaders, "x-session-assertion": token }, InvalidAssertionError, /malformed|bad signature|Claims Set/);
  }
});

test("an unknown kid in a static JWKS is refused", async () => {
  const stranger = await makeKey("k9");
  await refused(await workerHeaders(stranger), InvalidAssertionError, /no ES256 key with kid "k9"/);
});

test("dh mismatch: data changed after signing", async () => {
  const headers = await workerHeaders(key, { data: '{"qty":1}' });
  await refused({ ...headers, "x-session-data": '{"qty":99}' }, DataMismatchError, /dh does not match/);
});

test("dv mismatch: another version than the one signed", async () => {
  const headers = await workerHeaders(key, { data: '{"qty":1}', version: 3 });
  await refused({ ...headers, "x-session-data-version": "4" }, DataMismatchError, /dv does not match/);
  const { "x-session-data-version": _, ...noVersion } = headers;
  await refused(noVersion, DataMismatchError, /X-Session-Data-Version is missing/);
});

test("a data header the assertion does not cover, or dh without data: mismatch", async () => {
  const plain = await workerHeaders(key);
  await refused({ ...plain, "x-session-data": '{"admin":true}', "x-session-data-version": "1" }, DataMismatchError, /no dh/);
  const withData = await workerHeaders(key, { data: '{"a":1}' });
  const { "x-session-data": _, "x-session-data-version": __, ...dropped } = withData;
  await refused(dropped, DataMismatchError, /the assertion has dh/);
  await refused({ ...withData, "x-session-data-status": "unavailable" }, DataMismatchError, /unavailable/);
  await refused({ ...plain, "x-session-data-status": "later" }, DataMismatchError, /not "unavailable"/);
});

test("the unavailable status is signed (ds): a plain assertion cannot be replayed beside it, nor ds without it", async () => {
  const plain = await workerHeaders(key);
  await refused({ ...plain, "x-session-data-status": "unavailable" }, DataMismatchError, /not covered by the assertion \(no ds/);
  const unavailable = await workerHeaders(key, { status: "unavailable" });
  const { "x-session-data-status": _, ...stripped } = unavailable;
  await refused(stripped, DataMismatchError, /ds\), but X-Session-Data-Status is missing/);
  // a data version without data, signed or sent
  await refused(await workerHeaders(key, { payload: { dv: 2 } }), DataMismatchError, /without X-Session-Data/);
  await refused({ ...plain, "x-session-data-version": "2" }, DataMismatchError, /without X-Session-Data/);
});

test("data signed but not a JSON object: mismatch", async () => {
  for (const data of ["[1,2]", "not json"]) {
    const headers = await workerHeaders(key, { data });
    await refused(headers, DataMismatchError, /not (a JSON object|JSON)/);
  }
});

test("options are checked when the verifier is made", () => {
  assert.throws(() => createVerifier({}), /site must be/);
  assert.throws(() => createVerifier({ site: "https://x.example/path" }), /site must be/);
  assert.throws(() => createVerifier({ site: SITE, dataLimit: 9000 }), /dataLimit/);
  assert.throws(() => createVerifier({ site: SITE, jwksUrl: "file:///etc/jwks.json" }), /http\(s\)/);
  assert.throws(() => createVerifier({ site: SITE, keys: [] }), /JWKS object/);
  assert.equal(createVerifier({ site: "https://WWW.Example.com/", keys: jwksOf(key) }).site, "https://www.example.com");
});
