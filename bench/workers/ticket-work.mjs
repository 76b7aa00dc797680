// The ticket path's platform work in plain JS: what edge-session asks of the platform for a
// signed-in request on the ticket path whose answer is plain, with no wasm and no decision
// (the session is taken as valid, the assertion is a fixed token of a real one's size).
// What the contract's header and response work costs any Worker, beside the JS passthrough
// (bench/workers/passthrough.mjs), which forwards the request as it came.
//
// - The forward: the request's headers copied, the session cookie and the ticket taken out
//   of Cookie (the header dropped when nothing is left), the hop marker, X-Session-User,
//   -Claims, -Source and -Assertion set, the cache bypassed, redirects passed through.
// - The answer: looked at for the session signals and Set-Cookie (none in the bench's), then
//   passed on with X-Edge-Session-Idle-Left, Cache-Control: private unless it has one, and
//   Server-Timing.
const SESSION_COOKIES = ["sid", "__Host-edge-ticket"];
const WATCHED = ["x-edge-session-login", "x-edge-session-claims", "x-edge-session-logout", "x-edge-session-data", "x-edge-session-remember", "set-cookie"];
// The size of the ES256 JWT the bench's login gets (a user, two claims, the session hash): 477 characters.
const ASSERTION = `eyJ${"a".repeat(48)}.${"b".repeat(338)}.${"c".repeat(86)}`;

/** `cookie` without the session's own cookies; null when nothing is left. */
function withoutSession(cookie) {
  const kept = cookie.split("; ").filter((pair) => !SESSION_COOKIES.includes(pair.slice(0, pair.indexOf("="))));
  return kept.length === 0 ? null : kept.join("; ");
}

export default {
  async fetch(req, env) {
    const url = new URL(req.url);
    const origin = new URL(env.ORIGIN_URL);
    url.protocol = origin.protocol;
    url.host = origin.host;
    const headers = new Headers(req.headers);
    const cookie = headers.get("cookie");
    const kept = cookie === null ? null : withoutSession(cookie);
    if (kept === null) headers.delete("cookie");
    else headers.set("cookie", kept);
    headers.set("Edge-Session-Hop", "1");
    headers.set("X-Session-User", "alice");
    headers.set("X-Session-Claims", '{"name":"Alice","role":"admin"}');
    headers.set("X-Session-Source", "ticket");
    headers.set("X-Session-Assertion", ASSERTION);
    const started = Date.now();
    const upstream = await fetch(url, { method: req.method, headers, redirect: "manual", cache: "no-store" });
    if (WATCHED.some((name) => upstream.headers.has(name))) return new Response("not a plain answer", { status: 500 });
    const response = new Response(upstream.body, upstream);
    response.headers.set("X-Edge-Session-Idle-Left", "1799");
    if (!response.headers.has("Cache-Control")) response.headers.set("Cache-Control", "private");
    response.headers.append("Server-Timing", `edge-session;desc="ticket";dur=${Math.max(0, Date.now() - started)}`);
    return response;
  },
};
