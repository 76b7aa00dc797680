// verify(request): the identity the worker vouches for, from a checked X-Session-Assertion.
import { jwtVerify, errors } from "jose";
import { EdgeSessionError, InvalidAssertionError } from "./errors.js";
import { headerReader } from "./headers.js";
import { keyResolver } from "./keys.js";
import { readData } from "./data.js";

export const ISSUER = "edge-session";
/** What may vouch for a signed-in session (src), and for a guest's: its object (`state`), never KV or the lookup. */
export const SOURCES = Object.freeze(["ticket", "kv", "lookup", "stale"]);
export const GUEST_SOURCES = Object.freeze(["ticket", "state", "stale"]);
const MAX_ASSERTION = 8192;
const DEFAULT_DATA_LIMIT = 4096;
const MAX_DATA_LIMIT = 8192;
// Headers only the worker sends, and only along with an assertion; except that
// X-Session-Data-Status: unavailable comes alone when the worker could not check a visitor's
// session cookie (its stores failing).
const IDENTITY_HEADERS = ["x-session-user", "x-session-claims", "x-session-source", "x-session-data", "x-session-data-version", "x-session-data-status"];

// The assertion's audience: scheme://host[:port], as the URL parser writes it.
function siteOrigin(site) {
  let url = null;
  try {
    url = typeof site === "string" ? new URL(site) : null;
  } catch {
    /* refused below */
  }
  if (!url || !/^https?:$/.test(url.protocol) || url.pathname !== "/" || url.search || url.hash || url.username) {
    throw new TypeError(`site must be the site as browsers address it, e.g. "https://www.example.com", not ${JSON.stringify(site)}`);
  }
  return url.origin;
}

function checkOptions(options) {
  if (!options || typeof options !== "object") throw new TypeError("createVerifier needs options: { site, jwksUrl? | keys? }");
  const site = siteOrigin(options.site);
  const dataLimit = options.dataLimit ?? DEFAULT_DATA_LIMIT;
  if (!Number.isInteger(dataLimit) || dataLimit < 1 || dataLimit > MAX_DATA_LIMIT) throw new TypeError(`dataLimit must be an integer from 1 to ${MAX_DATA_LIMIT}`);
  const clockTolerance = options.clockTolerance ?? 30;
  if (typeof clockTolerance !== "number" || !(clockTolerance >= 0)) throw new TypeError("clockTolerance must be a number of seconds, at least 0");
  return { site, dataLimit, clockTolerance };
}

/**
 * A verifier for one site. Options: `site` (required), `jwksUrl` (default
 * `${site}/.edge-session/jwks.json`) or `keys` (a static JWKS), `clockTolerance` (s, 30),
 * `dataLimit` (bytes, 4096), `jwksTimeout` (ms, 5000), `jwksCooldown` (ms, 30000).
 */
export function createVerifier(options) {
  const { site, dataLimit, clockTolerance } = checkOptions(options);
  const now = options.now ?? Date.now;
  const keys = keyResolver({
    keys: options.keys,
    jwksUrl: options.keys === undefined ? (options.jwksUrl ?? `${site}/.edge-session/jwks.json`) : options.jwksUrl,
    timeout: options.jwksTimeout ?? 5000,
    cooldown: options.jwksCooldown ?? 30_000,
    now,
  });
  // sub is checked below: a guest's assertion has none
  const jwtOptions = { issuer: ISSUER, audience: site, algorithms: ["ES256"], clockTolerance, requiredClaims: ["iss", "aud", "iat", "exp"] };

  async function verify(request) {
    const get = headerReader(request);
    const token = get("x-session-assertion");
    if (token === undefined) {
      checkNoIdentity(get);
      return null;
    }
    const { payload, protectedHeader } = await checkToken(token, keys, { ...jwtOptions, currentDate: new Date(now()) });
    checkPayload(payload, now() / 1000, clockTolerance);
    checkIdentityHeaders(get, payload);
    const { data, dataVersion, dataStatus } = await readData(get, payload);
    const guest = payload.guest === true;
    return {
      user: guest ? null : payload.sub,
      guest,
      remember: payload.remember === true,
      claims: payload.claims ?? {},
      source: payload.src,
      authTime: guest ? null : payload.auth_time,
      sessionHash: payload.sid,
      data,
      dataVersion,
      dataStatus,
      keyId: protectedHeader.kid,
      payload: Object.freeze(payload),
    };
  }
  return { verify, site, dataLimit };
}

// A request without an assertion carries no identity header: someone else sent it. The one
// exception is X-Session-Data-Status: unavailable on its own.
function checkNoIdentity(get) {
  for (const name of IDENTITY_HEADERS) {
    const value = get(name);
    if (value === undefined || (name === "x-session-data-status" && value === "unavailable")) continue;
    const only = name === "x-session-data-status" ? ' (only "unavailable" comes alone)' : "";
    throw new InvalidAssertionError(`${name} without X-Session-Assertion: not sent by the worker${only}`);
  }
}

