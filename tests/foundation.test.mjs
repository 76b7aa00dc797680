// Foundation: faithful forwarding, identity headers, configuration errors, health,
// several origins. Everything passes through public paths or a real session.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startEdge, withEdge, startOrigins, Jar, browse, login } from "./harness.mjs";

let origins, edge;

before(async () => {
  origins = await startOrigins(["a", "b"]);
  edge = await startEdge({ origins, vars: { PUBLIC_PATHS: "/,/login,/echo/public/*", LOGIN_URL: "/login" } });
});

after(async () => {
  await edge?.close();
  await Promise.all((origins || []).map((o) => o.close()));
});

test("health answers with the crate version", async () => {
  const res = await edge.fetch("/.edge-session/health");
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.ok, true);
  assert.match(body.version, /^\d+\.\d+\.\d+/);
  assert.match(res.headers.get("server-timing"), /^edge-session;desc="control";dur=\d+$/);
});

test("forwarding keeps method, path, query, headers and body, and the response unchanged", async () => {
  const jar = new Jar();
  await login(edge, jar);
  for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
    const body = JSON.stringify({ hello: "wörld", method });
    const res = await browse(edge, jar, "/echo/some/path?x=1&y=%20two&x=3&status=201&set_header=X-Custom:abc", {
      method,
      headers: { "content-type": "application/json", "x-custom-request": "kept", accept: "application/json" },
      body,
    });
    assert.equal(res.status, 201, method);
    assert.equal(res.headers.get("x-custom"), "abc");
    const echo = await res.json();
    assert.equal(echo.method, method);
    assert.equal(echo.path, "/echo/some/path");
    assert.equal(echo.query, "x=1&y=%20two&x=3&status=201&set_header=X-Custom:abc");
    assert.equal(echo.body, body);
    assert.equal(echo.headers["content-type"], "application/json");
    assert.equal(echo.headers["x-custom-request"], "kept");
    assert.equal(echo.headers["x-session-user"], "alice");
    assert.match(echo.headers["x-session-source"], /^(ticket|kv)$/);
  }
});

test("binary bodies and HEAD pass through untouched", async () => {
  const jar = new Jar();
  await login(edge, jar);
  const bytes = new Uint8Array(70_000).map((_, i) => (i * 7) % 256);
  const res = await browse(edge, jar, "/echo/bin", { method: "POST", body: bytes });
  const echo = await res.json();
  assert.deepEqual(Buffer.from(echo.bodyBase64, "base64"), Buffer.from(bytes));
  const head = await browse(edge, jar, "/echo/head", { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal((await head.arrayBuffer()).byteLength, 0);
});

test("origin redirects and error statuses reach the client as they are", async () => {
  const res = await edge.fetch("/echo/public/x?status=302&set_header=Location:/elsewhere");
  assert.equal(res.status, 302);
  assert.equal(res.headers.get("location"), "/elsewhere");
  const res2 = await edge.fetch("/echo/public/x?status=418");
  assert.equal(res2.status, 418);
  await res2.arrayBuffer();
});

test("a streamed response arrives chunk by chunk, not buffered", async () => {
  // identity encoding: a compressing client would let the runtime gather chunks
  const started = Date.now();
  const res = await edge.fetch("/echo/public/stream?stream=5", { headers: { "accept-encoding": "identity" } });
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const arrivals = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    arrivals.push(Date.now() - started);
    text += decoder.decode(value);
  }
  assert.equal(text, "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n");
  // the origin waits 20 ms between chunks: the first must arrive well before the last
  assert.ok(arrivals.length >= 3, `expected several chunks, got ${arrivals}`);
  assert.ok(arrivals.at(-1) - arrivals[0] >= 50, `chunks arrived together: ${arrivals}`);
});

test("spoofed identity headers never reach the origin", async () => {
  const spoof = {
    "X-Session-User": "admin",
    "x-session-claims": '{"role":"root"}',
    "X-Session-Source": "ticket",
    "X-Edge-Session-Login": "admin",
    "x-session-anything": "x",
  };
  const pub = await (await edge.fetch("/echo/public/spoof", { headers: spoof })).json();
  for (const name of Object.keys(pub.headers)) {
    assert.ok(!name.startsWith("x-session-") && !name.startsWith("x-edge-session-"), `${name} reached the origin`);
  }
  const jar = new Jar();
  await login(edge, jar, "bob");
  const echo = await (await browse(edge, jar, "/echo/private", { headers: spoof })).json();
  assert.equal(echo.headers["x-session-user"], "bob");
  assert.equal(echo.headers["x-session-claims"], '{"name":"Bob","role":"user"}');
  assert.equal(echo.headers["x-edge-session-login"], undefined);
  assert.equal(echo.headers["x-session-anything"], undefined);
});

test("edge mode: the origin's Cookie header has neither the ticket nor the session cookie, on any path", async () => {
  const jar = new Jar();
  await login(edge, jar);
  jar.set("theme", "dark");
  for (const path of ["/echo/cookies", "/echo/public/cookies"]) {
    const echo = await (await browse(edge, jar, path)).json();
    assert.equal(echo.headers.cookie, "theme=dark", path);
    assert.equal(echo.headers["x-session-user"], path.includes("public") ? undefined : "alice", path);
  }
  // from KV (no ticket), and with only the worker's cookies: no Cookie header at all
  jar.delete("theme");
  jar.delete("__Host-edge-ticket");
  const echo = await (await browse(edge, jar, "/echo/cookies")).json();
  assert.equal(echo.headers["x-session-source"], "kv");
  assert.equal(echo.headers.cookie, undefined);
});

test("requests are spread over several origins", async () => {
  const seen = new Set();
  for (let i = 0; i < 6; i++) {
    const res = await edge.fetch("/echo/public/who");
    seen.add(res.headers.get("x-served-by"));
    await res.arrayBuffer();
  }
  assert.deepEqual([...seen].sort(), ["a", "b"]);
});

test("a GET refused by one origin is retried on the next; a POST is not replayed", async () => {
  const [c] = await startOrigins(["c"]);
  const deadUrl = "http://127.0.0.1:9"; // nothing listens on the discard port
  try {
    await withEdge({ origins: [{ url: deadUrl }, c], vars: { PUBLIC_PATHS: "/echo/*" } }, async (two) => {
      for (let i = 0; i < 4; i++) {
        const res = await two.fetch("/echo/retry");
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("x-served-by"), "c");
        await res.arrayBuffer();
      }
      const before = c.stats.requests;
      const statuses = [];
      for (let i = 0; i < 4; i++) {
        const res = await two.fetch("/echo/post", { method: "POST", body: "once" });
        statuses.push(res.status);
        await res.arrayBuffer();
      }
      assert.ok(statuses.includes(502), `a POST to the dead origin must fail, not be replayed: ${statuses}`);
      assert.equal(c.stats.requests - before, statuses.filter((s) => s === 200).length);
    });
  } finally {
    await c.close();
  }
});

