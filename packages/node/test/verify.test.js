// createVerifier().verify(): what the worker vouches for, and every way it refuses.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { createVerifier, InvalidAssertionError, DataMismatchError, EdgeSessionError } from "../src/index.js";
import { SITE, SID, makeKey, jwksOf, sign, unsigned, payloadFor, workerHeaders, nowSec } from "./helpers.js";

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
