// A small Express site that owns its sessions (express-session), attached to
// edge-session (attach mode): the worker learns each session from the lookup endpoint,
// and the site trusts the identity the worker signs (X-Session-Assertion), verified by
// the edge-session package (packages/node).
//
//   PORT=3000 LOOKUP_TOKEN=... SESSION_SECRET=... EDGE_SITE=https://www.example.com node app.mjs
//
// EDGE_SITE is the site as browsers address it (the assertion's audience);
// EDGE_JWKS_URL defaults to $EDGE_SITE/.edge-session/jwks.json.
//
// The cart (/cart) lives in edge-session's session data, not in express-session's store:
// req.edge.data, sent back to the worker when it changes (README.md, "Session data";
// docs/MIGRATING.md). A visitor who has not signed in has a cart too: the cart paths are
// GUEST_PATHS, and in attach mode a visitor's cart lives in the site's own session
// (req.session.cart) until sign-in moves it into the signed-in session's data.
import { randomBytes, createHash, timingSafeEqual } from "node:crypto";
import express from "express";
import session from "express-session";
import { edgeSession, lookupHandler } from "edge-session";

const PORT = Number(process.env.PORT ?? 3000);
const LOOKUP_TOKEN = process.env.LOOKUP_TOKEN;
const SESSION_SECRET = process.env.SESSION_SECRET || randomBytes(32).toString("hex");
const SITE = process.env.EDGE_SITE;
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

// In production: a shared store (connect-redis, connect-pg-simple...) so that every
// server of the site sees every session. The lookup endpoint reads the same store.
const store = new session.MemoryStore();
const app = express();
app.disable("x-powered-by");

// The lookup endpoint: before the session middleware (it carries no session cookie).
app.post("/edge-session/lookup", lookupHandler(store, { secret: SESSION_SECRET, token: LOOKUP_TOKEN }));

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

