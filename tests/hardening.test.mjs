// Regression tests for defects found with hostile input and by new users
// (issue 7), and the signed assertion that lets the origin trust the worker.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createPublicKey, createPrivateKey, sign, verify } from "node:crypto";
import { Miniflare } from "miniflare";
import { join } from "node:path";
import {
  startEdge,
  withEdge,
  startOrigins,
  Jar,
  browse,
  login,
  sha256hex,
  ADMIN_TOKEN,
  LOOKUP_TOKEN,
  ASSERTION_KEY,
  newKey,
  eventually,
} from "./harness.mjs";

const PUBLIC = "/,/login,/echo/public/*";
let origin, attachOrigin, edge, attach;

before(async () => {
  [origin] = await startOrigins(["a"]);
  [attachOrigin] = await startOrigins(["b"], { mode: "attach" });
  edge = await startEdge({ origins: [origin], vars: { PUBLIC_PATHS: PUBLIC, LOGIN_URL: "/login" } });
  attach = await startEdge({
    origins: [attachOrigin],
    vars: { PUBLIC_PATHS: "/,/login", LOGIN_URL: "/login", LOOKUP_URL: "/api/session-lookup", LOOKUP_TOKEN },
  });
});

after(async () => {
  await edge?.close();
  await attach?.close();
  await origin?.close();
  await attachOrigin?.close();
});

/** The percent-encoding of X-Session-User: every byte but A-Z a-z 0-9 - . _ ~ @. */
const encodeUser = (user) =>
  [...Buffer.from(user, "utf8")]
    .map((b) => (/[A-Za-z0-9\-._~@]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : "%" + b.toString(16).toUpperCase().padStart(2, "0")))
    .join("");

/** Logs `user` in through a login signal the demo origin echoes (any user id, percent-encoded). */
async function signalLogin(e, jar, user) {
  const q = new URLSearchParams({ set_header: `X-Edge-Session-Login:${encodeUser(user)}` });
  const res = await browse(e, jar, `/echo/public/login?${q}`);
  await res.arrayBuffer();
  return res;
}

const echo = async (e, jar, headers = {}) => (await browse(e, jar, "/echo/private", { headers })).json();

async function revokeUser(e, user) {
  const res = await e.fetch("/.edge-session/revoke", {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ user }),
  });
  return { status: res.status, body: await res.json() };
}

/** Verifies an ES256 JWT against a JWKS with node:crypto; returns its claims. */
function verifyJwt(token, jwks) {
  const [h, p, s] = token.split(".");
  const header = JSON.parse(Buffer.from(h, "base64url"));
  assert.equal(header.alg, "ES256");
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `no key ${header.kid} in the JWKS`);
  const ok = verify("sha256", Buffer.from(`${h}.${p}`), { key: createPublicKey({ key: jwk, format: "jwk" }), dsaEncoding: "ieee-p1363" }, Buffer.from(s, "base64url"));
  assert.ok(ok, "the assertion's signature does not verify");
  return JSON.parse(Buffer.from(p, "base64url"));
}

test("a user id of 255 bytes of Korean logs in, reaches the origin intact and is revocable by name", async () => {
  const user = "김".repeat(85);
  const jar = new Jar();
  const res = await signalLogin(edge, jar, user);
  assert.equal(res.status, 200, "login with a long non-ASCII user failed");
  assert.ok(jar.get("sid"));
  const seen = await echo(edge, jar);
  assert.equal(decodeURIComponent(seen.headers["x-session-user"]), user);
  await eventually(async () => assert.ok((await edge.keys("u:%h")).length >= 1, "the hashed index key was not written"));
  const r = await revokeUser(edge, user);
  assert.deepEqual(r, { status: 200, body: { revoked: 1 } });
  assert.ok((await edge.keys()).every((k) => !k.startsWith("u:") || !k.endsWith(sha256hex(jar.get("sid")))));
});

test("a failed login write is logged with its cause", async () => {
  await withEdge({ origins: [origin], vars: { PUBLIC_PATHS: PUBLIC } }, async (e) => {
    await e.kvDown("writes");
    const res = await signalLogin(e, new Jar(), "alice");
    assert.equal(res.status, 503);
    const line = await eventually(async () => {
      const l = e.logs().find((x) => x.event === "login_failed");
      assert.ok(l, "no login_failed line");
      return l;
    });
    assert.match(line.error, /KV write of put s: failed/);
  });
});

