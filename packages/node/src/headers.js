// Reading request headers from whatever the caller has: a Fetch Request, a Headers
// object, a Node IncomingMessage (Express, Connect, node:http) or a plain object.
import { latin1, utf8 } from "./bytes.js";

/** A function name -> header value (string) or undefined, names matched without case. */
export function headerReader(input) {
  if (input == null || typeof input !== "object") throw new TypeError("verify() takes a Request, an IncomingMessage or a headers object");
  const source = input.headers && typeof input.headers === "object" ? input.headers : input;
  if (typeof source.get === "function") {
    return (name) => source.get(name) ?? undefined;
  }
  const lower = new Map();
  for (const [key, value] of Object.entries(source)) lower.set(key.toLowerCase(), value);
  return (name) => {
    const value = lower.get(name.toLowerCase());
    if (value === undefined || value === null) return undefined;
    return Array.isArray(value) ? value.join(", ") : String(value);
  };
}

/**
 * The bytes of a header value as it was received. Node and the Fetch standard give each
 * byte as one character (Latin-1); a character past U+00FF means the platform already
 * decoded UTF-8, so its UTF-8 bytes are the ones that were sent.
 */
export function headerBytes(value) {
  return /[^\x00-\xff]/.test(value) ? utf8(value) : latin1(value);
}

/** The header value as text: its bytes read as UTF-8 (the worker sends ASCII anyway). */
export function headerText(value) {
  return /[^\x00-\x7f]/.test(value) ? new TextDecoder().decode(headerBytes(value)) : value;
}
