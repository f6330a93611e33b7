// The live page: follow /api/stream (Server-Sent Events) and send the control buttons to
// /api/control. The server renders the words ("view" in each event), so this script only
// places them, shows the right buttons and banners, and says when the stream is down.
(function () {
  "use strict";

  const root = document.getElementById("live");
  if (!root) return;
  const byId = (id) => document.getElementById(id);
  const csrf = document.querySelector('meta[name="csrf-token"]');
  const FIELDS = ["speed", "mode", "state", "elapsed", "distance", "kcal", "cap", "level",
                  "program", "sensor", "console", "health"];
  const REOPEN_MS = 5000; // after the server refused the stream (the browser gives up then)
  let source = null;
  let reopenTimer = null;
  let busy = false;

  function setText(id, text) {
    const el = byId(id);
    if (el && el.textContent !== text) el.textContent = text;
  }

  function show(id, visible) {
    const el = byId(id);
    if (el) el.hidden = !visible;
  }

  function setConnection(text) {
    setText("connection", text);
  }

  function showButtons(state, mode, online) {
    show("control-start", online && state === "idle");
    show("control-pause", online && state === "running");
    show("control-resume", online && state === "paused");
    show("control-end", online && (state === "running" || state === "paused"));
    for (const m of ["forward", "backward"]) {
      const button = byId("control-" + m);
      button.setAttribute("aria-pressed", String(online && mode === m));
      button.disabled = busy || !online;
    }
    for (const button of root.querySelectorAll("[data-action]:not([data-mode])")) {
      button.disabled = busy || !online;
    }
  }

  // The health line: hidden from a daemon that reports none, marked while anything is wrong.
  function showHealth(text) {
    show("health-row", text !== "");
    byId("health-row").classList.toggle("trouble", text !== "" && text !== "all good");
  }

  function renderStatus(data) {
    const v = data.view;
    for (const field of FIELDS) setText(field, v[field]);
    if (data.machine_name) setText("machine", data.machine_name);
    const mode = byId("mode");
    mode.className = "mode mode-" + (data.mode || "none");
    root.dataset.online = "true";
    root.dataset.state = data.state;
    root.dataset.mode = data.mode;
    show("offline-banner", false);
    setText("warning-text", v.warning);
    setText("warning-detail", v.warning_detail);
    show("warning-banner", v.warning !== "");
    setText("message", v.message);
    show("message", v.message !== "");
    setText("start-hint", v.start_hint);
    show("start-hint", v.start_hint !== "");
    // the first-session card is for before a session: during one it would push the controls
    // off a phone's screen (the card is on the page only for those who need it)
    show("first-session", data.state === "idle");
    setText("safety", v.safety);
    show("safety", v.safety !== "");
    setText("history-error", v.history);
    show("history-error", v.history !== "");
    show("console-row", v.console !== "");
    showHealth(v.health);
    showButtons(data.state, data.mode, true);
  }

  function renderOffline(data) {
    const v = data.view;
    for (const field of FIELDS) setText(field, v[field]);
    byId("mode").className = "mode mode-none";
    root.dataset.online = "false";
    root.dataset.state = "offline";
    setText("offline-text", data.error);
    show("offline-banner", true);
    show("warning-banner", false);
    show("message", false);
    show("start-hint", false);
    show("console-row", false);
    showHealth(v.health);
    showButtons("offline", "", false);
  }

  function parse(event) {
    try {
      return JSON.parse(event.data);
    } catch (err) {
      return null;
    }
  }

  function open() {
    if (source) return;
    clearTimeout(reopenTimer);
    source = new EventSource(root.dataset.streamUrl);
    source.addEventListener("open", () => setConnection("live"));
    source.addEventListener("status", (event) => {
      const data = parse(event);
      if (data) renderStatus(data);
      setConnection("live");
    });
    source.addEventListener("offline", (event) => {
      const data = parse(event);
      if (data) renderOffline(data);
      setConnection("live; waiting for the device");
    });
    source.addEventListener("error", () => {
      // The browser retries by itself (retry: 2000) unless the server refused the stream.
      setConnection("reconnecting…");
      root.dataset.connection = "reconnecting";
      if (source && source.readyState === EventSource.CLOSED) {
        close();
        reopenTimer = setTimeout(open, REOPEN_MS);
      }
    });
    source.addEventListener("open", () => { root.dataset.connection = "live"; });
  }

  function close() {
    if (source) source.close();
    source = null;
  }

  // A phone with its screen off keeps no stream open: each one holds a server thread.
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) {
      close();
      clearTimeout(reopenTimer);
    } else {
      open();
    }
  });

  function controlError(text) {
    setText("control-error", text);
    show("control-error", text !== "");
  }

  async function send(body) {
    busy = true;
    showButtons(root.dataset.state, root.dataset.mode, root.dataset.online === "true");
    controlError("");
    try {
      const response = await fetch(root.dataset.controlUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          "X-CSRFToken": csrf ? csrf.content : "",
        },
        body: JSON.stringify(body),
      });
      let reply = {};
      try {
        reply = await response.json();
      } catch (err) {
        reply = {};
      }
      if (response.status === 401) {
        const link = byId("control-login-link");
        if (reply.login) link.href = reply.login;
        show("control-login", true);
      } else if (!response.ok || reply.ok === false) {
        controlError(reply.error || "The dashboard answered " + response.status + "; try again.");
      } else {
        show("control-login", false);
      }
    } catch (err) {
      controlError("The dashboard cannot be reached; check the network and try again.");
    } finally {
      busy = false;
      showButtons(root.dataset.state, root.dataset.mode, root.dataset.online === "true");
    }
  }

  root.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button || button.disabled) return;
    const body = { action: button.dataset.action };
    if (button.dataset.mode) body.mode = button.dataset.mode;
    send(body);
  });

  if (typeof EventSource === "undefined") {
    setConnection("this browser cannot follow the live stream; reload for new figures");
  } else if (!document.hidden) {
    open();
  }
})();
