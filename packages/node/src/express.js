// Express / Connect middleware: req.session (or req[property]) for every request, and the
// session's headers written just before the response head (res.writeHead is wrapped).
import { EdgeSessionError, ERROR_HEADERS, errorBody, needsUser } from "./errors.js";
import { createVerifier, visitorDataStatus } from "./verifier.js";
import { COMMIT, EdgeSession } from "./session.js";

/** Answers `error` as JSON {"error","detail"} (no stack trace), if the head is not sent yet. */
export function sendError(res, error) {
  const { status, body } = errorBody(error);
  if (res.headersSent) return void res.destroy(error);
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  res.writeHead(status, { ...ERROR_HEADERS, "content-length": Buffer.byteLength(body) });
  res.end(body);
}

// Wraps writeHead, write and end: the session's headers go out with the head; when they
// cannot (data too large, not JSON) the response becomes a 503 JSON answer, whole.
function hookResponse(res, session) {
  const { writeHead, write, end } = res;
  let prepared = false;
  let failed = null; // { status, body } once the response was replaced
  const prepare = () => {
    if (prepared || res.headersSent) return;
    prepared = true;
    try {
      for (const [name, value] of session[COMMIT]()) res.setHeader(name, value);
    } catch (error) {
      failed = errorBody(error);
    }
  };
  res.writeHead = function (status, ...rest) {
    prepare();
    if (!failed) return writeHead.call(this, status, ...rest);
    for (const name of this.getHeaderNames()) this.removeHeader(name);
    return writeHead.call(this, failed.status, { ...ERROR_HEADERS, "content-length": Buffer.byteLength(failed.body) });
  };
  res.write = function (chunk, ...rest) {
    prepare();
    if (!failed) return write.call(this, chunk, ...rest);
    const callback = rest.find((a) => typeof a === "function");
    if (callback) process.nextTick(callback);
    return true; // the handler's body is dropped: the answer is the error's
  };
  res.end = function (chunk, ...rest) {
    prepare();
    if (!failed) return end.call(this, chunk, ...rest);
    if (!this.headersSent) this.writeHead(failed.status);
    const callback = [chunk, ...rest].find((a) => typeof a === "function");
    return end.call(this, failed.body, callback);
  };
}

/**
 * Middleware: 401 missing_assertion unless req[property].user is set (a guest has none: it is
 * refused as a visitor without a session is). `requireUser` is that middleware for
 * req.session; `requireUser({ property })` makes one for another name.
 */
export function requireUser(options = {}, res = undefined, next = undefined) {
  if (typeof next === "function") return requireUser()(options, res, next); // used as the middleware itself
  const { property = "session" } = options;
  return function requireEdgeUser(req, res, next) {
    if (req[property]?.user) return next();
    sendError(res, needsUser(req[property]?.guest === true));
  };
}

/**
 * The middleware. Options: the verifier's (site, jwksUrl | keys, ...) or `verifier`;
 * `property` (default "session"); `log(error)` for response-time errors (console.error).
 * The returned middleware has `.required`: requireUser for the same property.
 */
export function edgeSession(options = {}) {
  const verifier = options.verifier ?? createVerifier(options);
  const property = options.property ?? "session";
  const sessionOptions = { dataLimit: verifier.dataLimit ?? 4096, ...(options.log ? { log: options.log } : {}) };
  async function edgeSessionMiddleware(req, res, next) {
    if (req[property] instanceof EdgeSession) return next(); // mounted twice
    if (req[property] !== undefined) {
      return next(new Error(`req.${property} is already set (express-session?): give edgeSession({ property: "edge" }) another name`));
    }
    let identity;
    try {
      identity = await verifier.verify(req);
    } catch (error) {
      if (error instanceof EdgeSessionError) return sendError(res, error);
      return next(error);
    }
    req[property] = new EdgeSession(identity, identity ? sessionOptions : { ...sessionOptions, dataStatus: visitorDataStatus(req) });
    hookResponse(res, req[property]);
    next();
  }
  edgeSessionMiddleware.required = requireUser({ property });
  return edgeSessionMiddleware;
}
