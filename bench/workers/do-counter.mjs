// Stands in for a Durable Object namespace (Miniflare wrappedBindings) and records
// every call to an object, so the bench can check what a worker asks of its
// SESSION_STATE binding. edge-session reaches the binding only through
// ns.idFromName(name), ns.get(id) and stub.fetch(url, init) (README.md, "Session
// data"), so a plain object with those stands in for the namespace. The records are
// keys in a KV namespace of their own ("__doop__:<method>:<uuid>"), because this
// code runs inside the worker's isolate, out of the runner's reach; the runner lists
// them. Only the data-path check uses it: the throughput runs bind the objects directly.
export default function (env) {
  const ns = env.INNER;
  const ops = env.OPS;
  const methodOf = (input, init) =>
    String(init?.method ?? (typeof input === "object" && input !== null && typeof input.method === "string" ? input.method : "GET")).toUpperCase();
  return {
    idFromName: (name) => ns.idFromName(name),
    idFromString: (s) => ns.idFromString(s),
    newUniqueId: (opts) => ns.newUniqueId(opts),
    get(id, opts) {
      const stub = ns.get(id, opts);
      return {
        id,
        async fetch(input, init) {
          await ops.put(`__doop__:${methodOf(input, init)}:${crypto.randomUUID()}`, "");
          return stub.fetch(input, init);
        },
      };
    },
  };
}
