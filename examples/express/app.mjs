// A small Express site that owns its sessions (express-session), attached to
// edge-session (attach mode): the worker learns each session from the lookup endpoint,
// and the site trusts the identity the worker signs (X-Session-Assertion).
//
//   PORT=3000 LOOKUP_TOKEN=... SESSION_SECRET=... EDGE_SITE=https://www.example.com node app.mjs
//
// EDGE_SITE is the site as browsers address it (the assertion's audience);
// EDGE_JWKS_URL defaults to $EDGE_SITE/.edge-session/jwks.json.
//
// The cart (/cart) lives in edge-session's session data, not in express-session's store:
// the worker sends it in X-Session-Data and the site changes it with X-Edge-Session-Data
// (README.md, "Session data"; docs/MIGRATING.md).
import { randomBytes, createHash, timingSafeEqual } from "node:crypto";
import express from "express";
import session from "express-session";
import { createRemoteJWKSet, jwtVerify } from "jose";
import { edgeSessionLookup } from "./edge-session-lookup.mjs";

const PORT = Number(process.env.PORT ?? 3000);
const LOOKUP_TOKEN = process.env.LOOKUP_TOKEN;
const SESSION_SECRET = process.env.SESSION_SECRET || randomBytes(32).toString("hex");
const SITE = process.env.EDGE_SITE;
const JWKS_URL = process.env.EDGE_JWKS_URL || (SITE && `${SITE}/.edge-session/jwks.json`);
if (!LOOKUP_TOKEN || !SITE) {
  console.error("set LOOKUP_TOKEN and EDGE_SITE (and SESSION_SECRET in production)");
  process.exit(2);
}

const USERS = {
  alice: { password: "wonderland", claims: { name: "Alice", role: "admin" } },
  bob: { password: "builder", claims: { name: "Bob", role: "user" } },
};
const nowSec = () => Math.floor(Date.now() / 1000);
const same = (a, b) => timingSafeEqual(createHash("sha256").update(a).digest(), createHash("sha256").update(b).digest());
const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const localPath = (p) => (typeof p === "string" && /^\/(?![/\\])/.test(p) ? p : null);
const b64urlSha256 = (s) => createHash("sha256").update(s).digest("base64url");

// In production: a shared store (connect-redis, connect-pg-simple...) so that every
// server of the site sees every session. The lookup endpoint reads the same store.
const store = new session.MemoryStore();
const app = express();
app.disable("x-powered-by");

// The lookup endpoint: before the session middleware (it carries no session cookie).
app.post("/edge-session/lookup", express.json({ limit: "8kb" }), edgeSessionLookup({ store, secret: SESSION_SECRET, token: LOOKUP_TOKEN }));

app.use(
  session({
    name: "connect.sid", // the worker's SESSION_COOKIE
    secret: SESSION_SECRET,
    store,
    resave: false,
    saveUninitialized: false, // no cookie for anonymous visitors
    cookie: { httpOnly: true, sameSite: "lax", secure: process.env.COOKIE_SECURE === "1" },
  }),
);
app.use(express.urlencoded({ extended: false, limit: "8kb" }));

// Identity from the worker: a verified X-Session-Assertion, nothing else.
const JWKS = createRemoteJWKSet(new URL(JWKS_URL));
async function edgeIdentity(req, res, next) {
  try {
    const { payload } = await jwtVerify(req.get("x-session-assertion") ?? "", JWKS, {
      issuer: "edge-session",
      audience: SITE,
      algorithms: ["ES256"],
      clockTolerance: 30,
    });
    req.edge = { user: payload.sub, claims: payload.claims ?? {}, source: payload.src, authTime: payload.auth_time };
    // Session data: trusted only when it is the one the assertion signed (dh).
    const data = req.get("x-session-data");
    if (data === undefined ? payload.dh !== undefined : typeof payload.dh !== "string" || !same(b64urlSha256(data), payload.dh)) {
      return res.status(401).json({ error: "invalid_assertion", detail: "X-Session-Data is not the one signed" });
    }
    next();
  } catch (e) {
    res.status(401).json({ error: "invalid_assertion", detail: e.code ?? e.message });
  }
}

const page = (title, body) =>
  `<!doctype html><meta charset="utf-8"><title>${escape(title)}</title><h1>${escape(title)}</h1>${body}`;

app.get("/", (req, res) => res.send(page("Express site", `<p><a href="/account">Your account</a> · <a href="/cart">Your cart</a> · <a href="/login">Sign in</a></p>`)));

app.get("/login", (req, res) => {
  const back = localPath(req.query.return_to) ?? "";
  res.send(
    page(
      "Sign in",
      `<form method="post" action="/login"><input name="username"> <input name="password" type="password">
<input type="hidden" name="return_to" value="${escape(back)}"><button>Sign in</button></form>`,
    ),
  );
});

app.post("/login", (req, res, next) => {
  const { username = "", password = "" } = req.body ?? {};
  const account = Object.hasOwn(USERS, username) ? USERS[username] : null;
  if (!account || !same(password, account.password)) return res.status(401).send(page("Sign in", "<p>Wrong username or password.</p>"));
  // A fresh session id at login (no fixation); the worker sees the new cookie.
  req.session.regenerate((err) => {
    if (err) return next(err);
    req.session.user = username;
    req.session.claims = account.claims;
    req.session.created = nowSec();
    req.session.save((err2) => (err2 ? next(err2) : res.redirect(303, localPath(req.body.return_to) ?? "/account")));
  });
});

