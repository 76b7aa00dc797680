// A real browser against the real `make dev` stack: Debian's Chromium driven by
// playwright-core, `wrangler dev` in front of three demo origins (a, b, c) that
// share nothing. Saves a screenshot of each step to .tmp/screenshots/, so that a test
// run leaves the tree clean; `UPDATE_SCREENSHOTS=1 make test` refreshes the ones in
// docs/screenshots/ that the README shows. SCREENSHOT_DIR names another folder.
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

const shot = (page, name) => page.screenshot({ path: path.join(SHOTS, name) });

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
