// "Print" links open the browser's print dialog (the page's print stylesheet drops navigation and forms).
document.querySelectorAll("[data-print]").forEach(function (a) {
  a.addEventListener("click", function (e) { e.preventDefault(); window.print(); });
});