/**
 * The data status of a request that verify() found without an assertion: "unavailable" when the
 * worker could not check the visitor's session cookie (X-Session-Data-Status: unavailable alone),
 * else "none".
 */
export function visitorDataStatus(request) {
  return headerReader(request)("x-session-data-status") === "unavailable" ? "unavailable" : "none";
}

async function checkToken(token, keys, jwtOptions) {
  if (token.length > MAX_ASSERTION) throw new InvalidAssertionError(`malformed: longer than ${MAX_ASSERTION} bytes`);
  let result;
  try {
    result = await jwtVerify(token, keys, jwtOptions);
  } catch (e) {
    if (e instanceof EdgeSessionError) throw e; // from the key function: already typed
    throw new InvalidAssertionError(joseMessage(e), { cause: e });
  }
  const { protectedHeader } = result;
  if (protectedHeader.typ !== undefined && protectedHeader.typ !== "JWT") throw new InvalidAssertionError(`typ must be JWT, not ${JSON.stringify(protectedHeader.typ)}`);
  return result;
}

function joseMessage(e) {
  if (e instanceof errors.JWTExpired) return `expired (exp ${e.payload?.exp})`;
  if (e instanceof errors.JWTClaimValidationFailed) return `${e.claim}: ${e.message}`;
  if (e instanceof errors.JOSEAlgNotAllowed) return "alg must be ES256";
  if (e instanceof errors.JWSSignatureVerificationFailed) return "bad signature";
  if (e instanceof errors.JOSEError) return `malformed: ${e.message}`;
  return `malformed: ${e?.message ?? e}`;
}

// What jose does not check: the fields the worker always sends, and iat in the future. A
// guest's assertion ("guest": true) has no sub, auth_time, claims or remember, and its src is
// ticket, state or stale; anyone else's has a sub and never "guest".
function checkPayload(p, nowSec, tolerance) {
  const refuse = (why) => {
    throw new InvalidAssertionError(why);
  };
  if (p.guest !== undefined && p.guest !== true) refuse(`guest must be true when present, not ${JSON.stringify(p.guest)}`);
  const guest = p.guest === true;
  if (guest) {
    for (const name of ["sub", "auth_time", "claims", "remember"]) if (p[name] !== undefined) refuse(`a guest's assertion has no ${name}`);
  } else {
    if (typeof p.sub !== "string" || p.sub === "") refuse("sub is missing or empty (and the assertion is not a guest's)");
    if (typeof p.auth_time !== "number" || !Number.isFinite(p.auth_time)) refuse("auth_time must be a number (unix seconds)");
    if (p.claims !== undefined && (!p.claims || typeof p.claims !== "object" || Array.isArray(p.claims))) refuse("claims must be a JSON object");
    if (p.remember !== undefined && typeof p.remember !== "boolean") refuse("remember must be true or false");
  }
  const sources = guest ? GUEST_SOURCES : SOURCES;
  if (!sources.includes(p.src)) refuse(`src must be one of ${sources.join(", ")}${guest ? " for a guest" : ""}, not ${JSON.stringify(p.src)}`);
  if (typeof p.sid !== "string" || !/^[0-9a-f]{64}$/.test(p.sid)) refuse("sid must be 64 lowercase hex digits");
  if (p.iat > nowSec + tolerance) refuse(`not yet valid: issued ${Math.ceil(p.iat - nowSec)} s in the future`);
}

// The worker sends X-Session-User (never for a guest) and X-Session-Source with every
// assertion: they must say the same.
function checkIdentityHeaders(get, p) {
  if (p.guest === true) {
    for (const name of ["X-Session-User", "X-Session-Claims"]) {
      if (get(name) !== undefined) throw new InvalidAssertionError(`${name} beside a guest's assertion: the worker sends none for a guest`);
    }
    return checkSource(get, p);
  }
  const user = get("x-session-user");
  if (user === undefined) throw new InvalidAssertionError("X-Session-User is missing");
  let decoded;
  try {
    decoded = decodeURIComponent(user);
  } catch {
    throw new InvalidAssertionError("X-Session-User is not valid percent-encoded UTF-8");
  }
  if (decoded !== p.sub) throw new InvalidAssertionError("sub does not match X-Session-User");
  checkSource(get, p);
}

function checkSource(get, p) {
  const source = get("x-session-source");
  if (source === undefined) throw new InvalidAssertionError("X-Session-Source is missing");
  if (source !== p.src) throw new InvalidAssertionError("src does not match X-Session-Source");
}
