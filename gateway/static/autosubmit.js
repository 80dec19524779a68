// Filters that apply as soon as they change: a <select data-autosubmit> submits its form. Without
// JavaScript the form's own button does it (the pages keep one in <noscript>).
(function () {
  "use strict";
  document.addEventListener("change", function (e) {
    var el = e.target;
    if (!el || !el.hasAttribute || !el.hasAttribute("data-autosubmit") || !el.form) return;
    el.form.requestSubmit ? el.form.requestSubmit() : el.form.submit();
  });
})();
