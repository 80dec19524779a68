// The quick-log dialog (templates/quicklog.html): "l" anywhere outside a text field opens it; typing
// searches contacts (GET /api/contacts?q=), arrows and Enter pick one (or more), Enter in an empty
// search (or in the note) logs the touch (POST /api/interactions), Esc closes. No page reload.
(function () {
  "use strict";
  const dialog = document.getElementById("quicklog");
  if (!dialog) return;
  const $ = (id) => document.getElementById(id);
  const search = $("ql-search"), results = $("ql-results"), chips = $("ql-chips"), kind = $("ql-kind");
  const day = $("ql-day"), init = $("ql-init"), note = $("ql-note"), error = $("ql-error"), toast = $("ql-toast");
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  let picked = [];      // [{id, name}]
  let found = [];       // search results
  let active = -1;
  let timer = null;
  let seq = 0;

  function today() {
    const d = new Date();
    return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 10);
  }
  function typing(el) {
    return el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));
  }
  function open(preset) {
    picked = preset ? [preset] : [];
    found = []; active = -1;
    search.value = ""; note.value = ""; init.value = "us"; kind.value = "meeting"; day.value = today();
    error.hidden = true;
    renderChips(); renderResults();
    dialog.showModal();
    search.focus();
  }
  function renderChips() {
    chips.textContent = "";
    for (const p of picked) {
      const chip = document.createElement("span");
      chip.className = "chip"; chip.dataset.testid = "ql-chip"; chip.textContent = p.name;
      const x = document.createElement("button");
      x.type = "button"; x.className = "ghost"; x.textContent = "×"; x.setAttribute("aria-label", "Remove " + p.name);
      x.addEventListener("click", () => { picked = picked.filter((q) => q.id !== p.id); renderChips(); search.focus(); });
      chip.appendChild(x);
      chips.appendChild(chip);
    }
  }
  function renderResults() {
    results.textContent = "";
    found.forEach((c, i) => {
      const li = document.createElement("li");
      li.id = "ql-opt-" + i; li.setAttribute("role", "option"); li.dataset.testid = "ql-option";
      li.setAttribute("aria-selected", i === active ? "true" : "false");
      li.textContent = c.name + " — " + c.partner_name + (c.role ? " (" + c.role + ")" : "");
      li.addEventListener("mousedown", (e) => { e.preventDefault(); pick(i); });
      results.appendChild(li);
    });
    search.setAttribute("aria-expanded", found.length ? "true" : "false");
    if (active >= 0) search.setAttribute("aria-activedescendant", "ql-opt-" + active);
    else search.removeAttribute("aria-activedescendant");
  }
  function pick(i) {
    const c = found[i];
    if (c && !picked.some((p) => p.id === c.id)) picked.push({ id: c.id, name: c.name });
    found = []; active = -1; search.value = "";
    renderChips(); renderResults();
  }
  async function lookup() {
    const q = search.value.trim();
    const mine = ++seq;
    if (!q) { found = []; active = -1; renderResults(); return; }
    const r = await fetch("/api/contacts?limit=8&q=" + encodeURIComponent(q), { headers: { accept: "application/json" } });
    if (mine !== seq || !r.ok) return;
    found = (await r.json()).items.filter((c) => !picked.some((p) => p.id === c.id));
    active = found.length ? 0 : -1;
    renderResults();
  }
  async function submit() {
    if (!picked.length) { fail("Pick at least one contact."); search.focus(); return; }
    const when = day.value === today() ? new Date().toISOString() : day.value + "T12:00:00Z";
    const body = { kind: kind.value, occurred_at: when, initiated_by: init.value,
                   contact_ids: picked.map((p) => p.id), note: note.value.trim() || null };
    const r = await fetch("/api/interactions", { method: "POST", body: JSON.stringify(body),
      headers: { "content-type": "application/json", accept: "application/json", "x-csrf-token": csrf } });
    if (!r.ok) {
      let msg = "Could not log it (" + r.status + ").";
      try { const d = (await r.json()).detail; msg = Array.isArray(d) ? d.map((e) => e.msg).join("; ") : (d || msg); } catch (e) { /* keep */ }
      fail(msg); return;
    }
    dialog.close();
    toast.textContent = "Logged " + kind.value + " with " + picked.map((p) => p.name).join(", ") + ".";
    toast.hidden = false;
    setTimeout(() => { toast.hidden = true; }, 4000);
    document.dispatchEvent(new CustomEvent("quicklog:logged", { detail: body }));
  }
  function fail(msg) { error.textContent = msg; error.hidden = false; }

  document.addEventListener("keydown", (e) => {
    if (e.key === "l" && !e.ctrlKey && !e.metaKey && !e.altKey && !dialog.open && !typing(e.target)) {
      e.preventDefault(); open(null);
    }
  });
  document.querySelectorAll("[data-quicklog-contact]").forEach((b) => b.addEventListener("click", () =>
    open({ id: b.dataset.quicklogContact, name: b.dataset.quicklogName })));
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(lookup, 120); });
  search.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown" && found.length) { e.preventDefault(); active = (active + 1) % found.length; renderResults(); }
    else if (e.key === "ArrowUp" && found.length) { e.preventDefault(); active = (active - 1 + found.length) % found.length; renderResults(); }
    else if (e.key === "Enter") {
      e.preventDefault();
      if (active >= 0) pick(active);
      else if (!search.value.trim()) submit();
    } else if (e.key === "Backspace" && !search.value && picked.length) { picked.pop(); renderChips(); }
  });
  dialog.addEventListener("keydown", (e) => {
    const keys = { m: "meeting", c: "call", e: "email", v: "event", s: "message" };
    if (e.altKey && keys[e.key]) { e.preventDefault(); kind.value = keys[e.key]; }
  });
  note.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); submit(); } });
  $("quicklog-form").addEventListener("submit", (e) => { e.preventDefault(); submit(); });
  $("ql-cancel").addEventListener("click", () => dialog.close());
})();
