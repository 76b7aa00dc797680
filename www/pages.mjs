// The demo site's pages: "Acorn", a small notes product for teams, as it would
// look behind edge-session. Plain HTML and CSS (www/assets/app.css) and one small
// script (www/assets/app.js), both inlined so that a page is one request.
import fs from "node:fs";
import { readingList, MAX_ITEMS, MAX_TITLE } from "./session-data.mjs";

const CSS = fs.readFileSync(new URL("./assets/app.css", import.meta.url), "utf8");
const SCRIPT = fs.readFileSync(new URL("./assets/app.js", import.meta.url), "utf8");

const LOGO = `<svg viewBox="0 0 32 32" aria-hidden="true"><path fill="#7a4b22" d="M6 12c0-4 4.5-7 10-7s10 3 10 7v1H6z"/><path fill="#2f6f4f" d="M15 2h2v4h-2z"/><path fill="#c98a44" d="M7 13h18c0 8-4.5 15-9 15S7 21 7 13z"/></svg>`;
const FAVICON = `data:image/svg+xml,${encodeURIComponent(LOGO.replace("<svg", '<svg xmlns="http://www.w3.org/2000/svg"'))}`;

export function escapeHtml(value) {
  return String(value ?? "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

const instanceBadge = (name, extra = "") => `<span class="inst${extra} inst-${escapeHtml(name)}">${escapeHtml(name)}</span>`;

/** A user's display name: the `name` claim, else the user id. */
const displayName = (who) => (who.claims && typeof who.claims.name === "string" && who.claims.name) || who.user;

/**
 * The page chrome. `who`: the signed-in identity (or null on public pages, which
 * the worker forwards without one). `script`: inline app.js (protected pages).
 */
export function page(ctx, { title, id = "plain", who = null, body, script = false, data = {} }) {
  const nav = who?.user
    ? `<a href="/dashboard"${id === "dashboard" ? ' aria-current="page"' : ""}>Dashboard</a>
<a href="/sessions"${id === "sessions" ? ' aria-current="page"' : ""}>Sessions</a>
<span class="who" data-testid="who">${escapeHtml(displayName(who))}</span>
<form method="post" action="/logout"><button class="link-button" type="submit">Sign out</button></form>`
    : `<a href="/dashboard">Dashboard</a><a class="btn primary small" href="/login">Sign in</a>`;
  const attrs = Object.entries({ page: id, instance: ctx.name, ...data })
    .map(([k, v]) => ` data-${k}="${escapeHtml(v)}"`)
    .join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)} · Acorn</title>
<link rel="icon" href="${FAVICON}">
<style>${CSS}</style></head>
<body${attrs}>
<header class="topbar"><div class="wrap"><a class="brand" href="/">${LOGO}<span>Acorn</span></a><nav class="nav">${nav}</nav></div></header>
<main class="wrap">
${body}
</main>
<footer class="wrap foot">Served by ${instanceBadge(ctx.name, " small")} <span data-testid="served-by">instance ${escapeHtml(ctx.name)}</span> · ${escapeHtml(ctx.mode)} mode${ctx.requireAssertion ? " · identity from the verified assertion" : ""}</footer>
${script ? `<script>${SCRIPT}</script>\n` : ""}</body></html>
`;
}

export function homePage(ctx) {
  return page(ctx, {
    title: "Notes for small teams",
    id: "home",
    body: `<section class="hero">
<h1>Notes for small teams</h1>
<p class="lead">Acorn keeps your team's notes in one place. This copy is a demo of
<strong>edge-session</strong>: the site runs on several servers that share no memory,
and a Cloudflare Worker in front of them keeps you signed in.</p>
<p><a class="btn primary" href="/dashboard">Open your dashboard</a> <a class="btn" href="/reading" data-testid="reading-link">Reading list (no sign-in needed)</a> <a class="btn" href="/login">Sign in</a></p>
</section>
<div class="grid">
<article class="card"><h2>Three servers, no shared memory</h2>
<p class="muted">Each page is answered by one of the servers, in turn:</p>
<p class="servers">${instanceBadge("a")} ${instanceBadge("b")} ${instanceBadge("c")}</p>
<p class="muted">None of them keeps sessions in memory. Reload the dashboard and watch the badge change while you stay signed in.</p></article>
<article class="card"><h2>Sessions at the edge</h2>
<p class="muted">The worker checks every request's session (a signed cookie, Workers KV,
or this site's lookup endpoint), signs you out after 30 minutes of inactivity, and hands
the servers a signed statement of who you are.</p></article>
<article class="card"><h2>Demo accounts</h2>
<p class="muted"><code>alice</code> / <code>wonderland</code><br><code>bob</code> / <code>builder</code><br><code>김철수</code> / <code>비밀번호</code></p></article>
</div>`,
  });
}

// What the login page says when the worker sent the browser here with a reason.
const REASONS = {
  idle_timeout: ["Your session expired, please sign in again.", "You were signed out after a period of inactivity."],
  absolute_timeout: ["Your session expired, please sign in again.", "Sessions last a limited time, however active you are."],
  invalid_session: ["You were signed out, please sign in again.", "Your session ended: you signed out elsewhere, or it was ended from the session list."],
};

export function loginPage(ctx, { returnTo = null, username = "", error = null, reason = null } = {}) {
  const why = Object.prototype.hasOwnProperty.call(REASONS, reason) ? REASONS[reason] : null;
  return page(ctx, {
    title: "Sign in",
    id: "login",
    body: `<div class="auth">
<h1>Sign in to Acorn</h1>
<p class="lead">${returnTo ? `to continue to <code>${escapeHtml(returnTo)}</code>` : "Welcome back."}</p>
${why ? `<div class="notice warn" role="status" data-testid="login-reason" data-reason="${escapeHtml(reason)}"><strong>${escapeHtml(why[0])}</strong>${escapeHtml(why[1])}</div>` : ""}
${error ? `<div class="notice error" role="alert">${escapeHtml(error)}</div>` : ""}
<form class="card" method="post" action="/login">
<label class="field"><span>Username</span><input name="username" autocomplete="username" value="${escapeHtml(username)}" required autofocus></label>
<label class="field"><span>Password</span><input name="password" type="password" autocomplete="current-password" required></label>
<input type="hidden" name="return_to" value="${escapeHtml(returnTo ?? "")}">
<button class="btn primary" type="submit">Sign in</button>
<p class="hint">Demo accounts: alice / wonderland, bob / builder, 김철수 / 비밀번호.</p>
</form>
</div>`,
  });
}

const SOURCES = {
  ticket: "the signed cookie (no store read)",
  kv: "Workers KV, the shared store at the edge",
  lookup: "this site's lookup endpoint (attach mode)",
  stale: "the signed cookie alone: the stores are unreachable (degraded mode)",
};

// `who`: the identity this site settled on (see identify() in origin.mjs).
function anonymousPage(ctx, title, path) {
  return page(ctx, {
    title,
    id: "anonymous",
    body: `<div class="notice error">${escapeHtml(title)}: no identity received (no X-Session-User header reached this server).</div>
<p><a class="btn primary" href="/login?return_to=${encodeURIComponent(path)}">Sign in</a></p>`,
  });
}

// The reading list: items of the session data (`read:<id>` keys), as the worker forwarded
// it to this server (X-Session-Data). See readingList() in origin.mjs.
function readingListCard(ctx, who, flash) {
  const status = who.dataStatus ?? "none";
  const version = who.dataVersion ?? null;
  const head = `<div class="card-head"><h2>Reading list</h2><span class="muted">shown by ${instanceBadge(ctx.name, " small")} · session data version <span data-testid="data-version">${version === null ? "none" : escapeHtml(version)}</span></span></div>`;
  const flashBox =
    flash === undefined
      ? ""
      : `<div class="notice ${/^Not saved/.test(String(flash)) ? "warn" : "info"} flash" role="status" data-testid="flash">${escapeHtml(typeof flash === "string" ? flash : JSON.stringify(flash))}</div>`;
  if (status === "unavailable" || status === "invalid") {
    const why = status === "unavailable" ? "the session store is not answering (X-Session-Data-Status: unavailable)" : "its session data is not a JSON object";
    return `<section class="card reading" id="reading" data-testid="reading-list-card" data-status="${status}">${head}
<div class="notice warn" role="status" data-testid="reading-list-unavailable"><strong>Your reading list cannot be shown right now.</strong>This server could not read it: ${escapeHtml(why)}. Nothing is lost; reload in a moment.</div>
</section>`;
  }
  const items = readingList(who.data);
  const rows = items
    .map(
      (it) => `<li data-testid="reading-item" data-id="${escapeHtml(it.id)}"${it.added_by === null ? "" : ` data-added-by="${escapeHtml(it.added_by)}"`}>
<span class="title" data-testid="reading-title">${escapeHtml(it.title)}</span>
<span class="muted meta">added on ${it.added_by === null ? "?" : instanceBadge(it.added_by, " small")}${it.at === null ? "" : ` <time data-at="${escapeHtml(it.at)}" datetime="${escapeHtml(new Date(it.at * 1000).toISOString())}">${escapeHtml(new Date(it.at * 1000).toISOString().slice(0, 16).replace("T", " "))} UTC</time>`}</span>
<form method="post" action="/reading-list/remove"><input type="hidden" name="id" value="${escapeHtml(it.id)}"><button class="btn small" type="submit" data-testid="reading-remove" aria-label="Remove ${escapeHtml(it.title)}">Remove</button></form></li>`,
    )
    .join("\n");
  const full = items.length >= MAX_ITEMS;
  return `<section class="card reading" id="reading" data-testid="reading-list-card" data-status="${status}">${head}
${flashBox}
${items.length === 0 ? `<p class="muted" data-testid="reading-list-empty">Nothing on your list yet. Add something to read later: it stays with your session, whichever server answers.</p>` : `<ol class="reading-list" data-testid="reading-list">\n${rows}\n</ol>`}
<form class="add-item" method="post" action="/reading-list">
<label class="sr-only" for="reading-title">Title</label>
<input id="reading-title" name="title" maxlength="${MAX_TITLE}" placeholder="${full ? `The list is full (${MAX_ITEMS} items)` : "Something to read later"}" autocomplete="off" required${full ? " disabled" : ""}>
<button class="btn primary" type="submit" data-testid="reading-add"${full ? " disabled" : ""}>Add</button>
</form>
<p class="hint">Kept in the session's data at the edge (<code>X-Session-Data</code>), not on these servers: sign out and it is gone.</p>
</section>`;
}

/**
 * The reading list for anyone (GUEST_PATHS): a visitor's first add makes a guest session at
 * the edge, which keeps the list through sign-in. In attach mode the worker makes no guest
 * sessions: visitors are asked to sign in.
 */
export function readingPage(ctx, who, { flash } = {}) {
  const signedIn = who.user !== null;
  const whose = signedIn
    ? `Signed in as <strong data-testid="user-id">${escapeHtml(who.user)}</strong>: this is the list of your session (also on your <a href="/dashboard">dashboard</a>).`
    : who.guest
      ? `You have not signed in: the list is kept in a <strong data-testid="guest">guest session</strong> at the edge. <a href="/login?return_to=%2Freading">Sign in</a> and it comes with you.`
      : "You have not signed in. Add something: a guest session starts with it, and signing in keeps it.";
  const body =
    !signedIn && ctx.mode === "attach"
      ? `<div class="notice info" role="status">In attach mode this site keeps visitors' sessions itself: <a href="/login?return_to=%2Freading">sign in</a> to keep a reading list.</div>`
      : readingListCard(ctx, who, flash);
  return page(ctx, {
    title: "Reading list",
    id: "reading",
    who: signedIn ? who : null,
    data: { source: who.source ?? "", guest: who.guest ? "1" : "" },
    body: `<h1>Reading list</h1>
<p class="lead" data-testid="reading-whose">${whose}</p>
<p class="muted">Served by ${instanceBadge(ctx.name)} <span class="muted">instance <span data-testid="instance">${escapeHtml(ctx.name)}</span></span>${who.source ? ` · vouched for by <span class="tier" data-testid="source">${escapeHtml(who.source)}</span>` : ""}</p>
${body}`,
  });
}

