// Pipeline board: drag a deal to a column, or press [ / ] on a focused deal. Both submit the deal's
// own "Move" form, so the server does the move (and its checks) exactly as without JavaScript.
(function () {
  "use strict";
  var board = document.querySelector('[data-testid="board"][data-editable="true"]');
  if (!board) return;

  function moveTo(card, stage) {
    var form = card.querySelector("form.move");
    if (!form || !stage) return;
    var select = form.querySelector('select[name="stage"]');
    if (select.value === stage && card.closest(".column").dataset.stage === stage) return;
    select.value = stage;
    card.setAttribute("aria-busy", "true");
    form.requestSubmit ? form.requestSubmit() : form.submit();
  }

  board.addEventListener("dragstart", function (e) {
    var card = e.target.closest && e.target.closest(".deal");
    if (!card) return;
    card.classList.add("dragging");
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", card.dataset.id);
  });
  board.addEventListener("dragend", function (e) {
    var card = e.target.closest && e.target.closest(".deal");
    if (card) card.classList.remove("dragging");
    board.querySelectorAll(".drop-target").forEach(function (c) { c.classList.remove("drop-target"); });
  });
  board.addEventListener("dragover", function (e) {
    var column = e.target.closest && e.target.closest(".column");
    if (!column) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "move";
    board.querySelectorAll(".drop-target").forEach(function (c) { if (c !== column) c.classList.remove("drop-target"); });
    column.classList.add("drop-target");
  });
  board.addEventListener("drop", function (e) {
    var column = e.target.closest && e.target.closest(".column");
    if (!column) return;
    e.preventDefault();
    var id = e.dataTransfer.getData("text/plain");
    var card = board.querySelector('.deal[data-id="' + id + '"]');
    column.classList.remove("drop-target");
    if (card) moveTo(card, column.dataset.stage);
  });
  board.addEventListener("keydown", function (e) {
    var card = e.target;
    if (!card.classList || !card.classList.contains("deal") || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === "]" && card.dataset.following) { e.preventDefault(); moveTo(card, card.dataset.following); }
    if (e.key === "[" && card.dataset.previous) { e.preventDefault(); moveTo(card, card.dataset.previous); }
  });
  // After a move the page reloads; put the keyboard back on the deal that moved.
  var moved = sessionStorage.getItem("po-moved");
  if (moved) {
    sessionStorage.removeItem("po-moved");
    var again = board.querySelector('.deal[data-id="' + moved + '"]');
    if (again) again.focus();
  }
  board.addEventListener("submit", function (e) {
    var card = e.target.closest(".deal");
    if (card) sessionStorage.setItem("po-moved", card.dataset.id);
  });
})();
