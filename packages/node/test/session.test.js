// EdgeSession on its own: what it sends for each change, and what it refuses.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EdgeSession } from "../src/index.js";
import { SID } from "./helpers.js";

const identity = (data = {}) => ({
  user: "alice",
  guest: false,
  remember: false,
  claims: { role: "admin", tags: ["a"] },
  source: "kv",
  authTime: 1,
  sessionHash: SID,
  data,
  dataVersion: data === null ? null : 3,
  dataStatus: data === null ? "unavailable" : "ok",
});
const guestIdentity = (data = {}) => ({ ...identity(data), user: null, guest: true, claims: {}, source: "state", authTime: null });
const quiet = { log: () => {} };

/** What the session answers: status, the session's headers, the JSON error if any. */
async function answer(session) {
  const res = session.commit(new Response("handler's body"));
  const headers = Object.fromEntries([...res.headers].filter(([name]) => name.startsWith("x-edge-session-")));
  return { status: res.status, headers, patch: headers["x-edge-session-data"] ?? null, error: res.status === 200 ? null : await res.json() };
}

test("claims are a frozen copy", () => {
  const session = new EdgeSession(identity(), quiet);
  assert.ok(Object.isFrozen(session.claims) && Object.isFrozen(session.claims.tags));
  assert.throws(() => session.claims.tags.push("b"), TypeError);
});

test("login starts the new session empty; whatever is set after it is its first data", async () => {
  const session = new EdgeSession(identity({ cart: [1] }), quiet);
  session.data.cart.push(2);
  session.login("bob", { role: "user" });
  assert.deepEqual(session.data, {});
  assert.equal(session.user, "bob");
  assert.deepEqual(session.claims, { role: "user" });
  assert.equal(session.dataStatus, "none");
  session.data.draft = "x";
  assert.deepEqual((await answer(session)).headers, {
    "x-edge-session-login": "bob",
    "x-edge-session-claims": '{"role":"user"}',
    "x-edge-session-data": '{"draft":"x"}',
  });
});

test("logout sends the signal alone; the last of login and logout wins", async () => {
  const out = new EdgeSession(identity({ cart: [1] }), quiet);
  out.data.cart = [];
  out.logout();
  assert.equal(out.user, null);
  assert.deepEqual((await answer(out)).headers, { "x-edge-session-logout": "1" });
  const back = new EdgeSession(identity(), quiet).logout().login("carol");
  assert.deepEqual((await answer(back)).headers, { "x-edge-session-login": "carol" });
});

test("login refuses a user id that cannot be sent", () => {
  const session = new EdgeSession(null, quiet);
  assert.throws(() => session.login(""), TypeError);
  assert.throws(() => session.login(42), TypeError);
  assert.throws(() => session.login("a\ud800"), /well-formed/);
  assert.throws(() => session.login("é".repeat(129)), /256 bytes/);
  assert.throws(() => session.login("bob", ["admin"]), /plain object/);
});

test("claims over 2 KB or not JSON: a 503 answer at commit, no login sent", async () => {
  const big = await answer(new EdgeSession(null, quiet).login("bob", { blob: "x".repeat(2100) }));
  assert.equal(big.status, 503);
  assert.equal(big.error.error, "data_too_large");
  assert.deepEqual(big.headers, {});
  const bigint = await answer(new EdgeSession(null, quiet).login("bob", { n: 1n }));
  assert.equal(bigint.error.error, "data_not_serializable");
  assert.match(bigint.error.detail, /claims.n is a bigint/);
});

test("the data limit counts the data after the change as compact ASCII JSON", async () => {
  const limit = 40;
  const withValue = (value) => {
    const session = new EdgeSession(identity({}), { ...quiet, dataLimit: limit });
    session.data.k = value;
    return answer(session);
  };
  // {"k":"..."} is 8 bytes around the value; "é" is sent as \u00e9, 6 bytes
  assert.equal((await withValue("x".repeat(limit - 8))).status, 200);
  assert.equal((await withValue("x".repeat(limit - 7))).status, 503);
  assert.equal((await withValue("é".repeat(5) + "x".repeat(2))).status, 200);
  assert.equal((await withValue("é".repeat(6))).status, 503);
});

