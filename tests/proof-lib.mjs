// Helpers for the "prove it" tests (issue 9): tickets minted with the worker's own key
// (to put a ticket in any state without waiting), raw HTTP requests (bytes that fetch
// refuses to send), and small origins that misbehave on purpose.
import http from "node:http";
import net from "node:net";
import { createHmac } from "node:crypto";
import { sha256hex } from "./harness.mjs";

export const TICKET_COOKIE = "__Host-edge-ticket";

/** The key a worker signs tickets with: its SESSION_KEYS setting's first `kid:base64`. */
export function signingKey(edge) {
  const [first] = edge.bindings.SESSION_KEYS.split(",");
  const i = first.indexOf(":");
  return { kid: first.slice(0, i), secret: Buffer.from(first.slice(i + 1), "base64") };
}

/** The MAC of a ticket payload, exactly as README's "Ticket format" defines it. */
export function ticketMac(secret, cookie, kid, payload, version = "v1") {
  return createHmac("sha256", secret).update(`edge-session-ticket\n${version}\n${cookie}\n${kid}\n${payload}`).digest("base64url");
}

/**
 * A ticket for session `sid`, sealed as the worker seals it. `fields` override the
 * payload ({u, c, cr, ls, va, o} with times in unix ms); `raw` replaces the payload JSON.
 */
export function mintTicket(edge, sid, fields = {}, { cookie = TICKET_COOKIE, kid, secret, raw, version = "v1" } = {}) {
  const key = signingKey(edge);
  kid ??= key.kid;
  secret ??= key.secret;
  const now = Date.now();
  const body = { h: sha256hex(sid), u: "alice", cr: now - 60_000, ls: now - 1_000, va: now, o: "edge", ...fields };
  for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
  const payload = Buffer.from(raw ?? JSON.stringify(body)).toString("base64url");
  return `${version}.${kid}.${payload}.${ticketMac(secret, cookie, kid, payload, version)}`;
}

/** A KV record as the worker writes it (times in unix ms). */
export function record(user, { claims, created, lastSeen, origin = "edge", verifiedAt } = {}) {
  const now = Date.now();
  const r = { user, created: created ?? now - 60_000, last_seen: lastSeen ?? now - 1_000, origin, verified_at: verifiedAt ?? now - 1_000 };
  if (claims) r.claims = claims;
  return r;
}

let counter = 0;
/** A fresh plausible session ID (cookie-octets only). */
export const newSid = (tag = "s") => `${tag}-${process.pid}-${Date.now().toString(36)}-${(counter++).toString(36)}-${Math.random().toString(36).slice(2, 10)}`;

/**
 * Sends raw bytes to `url` (the worker's own address) and reads the response until the
 * peer closes. Returns { status, headers: [[name, value]...], header(name), body: Buffer }
 * or { error } when the connection failed or no status line came back.
 */
export function rawRequest(url, bytes, { timeoutMs = 8000 } = {}) {
  const u = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(u.port), u.hostname);
    const chunks = [];
    let done = false;
    const finish = (extra = {}) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parseResponse(Buffer.concat(chunks)), ...extra });
    };
    const timer = setTimeout(() => finish({ timedOut: true }), timeoutMs);
    socket.on("connect", () => socket.write(bytes));
    socket.on("data", (c) => {
      chunks.push(c);
      // a complete response with Content-Length: stop without waiting for the close
      const r = parseResponse(Buffer.concat(chunks));
      if (r.complete) finish();
    });
    socket.on("end", () => finish());
    socket.on("error", (e) => finish({ socketError: e.code || e.message }));
  });
}

function parseResponse(buf) {
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) return { status: 0, headers: [], header: () => null, body: Buffer.alloc(0), error: buf.length ? "no header end" : "no response" };
  const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
  const status = Number(lines[0].split(" ")[1]);
  const headers = lines.slice(1).map((l) => {
    const i = l.indexOf(":");
    return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()];
  });
  const header = (name) => {
    const all = headers.filter(([k]) => k === name.toLowerCase()).map(([, v]) => v);
    return all.length ? all.join(", ") : null;
  };
  let body = buf.subarray(end + 4);
  let complete = false;
  const length = header("content-length");
  if (length !== null) {
    complete = body.length >= Number(length);
    body = body.subarray(0, Number(length));
  } else if (/chunked/i.test(header("transfer-encoding") || "")) {
    const out = [];
    let rest = body;
    for (;;) {
      const nl = rest.indexOf("\r\n");
      if (nl < 0) break;
      const size = parseInt(rest.subarray(0, nl).toString(), 16);
      if (!Number.isFinite(size)) break;
      if (size === 0) {
        complete = true;
        break;
      }
      if (rest.length < nl + 2 + size + 2) break;
      out.push(rest.subarray(nl + 2, nl + 2 + size));
      rest = rest.subarray(nl + 2 + size + 2);
    }
    body = Buffer.concat(out);
  } else if (status === 204 || status === 304 || (status >= 100 && status < 200)) {
    complete = true;
  }
  return { status, headers, header, body, complete, getSetCookie: () => headers.filter(([k]) => k === "set-cookie").map(([, v]) => v) };
}

/** A raw GET (or other method) with the given header lines; `path` is sent as written. */
export function rawGet(url, path, headerLines = [], { method = "GET", body = null } = {}) {
  const u = new URL(url);
  const head = [`${method} ${path} HTTP/1.1`, `Host: ${u.host}`, "Connection: close", ...headerLines];
  const parts = [Buffer.from(head.join("\r\n") + "\r\n", "latin1")];
  if (body !== null) parts.push(Buffer.from(`Content-Length: ${Buffer.byteLength(body)}\r\n`, "latin1"));
  parts.push(Buffer.from("\r\n"));
  if (body !== null) parts.push(Buffer.from(body));
  return rawRequest(url, Buffer.concat(parts));
}

/**
 * A small origin on 127.0.0.1 whose answers a test chooses: `handler(req, res, body)`
 * (async) answers every request. Every request it sees is recorded in `seen`
 * ({method, path, headers}), so a test can tell what reached it.
 */
export async function startOddOrigin(handler) {
  const seen = [];
  const sockets = new Set();
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    seen.push({ method: req.method, path: req.url, headers: req.headers, body: body.toString("utf8") });
    try {
      await handler(req, res, body);
    } catch (e) {
      if (!res.headersSent) {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end(String(e));
      } else res.destroy();
    }
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    seen,
    close: () =>
      new Promise((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
      }),
  };
}

/** The echo answer of an odd origin: what reached it, as JSON. */
export function echoJson(req, res, body) {
  const payload = JSON.stringify({ method: req.method, path: req.url, headers: req.headers, body: body.toString("utf8") });
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(payload) });
  res.end(payload);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The `{name: value}` cookies a response sets (value "" for a clearing cookie). */
export function setCookies(res) {
  const list = typeof res.headers?.getSetCookie === "function" ? res.headers.getSetCookie() : res.getSetCookie();
  const out = {};
  for (const c of list) {
    const [pair] = c.split(";");
    const eq = pair.indexOf("=");
    const clearing = /max-age=0/i.test(c) || pair.slice(eq + 1).trim() === "";
    out[pair.slice(0, eq).trim()] = clearing ? "" : pair.slice(eq + 1).trim();
  }
  return out;
}
