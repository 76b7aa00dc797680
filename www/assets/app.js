// Acorn's page script: plain browser JavaScript, inlined into the protected pages.
//
// - Idle countdown: polls GET /api/session-status, a PASSIVE_PATHS endpoint (it does
//   not count as activity), and reads X-Edge-Session-Idle-Left from the worker.
// - "Stay signed in?" prompt near the end; its button makes an active request.
// - When the session is gone, goes to the login page with the worker's reason, so
//   it can say "your session expired".
// - Dashboard: the current session's created / last seen from GET /.edge-session/sessions,
//   the instances that served the last page loads, and the reading list's times.
// - Sessions page: the list from the worker, "end" buttons, sign out everywhere (else).
"use strict";
(function () {
  var STATUS_URL = "/api/session-status"; // passive: listed in PASSIVE_PATHS
  var ACTIVE_URL = "/api/me"; // any non-passive request keeps the session alive
  var page = document.body.getAttribute("data-page");
  var $ = function (id) {
    return document.getElementById(id);
  };

  // A page restored from the back/forward cache was not asked of the server: ask again.
  window.addEventListener("pageshow", function (e) {
    if (e.persisted) location.reload();
  });

  function text(el, value) {
    if (el) el.textContent = value;
  }
  function clock(ms) {
    var s = Math.max(0, Math.ceil(ms / 1000));
    var m = Math.floor(s / 60);
    var r = s % 60;
    return m + ":" + (r < 10 ? "0" : "") + r;
  }
  function inWords(ms) {
    var s = Math.max(0, Math.ceil(ms / 1000));
    if (s >= 55) {
      var m = Math.round(s / 60);
      return m === 1 ? "1 minute" : m + " minutes";
    }
    return s === 1 ? "1 second" : s + " seconds";
  }
  function when(unix) {
    if (typeof unix !== "number") return "unknown";
    var d = new Date(unix * 1000);
    var ago = Math.round((Date.now() - d.getTime()) / 1000);
    var rel =
      ago < 5 ? "just now" : ago < 60 ? ago + " s ago" : ago < 3600 ? Math.round(ago / 60) + " min ago" : Math.round(ago / 3600) + " h ago";
    var today = d.toDateString() === new Date().toDateString();
    return (today ? d.toLocaleTimeString() : d.toLocaleString()) + " (" + rel + ")";
  }
  function sameOriginPost(url, body) {
    return fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify(body),
      cache: "no-store",
      credentials: "same-origin",
    });
  }

  // ------------------------------------------------------------ session gone

  var leaving = false;
  function signedOut(res) {
    if (leaving) return;
    leaving = true;
    var reason = (res && res.headers.get("x-edge-session-reason")) || "";
    var back = location.pathname + location.search;
    var url = "/login?return_to=" + encodeURIComponent(back);
    // The worker cleared the cookies with this answer, so the next navigation would
    // only say "no session": pass on why the session ended.
    if (reason && reason !== "no_session") url += "&reason=" + encodeURIComponent(reason);
    location.assign(url);
  }

  // ------------------------------------------------------------ idle countdown

  var deadline = null; // ms, local clock
  var longest = 0; // the most idle time ever reported: about IDLE_TIMEOUT
  var pollTimer = null;
  var checkingZero = false;

  function learn(res) {
    var raw = res.headers.get("x-edge-session-idle-left");
    if (raw === null || raw === "" || !isFinite(Number(raw))) return;
    var left = Number(raw);
    deadline = Date.now() + left * 1000;
    if (left > longest) longest = left;
    tick();
  }

  function schedulePoll(ms) {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(poll, ms);
  }

  function poll() {
    return fetch(STATUS_URL, { cache: "no-store", headers: { accept: "application/json" }, credentials: "same-origin" })
      .then(function (res) {
        if (res.status === 401) return signedOut(res);
        if (res.ok) learn(res);
        var remaining = deadline === null ? 30000 : deadline - Date.now();
        // Often enough to follow another tab's activity; never more than once a second.
        schedulePoll(Math.min(30000, Math.max(1000, remaining / 4)));
      })
      .catch(function () {
        schedulePoll(5000);
      });
  }

  // Ask before signing out: a minute before, or at half the idle timeout when it is short.
  function threshold() {
    return Math.min(60, Math.floor(longest / 2)) * 1000;
  }

  function tick() {
    if (deadline === null) return;
    var remaining = deadline - Date.now();
    var out = $("idle-left");
    if (out) {
      out.textContent = clock(remaining);
      out.classList.toggle("low", remaining <= threshold());
    }
    var prompt = $("idle-prompt");
    if (prompt) {
      var show = remaining > 0 && remaining <= threshold();
      prompt.hidden = !show;
      if (show) text($("prompt-left"), inWords(remaining));
    }
    if (remaining <= 0 && !checkingZero) {
      // Our clock says it is over: ask the worker (passively) to be sure.
      checkingZero = true;
      poll().then(function () {
        checkingZero = false;
      });
    }
  }

  function stay() {
    var button = $("stay");
    if (button) button.disabled = true;
    return fetch(ACTIVE_URL, { cache: "no-store", headers: { accept: "application/json" }, credentials: "same-origin" })
      .then(function (res) {
        if (res.status === 401) return signedOut(res);
        learn(res);
        if (page === "dashboard") loadCurrentSession();
      })
      .finally(function () {
        if (button) button.disabled = false;
      });
  }

  // ------------------------------------------------------------ dashboard

  function loadCurrentSession() {
    return fetch("/.edge-session/sessions", { cache: "no-store", headers: { accept: "application/json" }, credentials: "same-origin" })
      .then(function (res) {
        if (res.status === 401) return signedOut(res);
        if (!res.ok) throw new Error("status " + res.status);
        return res.json().then(function (body) {
          var current = null;
          (body.sessions || []).forEach(function (s) {
            if (s.current) current = s;
          });
          if (!current) throw new Error("no current session");
          text($("created"), when(current.created));
          text($("last-seen"), when(current.last_seen));
          text($("device"), [current.device, current.location].filter(Boolean).join(" · ") || "unknown");
          text($("session-count"), String((body.sessions || []).length));
        });
      })
      .catch(function (e) {
        text($("created"), "unavailable (" + e.message + ")");
      });
  }

  function recordPageLoad() {
    var key = "acorn.pageLoads";
    var loads = [];
    try {
      loads = JSON.parse(sessionStorage.getItem(key) || "[]");
    } catch (e) {
      loads = [];
    }
    loads.push({ instance: document.body.getAttribute("data-instance"), source: document.body.getAttribute("data-source") });
    loads = loads.slice(-8);
    try {
      sessionStorage.setItem(key, JSON.stringify(loads));
    } catch (e) {
      /* private mode: no history */
    }
    var box = $("history");
    if (!box) return;
    box.textContent = "";
    loads.forEach(function (l) {
      var chip = document.createElement("span");
      chip.className = "inst small inst-" + l.instance;
      chip.title = "instance " + l.instance + ", vouched for by " + l.source;
      chip.textContent = l.instance;
      box.appendChild(chip);
    });
    var distinct = {};
    loads.forEach(function (l) {
      distinct[l.instance] = true;
    });
    text($("history-note"), Object.keys(distinct).length > 1 ? "different servers, one session" : "reload to land on another server");
  }

  // ------------------------------------------------------------ sessions page

  function renderSessions() {
    var rows = $("session-rows");
    return fetch("/.edge-session/sessions", { cache: "no-store", headers: { accept: "application/json" }, credentials: "same-origin" })
      .then(function (res) {
        if (res.status === 401) return signedOut(res);
        if (!res.ok) throw new Error("the session list answered " + res.status);
        return res.json().then(function (body) {
          rows.textContent = "";
          (body.sessions || []).forEach(function (s) {
            var tr = document.createElement("tr");
            tr.setAttribute("data-handle", s.handle);
            var device = document.createElement("td");
            device.textContent = s.device || "Unknown device";
            if (s.current) {
              var tag = document.createElement("span");
              tag.className = "tag";
              tag.textContent = "This device";
              device.appendChild(tag);
            }
            tr.appendChild(device);
            [s.location || "—", when(s.created), when(s.last_seen)].forEach(function (v) {
              var td = document.createElement("td");
              td.textContent = v;
              tr.appendChild(td);
            });
            var act = document.createElement("td");
            if (!s.current) {
              var b = document.createElement("button");
              b.className = "btn small danger";
              b.textContent = "End";
              b.setAttribute("data-end", s.handle);
              b.addEventListener("click", function () {
                b.disabled = true;
                sameOriginPost("/.edge-session/sessions/end", { handle: s.handle }).then(function (res) {
                  if (res.status === 401) return signedOut(res);
                  say(res.ok ? "Session ended. That device is signed out within a minute." : "Could not end it (" + res.status + ").");
                  return renderSessions();
                });
              });
              act.appendChild(b);
            }
            tr.appendChild(act);
            rows.appendChild(tr);
          });
          var n = (body.sessions || []).length;
          text($("session-total"), n === 1 ? "1 session" : n + " sessions");
        });
      })
      .catch(function (e) {
        say(e.message);
      });
  }

  function say(message) {
    text($("sessions-msg"), message);
  }

  function everywhere(keepCurrent) {
    return sameOriginPost("/.edge-session/logout-everywhere", keepCurrent ? { keep_current: true } : {}).then(function (res) {
      if (res.status === 401) return signedOut(res);
      if (!res.ok) return say("Could not sign out (" + res.status + ").");
      if (!keepCurrent) {
        location.assign("/login");
        return;
      }
      return res.json().then(function (body) {
        say(body.ended === 1 ? "Signed out 1 other session." : "Signed out " + body.ended + " other sessions.");
        return renderSessions();
      });
    });
  }

  // ------------------------------------------------------------ start

  if ($("stay")) $("stay").addEventListener("click", stay);
  if (page === "dashboard") {
    recordPageLoad();
    loadCurrentSession();
    // The reading list's times, in the reader's own time zone.
    Array.prototype.forEach.call(document.querySelectorAll("time[data-at]"), function (t) {
      var at = Number(t.getAttribute("data-at"));
      if (isFinite(at)) t.textContent = when(at);
    });
  }
  if (page === "sessions") {
    renderSessions();
    $("end-others").addEventListener("click", function () {
      everywhere(true);
    });
    $("end-all").addEventListener("click", function () {
      everywhere(false);
    });
  }
  poll();
  setInterval(tick, 250);
})();
