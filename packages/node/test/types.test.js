// index.d.ts, checked by the TypeScript compiler (a dev dependency) against test/types/usage.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

test("index.d.ts: typed data without casts, and the errors it should give (tsc --noEmit)", async () => {
  let tsc;
  try {
    tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  } catch {
    assert.fail("typescript is not installed: run npm ci in packages/node (it is a dev dependency)");
  }
  const project = fileURLToPath(new URL("./types/tsconfig.json", import.meta.url));
  const { code, output } = await new Promise((resolve) => {
    execFile(process.execPath, [tsc, "--noEmit", "-p", project], (error, stdout, stderr) => resolve({ code: error ? error.code : 0, output: stdout + stderr }));
  });
  assert.equal(code, 0, output);
});
