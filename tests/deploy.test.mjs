// docs/DEPLOY.md's offline check: `wrangler deploy --dry-run --env production` through
// scripts/check-deploy.sh (make deploy-check). It must refuse the placeholder KV id that
// wrangler.toml ships with and pass once a real-looking id is in place.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT } from "./devstack.mjs";

const check = (...args) => spawnSync("bash", ["scripts/check-deploy.sh", ...args], { cwd: ROOT, encoding: "utf8", timeout: 60000 });

/** wrangler.toml as a deployer would have edited it, in a temp dir: paths made absolute. */
function editedConfig(edit) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edge-session-deploy-"));
  const file = path.join(dir, "wrangler.toml");
  const text = fs
    .readFileSync(path.join(ROOT, "wrangler.toml"), "utf8")
    .replace('main = "build/index.js"', `main = "${path.join(ROOT, "build/index.js")}"`)
    .replace('command = "bash scripts/build.sh"', `command = "bash ${path.join(ROOT, "scripts/build.sh")}"`);
  fs.writeFileSync(file, edit(text));
  return { file, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

test("deploy-check refuses the placeholder KV namespace id that wrangler.toml ships with", () => {
  const r = check();
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /SESSIONS KV namespace id in \[env\.production\] of wrangler\.toml is "replace-with-your-namespace-id"/);
  assert.match(r.stderr, /npx wrangler kv namespace create SESSIONS --env production/);
});

test("deploy-check passes a production config with a real-looking id and reports the bundle size", () => {
  const { file, cleanup } = editedConfig((t) =>
    t
      .replace('id = "replace-with-your-namespace-id"', 'id = "0f2ac3d8e5b74a6c9e1d2b3a4c5d6e7f"')
      .replace('# routes = [{ pattern = "www.example.com/*"', 'routes = [{ pattern = "www.example.com/*"'),
  );
  try {
    const r = check(file);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /✓ KV namespace SESSIONS = 0f2ac3d8e5b74a6c9e1d2b3a4c5d6e7f/);
    const m = /✓ bundle ([\d.]+) KiB, ([\d.]+) KiB gzipped/.exec(r.stdout);
    assert.ok(m, r.stdout);
    assert.ok(Number(m[2]) < 3 * 1000 * 1000 / 1024, `the gzipped bundle (${m[2]} KiB) is over 3 MB`);
    assert.doesNotMatch(r.stdout, /sets neither routes nor ORIGIN_URL/);
  } finally {
    cleanup();
  }
});

test("deploy-check warns when nothing says where requests go", () => {
  const { file, cleanup } = editedConfig((t) => t.replace('id = "replace-with-your-namespace-id"', 'id = "0f2ac3d8e5b74a6c9e1d2b3a4c5d6e7f"'));
  try {
    const r = check(file);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /sets neither routes nor ORIGIN_URL/);
  } finally {
    cleanup();
  }
});