test("Korean user ids work end to end in edge mode: header, assertion, log line, revoke", async () => {
  const user = "김철수";
  const jar = new Jar();
  assert.equal((await signalLogin(edge, jar, user)).status, 200);
  const seen = await echo(edge, jar);
  assert.equal(seen.headers["x-session-user"], "%EA%B9%80%EC%B2%A0%EC%88%98");
  assert.equal(decodeURIComponent(seen.headers["x-session-user"]), user);
  const jwks = await (await edge.fetch("/.edge-session/jwks.json")).json();
  const claims = verifyJwt(seen.headers["x-session-assertion"], jwks);
  assert.equal(claims.sub, user);
  const line = await eventually(async () => {
    const l = edge.logs().find((x) => x.event === "login" && x.user === user);
    assert.ok(l, "the login line does not name the user");
    return l;
  });
  assert.equal(line.user, user);
  assert.deepEqual(await revokeUser(edge, user), { status: 200, body: { revoked: 1 } });
});

test("Korean user ids work end to end in attach mode: learned from the lookup, revoked by name", async () => {
  const user = "김철수";
  const jar = new Jar();
  jar.set("sid", attachOrigin.sessions.create(user, { name: "김철수" }));
  const seen = await echo(attach, jar);
  assert.equal(seen.headers["x-session-source"], "lookup");
  assert.equal(decodeURIComponent(seen.headers["x-session-user"]), user);
  assert.deepEqual(JSON.parse(seen.headers["x-session-claims"]), { name: "김철수" });
  await eventually(async () => assert.ok(await attach.getRecord(jar.get("sid"))));
  assert.deepEqual(await revokeUser(attach, user), { status: 200, body: { revoked: 1 } });
});

test("a lookup user of 300 bytes or with CR, LF or NUL is 'lookup unavailable', logged, never a 500", async () => {
  for (const user of ["x".repeat(300), "eve\r\nX-Injected: 1", "eve\nbob", "eve\u0000"]) {
    const jar = new Jar();
    jar.set("sid", attachOrigin.sessions.create(user, null));
    const res = await browse(attach, jar, "/api/me", { headers: { accept: "application/json" } });
    assert.equal(res.status, 503, JSON.stringify(user));
    assert.equal(res.headers.get("x-edge-session-reason"), "store_unavailable");
    assert.match(res.headers.get("server-timing"), /store_unavailable/);
    await res.arrayBuffer();
  }
  await eventually(async () => {
    const lines = attach.logs().filter((l) => l.detail === "store_unavailable" && /lookup answer user/.test(l.error || ""));
    assert.ok(lines.length >= 4, `${lines.length} lines say why`);
  });
});

test("return_to cannot escape through control characters, even for a login page that decodes twice", async () => {
  for (const path of ["/%09/evil.com", "/%0D%0A/evil.com", "/%0a%2F/evil.com", "/%20/evil.com", "/%7F/evil.com"]) {
    const res = await edge.fetch("http://127.0.0.1:8787" + path, { headers: { accept: "text/html" } });
    assert.equal(res.status, 302, path);
    const once = new URL(res.headers.get("location"), "http://site.example").searchParams.get("return_to");
    const twice = decodeURIComponent(once);
    // what a browser makes of it: tabs and newlines are stripped from URLs
    const browserSees = twice.replace(/[\t\n\r]/g, "");
    assert.equal(new URL(browserSees, "http://site.example").host, "site.example", `${path} escapes as ${JSON.stringify(twice)}`);
    assert.equal(new URL(once, "http://site.example").host, "site.example");
  }
});

test("underscore spellings of identity headers never reach the origin", async () => {
  const spoof = { "X-Session_User": "admin", "X_Session_Claims": '{"role":"root"}', "x-edge-session_login": "admin", "X-Session-Assertion": "forged" };
  const pub = await (await edge.fetch("/echo/public/spoof", { headers: spoof })).json();
  for (const name of Object.keys(pub.headers)) {
    assert.ok(!/^x[-_]session[-_]|^x[-_]edge[-_]session[-_]/.test(name), `${name} reached the origin`);
  }
  const jar = new Jar();
  await login(edge, jar, "bob");
  const priv = await echo(edge, jar, spoof);
  assert.equal(priv.headers["x-session-user"], "bob");
  assert.equal(priv.headers["x-session_user"], undefined);
  assert.notEqual(priv.headers["x-session-assertion"], "forged");
});

