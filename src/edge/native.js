// The few things the wasm asks of the platform on every request, each done in one call
// instead of one web_sys call per header (every call into JavaScript and every string
// copied across costs more than the work itself). These functions only move values: what
// to read, what to remove or set, and why, is decided in Rust (src/edge/js.rs and the
// modules it serves).
//
// Lists travel as one string, items separated by "\n", which no header name or value can
// contain (the Headers class refuses CR, LF and NUL); an absent header is "\0".

const ABSENT = "\0";

// Each list of names is split once per isolate (the wasm passes the same string each time).
const splitNames = new Map();

function valuesOf(headers, names) {
  let list = splitNames.get(names);
  if (list === undefined) splitNames.set(names, (list = names.split("\n")));
  let out = "";
  for (const name of list) {
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

function pairs(list, each) {
  if (list === "") return;
  const items = list.split("\n");
  for (let i = 0; i + 1 < items.length; i += 2) each(items[i], items[i + 1]);
}

/** A copy of `headers` (a response's own are immutable) with the names in `remove`
 *  deleted, then the name/value pairs of `set` set and those of `append` appended. */
export function edited(headers, remove, set, append) {
  const out = new Headers(headers);
  if (remove !== "") for (const name of remove.split("\n")) out.delete(name);
  pairs(set, (name, value) => out.set(name, value));
  pairs(append, (name, value) => out.append(name, value));
  return out;
}

/** The origin's response with its headers edited as `edited` does: body streamed, status
 *  and status text kept, and a WebSocket the origin accepted passed on. */
export function passOn(upstream, remove, set, append) {
  const headers = edited(upstream.headers, remove, set, append);
  const init = { status: upstream.status, statusText: upstream.statusText, headers };
  if (upstream.webSocket) init.webSocket = upstream.webSocket;
  return new Response(upstream.body, init);
}

/** The synchronous path's forward, as src/edge/entry-core.mjs runs it: the request
 *  `handle` names in the wasm, the request's headers edited as `edited` does, the URLs to
 *  try in order (a list), and whether it bypasses the cache (an identified request). */
export function plan(handle, request, remove, set, append, urls, noStore) {
  return { handle, headers: edited(request.headers, remove, set, append), urls: urls.split("\n"), noStore };
}

/** The synchronous path's KV read, as src/edge/entry-core.mjs runs it: `key` read from the
 *  namespace `kv`, a read slower than `timeout` ms counting as failed, for the request
 *  `handle` names in the wasm (handed back with the outcome). */
export function readPlan(handle, key, kv, timeout) {
  return { handle, read: key, kv, timeout };
}