test("removing keys frees room: the limit is on the result, not on the change", async () => {
  const session = new EdgeSession(identity({ old: "y".repeat(30) }), { ...quiet, dataLimit: 40 });
  delete session.data.old;
  session.data.k = "x".repeat(32);
  assert.equal((await answer(session)).patch, `{"k":"${"x".repeat(32)}","old":null}`);
});

test("a blind change over 32768 bytes is refused", async () => {
  const session = new EdgeSession(identity(null), quiet);
  session.patch(Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`key-${i}`, null])));
  const { status, error } = await answer(session);
  assert.equal(status, 503);
  assert.match(error.detail, /over the 32768/);
});

test("values that are not JSON are named in the error", async () => {
  const deep = [];
  let at = deep;
  for (let i = 0; i < 120; i++) at = at[0] = [];
  const cases = [
    [new Map([[1, 2]]), /data\["v"\] is a Map/],
    [{ [Symbol("s")]: 1 }, /symbol key/],
    ["\udc00 lone", /lone surrogate/],
    [[1, undefined], /data\["v"\]\[1\] is undefined/],
    [Infinity, /is Infinity/],
    [deep, /nested deeper than 100/],
    [Symbol("x"), /a symbol/],
  ];
  for (const [value, pattern] of cases) {
    const session = new EdgeSession(identity({}), quiet);
    session.data.v = value;
    const { status, error } = await answer(session);
    assert.equal(status, 503);
    assert.equal(error.error, "data_not_serializable");
    assert.match(error.detail, pattern);
  }
});

test("patch() forces keys even when their value did not change; flash reads and removes", async () => {
  const session = new EdgeSession(identity({ a: 1, notice: "Saved" }), quiet);
  session.patch({ a: 1, gone: null });
  assert.equal(session.flash("notice"), "Saved");
  assert.equal(session.flash("notice"), undefined);
  assert.equal((await answer(session)).patch, '{"a":1,"notice":null,"gone":null}');
});

test("after the response head, login/logout/patch throw instead of being lost", async () => {
  const session = new EdgeSession(identity(), quiet);
  await answer(session);
  assert.throws(() => session.login("bob"), /after the response head/);
  assert.throws(() => session.logout(), /after the response head/);
  assert.throws(() => session.flash("k", 1), /after the response head/);
});

test("a visitor without a session: its changes are sent (the worker makes them a guest session's first data)", async () => {
  const visitor = new EdgeSession(null, quiet);
  assert.deepEqual([visitor.user, visitor.guest, visitor.remember, visitor.dataStatus, visitor.dataVersion], [null, false, false, "none", null]);
  visitor.data.cart = ["tea"];
  visitor.patch({ x: 1 });
  assert.deepEqual((await answer(visitor)).headers, { "x-edge-session-data": '{"cart":["tea"],"x":1}' });
  const idle = new EdgeSession(null, quiet);
  assert.equal(idle.data.cart, undefined);
  assert.deepEqual((await answer(idle)).headers, {}, "nothing stored, nothing sent");
});

test("a visitor whose session the worker could not check: data null, status unavailable, blind changes still sent", async () => {
  const visitor = new EdgeSession(null, { ...quiet, dataStatus: "unavailable" });
  assert.deepEqual([visitor.user, visitor.guest, visitor.data, visitor.dataStatus], [null, false, null, "unavailable"]);
  assert.equal(visitor.flash("notice"), undefined);
  visitor.patch({ "cart:tea": null });
  assert.deepEqual((await answer(visitor)).headers, { "x-edge-session-data": '{"cart:tea":null}' });
  assert.throws(() => new EdgeSession(null, { dataStatus: "ok" }), /dataStatus must be/);
});