test("without ORIGIN_URL or a route, a request that comes back to the worker is answered 508 at once", async () => {
  // The worker listens on a real port and forwards to its own URL: the shipped
  // configuration tried with `wrangler dev` and no route.
  const port = 18000 + Math.floor(Math.random() * 1000);
  const mf = new Miniflare({
    host: "127.0.0.1",
    port,
    modules: true,
    scriptPath: join(import.meta.dirname, "..", "build", "index.js"),
    modulesRoot: join(import.meta.dirname, "..", "build"),
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
    compatibilityDate: "2026-05-01",
    bindings: { SESSION_KEYS: newKey(), ASSERTION_KEYS: ASSERTION_KEY.setting, PUBLIC_PATHS: "/*" },
    kvNamespaces: { SESSIONS: "sessions" },
  });
  try {
    const url = await mf.ready;
    const started = Date.now();
    const res = await fetch(new URL("/anything", url), { signal: AbortSignal.timeout(10_000) });
    assert.equal(res.status, 508);
    const body = await res.json();
    assert.equal(body.error, "loop_detected");
    assert.match(body.detail, /ORIGIN_URL/);
    assert.ok(Date.now() - started < 5000, "the loop was not cut at once");
  } finally {
    await mf.dispose();
  }
});

test("a session that died of idleness is reported as idle_timeout, and the login redirect says so", async () => {
  await withEdge({ origins: [origin], vars: { PUBLIC_PATHS: PUBLIC, LOGIN_URL: "/login", IDLE_TIMEOUT: "1s" } }, async (e) => {
    const jar = new Jar();
    await login(e, jar);
    await new Promise((r) => setTimeout(r, 1200));
    // KV may have dropped the record by now (it had, when its expiration was the deadline)
    await e.dropRecord(jar.get("sid"));
    const nav = await browse(e, jar, "/dashboard", { headers: { accept: "text/html" } });
    assert.equal(nav.status, 302);
    assert.equal(nav.headers.get("x-edge-session-reason"), "idle_timeout");
    assert.match(nav.headers.get("location"), /^\/login\?return_to=%2Fdashboard&reason=idle_timeout$/);
    // the record itself outlives the deadline by an hour, to say why it died
    const again = new Jar();
    await login(e, again);
    const expiry = Object.fromEntries((await e.entries("s:")).map((k) => [k.name, k.expiration]));
    assert.ok(expiry[`s:${sha256hex(again.get("sid"))}`] - Date.now() / 1000 > 3500);
  });
});

test("every identified request carries an ES256 assertion that verifies against the JWKS", async () => {
  const jar = new Jar();
  await login(edge, jar, "alice");
  const jwks = await (await edge.fetch("/.edge-session/jwks.json")).json();
  assert.equal(jwks.keys.length, 1);
  assert.deepEqual(Object.keys(jwks.keys[0]).sort(), ["alg", "crv", "kid", "kty", "use", "x", "y"]);
  assert.equal(jwks.keys[0].x, ASSERTION_KEY.jwk.x);
  const first = await echo(edge, jar);
  const claims = verifyJwt(first.headers["x-session-assertion"], jwks);
  assert.equal(claims.iss, "edge-session");
  assert.equal(claims.sub, "alice");
  assert.equal(claims.sid, sha256hex(jar.get("sid")));
  assert.equal(claims.src, first.headers["x-session-source"]);
  assert.equal(claims.aud, "http://127.0.0.1:8787");
  assert.equal(claims.exp - claims.iat, 120);
  assert.ok(Math.abs(claims.iat - Date.now() / 1000) < 5);
  assert.ok(claims.auth_time <= claims.iat && claims.iat - claims.auth_time < 60);
  assert.deepEqual(claims.claims, { name: "Alice", role: "admin" });
  // the fast path reuses the token signed for this session and tier
  const second = await echo(edge, jar);
  assert.equal(second.headers["x-session-source"], "ticket");
  assert.equal(second.headers["x-session-assertion"], (await echo(edge, jar)).headers["x-session-assertion"]);
  // public paths carry no assertion
  const pub = await (await browse(edge, jar, "/echo/public/x")).json();
  assert.equal(pub.headers["x-session-assertion"], undefined);
});

