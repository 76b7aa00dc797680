// Stands in for a KV namespace (Miniflare wrappedBindings) and makes each operation
// take about as long as Workers KV might, so that the bench shows what KV latency
// costs each worker. A model, not a measurement of Cloudflare:
//   - a read (get, getWithMetadata) is a cache hit with probability HIT_RATIO,
//     lognormal with median 1 ms and sigma 0.7; otherwise it goes to the central
//     store: lognormal, median 35 ms, sigma 1.3, capped at 1 s;
//   - a write (put, delete), and a list, always pays the central store's latency.
// The delay is waited out first, then the operation goes to the inner namespace
// (Miniflare's local KV, a fraction of a millisecond more).
// Every draw comes from a seeded PRNG (SEED), four numbers per operation whatever
// it is, so the k-th KV operation of a worker waits the same in every run and in
// every worker of the bench. One sequence per isolate (module state). workerd's
// timers count whole milliseconds, so each delay is rounded to one, up with a
// probability equal to its fraction (the mean stays).
// Used for every KV binding alike: edge-session's SESSIONS and the JS peer's.
// The runner imports makeModel() too, to state the model's own percentiles.

export const MODEL = {
  hit: { median: 1, sigma: 0.7 },
  miss: { median: 35, sigma: 1.3, cap: 1000 },
};

/** A 32-bit seed from a string (FNV-1a). */
function seedOf(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32: a small, fast PRNG; uniform in [0, 1). */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The model as a function of one PRNG: delay("read") / delay("write") in ms.
 * `hitRatio` in [0, 1]; `seed` any string.
 */
export function makeModel(hitRatio, seed) {
  const random = prng(seedOf(String(seed)));
  const lognormal = (m, u1, u2) => {
    // Box-Muller: u1 in (0, 1], so the log is finite.
    const z = Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);
    return m.median * Math.exp(m.sigma * z);
  };
  // Four draws per operation whatever it is, so the sequence stays aligned.
  const draw = (kind) => {
    const coin = random();
    const u1 = random();
    const u2 = random();
    const u3 = random();
    const ms = kind === "read" && coin < hitRatio ? lognormal(MODEL.hit, u1, u2) : Math.min(MODEL.miss.cap, lognormal(MODEL.miss, u1, u2));
    return { ms, u3 };
  };
  return {
    /** The exact draw, in ms. */
    delay(kind) {
      return draw(kind).ms;
    },
    /**
     * The draw rounded to a whole millisecond, up with probability equal to its fraction
     * (so the mean stays): workerd's timers count whole milliseconds.
     */
    wholeDelay(kind) {
      const { ms, u3 } = draw(kind);
      return Math.floor(ms) + (u3 < ms - Math.floor(ms) ? 1 : 0);
    },
  };
}

let model; // one per isolate, made at the first operation
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export default function (env) {
  const kv = env.INNER;
  const hitRatio = Number(env.HIT_RATIO);
  if (!(hitRatio >= 0 && hitRatio <= 1)) throw new Error(`kv-latency: HIT_RATIO must be in [0, 1], not ${env.HIT_RATIO}`);
  const wait = (kind) => {
    model ??= makeModel(hitRatio, env.SEED ?? "edge-session bench");
    return sleep(model.wholeDelay(kind));
  };
  return {
    async get(key, opts) {
      await wait("read");
      return kv.get(key, opts);
    },
    async getWithMetadata(key, opts) {
      await wait("read");
      return kv.getWithMetadata(key, opts);
    },
    async put(key, value, opts) {
      await wait("write");
      return kv.put(key, value, opts);
    },
    async delete(key) {
      await wait("write");
      return kv.delete(key);
    },
    async list(opts) {
      await wait("write");
      return kv.list(opts);
    },
  };
}
