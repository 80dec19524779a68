// The weekly update form: keyboard only from start to submit, every change saved as a draft at once.
// The rows are drawn from the update the server sent (pre-filled lines included); every edit is PUT to
// the REST API with the version last read (409 when another tab saved in between). A copy of the unsaved
// form is kept in localStorage so a tab closed mid-save loses nothing: it is saved on the next visit.
(function () {
  "use strict";
  var root = document.querySelector('[data-testid="update-form"]');
  if (!root) return;
  var data = JSON.parse(document.getElementById("update-data").textContent);
  var week = root.dataset.week, member = root.dataset.member, closed = root.dataset.closed === "true";
  var url = "/api/week/meetings/" + week + "/updates/me";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var storeKey = "po-week-draft:" + week + ":" + member;
  var list = document.getElementById("lines");
  var state = document.getElementById("save-state");
  var errorBox = document.getElementById("update-error");
  var anything = document.getElementById("anything-else");
  var submitButton = document.getElementById("submit-update");
  var version = data.version, status = data.status, inFlight = false, dirty = false, freeCount = 0;
  var submitWanted = false;  // Ctrl+Enter while a draft save is on its way: submit right after it
  var STATUSES = [["", "—"], ["on_track", "on track"], ["at_risk", "at risk"], ["blocked", "blocked"], ["done", "done"]];
  var REASONS = JSON.parse(document.getElementById("reason-labels").textContent);

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text) e.textContent = text;
    return e;
  }

  function row(line) {
    var li = el("li", {"class": "line" + (line.suggested ? " suggested" : ""), "data-key": line.key,
                       "data-kind": line.kind, "data-ref": line.ref_id || "", "data-testid": "line"});
    var head = el("div", {"class": "line-head"});
    if (line.kind === "free") {
      var label = el("input", {"class": "f-label", "aria-label": "What about", "placeholder": "Partner, deal or topic",
                               "maxlength": "300"});
      label.value = line.label || "";
      head.appendChild(label);
    } else {
      if (line.partner_name) head.appendChild(el("strong", {"class": "partner"}, line.partner_name));
      head.appendChild(el("span", {"class": "label", "data-label": line.label}, line.label));
      if (line.amount) head.appendChild(el("span", {"class": "muted amount"}, " " + money(line.amount, line.currency)));
      (line.reasons || []).forEach(function (r) { head.appendChild(el("span", {"class": "reason reason-" + r}, REASONS[r] || r)); });
    }
    li.appendChild(head);
    var fields = el("div", {"class": "line-fields"});
    var select = el("select", {"class": "f-status", "aria-label": "Status of " + (line.label || "this line")});
    STATUSES.forEach(function (s) { var o = el("option", {value: s[0]}, s[1]); if ((line.status || "") === s[0]) o.selected = true; select.appendChild(o); });
    fields.appendChild(select);
    var note = el("input", {"class": "f-note", "aria-label": "Note", "placeholder": "Note", "maxlength": "2000"});
    note.value = line.note || "";
    var step = el("input", {"class": "f-step", "aria-label": "Next step", "placeholder": "Next step (becomes a task)", "maxlength": "300"});
    step.value = line.next_step || "";
    var due = el("input", {"class": "f-due", "aria-label": "Next step due", "placeholder": "fri, +3", "size": "10", "title": "2026-12-04, mon…sun, tomorrow, +3"});
    due.value = line.next_step_due || "";
    fields.appendChild(note); fields.appendChild(step); fields.appendChild(due);
    li.appendChild(fields);
    li.appendChild(el("div", {"class": "line-error", "role": "alert"}));
    if (line.task_id) li.dataset.task = line.task_id;
    return li;
  }

  function money(amount, currency) {
    try { return new Intl.NumberFormat("en-US", {style: "currency", currency: currency, maximumFractionDigits: 0}).format(Number(amount)); }
    catch (e) { return amount + " " + currency; }
  }

  function iso(d) { return d.toISOString().slice(0, 10); }
  function parseDue(text) {
    var t = (text || "").trim().toLowerCase();
    if (!t) return null;
    if (/^\d{4}-\d{2}-\d{2}$/.test(t)) return t;
    var today = new Date(); today = new Date(Date.UTC(today.getFullYear(), today.getMonth(), today.getDate()));
    if (t === "today") return iso(today);
    if (t === "tomorrow" || t === "tom") { today.setUTCDate(today.getUTCDate() + 1); return iso(today); }
    var plus = /^\+(\d{1,3})d?$/.exec(t);
    if (plus) { today.setUTCDate(today.getUTCDate() + parseInt(plus[1], 10)); return iso(today); }
    var days = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    var i = days.indexOf(t.slice(0, 3));
    if (i >= 0 && t.length <= 9) {
      var ahead = (i - today.getUTCDay() + 7) % 7 || 7;
      today.setUTCDate(today.getUTCDate() + ahead); return iso(today);
    }
    return text.trim();  // the server names the field when it is not a date
  }

  function lineData(li) {
    var q = function (c) { return li.querySelector(c); };
    var label = q(".f-label") ? q(".f-label").value : (q(".label") ? q(".label").dataset.label : "");
    var out = {key: li.dataset.key, kind: li.dataset.kind, label: label || "", status: q(".f-status").value || null,
               note: q(".f-note").value, next_step: q(".f-step").value, next_step_due: parseDue(q(".f-due").value)};
    if (li.dataset.ref) out.ref_id = li.dataset.ref;
    return out;
  }

  var sentRows = [];  // the rows of the last body, in order: the server's lines.N errors point into it
  function body(submit) {
    var rows = Array.prototype.filter.call(list.querySelectorAll("li.line"), function (li) {
      var l = lineData(li);
      return !(l.kind === "free" && !l.label && !l.note && !l.next_step && !l.status);
    });
    sentRows = rows;
    return {version: version, lines: rows.map(lineData), anything_else: anything.value, submit: !!submit};
  }

  function remember() {
    // `inflight`: a save was on its way, so the server may be one version ahead with part of this text.
    try { localStorage.setItem(storeKey, JSON.stringify({version: version, inflight: inFlight, body: body(false)})); } catch (e) { /* private mode */ }
  }
  function forget() { try { localStorage.removeItem(storeKey); } catch (e) { /* private mode */ } }

  function say(text, kind) { state.textContent = text; state.className = "save-state " + (kind || ""); }

  function showErrors(detail) {
    list.querySelectorAll(".line-error").forEach(function (e) { e.textContent = ""; });
    list.querySelectorAll("[aria-invalid]").forEach(function (e) { e.removeAttribute("aria-invalid"); });
    errorBox.textContent = "";
    (Array.isArray(detail) ? detail : [{loc: [], msg: String(detail)}]).forEach(function (d) {
      var loc = (d.loc || []).filter(function (p) { return p !== "body"; });
      var rows = sentRows;
      var idx = parseInt(loc[1], 10);
      if (loc[0] === "lines" && rows[idx]) {
        var field = {note: ".f-note", next_step: ".f-step", next_step_due: ".f-due", label: ".f-label", status: ".f-status"}[loc[2]];
        var input = field && rows[idx].querySelector(field);
        if (input) input.setAttribute("aria-invalid", "true");
        rows[idx].querySelector(".line-error").textContent = d.msg;
      } else {
        errorBox.textContent = (loc.length ? loc.join(".") + ": " : "") + d.msg;
      }
    });
  }

  function save(submit) {
    if (closed) return;
    if (inFlight) { dirty = true; if (submit) submitWanted = true; return; }
    if (submitWanted) { submit = true; submitWanted = false; }
    inFlight = true; dirty = false;
    say(submit ? "Submitting…" : "Saving…");
    var sent = body(submit);
    fetch(url, {method: "PUT", headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
                body: JSON.stringify(sent), credentials: "same-origin"})
      .then(function (r) { return r.json().then(function (j) { return {status: r.status, json: j}; }); })
      .then(function (res) {
        inFlight = false;
        if (res.status === 200) {
          version = res.json.version; status = res.json.status;
          showErrors([]);
          if (!dirty) forget(); else remember();
          res.json.lines.forEach(function (l) {
            var li = list.querySelector('li.line[data-key="' + CSS.escape(l.key) + '"]');
            if (li && l.task_id) li.dataset.task = l.task_id;
          });
          var at = new Date().toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit"});
          if (submit) {
            say((res.json.amendments ? "Amendment submitted " : "Submitted ") + (res.json.on_time ? "on time " : "") + "at " + at, "good");
          } else {
            say((status === "submitted" ? "Saved (submitted update; press Ctrl+Enter to submit the amendment) " : "Draft saved ") + at, "good");
          }
          submitButton.textContent = status === "submitted" ? "Submit amendment" : "Submit update";
          root.dataset.status = status;
          if (dirty || submitWanted) save(submitWanted);
        } else if (res.status === 409) {
          submitWanted = false;
          say("Changed elsewhere (another tab or device): reload the page to see the latest version.", "bad");
          showErrors(res.json.detail);
        } else if (res.status === 422) {
          submitWanted = false;
          say("Not saved: see the highlighted field.", "bad");
          showErrors(res.json.detail);
        } else {
          say("Not saved (" + res.status + "): retrying in a moment.", "bad");
          setTimeout(function () { save(submit); }, 3000);
        }
      })
      .catch(function () { inFlight = false; say("Offline: your changes are kept here and saved when the connection is back.", "bad"); remember(); setTimeout(function () { save(submit); }, 3000); });
  }

  function changed() { remember(); save(false); }

  function addLine(after) {
    freeCount += 1;
    var li = row({key: "free:" + Date.now().toString(36) + freeCount, kind: "free", label: ""});
    if (after && after.nextSibling) list.insertBefore(li, after.nextSibling); else list.appendChild(li);
    li.querySelector(".f-label").focus();
    return li;
  }

  function move(li, field, delta) {
    var rows = Array.prototype.slice.call(list.querySelectorAll("li.line"));
    var target = rows[rows.indexOf(li) + delta];
    if (!target) return;
    var cls = field && field.classList[0];
    (cls && target.querySelector("." + cls) || target.querySelector("input, select")).focus();
  }

  data.lines.forEach(function (l) { list.appendChild(row(l)); });
  anything.value = data.anything_else || "";

  // A copy the server never got (the tab closed mid-save): put it back and save it now.
  try {
    var kept = JSON.parse(localStorage.getItem(storeKey) || "null");
    var ours = kept && (kept.version === version || (kept.inflight && kept.version + 1 === version));
    if (ours && !closed && JSON.stringify(kept.body.lines) !== JSON.stringify(body(false).lines)
        || ours && !closed && kept.body.anything_else !== anything.value) {
      list.innerHTML = "";
      kept.body.lines.forEach(function (l) { list.appendChild(row(l)); });
      anything.value = kept.body.anything_else || "";
      save(false);
    } else if (kept && !ours) {
      forget();
    }
  } catch (e) { forget(); }

  if (closed) {
    root.querySelectorAll("input, select, textarea, button").forEach(function (e) { e.disabled = true; });
    say("The meeting is closed: this update can no longer change.");
  } else {
    say(data.version ? (data.status === "submitted" ? "Submitted" : "Draft saved") : "Not saved yet: start typing.");
    submitButton.textContent = data.status === "submitted" ? "Submit amendment" : "Submit update";
  }

  root.addEventListener("input", function (e) { if (e.target.matches("input, textarea")) changed(); });
  root.addEventListener("change", function (e) {
    if (e.target.matches(".f-due")) { var v = parseDue(e.target.value); if (v && /^\d{4}-\d{2}-\d{2}$/.test(v)) e.target.value = v; }
    if (e.target.matches("select, .f-due")) changed();
  });
  root.addEventListener("keydown", function (e) {
    var li = e.target.closest && e.target.closest("li.line");
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); save(true); return; }
    if (!li) return;
    if (e.key === "Enter" && !e.shiftKey && !e.altKey) { e.preventDefault(); addLine(li); return; }
    if (e.altKey && (e.key === "ArrowDown" || e.key === "ArrowUp")) { e.preventDefault(); move(li, e.target, e.key === "ArrowDown" ? 1 : -1); return; }
    if (e.key === "Backspace" && (e.ctrlKey || e.metaKey) && li.dataset.kind === "free") {
      var empty = Array.prototype.every.call(li.querySelectorAll("input"), function (i) { return !i.value; });
      if (empty) { e.preventDefault(); move(li, e.target, -1); li.remove(); changed(); }
    }
  });
  document.getElementById("add-line").addEventListener("click", function () { addLine(null); });
  submitButton.addEventListener("click", function () { save(true); });
  window.addEventListener("pagehide", function () {
    if (!dirty && !inFlight) return;
    remember();
    if (!inFlight) {
      fetch(url, {method: "PUT", keepalive: true, headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
                  body: JSON.stringify(body(false)), credentials: "same-origin"});
    }
  });
  var first = list.querySelector("select, input");
  if (first && !closed) first.focus();
})();
