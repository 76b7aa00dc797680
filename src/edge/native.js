// The few things the wasm asks of the platform on every request, each done in one call
// instead of one web_sys call per header (every call into JavaScript and every string
// copied across costs more than the work itself). These functions only move values: what
// to read, what to remove or set, and why, is decided in Rust (src/edge/js.rs and the
// modules it serves). `Plain` too only looks for the headers the wasm named and applies the
// edits it planned.
//
// Lists travel as one string, items separated by "\n", which no header name or value can
// contain (the Headers class refuses CR, LF and NUL); an absent header is "\0". One string
// per call, not one per list: each string that crosses is decoded or encoded on its own.

const ABSENT = "\0";

// Each list of names is split once per isolate (the wasm passes the same string each time).
const splitNames = new Map();

function namesOf(names) {
  let list = splitNames.get(names);
  if (list === undefined) splitNames.set(names, (list = names.split("\n")));
  return list;
}

function valuesOf(headers, names) {
  let out = "";
  for (const name of namesOf(names)) {
    const value = headers.get(name);
    out += (value === null ? ABSENT : value) + "\n";
  }
  return out;
}

/** The method, the URL, then each header's name and value, as the Headers class gives
 *  them (names in lower case, a repeated header's values joined): one pass over them. */
export function head(request) {
  let out = request.method + "\n" + request.url + "\n";
  for (const [name, value] of request.headers) out += name + "\n" + value + "\n";
  return out;
}

/** The values of `names`, then each Set-Cookie on its own. */
export function signals(response, names) {
  const headers = response.headers;
  let out = valuesOf(headers, names);
  for (const cookie of headers.getSetCookie()) out += cookie + "\n";
  return out;
}

/** Applies `edits` to `headers`, in order: one list whose items are "-name" (delete),
 *  "=name" then the value (set), "?name" then the value (set where there is none), "+name"
 *  then the value (append). */
function edit(headers, edits) {
  if (edits === "") return headers;
  const items = edits.split("\n");
  for (let i = 0; i < items.length; i++) {
    const op = items[i];
    const name = op.slice(1);
    if (op[0] === "-") headers.delete(name);
    else if (op[0] === "=") headers.set(name, items[++i]);
    else if (op[0] === "?") {
      const value = items[++i];
      if (!headers.has(name)) headers.set(name, value);
    } else headers.append(name, items[++i]);
  }
  return headers;
}

/** A copy of `headers` (a response's own are immutable) with `edits` applied (`edit`). */
export function edited(headers, edits) {
  return edit(new Headers(headers), edits);
}

/** The origin's response with its headers edited as `edit` does: body streamed, status
 *  and status text kept, and a WebSocket the origin accepted passed on. */
export function passOn(upstream, edits) {
  const webSocket = upstream.webSocket;
  if (webSocket) {
    const { status, statusText } = upstream;
    return new Response(upstream.body, { status, statusText, headers: edited(upstream.headers, edits), webSocket });
  }
  // Status, status text and a copy of the headers in one call; the copy is the new response's own.
  const response = new Response(upstream.body, upstream);
  edit(response.headers, edits);
  return response;
}

/** The synchronous path's forward, as src/edge/entry-core.mjs runs it: the request
 *  `handle` names in the wasm, the request's headers edited as `edited` does, the URLs to
 *  try in order (a list), whether it bypasses the cache (an identified request), and the
 *  response to make of a plain answer (a `Plain`, or undefined). */
export function plan(handle, request, edits, urls, noStore, plain) {
  return { handle, headers: edited(request.headers, edits), urls: urls.split("\n"), noStore, plain };
}

/** The response to an origin's plain answer, planned by the wasm with its decision, before
 *  the forward (src/edge/quick.rs): an answer is plain when it holds none of the headers
 *  `watched` names (a list: the session signals and Set-Cookie), and then the response is
 *  the answer with `edits` applied (`edit`) and a Server-Timing of `timing` followed by the
 *  milliseconds since `started`. Any other answer goes back to the wasm (respondNow). */
class Plain {
  constructor(edits, timing, started, watched) {
    this.edits = edits;
    this.timing = timing;
    this.started = started;
    this.watched = namesOf(watched);
  }

  /** Whether `upstream` is a plain answer. */
  fits(upstream) {
    const headers = upstream.headers;
    for (const name of this.watched) if (headers.has(name)) return false;
    return true;
  }

  /** The response to the plain answer `upstream`. */
  passOn(upstream) {
    const timing = this.timing + Math.max(0, Date.now() - this.started);
    return passOn(upstream, (this.edits === "" ? "" : this.edits + "\n") + "+Server-Timing\n" + timing);
  }
}

export function plain(edits, timing, started, watched) {
  return new Plain(edits, timing, started, watched);
}

/** The synchronous path's KV read, as src/edge/entry-core.mjs runs it: `key` read from the
 *  namespace `kv`, a read slower than `timeout` ms counting as failed, for the request
 *  `handle` names in the wasm (handed back with the outcome). */
export function readPlan(handle, key, kv, timeout) {
  return { handle, read: key, kv, timeout };
}

/** The synchronous path's lookup, as src/edge/entry-core.mjs runs it: `body` posted with
 *  the headers `edits` make (`edit`, over none) to each of `urls` (a list) in turn until one
 *  answers, a lookup slower than `timeout` ms counting as failed and an answer over `limit`
 *  bytes as too large, for the request `handle` names in the wasm. */
export function lookupPlan(handle, urls, edits, body, timeout, limit) {
  return { handle, lookup: urls.split("\n"), headers: edit(new Headers(), edits), body, timeout, limit };
}

/** The synchronous path's read of a session's object, as src/edge/entry-core.mjs runs it:
 *  `url` fetched from the object `name` names in the namespace `states`, a read slower than
 *  `timeout` ms counting as failed and an answer over `limit` bytes as too large, for the
 *  request `handle` names in the wasm (handed back with the outcome). */
export function askPlan(handle, states, name, url, timeout, limit) {
  return { handle, ask: url, states, name, timeout, limit };
}

/** What a session's object does with one request (src/edge/state.rs `serve_state`): the
 *  status and body of its answer, and the state to store then the alarm to set, when
 *  they are due (undefined when not). */
export function served(status, reply, store, alarm) {
  return { status, reply, store, alarm };
}

/** A body's text, read no further than `limit` bytes: null past it (the rest is cancelled). */
export async function limitedText(body, limit) {
  if (body === null) return "";
  const reader = body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return new TextDecoder().decode(bytes);
}