test("ASSERTION_KEYS missing or not a P-256 key is a configuration error naming it", async () => {
  for (const keys of [undefined, "a1:MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]) {
    await withEdge({ origins: [origin], vars: { PUBLIC_PATHS: PUBLIC, ASSERTION_KEYS: keys } }, async (e) => {
      const health = await e.fetch("/.edge-session/health");
      const body = await health.json();
      if (keys === undefined) {
        assert.equal(health.status, 500);
        assert.equal(body.setting, "ASSERTION_KEYS");
      }
      const jwks = await e.fetch("/.edge-session/jwks.json");
      assert.equal(jwks.status, 500);
      assert.equal((await jwks.json()).setting, "ASSERTION_KEYS");
    });
  }
});

test("an origin requiring the assertion refuses forged, tampered and expired identities, and serves the worker's", async () => {
  const [guarded] = await startOrigins(["g"], { jwks: { keys: [ASSERTION_KEY.jwk] }, requireAssertion: true, audience: "http://127.0.0.1:8787" });
  try {
    // straight at the origin with forged headers, as anyone who can reach it could
    const forged = await fetch(`${guarded.url}/api/me`, { headers: { "x-session-user": "mallory", "x-session-source": "kv", accept: "application/json" } });
    assert.equal(forged.status, 401);
    assert.equal((await forged.json()).error, "invalid_assertion");
    // through the worker it works, for a Korean user too
    await withEdge({ origins: [guarded], vars: { PUBLIC_PATHS: PUBLIC, LOGIN_URL: "/login" } }, async (e) => {
      for (const [user, password] of [["alice", "wonderland"], ["김철수", "비밀번호"]]) {
        const jar = new Jar();
        await login(e, jar, user, password);
        const res = await browse(e, jar, "/api/me", { headers: { accept: "application/json" } });
        assert.equal(res.status, 200, user);
        assert.equal((await res.json()).user, user);
      }
      // a genuine assertion replayed with a tampered payload, or re-signed expired, is refused
      const jar = new Jar();
      await login(e, jar, "bob");
      const seen = await (await browse(e, jar, "/echo/private")).json();
      const token = seen.headers["x-session-assertion"];
      const [h, p, s] = token.split(".");
      const claims = JSON.parse(Buffer.from(p, "base64url"));
      const direct = (assertion, user = "bob") =>
        fetch(`${guarded.url}/api/me`, { headers: { "x-session-user": user, "x-session-source": claims.src, "x-session-assertion": assertion, accept: "application/json" } });
      assert.equal((await direct(token)).status, 200, "the genuine assertion, replayed in time, is accepted");
      const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: "admin" })).toString("base64url")}.${s}`;
      assert.equal((await direct(tampered, "admin")).status, 401);
      assert.equal((await direct(token, "admin")).status, 401, "sub must match X-Session-User");
      const key = createPrivateKey({ key: Buffer.from(ASSERTION_KEY.setting.split(":")[1], "base64"), format: "der", type: "pkcs8" });
      const now = Math.floor(Date.now() / 1000);
      const expiredClaims = Buffer.from(JSON.stringify({ ...claims, iat: now - 600, exp: now - 480 })).toString("base64url");
      const sig = sign("sha256", Buffer.from(`${h}.${expiredClaims}`), { key, dsaEncoding: "ieee-p1363" }).toString("base64url");
      assert.equal((await direct(`${h}.${expiredClaims}.${sig}`)).status, 401);
    });
  } finally {
    await guarded.close();
  }
});

test("a public prefix followed by an encoded slash is not public: an origin that decodes it would serve another path", async () => {
  for (const path of ["/echo/public/..%2Fprivate", "/echo/public/..%2fprivate", "/echo/public/..%5Cprivate"]) {
    const res = await edge.fetch(path, { headers: { accept: "application/json" } });
    assert.equal(res.status, 401, path);
    assert.equal(res.headers.get("x-edge-session-reason"), "no_session");
    await res.arrayBuffer();
  }
  const ok = await edge.fetch("/echo/public/plain");
  assert.equal(ok.status, 200);
  await ok.arrayBuffer();
});
