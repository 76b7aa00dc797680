// The client side of the small test origins that session-data.test.mjs, data-path.test.mjs
// and guests.test.mjs run behind the worker: each origin is told what to answer by the
// request header X-Test-Respond (base64url JSON, forwarded untouched by the worker), marks
// its own answers with `x-test-origin: 1`, and echoes in its body the request headers it
// received ({headers, names}).

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
