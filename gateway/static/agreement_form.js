// Show the fields of the chosen kind of rate only; without JavaScript all of them stay visible.
(() => {
  const form = document.querySelector('[data-testid="agreement-form"]');
  if (!form) return;
  const show = () => {
    const chosen = form.querySelector('input[name="rate_kind"]:checked');
    const kind = chosen ? chosen.value : "flat";
    for (const el of form.querySelectorAll("[data-rate-kind]")) el.hidden = el.dataset.rateKind !== kind;
  };
  form.addEventListener("change", (event) => { if (event.target.name === "rate_kind") show(); });
  show();
})();
