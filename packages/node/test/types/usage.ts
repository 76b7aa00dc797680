// Compiled (never run) by test/types.test.js with tsc --noEmit: index.d.ts lets handlers read
// and write typed data without casts, and refuses what it should (@ts-expect-error fails the
// build when the error it expects is not there).
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  createVerifier,
  edgeSession,
  fetchSession,
  withEdgeSession,
  requireUser,
  EdgeSession,
  type EdgeRequest,
  type Identity,
  type Json,
  type JsonObject,
} from "edge-session";

interface Cart {
  cart?: { sku: string; qty: number }[];
  notice?: string;
  lang?: "en" | "fr";
}
const SITE = "https://www.example.com";

// The fetch helper: session.data is Cart | null.
const edge = fetchSession<Cart>({ site: SITE });
export async function add(request: Request): Promise<Response> {
  const session = await edge.read(request);
  if (session.data === null) return new Response("Try again", { status: 503 });
  (session.data.cart ??= []).push({ sku: "tea", qty: 1 });
  session.data.lang = "fr";
  const qty: number | undefined = session.data.cart[0]?.qty;
  // @ts-expect-error: lang is "en" | "fr"
  session.data.lang = "de";
  // @ts-expect-error: not a key of Cart
  session.data.other = 1;
  session.flash("notice", "Added");
  const notice: string | undefined = session.flash("notice");
  // @ts-expect-error: a notice is a string
  session.flash("notice", 42);
  session.patch({ cart: null, lang: "en" });
  // @ts-expect-error: patch takes Cart's keys
  session.patch({ unknown: 1 });
  const guest: boolean = session.guest;
  const remember: boolean = session.remember;
  session.login("alice", null, { remember: true });
  session.login("alice", { role: "reader" });
  // @ts-expect-error: remember is a boolean
  session.login("alice", null, { remember: "yes" });
  void qty, notice, guest, remember;
  return session.commit(new Response("ok"));
}

// withEdgeSession: TData from the argument, or from the handler's annotation.
export const page = withEdgeSession<Cart>({ site: SITE }, async (request, session) => {
  const lang: "en" | "fr" | undefined = session.data?.lang;
  return new Response(lang ?? "en");
});
export const inferred = withEdgeSession({ site: SITE, required: true }, (request: Request, session: EdgeSession<Cart>, env: { KV: string }) => {
  session.data!.notice = env.KV;
  return new Response("ok");
});
inferred(new Request(SITE), { KV: "x" });

// Without a type argument: JSON objects, as before.
export async function untyped(request: Request) {
  const session = await fetchSession({ site: SITE }).read(request);
  const value: Json | undefined = session.data?.anything;
  session.data!.anything = { nested: [1, "two", null] };
  // @ts-expect-error: not JSON
  session.data!.when = new Date();
  const data: JsonObject | null = session.data;
  void value, data;
}

// The verifier: a user's identity has a user, a guest's has none.
export async function who(request: Request): Promise<string> {
  const identity: Identity<Cart> | null = await createVerifier<Cart>({ site: SITE }).verify(request);
  if (identity === null) return "a visitor";
  // @ts-expect-error: a guest's user is null
  identity.user.length;
  if (identity.guest) {
    const none: null = identity.user;
    void none;
    return `a guest with ${identity.data?.cart?.length ?? 0} items`;
  }
  const authTime: number = identity.authTime;
  void authTime;
  return identity.user;
}

// A verifier made once, shared: its TData is the session's.
const verifier = createVerifier<Cart>({ site: SITE });
export const shared = edgeSession({ verifier });
export async function viaVerifier(request: Request) {
  const session: EdgeSession<Cart> = await fetchSession(verifier).read(request);
  const fromOptions: EdgeSession<Cart> = await fetchSession({ site: SITE, verifier }).read(request);
  void session, fromOptions;
}

// Express: edgeSession<Cart>() and handlers typed by EdgeRequest (or Express's Request, by
// declaration merging, as the README shows).
const middleware = edgeSession<Cart>({ site: SITE });
export function handler(req: EdgeRequest<Cart>, res: ServerResponse) {
  const cart = req.session.data?.cart ?? [];
  res.end(String(cart.length));
}
export function named(req: EdgeRequest<Cart, "edge">, res: ServerResponse) {
  res.end(req.edge.data?.lang ?? "en");
}
declare const req: IncomingMessage & Record<string, any>;
declare const res: ServerResponse;
middleware(req, res, () => {});
middleware.required(req, res, () => {});
requireUser(req, res, () => {});
requireUser({ property: "edge" })(req, res, () => {});
