// JSON as the worker takes it: compact, ASCII only (U+007F and above as \uXXXX), and only
// values that are really JSON (no function, BigInt, cycle, NaN, undefined, Date, Map...).
import { DataNotSerializableError } from "./errors.js";

/** Deepest nesting accepted inside one value (the worker's parser stops at 128 levels). */
export const MAX_DEPTH = 100;

/** Compact JSON with every character from U+007F up escaped: a valid HTTP field value. */
export function asciiJson(value) {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

const isPlainObject = (v) => {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

/**
 * Throws DataNotSerializableError unless `value` is plain JSON: null, a boolean, a finite
 * number, a well-formed string, an array or a plain object of those. `where` names it
 * in the message (`data.cart`).
 */
export function checkJson(value, where, depth = 0, ancestors = new Set()) {
  const refuse = (why) => {
    throw new DataNotSerializableError(`${where} ${why}: session data holds JSON values only`);
  };
  switch (typeof value) {
    case "string":
      if (!value.isWellFormed()) refuse("is a string with a lone surrogate");
      return;
    case "boolean":
      return;
    case "number":
      if (!Number.isFinite(value)) refuse(`is ${value}`);
      return;
    case "object":
      break;
    default:
      refuse(`is ${typeof value === "undefined" ? "undefined (delete the key or set it to null)" : `a ${typeof value}`}`);
  }
  if (value === null) return;
  if (ancestors.has(value)) refuse("contains a cycle");
  if (depth >= MAX_DEPTH) refuse(`is nested deeper than ${MAX_DEPTH} levels`);
  const isArray = Array.isArray(value);
  if (!isArray && !isPlainObject(value)) refuse(`is a ${value.constructor?.name ?? "non-plain object"}, not a plain object`);
  ancestors.add(value);
  if (isArray) {
    for (let i = 0; i < value.length; i++) checkJson(value[i], `${where}[${i}]`, depth + 1, ancestors);
  } else {
    if (Object.getOwnPropertySymbols(value).length > 0) refuse("has a symbol key");
    for (const key of Object.keys(value)) checkJson(value[key], `${where}.${key}`, depth + 1, ancestors);
  }
  ancestors.delete(value);
}

/** `value` as compact ASCII JSON, after checkJson. */
export function toJson(value, where) {
  checkJson(value, where);
  return asciiJson(value);
}
