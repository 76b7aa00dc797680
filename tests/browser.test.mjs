// A real browser against the real `make dev` stack: Debian's Chromium driven by
// playwright-core, `wrangler dev` in front of three demo origins (a, b, c) that
// share nothing. Saves a screenshot of each step to .tmp/screenshots/, so that a test
// run leaves the tree clean; `UPDATE_SCREENSHOTS=1 make test` refreshes the ones in
// docs/screenshots/ that the README shows. SCREENSHOT_DIR names another folder.
// The reading list tests run the demo's session data flow in both modes (edge, then a
// second stack in attach mode).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { startDevStack, ROOT } from "./devstack.mjs";

// Debian's chromium (make setup installs it); CHROMIUM points elsewhere on other systems.
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = path.resolve(
  ROOT,
  process.env.SCREENSHOT_DIR || (process.env.UPDATE_SCREENSHOTS === "1" ? "docs/screenshots" : ".tmp/screenshots"),
);
// Short enough to watch a session expire within the test, long enough to click in time.
const SETTINGS = { IDLE_TIMEOUT: "6s", TOUCH_INTERVAL: "1s", TICKET_TTL: "1s" };

let stack, browser;

before(async () => {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: make setup installs Debian's chromium (elsewhere, set CHROMIUM)`);
  fs.mkdirSync(SHOTS, { recursive: true });
  stack = await startDevStack({ env: SETTINGS });
  // Playwright starts Chromium with a fresh, empty --user-data-dir of its own.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-quic",
    ],
  });
});

after(async () => {
  await browser?.close();
  if (stack) {
    const { stillListening } = await stack.stop();
    assert.deepEqual(stillListening, [], "make dev left something listening");
  }
});

async function device() {
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 }, locale: "en-US", timezoneId: "UTC" });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  return { context, page };
}

const shot = (page, name, options = {}) => page.screenshot({ path: path.join(SHOTS, name), ...options });

/** The dashboard has loaded its script's data: the idle countdown and the session's times. */
async function dashboardSettled(page) {
  await page.waitForFunction(() => /^\d+:\d\d$/.test(document.getElementById("idle-left")?.textContent ?? ""));
  await page.waitForFunction(() => (document.getElementById("created")?.textContent ?? "…") !== "…");
}

async function signIn(page, user = "alice", password = "wonderland") {
  await page.fill('input[name="username"]', user);
  await page.fill('input[name="password"]', password);
  await Promise.all([page.waitForURL(/\/dashboard$/), page.click('button[type="submit"]')]);
}

/** Clicks `selector` (a form's button) and waits for the dashboard it leads to (303 → GET /dashboard). */
async function submitToDashboard(page, selector) {
  await page.evaluate(() => {
    window.__before = true;
  });
  const [post] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === "POST"),
    page.click(selector),
  ]);
  await page.waitForFunction(() => !window.__before && document.body?.getAttribute("data-page") === "dashboard");
  await dashboardSettled(page);
  return post;
}

/** What the dashboard shows: the instance, the data version, the flash, the reading list. */
async function dashboardState(page) {
  return page.evaluate(() => {
    const q = (s) => document.querySelector(`[data-testid="${s}"]`);
    return {
      instance: q("instance")?.textContent ?? null,
      version: q("data-version")?.textContent ?? null,
      flash: q("flash")?.textContent ?? null,
      empty: q("reading-list-empty") !== null,
      unavailable: q("reading-list-unavailable") !== null,
      items: [...document.querySelectorAll('[data-testid="reading-item"]')].map((li) => ({
        id: li.getAttribute("data-id"),
        addedBy: li.getAttribute("data-added-by"),
        title: li.querySelector('[data-testid="reading-title"]').textContent,
      })),
    };
  });
}

async function addToReadingList(page, title) {
  await page.fill("#reading-title", title);
  const post = await submitToDashboard(page, '[data-testid="reading-add"]');
  assert.equal(post.status(), 303);
  // The worker applies the patch and strips it: the browser never sees the signal.
  assert.equal((await post.allHeaders())["x-edge-session-data"], undefined, "X-Edge-Session-Data reached the browser");
  return dashboardState(page);
}

/**
 * The reading list (session data, kept by the worker): added on one server, listed by
 * the others; the "Saved" flash shows once; Remove; gone after sign-out and sign-in.
 * `screenshot`: where to save the list as another server shows it (or null).
 */
