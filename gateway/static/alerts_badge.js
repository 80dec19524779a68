// The number of unread alerts beside "Alerts" in the page header. Fetched after the page is shown, so a
// slow or absent notifications service never delays a page; nothing is shown when it does not answer.
(function () {
  var badge = document.querySelector("[data-unread-count]");
  if (!badge || !window.fetch) return;
  fetch("/api/alerts?limit=0", { headers: { accept: "application/json" }, credentials: "same-origin" })
    .then(function (r) { return r.ok ? r.json() : null; })
    .then(function (feed) {
      if (!feed || !feed.unread) return;
      badge.textContent = feed.unread > 99 ? "99+" : String(feed.unread);
      badge.setAttribute("aria-label", feed.unread + " unread");
      badge.hidden = false;
    })
    .catch(function () {});
})();
