// Dirty tracking by snapshot: the JSON of each top-level key as it arrived, compared at
// response time with the JSON it has now. Changed and new keys are sent, removed keys
// (and keys set to null) are sent as null; nothing changed, nothing sent.
import { DataTooLargeError } from "./errors.js";
import { asciiJson, toJson } from "./json.js";

/** The longest X-Edge-Session-Data header the worker accepts. */
export const MAX_PATCH = 32768;

/** key -> JSON text of its value, for data parsed from the request (null: none). */
export function snapshotOf(data) {
  const snapshot = new Map();
  if (data) for (const key of Object.keys(data)) snapshot.set(key, asciiJson(data[key]));
  return snapshot;
}

const member = (key, json) => `${asciiJson(key)}:${json}`;

// key -> JSON now, for every key of data (null-valued keys included, as "null").
function currentJson(data) {
  const now = new Map();
  for (const key of Object.keys(data)) now.set(key, toJson(data[key], `data[${JSON.stringify(key)}]`));
  return now;
}

function changes(data, snapshot, forced) {
  if (data === null) {
    // The data could not be read: only what patch() asked for, blind.
    return { members: [...forced].map(([key, value]) => member(key, toJson(value, `data[${JSON.stringify(key)}]`))), size: null };
  }
  const now = currentJson(data);
  const members = [];
  for (const [key, json] of now) if (json !== snapshot.get(key) || forced.has(key)) members.push(member(key, json));
  for (const key of new Set([...snapshot.keys(), ...forced.keys()])) if (!now.has(key)) members.push(member(key, "null"));
  const after = [...now].filter(([, json]) => json !== "null").map(([key, json]) => member(key, json));
  return { members, size: `{${after.join(",")}}`.length };
}

/**
 * The X-Edge-Session-Data value for `data` against `snapshot` (and the keys patch()
 * forced), or null when nothing changed. Throws DataNotSerializableError for a value
 * that is not JSON, DataTooLargeError over MAX_PATCH or the data over `dataLimit`.
 */
export function patchHeader(data, snapshot, forced, dataLimit) {
  const { members, size } = changes(data, snapshot, forced);
  if (members.length === 0) return null;
  if (size !== null && size > dataLimit) {
    throw new DataTooLargeError(`the session data would be ${size} bytes, over its limit of ${dataLimit} (dataLimit, the worker's SESSION_DATA_LIMIT)`);
  }
  const header = `{${members.join(",")}}`;
  if (header.length > MAX_PATCH) throw new DataTooLargeError(`the change is ${header.length} bytes, over the ${MAX_PATCH} an X-Edge-Session-Data header may have`);
  return header;
}
