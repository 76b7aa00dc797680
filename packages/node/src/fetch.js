// The fetch-style helper, for Hono, Next.js route handlers, Workers and anything that
// takes a Request and returns a Response.
import { EdgeSessionError, ERROR_HEADERS, errorBody, needsUser } from "./errors.js";
import { createVerifier, visitorDataStatus } from "./verifier.js";
import { EdgeSession } from "./session.js";

/** A JSON Response {"error","detail"} for a typed error (status from the error). */
export function errorResponse(error) {
  const { status, body } = errorBody(error);
  return new Response(body, { status, headers: ERROR_HEADERS });
}

/**
 * `fetchSession(options | verifier)` -> { read(request), verifier }. `read` returns the
 * request's session (throws a typed error for a bad assertion); `session.commit(response)`
 * returns the response with the session's headers.
 */
export function fetchSession(options) {
  const verifier = typeof options?.verify === "function" ? options : (options?.verifier ?? createVerifier(options));
  const log = options?.log;
  const sessionOptions = { dataLimit: verifier.dataLimit ?? 4096, ...(log ? { log } : {}) };
  return {
    verifier,
    async read(request) {
      const identity = await verifier.verify(request);
      return new EdgeSession(identity, identity ? sessionOptions : { ...sessionOptions, dataStatus: visitorDataStatus(request) });
    },
  };
}

/**
 * Wraps a fetch handler `(request, session, ...rest) => Response`: typed errors become
 * JSON answers (401/503), and the session's headers are added to the handler's Response.
 * `options.required`: requests without a signed-in user (visitors, guests) get 401 missing_assertion.
 */
export function withEdgeSession(options, handler) {
  if (typeof handler !== "function") throw new TypeError("withEdgeSession(options, handler): handler must be a function");
  const edge = fetchSession(options);
  const required = options?.required === true;
  return async function edgeSessionHandler(request, ...rest) {
    let session;
    try {
      session = await edge.read(request);
    } catch (error) {
      if (error instanceof EdgeSessionError) return errorResponse(error);
      throw error;
    }
    if (required && !session.user) return errorResponse(needsUser(session.guest));
    return session.commit(await handler(request, session, ...rest));
  };
}
