// The entry's logic over a wasm-bindgen module (`wasm`), kept apart from entry.mjs so
// that tests/entry.test.mjs can drive it with a stand-in module. See entry.mjs.
import { limitedText } from "./native.js";

const FAILED = JSON.stringify({ error: "internal_error" });
// What `read` gives for a read slower than its timeout, and `ask` and `lookup`.
const LATE = Object.freeze([null, undefined, true]);
const ANSWER_LATE = Object.freeze([0, null, undefined, true]);
// The one key a session's object keeps its state under (as JSON: src/edge/state.rs).
const STATE_KEY = "state";

/** The worker's handler object and its Durable Object class, over `wasm`. */
export function entry(wasm) {
  const state = wasm.initState();

  /** A fresh wasm instance after a panic, before anything else calls into it. */
  function recover() {
    if (state.criticalError) {
      console.error(JSON.stringify({ outcome: "wasm_reinitialized", reason: "a panic aborted the previous instance" }));
      wasm.__wbg_reset_state();
      state.criticalError = false;
    }
  }

  /** The forward of a plan: its URLs in order (the next after a network error), the body
   *  streamed, redirects passed through, past the cache for an identified request. */
  function forward(request, plan) {
    const method = request.method;
    const init = { method, headers: plan.headers, redirect: "manual" };
    if (plan.noStore) init.cache = "no-store";
    if (method !== "GET" && method !== "HEAD" && request.body !== null) init.body = request.body;
    const urls = plan.urls;
    // One origin, the usual case: the platform's own promise, no async function around it.
    return urls.length === 1 ? fetch(urls[0], init) : inTurn(urls, init);
  }

  /** `fetch` of each URL in turn until one answers; the last network error otherwise. */
  async function inTurn(urls, init) {
    let error;
    for (const url of urls) {
      try {
        return await fetch(url, init);
      } catch (e) {
        error = e;
      }
    }
    // Made only when thrown: an Error captures a stack trace.
    throw error ?? new Error("no origin to forward to");
  }

  /** What `start()` gives, as `ok` makes it of its value, or `failed` of its error, or `late`
   *  when it takes longer than `timeout` ms. One promise and one timer, no more. */
  function timed(start, timeout, ok, failed, late) {
    return new Promise((resolve) => {
      let value;
      try {
        value = start();
      } catch (e) {
        value = Promise.reject(e); // a binding that throws fails the read as a rejection does
      }
      // Set after the read began: a read that answers exactly at the timeout still counts.
      const timer = setTimeout(resolve, timeout, late);
      Promise.resolve(value).then(
        (value) => {
          clearTimeout(timer);
          resolve(ok(value));
        },
        (e) => {
          clearTimeout(timer);
          resolve(failed(e));
        },
      );
    });
  }

  /** The KV read a plan asks for (`readPlan` in native.js): the arguments of `quickRead`
   *  after the handle, [value, error, timedOut]. */
  function read(plan) {
    const ok = (value) => [value, undefined, false];
    const failed = (e) => [null, e ?? new Error("KV read failed"), false];
    return timed(() => plan.kv.get(plan.read), plan.timeout, ok, failed, LATE);
  }

  /** The read of a session's object a plan asks for (`askPlan` in native.js): the arguments
   *  of `quickAnswer` after the handle, [status, body, error, timedOut]; the body null when it is
   *  over the plan's limit. */
  function ask(plan) {
    const fetched = async () => {
      const stub = plan.states.get(plan.states.idFromName(plan.name));
      const answer = await stub.fetch(plan.ask);
      return [answer.status, await limitedText(answer.body, plan.limit)];
    };
    const ok = ([status, body]) => [status, body, undefined, false];
    const failed = (e) => [0, null, e ?? new Error("the session object's read failed"), false];
    return timed(fetched, plan.timeout, ok, failed, ANSWER_LATE);
  }

  /** The origin's lookup a plan asks for (`lookupPlan` in native.js): the arguments of
   *  `quickAnswer` after the handle, [status, body, error, timedOut]; the body null when it is
   *  over the plan's limit. One that outlasts its timeout is aborted. */
  async function lookup(plan) {
    const controller = new AbortController();
    const init = { method: "POST", headers: plan.headers, body: plan.body, redirect: "manual", signal: controller.signal };
    const asked = async () => {
      const answer = await inTurn(plan.lookup, init);
      return [answer.status, await limitedText(answer.body, plan.limit)];
    };
    const ok = ([status, body]) => [status, body, undefined, false];
    const failed = (e) => [0, null, e ?? new Error("the lookup failed"), false];
    const outcome = await timed(asked, plan.timeout, ok, failed, ANSWER_LATE);
    if (outcome === ANSWER_LATE) controller.abort();
    return outcome;
  }

  function failed(e) {
    console.error(JSON.stringify({ outcome: "internal_error", error: String(e?.message ?? e) }));
    return new Response(FAILED, {
      status: 500,
      headers: { "Content-Type": "application/json", "Cache-Control": "no-store" },
    });
  }

  // The synchronous path (src/edge/quick.rs): the wasm decides in one call (`quick`), this
  // forwards with the platform's fetch, and one more call makes the response (`respondNow`),
  // unless the origin's answer is plain: then the plan made with the decision makes it, and
  // the wasm is told the request is done (`answeredPlain`).
  // When the decision needs the session's KV record, `quick` asks for that read, this makes
  // it, and `quickRead` decides with its outcome; a read of the session's object likewise,
  // and the origin's lookup (both `quickAnswer`), at most one of each. What needs another
  // store goes the asynchronous way: the whole request (`fetch`: `quick` said undefined; or
  // the promise `quickRead` or `quickAnswer` gives), or its response only (`respondLater`).
  // Every decision is the wasm's.
  const handler = {
    async fetch(request, env, ctx) {
      recover();
      try {
        let plan = wasm.quick(request, env, ctx);
        if (plan === undefined) return await wasm.fetch(request, env, ctx);
        // The reads the decision waits for (the session's KV record, its object's state, the
        // origin's lookup), each made here and handed back.
        while (plan.read !== undefined || plan.ask !== undefined || plan.lookup !== undefined) {
          if (plan.read !== undefined) {
            const outcome = await read(plan);
            recover();
            plan = wasm.quickRead(request, env, ctx, plan.handle, ...outcome);
          } else {
            const outcome = await (plan.ask !== undefined ? ask(plan) : lookup(plan));
            recover();
            plan = wasm.quickAnswer(request, env, ctx, plan.handle, ...outcome);
          }
          if (plan instanceof Promise) return await plan;
        }
        if (plan instanceof Response) return plan;
        let upstream;
        try {
          upstream = await forward(request, plan);
        } catch (e) {
          return wasm.originUnreachable(plan.handle, String(e?.message ?? e), env, ctx);
        }
        // An answer without signals or cookies, as the wasm planned for it with its decision.
        const plain = plan.plain;
        if (plain !== undefined && plain.fits(upstream)) {
          wasm.answeredPlain(plan.handle);
          return plain.passOn(upstream);
        }
        const now = wasm.respondNow(plan.handle, upstream);
        return now ?? (await wasm.respondLater(plan.handle, upstream, env, ctx)) ?? failed("no response");
      } catch (e) {
        return failed(e);
      }
    },
  };

  /** One session's data, a Durable Object: its storage read, the wasm's answer
   *  (`serveState`, one synchronous call), then the new state stored and the alarm set
   *  when the answer says so. After the request's body is read, its storage calls are
   *  its only awaits, so the runtime's input gate delivers no other request in between:
   *  a read-modify-write never loses an update. A storage call that fails answers 500
   *  naming it, which the worker counts as the object being unavailable. */
  class SessionState {
    constructor(ctx) {
      this.storage = ctx.storage;
    }

    async fetch(request) {
      try {
        recover();
        // A read names its deadline in the URL; a change is JSON (null: over the limit).
        const body = request.method === "GET" ? undefined : await limitedText(request.body, wasm.stateLimit());
        const stored = await this.storage.get(STATE_KEY);
        recover();
        const served = wasm.serveState(request.url, body, stored);
        if (served.store !== undefined) {
          await this.storage.put(STATE_KEY, served.store);
          if (served.alarm !== undefined) await this.storage.setAlarm(served.alarm);
        }
        return new Response(served.reply, { status: served.status });
      } catch (e) {
        return new Response(String(e?.message ?? e), { status: 500 });
      }
    }

    /** The deadline it was set for has come: everything goes, unless a request named a
     *  later deadline meanwhile (then the alarm is set again to it). */
    async alarm() {
      const stored = await this.storage.get(STATE_KEY);
      recover();
      const at = wasm.stateAlarm(stored);
      await (at === undefined ? this.storage.deleteAll() : this.storage.setAlarm(at));
    }
  }

  return { handler, SessionState };
}
