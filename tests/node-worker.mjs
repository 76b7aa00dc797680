// The built worker (build/index.js and its wasm, exactly as deployed) loaded in Node, without
// workerd: for tests/sync-path.test.mjs, which counts the calls into the wasm per request, and
// for bench/hot.mjs, which times the fetch handler.
//
// The bundle imports its wasm as workerd does (a compiled WebAssembly.Module): a copy of it in
// .tmp/ is handed one instead. With `count`, the instance's exported functions are wrapped so
// that every call into the wasm is counted by name (`calls`), the glue's own allocations included.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { randomBytes } from "node:crypto";
import { newAssertionKey } from "./harness.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
let loaded = 0;

/** An in-memory KV namespace: `map` holds its values. */
export function memoryKv(map = new Map()) {
  return {
    map,
    get: async (key) => map.get(key) ?? null,
    put: async (key, value) => void map.set(key, value),
    delete: async (key) => void map.delete(key),
    list: async () => ({ keys: [], list_complete: true }),
  };
}

/**
 * A SESSION_STATE namespace in memory over `SessionState`, the worker's own Durable Object class
 * (a loaded worker's `SessionState`): one object per name, each with its storage in memory.
 * `reads` counts the requests that only read an object's state.
 */
export function memoryStates(SessionState) {
  const objects = new Map();
  const storage = () => {
    const map = new Map();
    let alarm = null;
    return {
      get: async (key) => map.get(key),
      put: async (key, value) => void map.set(key, value),
      deleteAll: async () => map.clear(),
      setAlarm: async (at) => void (alarm = at),
      getAlarm: async () => alarm,
    };
  };
  const states = {
    reads: 0,
    idFromName: (name) => name,
    get(id) {
      let object = objects.get(id);
      if (object === undefined) objects.set(id, (object = new SessionState({ storage: storage() }, {})));
      return {
        fetch(input, init) {
          const request = new Request(input, init);
          if (request.method === "GET") states.reads += 1;
          return object.fetch(request);
        },
      };
    },
  };
  return states;
}

/** The environment of a Node-loaded worker: fresh keys, an origin that the stand-in fetch
 *  answers, KV in memory, long TICKET_TTL and TOUCH_INTERVAL; `vars` added or replacing. */
export function workerEnv(vars = {}) {
  return {
    SESSION_KEYS: `k1:${randomBytes(32).toString("base64")}`,
    ASSERTION_KEYS: newAssertionKey().setting,
    ORIGIN_URL: "http://127.0.0.1:9",
    PUBLIC_PATHS: "/login",
    TICKET_TTL: "1h",
    TOUCH_INTERVAL: "1h",
    SESSIONS: memoryKv(),
    ...vars,
  };
}

/** The `Cookie` header a browser would send after `response`: its cookies' name=value. */
export const cookieOf = (response) =>
  response.headers
    .getSetCookie()
    .map((c) => c.split(";")[0])
    .join("; ");

/**
 * The fetch handler of the worker built in `dir` (default build/), its Durable Object class
 * `SessionState`, and, with `count`, `calls`:
 * how many times each export of its wasm was called since the last `calls.clear()`.
 */
export async function loadWorker(dir = join(ROOT, "build"), { count = false } = {}) {
  const n = loaded++;
  const global = `__edgeSessionWasm${n}`;
  globalThis[global] = new WebAssembly.Module(readFileSync(join(dir, "index_bg.wasm")));
  const source = readFileSync(join(dir, "index.js"), "utf8");
  const imported = /import\s*(\w+)\s*from\s*"\.\/index_bg\.wasm";?/;
  if (!imported.test(source)) throw new Error(`${dir}/index.js does not import ./index_bg.wasm as expected`);
  if (!/new WebAssembly\.Instance\(/.test(source)) throw new Error(`${dir}/index.js does not instantiate its wasm as expected`);
  const calls = new Map();
  const counting = `__edgeSessionInstance${n}`;
  // The glue makes its instance with `new WebAssembly.Instance(module, imports)` (again after a
  // panic): this one's exports count their calls.
  globalThis[counting] = function (module, imports) {
    const instance = new WebAssembly.Instance(module, imports);
    if (!count) return instance;
    const exports = {};
    for (const [name, value] of Object.entries(instance.exports)) {
      exports[name] =
        typeof value === "function"
          ? (...args) => {
              calls.set(name, (calls.get(name) ?? 0) + 1);
              return value(...args);
            }
          : value;
    }
    return { exports };
  };
  mkdirSync(join(ROOT, ".tmp"), { recursive: true });
  const copy = join(ROOT, ".tmp", `node-worker-${process.pid}-${n}.mjs`);
  writeFileSync(copy, source.replace(imported, `const $1 = globalThis.${global};`).replaceAll("new WebAssembly.Instance(", `new globalThis.${counting}(`));
  const { default: handler, SessionState } = await import(pathToFileURL(copy).href);
  rmSync(copy);
  return { handler, SessionState, calls };
}
