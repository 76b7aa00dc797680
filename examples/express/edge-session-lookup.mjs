// edge-session's lookup endpoint for an Express site that uses express-session.
//
//   app.post("/edge-session/lookup", express.json(), edgeSessionLookup({ store, secret, token }));
//
// The worker sends `POST` with `Authorization: Bearer <LOOKUP_TOKEN>` and
// `{"session_id":"<the raw cookie value>"}`. express-session's cookie value is
// `s:<id>.<signature>`, percent-encoded: the handler checks the signature with the
// same secret(s) as express-session, reads the session from the same store, and answers
// 200 {"user","claims"?,"created"?} for a signed-in session, 404 for anything else,
// 503 when the store fails (the worker then keeps what it knows; see the README).
import { createHash, timingSafeEqual } from "node:crypto";
import signature from "cookie-signature";

const digest = (s) => createHash("sha256").update(String(s)).digest();

/** The session id inside an express-session cookie value, or null when it is not genuine. */
export function unsignSessionCookie(raw, secrets) {
  let value;
  try {
    value = decodeURIComponent(raw);
  } catch {
    return null;
  }
  if (!value.startsWith("s:")) return null;
  for (const secret of secrets) {
    const id = signature.unsign(value.slice(2), secret);
    if (id !== false) return id;
  }
  return null;
}

/**
 * store: the express-session store (anything with get(id, cb)); secret: the
 * express-session secret (or a list, newest first); token: LOOKUP_TOKEN;
 * identity(session): what to tell the worker about a session, or null when no one
 * is signed in with it.
 */
export function edgeSessionLookup({
  store,
  secret,
  token,
  identity = (s) => (typeof s.user === "string" && s.user ? { user: s.user, claims: s.claims, created: s.created } : null),
}) {
  if (!token) throw new Error("edgeSessionLookup needs the LOOKUP_TOKEN");
  const secrets = [secret].flat();
  const expected = digest(`Bearer ${token}`);
  return (req, res) => {
    if (!timingSafeEqual(digest(req.get("authorization") ?? ""), expected)) {
      return res.status(401).set("WWW-Authenticate", "Bearer").json({ error: "unauthorized" });
    }
    const raw = req.body?.session_id;
    if (typeof raw !== "string" || raw === "") return res.status(400).json({ error: "bad_request" });
    const id = unsignSessionCookie(raw, secrets);
    if (id === null) return res.status(404).json({ error: "not_found" });
    store.get(id, (err, session) => {
      // Not 404: a store outage must not sign everyone out. Anything but 200/404 is
      // "lookup unavailable" to the worker.
      if (err) return res.status(503).json({ error: "store_unavailable" });
      const who = session ? identity(session) : null;
      if (!who) return res.status(404).json({ error: "not_found" });
      const answer = { user: who.user };
      if (who.claims && typeof who.claims === "object") answer.claims = who.claims;
      if (Number.isInteger(who.created)) answer.created = who.created;
      res.json(answer);
    });
  };
}
