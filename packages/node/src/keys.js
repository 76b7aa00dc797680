// The worker's public keys: a static JWKS, or the one it publishes, fetched with jose
// (cached; refetched when a kid is unknown, at most once per cooldown).
import { createLocalJWKSet, createRemoteJWKSet, errors } from "jose";
import { InvalidAssertionError, KeysUnavailableError } from "./errors.js";

/** After a failed fetch, requests fail at once for this long instead of each waiting out a timeout. */
export const RETRY_AFTER_FAILURE_MS = 5000;

function staticKeys(keys) {
  if (!keys || typeof keys !== "object" || !Array.isArray(keys.keys)) throw new TypeError('keys must be a JWKS object {"keys":[...]}');
  const local = createLocalJWKSet(keys);
  return async (header, token) => {
    try {
      return await local(header, token);
    } catch (e) {
      throw new InvalidAssertionError(noKeyMessage(e, header), { cause: e });
    }
  };
}

function noKeyMessage(e, header) {
  if (e instanceof errors.JWKSNoMatchingKey) return `no ES256 key with kid ${JSON.stringify(header.kid)} in the JWKS`;
  return `no usable key: ${e.message}`;
}

function remoteKeys(url, { timeout, cooldown, now }) {
  const jwksUrl = new URL(url);
  if (jwksUrl.protocol !== "https:" && jwksUrl.protocol !== "http:") throw new TypeError(`jwksUrl must be http(s), not ${jwksUrl.protocol}`);
  const remote = createRemoteJWKSet(jwksUrl, { timeoutDuration: timeout, cooldownDuration: cooldown });
  let failure = null; // { at, message } of the last failed fetch
  const knows = (kid) => remote.fresh && (remote.jwks()?.keys ?? []).some((k) => k.kid === kid);
  return async (header, token) => {
    if (failure && now() - failure.at < RETRY_AFTER_FAILURE_MS && !knows(header.kid)) {
      throw new KeysUnavailableError(`the JWKS could not be fetched ${Math.round((now() - failure.at) / 1000)} s ago: ${failure.message}`);
    }
    try {
      const key = await remote(header, token);
      failure = null;
      return key;
    } catch (e) {
      if (e instanceof errors.JWKSNoMatchingKey || e instanceof errors.JWKSMultipleMatchingKeys) {
        throw new InvalidAssertionError(noKeyMessage(e, header), { cause: e });
      }
      const message = e instanceof errors.JWKSTimeout ? `no answer from ${jwksUrl} within ${timeout} ms` : `${jwksUrl}: ${describe(e)}`;
      failure = { at: now(), message };
      throw new KeysUnavailableError(`the JWKS could not be fetched: ${message}`, { cause: e });
    }
  };
}

// fetch() says "fetch failed" and keeps the reason (ECONNREFUSED...) in its cause.
function describe(e) {
  const cause = e?.cause;
  return cause?.code ? `${e.message} (${cause.code})` : (e?.message ?? String(e));
}

/**
 * The key function jwtVerify calls with the token's header. Its errors are already typed:
 * InvalidAssertionError for an unknown kid, KeysUnavailableError when the JWKS cannot be had.
 */
export function keyResolver({ keys, jwksUrl, timeout, cooldown, now }) {
  if (keys !== undefined && jwksUrl !== undefined) throw new TypeError("give keys or jwksUrl, not both");
  return keys !== undefined ? staticKeys(keys) : remoteKeys(jwksUrl, { timeout, cooldown, now });
}
