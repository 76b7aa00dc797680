// The session data a request carries (X-Session-Data, -Version, -Status), trusted only
// when it is the data the assertion signed: dh (SHA-256 of the exact header bytes) and dv,
// or ds ("unavailable") for the status.
import { base64url, sha256 } from "./bytes.js";
import { DataMismatchError } from "./errors.js";
import { headerBytes, headerText } from "./headers.js";

/** `dh`: base64url (no padding) of the SHA-256 of the X-Session-Data value as received. */
export async function dataHash(value) {
  return base64url(await sha256(headerBytes(value)));
}

const mismatch = (why) => new DataMismatchError(why);

function unavailable(raw, version, p) {
  if (raw !== undefined || version !== undefined) throw mismatch("X-Session-Data-Status: unavailable comes with no other data header");
  if (p.dh !== undefined || p.dv !== undefined) throw mismatch("X-Session-Data-Status: unavailable, but the assertion has dh/dv");
  // the worker signs the status: an assertion of a session without data cannot be replayed beside it
  if (p.ds !== "unavailable") throw mismatch('X-Session-Data-Status: unavailable is not covered by the assertion (no ds "unavailable")');
  return { data: null, dataVersion: null, dataStatus: "unavailable" };
}

function parseData(raw) {
  let data;
  try {
    data = JSON.parse(headerText(raw));
  } catch {
    throw mismatch("X-Session-Data is not JSON");
  }
  if (!data || typeof data !== "object" || Array.isArray(data)) throw mismatch("X-Session-Data is not a JSON object");
  return data;
}

/**
 * { data, dataVersion, dataStatus } of a request whose assertion payload is `p`.
 * `get` reads a request header. Throws DataMismatchError when the headers are not the
 * ones signed: data without dh, dh without data, a different hash or version.
 */
export async function readData(get, p) {
  const raw = get("x-session-data");
  const version = get("x-session-data-version");
  const status = get("x-session-data-status");
  if (status !== undefined) {
    if (status !== "unavailable") throw mismatch(`X-Session-Data-Status ${JSON.stringify(status)} is not "unavailable"`);
    return unavailable(raw, version, p);
  }
  if (p.ds !== undefined) throw mismatch("the assertion says the data is unavailable (ds), but X-Session-Data-Status is missing");
  if (raw === undefined) {
    if (p.dh !== undefined) throw mismatch("X-Session-Data is missing: the assertion has dh");
    if (p.dv !== undefined || version !== undefined) throw mismatch("a data version (dv or X-Session-Data-Version) without X-Session-Data");
    return { data: {}, dataVersion: null, dataStatus: "none" };
  }
  if (typeof p.dh !== "string") throw mismatch("X-Session-Data is not covered by the assertion (no dh)");
  if ((await dataHash(raw)) !== p.dh) throw mismatch("dh does not match X-Session-Data");
  if (version === undefined) throw mismatch("X-Session-Data-Version is missing");
  if (!/^[0-9]{1,15}$/.test(version) || typeof p.dv !== "number" || p.dv !== Number(version)) throw mismatch("dv does not match X-Session-Data-Version");
  return { data: parseData(raw), dataVersion: p.dv, dataStatus: "ok" };
}
