// Starts the real `make dev` stack (scripts/dev.sh: three demo origins and
// `wrangler dev` in front of them) on free 127.0.0.1 ports, for end-to-end tests that
// need what a person gets, and stops all of it afterwards.
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { eachLine } from "./processes.mjs";

export const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");

function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

/** A worker port and `count` consecutive origin ports, all free on 127.0.0.1 now. */
async function freePorts(count) {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 20000);
    const ports = [base, ...Array.from({ length: count }, (_, i) => base + 10 + i)];
    const free = await Promise.all(ports.map(portFree));
    if (free.every(Boolean)) return { port: ports[0], originPort: ports[1] };
  }
  throw new Error("no free ports found");
}

/**
 * Runs scripts/dev.sh with `env` (worker settings such as IDLE_TIMEOUT) on fresh
 * ports and a fresh local KV; resolves once it prints "ready". `stack.stop()` ends
 * the dev script's process group and checks that nothing is left listening.
 */
export async function startDevStack({ env = {}, mode = "edge", readyTimeoutMs = 90000 } = {}) {
  const { port, originPort } = await freePorts(3);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edge-session-dev-"));
  const lines = [];
  const child = spawn("bash", ["scripts/dev.sh"], {
    cwd: ROOT,
    detached: true, // its own process group: stop() signals the whole group
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      MODE: mode,
      PORT: String(port),
      ORIGIN_PORT: String(originPort),
      INSPECTOR_PORT: String(port + 5),
      DEV_STATE: path.join(dir, "state"),
      DEV_LOGS: path.join(dir, "logs"),
      ...env,
    },
  });
  let exited = null;
  const exit = new Promise((resolve) =>
    child.on("exit", (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    }),
  );
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`make dev not ready in ${readyTimeoutMs} ms:\n${lines.join("\n")}`)), readyTimeoutMs);
    for (const stream of [child.stdout, child.stderr]) {
      eachLine(stream, (line) => {
        lines.push(line);
        if (line.startsWith("ready:")) {
          clearTimeout(timer);
          resolve();
        }
      });
    }
    exit.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`make dev exited (${signal ?? code}) before it was ready:\n${lines.join("\n")}`));
    });
  });

  const stack = {
    url: `http://127.0.0.1:${port}`,
    port,
    originPorts: [originPort, originPort + 1, originPort + 2],
    lines,
    dir,
    async stop() {
      if (!exited) {
        try {
          process.kill(-child.pid, "SIGTERM");
        } catch {
          /* gone */
        }
        const timeout = new Promise((r) => setTimeout(r, 15000, "timeout"));
        if ((await Promise.race([exit, timeout])) === "timeout") {
          try {
            process.kill(-child.pid, "SIGKILL");
          } catch {
            /* gone */
          }
          await exit;
        }
      }
      // Nothing of the stack may still listen.
      const still = [];
      for (const p of [port, ...stack.originPorts]) if (!(await portFree(p))) still.push(p);
      if (still.length === 0) fs.rmSync(dir, { recursive: true, force: true });
      return { exited, stillListening: still };
    },
  };
  try {
    await ready;
  } catch (e) {
    await stack.stop();
    throw e;
  }
  return stack;
}