async function readingListFlow(site, { user, password, screenshot = null }) {
  const { page, context } = await device();
  try {
    await page.goto(`${site}/login`);
    await signIn(page, user, password);
    await dashboardSettled(page);
    let state = await dashboardState(page);
    assert.ok(state.empty && state.items.length === 0 && !state.unavailable, `a new session's list is not empty: ${JSON.stringify(state)}`);
    assert.equal(state.version, "none");

    // 1. Add an item (non-ASCII: it travels as \uXXXX escapes both ways).
    const first = "Über Kaffee · 커피 이야기 — “quotes”";
    state = await addToReadingList(page, first);
    assert.equal(state.flash, "Saved");
    assert.equal(state.items.length, 1);
    assert.equal(state.items[0].title, first);
    const addedBy = state.items[0].addedBy;
    assert.match(addedBy, /^[abc]$/);
    const savedVersion = Number(state.version);
    assert.ok(Number.isInteger(savedVersion) && savedVersion >= 1, `version ${state.version}`);

    // 2. The flash is shown once: the page that showed it removed it (a change: version + 1).
    await page.reload();
    await dashboardSettled(page);
    state = await dashboardState(page);
    assert.equal(state.flash, null, "the Saved flash showed twice");
    assert.equal(Number(state.version), savedVersion + 1);
    assert.deepEqual(state.items.map((i) => i.title), [first]);

    // 3. A second item, whose title is markup: shown as text.
    const second = `<b>Bold</b> & <script>alert("x")</script>`;
    state = await addToReadingList(page, second);
    assert.equal(state.flash, "Saved");
    assert.deepEqual(state.items.map((i) => i.title), [first, second]);
    assert.equal(await page.locator("main b, main script").count(), 0, "a title was rendered as HTML");

    // 4. Reload until a server other than the one that added the first item answers: it
    // keeps nothing, and lists both items all the same.
    for (let i = 0; i < 6; i++) {
      await page.reload();
      await dashboardSettled(page);
      state = await dashboardState(page);
      if (state.instance !== addedBy) break;
    }
    assert.notEqual(state.instance, addedBy, `every reload was served by ${addedBy}`);
    assert.equal(state.flash, null);
    assert.deepEqual(state.items.map((i) => i.title), [first, second]);
    assert.equal(state.items[0].addedBy, addedBy);
    if (screenshot) await shot(page, screenshot, { fullPage: true }); // the list is below the fold

    // 5. /api/me shows the same data and version.
    const me = await page.request.get(`${site}/api/me`, { headers: { accept: "application/json" } });
    assert.equal(me.status(), 200);
    const body = await me.json();
    assert.equal(body.user, user);
    assert.equal(body.data_version, Number(state.version));
    const listed = Object.entries(body.data).filter(([k]) => k.startsWith("read:"));
    assert.deepEqual(listed.map(([, v]) => v.title).sort(), [first, second].sort());
    assert.ok(!("flash" in body.data), "the flash is still in the data");

    // 6. Remove the second item.
    await submitToDashboard(page, `[data-testid="reading-item"][data-id="${state.items[1].id}"] [data-testid="reading-remove"]`);
    state = await dashboardState(page);
    assert.equal(state.flash, "Removed");
    assert.deepEqual(state.items.map((i) => i.title), [first]);

    // 7. Sign out and in again: a new session, and the data went with the old one.
    await Promise.all([page.waitForURL(`${site}/`), page.click('nav button[type="submit"]')]);
    await page.goto(`${site}/login`);
    await signIn(page, user, password);
    await dashboardSettled(page);
    state = await dashboardState(page);
    assert.ok(state.empty && state.items.length === 0, `the list survived sign-out: ${JSON.stringify(state)}`);
    assert.equal(state.version, "none");
    assert.equal(state.flash, null);
  } finally {
    await context.close();
  }
}