test("a guest reads and writes its data as a user does; user null, guest true", async () => {
  const guest = new EdgeSession(guestIdentity({ "cart:tea": { qty: 1 }, notice: "Added" }), quiet);
  assert.deepEqual([guest.user, guest.guest, guest.remember, guest.source, guest.dataStatus, guest.dataVersion], [null, true, false, "state", "ok", 3]);
  assert.deepEqual(guest.claims, {});
  guest.data["cart:tea"].qty = 2;
  guest.data["cart:mug"] = { qty: 1 };
  assert.equal(guest.flash("notice"), "Added");
  assert.equal((await answer(guest)).patch, '{"cart:tea":{"qty":2},"cart:mug":{"qty":1},"notice":null}');
});

test("login from a guest keeps its data: only the pending changes go with the login, on top of it", async () => {
  const guest = new EdgeSession(guestIdentity({ "cart:tea": { qty: 1 } }), quiet);
  guest.data["cart:mug"] = { qty: 1 };
  guest.login("alice", { role: "reader" });
  assert.deepEqual([guest.user, guest.guest, guest.dataStatus, guest.dataVersion], ["alice", false, "ok", null]);
  assert.deepEqual(guest.data, { "cart:tea": { qty: 1 }, "cart:mug": { qty: 1 } }, "the cart is still there");
  guest.data.welcome = true;
  assert.deepEqual((await answer(guest)).headers, {
    "x-edge-session-login": "alice",
    "x-edge-session-claims": '{"role":"reader"}',
    "x-edge-session-data": '{"cart:mug":{"qty":1},"welcome":true}',
  });
  const unchanged = new EdgeSession(guestIdentity({ "cart:tea": { qty: 1 } }), quiet).login("alice");
  assert.deepEqual((await answer(unchanged)).headers, { "x-edge-session-login": "alice" }, "the worker carries the data: nothing re-sent");
  const visitor = new EdgeSession(null, quiet);
  visitor.data.lang = "fr";
  visitor.login("bob");
  assert.deepEqual((await answer(visitor)).headers, { "x-edge-session-login": "bob", "x-edge-session-data": '{"lang":"fr"}' });
});

test("logout from a guest ends it: the signal alone", async () => {
  const guest = new EdgeSession(guestIdentity({ cart: [1] }), quiet);
  guest.data.cart.push(2);
  guest.logout();
  assert.deepEqual([guest.guest, guest.user, guest.dataStatus], [false, null, "none"]);
  assert.deepEqual((await answer(guest)).headers, { "x-edge-session-logout": "1" });
});

test("login with { remember: true } sends X-Edge-Session-Remember: 1; without it nothing more", async () => {
  const remembered = new EdgeSession(null, quiet).login("alice", null, { remember: true });
  assert.equal(remembered.remember, true);
  assert.deepEqual((await answer(remembered)).headers, { "x-edge-session-login": "alice", "x-edge-session-remember": "1" });
  const withClaims = new EdgeSession(guestIdentity({}), quiet).login("alice", { role: "reader" }, { remember: true });
  assert.deepEqual((await answer(withClaims)).headers, { "x-edge-session-login": "alice", "x-edge-session-claims": '{"role":"reader"}', "x-edge-session-remember": "1" });
  for (const options of [undefined, {}, { remember: false }]) {
    const plain = new EdgeSession(null, quiet).login("alice", undefined, options);
    assert.equal(plain.remember, false);
    assert.deepEqual((await answer(plain)).headers, { "x-edge-session-login": "alice" });
  }
  assert.throws(() => new EdgeSession(null, quiet).login("alice", null, { remember: "yes" }), /remember must be true or false/);
  assert.throws(() => new EdgeSession(null, quiet).login("alice", null, true), /options must be an object/);
});

test("remember is the assertion's, and ends with logout", () => {
  const session = new EdgeSession({ ...identity(), remember: true }, quiet);
  assert.equal(session.remember, true);
  session.logout();
  assert.equal(session.remember, false);
  assert.equal(new EdgeSession({ ...identity(), remember: true }, quiet).login("bob").remember, false, "a new login says again");
});
