// Types for edge-session (hand-written; the code is plain ESM in src/).
import type { IncomingMessage, ServerResponse } from "node:http";

/** A JSON value, as session data and claims hold them. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/**
 * What vouched for the session: a signed-in one's `ticket`, `kv`, `lookup` or `stale`; a
 * guest's `ticket`, `state` (its Durable Object) or `stale`.
 */
export type Source = UserSource | GuestSource;
export type UserSource = "ticket" | "kv" | "lookup" | "stale";
export type GuestSource = "ticket" | "state" | "stale";
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

interface IdentityBase<TData extends object> {
  /** SHA-256 of the session ID, 64 hex digits. */
  sessionHash: string;
  /** {} when the session has no data, null when its data cannot be read now. */
  data: TData | null;
  dataVersion: number | null;
  dataStatus: DataStatus;
  /** The kid of the key that signed the assertion. */
  keyId: string;
  /** The verified assertion's payload (iss, sub?, guest?, sid, src, aud, iat, exp, auth_time?, remember?, claims?, dv?, dh?, ds?). */
  payload: Readonly<JsonObject>;
}

/** A signed-in user's session, as the worker vouches for it. */
export interface UserIdentity<TData extends object = JsonObject> extends IdentityBase<TData> {
  user: string;
  guest: false;
  /** Signed in with "remember me" (`"remember": true` in the assertion). */
  remember: boolean;
  claims: JsonObject;
  source: UserSource;
  /** When the session was created, unix seconds. */
  authTime: number;
}

/** A guest session (a visitor who has not signed in, on a GUEST_PATHS path): no user. */
export interface GuestIdentity<TData extends object = JsonObject> extends IdentityBase<TData> {
  user: null;
  guest: true;
  remember: false;
  claims: JsonObject;
  source: GuestSource;
  authTime: null;
}

/** What the worker vouches for: check `user` (or `guest`), not only that there is an identity. */
export type Identity<TData extends object = JsonObject> = UserIdentity<TData> | GuestIdentity<TData>;

export interface Verifier<TData extends object = JsonObject> {
  /**
   * The identity of a user or a guest; null for a visitor without a session (no assertion,
   * also when X-Session-Data-Status: unavailable comes alone); or a typed error.
   */
  verify(request: Request | Headers | IncomingMessage | Record<string, string | string[] | undefined>): Promise<Identity<TData> | null>;
  readonly site: string;
  readonly dataLimit: number;
}

export function createVerifier<TData extends object = JsonObject>(options: VerifierOptions): Verifier<TData>;

export interface SessionOptions {
  dataLimit?: number;
  /** Called with a response-time error (data too large, not JSON). Default: console.error. */
  log?: (error: Error) => void;
  /**
   * A visitor's (identity null) only: "unavailable" when the request carried
   * X-Session-Data-Status: unavailable alone (the worker could not check its session cookie).
   * The middlewares set it. Default "none".
   */
  dataStatus?: "none" | "unavailable";
}

export interface LoginOptions {
  /** "Remember me": sends X-Edge-Session-Remember: 1 (longer timeouts, cookies that outlive the browser). */
  remember?: boolean;
}

/**
 * The session object: req.session (Express) or what fetchSession().read() returns.
 *
 * `TData` (default JsonObject) types its data, and so does every type that carries it:
 * `edgeSession<Cart>()`, `fetchSession<Cart>()`, `withEdgeSession<Cart>()`,
 * `createVerifier<Cart>()`. Declare its keys optional (`{ cart?: string[] }`): a new session,
 * a guest's first change and a login that replaces a signed-in session all start from `{}`.
 * The values must be JSON (a Date or a Map is refused when the response goes out).
 */
