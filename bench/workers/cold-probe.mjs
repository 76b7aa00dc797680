// Measures, inside workerd (the V8 the workers run on), what loading a worker's
// code costs: POST /wasm with a .wasm file compiles and instantiates it,
// POST /js with a classic script parses and evaluates it. Answers {"ms": {...}}.
// workerd forbids compiling code at run time except through the unsafe-eval
// binding (UNSAFE_EVAL), which the bench gives this worker and no other.
// Every call first makes the code unique, so that V8's caches (keyed by the
// bytes or the source) never answer in place of a real compile.
let calls = 0;

/** The module plus a custom section "bench" holding a counter (the engine ignores it). */
function unique(bytes) {
  const name = new TextEncoder().encode("bench");
  const payload = new TextEncoder().encode(String(++calls));
  const size = 1 + name.length + payload.length; // under 128: one LEB128 byte
  const out = new Uint8Array(bytes.length + 2 + size);
  out.set(bytes);
  let at = bytes.length;
  out[at++] = 0; // section id 0: custom
  out[at++] = size;
  out[at++] = name.length;
  out.set(name, at);
  out.set(payload, at + name.length);
  return out;
}

// workerd's clock is coarse (about a millisecond), so each call times `n` loads
// and answers the mean.
export default {
  async fetch(req, env) {
    const url = new URL(req.url);
    const n = Number(url.searchParams.get("n") ?? 1);
    if (url.pathname === "/wasm") {
      const bytes = new Uint8Array(await req.arrayBuffer());
      const copies = Array.from({ length: n }, () => unique(bytes));
      let t = performance.now();
      const mods = copies.map((c) => env.UNSAFE_EVAL.newWasmModule(c));
      const compile = (performance.now() - t) / n;
      // What the wasm-bindgen glue would import: function stubs, never called during
      // instantiation, and the engine's tag for JS exceptions.
      const imports = {};
      for (const imp of WebAssembly.Module.imports(mods[0])) {
        const value = { function: () => {}, tag: WebAssembly.JSTag }[imp.kind];
        if (!value) return new Response(`import ${imp.module}.${imp.name} is a ${imp.kind}`, { status: 500 });
        (imports[imp.module] ??= {})[imp.name] = value;
      }
      t = performance.now();
      for (const mod of mods) new WebAssembly.Instance(mod, imports);
      return Response.json({ ms: { compile, instantiate: (performance.now() - t) / n } });
    }
    if (url.pathname === "/js") {
      const source = await req.text();
      const copies = Array.from({ length: n }, () => `${source}\n//${++calls}`);
      const t = performance.now();
      for (const c of copies) env.UNSAFE_EVAL.eval(c);
      return Response.json({ ms: { eval: (performance.now() - t) / n } });
    }
    return new Response("not found", { status: 404 });
  },
};
