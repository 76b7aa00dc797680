// The session object a handler gets: who (read-only), the data (a plain object, dirty
// tracked per top-level key), and login / logout / flash, sent as response headers. A guest
// (a session without a user) and a visitor without a session read and write data as users do.
import { DataTooLargeError, EdgeSessionError, ERROR_HEADERS, errorBody } from "./errors.js";
import { toJson } from "./json.js";
import { patchHeader, snapshotOf } from "./patch.js";
import { utf8 } from "./bytes.js";

/** The headers a session sends with its response (used by the middlewares). */
export const COMMIT = Symbol("edge-session.commit");
export const MAX_CLAIMS = 2048;
export const MAX_USER = 256;

function deepFreeze(value) {
  if (value && typeof value === "object") {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
const frozenCopy = (value) => deepFreeze(structuredClone(value));
const defaultLog = (error) =>
  error instanceof EdgeSessionError ? console.error(`edge-session: ${error.code}: ${error.message}`) : console.error("edge-session:", error);

function loginOf(user, claims) {
  if (typeof user !== "string" || user === "") throw new TypeError("login(user): user must be a non-empty string");
  if (!user.isWellFormed()) throw new TypeError("login(user): user is not well-formed Unicode (a lone surrogate)");
  if (utf8(user).length > MAX_USER) throw new TypeError(`login(user): a user id is at most ${MAX_USER} bytes of UTF-8`);
  if (claims === undefined || claims === null) return { user, claims: Object.freeze({}), claimsJson: null, error: null };
  if (typeof claims !== "object" || Array.isArray(claims)) throw new TypeError("login(user, claims): claims must be a plain object");
  try {
    const claimsJson = toJson(claims, "claims");
    if (claimsJson.length > MAX_CLAIMS) throw new DataTooLargeError(`the claims are ${claimsJson.length} bytes as JSON, at most ${MAX_CLAIMS}`);
    return { user, claims: deepFreeze(JSON.parse(claimsJson)), claimsJson, error: null };
  } catch (error) {
    // Answered at response time, as a change that cannot be sent is.
    if (!(error instanceof EdgeSessionError)) throw error;
    return { user, claims: Object.freeze({}), claimsJson: null, error };
  }
}

function rememberOf(options) {
  if (options === undefined || options === null) return false;
  if (typeof options !== "object") throw new TypeError("login(user, claims, options): options must be an object, such as { remember: true }");
  const { remember = false } = options;
  if (typeof remember !== "boolean") throw new TypeError("login(user, claims, { remember }): remember must be true or false");
  return remember;
}

export class EdgeSession {
  #identity;
  #data;
  #snapshot;
  #forced = new Map();
  #claims;
  #login = null;
  #logout = false;
  #fresh = false; // the data was started over (logout, or a login replacing a signed-in session)
  #visitorStatus; // a visitor's: "none", or "unavailable" when the worker could not check its cookie
  #result = null; // { headers } or { error }, once the response is committed
  #dataLimit;
  #log;

  /**
   * `identity`: what verify() returned (null: a visitor without a session). `dataStatus`, for
   * a visitor only: "unavailable" when the request carried X-Session-Data-Status: unavailable
   * alone (data is then null).
   */
  constructor(identity, { dataLimit = 4096, log = defaultLog, dataStatus = "none" } = {}) {
    if (dataStatus !== "none" && dataStatus !== "unavailable") throw new TypeError('dataStatus must be "none" or "unavailable"');
    this.#identity = identity;
    this.#visitorStatus = identity ? "none" : dataStatus;
    this.#data = identity ? identity.data : this.#visitorStatus === "unavailable" ? null : {};
    this.#snapshot = snapshotOf(this.#data);
    this.#claims = frozenCopy(identity?.claims ?? {});
    this.#dataLimit = dataLimit;
    this.#log = log;
  }

  get user() {
    if (this.#logout) return null;
    return this.#login ? this.#login.user : (this.#identity?.user ?? null);
  }
  /** Whether the request comes from a guest session (no user), until login() or logout(). */
  get guest() {
    return !this.#login && !this.#logout && this.#identity?.guest === true;
  }
  /** Whether the session is remembered ("remember me"): the assertion's, or login()'s option. */
  get remember() {
    if (this.#logout) return false;
    return this.#login ? this.#login.remember : this.#identity?.remember === true;
  }
  get claims() {
    if (this.#logout) return Object.freeze({});
    return this.#login ? this.#login.claims : this.#claims;
  }
  get source() {
    return this.#identity?.source ?? null;
  }
  get authTime() {
    return this.#identity?.authTime ?? null;
  }
  get sessionHash() {
    return this.#identity?.sessionHash ?? null;
  }
  get dataStatus() {
    if (this.#fresh) return "none";
    return this.#identity ? this.#identity.dataStatus : this.#visitorStatus;
  }
  get dataVersion() {
    return this.#login || this.#logout || !this.#identity ? null : this.#identity.dataVersion;
  }
  /** The data: a plain object (null while dataStatus is "unavailable"). */
  get data() {
    return this.#data;
  }

  #open(what) {
    if (this.#result) throw new Error(`${what} after the response head was sent: the session's headers are already gone`);
  }

  /**
   * Signs `user` in: a new session with these claims, created by the worker (remembered with
   * `{ remember: true }`). Replacing a signed-in session, it starts with empty data. From a
   * guest (or a visitor) the data goes on: the worker carries the guest's data into the new
   * session, and the changes made here are applied on top of it.
   */
  login(user, claims, options) {
    this.#open("login()");
    const remember = rememberOf(options);
    this.#login = { ...loginOf(user, claims), remember };
    this.#logout = false;
    if (this.#identity?.user) this.#restart();
    return this;
  }

  /** Signs out: the worker ends the session and its data; nothing else is sent. */
  logout() {
    this.#open("logout()");
    this.#logout = true;
    this.#login = null;
    this.#restart();
    return this;
  }

  #restart() {
    this.#data = {};
    this.#snapshot = new Map();
    this.#forced = new Map();
    this.#fresh = true;
  }

  /** flash(key, value) keeps value under key; flash(key) returns it and removes it. */
  flash(key, ...value) {
    if (typeof key !== "string") throw new TypeError("flash(key): key must be a string");
    if (value.length > 0) return void this.patch({ [key]: value[0] });
    if (this.#data === null || !Object.hasOwn(this.#data, key)) return undefined;
    const found = this.#data[key];
    delete this.#data[key];
    return found;
  }

  /**
   * Sends these keys whatever the snapshot says (null removes one): for a change made
   * without reading, which works even while dataStatus is "unavailable".
   */
  patch(changes) {
    this.#open("patch()");
    if (!changes || typeof changes !== "object" || Array.isArray(changes)) throw new TypeError("patch(changes): changes must be a plain object");
    for (const [key, value] of Object.entries(changes)) {
      this.#forced.set(key, value);
      if (this.#data === null) continue;
      if (value === null) delete this.#data[key];
      else this.#data[key] = value;
    }
    return this;
  }

  /** A copy of `response` with the session's headers (the response itself when there are none). */
  commit(response) {
    if (!(response instanceof Response)) throw new TypeError("commit(response): response must be a Response");
    let headers;
    try {
      headers = this[COMMIT]();
    } catch (error) {
      const { status, body } = errorBody(error);
      return new Response(body, { status, headers: ERROR_HEADERS });
    }
    if (headers.length === 0) return response;
    const out = new Response(response.body, { status: response.status, statusText: response.statusText, headers: response.headers });
    for (const [name, value] of headers) out.headers.set(name, value);
    return out;
  }

  /** [[name, value], ...] to send; throws (and logs) a typed error when they cannot be. */
  [COMMIT]() {
    if (!this.#result) {
      try {
        this.#result = { headers: this.#headers() };
      } catch (error) {
        this.#result = { error };
        this.#log(error);
      }
    }
    if (this.#result.error) throw this.#result.error;
    return this.#result.headers;
  }

  #headers() {
    if (this.#logout) return [["X-Edge-Session-Logout", "1"]];
    const out = [];
    if (this.#login) {
      if (this.#login.error) throw this.#login.error;
      out.push(["X-Edge-Session-Login", encodeURIComponent(this.#login.user)]);
      if (this.#login.claimsJson) out.push(["X-Edge-Session-Claims", this.#login.claimsJson]);
      if (this.#login.remember) out.push(["X-Edge-Session-Remember", "1"]);
    }
    // A visitor's change too: on a guest path the worker makes it a guest session's first data.
    const patch = patchHeader(this.#data, this.#snapshot, this.#forced, this.#dataLimit);
    if (patch !== null) out.push(["X-Edge-Session-Data", patch]);
    return out;
  }
}
