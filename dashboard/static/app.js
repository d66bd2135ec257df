// The dashboard's only script: refresh the live parts of the page every few seconds while it is
// visible and nobody is typing or selecting, ask before destructive buttons, select all.
(function () {
  "use strict";
  var every = 5000;
  var updated = document.getElementById("updated");
  var live = document.getElementById("live");

  function busy() {
    var a = document.activeElement;
    if (a && (a.tagName === "INPUT" || a.tagName === "SELECT" || a.tagName === "TEXTAREA")) return true;
    if (document.querySelector("input[type=checkbox]:checked")) return true;
    if (document.querySelector("details[open]")) return true;
    return false;
  }

  function refresh() {
    if (document.visibilityState !== "visible" || busy() || !document.querySelector("[data-live]")) return;
    fetch(location.href, { headers: { "X-Dashboard-Refresh": "1" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live][id]").forEach(function (el) {
          var fresh = doc.getElementById(el.id);
          if (fresh) el.replaceWith(document.importNode(fresh, true));
        });
        var t = doc.getElementById("updated");
        if (t && updated) updated.textContent = t.textContent;
        if (live) live.classList.remove("stale");
      })
      .catch(function () { if (live) live.classList.add("stale"); });
  }
  setInterval(refresh, every);
  document.addEventListener("visibilitychange", refresh);

  document.addEventListener("submit", function (e) {
    var b = e.submitter;
    if (b && b.dataset.confirm && !window.confirm(b.dataset.confirm)) e.preventDefault();
  });
})();