export function dashboardPage(ctx, req, who, { flash } = {}) {
  if (who.user === null) return anonymousPage(ctx, "Dashboard", "/dashboard");
  const a = who.assertion;
  const assertion = !a.present
    ? `<span class="muted">absent</span>`
    : a.verified
      ? `<span class="ok">✓ verified</span> <span class="muted">(ES256, key ${escapeHtml(a.kid)})</span>`
      : `<span class="bad">✗ not verified:</span> ${escapeHtml(a.detail)}`;
  const row = (name, value) =>
    `<tr><th>${escapeHtml(name)}</th><td>${value === undefined ? "<em>absent</em>" : `<pre>${escapeHtml(value)}</pre>`}</td></tr>`;
  const technical = `<details class="tech"><summary>Technical details</summary><table>
${row("User", who.user)}
${row("X-Session-User", req.headers["x-session-user"])}
${row("Claims", who.claims === null ? undefined : JSON.stringify(who.claims, null, 2))}
${row("Source", who.source ?? undefined)}
${row("X-Session-Assertion", !a.present ? undefined : a.verified ? `verified: key ${a.kid}, source ${a.src}, signed in ${new Date(a.auth_time * 1000).toISOString()}, expires ${new Date(a.exp * 1000).toISOString()}${a.dh === undefined ? "" : `, data version ${a.dv} (dh ${a.dh})`}` : `not verified: ${a.detail}`)}
${row("X-Session-Data", req.headers["x-session-data"])}
${row("X-Session-Data-Version", req.headers["x-session-data-version"])}
${row("X-Session-Data-Status", req.headers["x-session-data-status"])}
${row("Identity from", ctx.requireAssertion ? "the verified assertion only" : "the headers (assertion not required)")}
${row("Instance", ctx.name)}
</table></details>`;
  return page(ctx, {
    title: "Dashboard",
    id: "dashboard",
    who,
    script: true,
    data: { source: who.source ?? "" },
    body: `<h1>Good to see you, <span data-testid="user-name">${escapeHtml(displayName(who))}</span></h1>
<p class="lead">Signed in as <strong data-testid="user-id">${escapeHtml(who.user)}</strong>${who.claims?.role ? ` · ${escapeHtml(who.claims.role)}` : ""}</p>
<div class="grid">
<article class="card"><h2>This page</h2>
<dl class="facts">
<dt>Served by</dt><dd>${instanceBadge(ctx.name)} <span class="muted">instance <span data-testid="instance">${escapeHtml(ctx.name)}</span>, one of three servers</span></dd>
<dt>Vouched for by</dt><dd><span class="tier" data-testid="source">${escapeHtml(who.source ?? "?")}</span> <span class="muted">${escapeHtml(SOURCES[who.source] ?? "")}</span></dd>
<dt>Identity</dt><dd>${assertion}</dd>
<dt>Last page loads</dt><dd><span class="history" id="history"></span> <span class="muted" id="history-note"></span></dd>
</dl>
<div class="card-foot"><a class="btn" href="/dashboard" data-testid="reload">Reload</a><span class="muted">lands on the next server</span></div>
</article>
<article class="card"><h2>Your session</h2>
<dl class="facts">
<dt>Signed in</dt><dd id="created">…</dd>
<dt>Last active</dt><dd id="last-seen">…</dd>
<dt>Device</dt><dd id="device">…</dd>
<dt>Signed out if idle in</dt><dd><span class="countdown" id="idle-left" data-testid="idle-left">…</span></dd>
</dl>
<div class="card-foot"><a href="/sessions">Manage your sessions (<span id="session-count">…</span>) →</a></div>
</article>
</div>
${readingListCard(ctx, who, flash)}
${technical}
<div id="idle-prompt" class="prompt" role="alertdialog" aria-labelledby="prompt-title" hidden>
<div class="prompt-box"><h2 id="prompt-title">Still there?</h2>
<p>You will be signed out in <strong id="prompt-left">1 minute</strong>. Stay signed in?</p>
<div class="row"><button class="btn primary" id="stay" type="button">Stay signed in</button>
<form method="post" action="/logout"><button class="btn" type="submit">Sign out</button></form></div></div></div>`,
  });
}

