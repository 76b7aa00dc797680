// The floor of a Worker that reads KV once per request: the JS passthrough
// (bench/workers/passthrough.mjs) after one read of a session-sized record from SESSIONS,
// parsed as any session layer would. The first request writes the record; every request
// after it reads a key that is there, as the KV path and the peer do. What reading KV once
// costs any Worker, before it does anything with the session.
const KEY = "bench:floor-record";
const RECORD = JSON.stringify({
  user: "alice",
  claims: { name: "Alice", role: "admin" },
  created: 1767225600000,
  last_seen: 1767225600000,
  version: 1,
  note: "a record of about the size of a session's",
});

export default {
  async fetch(req, env) {
    let value = await env.SESSIONS.get(KEY);
    if (value === null) {
      await env.SESSIONS.put(KEY, RECORD);
      value = RECORD;
    }
    if (JSON.parse(value).user !== "alice") return new Response("bad record", { status: 500 });
    const url = new URL(req.url);
    const origin = new URL(env.ORIGIN_URL);
    url.protocol = origin.protocol;
    url.host = origin.host;
    return fetch(new Request(url, req));
  },
};
