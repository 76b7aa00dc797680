// Demo "existing site" origin for edge-session: the server the worker sits in
// front of. Node built-ins and the edge-session package (packages/node). See www/README.md.
//
//   import { startOrigin } from "./www/origin.mjs";
//   const origin = await startOrigin({ name: "a", mode: "edge" });
//   ... fetch(origin.url + "/echo/x") ...
//   await origin.close();

import http from "node:http";
import { randomBytes, timingSafeEqual, createHash } from "node:crypto";
import { createVerifier, EdgeSessionError } from "edge-session";
import fs from "node:fs";
import {
  escapeHtml,
  homePage,
  loginPage,
  dashboardPage,
  readingPage,
  sessionsPage,
  assertionErrorPage,
  notFoundPage,
  methodNotAllowedPage,
  messagePage,
} from "./pages.mjs";
import { READING_PREFIX, MAX_TITLE, MAX_ITEMS, DEFAULT_DATA_LIMIT, sessionData, readingList, cleanTitle } from "./session-data.mjs";

export const DEMO_USERS = Object.freeze({
  alice: { password: "wonderland", claims: { name: "Alice", role: "admin" } },
  bob: { password: "builder", claims: { name: "Bob", role: "user" } },
  // A non-ASCII user id: travels percent-encoded in headers, as JSON in the assertion.
  김철수: { password: "비밀번호", claims: { name: "김철수", role: "user" } },
});

export const LOOKUP_BEHAVIOURS = Object.freeze(["normal", "error500", "hang", "badjson", "notfound"]);

const MAX_BODY = 8 * 1024 * 1024; // echo bodies
const MAX_SMALL_BODY = 64 * 1024; // forms, lookup, control
const MAX_STREAM_CHUNKS = 10000;
const STREAM_INTERVAL_MS = 20;

const nowSec = () => Math.floor(Date.now() / 1000);
const newSessionId = () => randomBytes(32).toString("base64url");

// ---------------------------------------------------------------- sessions

// Attach-mode session store: in memory, or a JSON file ({ id: record }) that
// several instances (even in different processes) read and write, so any
// instance can answer a lookup for a session another one created.
function makeStore(file) {
  if (!file) {
    const map = new Map();
    return {
      get: (id) => (map.has(id) ? { ...map.get(id) } : null),
      put: (id, rec) => void map.set(id, { ...rec }),
      delete: (id) => map.delete(id),
      all: () => Object.fromEntries([...map].map(([k, v]) => [k, { ...v }])),
      clear: () => map.clear(),
    };
  }
  const read = () => {
    try {
      const data = JSON.parse(fs.readFileSync(file, "utf8"));
      return data && typeof data === "object" && !Array.isArray(data) ? data : {};
    } catch {
      return {}; // missing or unreadable file: no sessions
    }
  };
  const write = (data) => {
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(data, null, 1));
    fs.renameSync(tmp, file); // atomic: readers never see half a file
  };
  const has = (data, id) => Object.prototype.hasOwnProperty.call(data, id);
  return {
    get: (id) => {
      const data = read();
      return has(data, id) ? data[id] : null;
    },
    put: (id, rec) => {
      const data = read();
      data[id] = rec;
      write(data);
    },
    delete: (id) => {
      const data = read();
      if (!has(data, id)) return false;
      delete data[id];
      write(data);
      return true;
    },
    all: () => read(),
    clear: () => write({}),
  };
}

// ---------------------------------------------------------------- helpers

export { escapeHtml, readingList, sessionData };

// Compact JSON, ASCII only (header-safe).
function asciiJson(value) {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

// A local path only: one leading "/", not "//" or "/\", printable ASCII.
export function safeReturnTo(value) {
  if (typeof value !== "string") return null;
  return /^\/(?![/\\])[\x21-\x7e]*$/.test(value) ? value : null;
}

function parseCookies(header) {
  const out = {};
  for (const part of String(header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (name && !(name in out)) out[name] = part.slice(eq + 1).trim();
  }
  return out;
}

function tokenMatches(given, expected) {
  const a = createHash("sha256").update(String(given)).digest();
  const b = createHash("sha256").update(String(expected)).digest();
  return timingSafeEqual(a, b);
}

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size > limit) {
        reject(new HttpError(413, "body too large"));
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
    req.on("aborted", () => reject(new HttpError(400, "aborted")));
  });
}

