// Stands in for a KV namespace (Miniflare wrappedBindings) and records every
// operation, so the bench can count what a worker asks of KV. The records are
// keys in the inner namespace ("__op__:<kind>:<uuid>"), because this code runs
// inside the worker's isolate, out of the runner's reach; the runner lists them.
// Only the KV-count run uses it: the throughput runs bind KV directly.
export default function (env) {
  const kv = env.INNER;
  const note = (kind) => kv.put(`__op__:${kind}:${crypto.randomUUID()}`, "");
  return {
    async get(key, opts) {
      await note("read");
      return kv.get(key, opts);
    },
    async getWithMetadata(key, opts) {
      await note("read");
      return kv.getWithMetadata(key, opts);
    },
    async put(key, value, opts) {
      await note("write");
      return kv.put(key, value, opts);
    },
    async delete(key) {
      await note("delete");
      return kv.delete(key);
    },
    async list(opts) {
      await note("list");
      return kv.list(opts);
    },
  };
}