test("a bad setting answers every request with 500 naming it, and the worker survives", async () => {
  await withEdge({ origins, vars: { IDLE_TIMEOUT: "soon" } }, async (broken) => {
    for (const path of ["/", "/dashboard", "/.edge-session/health"]) {
      const res = await broken.fetch(path);
      assert.equal(res.status, 500, path);
      const body = await res.json();
      assert.match(JSON.stringify(body), /IDLE_TIMEOUT/);
    }
    await withEdge({ origins, vars: { SESSION_KEYS: undefined } }, async (missing) => {
      const res = await missing.fetch("/");
      assert.equal(res.status, 500);
      assert.equal((await res.json()).setting, "SESSION_KEYS");
      const again = await missing.fetch("/.edge-session/health");
      assert.equal(again.status, 500);
      assert.equal((await again.json()).ok, false);
    });
  });
  // the shared worker still answers normally
  const ok = await edge.fetch("/.edge-session/health");
  assert.equal(ok.status, 200);
  await ok.arrayBuffer();
});

test("an oversized or malformed Cookie header is never a 5xx", async () => {
  for (const cookie of ["sid=" + "a".repeat(20_000), "sid", ";;;=;=", "sid=\u00ff\u00fe", "__Host-edge-ticket=v1.x.y.z; sid=abc"]) {
    const res = await edge.fetch("/echo/private", { headers: { cookie, accept: "application/json" } });
    assert.ok(res.status < 500, `${res.status} for ${cookie.slice(0, 30)}`);
    await res.arrayBuffer();
  }
});

test("a WebSocket upgrade is validated, then passed through with the identity", async () => {
  const refused = await edge.fetch("/ws", { headers: { upgrade: "websocket" } });
  assert.equal(refused.status, 401);
  await refused.arrayBuffer();
  const jar = new Jar();
  await login(edge, jar, "bob");
  const res = await browse(edge, jar, "/ws", { headers: { upgrade: "websocket" } });
  assert.equal(res.status, 101);
  const ws = res.webSocket;
  assert.ok(ws, "no WebSocket in the 101 response");
  ws.accept();
  const reply = new Promise((resolve, reject) => {
    ws.addEventListener("message", (e) => resolve(e.data));
    ws.addEventListener("error", reject);
    setTimeout(() => reject(new Error("no reply within 5 s")), 5000);
  });
  ws.send("hello");
  assert.equal(await reply, "bob: hello");
  ws.close();
});