export function sessionsPage(ctx, who) {
  if (who.user === null) return anonymousPage(ctx, "Active sessions", "/sessions");
  return page(ctx, {
    title: "Active sessions",
    id: "sessions",
    who,
    script: true,
    body: `<h1>Active sessions</h1>
<p class="lead">Everywhere you are signed in as <strong>${escapeHtml(who.user)}</strong>. Ending a session signs that device out within a minute.</p>
${ctx.mode === "attach" ? `<div class="notice info"><strong>Attach mode: this site owns its sessions.</strong>Ending a session here ends it at the edge: the worker will not learn it again from this site. The site's own record of it stays until the site ends it.</div>` : ""}
<div class="card">
<table class="list"><thead><tr><th>Device</th><th>Location</th><th>Signed in</th><th>Last active</th><th></th></tr></thead>
<tbody id="session-rows"><tr><td colspan="5" class="muted">Loading…</td></tr></tbody></table>
<div class="actions"><button class="btn" id="end-others" type="button">Sign out everywhere else</button>
<button class="btn danger" id="end-all" type="button">Sign out everywhere</button></div>
<p class="muted" id="sessions-msg" role="status"></p>
</div>
<p class="muted">Signed out if idle in <span class="countdown" id="idle-left">…</span> · <span id="session-total">…</span></p>`,
  });
}

export function assertionErrorPage(ctx, status, detail) {
  const [title, text] =
    status === 400
      ? ["Bad identity header", "This request's identity header cannot be read"]
      : status === 503
        ? ["Cannot check the identity", "This site cannot fetch the keys to check this request's identity"]
        : ["Identity not verified", "This site only trusts an identity that edge-session signed, and this request's could not be verified"];
  return page(ctx, {
    title,
    body: `<h1>${escapeHtml(title)}</h1><div class="notice error">${text}: ${escapeHtml(detail)}.</div>\n<p><a href="/">Home</a> · <a href="/login">Sign in</a></p>`,
  });
}

/** A short page with a title and one sentence (a form answered with an error). */
export function messagePage(ctx, status, title, text) {
  return page(ctx, {
    title,
    body: `<h1>${escapeHtml(title)}</h1><div class="notice ${status >= 500 ? "warn" : "error"}" role="alert">${escapeHtml(text)}</div>\n<p><a class="btn" href="/dashboard">Back to the dashboard</a></p>`,
  });
}

export function notFoundPage(ctx, path) {
  return page(ctx, { title: "Not found", body: `<h1>Not found</h1><p>Nothing at <code>${escapeHtml(path)}</code>. <a href="/">Home</a>.</p>` });
}

export function methodNotAllowedPage(ctx, allow) {
  return page(ctx, { title: "Method not allowed", body: `<h1>Method not allowed</h1><p>Allowed: ${escapeHtml(allow)}.</p>` });
}
