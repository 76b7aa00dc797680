// Types for edge-session (hand-written; the code is plain ESM in src/).
import type { IncomingMessage, ServerResponse } from "node:http";

/** A JSON value, as session data and claims hold them. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export type Source = "ticket" | "kv" | "lookup" | "stale";
export type DataStatus = "none" | "ok" | "unavailable";

export interface VerifierOptions {
  /** The site as browsers address it (the assertion's audience), e.g. "https://www.example.com". */
  site: string;
  /** Where the worker publishes its keys. Default `${site}/.edge-session/jwks.json`. */
  jwksUrl?: string;
  /** A static JWKS instead of fetching one. */
  keys?: { keys: object[] };
  /** Clock skew allowed on exp and iat, in seconds. Default 30. */
  clockTolerance?: number;
  /** The worker's SESSION_DATA_LIMIT, in bytes (1..8192). Default 4096. */
  dataLimit?: number;
  /** How long a JWKS fetch may take, in ms. Default 5000. */
  jwksTimeout?: number;
  /** An unknown kid refetches the JWKS at most this often, in ms. Default 30000. */
  jwksCooldown?: number;
}

/** What the worker vouches for. */
export interface Identity {
  user: string;
  claims: JsonObject;
  source: Source;
  /** When the session was created, unix seconds. */
  authTime: number;
  /** SHA-256 of the session ID, 64 hex digits. */
  sessionHash: string;
  /** {} when the session has no data, null when its data cannot be read now. */
  data: JsonObject | null;
  dataVersion: number | null;
  dataStatus: DataStatus;
  /** The kid of the key that signed the assertion. */
  keyId: string;
  /** The verified assertion's payload (iss, sub, sid, src, aud, iat, exp, auth_time, claims?, dv?, dh?). */
  payload: Readonly<JsonObject>;
}

export interface Verifier {
  /** The identity, null for an anonymous request (no assertion), or a typed error. */
  verify(request: Request | Headers | IncomingMessage | Record<string, string | string[] | undefined>): Promise<Identity | null>;
  readonly site: string;
  readonly dataLimit: number;
}

export function createVerifier(options: VerifierOptions): Verifier;

export interface SessionOptions {
  dataLimit?: number;
  /** Called with a response-time error (data too large, not JSON). Default: console.error. */
  log?: (error: Error) => void;
}

/** The session object: req.session (Express) or what fetchSession().read() returns. */
export class EdgeSession {
  constructor(identity: Identity | null, options?: SessionOptions);
  /** The user, or null (anonymous, or after logout()). */
  readonly user: string | null;
  /** Frozen. */
  readonly claims: Readonly<JsonObject>;
  readonly source: Source | null;
  readonly authTime: number | null;
  readonly sessionHash: string | null;
  readonly dataStatus: DataStatus;
  readonly dataVersion: number | null;
  /**
   * The data, dirty tracked per top-level key: changed, new and deleted keys are sent with
   * the response. null while dataStatus is "unavailable": check it before reading.
   */
  readonly data: JsonObject | null;
  /** Signs `user` in (a new session, empty data). `claims`: at most 2 KB of JSON. */
  login(user: string, claims?: JsonObject): this;
  /** Signs out; no change to data is sent. */
  logout(): this;
  /** Keeps `value` under `key`. */
  flash(key: string, value: Json): void;
  /** Returns the value under `key` and removes it (undefined when absent). */
  flash(key: string): Json | undefined;
  /** Sends these keys as given (null removes), even unread or while data is unavailable. */
  patch(changes: JsonObject): this;
  /** `response` with the session's headers added (a copy; the same response when there are none). */
  commit(response: Response): Response;
}

export interface EdgeSessionOptions extends VerifierOptions {
  /** Use this verifier instead of making one from the options. */
  verifier?: Verifier;
  /** Where the session goes on the request. Default "session". */
  property?: string;
  log?: (error: Error) => void;
}

type Middleware = (req: IncomingMessage & Record<string, any>, res: ServerResponse, next: (error?: unknown) => void) => void;

/** Express / Connect middleware: req[property] is an EdgeSession. */
export function edgeSession(options: EdgeSessionOptions | (Partial<EdgeSessionOptions> & { verifier: Verifier })): Middleware & {
  /** 401 missing_assertion unless a user is signed in. */
  required: Middleware;
};
/** 401 missing_assertion unless req[property].user is set. */
/** `app.get(path, requireUser, ...)` for req.session, or `requireUser({ property })` for another name. */
export function requireUser(options?: { property?: string }): Middleware;
export function requireUser(req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void): void;

export interface FetchSession {
  verifier: Verifier;
  /** The request's session; rejects with a typed error for a bad assertion. */
  read(request: Request): Promise<EdgeSession>;
}
export function fetchSession(options: EdgeSessionOptions | Verifier): FetchSession;
export function withEdgeSession<Rest extends unknown[]>(
  options: (EdgeSessionOptions | (Partial<EdgeSessionOptions> & { verifier: Verifier })) & { required?: boolean },
  handler: (request: Request, session: EdgeSession, ...rest: Rest) => Response | Promise<Response>,
): (request: Request, ...rest: Rest) => Promise<Response>;
/** A JSON Response {"error", "detail"} with the error's status. */
export function errorResponse(error: unknown): Response;

export interface LookupOptions {
  /** express-session's secret, or a list (newest first). */
  secret: string | Uint8Array | Array<string | Uint8Array>;
  /** LOOKUP_TOKEN: the bearer token the worker sends. */
  token: string;
  /** Who is signed in with this session, or null. Default: session.user, .claims, .created. */
  identity?: (session: any) => { user: string; claims?: JsonObject; created?: number } | null | Promise<{ user: string; claims?: JsonObject; created?: number } | null>;
  /** Default "s:". */
  cookiePrefix?: string;
}
/** The lookup endpoint for an express-session store. */
export function lookupHandler(store: { get(id: string, callback: (error: unknown, session?: any) => void): void }, options: LookupOptions): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
/** The session id in an express-session cookie value, or null when it is not genuine. */
export function unsignCookie(raw: string, secrets: Array<string | Uint8Array>, prefix?: string): Promise<string | null>;

/** Compact JSON with U+007F and above escaped as \uXXXX. */
export function asciiJson(value: unknown): string;

export class EdgeSessionError extends Error {
  readonly code: string;
  readonly status: number;
}
export class MissingAssertionError extends EdgeSessionError {
  readonly code: "missing_assertion";
  readonly status: 401;
}
export class InvalidAssertionError extends EdgeSessionError {
  readonly code: "invalid_assertion";
  readonly status: 401;
}
export class DataMismatchError extends EdgeSessionError {
  readonly code: "data_mismatch";
  readonly status: 401;
}
export class KeysUnavailableError extends EdgeSessionError {
  readonly code: "keys_unavailable";
  readonly status: 503;
}
export class DataTooLargeError extends EdgeSessionError {
  readonly code: "data_too_large";
  readonly status: 503;
}
export class DataNotSerializableError extends EdgeSessionError {
  readonly code: "data_not_serializable";
  readonly status: 503;
}
