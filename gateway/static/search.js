// "/" anywhere (outside a text field) opens search: the search page, or its box when already there.
document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target.closest && target.closest("input, textarea, select, [contenteditable]")) return;
  event.preventDefault();
  const box = document.getElementById("search-q");
  if (box) {
    box.focus();
    box.select();
  } else {
    window.location.assign("/search");
  }
});
