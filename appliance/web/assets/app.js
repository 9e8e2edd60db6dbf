// The box's page: polls /api/status every two seconds and, when anything
// but the time changed, redraws the live sections from the server's own
// HTML; buttons post actions with the page's CSRF token.
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="csrf"]');
  var token = csrf ? csrf.content : "";
  var last = null;

  function show(text, refused) {
    var n = document.getElementById("notice");
    n.textContent = text;
    n.className = refused ? "refused" : "done";
  }

  function refresh() {
    return fetch(location.pathname + location.search, { cache: "no-store" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        doc.querySelectorAll("[data-live]").forEach(function (el) {
          var cur = document.getElementById(el.id);
          if (!cur) return;
          var fresh = document.importNode(el, true);
          // Keep what the person typed or chose in the section's fields.
          cur.querySelectorAll("input[id], select[id]").forEach(function (f) {
            var g = fresh.querySelector("#" + f.id);
            if (g) g.value = f.value;
          });
          cur.replaceWith(fresh);
        });
      });
  }

  function poll() {
    fetch("/api/status", { cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) { location.href = "/login"; return null; }
        return r.ok ? r.json() : null;
      })
      .then(function (st) {
        if (!st) return;
        delete st.time;
        var key = JSON.stringify(st);
        var changed = last !== null && key !== last;
        last = key;
        if (changed) return refresh();
      })
      .catch(function () { show("The box is not answering; retrying.", true); });
  }

  document.addEventListener("click", function (e) {
    var b = e.target.closest("[data-act]");
    if (!b) return;
    e.preventDefault();
    var arg = b.dataset.arg || "";
    if (b.dataset.argFrom) arg = document.getElementById(b.dataset.argFrom).value;
    b.disabled = true;
    fetch("/api/actions/" + encodeURIComponent(b.dataset.act), {
      method: "POST",
      headers: { "X-CSRF-Token": token, "Content-Type": "application/json" },
      body: JSON.stringify({ arg: arg })
    })
      .then(function (r) { return r.json(); })
      .catch(function () { return { ok: false, error: "the box gave no answer" }; })
      .then(function (res) {
        b.disabled = false;
        show(res.ok ? (b.dataset.done || "Done.") : "Not done: " + res.error, !res.ok);
        return refresh();
      });
  });

  if (document.getElementById("panel")) {
    poll();
    setInterval(poll, 2000);
  }
})();
