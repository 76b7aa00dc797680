// Latency of the worker's tiers against the demo origin alone, as ratios within one
// run (absolute times on a shared machine are noise). Bounded: N requests per case,
// all on 127.0.0.1. Run with `make bench` after `make build`.
import { startEdge, startOrigins, Jar, browse, login } from "../tests/harness.mjs";

const N = Number(process.env.BENCH_REQUESTS || 300);

function stats(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { p50: q(0.5), p95: q(0.95) };
}

async function time(fn) {
  const out = [];
  for (let i = 0; i < N; i++) {
    const t0 = process.hrtime.bigint();
    const res = await fn(i);
    await res.arrayBuffer();
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return stats(out);
}

const [origin] = await startOrigins(["a"]);
const PUBLIC_PATHS = "/login,/echo/public/*";
const edge = await startEdge({ origins: [origin], vars: { PUBLIC_PATHS }, wrapKv: false });
const kvEdge = await startEdge({ origins: [origin], vars: { PUBLIC_PATHS, TICKET_TTL: "1ms", TOUCH_INTERVAL: "1h" }, wrapKv: false });
try {
  const jar = new Jar();
  await login(edge, jar);
  const kvJar = new Jar();
  await login(kvEdge, kvJar);
  const cases = {
    "origin directly": () => fetch(`${origin.url}/api/me`, { headers: { "x-session-user": "alice" } }),
    "worker, public path": () => edge.fetch("/echo/public/x"),
    "worker, ticket": () => browse(edge, jar, "/api/me"),
    "worker, KV read each time": () => browse(kvEdge, kvJar, "/api/me"),
  };
  const results = {};
  for (const [name, fn] of Object.entries(cases)) results[name] = await time(fn);
  const base = results["worker, public path"].p50;
  console.log(`${N} sequential requests per case (ms; ratio = p50 / p50 of the public path through the worker)`);
  for (const [name, r] of Object.entries(results)) {
    console.log(`${name.padEnd(28)} p50 ${r.p50.toFixed(2).padStart(6)}  p95 ${r.p95.toFixed(2).padStart(6)}  ratio ${(r.p50 / base).toFixed(2)}`);
  }
} finally {
  await edge.close();
  await kvEdge.close();
  await origin.close();
}