test("a person signs in, moves between servers, manages sessions, goes idle, signs out", { timeout: 120000 }, async () => {
  const { page } = await device();
  const site = stack.url;

  // 1. A protected page sends the browser to the login page, which knows where to return.
  await page.goto(`${site}/dashboard`);
  assert.equal(new URL(page.url()).pathname, "/login");
  assert.equal(new URL(page.url()).searchParams.get("return_to"), "/dashboard");
  assert.match(await page.textContent("main"), /to continue to \/dashboard/);
  await shot(page, "01-login.png");

  // 2. Signing in returns to the dashboard, which shows who, where and which tier vouched.
  await signIn(page);
  await dashboardSettled(page);
  assert.equal(await page.textContent('[data-testid="user-id"]'), "alice");
  assert.match(await page.textContent('[data-testid="source"]'), /^(ticket|kv)$/);
  assert.match(await page.textContent("#created"), /\d/);
  assert.match(await page.textContent("#last-seen"), /\d/);
  const instances = new Set([await page.textContent('[data-testid="instance"]')]);
  await shot(page, "02-dashboard.png");

  // 3. Reloading lands on other servers, none of which keeps sessions; still signed in.
  for (let i = 0; i < 6 && instances.size < 3; i++) {
    await page.reload();
    await dashboardSettled(page);
    assert.equal(await page.textContent('[data-testid="user-id"]'), "alice");
    instances.add(await page.textContent('[data-testid="instance"]'));
  }
  assert.ok(instances.size >= 2, `every reload was served by the same instance: ${[...instances]}`);
  await shot(page, "03-dashboard-other-server.png");

  // 4. A second device signs in; the first one sees both sessions and ends the other.
  const phone = await device();
  await phone.page.goto(`${site}/login`);
  await signIn(phone.page);
  await page.goto(`${site}/sessions`);
  await page.waitForSelector("#session-rows tr[data-handle]");
  await page.waitForFunction(() => document.querySelectorAll("#session-rows tr[data-handle]").length === 2);
  assert.equal(await page.locator(".tag").count(), 1, "exactly one row is this device");
  await shot(page, "04-active-sessions.png");
  await page.click("button[data-end]");
  await page.waitForFunction(() => document.querySelectorAll("#session-rows tr[data-handle]").length === 1);
  assert.match(await page.textContent("#sessions-msg"), /Session ended/);
  // The other device's page notices by itself once its ticket (TICKET_TTL 1 s) has aged:
  // its countdown's poll is refused, and it goes to the login page saying why.
  await phone.page.waitForURL(/\/login\?/, { timeout: 10000 });
  assert.equal(new URL(phone.page.url()).searchParams.get("reason"), "invalid_session");
  assert.match(await phone.page.textContent('[data-testid="login-reason"]'), /You were signed out/);
  await shot(phone.page, "05-ended-on-the-other-device.png");
  // ...and it is really signed out: the worker refuses it, not just the page.
  const refused = await phone.page.request.get(`${site}/api/me`, { headers: { accept: "application/json" }, maxRedirects: 0 });
  assert.equal(refused.status(), 401);
  await phone.context.close();

  // 5. Near the end of the idle timeout the dashboard asks; "Stay signed in" is activity.
  await page.goto(`${site}/dashboard`);
  await dashboardSettled(page);
  await page.waitForSelector("#idle-prompt", { state: "visible" });
  assert.match(await page.textContent("#idle-prompt"), /You will be signed out in \d+ seconds?\. Stay signed in\?/);
  await shot(page, "06-stay-signed-in.png");
  const seconds = async () => {
    const [m, s] = (await page.textContent("#idle-left")).split(":").map(Number);
    return m * 60 + s;
  };
  const before = await seconds();
  await page.click("#stay");
  await page.waitForFunction((b) => {
    const [m, s] = document.getElementById("idle-left").textContent.split(":").map(Number);
    return m * 60 + s > b;
  }, before);
  assert.ok(await page.isHidden("#idle-prompt"), "the prompt stayed after Stay signed in");

  // 6. Left alone, the session expires: the page goes to the login page, which says so.
  await page.waitForURL(/\/login\?/, { timeout: 20000 });
  const expired = new URL(page.url());
  assert.equal(expired.searchParams.get("reason"), "idle_timeout");
  assert.equal(expired.searchParams.get("return_to"), "/dashboard");
  assert.match(await page.textContent('[data-testid="login-reason"]'), /Your session expired, please sign in again\./);
  await shot(page, "07-session-expired.png");
  // ...and the worker agrees: a navigation now is refused, not served.
  const direct = await page.request.get(`${site}/api/me`, { headers: { accept: "application/json" }, maxRedirects: 0 });
  assert.equal(direct.status(), 401);

  // 7. Sign in again, sign out, press Back: nothing protected is shown.
  await signIn(page);
  await dashboardSettled(page);
  await Promise.all([page.waitForURL(`${site}/`), page.click('nav button[type="submit"]')]);
  const cookies = (await page.context().cookies()).map((c) => c.name);
  assert.ok(!cookies.includes("sid") && !cookies.includes("__Host-edge-ticket"), `cookies left after sign-out: ${cookies}`);
  await page.goBack();
  await page.waitForURL(/\/login/);
  assert.equal(await page.locator('[data-testid="user-id"]').count(), 0);
  assert.doesNotMatch(await page.textContent("body"), /Good to see you|alice\b.*admin/);
  await shot(page, "08-back-after-sign-out.png");
});

