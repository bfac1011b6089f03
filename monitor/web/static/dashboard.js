// news-monitor: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";
  // Live source filter: hide rows as you type (the form still filters on the server).
  var text = document.getElementById("filter-text");
  var show = document.getElementById("filter-show");
  var table = document.querySelector("table.sources tbody");
  var count = document.getElementById("filter-count");
  function apply() {
    if (!table) { return; }
    var wanted = text.value.toLowerCase().trim();
    var mode = show.value;
    var rows = table.querySelectorAll("tr[data-name]");
    var shown = 0;
    rows.forEach(function (row) {
      var cls = row.className;
      var ok = (mode === "all") || (mode === "failing" && cls === "failing") ||
        (mode === "ok" && cls === "ok") || (mode === "disabled" && cls === "off");
      if (ok && wanted) { ok = row.getAttribute("data-search").toLowerCase().indexOf(wanted) >= 0; }
      row.hidden = !ok;
      if (ok) { shown += 1; }
    });
    if (count) { count.textContent = shown + " shown on this page"; }
  }
  if (text && show) {
    text.addEventListener("input", apply);
    show.addEventListener("change", apply);
  }
  // Refresh the dashboard every minute while it is visible and nothing is being typed.
  if (document.getElementById("sources")) {
    setInterval(function () {
      var active = document.activeElement;
      var typing = active && (active.tagName === "INPUT" || active.tagName === "TEXTAREA" || active.tagName === "SELECT");
      if (document.visibilityState === "visible" && !typing && !(text && text.value !== (new URL(location.href)).searchParams.get("q") && text.value)) {
        location.reload();
      }
    }, 60000);
  }
})();
