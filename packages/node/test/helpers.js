// Test helpers: keys made here with jose, assertions signed as the worker signs them,
// and small HTTP servers on 127.0.0.1 (a JWKS, an Express app).
import { createServer } from "node:http";
import { createHash } from "node:crypto";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { asciiJson } from "../src/index.js";

export const SITE = "http://127.0.0.1:8787";
export const SID = "5f".repeat(32);
export const nowSec = () => Math.floor(Date.now() / 1000);
const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");

/** A P-256 key pair with its public JWK as the worker publishes it. */
export async function makeKey(kid = "k1") {
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" } };
}
export const jwksOf = (...keys) => ({ keys: keys.map((k) => k.jwk) });

/** dh of a data header value. */
export const dataHash = (value) => createHash("sha256").update(value, "latin1").digest("base64url");

/** The worker's payload for `user`, with `changes` applied (a value of undefined removes a claim). */
export function payloadFor(user = "alice", changes = {}) {
  const t = nowSec();
  const p = { iss: "edge-session", sub: user, sid: SID, src: "kv", aud: SITE, iat: t, exp: t + 120, auth_time: t - 60, ...changes };
  for (const [k, v] of Object.entries(p)) if (v === undefined) delete p[k];
  return p;
}

/** A guest's payload as the worker signs it: no sub, auth_time or claims, "guest": true, src "state". */
export function guestPayload(changes = {}) {
  const t = nowSec();
  const p = { iss: "edge-session", sid: SID, src: "state", aud: SITE, iat: t, exp: t + 120, guest: true, ...changes };
  for (const [k, v] of Object.entries(p)) if (v === undefined) delete p[k];
  return p;
}

/** A signed assertion (ES256 with `key`, header {alg, typ, kid} plus `header`). */
export function sign(key, payload, header = {}) {
  return new SignJWT(payload).setProtectedHeader({ alg: "ES256", typ: "JWT", kid: key.kid, ...header }).sign(key.privateKey);
}

/** An unsigned token with any header (alg none and friends). */
export const unsigned = (header, payload, signature = "") => `${b64(header)}.${b64(payload)}.${signature}`;

/**
 * The request headers the worker sends for `user`: assertion, X-Session-User/-Source,
 * -Claims, and the data headers when `data` (a JSON text) is given. `guest: true`: a guest's
 * (guestPayload, no X-Session-User); `remember: true`: a remembered session's.
 */
export async function workerHeaders(key, { user = "alice", claims, data, version = 1, status, guest = false, remember = false, payload = {} } = {}) {
  const extra = {};
  if (claims) extra.claims = claims;
  if (remember) extra.remember = true;
  if (data !== undefined) Object.assign(extra, { dv: version, dh: dataHash(data) });
  if (status === "unavailable") extra.ds = status;
  const p = guest ? guestPayload({ ...extra, ...payload }) : payloadFor(user, { ...extra, ...payload });
  const headers = { "x-session-assertion": await sign(key, p), "x-session-source": p.src };
  if (!guest) headers["x-session-user"] = encodeURIComponent(user);
  if (claims) headers["x-session-claims"] = asciiJson(claims);
  if (data !== undefined) Object.assign(headers, { "x-session-data": data, "x-session-data-version": String(version) });
  if (status) headers["x-session-data-status"] = status;
  return headers;
}

/** Starts `app` (an Express app or a request listener) on 127.0.0.1; { url, close }. */
export async function listen(app) {
  const server = createServer(app);
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((resolve) => server.close(resolve).closeAllConnections()) };
}

/** Starts a node:http server on 127.0.0.1 with `handler`; { url, hits, close }. */
export async function serve(handler) {
  const state = { hits: 0 };
  const server = createServer((req, res) => {
    state.hits++;
    handler(req, res);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    get hits() {
      return state.hits;
    },
    close: () => new Promise((resolve) => server.close(resolve).closeAllConnections()),
  };
}

/** A JWKS server whose answer can change: `set(jwks)`. */
export async function jwksServer(jwks) {
  let current = jwks;
  const server = await serve((req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(current));
  });
  return {
    url: `${server.url}/.edge-session/jwks.json`,
    set: (next) => (current = next),
    close: server.close,
    get hits() {
      return server.hits;
    },
  };
}
