// Live refresh: every element with data-refresh="<url>" is refetched periodically and
// its content replaced by the server-rendered fragment at that URL. Without this
// script the page is complete as served; it only goes stale.
(function () {
  "use strict";
  var regions = document.querySelectorAll("[data-refresh]");
  var status = document.querySelector("[data-testid=live-status]");
  if (!regions.length || !window.fetch) return;
  var every = Number(document.body.getAttribute("data-refresh-ms")) || 2000;

  function say(text, stale) {
    if (!status) return;
    status.textContent = text;
    status.classList.toggle("live-stale", !!stale);
  }

  function clock() {
    return new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  // swap replaces el's content, keeping what the reader was doing: the focused
  // element (by id) and which <details> were open.
  function swap(el, html) {
    var focused = document.activeElement && el.contains(document.activeElement) ? document.activeElement.id : "";
    var open = [];
    el.querySelectorAll("details[id][open]").forEach(function (d) { open.push(d.id); });
    el.innerHTML = html;
    open.forEach(function (id) {
      var d = document.getElementById(id);
      if (d) d.open = true;
    });
    if (focused) {
      var f = document.getElementById(focused);
      if (f) f.focus({ preventScroll: true });
    }
  }

  function refresh(el) {
    return fetch(el.getAttribute("data-refresh"), { headers: { Accept: "text/html" }, cache: "no-store" })
      .then(function (resp) {
        if (!resp.ok) throw new Error("HTTP " + resp.status);
        return resp.text();
      })
      .then(function (html) { swap(el, html); });
  }

  var busy = false;
  function tick() {
    // Skip while the tab is hidden or a previous round is still out (a slow node
    // must not pile up requests).
    if (document.hidden || busy) return;
    busy = true;
    Promise.all(Array.prototype.map.call(regions, refresh))
      .then(function () { say("Live: updated at " + clock() + ", every " + every / 1000 + " s.", false); })
      .catch(function (err) { say("Live updates failing (" + err.message + "); retrying. Data shown is from before " + clock() + ".", true); })
      .then(function () { busy = false; });
  }

  say("Live: updates every " + every / 1000 + " s.", false);
  setInterval(tick, every);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) tick(); });
})();
