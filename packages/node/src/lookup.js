// Attach mode: an express-session store as the worker's lookup endpoint. The worker asks
// POST {"session_id":"<raw cookie value>"} with Authorization: Bearer <LOOKUP_TOKEN>.
import { base64, hmacSha256, sameText } from "./bytes.js";

const MAX_BODY = 8192;

/**
 * The session id inside an express-session cookie value (`s:<id>.<signature>`,
 * percent-encoded), or null when it is not signed by one of `secrets`. The signature is
 * cookie-signature's: HMAC-SHA256 of the id, base64 without padding.
 */
export async function unsignCookie(raw, secrets, prefix = "s:") {
  let value;
  try {
    value = decodeURIComponent(raw);
  } catch {
    return null;
  }
  if (!value.startsWith(prefix)) return null;
  const signed = value.slice(prefix.length);
  const dot = signed.lastIndexOf(".");
  if (dot <= 0) return null;
  const id = signed.slice(0, dot);
  for (const secret of secrets) {
    if (await sameText(signed.slice(dot + 1), base64(await hmacSha256(secret, id)))) return id;
  }
  return null;
}

function reply(res, status, body, extra = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", "content-length": Buffer.byteLength(text), ...extra });
  res.end(text);
}

// The JSON body: as a body parser left it (object, string, Buffer), or read here (8 KB at most).
async function bodyOf(req) {
  if (req.body !== undefined && (req._body === true || req.readableEnded)) {
    if (typeof req.body === "string" || Buffer.isBuffer(req.body)) return JSON.parse(String(req.body));
    return req.body;
  }
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) throw new RangeError("body over 8 KB");
    chunks.push(chunk);
  }
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

const defaultIdentity = (s) => (typeof s.user === "string" && s.user ? { user: s.user, claims: s.claims, created: s.created } : null);

function answerOf(who) {
  if (!who || typeof who.user !== "string" || who.user === "") return null;
  const answer = { user: who.user };
  if (who.claims && typeof who.claims === "object" && !Array.isArray(who.claims)) answer.claims = who.claims;
  if (Number.isInteger(who.created)) answer.created = who.created;
  return answer;
}

/** Reads the session from the store: resolves with it (or null), rejects on a store error. */
function load(store, id) {
  return new Promise((resolve, reject) => {
    store.get(id, (err, session) => (err ? reject(err) : resolve(session ?? null)));
  });
}

/**
 * The lookup endpoint for an express-session `store` (anything with get(id, cb)), as an
 * Express / Connect / node:http handler. Options: `secret` (express-session's, or a list,
 * newest first), `token` (LOOKUP_TOKEN), `identity(session)` ({user, claims?, created?}
 * or null: nobody signed in), `cookiePrefix` ("s:"). Answers 200 {user, claims?, created?},
 * 404 not_found, 401 unauthorized, 400 bad_request, 503 store_unavailable.
 */
export function lookupHandler(store, { secret, token, identity = defaultIdentity, cookiePrefix = "s:" } = {}) {
  if (!store || typeof store.get !== "function") throw new TypeError("lookupHandler(store): store must have get(id, callback), as express-session stores do");
  if (typeof token !== "string" || token === "") throw new TypeError("lookupHandler needs the LOOKUP_TOKEN: { token }");
  const secrets = [secret].flat();
  if (secrets.length === 0 || secrets.some((s) => !(typeof s === "string" && s !== "") && !(s instanceof Uint8Array))) throw new TypeError("lookupHandler needs express-session's secret: { secret }");
  const expected = `Bearer ${token}`;
  return async function edgeSessionLookup(req, res) {
    if (req.method !== "POST") return reply(res, 405, { error: "method_not_allowed" }, { allow: "POST" });
    if (!(await sameText(req.headers.authorization ?? "", expected))) return reply(res, 401, { error: "unauthorized" }, { "www-authenticate": "Bearer" });
    let raw;
    try {
      raw = (await bodyOf(req))?.session_id;
    } catch {
      return reply(res, 400, { error: "bad_request", detail: "the body must be JSON {\"session_id\": \"...\"}, at most 8 KB" });
    }
    if (typeof raw !== "string" || raw === "") return reply(res, 400, { error: "bad_request", detail: "session_id must be a non-empty string" });
    const id = await unsignCookie(raw, secrets, cookiePrefix);
    if (id === null) return reply(res, 404, { error: "not_found" });
    let answer;
    try {
      const session = await load(store, id);
      answer = session ? answerOf(await identity(session)) : null;
    } catch {
      // Not 404: a store outage must not sign everyone out. The worker reads anything
      // but 200 and 404 as "lookup unavailable" and keeps what it knows.
      return reply(res, 503, { error: "store_unavailable" });
    }
    if (!answer) return reply(res, 404, { error: "not_found" });
    reply(res, 200, answer);
  };
}
