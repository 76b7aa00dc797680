// A JWKS fetched from the worker: cached, refetched for an unknown kid, and a typed 503
// error (KeysUnavailableError) when it cannot be had.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { createVerifier, KeysUnavailableError, InvalidAssertionError } from "../src/index.js";
import { SITE, makeKey, jwksOf, workerHeaders, jwksServer, serve, payloadFor, sign } from "./helpers.js";

let k1, k2;
before(async () => {
  k1 = await makeKey("k1");
  k2 = await makeKey("k2");
});

async function closedPort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function unavailable(pattern) {
  return (e) => {
    assert.ok(e instanceof KeysUnavailableError, `${e.name}: ${e.message}`);
    assert.equal(e.status, 503);
    assert.equal(e.code, "keys_unavailable");
    assert.match(e.message, pattern);
    return true;
  };
}

test("the JWKS is fetched once and cached", async (t) => {
  const jwks = await jwksServer(jwksOf(k1));
  t.after(jwks.close);
  const verifier = createVerifier({ site: SITE, jwksUrl: jwks.url });
  for (let i = 0; i < 3; i++) assert.equal((await verifier.verify(await workerHeaders(k1))).user, "alice");
  assert.equal(jwks.hits, 1);
});

test("jwksUrl defaults to <site>/.edge-session/jwks.json", async (t) => {
  const jwks = await jwksServer(jwksOf(k1));
  t.after(jwks.close);
  const site = jwks.url.replace("/.edge-session/jwks.json", "");
  const verifier = createVerifier({ site });
  const token = await sign(k1, payloadFor("alice", { aud: site }));
  const identity = await verifier.verify({ "x-session-assertion": token, "x-session-user": "alice", "x-session-source": "kv" });
  assert.equal(identity.user, "alice");
  assert.equal(jwks.hits, 1);
});

test("key rotation: an unknown kid refetches the JWKS and finds the new key", async (t) => {
  const jwks = await jwksServer(jwksOf(k1));
  t.after(jwks.close);
  const verifier = createVerifier({ site: SITE, jwksUrl: jwks.url, jwksCooldown: 0 });
  assert.equal((await verifier.verify(await workerHeaders(k1))).user, "alice");
  jwks.set(jwksOf(k2, k1)); // the worker now signs with k2
  assert.equal((await verifier.verify(await workerHeaders(k2, { user: "bob" }))).user, "bob");
  assert.equal(jwks.hits, 2);
  assert.equal((await verifier.verify(await workerHeaders(k1))).user, "alice", "the old key still verifies");
  assert.equal(jwks.hits, 2);
});

test("within the cooldown an unknown kid is refused without a refetch", async (t) => {
  const jwks = await jwksServer(jwksOf(k1));
  t.after(jwks.close);
  const verifier = createVerifier({ site: SITE, jwksUrl: jwks.url }); // cooldown 30 s
  await verifier.verify(await workerHeaders(k1));
  jwks.set(jwksOf(k2));
  await assert.rejects(verifier.verify(await workerHeaders(k2)), (e) => e instanceof InvalidAssertionError && /kid "k2"/.test(e.message));
  assert.equal(jwks.hits, 1);
});

test("a JWKS on a closed port: KeysUnavailableError", async () => {
  const verifier = createVerifier({ site: SITE, jwksUrl: `http://127.0.0.1:${await closedPort()}/jwks.json`, jwksTimeout: 500 });
  await assert.rejects(verifier.verify(await workerHeaders(k1)), unavailable(/ECONNREFUSED/));
});

test("a JWKS that never answers: KeysUnavailableError after jwksTimeout, then at once for a while", async (t) => {
  const hanging = await serve(() => {}); // accepts, never answers
  t.after(hanging.close);
  const verifier = createVerifier({ site: SITE, jwksUrl: `${hanging.url}/jwks.json`, jwksTimeout: 200 });
  const started = Date.now();
  await assert.rejects(verifier.verify(await workerHeaders(k1)), unavailable(/within 200 ms/));
  const took = Date.now() - started;
  assert.ok(took >= 150 && took < 2000, `took ${took} ms`);
  const again = Date.now();
  await assert.rejects(verifier.verify(await workerHeaders(k1)), unavailable(/could not be fetched 0 s ago/));
  assert.ok(Date.now() - again < 100, "the second request waited for the JWKS again");
  assert.equal(hanging.hits, 1);
});

test("a JWKS answer that is an error or not a JWKS: KeysUnavailableError", async (t) => {
  const answers = [
    [500, "oops", /200 OK/],
    [200, "not json", /JSON/],
    [200, '{"keys":"none"}', /JSON Web Key Set/],
  ];
  for (const [status, body, pattern] of answers) {
    const server = await serve((req, res) => res.writeHead(status, { "content-type": "application/json" }).end(body));
    t.after(server.close);
    const verifier = createVerifier({ site: SITE, jwksUrl: `${server.url}/jwks.json`, jwksTimeout: 1000 });
    await assert.rejects(verifier.verify(await workerHeaders(k1)), unavailable(pattern));
  }
});
