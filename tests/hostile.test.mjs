// Hostile corpus (issue 9, item 2): named hostile inputs, each with the answer the contract
// (README.md) defines for it, all against ONE worker instance; afterwards that same instance must
// still serve a genuine session (the isolate survived everything before it).
//
// The table is CORPUS below: [name, request, expected]. `expected.status` and
// `expected.reason` (X-Edge-Session-Reason, null when there must be none) are checked
// for every entry; `expected.check` adds what the entry is about (what reached the origin,
// which cookies were set or cleared, where a redirect points). Every answer the worker
// writes carries Server-Timing; `runtime: true` marks the few inputs the runtime's own
// HTTP parser refuses before the worker runs (no Server-Timing there).
//
// Answers that differ from what the contract asks are not encoded here: they are in the
// DEFECT block at the end, as todo tests that assert the behaviour the contract wants.
// HOSTILE_TRACE=1 prints each input's name as it is sent.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startEdge, startOrigins, ADMIN_TOKEN, LOOKUP_TOKEN, sha256hex } from "./harness.mjs";
import { mintTicket, record, newSid, rawGet, rawRequest, startOddOrigin, setCookies, TICKET_COOKIE } from "./proof-lib.mjs";

const MIN = 60_000;
let origin, lookupServer, edge;
const lookupAnswers = new Map(); // session id → [status, body text]

// Sessions the corpus works with:
// S: genuine, in KV (user alice), with a fresh ticket tS;
// X: not in KV, unknown to the lookup, with a genuine fresh ticket tX (user alice): X+tX
//    is served from the ticket alone, so any tampered tX that were accepted would show;
// Y: another session's genuine ticket tY (user mallory).
let S, tS, X, tX, Y, tY;

before(async () => {
  [origin] = await startOrigins(["h"]);
  lookupServer = await startOddOrigin(async (req, res, body) => {
    const id = JSON.parse(body.toString() || "{}").session_id;
    const [status, text] = lookupAnswers.get(id) ?? [404, '{"error":"not_found"}'];
    res.writeHead(status, { "content-type": "application/json" });
    res.end(text);
  });
  edge = await startEdge({
    origins: [origin],
    vars: {
      PUBLIC_PATHS: "/,/login,/echo/public/*",
      LOGIN_URL: "/login",
      LOOKUP_URL: `${lookupServer.url}/lookup`,
      LOOKUP_TOKEN,
      LOOKUP_TIMEOUT: "500ms",
    },
  });
  S = newSid("S");
  await edge.seedSession(S, record("alice", { created: Date.now() - 10 * MIN, lastSeen: Date.now() - 5000 }));
  tS = mintTicket(edge, S);
  X = newSid("X");
  tX = ticketWithDashAndUnderscore(X);
  Y = newSid("Y");
  tY = mintTicket(edge, Y, { u: "mallory" });
});

after(async () => {
  await edge?.close();
  await origin?.close();
  await lookupServer?.close();
});

/** A genuine ticket for `sid` whose payload and MAC both contain '-' or '_' (for the base64 alphabet cases). */
function ticketWithDashAndUnderscore(sid) {
  for (let i = 0; i < 1000; i++) {
    const t = mintTicket(edge, sid, { u: "alice", c: { n: i, q: "~?>~??>>" } });
    const [, , p, m] = t.split(".");
    if (/[-_]/.test(p) && /[-_]/.test(m)) return t;
  }
  throw new Error("no ticket with '-' and '_' in 1000 tries");
}

// ------------------------------------------------------------------ requests

const json = { accept: "application/json" };
const html = { accept: "text/html" };

/** A request through the worker with fetch; the answer normalised. */
async function get(path, headers = {}, init = {}) {
  const res = await edge.fetch(path, { headers: { ...json, ...headers }, ...init });
  return { status: res.status, header: (n) => res.headers.get(n), text: await res.text(), cookies: setCookies(res) };
}

/** A raw request (bytes fetch refuses to send, paths it would normalise). */
async function raw(path, lines = [], opts = {}) {
  const r = await rawGet(edge.url, path, lines, opts);
  return { status: r.status, header: r.header, text: r.body.toString("utf8"), cookies: setCookies(r) };
}

async function rawBytes(bytes) {
  const r = await rawRequest(edge.url, Buffer.from(bytes, "latin1"));
  return { status: r.status, header: r.header, text: r.body.toString("utf8"), cookies: setCookies(r) };
}

const withTicket = (sid, ticket, path = "/echo/private") => get(path, { cookie: `sid=${sid}; ${TICKET_COOKIE}=${ticket}` });
const asX = (ticket) => withTicket(X, ticket);

const flip = (s, i, bit = 0) => s.slice(0, i) + String.fromCharCode(s.charCodeAt(i) ^ (1 << bit)) + s.slice(i + 1);
const parts = (t) => t.split(".");
const at = (t) => {
  const [v, k, p] = parts(t);
  return { kid: v.length + 1, payload: v.length + k.length + 2, mac: v.length + k.length + p.length + 3, sep: v.length };
};
const toStd = (s) => s.replace(/-/g, "+").replace(/_/g, "/");
const pad = (s) => s + "=".repeat((4 - (s.length % 4)) % 4);

/** Logs in through the demo origin's echoed login signal (any header value), returns the answer. */
const signal = (login, claims) => {
  const q = new URLSearchParams();
  if (login !== undefined) q.append("set_header", `X-Edge-Session-Login:${login}`);
  if (claims !== undefined) q.append("set_header", `X-Edge-Session-Claims:${claims}`);
  return get(`/echo/public/login?${q}`);
};

/** Logs in with `login`, then asks the echo origin who it is: returns what the origin saw. */
async function signalThenEcho(login, claims) {
  const r = await signal(login, claims);
  assert.equal(r.status, 200, `login: ${r.text.slice(0, 200)}`);
  const sid = r.cookies.sid;
  assert.ok(sid, "no session cookie");
  const seen = await get("/echo/private", { cookie: `sid=${sid}; ${TICKET_COOKIE}=${r.cookies[TICKET_COOKIE]}` });
  assert.equal(seen.status, 200);
  return JSON.parse(seen.text).headers;
}

