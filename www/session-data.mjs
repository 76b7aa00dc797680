// Session data as the demo site (Acorn) reads it, and its reading list. Used by
// origin.mjs (routes) and pages.mjs (the dashboard). Node built-ins only. See www/README.md.
//
// The worker keeps a small JSON object per session ("session data") and forwards it
// with each request: X-Session-Data (compact JSON, ASCII, non-ASCII as \uXXXX) and
// X-Session-Data-Version. The site changes it by answering with X-Edge-Session-Data,
// a top-level merge patch (a key's value replaced whole, null removes the key).
// Acorn keeps nothing itself: its reading list lives there, one key per item.
export const READING_PREFIX = "read:";
export const MAX_TITLE = 200; // characters (code points)
export const MAX_ITEMS = 20;
export const DEFAULT_DATA_LIMIT = 4096; // the worker's SESSION_DATA_LIMIT default

/**
 * A request's session data as this site reads it:
 * { data, dataVersion, dataStatus, dataRaw } where dataStatus is "none" (no data),
 * "ok", "unavailable" (the worker could not read it: X-Session-Data-Status) or
 * "invalid" (X-Session-Data is not a JSON object); data is the object (or null).
 */
export function sessionData(h) {
  const raw = h["x-session-data"];
  const version = h["x-session-data-version"];
  const dataVersion = version !== undefined && /^\d+$/.test(version) ? Number(version) : null;
  if (String(h["x-session-data-status"] ?? "").toLowerCase() === "unavailable") {
    return { data: null, dataVersion, dataStatus: "unavailable", dataRaw: raw ?? null };
  }
  if (raw === undefined) return { data: null, dataVersion, dataStatus: "none", dataRaw: null };
  try {
    const data = JSON.parse(raw);
    if (data && typeof data === "object" && !Array.isArray(data)) return { data, dataVersion, dataStatus: "ok", dataRaw: raw };
  } catch {
    /* not JSON */
  }
  return { data: null, dataVersion, dataStatus: "invalid", dataRaw: raw };
}

/** The reading list in session data: [{ id, title, added_by, at }], oldest first. */
export function readingList(data) {
  if (!data || typeof data !== "object") return [];
  const items = [];
  for (const [key, v] of Object.entries(data)) {
    if (!key.startsWith(READING_PREFIX) || !v || typeof v !== "object" || typeof v.title !== "string") continue;
    items.push({
      id: key.slice(READING_PREFIX.length),
      title: v.title,
      added_by: typeof v.added_by === "string" ? v.added_by : null,
      at: typeof v.at === "number" && Number.isFinite(v.at) ? v.at : null,
    });
  }
  return items.sort((x, y) => (x.at ?? 0) - (y.at ?? 0) || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
}

/** A title as typed: NFC, control characters as spaces, trimmed; null when empty. */
export function cleanTitle(value) {
  const t = String(value ?? "")
    .normalize("NFC")
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, " ")
    .replace(/\s+/g, " ")
    .trim();
  return t === "" ? null : t;
}
