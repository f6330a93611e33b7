// The demo's simulator panel: belt speed and the treadmill's buttons, sent to /demo/*.
(function () {
  "use strict";
  const panel = document.querySelector("[data-testid=demo-panel]");
  if (!panel) return;
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const note = document.getElementById("demo-note");
  const slider = document.getElementById("demo-belt-kmh");
  const shown = document.getElementById("demo-belt-out");

  async function send(path, body) {
    try {
      const reply = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": token },
        body: JSON.stringify(body),
      });
      const answer = await reply.json();
      note.textContent = answer.ok ? "" : answer.error;
    } catch (err) {
      note.textContent = "The demo did not answer; is it still running?";
    }
  }

  function setBelt(kmh) {
    slider.value = kmh;
    shown.textContent = Number(kmh).toFixed(1);
    send("/demo/belt", { kmh: Number(kmh) });
  }

  slider.addEventListener("input", () => { shown.textContent = Number(slider.value).toFixed(1); });
  slider.addEventListener("change", () => setBelt(slider.value));
  panel.querySelectorAll("[data-kmh]").forEach((button) => {
    button.addEventListener("click", () => setBelt(button.dataset.kmh));
  });
  panel.querySelectorAll("[data-button]").forEach((button) => {
    button.addEventListener("click", () => {
      const body = { button: button.dataset.button };
      if (button.dataset.hold) body.hold_s = Number(button.dataset.hold);
      send("/demo/press", body);
    });
  });
  fetch("/demo/state").then((r) => r.json()).then((state) => {
    if (state.ok) { slider.value = state.belt_kmh; shown.textContent = state.belt_kmh.toFixed(1); }
  }).catch(() => {});
})();