export class EdgeSession<TData extends object = JsonObject> {
  constructor(identity: Identity<TData> | null, options?: SessionOptions);
  /** The user, or null (a visitor without a session, a guest, or after logout()). */
  readonly user: string | null;
  /** Whether the request comes from a guest session (false for users and visitors, and after login() or logout()). */
  readonly guest: boolean;
  /** Whether the session is remembered: the assertion's, or login()'s `remember`. */
  readonly remember: boolean;
  /** Frozen. */
  readonly claims: Readonly<JsonObject>;
  readonly source: Source | null;
  readonly authTime: number | null;
  readonly sessionHash: string | null;
  readonly dataStatus: DataStatus;
  readonly dataVersion: number | null;
  /**
   * The data, dirty tracked per top-level key: changed, new and deleted keys are sent with
   * the response (for a guest and a visitor without a session too). null while dataStatus is
   * "unavailable": check it before reading.
   */
  readonly data: TData | null;
  /**
   * Signs `user` in: a new session. Replacing a signed-in session it starts with empty data;
   * from a guest (or a visitor) the data goes on. `claims`: at most 2 KB of JSON.
   */
  login(user: string, claims?: JsonObject | null, options?: LoginOptions): this;
  /** Signs out; no change to data is sent. */
  logout(): this;
  /** Keeps `value` under `key`. */
  flash<K extends keyof TData & string>(key: K, value: TData[K]): void;
  /** Returns the value under `key` and removes it (undefined when absent). */
  flash<K extends keyof TData & string>(key: K): TData[K] | undefined;
  /** Sends these keys as given (null removes), even unread or while data is unavailable. */
  patch(changes: { [K in keyof TData]?: TData[K] | null }): this;
  /** `response` with the session's headers added (a copy; the same response when there are none). */
  commit(response: Response): Response;
}

export interface EdgeSessionOptions<TData extends object = JsonObject> extends VerifierOptions {
  /** Use this verifier instead of making one from the options. */
  verifier?: Verifier<TData>;
  /** Where the session goes on the request. Default "session". */
  property?: string;
  log?: (error: Error) => void;
}

type Middleware = (req: IncomingMessage & Record<string, any>, res: ServerResponse, next: (error?: unknown) => void) => void;

/**
 * A request edgeSession<TData>() went through: `req.session` (or `req[property]`) is its
 * session. For Express's own Request type, declare it once:
 * `declare global { namespace Express { interface Request { session: EdgeSession<Cart> } } }`.
 */
export type EdgeRequest<TData extends object = JsonObject, Property extends string = "session"> = IncomingMessage & {
  [P in Property]: EdgeSession<TData>;
};

/** The middleware edgeSession() returns, with `.required`. */
export type EdgeSessionMiddleware<TData extends object = JsonObject> = Middleware & {
  /** 401 missing_assertion unless a user is signed in (a guest is not). */
  required: Middleware;
};

/** Express / Connect middleware: req[property] is an EdgeSession<TData>. */
export function edgeSession<TData extends object = JsonObject>(
  options: EdgeSessionOptions<TData> | (Partial<EdgeSessionOptions<TData>> & { verifier: Verifier<TData> }),
): EdgeSessionMiddleware<TData>;
/**
 * 401 missing_assertion unless req[property].user is set: visitors without a session and
 * guests are refused alike. `app.get(path, requireUser, ...)` for req.session, or
 * `requireUser({ property })` for another name.
 */
export function requireUser(options?: { property?: string }): Middleware;
export function requireUser(req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void): void;

export interface FetchSession<TData extends object = JsonObject> {
  verifier: Verifier<TData>;
  /** The request's session; rejects with a typed error for a bad assertion. */
  read(request: Request): Promise<EdgeSession<TData>>;
}
export function fetchSession<TData extends object = JsonObject>(options: EdgeSessionOptions<TData> | Verifier<TData>): FetchSession<TData>;
/** `required: true`: requests without a signed-in user (visitors, guests) get 401 missing_assertion. */
export function withEdgeSession<TData extends object = JsonObject, Rest extends unknown[] = any[]>(
  options: (EdgeSessionOptions<TData> | (Partial<EdgeSessionOptions<TData>> & { verifier: Verifier<TData> })) & { required?: boolean },
  handler: (request: Request, session: EdgeSession<TData>, ...rest: Rest) => Response | Promise<Response>,
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