/** A session known only to the lookup, answered with `body`; the request has no ticket. */
async function viaLookup(body, status = 200) {
  const sid = newSid("L");
  lookupAnswers.set(sid, [status, typeof body === "string" ? body : JSON.stringify(body)]);
  return get("/echo/private", { cookie: `sid=${sid}` });
}

/** What an entry that checked the origin's view itself returns (login, then a request as that user). */
const SEEN_OK = { status: 200, header: () => null, text: "", cookies: {}, synthetic: true };

/** A request with session S's cookies and `headers`; a body for unsafe methods. */
const asS = (method, headers) =>
  get("/echo/private", { cookie: `sid=${S}; ${TICKET_COOKIE}=${tS}`, "content-type": "application/x-www-form-urlencoded", ...headers }, method === "GET" ? {} : { method, body: "amount=1000" });

/** POST /.edge-session/sessions/end as session S. */
const endSession = (body, headers = {}) =>
  get("/.edge-session/sessions/end", { cookie: `sid=${S}`, "content-type": "application/json", ...headers }, { method: "POST", body });

const revoke = (body, headers = {}, method = "POST") =>
  get("/.edge-session/revoke", { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json", ...headers }, { method, body });

// ------------------------------------------------------------------ checks

const echoed = (r) => JSON.parse(r.text);
const noIdentityAtOrigin = (r) => {
  const h = echoed(r).headers;
  const forged = Object.keys(h).filter((k) => /^x[-_]session[-_]|^x[-_]edge[-_]session[-_]/i.test(k));
  assert.deepEqual(forged, [], "identity headers reached the origin on a public path");
};
const userAtOrigin = (user, source) => (r) => {
  const h = echoed(r).headers;
  assert.equal(h["x-session-user"], user);
  if (source) assert.equal(h["x-session-source"], source);
};
const clearsBoth = (r) => assert.deepEqual(r.cookies, { sid: "", [TICKET_COOKIE]: "" }, "both cookies cleared");
// This worker has a lookup (attach mode): an ID the site does not know keeps the site's cookie
// (it may name the site's own guest session); only the worker's ticket is cleared.
const clearsTicket = (r) => assert.deepEqual(r.cookies, { [TICKET_COOKIE]: "" }, "only the ticket cleared");
const setsNoCookie = (r) => assert.deepEqual(r.cookies, {}, "no cookie set");
const sessionCreated = (r) => assert.ok(r.cookies.sid && r.cookies[TICKET_COOKIE], "login did not set both cookies");
const noSessionCreated = (r) => assert.ok(!r.cookies.sid, "a session was created");
const badSignal = (r) => {
  assert.equal(JSON.parse(r.text).error, "bad_signal");
  noSessionCreated(r);
};
const errorIs = (error) => (r) => assert.equal(JSON.parse(r.text).error, error);
/** A login redirect whose return_to, decoded once or twice (tabs and newlines stripped as browsers do), stays on this site. */
const staysHome = (r) => {
  const location = r.header("location");
  assert.ok(location && !/[\r\n]/.test(location), `location ${location}`);
  assert.match(location, /^\/login\?return_to=/);
  const once = new URL(location, "https://site.example").searchParams.get("return_to");
  for (const candidate of [once, safeDecode(once)]) {
    const browser = candidate.replace(/[\t\n\r]/g, "");
    assert.equal(new URL(browser, "https://site.example").host, "site.example", `return_to ${JSON.stringify(candidate)} leaves the site`);
  }
};
const safeDecode = (s) => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

// ------------------------------------------------------------------ the corpus

const N401 = (reason) => ({ status: 401, reason });
const INVALID = { ...N401("invalid_session"), check: clearsTicket };
// An ID no session store could have handed out (asked of nobody): both cookies cleared.
const IMPLAUSIBLE = { ...N401("invalid_session"), check: clearsBoth };
const NO_SESSION = N401("no_session");
const PUBLIC_OK = { status: 200, reason: null, check: noIdentityAtOrigin };
const ALICE_TICKET = { status: 200, reason: null, check: userAtOrigin("alice", "ticket") };
const BAD_SIGNAL = { status: 502, reason: null, check: badSignal };
const CROSS_SITE = { status: 403, reason: "cross_site_request", check: (r) => assert.deepEqual(JSON.parse(r.text), { error: "cross_site_request" }) };
const LOOKUP_UNAVAILABLE = { status: 503, reason: "store_unavailable" };
const BAD_REQUEST = { status: 400, reason: null, check: errorIs("bad_request") };

const CORPUS = [
  // --- tickets tampered in every field (session X is served by its genuine ticket alone, so
  // a tampered one that were accepted would show as 200; refused, X is unknown everywhere)
  ["ticket: the genuine ticket of X (control: served from the ticket alone)", () => asX(tX), ALICE_TICKET],
  ["ticket: bit flip in the version tag", () => asX(flip(tX, 0)), INVALID],
  ["ticket: version v2, correctly signed", () => asX(mintTicket(edge, X, {}, { version: "v2" })), INVALID],
  ["ticket: bit flip in the key id", () => asX(flip(tX, at(tX).kid)), INVALID],
  ["ticket: bit flip in the first payload character", () => asX(flip(tX, at(tX).payload)), INVALID],
  ["ticket: bit flip in the middle of the payload", () => asX(flip(tX, at(tX).payload + 20)), INVALID],
  ["ticket: bit flip in the last payload character", () => asX(flip(tX, at(tX).mac - 2)), INVALID],
  ["ticket: bit flip (bit 2) in the payload", () => asX(flip(tX, at(tX).payload + 7, 2)), INVALID],
  ["ticket: bit flip in the first MAC character", () => asX(flip(tX, at(tX).mac)), INVALID],
  ["ticket: bit flip in the last MAC character", () => asX(flip(tX, tX.length - 1)), INVALID],
  ["ticket: bit flip in a separator", () => asX(flip(tX, at(tX).sep)), INVALID],
  ["ticket: truncated by one character", () => asX(tX.slice(0, -1)), INVALID],
  ["ticket: truncated to three parts", () => asX(parts(tX).slice(0, 3).join(".")), INVALID],
  ["ticket: empty MAC", () => asX(parts(tX).slice(0, 3).join(".") + "."), INVALID],
  ["ticket: '=' padding on the payload", () => asX(parts(tX).map((p, i) => (i === 2 ? p + "=" : p)).join(".")), INVALID],
  ["ticket: '=' padding on the MAC", () => asX(tX + "="), INVALID],
  ["ticket: '==' padding on the MAC", () => asX(tX + "=="), INVALID],
  ["ticket: standard base64 alphabet (+/) in payload and MAC", () => asX(parts(tX).map((p, i) => (i >= 2 ? toStd(p) : p)).join(".")), INVALID],
  ["ticket: standard base64 with padding", () => asX(parts(tX).map((p, i) => (i >= 2 ? pad(toStd(p)) : p)).join(".")), INVALID],
  ["ticket: unknown key id, signed with the real secret", () => asX(mintTicket(edge, X, {}, { kid: "k9" })), INVALID],
  ["ticket: empty key id, signed with the real secret", () => asX(mintTicket(edge, X, {}, { kid: "" })), INVALID],
  ["ticket: key id with a trailing space", () => asX(mintTicket(edge, X, {}, { kid: "k1 " })), INVALID],
  ["ticket: signed for the cookie name 'sid'", () => asX(mintTicket(edge, X, {}, { cookie: "sid" })), INVALID],
  ["ticket: signed for another ticket cookie name", () => asX(mintTicket(edge, X, {}, { cookie: "__Host-edge-ticket2" })), INVALID],
  ["ticket: signed with another secret under the same key id", () => asX(mintTicket(edge, X, {}, { secret: Buffer.alloc(32, 7) })), INVALID],
  ["ticket: another session's genuine ticket", () => asX(tY), INVALID],
  ["ticket: user swapped to mallory, MAC kept", () => asX([...parts(tX).slice(0, 2), Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(parts(tX)[2], "base64url")), u: "mallory" })).toString("base64url"), parts(tX)[3]].join(".")), INVALID],
  ["ticket: valid MAC over a payload that is not JSON", () => asX(mintTicket(edge, X, {}, { raw: "not json" })), INVALID],
  ["ticket: valid MAC over JSON of the wrong types", () => asX(mintTicket(edge, X, {}, { raw: JSON.stringify({ h: 1, u: [], cr: "x", ls: null, va: {}, o: "moon" }) })), INVALID],
  ["ticket: empty value", () => asX(""), INVALID],
  ["ticket: 5000 characters", () => asX("v1.k1." + "A".repeat(4990) + ".x"), INVALID],
  ["ticket: five parts", () => asX(tX + ".extra"), INVALID],
  ["ticket: upper-cased", () => asX(tX.toUpperCase()), INVALID],
  ["ticket: the genuine ticket in double quotes (a quoted cookie-value is the value)", () => asX(`"${tX}"`), ALICE_TICKET],
  ["ticket: genuine but past the absolute limit, KV has no record", () => { const Z = newSid("Z"); return withTicket(Z, mintTicket(edge, Z, { cr: Date.now() - 9 * 60 * MIN, ls: Date.now() - 1000 })); }, { ...N401("absolute_timeout"), check: clearsBoth }],
  ["ticket: genuine but idle past the limit, KV has no record", () => { const Z = newSid("Z"); return withTicket(Z, mintTicket(edge, Z, { ls: Date.now() - 31 * MIN, va: Date.now() - 31 * MIN })); }, { ...N401("idle_timeout"), check: clearsBoth }],
  ["ticket: genuine, with no session cookie at all", () => get("/echo/private", { cookie: `${TICKET_COOKIE}=${tX}` }), { ...NO_SESSION, check: (r) => assert.deepEqual(r.cookies, { [TICKET_COOKIE]: "" }) }],

  // --- cookies duplicated, quoted, case-shifted, oversized, with control and non-UTF-8 bytes
  ["cookie: session duplicated, genuine first", () => get("/echo/private", { cookie: `sid=${S}; sid=forged; ${TICKET_COOKIE}=${tS}` }), ALICE_TICKET],
  ["cookie: session duplicated, forged first (the first one counts)", () => get("/echo/private", { cookie: `sid=forged-${newSid()}; sid=${S}; ${TICKET_COOKIE}=${tS}` }), INVALID],
  ["cookie: ticket duplicated, tampered first", () => get("/echo/private", { cookie: `sid=${X}; ${TICKET_COOKIE}=${flip(tX, 40)}; ${TICKET_COOKIE}=${tX}` }), INVALID],
  ["cookie: quoted session ID", () => get("/echo/private", { cookie: `sid="${S}"; ${TICKET_COOKIE}=${tS}` }), ALICE_TICKET],
  ["cookie: name upper-cased (SID)", () => get("/echo/private", { cookie: `SID=${S}; ${TICKET_COOKIE}=${tS}` }), { ...NO_SESSION, check: (r) => assert.deepEqual(r.cookies, { [TICKET_COOKIE]: "" }) }],
  ["cookie: name capitalised (Sid), no ticket", () => get("/echo/private", { cookie: `Sid=${S}` }), { ...NO_SESSION, check: setsNoCookie }],
  ["cookie: ticket name lower-cased (__host-edge-ticket)", () => get("/echo/private", { cookie: `sid=${X}; __host-edge-ticket=${tX}` }), INVALID],
  ["cookie: spaces around names and values", () => get("/echo/private", { cookie: ` sid = ${S} ;  ${TICKET_COOKIE} = ${tS} ` }), ALICE_TICKET],
  ["cookie: header over 16 KB", () => get("/echo/private", { cookie: `sid=${S}; pad=${"a".repeat(17 * 1024)}; ${TICKET_COOKIE}=${tS}` }), NO_SESSION],
  ["cookie: header of 70 KB", () => raw("/echo/private", [`Cookie: sid=${S}; pad=${"a".repeat(70 * 1024)}`]), NO_SESSION],
  ["cookie: 1000 small cookies before the session (under 16 KB)", () => raw("/echo/private", [`Cookie: ${Array.from({ length: 1000 }, (_, i) => `c${i}=${i}`).join("; ")}; sid=${S}; ${TICKET_COOKIE}=${tS}`]), ALICE_TICKET],
  ["cookie: control byte (0x01) in the session ID", () => raw("/echo/private", [`Cookie: sid=${S}\x01; ${TICKET_COOKIE}=${tS}`]), IMPLAUSIBLE],
  ["cookie: DEL (0x7f) in the session ID", () => raw("/echo/private", [`Cookie: sid=${S}\x7f`]), IMPLAUSIBLE],
  ["cookie: non-UTF-8 bytes as the session ID", () => rawBytes(`GET /echo/private HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: sid=\xff\xfe\xc3\r\n\r\n`), IMPLAUSIBLE],
  ["cookie: NUL byte (refused by the runtime's HTTP parser)", () => raw("/echo/private", [`Cookie: sid=${S}\x00; ${TICKET_COOKIE}=${tS}`]), { status: 400, reason: null, runtime: true }],
  ["cookie: empty session ID", () => get("/echo/private", { cookie: "sid=" }), IMPLAUSIBLE],
  ["cookie: session ID of 257 bytes (no lookup asked)", async () => {
    const before = lookupServer.seen.length;
    const r = await get("/echo/private", { cookie: `sid=${"a".repeat(257)}` });
    assert.equal(lookupServer.seen.length, before, "an implausible ID reached the lookup");
    return r;
  }, IMPLAUSIBLE],
  ["cookie: session ID with a space", () => get("/echo/private", { cookie: "sid=a b" }), IMPLAUSIBLE],
  ["cookie: session ID with a backslash and a comma", () => get("/echo/private", { cookie: "sid=a\\b,c" }), IMPLAUSIBLE],
  ["cookie: 'sid' without '='", () => get("/echo/private", { cookie: "sid" }), NO_SESSION],
  ["cookie: only separators", () => get("/echo/private", { cookie: ";;; ;=;==" }), NO_SESSION],

  // --- users and claims from the login signal (percent-encoded UTF-8 in X-Edge-Session-Login)
  ["login signal: user of 256 bytes", () => signal("u".repeat(256)), { status: 200, reason: null, check: sessionCreated }],
  ["login signal: user of 257 bytes", () => signal("u".repeat(257)), BAD_SIGNAL],
  ["login signal: user of 258 bytes of Korean", () => signal("%EA%B9%80".repeat(86)), BAD_SIGNAL],
  ["login signal: user with CR LF and a header line", () => signal("eve%0D%0AX-Injected:%201"), BAD_SIGNAL],
  ["login signal: user with LF", () => signal("eve%0Abob"), BAD_SIGNAL],
  ["login signal: user with NUL", () => signal("eve%00"), BAD_SIGNAL],
  ["login signal: user with an invalid escape", () => signal("%ZZ"), BAD_SIGNAL],
  ["login signal: user that is not UTF-8", () => signal("%FF%FE"), BAD_SIGNAL],
  ["login signal: user with a cut UTF-8 sequence", () => signal("%EA%B9"), BAD_SIGNAL],
  ["login signal: blank user", () => signal("%20%20"), BAD_SIGNAL],
  ["login signal: emoji user reaches the origin percent-encoded", async () => {
    const h = await signalThenEcho("%F0%9F%98%80");
    assert.equal(h["x-session-user"], "%F0%9F%98%80");
    return SEEN_OK;
  }, { status: 200, reason: null }],
  ["login signal: user '100%' travels as 100%25, never decoded twice", async () => {
    const h = await signalThenEcho("100%25");
    assert.equal(h["x-session-user"], "100%25");
    assert.equal(decodeURIComponent(h["x-session-user"]), "100%");
    return SEEN_OK;
  }, { status: 200, reason: null }],
  ["login signal: user with , ; = reaches the origin encoded", async () => {
    const h = await signalThenEcho("a%2Cb%3Bc%3Dd");
    assert.equal(h["x-session-user"], "a%2Cb%3Bc%3Dd");
    return SEEN_OK;
  }, { status: 200, reason: null }],
  ["login signal: claims that are an array", () => signal("alice", "[1]"), BAD_SIGNAL],
  ["login signal: claims that are a string", () => signal("alice", '"admin"'), BAD_SIGNAL],
  ["login signal: claims over 2 KB", () => signal("alice", JSON.stringify({ a: "x".repeat(2100) })), BAD_SIGNAL],
  ["login signal: claims that are not JSON", () => signal("alice", "{role:admin"), BAD_SIGNAL],
  ["login signal: claims nested 200 deep", () => signal("alice", '{"a":'.repeat(200) + "1" + "}".repeat(200)), BAD_SIGNAL],
  ["login signal: claims without a login", () => signal(undefined, '{"role":"admin"}'), BAD_SIGNAL],
  ["login signal: escaped CR LF inside claims stay escaped in X-Session-Claims", async () => {
    const h = await signalThenEcho("alice", JSON.stringify({ note: "x\r\nX-Injected: 1" }));
    assert.equal(h["x-injected"], undefined);
    assert.equal(h["x-session-claims"], '{"note":"x\\r\\nX-Injected: 1"}');
    return SEEN_OK;
  }, { status: 200, reason: null }],
  ["login signal: non-ASCII claims travel as ASCII JSON", async () => {
    const h = await signalThenEcho("alice", '{"name":"\\uae40\\ucca0\\uc218"}');
    assert.equal(h["x-session-claims"], '{"name":"\\uae40\\ucca0\\uc218"}');
    assert.deepEqual(JSON.parse(h["x-session-claims"]), { name: "김철수" });
    return SEEN_OK;
  }, { status: 200, reason: null }],
  ["logout signal with no session clears both cookies", () => get("/echo/public/bye?set_header=X-Edge-Session-Logout:1"), { status: 200, reason: null, check: clearsBoth }],

  // --- users and claims from the lookup (validated as a login signal is: unavailable, never a 500)
  ["lookup: user with CR LF and a header line", () => viaLookup({ user: "eve\r\nX-Injected: 1" }), LOOKUP_UNAVAILABLE],
  ["lookup: user of 257 bytes", () => viaLookup({ user: "u".repeat(257) }), LOOKUP_UNAVAILABLE],
  ["lookup: user that is a number", () => viaLookup({ user: 42 }), LOOKUP_UNAVAILABLE],
  ["lookup: empty user", () => viaLookup({ user: "" }), LOOKUP_UNAVAILABLE],
  ["lookup: blank user", () => viaLookup({ user: "   " }), LOOKUP_UNAVAILABLE],
  ["lookup: claims that are an array", () => viaLookup({ user: "bob", claims: ["admin"] }), LOOKUP_UNAVAILABLE],
  ["lookup: created in milliseconds (far future)", () => viaLookup({ user: "bob", created: Date.now() }), LOOKUP_UNAVAILABLE],
  ["lookup: created 9 hours ago", () => viaLookup({ user: "bob", created: Math.floor(Date.now() / 1000) - 9 * 3600 }), { ...N401("absolute_timeout"), check: clearsBoth }],
  ["lookup: last seen 31 minutes ago", () => viaLookup({ user: "bob", created: Math.floor(Date.now() / 1000) - 3600, last_seen: Math.floor(Date.now() / 1000) - 31 * 60 }), { ...N401("idle_timeout"), check: clearsBoth }],
  ["lookup: Korean user reaches the origin percent-encoded", () => viaLookup({ user: "김철수" }), { status: 200, reason: null, check: userAtOrigin("%EA%B9%80%EC%B2%A0%EC%88%98", "lookup") }],
  ["lookup: user '100%41' is not decoded twice", () => viaLookup({ user: "100%41" }), { status: 200, reason: null, check: userAtOrigin("100%2541", "lookup") }],
  ["lookup: NUL inside a claim stays escaped", () => viaLookup({ user: "bob", claims: { n: "a\u0000b\r\n" } }), { status: 200, reason: null, check: (r) => assert.equal(echoed(r).headers["x-session-claims"], '{"n":"a\\u0000b\\r\\n"}') }],

  // --- path tricks against PUBLIC_PATHS (/, /login, /echo/public/*); sent raw, as written
  ["path: /login (public)", () => raw("/login"), { status: 200, reason: null }],
  ["path: /login/../echo/private", () => raw("/login/../echo/private"), NO_SESSION],
  ["path: /login%2F..%2Fecho%2Fprivate", () => raw("/login%2F..%2Fecho%2Fprivate"), NO_SESSION],
  ["path: //login", () => raw("//login"), NO_SESSION],
  ["path: /LOGIN", () => raw("/LOGIN"), NO_SESSION],
  ["path: /login;x", () => raw("/login;x"), NO_SESSION],
  ["path: /login/", () => raw("/login/"), NO_SESSION],
  ["path: /login%00", () => raw("/login%00"), NO_SESSION],
  ["path: /%2e%2e/login (normalised to /login: public)", () => raw("/%2e%2e/login"), { status: 200, reason: null }],
  ["path: /echo/public/../private", () => raw("/echo/public/../private"), NO_SESSION],
  ["path: /echo/public/%2e%2e/private", () => raw("/echo/public/%2e%2e/private"), NO_SESSION],
  ["path: /echo/public/%2E%2E/private", () => raw("/echo/public/%2E%2E/private"), NO_SESSION],
  ["path: /echo/public/.%2e/private", () => raw("/echo/public/.%2e/private"), NO_SESSION],
  ["path: /echo/public%2F..%2Fprivate", () => raw("/echo/public%2F..%2Fprivate"), NO_SESSION],
  ["path: /echo/public\\..\\private", () => raw("/echo/public\\..\\private"), NO_SESSION],
  ["path: /echo/PUBLIC/x", () => raw("/echo/PUBLIC/x"), NO_SESSION],
  ["path: /echo/public (no trailing slash)", () => raw("/echo/public"), NO_SESSION],
  // an origin that decodes %2F would read these as /echo/private: never public
  ["path: /echo/public/..%2Fprivate (an encoded slash is never public)", () => raw("/echo/public/..%2Fprivate"), NO_SESSION],
  ["path: /echo/public/..%2fprivate (lower-case escape)", () => raw("/echo/public/..%2fprivate"), NO_SESSION],
  ["path: /echo/public/..%5Cprivate (encoded backslash)", () => raw("/echo/public/..%5Cprivate"), NO_SESSION],
  ["path: non-UTF-8 bytes on a public path", () => rawBytes("GET /echo/public/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), PUBLIC_OK],
  ["path: /.edge-session/../echo/private", () => raw("/.edge-session/../echo/private"), NO_SESSION],
  ["path: /.edge-session%2Fhealth is not a control path", () => raw("/.edge-session%2Fhealth"), NO_SESSION],
  ["path: /.EDGE-SESSION/health is not a control path", () => raw("/.EDGE-SESSION/health"), NO_SESSION],

  // --- return_to and open redirects (browser navigations without a session)
  ["return_to: //evil.example percent-encoded", () => raw("/%2F%2Fevil.example", ["Accept: text/html"]), { status: 302, reason: "no_session", check: staysHome }],
  ["return_to: /\\evil.example", () => raw("/\\evil.example", ["Accept: text/html"]), { status: 302, reason: "no_session", check: staysHome }],
  ["return_to: /%5C%5Cevil.example", () => raw("/%5C%5Cevil.example", ["Accept: text/html"]), { status: 302, reason: "no_session", check: staysHome }],
  ["return_to: /%09/evil.example", () => raw("/%09/evil.example", ["Accept: text/html"]), { status: 302, reason: "no_session", check: staysHome }],
  ["return_to: /%2F%09%2Fevil.example", () => raw("/%2F%09%2Fevil.example", ["Accept: text/html"]), { status: 302, reason: "no_session", check: staysHome }],
  ["return_to: a query naming another site", () => raw("/echo/private?next=https://evil.example/", ["Accept: text/html"]), { status: 302, reason: "no_session", check: staysHome }],
  ["return_to: CR LF and a Set-Cookie in the path", () => raw("/%0d%0aSet-Cookie:%20x=1", ["Accept: text/html"]), { status: 302, reason: "no_session", check: (r) => { staysHome(r); setsNoCookie(r); } }],
  ["return_to: /@evil.example", () => raw("/@evil.example", ["Accept: text/html"]), { status: 302, reason: "no_session", check: staysHome }],
  ["return_to: /https:/evil.example", () => raw("/https:/evil.example", ["Accept: text/html"]), { status: 302, reason: "no_session", check: staysHome }],
  ["return_to: a path of 6000 characters", () => raw("/" + "a".repeat(6000), ["Accept: text/html"]), { status: 302, reason: "no_session", check: staysHome }],
  ["return_to: dead session's reason travels with it", () => get("/%2F%2Fevil.example", { ...html, cookie: "sid=unknown-session-id" }), { status: 302, reason: "invalid_session", check: (r) => { staysHome(r); assert.match(r.header("location"), /&reason=invalid_session$/); clearsTicket(r); } }],

  // --- identity headers forged in every spelling servers treat alike
  ["forged: X-Session-User on a public path", () => get("/echo/public/x", { "X-Session-User": "mallory" }), PUBLIC_OK],
  ["forged: x-session-user lower-case", () => raw("/echo/public/x", ["x-session-user: mallory"]), PUBLIC_OK],
  ["forged: X-SESSION-USER upper-case", () => raw("/echo/public/x", ["X-SESSION-USER: mallory"]), PUBLIC_OK],
  ["forged: X_Session_User with underscores", () => raw("/echo/public/x", ["X_Session_User: mallory"]), PUBLIC_OK],
  ["forged: X-Session_User mixed", () => raw("/echo/public/x", ["X-Session_User: mallory"]), PUBLIC_OK],
  ["forged: X-Session-User with a tab before the colon", () => raw("/echo/public/x", ["X-Session-User\t: mallory"]), PUBLIC_OK],
  ["forged: X-Session-User with a space before the colon", () => raw("/echo/public/x", ["X-Session-User : mallory"]), PUBLIC_OK],
  ["forged: X-Session-User folded over two lines", () => raw("/echo/public/x", ["X-Session-User: mal", " lory"]), PUBLIC_OK],
  ["forged: X-Session-User twice", () => raw("/echo/public/x", ["X-Session-User: mallory", "X-Session-User: eve"]), PUBLIC_OK],
  ["forged: X-Session-User with non-UTF-8 bytes", () => rawBytes("GET /echo/public/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Session-User: \xff\xfe\r\n\r\n"), PUBLIC_OK],
  ["forged: X-Session-Claims, -Source and -Assertion", () => get("/echo/public/x", { "X-Session-Claims": '{"role":"root"}', "X-Session-Source": "ticket", "X-Session-Assertion": "e30.e30.x" }), PUBLIC_OK],
  ["forged: X-Edge-Session-Login sent by the client creates no session", () => get("/echo/public/x", { "X-Edge-Session-Login": "admin" }), { ...PUBLIC_OK, check: (r) => { noIdentityAtOrigin(r); setsNoCookie(r); } }],
  ["forged: X-Session-User with trailing spaces beside a genuine session", () => raw("/echo/private", [`Cookie: sid=${S}; ${TICKET_COOKIE}=${tS}`, "X-Session-User: mallory   "]), ALICE_TICKET],
  ["forged: X-Session-User twice beside a genuine session", () => raw("/echo/private", [`Cookie: sid=${S}; ${TICKET_COOKIE}=${tS}`, "X-Session-User: mallory", "x-session-user: eve"]), ALICE_TICKET],
  ["forged: X_Session_User beside a genuine session", () => raw("/echo/private", [`Cookie: sid=${S}; ${TICKET_COOKIE}=${tS}`, "X_Session_User: mallory"]), { ...ALICE_TICKET, check: (r) => { userAtOrigin("alice", "ticket")(r); assert.equal(echoed(r).headers["x_session_user"], undefined); } }],
  ["forged: the worker's hop marker from a client", () => get("/echo/public/x", { "Edge-Session-Hop": "1" }), { status: 508, reason: null, check: errorIs("loop_detected") }],
  ["forged: a header name with a space (refused by the runtime's HTTP parser)", () => raw("/echo/public/x", ["X Session User: mallory"]), { status: 400, reason: null, runtime: true }],

  // --- control endpoints with wrong methods, tokens and bodies
  ["control: GET /.edge-session/revoke", () => get("/.edge-session/revoke"), { status: 405, reason: null, check: (r) => assert.equal(r.header("allow"), "POST") }],
  ["control: PUT /.edge-session/revoke", () => revoke('{"user":"alice"}', {}, "PUT"), { status: 405, reason: null }],
  ["control: DELETE /.edge-session/logout", () => get("/.edge-session/logout", {}, { method: "DELETE" }), { status: 405, reason: null }],
  ["control: GET /.edge-session/logout", () => get("/.edge-session/logout"), { status: 405, reason: null }],
  ["control: revoke without a token", () => get("/.edge-session/revoke", { "content-type": "application/json" }, { method: "POST", body: '{"user":"alice"}' }), { status: 401, reason: null, check: errorIs("unauthorized") }],
  ["control: revoke with a wrong token", () => revoke('{"user":"alice"}', { authorization: "Bearer wrong" }), { status: 401, reason: null }],
  ["control: revoke with the token and one more character", () => revoke('{"user":"alice"}', { authorization: `Bearer ${ADMIN_TOKEN}x` }), { status: 401, reason: null }],
  ["control: revoke with the token as Basic credentials", () => revoke('{"user":"alice"}', { authorization: `Basic ${ADMIN_TOKEN}` }), { status: 401, reason: null }],
  ["control: revoke with a body of 9 KB", () => revoke(JSON.stringify({ user: "x".repeat(9000) })), { status: 413, reason: null }],
  // the worker stops reading at 8 KB and answers while the client still sends: read raw
  ["control: revoke with a body of 2 MB", () => raw("/.edge-session/revoke", [`Authorization: Bearer ${ADMIN_TOKEN}`, "Content-Type: application/json"], { method: "POST", body: "x".repeat(2 * 1024 * 1024) }), { status: 413, reason: null }],
  ["control: revoke with broken JSON", () => revoke("{"), BAD_REQUEST],
  ["control: revoke with both fields", () => revoke(JSON.stringify({ session_id: S, user: "alice" })), BAD_REQUEST],
  ["control: revoke with an empty session_id", () => revoke('{"session_id":""}'), BAD_REQUEST],
  ["control: revoke with an empty user", () => revoke('{"user":""}'), BAD_REQUEST],
  ["control: revoke with a numeric session_id", () => revoke('{"session_id":42}'), BAD_REQUEST],
  ["control: revoke with a user that is a list", () => revoke('{"user":["alice"]}'), BAD_REQUEST],
  ["control: revoke with null fields", () => revoke('{"session_id":null,"user":null}'), BAD_REQUEST],
  ["control: revoke with a JSON array", () => revoke("[]"), BAD_REQUEST],
  ["control: revoke with an empty object", () => revoke("{}"), BAD_REQUEST],
  ["control: revoke with an empty body", () => revoke(""), BAD_REQUEST],
  ["control: revoke with non-UTF-8 bytes", () => revoke(Buffer.from([0xff, 0xfe, 0x7b])), BAD_REQUEST],
  ["control: revoke a user whose name is a prefix of alice's", () => revoke('{"user":"ali"}'), { status: 200, reason: null, check: (r) => assert.deepEqual(JSON.parse(r.text), { revoked: 0 }) }],
  ["control: revoke a user named 'alice:' (index separator)", () => revoke('{"user":"alice:"}'), { status: 200, reason: null, check: (r) => assert.deepEqual(JSON.parse(r.text), { revoked: 0 }) }],
  ["control: revoke a session_id of 7000 characters", () => revoke(JSON.stringify({ session_id: "s".repeat(7000) })), { status: 200, reason: null, check: (r) => assert.deepEqual(JSON.parse(r.text), { revoked: 0 }) }],
  ["control: unknown endpoint", () => get("/.edge-session/admin"), { status: 404, reason: null }],
  ["control: the bare prefix", () => get("/.edge-session/"), { status: 404, reason: null }],
  ["control: logout without a session", () => get("/.edge-session/logout", {}, { method: "POST" }), { status: 302, reason: null, check: (r) => { clearsBoth(r); assert.equal(r.header("location"), "/login"); } }],

  // --- cross-site request forgery (CSRF_PROTECTION on, the default): unsafe methods with the
  // session cookie from another origin never reach the origin
  ["csrf: POST with Sec-Fetch-Site cross-site", () => asS("POST", { "sec-fetch-site": "cross-site", origin: "https://evil.example" }), CROSS_SITE],
  ["csrf: POST with Sec-Fetch-Site same-site (a sibling subdomain)", () => asS("POST", { "sec-fetch-site": "same-site", origin: "https://sub.127.0.0.1" }), CROSS_SITE],
  ["csrf: POST with Sec-Fetch-Site in capitals", () => asS("POST", { "sec-fetch-site": "CROSS-SITE" }), CROSS_SITE],
  ["csrf: POST with another Origin and no Sec-Fetch-Site", () => asS("POST", { origin: "https://evil.example" }), CROSS_SITE],
  ["csrf: POST with Origin null", () => asS("POST", { origin: "null" }), CROSS_SITE],
  ["csrf: POST with an Origin that extends this site's host", () => asS("POST", { origin: "http://127.0.0.1:8787.evil.example" }), CROSS_SITE],
  ["csrf: PUT cross-site", () => asS("PUT", { "sec-fetch-site": "cross-site" }), CROSS_SITE],
  ["csrf: PATCH cross-site", () => asS("PATCH", { origin: "https://evil.example" }), CROSS_SITE],
  ["csrf: DELETE cross-site", () => asS("DELETE", { "sec-fetch-site": "cross-site" }), CROSS_SITE],
  ["csrf: POST with Sec-Fetch-Site same-origin passes", () => asS("POST", { "sec-fetch-site": "same-origin", origin: "http://127.0.0.1:8787" }), ALICE_TICKET],
  ["csrf: POST with Sec-Fetch-Site none (typed by the user) passes", () => asS("POST", { "sec-fetch-site": "none" }), ALICE_TICKET],
  ["csrf: POST with this site's Origin passes", () => asS("POST", { origin: "http://127.0.0.1:8787" }), ALICE_TICKET],
  ["csrf: POST with neither header (not a browser) passes", () => asS("POST", {}), ALICE_TICKET],
  ["csrf: GET cross-site (a safe method) passes", () => asS("GET", { "sec-fetch-site": "cross-site" }), ALICE_TICKET],
  ["csrf: POST cross-site without the session cookie is just unauthenticated", () => get("/echo/private", { "sec-fetch-site": "cross-site" }, { method: "POST", body: "x" }), NO_SESSION],
  ["csrf: POST cross-site to a public path is forwarded without identity", () => get("/echo/public/form", { "sec-fetch-site": "cross-site", cookie: `sid=${S}; ${TICKET_COOKIE}=${tS}` }, { method: "POST", body: "x" }), PUBLIC_OK],
  ["csrf: cross-site POST to /.edge-session/logout", () => get("/.edge-session/logout", { cookie: `sid=${S}; ${TICKET_COOKIE}=${tS}`, "sec-fetch-site": "cross-site" }, { method: "POST" }), { status: 403, reason: "cross_site_request", check: setsNoCookie }],

  // --- the signed-in user's own endpoints
  ["sessions: the list names handles, never IDs or hashes", () => get("/.edge-session/sessions", { cookie: `sid=${S}` }), { status: 200, reason: null, check: (r) => {
    const body = JSON.parse(r.text);
    assert.equal(body.user, "alice");
    assert.ok(body.sessions.some((x) => x.current), "the current session is not marked");
    assert.ok(!r.text.includes(S) && !r.text.includes(sha256hex(S)), "the list reveals a session ID or hash");
  } }],
  ["sessions: GET without a session", () => get("/.edge-session/sessions"), N401("no_session")],
  ["sessions: GET with an unknown session", () => get("/.edge-session/sessions", { cookie: "sid=unknown-to-everyone" }), N401("invalid_session")],
  ["sessions: GET cross-site", () => get("/.edge-session/sessions", { cookie: `sid=${S}`, "sec-fetch-site": "cross-site" }), { status: 403, reason: "cross_site_request" }],
  ["sessions: POST /.edge-session/sessions", () => get("/.edge-session/sessions", { cookie: `sid=${S}` }, { method: "POST", body: "{}" }), { status: 405, reason: null }],
  ["sessions: GET /.edge-session/sessions/end", () => get("/.edge-session/sessions/end", { cookie: `sid=${S}` }), { status: 405, reason: null }],
  ["sessions: GET /.edge-session/logout-everywhere", () => get("/.edge-session/logout-everywhere", { cookie: `sid=${S}` }), { status: 405, reason: null }],
  ["sessions/end: a handle that is not one of the caller's", () => endSession(JSON.stringify({ handle: "AAAAAAAAAAAAAAAAAAAAAAAA" })), { status: 404, reason: null, check: setsNoCookie }],
  ["sessions/end: a handle that is a number", () => endSession('{"handle":42}'), BAD_REQUEST],
  ["sessions/end: broken JSON", () => endSession("{"), BAD_REQUEST],
  ["sessions/end: a body of 9 KB", () => endSession(JSON.stringify({ handle: "h".repeat(9000) })), { status: 413, reason: null }],
  ["sessions/end: cross-site", () => endSession(JSON.stringify({ handle: "x" }), { "sec-fetch-site": "cross-site" }), { status: 403, reason: "cross_site_request" }],
  ["sessions/end: without a session", () => get("/.edge-session/sessions/end", { "content-type": "application/json" }, { method: "POST", body: '{"handle":"x"}' }), N401("no_session")],
  ["logout-everywhere: keep_current that is not a boolean", () => get("/.edge-session/logout-everywhere", { cookie: `sid=${S}` }, { method: "POST", body: '{"keep_current":"yes"}' }), BAD_REQUEST],
  ["logout-everywhere: another site's Origin", () => get("/.edge-session/logout-everywhere", { cookie: `sid=${S}`, origin: "https://evil.example" }, { method: "POST", body: "{}" }), { status: 403, reason: "cross_site_request", check: setsNoCookie }],
];

// ------------------------------------------------------------------ running it

test(`hostile corpus: ${CORPUS.length} inputs against one worker, each with its defined answer`, async () => {
  const names = new Set();
  const failures = [];
  for (const [name, send, want] of CORPUS) {
    assert.ok(!names.has(name), `duplicate name ${name}`);
    names.add(name);
    try {
      if (process.env.HOSTILE_TRACE) console.error("->", name);
      const r = await send();
      assert.equal(r.status, want.status, `status ${r.status}: ${String(r.text).slice(0, 160)}`);
      if (want.runtime) {
        assert.equal(r.header("server-timing"), null, "expected the runtime's own answer");
      } else if (!r.synthetic) {
        // answers the worker wrote itself, and everything it forwarded, carry Server-Timing
        assert.match(r.header("server-timing") ?? "", /^edge-session;desc="[a-z_]+";dur=\d+$/, "no Server-Timing");
        if ("reason" in want) assert.equal(r.header("x-edge-session-reason"), want.reason, "X-Edge-Session-Reason");
      }
      want.check?.(r);
    } catch (e) {
      failures.push(`${name}: ${e.message.split("\n")[0]}`);
    }
  }
  assert.deepEqual(failures, [], `${failures.length} of ${CORPUS.length} inputs answered otherwise`);
  assert.ok(CORPUS.length >= 80);
});

test("after the whole corpus, the same worker still serves genuine sessions", async () => {
  // S from its ticket, S from KV, and a new login through the demo site's form
  const fromTicket = await withTicket(S, tS);
  assert.equal(fromTicket.status, 200);
  userAtOrigin("alice", "ticket")(fromTicket);
  const fromKv = await get("/echo/private", { cookie: `sid=${S}` });
  assert.equal(fromKv.status, 200);
  userAtOrigin("alice", "kv")(fromKv);
  const login = await edge.fetch("/login", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "username=bob&password=builder",
  });
  assert.equal(login.status, 303);
  const c = setCookies(login);
  const me = await get("/api/me", { cookie: `sid=${c.sid}; ${TICKET_COOKIE}=${c[TICKET_COOKIE]}` });
  assert.equal(me.status, 200);
  assert.equal(JSON.parse(me.text).user, "bob");
  // and the isolate kept its configuration and memory: health is unchanged
  assert.equal((await get("/.edge-session/health")).status, 200);
});

// ------------------------------------------------------------------ defects found by this corpus, fixed since
// Each asserts what the contract asks; docs/SECURITY.md lists them under "Findings".

test("two Cookie header lines (a session line and a ticket line) do not log the user out", async () => {
  const r = await raw("/echo/private", [`Cookie: sid=${S}`, `Cookie: ${TICKET_COOKIE}=${tS}`]);
  assert.equal(r.status, 200);
  assert.deepEqual(r.cookies, {});
});

// Found missing at the branch point of issue 9 (8b44236), implemented on main since;
// kept as regression tests of what the contract asks.

test("a configuration error shows a browser a small HTML page, details only in the log and health", async () => {
  const broken = await startEdge({ origins: [origin], vars: { IDLE_TIMEOUT: "banana" } });
  try {
    const res = await broken.fetch("/dashboard", { headers: html });
    const text = await res.text();
    assert.equal(res.status, 500);
    assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
    assert.doesNotMatch(text, /IDLE_TIMEOUT|banana/);
    const health = await broken.fetch("/.edge-session/health");
    assert.equal((await health.json()).setting, "IDLE_TIMEOUT");
  } finally {
    await broken.close();
  }
});
