// edge-session: the origin side of the worker's protocol (README.md).
export {
  EdgeSessionError,
  MissingAssertionError,
  InvalidAssertionError,
  DataMismatchError,
  KeysUnavailableError,
  DataTooLargeError,
  DataNotSerializableError,
} from "./errors.js";
export { createVerifier } from "./verifier.js";
export { EdgeSession } from "./session.js";
export { edgeSession, requireUser } from "./express.js";
export { fetchSession, withEdgeSession, errorResponse } from "./fetch.js";
export { lookupHandler, unsignCookie } from "./lookup.js";
export { asciiJson } from "./json.js";
