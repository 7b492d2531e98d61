// The platform's pages work without script; this only reloads a page that waits for
// something the server is doing (identity verification), when it asks to.
(function () {
  "use strict";
  var waiting = document.querySelector("[data-reload-after]");
  if (waiting) {
    var ms = parseInt(waiting.getAttribute("data-reload-after"), 10) || 2000;
    window.setTimeout(function () { window.location.reload(); }, ms);
  }
  // A form is sent once: its submit button is disabled while the next page loads.
  document.addEventListener("submit", function (event) {
    var button = event.target.querySelector("button[type=submit]");
    if (button) { window.setTimeout(function () { button.disabled = true; }, 0); }
  });
})();
