// Bytes, hashes and base64 with Web APIs only (TextEncoder, crypto.subtle, btoa), so the
// verifier and the fetch helper run where node:crypto and Buffer do not (edge runtimes).

const encoder = new TextEncoder();

export const utf8 = (text) => encoder.encode(text);
export const latin1 = (text) => Uint8Array.from(text, (c) => c.charCodeAt(0));

/** Standard base64 of bytes, without padding. */
export function base64(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/=+$/, "");
}
export const base64url = (bytes) => base64(bytes).replace(/\+/g, "-").replace(/\//g, "_");

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/** HMAC-SHA256 of `text` with `secret` (a string or bytes). */
export async function hmacSha256(secret, text) {
  const raw = typeof secret === "string" ? utf8(secret) : secret;
  const key = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, utf8(text)));
}

/** Whether two strings are equal, in time that depends only on their lengths. */
export async function sameText(a, b) {
  const [x, y] = await Promise.all([sha256(utf8(String(a))), sha256(utf8(String(b)))]);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
}
