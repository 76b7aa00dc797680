// What the wasm needs of the Workers runtime beside the request's own objects
// (src/edge/platform.rs): a timer it can clear, and the state the entry reads to
// recover from a panic (src/edge/entry-core.mjs).

/** Set by the panic hook: the instance has aborted, and the entry starts a fresh one. */
export const state = { criticalError: false };

/** The panic hook's report: the message logged, the instance marked as aborted. */
export function panicked(message) {
  console.error("Critical", new Error(`Rust panic: ${message}`));
  state.criticalError = true;
}

/** A promise that resolves after `ms` milliseconds, holding its timer for `clear`. */
export function timer(ms) {
  let id;
  const promise = new Promise((resolve) => {
    id = setTimeout(resolve, ms);
  });
  promise.timer = id;
  return promise;
}

/** Clears the timer of a promise `timer` made (nothing when it has fired). */
export function clear(promise) {
  clearTimeout(promise.timer);
}