test("the reading list lives in session data: added on one server, listed by the others, gone after sign-out", { timeout: 120000 }, async () => {
  await readingListFlow(stack.url, { user: "alice", password: "wonderland", screenshot: "09-reading-list-other-server.png" });
});

test("a guest's reading list: added before signing in, shown by another server, kept through sign-in, gone after sign-out", { timeout: 120000 }, async () => {
  const site = stack.url;
  const { page, context } = await device();
  const siteCookies = async () => (await context.cookies(site)).map((c) => c.name);
  const readingSettled = () => page.waitForFunction(() => !window.__before && document.body?.getAttribute("data-page") === "reading");
  try {
    // 1. A visitor: the page answers, and no cookie is set until something is stored.
    await page.goto(`${site}/reading`);
    await readingSettled();
    let state = await dashboardState(page);
    assert.ok(state.empty && state.items.length === 0, `a visitor's list is not empty: ${JSON.stringify(state)}`);
    assert.equal(await page.locator('[data-testid="guest"]').count(), 0, "a visitor was called a guest");
    assert.deepEqual(await siteCookies(), [], "a visitor who stored nothing got cookies");

    // 2. The first add makes a guest session: its cookies, the item, the "Saved" flash.
    const title = "Guest notes · 손님 메모";
    await page.fill("#reading-title", title);
    await page.evaluate(() => {
      window.__before = true;
    });
    const [post] = await Promise.all([page.waitForResponse((r) => r.request().method() === "POST"), page.click('[data-testid="reading-add"]')]);
    assert.equal(post.status(), 303);
    assert.equal((await post.allHeaders())["x-edge-session-data"], undefined, "X-Edge-Session-Data reached the browser");
    await readingSettled();
    state = await dashboardState(page);
    assert.deepEqual(state.items.map((i) => i.title), [title]);
    assert.equal(state.flash, "Saved");
    assert.equal(await page.locator('[data-testid="guest"]').count(), 1, "the page does not say it is a guest session");
    const names = await siteCookies();
    assert.ok(names.includes("sid") && names.includes("__Host-edge-ticket"), `no guest session cookies: ${names}`);
    const addedBy = state.items[0].addedBy;

    // 3. Another server shows it too (it keeps nothing itself).
    for (let i = 0; i < 6; i++) {
      await page.reload();
      await readingSettled();
      state = await dashboardState(page);
      if (state.instance !== addedBy) break;
    }
    assert.notEqual(state.instance, addedBy, `every reload was served by ${addedBy}`);
    assert.deepEqual(state.items.map((i) => i.title), [title]);
    assert.equal(state.flash, null, "the Saved flash showed twice");
    await shot(page, "10-guest-reading-list.png");

    // 4. Signing in keeps the list: the dashboard of the new session shows it.
    const guestSid = (await context.cookies(site)).find((c) => c.name === "sid").value;
    await page.goto(`${site}/login`);
    await signIn(page, "bob", "builder");
    await dashboardSettled(page);
    state = await dashboardState(page);
    assert.deepEqual(state.items.map((i) => i.title), [title], `the list did not come through sign-in: ${JSON.stringify(state)}`);
    const userSid = (await context.cookies(site)).find((c) => c.name === "sid").value;
    assert.notEqual(userSid, guestSid, "signing in kept the guest's session ID");

    // 5. Signing out leaves no guest: the reading list is empty again.
    await Promise.all([page.waitForURL(`${site}/`), page.click('nav button[type="submit"]')]);
    await page.goto(`${site}/reading`);
    await readingSettled();
    state = await dashboardState(page);
    assert.ok(state.empty && state.items.length === 0, `the list survived sign-out: ${JSON.stringify(state)}`);
    assert.equal(await page.locator('[data-testid="guest"]').count(), 0);
  } finally {
    await context.close();
  }
});

test("the reading list works the same in attach mode (the site owns its sessions, the worker their data)", { timeout: 180000 }, async () => {
  const attach = await startDevStack({ env: SETTINGS, mode: "attach" });
  try {
    await readingListFlow(attach.url, { user: "김철수", password: "비밀번호" });
  } finally {
    const { stillListening } = await attach.stop();
    assert.deepEqual(stillListening, [], "make dev (attach) left something listening");
  }
});
