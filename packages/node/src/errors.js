// The typed errors: each has a `code` (the "error" of the JSON answer) and the HTTP
// `status` the middlewares answer with.

/** The base class: every error this package throws on purpose is one. */
export class EdgeSessionError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }
}

function kind(code, status) {
  return class extends EdgeSessionError {
    get code() {
      return code;
    }
    get status() {
      return status;
    }
  };
}

/** No X-Session-Assertion where a user is required: 401. */
export class MissingAssertionError extends kind("missing_assertion", 401) {}
/** Forged, expired, for another site or issuer, wrong algorithm, unknown kid, malformed: 401. */
export class InvalidAssertionError extends kind("invalid_assertion", 401) {}
/** The data headers are not the ones the assertion signed (dh / dv): 401. */
export class DataMismatchError extends kind("data_mismatch", 401) {}
/** The JWKS cannot be fetched (unreachable, timed out, not a JWKS): 503. */
export class KeysUnavailableError extends kind("keys_unavailable", 503) {}
/** A change, or the data after it, is over the limits: refused before it is sent, 503. */
export class DataTooLargeError extends kind("data_too_large", 503) {}
/** A value put in data (or claims) is not JSON: 503. */
export class DataNotSerializableError extends kind("data_not_serializable", 503) {}

/**
 * The 401 for a page that needs a signed-in user and got a visitor without a session or a
 * guest (`guest`: whether it is a guest): the same answer for both, only the detail differs.
 */
export function needsUser(guest) {
  const who = guest ? "comes from a guest session (not signed in)" : "carries no X-Session-Assertion";
  return new MissingAssertionError(`this page needs a signed-in user: the request ${who}`);
}

/** The JSON body the middlewares answer an error with: {"error", "detail"}. */
export function errorBody(error) {
  if (error instanceof EdgeSessionError) return { status: error.status, body: JSON.stringify({ error: error.code, detail: error.message }) };
  return { status: 500, body: JSON.stringify({ error: "internal_error", detail: "the edge-session middleware failed; see the server log" }) };
}

/** Response headers of an error answer. */
export const ERROR_HEADERS = { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" };
