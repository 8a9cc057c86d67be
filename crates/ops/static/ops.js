// Keel ops console: the only script, and the only thing that needs one — refreshing the
// page's numbers in place every few seconds (the body's data-refresh). Everything else is
// plain links and forms. Refreshing pauses while the tab is hidden or a form field has
// the focus, and can be paused from the header.
(function () {
  "use strict";
  var seconds = Number(document.body.dataset.refresh || 0);
  var status = document.getElementById("refresh-status");
  if (!seconds || !status) return;
  var paused = false;
  var button = document.createElement("button");
  button.type = "button";
  button.className = "link";
  function label() {
    button.textContent = paused ? "Auto-refresh paused: resume" : "Refreshing every " + seconds + " s: pause";
  }
  button.addEventListener("click", function () { paused = !paused; label(); });
  label();
  status.textContent = "";
  status.appendChild(button);

  function busy() {
    var el = document.activeElement;
    return el && /^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(el.tagName) && el.closest("#content");
  }

  function refresh() {
    if (paused || document.hidden || busy()) return;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (res) {
        // A lapsed session answers with the sign-in page: load it for real.
        if (res.redirected || !res.ok) { if (res.redirected) window.location.reload(); return null; }
        return res.text();
      })
      .then(function (html) {
        if (!html) return;
        var next = new DOMParser().parseFromString(html, "text/html").getElementById("content");
        var current = document.getElementById("content");
        if (next && current) {
          // What was done is said once, not again at every refresh.
          var notice = next.querySelector(".notice");
          if (notice) notice.remove();
          current.replaceWith(next);
        }
      })
      .catch(function () { /* the next tick tries again */ });
  }
  window.setInterval(refresh, seconds * 1000);
})();
