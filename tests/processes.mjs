// Real servers as child processes for end-to-end tests (the framework examples):
// started on a free 127.0.0.1 port, ready when they print a given line, stopped
// (and checked to be gone) afterwards.
import { spawn } from "node:child_process";
import net from "node:net";

/** Calls `onLine` with each complete line a stream emits (the last, unterminated one is kept for later). */
export function eachLine(stream, onLine) {
  let buf = "";
  stream.setEncoding?.("utf8");
  stream.on("data", (chunk) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      onLine(line);
    }
  });
}

/** A port that is free on 127.0.0.1 right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts `command args` and resolves once a line of its output matches `ready`.
 * Returns { child, output(), stop() }; stop() sends SIGTERM, then SIGKILL after 5 s.
 */
export async function startProcess(command, args, { env = {}, cwd, ready, timeoutMs = 30000 } = {}) {
  const lines = [];
  const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command} not ready in ${timeoutMs} ms:\n${lines.join("\n")}`)), timeoutMs);
    for (const stream of [child.stdout, child.stderr]) {
      eachLine(stream, (line) => {
        lines.push(line);
        if (ready.test(line)) {
          clearTimeout(timer);
          resolve();
        }
      });
    }
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${command} exited (${signal ?? code}) before it was ready:\n${lines.join("\n")}`));
    });
  });
  return {
    child,
    output: () => lines.join("\n"),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}
