// The fleet's grid: follow /api/fleet/stream (Server-Sent Events) and redraw the tiles from
// each "grid" event. The server writes the words; this script only places them, with
// textContent (a machine's name is whatever its config says, never markup).
(function () {
  "use strict";

  const root = document.getElementById("fleet");
  if (!root) return;
  const list = document.getElementById("tiles");
  const banner = document.getElementById("broker-banner");
  const empty = document.getElementById("fleet-empty");
  const PARTS = ["name", "availability", "speed", "mode", "state", "cap"];

  function span(cls, text) {
    const el = document.createElement("span");
    el.className = cls;
    el.textContent = text;
    return el;
  }

  function tile(t) {
    const li = document.createElement("li");
    li.className = "tile" + (t.alert ? " tile-alert" : "") + (t.online ? "" : " tile-offline");
    li.dataset.key = t.key;
    li.dataset.testid = "tile";
    const a = document.createElement("a");
    a.className = "tile-link";
    a.href = t.dashboard;
    for (const part of PARTS) a.appendChild(span("tile-" + part, t[part]));
    a.querySelector(".tile-mode").classList.add("mode-" + (t.mode || "none"));
    const alert = document.createElement("strong");
    alert.className = "tile-alert-text";
    alert.textContent = t.alert_text;
    alert.hidden = !t.alert_text;
    a.appendChild(alert);
    li.appendChild(a);
    return li;
  }

  function render(data) {
    list.replaceChildren(...data.tiles.map(tile));
    empty.hidden = data.tiles.length > 0;
    const problem = data.broker && data.broker.problem;
    banner.textContent = problem || "";
    banner.hidden = !problem;
  }

  const source = new EventSource(root.dataset.streamUrl);
  source.addEventListener("grid", (event) => render(JSON.parse(event.data)));
  source.addEventListener("error", () => {
    banner.textContent = "The fleet dashboard is not answering; the grid resumes when it does.";
    banner.hidden = false;
  });
})();
