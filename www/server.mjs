#!/usr/bin/env node
// CLI for the demo origin:
//   node www/server.mjs [--name a] [--mode edge|attach] [--port 8080] [--store FILE]
//                       [--jwks-url URL] [--require-assertion] [--audience URL]
//                       [--data-limit BYTES]
// Environment: NAME, MODE, PORT, STORE, JWKS_URL, REQUIRE_ASSERTION (1/true/yes/on),
// AUDIENCE, DATA_LIMIT, LOOKUP_TOKEN (else read from ./.dev.vars).

import fs from "node:fs";
import { startOrigin } from "./origin.mjs";

function usage(message) {
  if (message) console.error(`error: ${message}`);
  console.error(
    "usage: node www/server.mjs [--name a] [--mode edge|attach] [--port 8080] [--store FILE]\n" +
      "                           [--jwks-url URL] [--require-assertion] [--audience URL]\n" +
      "                           [--data-limit BYTES]",
  );
  process.exit(message ? 2 : 0);
}

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    if (arg === "-h" || arg === "--help") usage();
    let value;
    const eq = arg.indexOf("=");
    if (arg.startsWith("--") && eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    if (arg === "--require-assertion") {
      // a switch; --require-assertion=false turns it off
      out.requireAssertion = value === undefined ? "true" : value;
      continue;
    }
    const key = {
      "--name": "name",
      "--mode": "mode",
      "--port": "port",
      "--store": "store",
      "--jwks-url": "jwksUrl",
      "--audience": "audience",
      "--data-limit": "dataLimit",
    }[arg];
    if (!key) usage(`unknown argument ${arg}`);
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) usage(`${arg} needs a value`);
    }
    out[key] = value;
  }
  return out;
}

// LOOKUP_TOKEN from .dev.vars (KEY=value or KEY="value"), only when the env var is unset.
function tokenFromDevVars() {
  let text;
  try {
    text = fs.readFileSync(".dev.vars", "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(?:export\s+)?LOOKUP_TOKEN\s*=\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    let v = m[1];
    if (v.length >= 2 && (v[0] === '"' || v[0] === "'") && v.at(-1) === v[0]) v = v.slice(1, -1);
    return v;
  }
  return undefined;
}

const args = parseArgs(process.argv.slice(2));
const name = args.name ?? process.env.NAME ?? "a";
const mode = args.mode ?? process.env.MODE ?? "edge";
const portText = args.port ?? process.env.PORT ?? "8080";
const port = Number(portText);
if (!Number.isInteger(port) || port < 0 || port > 65535) usage(`bad port ${portText}`);
if (mode !== "edge" && mode !== "attach") usage(`mode must be edge or attach, not ${mode}`);
const store = args.store ?? process.env.STORE ?? undefined;
const lookupToken = process.env.LOOKUP_TOKEN || tokenFromDevVars();
const jwksUrl = args.jwksUrl ?? (process.env.JWKS_URL || undefined);
const requireText = args.requireAssertion ?? process.env.REQUIRE_ASSERTION ?? "false";
const requireAssertion = /^(1|true|yes|on)$/i.test(requireText);
if (!requireAssertion && !/^(0|false|no|off|)$/i.test(requireText)) usage(`--require-assertion / REQUIRE_ASSERTION must be true or false, not ${requireText}`);
const audienceText = args.audience ?? (process.env.AUDIENCE || undefined);
const audience = audienceText?.trim() || undefined;
const dataLimitText = args.dataLimit ?? (process.env.DATA_LIMIT || undefined);
const dataLimit = dataLimitText === undefined ? undefined : Number(dataLimitText);
if (dataLimit !== undefined && !Number.isInteger(dataLimit)) usage(`--data-limit / DATA_LIMIT must be a number of bytes, not ${dataLimitText}`);

let origin;
try {
  origin = await startOrigin({ name, mode, port, lookupToken, store, jwksUrl, requireAssertion, audience, dataLimit });
} catch (e) {
  console.error(`origin ${name}: ${e.message}`);
  process.exit(1);
}
const checks = jwksUrl
  ? `; assertions ${requireAssertion ? "required" : "checked, not required"} (keys from ${jwksUrl}, audience ${audience})`
  : "; assertions not checked (no --jwks-url)";
console.log(`origin ${origin.name} (${origin.mode}) listening on ${origin.url}${checks}`);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => {
    if (stopping) process.exit(1);
    stopping = true;
    await origin.close();
    process.exit(0);
  });
}
