// Date inputs draw their value in the browser's locale (mm/dd/yyyy in a US browser) while every page
// prints days as "30 Nov 2026" (runtime/formatting.py). Beside each date input, the chosen day in the
// pages' own format, so the two never disagree about which day it is.
(function () {
  "use strict";
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  function show(input) {
    var out = input.nextElementSibling;
    if (!out || !out.hasAttribute("data-date-echo")) {
      out = document.createElement("span");
      out.className = "muted date-echo";
      out.setAttribute("data-date-echo", "");
      out.setAttribute("aria-hidden", "true");
      input.insertAdjacentElement("afterend", out);
    }
    var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(input.value || "");
    out.textContent = m ? " " + m[3] + " " + MONTHS[parseInt(m[2], 10) - 1] + " " + m[1] : "";
  }
  function all() {
    document.querySelectorAll('input[type="date"]').forEach(show);
  }
  document.addEventListener("change", function (e) {
    if (e.target && e.target.matches && e.target.matches('input[type="date"]')) show(e.target);
  });
  document.addEventListener("input", function (e) {
    if (e.target && e.target.matches && e.target.matches('input[type="date"]')) show(e.target);
  });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", all); else all();
})();