app.post("/logout", (req, res, next) => {
  req.session.destroy((err) => {
    if (err) return next(err);
    // The cleared cookie is the worker's logout signal in attach mode.
    res.clearCookie("connect.sid", { path: "/" });
    res.redirect(303, "/");
  });
});

app.get("/account", edgeIdentity, (req, res) =>
  res.send(page("Your account", `<p>Signed in as <b>${escape(req.edge.user)}</b> (vouched for by ${escape(req.edge.source)}).</p>
<form method="post" action="/logout"><button>Sign out</button></form>`)),
);

app.get("/api/whoami", edgeIdentity, (req, res) =>
  res.json({ user: req.edge.user, claims: req.edge.claims, source: req.edge.source, site_session_user: req.session.user ?? null }),
);

// The cart, in session data: one key per product ("cart:<sku>": {"name","qty"}, the name
// as it was when added), so that two products added at once (two tabs, two requests in
// flight) are both kept. Two changes of the same product at once: the one applied last wins.
const PRODUCTS = { tea: { name: "Green tea" }, cafe: { name: "Café crème" }, mug: { name: "Mug" } };
const CART = "cart:";
const MAX_QTY = 99;

/** The request's session data: { status: "none" | "ok" | "unavailable", data, version }. */
function sessionData(req) {
  if (req.get("x-session-data-status") === "unavailable") return { status: "unavailable", data: null, version: null };
  const raw = req.get("x-session-data");
  if (raw === undefined) return { status: "none", data: {}, version: null };
  return { status: "ok", data: JSON.parse(raw), version: Number(req.get("x-session-data-version")) };
}

/** Sends a change with the response: a top-level merge patch (null removes a key), ASCII only. */
function patchSessionData(res, patch) {
  const json = JSON.stringify(patch).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  res.set("X-Edge-Session-Data", json);
}

function cartOf(data) {
  return Object.entries(data)
    .filter(([key, item]) => key.startsWith(CART) && typeof item?.name === "string" && Number.isInteger(item.qty))
    .map(([key, item]) => ({ sku: key.slice(CART.length), name: item.name, qty: item.qty }))
    .sort((a, b) => (a.sku < b.sku ? -1 : 1));
}
const skuOf = (req) => (Object.hasOwn(PRODUCTS, req.body?.sku ?? "") ? req.body.sku : null);

app.get("/api/cart", edgeIdentity, (req, res) => {
  const { status, data, version } = sessionData(req);
  res.json({ status, version, items: status === "unavailable" ? null : cartOf(data) });
});

app.get("/cart", edgeIdentity, (req, res) => {
  const { status, data } = sessionData(req);
  const buy = Object.entries(PRODUCTS)
    .map(([sku, p]) => `<li>${escape(p.name)} <form method="post" action="/cart/add"><input type="hidden" name="sku" value="${sku}"><button>Add</button></form></li>`)
    .join("");
  let cart;
  if (status === "unavailable") cart = "<p>Your cart cannot be shown right now. It is not lost: try again in a moment.</p>";
  else {
    const items = cartOf(data);
    cart = items.length
      ? `<ul>${items.map((i) => `<li>${escape(i.name)} × ${i.qty} <form method="post" action="/cart/remove"><input type="hidden" name="sku" value="${escape(i.sku)}"><button>Remove</button></form></li>`).join("")}</ul>`
      : "<p>Your cart is empty.</p>";
  }
  res.send(page("Your cart", `${cart}<h2>Products</h2><ul>${buy}</ul>`));
});

app.post("/cart/add", edgeIdentity, (req, res) => {
  const sku = skuOf(req);
  if (!sku) return res.status(400).send(page("Your cart", "<p>No such product.</p>"));
  const { status, data } = sessionData(req);
  // The new quantity is computed from the current one: without it, do not guess.
  if (status === "unavailable") return res.status(503).set("Retry-After", "5").send(page("Your cart", "<p>Your cart cannot be changed right now.</p>"));
  const qty = Math.min((data[CART + sku]?.qty ?? 0) + 1, MAX_QTY);
  patchSessionData(res, { [CART + sku]: { name: PRODUCTS[sku].name, qty } });
  res.redirect(303, "/cart");
});

app.post("/cart/remove", edgeIdentity, (req, res) => {
  const sku = skuOf(req);
  if (!sku) return res.status(400).send(page("Your cart", "<p>No such product.</p>"));
  patchSessionData(res, { [CART + sku]: null });
  res.redirect(303, "/cart");
});

// Ends the user's sessions on other devices, on the site only: the worker finds out
// at its next lookup (REVALIDATE_AFTER), as it would for any session the site ends.
app.post("/account/sign-out-other-devices", edgeIdentity, (req, res, next) => {
  store.all((err, sessions) => {
    if (err) return next(err);
    const others = Object.entries(sessions ?? {}).filter(([id, s]) => s.user === req.edge.user && id !== req.sessionID);
    for (const [id] of others) store.destroy(id, () => {});
    res.json({ ended: others.length });
  });
});

const server = app.listen(PORT, "127.0.0.1", () => console.log(`express example listening on http://127.0.0.1:${server.address().port}`));
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => server.close(() => process.exit(0)).closeAllConnections());