function sendJson(res, status, value, extraHeaders = {}) {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(body),
    "Cache-Control": "no-store",
    ...extraHeaders,
  });
  res.end(body);
}

function sendHtml(res, status, html, extraHeaders = {}) {
  res.writeHead(status, {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Length": Buffer.byteLength(html),
    "Cache-Control": "no-store",
    ...extraHeaders,
  });
  res.end(html);
}

function redirect(res, location, extraHeaders = {}) {
  res.writeHead(303, { Location: location, "Content-Length": 0, "Cache-Control": "no-store", ...extraHeaders });
  res.end();
}

// ---------------------------------------------------------------- identity headers

// How a user id travels in X-Session-User and X-Edge-Session-Login: its UTF-8
// bytes, every byte other than A-Z a-z 0-9 - . _ ~ @ as %XX (uppercase hex).
// "alice" stays "alice"; "김철수" becomes "%EA%B9%80%EC%B2%A0%EC%88%98".
export function encodeUserHeader(user) {
  let out = "";
  for (const b of Buffer.from(String(user), "utf8")) {
    const safe = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e || b === 0x40;
    out += safe ? String.fromCharCode(b) : "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/** The user id of an X-Session-User value; null when it is not valid percent-encoded UTF-8. */
export function decodeUserHeader(value) {
  try {
    return decodeURIComponent(String(value));
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- assertion

// X-Session-Assertion is checked by the edge-session package (packages/node), as any
// Node site would check it: the signature against the worker's JWKS, iss, aud, exp,
// X-Session-User and X-Session-Source against it, and the session data against dv and dh.

// ---------------------------------------------------------------- server

/**
 * Start a demo origin on 127.0.0.1.
 * Options: name, mode ("edge" | "attach"), port, lookupToken, sessionCookie, store (file),
 * jwks ({keys:[...]}) or jwksUrl with audience (the site, the assertion's aud), requireAssertion
 * (default false).
 * @returns {Promise<{url:string,port:number,name:string,mode:string,close:()=>Promise<void>,
 *   stats:{requests:number,lookups:number,lookupHits:number,lookupMisses:number},
 *   sessions:object, control:{lookupBehaviour:string,lookupDelayMs:number},
 *   requireAssertion:boolean}>}
 */
export async function startOrigin(opts = {}) {
  const {
    name = "a",
    mode = "edge",
    port = 0,
    host = "127.0.0.1",
    lookupToken = process.env.LOOKUP_TOKEN,
    sessionCookie = "sid",
    store: storeFile = undefined,
    // X-Session-Assertion: keys (a JWKS object, or the URL of one), whether identity
    // comes only from a verified assertion, and the site (the assertion's `aud`).
    jwks = undefined,
    jwksUrl = undefined,
    requireAssertion = false,
    audience = undefined,
    // The worker's SESSION_DATA_LIMIT: the reading list says "full" before the worker would refuse.
    dataLimit = DEFAULT_DATA_LIMIT,
  } = opts;
  if (!Number.isInteger(dataLimit) || dataLimit < 64) throw new Error("dataLimit must be an integer >= 64 (bytes)");
  if (mode !== "edge" && mode !== "attach") throw new Error(`mode must be "edge" or "attach", got ${mode}`);
  if (!["127.0.0.1", "localhost"].includes(host)) throw new Error("the demo origin listens on 127.0.0.1 only");
  if (typeof requireAssertion !== "boolean") throw new Error("requireAssertion must be a boolean");
  if (requireAssertion && jwks === undefined && jwksUrl === undefined) throw new Error("requireAssertion needs jwks or jwksUrl");
  if (jwks !== undefined && jwksUrl !== undefined) throw new Error("give jwks or jwksUrl, not both");
  const checks = jwks !== undefined || jwksUrl !== undefined;
  if (checks && (typeof audience !== "string" || audience === "")) throw new Error("checking assertions needs audience: the site, as browsers address it");
  const verifier = checks ? createVerifier({ site: audience, keys: jwks, jwksUrl }) : null;

  http.validateHeaderValue("x-served-by", String(name)); // it goes into every response
  const ctx = { name: String(name), mode, requireAssertion };
  const store = makeStore(storeFile);
  const stats = { requests: 0, lookups: 0, lookupHits: 0, lookupMisses: 0 };
  // The last lookup request as received (for tests of the lookup protocol).
  let lastLookup = null;

  let behaviour = "normal";
  let delayMs = 0;
  const control = {
    get lookupBehaviour() {
      return behaviour;
    },
    set lookupBehaviour(v) {
      if (!LOOKUP_BEHAVIOURS.includes(v)) throw new Error(`lookupBehaviour must be one of ${LOOKUP_BEHAVIOURS.join(", ")}`);
      behaviour = v;
    },
    get lookupDelayMs() {
      return delayMs;
    },
    set lookupDelayMs(v) {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) throw new Error("lookupDelayMs must be a number >= 0");
      delayMs = n;
    },
    reset() {
      behaviour = "normal";
      delayMs = 0;
    },
    toJSON() {
      return { lookupBehaviour: behaviour, lookupDelayMs: delayMs };
    },
  };

  const sessions = {
    /** Create a session; returns its new id. times: optional { created, last_seen } (unix s). */
    create(user, claims = null, times = {}) {
      const id = newSessionId();
      const t = nowSec();
      store.put(id, { user: String(user), claims, created: times.created ?? t, last_seen: times.last_seen ?? times.created ?? t });
      return id;
    },
    /** Store a record under a chosen id (tests). */
    set(id, record) {
      store.put(String(id), { ...record });
    },
    get: (id) => store.get(String(id)),
    delete: (id) => store.delete(String(id)),
    list: () => store.all(),
    clear: () => store.clear(),
  };

  // Things close() must end: open sockets, pending timers, hanging lookups.
  const sockets = new Set();
  const timers = new Set();
  const hangs = new Set();
  let closing = false;

  const sleep = (ms) =>
    new Promise((resolve) => {
      if (closing) return resolve();
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });
  const hangUntilClose = () =>
    new Promise((resolve) => {
      if (closing) return resolve();
      hangs.add(resolve);
    });

  // ------------------------------------------------------------ identity

  /**
   * Who a request is, as this site will act on it:
   * { user, claims, source, assertion, error?, status? }. `user` is null for an
   * anonymous request. With requireAssertion, identity comes only from a valid
   * X-Session-Assertion and `error` is set (status 401, or 503 when the keys
   * cannot be fetched) for a request that carries identity headers without one;
   * otherwise the headers are trusted and the assertion only reported.
   */
  async function identify(req) {
    const h = req.headers;
    const rawUser = h["x-session-user"];
    const headerUser = rawUser === undefined ? undefined : decodeUserHeader(rawUser);
    const token = h["x-session-assertion"];
    const carries = rawUser !== undefined || token !== undefined || h["x-session-claims"] !== undefined || h["x-session-source"] !== undefined;

    let assertion = { present: token !== undefined, verified: false, detail: "missing X-Session-Assertion" };
    let verified = null;
    let status = 401;
    if (token !== undefined && !verifier) {
      assertion.detail = "not checked: this site has no keys (start it with jwks or jwksUrl)";
    } else if (token !== undefined) {
      try {
        const { keyId, payload } = await verifier.verify(req);
        verified = payload;
        assertion = { present: true, verified: true, kid: keyId };
        for (const k of ["iss", "sub", "sid", "src", "aud", "iat", "exp", "auth_time", "dv", "dh"]) assertion[k] = payload[k];
      } catch (e) {
        if (!(e instanceof EdgeSessionError)) throw e;
        assertion.detail = e.message;
        status = e.status;
      }
    }

    const sd = sessionData(h);
    if (requireAssertion) {
      // A guest (GUEST_PATHS): a session with data and no user; never signed in.
      if (verified?.guest === true) return { user: null, guest: true, claims: null, source: verified.src, assertion, ...sd };
      if (verified) return { user: verified.sub, claims: verified.claims ?? null, source: verified.src, assertion, ...sd };
      const anonymous = { user: null, claims: null, source: null, assertion, ...sd };
      return carries ? { ...anonymous, error: assertion.detail, status } : anonymous;
    }
    // Without a user but with a source: a guest (the worker sends no X-Session-User for one).
    if (rawUser === undefined) return { user: null, guest: h["x-session-source"] !== undefined, claims: null, source: h["x-session-source"] ?? null, assertion, ...sd };
    if (headerUser === null) return { user: null, claims: null, source: null, assertion, ...sd, error: "X-Session-User is not valid percent-encoded UTF-8", status: 400 };
    let claims = null;
    try {
      const parsed = JSON.parse(h["x-session-claims"]);
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) claims = parsed;
    } catch {
      /* absent or not JSON: null */
    }
    return { user: headerUser, claims, source: h["x-session-source"] ?? null, assertion, ...sd };
  }

  // The answer to a request refused for its identity: JSON for APIs, a page for browser navigations.
  function refuseIdentity(req, res, who, path) {
    const status = who.status ?? 401;
    const error = status === 503 ? "assertion_keys_unavailable" : status === 400 ? "bad_identity_header" : "invalid_assertion";
    const isGet = req.method === "GET" || req.method === "HEAD";
    if (isGet && !path.startsWith("/api/") && /text\/html/.test(req.headers.accept ?? "")) {
      return sendHtml(res, status, assertionErrorPage(ctx, status, who.error ?? who.assertion.detail));
    }
    return sendJson(res, status, { error, detail: who.error ?? who.assertion.detail }, status === 503 ? { "Retry-After": "5" } : {});
  }

  // ------------------------------------------------------------ routes

  async function handleLogin(req, res, url) {
    const form = new URLSearchParams((await readBody(req, MAX_SMALL_BODY)).toString("utf8"));
    const username = (form.get("username") ?? "").normalize("NFC");
    const password = form.get("password") ?? "";
    const returnTo = safeReturnTo(form.get("return_to")) ?? safeReturnTo(url.searchParams.get("return_to"));
    const account = Object.prototype.hasOwnProperty.call(DEMO_USERS, username) ? DEMO_USERS[username] : null;
    if (!account || !tokenMatches(password, account.password)) {
      return sendHtml(res, 401, loginPage(ctx, { returnTo, username, error: "Wrong username or password." }));
    }
    const target = returnTo ?? "/dashboard";
    if (mode === "edge") {
      return redirect(res, target, {
        // Percent-encoded UTF-8 (Node refuses header values beyond Latin-1); the worker decodes it.
        "X-Edge-Session-Login": encodeUserHeader(username),
        "X-Edge-Session-Claims": asciiJson(account.claims),
      });
    }
    const old = parseCookies(req.headers.cookie)[sessionCookie];
    if (old) store.delete(old); // no fixation: a login always gets a fresh id
    const id = sessions.create(username, account.claims);
    return redirect(res, target, { "Set-Cookie": `${sessionCookie}=${id}; Path=/; HttpOnly; SameSite=Lax` });
  }

  async function handleLogout(req, res) {
    await readBody(req, MAX_SMALL_BODY);
    if (mode === "edge") return redirect(res, "/", { "X-Edge-Session-Logout": "1" });
    const id = parseCookies(req.headers.cookie)[sessionCookie];
    if (id) store.delete(id);
    return redirect(res, "/", { "Set-Cookie": `${sessionCookie}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax` });
  }

  // The fields of a session without data stay exactly as they were; with data, `data` and
  // `data_version` are added (`data_status` when the worker could not read it, or it is not JSON).
  function handleMe(req, res, who) {
    if (who.user === null) return sendJson(res, 401, { error: "no identity" });
    const body = { user: who.user, claims: who.claims, source: who.source, instance: ctx.name };
    if (who.dataStatus === "ok") Object.assign(body, { data: who.data, data_version: who.dataVersion });
    else if (who.dataStatus === "unavailable" || who.dataStatus === "invalid") {
      body.data_status = who.dataStatus;
      if (who.dataVersion !== null) body.data_version = who.dataVersion;
    }
    return sendJson(res, 200, body);
  }

  // The dashboard. A flash message in session data is shown once: the page that shows
  // it removes it, with a patch in its own response.
  function handleDashboard(req, res, who) {
    const flash = who.user !== null && who.dataStatus === "ok" && Object.prototype.hasOwnProperty.call(who.data, "flash") ? who.data.flash : undefined;
    // (A HEAD request shows nothing: the flash stays for the GET.)
    const headers = flash === undefined || req.method !== "GET" ? {} : { "X-Edge-Session-Data": asciiJson({ flash: null }) };
    return sendHtml(res, 200, dashboardPage(ctx, req, who, { flash }), headers);
  }

  // The reading list: POST /reading-list (title) adds an item, POST /reading-list/remove (id)
  // removes one; both answer 303 (Post/Redirect/Get) with an X-Edge-Session-Data patch, to
  // /dashboard for a signed-in user and to /reading for a visitor (GUEST_PATHS: in edge mode
  // the worker makes a guest session of a visitor's first add, and keeps the list through
  // sign-in). Each item has its own key, so adds in flight together (two tabs, two servers)
  // all keep theirs. The site stores nothing itself.
  const readingHome = (who) => (who.user === null ? "/reading" : "/dashboard");

  async function handleReadingAdd(req, res, who) {
    const form = new URLSearchParams((await readBody(req, MAX_SMALL_BODY)).toString("utf8"));
    // Attach mode: the site's visitors have no session at the edge (the worker makes no guests).
    if (who.user === null && mode === "attach") return refuseNoIdentity(req, res);
    if (who.dataStatus === "unavailable") return readingUnavailable(res);
    const title = cleanTitle(form.get("title"));
    const home = readingHome(who);
    const back = (flash) => redirect(res, home, { "X-Edge-Session-Data": asciiJson({ flash }) });
    if (title === null) return back("Not saved: the title is empty.");
    if ([...title].length > MAX_TITLE) return back(`Not saved: a title is at most ${MAX_TITLE} characters.`);
    const data = who.dataStatus === "ok" ? who.data : {};
    if (readingList(data).length >= MAX_ITEMS) return back(`Not saved: the list holds at most ${MAX_ITEMS} items; remove one first.`);
    // Distinct keys for adds in flight together; the time in front keeps the list in order
    // when several items share the same second.
    const key = READING_PREFIX + Date.now().toString(36) + randomBytes(4).toString("hex");
    const patch = { [key]: { title, added_by: ctx.name, at: nowSec() }, flash: "Saved" };
    // The worker refuses (502) a patch whose result is over SESSION_DATA_LIMIT bytes,
    // counted as the X-Session-Data value: say so here instead.
    if (Buffer.byteLength(asciiJson({ ...data, ...patch })) > dataLimit) {
      return back("Not saved: the reading list is full (session data is kept small); remove an item first.");
    }
    return redirect(res, home, { "X-Edge-Session-Data": asciiJson(patch) });
  }

  async function handleReadingRemove(req, res, who) {
    const form = new URLSearchParams((await readBody(req, MAX_SMALL_BODY)).toString("utf8"));
    if (who.user === null && !who.guest) return refuseNoIdentity(req, res);
    if (who.dataStatus === "unavailable") return readingUnavailable(res);
    const id = form.get("id") ?? "";
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) return sendHtml(res, 400, messagePage(ctx, 400, "Bad request", "That is not an item of your reading list."));
    return redirect(res, readingHome(who), { "X-Edge-Session-Data": asciiJson({ [READING_PREFIX + id]: null, flash: "Removed" }) });
  }

  // The reading list without signing in (GUEST_PATHS): a visitor's, a guest's or a user's.
  // A flash is shown once, as on the dashboard.
  function handleReading(req, res, who) {
    const flash = who.dataStatus === "ok" && Object.prototype.hasOwnProperty.call(who.data, "flash") ? who.data.flash : undefined;
    const headers = flash === undefined || req.method !== "GET" ? {} : { "X-Edge-Session-Data": asciiJson({ flash: null }) };
    return sendHtml(res, 200, readingPage(ctx, who, { flash }), headers);
  }

  function readingUnavailable(res) {
    return sendHtml(res, 503, messagePage(ctx, 503, "Not saved", "Your reading list cannot be changed right now: the session store is not answering. Try again in a moment."), { "Retry-After": "5" });
  }

  function refuseNoIdentity(req, res) {
    return sendJson(res, 401, { error: "no identity" });
  }

  // Polled by the pages' idle countdown. Listed in PASSIVE_PATHS (make dev), so polling
  // does not keep the session alive; the countdown reads the worker's
  // X-Edge-Session-Idle-Left header on this response.
  function handleStatus(req, res, who) {
    if (who.user === null) return sendJson(res, 401, { error: "no identity" });
    return sendJson(res, 200, { user: who.user, source: who.source, instance: ctx.name });
  }

  // The X-Session-Assertion as this site checked it (/api/me keeps its exact shape).
  function handleAssertion(req, res, who) {
    if (who.user === null && !who.assertion.present) return sendJson(res, 401, { error: "no identity" });
    return sendJson(res, 200, { user: who.user, required: requireAssertion, ...who.assertion, instance: ctx.name });
  }

  async function handleLookup(req, res) {
    stats.lookups++;
    const auth = req.headers.authorization ?? "";
    const m = /^Bearer +(.+)$/i.exec(auth);
    if (!lookupToken || !m || !tokenMatches(m[1].trim(), lookupToken)) {
      await readBody(req, MAX_SMALL_BODY).catch(() => {});
      return sendJson(res, 401, { error: "unauthorized" }, { "WWW-Authenticate": "Bearer" });
    }
    let sessionId;
    try {
      const raw = (await readBody(req, MAX_SMALL_BODY)).toString("utf8");
      lastLookup = { authorization: auth, contentType: req.headers["content-type"] ?? null, url: req.url, path: req.url.split("?")[0], body: raw };
      const body = JSON.parse(raw);
      sessionId = body?.session_id;
    } catch (e) {
      if (e instanceof HttpError) throw e;
    }
    if (typeof sessionId !== "string" || sessionId === "") return sendJson(res, 400, { error: "bad_request" });

    if (delayMs > 0) await sleep(delayMs);
    if (closing) return;
    switch (behaviour) {
      case "hang":
        await hangUntilClose();
        return;
      case "error500":
        return sendJson(res, 500, { error: "internal" });
      case "badjson":
        res.writeHead(200, { "Content-Type": "application/json", "Content-Length": 8, "Cache-Control": "no-store" });
        return res.end("not json");
      case "notfound":
        stats.lookupMisses++;
        return sendJson(res, 404, { error: "not_found" });
    }
    const rec = store.get(sessionId);
    if (!rec || typeof rec.user !== "string" || rec.user === "") {
      stats.lookupMisses++;
      return sendJson(res, 404, { error: "not_found" });
    }
    stats.lookupHits++;
    // Answer with what the site knew before this lookup, then count the lookup as use.
    const answer = { user: rec.user };
    if (rec.claims && typeof rec.claims === "object") answer.claims = rec.claims;
    if (rec.created !== undefined) answer.created = rec.created;
    if (rec.last_seen !== undefined) answer.last_seen = rec.last_seen;
    rec.last_seen = nowSec();
    store.put(sessionId, rec);
    return sendJson(res, 200, answer);
  }

  async function handleEcho(req, res, url) {
    const body = await readBody(req, MAX_BODY);
    const q = url.searchParams;

    let status = 200;
    if (q.has("status")) {
      const s = Number(q.get("status"));
      // 1xx are interim responses: a client would keep waiting for the real one.
      if (!Number.isInteger(s) || s < 200 || s > 599) return sendJson(res, 400, { error: "status must be 200..599" });
      status = s;
    }
    const extra = {};
    for (const spec of q.getAll("set_header")) {
      const colon = spec.indexOf(":");
      const hname = (colon < 0 ? "" : spec.slice(0, colon)).trim();
      const hvalue = colon < 0 ? "" : spec.slice(colon + 1).trim();
      try {
        http.validateHeaderName(hname);
        http.validateHeaderValue(hname, hvalue);
      } catch {
        return sendJson(res, 400, { error: `bad set_header: ${spec}` });
      }
      (extra[hname.toLowerCase()] ??= []).push(hvalue);
    }
    const cookies = q.getAll("set_cookie");
    for (const c of cookies) {
      try {
        http.validateHeaderValue("set-cookie", c);
      } catch {
        return sendJson(res, 400, { error: `bad set_cookie: ${c}` });
      }
    }
    for (const [k, v] of Object.entries(extra)) res.setHeader(k, v.length === 1 ? v[0] : v);
    if (cookies.length) res.appendHeader("Set-Cookie", cookies);

    if (q.has("stream")) {
      const n = Math.min(Math.max(parseInt(q.get("stream"), 10) || 0, 0), MAX_STREAM_CHUNKS);
      res.statusCode = status;
      if (!res.hasHeader("content-type")) res.setHeader("Content-Type", "text/plain; charset=utf-8");
      res.setHeader("Cache-Control", "no-store");
      res.flushHeaders();
      for (let i = 0; i < n; i++) {
        if (i > 0) await sleep(STREAM_INTERVAL_MS);
        if (closing || res.destroyed) return;
        res.write(`chunk ${i}\n`);
      }
      return res.end();
    }

    const headers = {};
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const k = req.rawHeaders[i].toLowerCase();
      const v = req.rawHeaders[i + 1];
      headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
    }
    const qi = req.url.indexOf("?");
    const payload = JSON.stringify({
      method: req.method,
      path: url.pathname,
      query: qi < 0 ? "" : req.url.slice(qi + 1),
      headers,
      body: body.toString("utf8"),
      bodyBase64: body.toString("base64"),
      instance: ctx.name,
    });
    res.statusCode = status;
    if (status === 204 || status === 304) return res.end(); // no body allowed
    if (!res.hasHeader("content-type")) res.setHeader("Content-Type", "application/json; charset=utf-8");
    res.setHeader("Content-Length", Buffer.byteLength(payload));
    res.end(payload);
  }

  async function handleControl(req, res) {
    let patch;
    try {
      patch = JSON.parse((await readBody(req, MAX_SMALL_BODY)).toString("utf8") || "{}");
    } catch (e) {
      if (e instanceof HttpError) throw e;
      return sendJson(res, 400, { error: "body must be a JSON object" });
    }
    if (!patch || typeof patch !== "object" || Array.isArray(patch)) return sendJson(res, 400, { error: "body must be a JSON object" });
    try {
      for (const [k, v] of Object.entries(patch)) {
        if (k === "lookupBehaviour") control.lookupBehaviour = v;
        else if (k === "lookupDelayMs") control.lookupDelayMs = v;
        else if (k === "resetStats") {
          if (v) for (const key of Object.keys(stats)) stats[key] = 0;
        } else throw new Error(`unknown control key: ${k}`);
      }
    } catch (e) {
      return sendJson(res, 400, { error: e.message });
    }
    return sendJson(res, 200, control);
  }

  const methodNotAllowed = (res, allow) =>
    sendHtml(res, 405, methodNotAllowedPage(ctx, allow), { Allow: allow });

  // Routes that act on or show the identity: with requireAssertion, 401 without a valid assertion.
  // (The reading list's forms also serve visitors and guests: they decide for themselves.)
  const IDENTITY_ROUTES = new Set(["/dashboard", "/sessions", "/api/me", "/api/assertion", "/api/session-status", "/ws"]);

  async function route(req, res) {
    const url = new URL(req.url, "http://origin.invalid");
    const path = url.pathname;
    const m = req.method;
    const isGet = m === "GET" || m === "HEAD";

    const who = await identify(req);
    // With requireAssertion, a request carrying identity headers that do not hold up is
    // refused on every route, and identity routes also refuse a request without any.
    // Without it, only identity routes refuse an X-Session-User that cannot be decoded.
    if (requireAssertion ? who.error || (who.user === null && IDENTITY_ROUTES.has(path)) : who.error && IDENTITY_ROUTES.has(path)) {
      return refuseIdentity(req, res, who, path);
    }

    if (path === "/echo" || path.startsWith("/echo/")) return handleEcho(req, res, url);
    switch (path) {
      case "/":
        return isGet ? sendHtml(res, 200, homePage(ctx)) : methodNotAllowed(res, "GET, HEAD");
      case "/login":
        if (isGet) {
          const returnTo = safeReturnTo(url.searchParams.get("return_to"));
          return sendHtml(res, 200, loginPage(ctx, { returnTo, reason: url.searchParams.get("reason") }));
        }
        return m === "POST" ? handleLogin(req, res, url) : methodNotAllowed(res, "GET, HEAD, POST");
      case "/dashboard":
        return isGet ? handleDashboard(req, res, who) : methodNotAllowed(res, "GET, HEAD");
      case "/reading":
        return isGet ? handleReading(req, res, who) : methodNotAllowed(res, "GET, HEAD");
      case "/reading-list":
        return m === "POST" ? handleReadingAdd(req, res, who) : methodNotAllowed(res, "POST");
      case "/reading-list/remove":
        return m === "POST" ? handleReadingRemove(req, res, who) : methodNotAllowed(res, "POST");
      case "/sessions":
        return isGet ? sendHtml(res, 200, sessionsPage(ctx, who)) : methodNotAllowed(res, "GET, HEAD");
      case "/api/me":
        return isGet ? handleMe(req, res, who) : methodNotAllowed(res, "GET, HEAD");
      case "/api/session-status":
        return isGet ? handleStatus(req, res, who) : methodNotAllowed(res, "GET, HEAD");
      case "/api/assertion":
        return isGet ? handleAssertion(req, res, who) : methodNotAllowed(res, "GET, HEAD");
      case "/logout":
        return m === "POST" ? handleLogout(req, res) : methodNotAllowed(res, "POST");
      case "/api/session-lookup":
        return m === "POST" ? handleLookup(req, res) : sendJson(res, 405, { error: "method_not_allowed" }, { Allow: "POST" });
      case "/__demo/stats":
        return isGet ? sendJson(res, 200, stats) : methodNotAllowed(res, "GET, HEAD");
      case "/__demo/control":
        if (isGet) return sendJson(res, 200, control);
        return m === "POST" ? handleControl(req, res) : methodNotAllowed(res, "GET, HEAD, POST");
    }
    return sendHtml(res, 404, notFoundPage(ctx, path));
  }

  const server = http.createServer(async (req, res) => {
    stats.requests++;
    res.setHeader("X-Served-By", ctx.name);
    try {
      await route(req, res);
    } catch (e) {
      if (res.headersSent) return res.destroy();
      const status = e instanceof HttpError ? e.status : 500;
      if (status === 500) console.error(`origin ${ctx.name}:`, e);
      sendJson(res, status, { error: status === 500 ? "internal" : e.message }, status === 413 ? { Connection: "close" } : {});
    }
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  // `/ws`: a WebSocket that answers each text message with "<user>: <message>",
  // where <user> is the X-Session-User the worker attached to the upgrade request.
  server.on("upgrade", async (req, socket) => {
    stats.requests++;
    // An upgraded socket is ours: a peer that resets it must not crash the server.
    socket.on("error", () => socket.destroy());
    const key = req.headers["sec-websocket-key"];
    if (req.url.split("?")[0] !== "/ws" || !key || String(req.headers.upgrade).toLowerCase() !== "websocket") {
      socket.end(`HTTP/1.1 400 Bad Request\r\nX-Served-By: ${ctx.name}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    let who;
    try {
      who = await identify(req);
    } catch (e) {
      console.error(`origin ${ctx.name}:`, e);
      who = { user: null, assertion: { detail: "internal error" }, error: "internal error", status: 500 };
    }
    if (who.error || (requireAssertion && who.user === null)) {
      const status = who.status ?? 401;
      const reason = { 400: "Bad Request", 401: "Unauthorized", 500: "Internal Server Error", 503: "Service Unavailable" }[status];
      const error = { 400: "bad_identity_header", 401: "invalid_assertion", 500: "internal", 503: "assertion_keys_unavailable" }[status];
      const body = JSON.stringify({ error, detail: who.error ?? who.assertion.detail });
      socket.end(
        `HTTP/1.1 ${status} ${reason}\r\nX-Served-By: ${ctx.name}\r\nContent-Type: application/json; charset=utf-8\r\n` +
          `Cache-Control: no-store\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      return;
    }
    if (closing || socket.destroyed) return;
    const accept = createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${accept}\r\nX-Served-By: ${ctx.name}\r\n\r\n`,
    );
    const user = who.user ?? "anonymous";
    let buf = Buffer.alloc(0);
    socket.on("data", (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      // client frames are masked; small (< 126 bytes) frames are enough for the demo
      while (buf.length >= 6) {
        const opcode = buf[0] & 0x0f;
        const len = buf[1] & 0x7f;
        if (len >= 126 || buf.length < 6 + len) break;
        const mask = buf.subarray(2, 6);
        const payload = Buffer.from(buf.subarray(6, 6 + len)).map((b, i) => b ^ mask[i % 4]);
        buf = buf.subarray(6 + len);
        if (opcode === 0x8) {
          socket.end(Buffer.from([0x88, 0x00]));
          return;
        }
        if (opcode !== 0x1) continue;
        const reply = Buffer.from(`${user}: ${payload.toString("utf8")}`);
        if (reply.length < 126) socket.write(Buffer.concat([Buffer.from([0x81, reply.length]), reply]));
      }
    });
  });
  server.on("clientError", (err, socket) => {
    if (socket.writable) socket.end(`HTTP/1.1 400 Bad Request\r\nX-Served-By: ${ctx.name}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    else socket.destroy();
  });

  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const actualPort = server.address().port;

  let closed = null;
  function close() {
    if (closed) return closed;
    closing = true;
    closed = new Promise((resolve) => {
      server.close(() => resolve());
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const release of hangs) release();
      hangs.clear();
      for (const s of sockets) s.destroy();
      sockets.clear();
    });
    return closed;
  }

  return {
    url: `http://127.0.0.1:${actualPort}`,
    port: actualPort,
    name: ctx.name,
    mode,
    close,
    stats,
    sessions,
    control,
    get lastLookup() {
      return lastLookup;
    },
    requireAssertion,
  };
}
