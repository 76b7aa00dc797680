// The JS peer: what a team would write in JavaScript for the same job, with the
// common libraries. Hono + @hono/session, sessions stored in Workers KV (binding
// SESSIONS) under an encrypted session cookie. Bundled by the bench with esbuild.
//
// - POST /login goes to the origin, whose edge-mode login answers with
//   X-Edge-Session-Login on good credentials; the peer then creates the session.
// - /echo/public/* is forwarded without a session (like edge-session's PUBLIC_PATHS).
// - Everything else needs a session: one KV read per request (the library keeps
//   only the session ID in the cookie), then the request goes to the origin with
//   X-Session-User / X-Session-Claims, like edge-session sends.
// - Session data, as edge-session does it: the origin changes it with the response
//   header X-Edge-Session-Data (a JSON object merged at the top level, null removes
//   a key; the header is stripped), the peer keeps it in the same session record
//   and forwards it on every request as X-Session-Data (compact JSON, ASCII only).
//   Still one KV read per request: the data comes with the session.
import { Hono } from "hono";
import { useSession, useSessionStorage } from "@hono/session";

const KEY_PREFIX = "s:";

function toOrigin(req, env, headers = req.headers) {
  const url = new URL(req.url);
  const origin = new URL(env.ORIGIN_URL);
  url.protocol = origin.protocol;
  url.host = origin.host;
  return new Request(url, { method: req.method, headers, body: req.body, redirect: "manual" });
}

// Clients cannot send identity headers of their own.
function cleanHeaders(req) {
  const headers = new Headers(req.headers);
  for (const name of [...headers.keys()]) if (name.startsWith("x-session-")) headers.delete(name);
  return headers;
}

// Header-safe JSON: everything outside ASCII as \uXXXX (as edge-session sends it).
const asciiJson = (value) =>
  JSON.stringify(value).replace(/[\u007f-\uffff]/g, (ch) => "\\u" + ch.charCodeAt(0).toString(16).padStart(4, "0"));
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

const app = new Hono();
let sessionMiddleware;

app.all("/echo/public/*", (c) => fetch(toOrigin(c.req.raw, c.env, cleanHeaders(c.req.raw))));

app.use(
  useSessionStorage((c) => ({
    get: (sid) => c.env.SESSIONS.get(KEY_PREFIX + sid, "json"),
    // @hono/session 0.2.1 calls set() (and delete()) without awaiting it: a KV write slower than the
    // response (any write under the bench's latency model) would be cancelled with the request.
    // waitUntil keeps the request's work alive until KV has it.
    set: (sid, data) =>
      c.executionCtx.waitUntil(
        c.env.SESSIONS.put(KEY_PREFIX + sid, JSON.stringify(data), { expirationTtl: Number(c.env.ABSOLUTE_SECONDS) }),
      ),
    delete: (sid) => c.executionCtx.waitUntil(c.env.SESSIONS.delete(KEY_PREFIX + sid)),
  })),
  (c, next) => {
    // Made once per isolate (env does not change): the middleware caches its derived key.
    sessionMiddleware ??= useSession({
      secret: c.env.AUTH_SECRET,
      duration: { absolute: Number(c.env.ABSOLUTE_SECONDS), inactivity: Number(c.env.IDLE_SECONDS) },
    });
    return sessionMiddleware(c, next);
  },
);

app.post("/login", async (c) => {
  const res = await fetch(toOrigin(c.req.raw, c.env, cleanHeaders(c.req.raw)));
  const user = res.headers.get("x-edge-session-login");
  if (!user) return res;
  let claims = null;
  try {
    claims = JSON.parse(res.headers.get("x-edge-session-claims") ?? "null");
  } catch {
    // no claims
  }
  await c.var.session.update({ user, claims });
  const headers = new Headers(res.headers);
  headers.delete("x-edge-session-login");
  headers.delete("x-edge-session-claims");
  return new Response(res.body, { status: res.status, headers });
});

app.all("*", async (c) => {
  const data = await c.var.session.get();
  if (!data || typeof data.user !== "string") return c.json({ error: "no_session" }, 401);
  const headers = cleanHeaders(c.req.raw);
  headers.set("x-session-user", data.user);
  if (data.claims) headers.set("x-session-claims", JSON.stringify(data.claims));
  if (data.data) headers.set("x-session-data", asciiJson(data.data));
  const res = await fetch(toOrigin(c.req.raw, c.env, headers));
  const signal = res.headers.get("x-edge-session-data");
  if (signal === null) return res;
  let patch;
  try {
    patch = JSON.parse(signal);
  } catch {
    // refused below
  }
  if (!isObject(patch)) return c.json({ error: "bad_signal", detail: "X-Edge-Session-Data is not a JSON object" }, 502);
  const next = { ...data.data };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete next[key];
    else next[key] = value;
  }
  // Written back by the middleware after this handler (storage set(), through waitUntil).
  await c.var.session.update({ ...data, data: Object.keys(next).length ? next : undefined });
  const out = new Headers(res.headers);
  out.delete("x-edge-session-data");
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers: out });
});

export default app;