// Identity from the worker: req.edge, from a verified X-Session-Assertion, nothing else
// (express-session owns req.session here). edge.required: 401 without a user.
const edge = edgeSession({ site: SITE, jwksUrl: process.env.EDGE_JWKS_URL || undefined, property: "edge" });
app.use(edge);

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
  // A visitor's cart goes with them into the new session (regenerate() keeps nothing).
  const cart = req.session.cart;
  req.session.regenerate((err) => {
    if (err) return next(err);
    if (cart) req.session.cart = cart;
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

app.get("/account", edge.required, (req, res) =>
  res.send(page("Your account", `<p>Signed in as <b>${escape(req.edge.user)}</b> (vouched for by ${escape(req.edge.source)}).</p>
<form method="post" action="/logout"><button>Sign out</button></form>`)),
);

app.get("/api/whoami", edge.required, (req, res) =>
  res.json({ user: req.edge.user, claims: req.edge.claims, source: req.edge.source, site_session_user: req.session.user ?? null }),
);

// The cart, in session data: one key per product ("cart:<sku>": {"name","qty"}, the name
// as it was when added), so that two products added at once (two tabs, two requests in
// flight) are both kept. Two changes of the same product at once: the one applied last wins.
const PRODUCTS = { tea: { name: "Green tea" }, cafe: { name: "Café crème" }, mug: { name: "Mug" } };
const CART = "cart:";
const MAX_QTY = 99;

function cartOf(data) {
  return Object.entries(data)
    .filter(([key, item]) => key.startsWith(CART) && typeof item?.name === "string" && Number.isInteger(item.qty))
    .map(([key, item]) => ({ sku: key.slice(CART.length), name: item.name, qty: item.qty }))
    .sort((a, b) => (a.sku < b.sku ? -1 : 1));
}
const skuOf = (req) => (Object.hasOwn(PRODUCTS, req.body?.sku ?? "") ? req.body.sku : null);

// Where this request's cart is: a signed-in user's in session data (req.edge.data; null while it
// cannot be read), a visitor's in the site's own session, in the same shape (created by the first
// product added: a visitor who only looks gets no session).
function cartData(req, adding = false) {
  if (req.edge.user) return req.edge.dataStatus === "unavailable" ? null : req.edge.data;
  if (adding) req.session.cart ??= {};
  return req.session.cart ?? {};
}

// A cart carried through sign-in (req.session.cart) moves into the session's data: each item the
// data lacks is written there. The site's copy goes only once a request finds every item in the
// data, that is once the worker stored them (it may refuse a change, 503, after this session was
// saved). Writing an item twice (two requests at once) changes nothing; an item the data already
// has is the signed-in cart's.
function moveCarriedCart(req, res, next) {
  const carried = req.session.cart;
  const data = req.edge.user ? cartData(req) : null;
  if (carried && data) {
    const missing = Object.keys(carried).filter((key) => !Object.hasOwn(data, key));
    if (missing.length === 0) delete req.session.cart;
    for (const key of missing) data[key] = carried[key];
  }
  next();
}
app.use(["/cart", "/api/cart"], moveCarriedCart);

app.get("/api/cart", (req, res) => {
  const { dataStatus: status, dataVersion: version } = req.edge;
  const data = cartData(req);
  res.json({ status, version, items: data ? cartOf(data) : null });
});

app.get("/cart", (req, res) => {
  const data = cartData(req);
  const buy = Object.entries(PRODUCTS)
    .map(([sku, p]) => `<li>${escape(p.name)} <form method="post" action="/cart/add"><input type="hidden" name="sku" value="${sku}"><button>Add</button></form></li>`)
    .join("");
  let cart;
  if (!data) cart = "<p>Your cart cannot be shown right now. It is not lost: try again in a moment.</p>";
  else {
    const items = cartOf(data);
    cart = items.length
      ? `<ul>${items.map((i) => `<li>${escape(i.name)} × ${i.qty} <form method="post" action="/cart/remove"><input type="hidden" name="sku" value="${escape(i.sku)}"><button>Remove</button></form></li>`).join("")}</ul>`
      : "<p>Your cart is empty.</p>";
  }
  res.send(page("Your cart", `${cart}<h2>Products</h2><ul>${buy}</ul>`));
});

app.post("/cart/add", (req, res) => {
  const sku = skuOf(req);
  if (!sku) return res.status(400).send(page("Your cart", "<p>No such product.</p>"));
  const data = cartData(req, true);
  // The new quantity is computed from the current one: without it, do not guess.
  if (!data) return res.status(503).set("Retry-After", "5").send(page("Your cart", "<p>Your cart cannot be changed right now.</p>"));
  data[CART + sku] = { name: PRODUCTS[sku].name, qty: Math.min((data[CART + sku]?.qty ?? 0) + 1, MAX_QTY) };
  res.redirect(303, "/cart");
});

app.post("/cart/remove", (req, res) => {
  const sku = skuOf(req);
  if (!sku) return res.status(400).send(page("Your cart", "<p>No such product.</p>"));
  // A removal needs no read: patch() sends it even while the data cannot be read.
  if (req.edge.user) req.edge.patch({ [CART + sku]: null });
  else delete cartData(req)[CART + sku];
  res.redirect(303, "/cart");
});

// Ends the user's sessions on other devices, on the site only: the worker finds out
// at its next lookup (REVALIDATE_AFTER), as it would for any session the site ends.
app.post("/account/sign-out-other-devices", edge.required, (req, res, next) => {
  store.all((err, sessions) => {
    if (err) return next(err);
    const others = Object.entries(sessions ?? {}).filter(([id, s]) => s.user === req.edge.user && id !== req.sessionID);
    for (const [id] of others) store.destroy(id, () => {});
    res.json({ ended: others.length });
  });
});

const server = app.listen(PORT, "127.0.0.1", () => console.log(`express example listening on http://127.0.0.1:${server.address().port}`));
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => server.close(() => process.exit(0)).closeAllConnections());
