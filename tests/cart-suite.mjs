// The cart both example sites keep in session data (docs/MIGRATING.md), as one behaviour
// suite that each example's test file runs against its own site, behind the real worker in
// two locations. Both sites answer the same paths: GET /cart (HTML), GET /api/cart
// ({status, version, items}), POST /cart/add and /cart/remove (form field `sku`).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Jar, sleep } from "./harness.mjs";

const EMPTY = { status: "none", version: null, items: [] };

/**
 * Registers the cart tests for one site. `site` gives: `name`; `edge` (the harness worker,
 * read when the tests run: a getter, since it starts in the file's `before`);
 * `signIn(jar)`; `signOut(jar)` (checks its own answer); `request(jar, path, init, location)`
 * (a request through the worker at that location, cookies kept); `redirect` (the status a
 * form answers with: 303 or 302); `formHeaders(jar)` (extra headers a form post needs);
 * `siteCookie` (the site's session cookie: with it, the guest-cart test runs, for a site in
 * attach mode whose cart paths are GUEST_PATHS and whose visitors' carts live in its own
 * session until sign-in moves them into the worker's session data).
 */
export function cartSuite(site) {
  const { name } = site;
  async function cart(jar, location = 0) {
    const res = await site.request(jar, "/api/cart", { headers: { accept: "application/json" } }, location);
    assert.equal(res.status, 200);
    return res.json();
  }
  const cartPage = async (jar, location = 0) =>
    (await site.request(jar, "/cart", { headers: { accept: "text/html" } }, location)).text();
  function cartForm(jar, action, sku, location = 0) {
    const init = {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...site.formHeaders(jar) },
      body: new URLSearchParams({ sku }).toString(),
    };
    return site.request(jar, `/cart/${action}`, init, location);
  }
  async function changeCart(jar, action, sku, location = 0) {
    const res = await cartForm(jar, action, sku, location);
    await res.arrayBuffer();
    assert.equal(res.status, site.redirect, `${action} ${sku}`);
    assert.equal(res.headers.get("location"), "/cart");
    assert.equal(res.headers.get("x-edge-session-data"), null, "the worker let the patch reach the browser");
  }

  test(`${name}: the cart lives in session data: shown by the next request, counted, gone after signing out`, async () => {
    const jar = new Jar();
    await site.signIn(jar);
    assert.deepEqual(await cart(jar), EMPTY, "a new session has no data");

    await changeCart(jar, "add", "cafe");
    assert.deepEqual(await cart(jar), { status: "ok", version: 1, items: [{ sku: "cafe", name: "Café crème", qty: 1 }] });
    await changeCart(jar, "add", "cafe");
    assert.match(await cartPage(jar), /Café crème × 2/);

    // Two products added at once (two requests in flight): one key each, both kept.
    await Promise.all([changeCart(jar, "add", "tea"), changeCart(jar, "add", "mug")]);
    let now = await cart(jar);
    assert.equal(now.version, 4);
    assert.deepEqual(now.items.map((i) => [i.sku, i.qty]), [["cafe", 2], ["mug", 1], ["tea", 1]]);

    await changeCart(jar, "remove", "cafe");
    // The next read asks the Durable Object once (the isolate that applied a change does not
    // keep its result: a parallel change elsewhere may be newer); then the isolate holds it.
    await site.edge.resetDoOps();
    now = await cart(jar);
    assert.equal(now.version, 5);
    assert.deepEqual(now.items.map((i) => i.sku), ["mug", "tea"]);
    assert.deepEqual((await site.edge.doOps()).map((op) => op.loc), ["0"]);
    await site.edge.resetDoOps();
    assert.deepEqual(await cart(jar), now);
    assert.deepEqual(await site.edge.doOps(), []);
    // Another location (another isolate) reads the object once, then holds the version too.
    assert.deepEqual(await cart(jar, 1), now);
    assert.deepEqual(await cart(jar, 1), now);
    assert.equal((await site.edge.doOps()).filter((op) => op.loc === "1").length, 1);
    // After the ticket expired (TICKET_TTL 1 s), the version comes from KV's record.
    await sleep(1200);
    assert.deepEqual(await cart(jar), now);

    await site.signOut(jar);
    await site.signIn(jar);
    assert.deepEqual(await cart(jar), EMPTY, "the cart outlived the session");
    assert.deepEqual(await cart(jar, 1), EMPTY);
    assert.match(await cartPage(jar), /Your cart is empty/);
  });

  if (site.siteCookie) {
    test(`${name}: a visitor's cart, in the site's own session, is kept through the login page and moved into the signed-in session's data`, async () => {
      const jar = new Jar();
      assert.match(await cartPage(jar), /Your cart is empty/);
      assert.deepEqual((await cart(jar)).items, []);
      await changeCart(jar, "add", "cafe");
      await changeCart(jar, "add", "cafe");
      await changeCart(jar, "add", "tea");
      const guest = jar.get(site.siteCookie);
      assert.ok(guest, "the site kept no session for the visitor's cart");
      const items = [{ sku: "cafe", name: "Café crème", qty: 2 }, { sku: "tea", name: "Green tea", qty: 1 }];
      assert.deepEqual((await cart(jar)).items, items);
      // The worker creates no guest session in attach mode: nothing of it in KV.
      assert.equal(await site.edge.getRecord(guest), null);

      // A protected page: the login redirect, and the site's cookie (the cart) survives it.
      const account = await site.request(jar, "/account", { headers: { accept: "text/html" } });
      await account.arrayBuffer();
      assert.equal(account.status, 302);
      assert.match(account.headers.get("location"), /^\/login\?return_to=%2Faccount/);
      assert.equal(jar.get(site.siteCookie), guest, "the worker cleared the site's guest session");
      assert.deepEqual((await cart(jar)).items, items);

      await site.signIn(jar);
      assert.notEqual(jar.get(site.siteCookie), guest, "sign-in kept the guest's session ID");
      // The first signed-in read moves the cart into the session's data: it answers with the
      // whole cart, and with the data as the request brought it (none yet: its own change,
      // the move, is stored as version 1 only after its answer was made)...
      assert.deepEqual(await cart(jar), { status: "none", version: null, items });
      // ...where the worker holds it: another location reads it from the session's data.
      assert.deepEqual(await cart(jar, 1), { status: "ok", version: 1, items });
      assert.deepEqual(await cart(jar), { status: "ok", version: 1, items });
      // Once moved, the site's copy is gone: a removal stays removed.
      await changeCart(jar, "remove", "tea");
      assert.deepEqual((await cart(jar)).items, items.slice(0, 1));
      assert.deepEqual((await cart(jar, 1)).items, items.slice(0, 1));

      // The cart was the session's: signing out and in again starts empty.
      await site.signOut(jar);
      assert.deepEqual((await cart(jar)).items, [], "the cart outlived the sign-out");
      await site.signIn(jar);
      assert.deepEqual(await cart(jar), EMPTY);
    });
  }

  test(`${name}: a cart that cannot be read is shown as unavailable, not empty, and a change then is refused, not lost`, async () => {
    const jar = new Jar();
    await site.signIn(jar);
    await changeCart(jar, "add", "tea");
    await site.edge.doFault("down");
    try {
      // Location 1 has never held this session's data: it must ask the Durable Object.
      assert.deepEqual(await cart(jar, 1), { status: "unavailable", version: null, items: null });
      const html = await cartPage(jar, 1);
      assert.match(html, /cannot be shown right now/);
      assert.doesNotMatch(html, /Your cart is empty/);
      // Adding needs the current quantity: the site itself declines.
      const add = await cartForm(jar, "add", "mug", 1);
      assert.equal(add.status, 503);
      assert.match(await add.text(), /cannot be changed right now/);
      // Removing needs no read: the site sends the patch, the worker cannot store it.
      const remove = await cartForm(jar, "remove", "tea", 1);
      assert.equal(remove.status, 503);
      assert.ok(remove.headers.get("retry-after"));
      assert.deepEqual(await remove.json(), { error: "store_unavailable" });
    } finally {
      await site.edge.doFault(null);
    }
    assert.deepEqual(await cart(jar, 1), { status: "ok", version: 1, items: [{ sku: "tea", name: "Green tea", qty: 1 }] });
  });
}
