// The small test origins that session-data.test.mjs, data-path.test.mjs and guests.test.mjs
// run behind the worker, both sides: each origin is told what to answer by the request
// header X-Test-Respond (base64url JSON, forwarded untouched by the worker), marks its own
// answers with `x-test-origin: 1`, and echoes in its body the request headers it received
// ({headers, names}).
import { LOOKUP_TOKEN } from "./harness.mjs";

/** The X-Test-Respond value for `o`. */
export const spec = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");

/** The payload of a JWT (not verified). */
export const decodeJwt = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString("utf8"));

/**
 * One request through location `at` (an `edge` or `edge.at(i)`); `respond` tells the test
 * origin what to answer. Cookies: the jar's (and the answer's Set-Cookie goes back into it),
 * or `cookie` (a header value sent as is; no jar is touched). Returns the response, its
 * Set-Cookie lines and, when the origin answered, what it received: the headers (`seen`),
 * their names as sent, and the session headers read (data, version, status, user, source,
 * the assertion and its payload).
 */
export async function hit(at, jar, path, respond = {}, { cookie, headers = {}, method = "GET", body } = {}) {
  const h = new Headers({ accept: "application/json", ...headers });
  if (Object.keys(respond).length) h.set("x-test-respond", spec(respond));
  const sent = cookie ?? jar?.header();
  if (sent) h.set("cookie", sent);
  const res = await at.fetch(path, { method, headers: h, body });
  if (jar && cookie === undefined) jar.take(res);
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  const echo = res.headers.get("x-test-origin") === "1" ? json : null;
  const seen = echo?.headers ?? {};
  const jwt = seen["x-session-assertion"];
  return {
    res,
    status: res.status,
    text,
    json,
    echo,
    seen,
    setCookie: res.headers.getSetCookie(),
    names: echo?.names ?? [],
    raw: seen["x-session-data"],
    data: seen["x-session-data"] === undefined ? undefined : JSON.parse(seen["x-session-data"]),
    version: seen["x-session-data-version"] === undefined ? undefined : Number(seen["x-session-data-version"]),
    dataStatus: seen["x-session-data-status"],
    user: seen["x-session-user"],
    source: seen["x-session-source"],
    jwt,
    assertion: jwt ? decodeJwt(jwt) : null,
  };
}

// ------------------------------------------------------------------ the origin's side

/** What the request's X-Test-Respond asks for ({} when it has none). */
export function wanted(req) {
  const raw = req.headers["x-test-respond"];
  return raw ? JSON.parse(Buffer.from(raw, "base64url").toString("utf8")) : {};
}

/**
 * The answer's headers for `want`: JSON, marked as the origin's, `want.headers`, and the
 * session signals asked for (login, claims, logout, data; in attach mode the site's own
 * cookie `sid` set to `setSid` or cleared by `clearSid`).
 */
export function answerHeaders(want) {
  const headers = { "content-type": "application/json", "x-test-origin": "1", ...(want.headers ?? {}) };
  if (want.login !== undefined) headers["x-edge-session-login"] = want.login;
  if (want.claims !== undefined) headers["x-edge-session-claims"] = want.claims;
  if (want.logout) headers["x-edge-session-logout"] = "1";
  if (want.data !== undefined) headers["x-edge-session-data"] = want.data;
  const cookies = [];
  if (want.setSid !== undefined) cookies.push(`sid=${want.setSid}; Path=/`);
  if (want.clearSid) cookies.push("sid=; Max-Age=0; Path=/");
  if (cookies.length) headers["set-cookie"] = cookies;
  return headers;
}

/**
 * The site's lookup endpoint (attach mode), over `sessions` (session ID -> what the lookup
 * answers): `true` when `req` was a lookup and has been answered.
 */
export function answeredLookup(req, res, body, sessions) {
  if (req.method !== "POST" || req.url !== "/lookup") return false;
  if (req.headers.authorization !== `Bearer ${LOOKUP_TOKEN}`) {
    res.writeHead(401);
    res.end();
    return true;
  }
  const known = sessions.get(JSON.parse(body.toString("utf8")).session_id);
  res.writeHead(known ? 200 : 404, { "content-type": "application/json" });
  res.end(JSON.stringify(known ?? { error: "no such session" }));
  return true;
}
