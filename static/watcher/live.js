/* Live agent pages: one WebSocket to /ws/live/agents, plain DOM updates, no build step. */
(function () {
  "use strict";

  const labels = JSON.parse(document.getElementById("live-labels").textContent);
  const ui = labels.ui;
  const fmt = (tpl, vars) => tpl.replace(/%\((\w+)\)s/g, (_, k) => (k in vars ? vars[k] : ""));
  const stateEl = document.getElementById("socket-state");
  const table = document.getElementById("agents-table");
  const card = document.getElementById("agent-card");
  const historyBody = document.querySelector("#command-history tbody");
  const rowTemplate = document.getElementById("agent-row-template");

  function setSocketState(state, text) {
    if (!stateEl) return;
    stateEl.dataset.state = state;
    stateEl.textContent = text;
  }

  function age(iso) {
    if (!iso) return ui.never;
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 60) return fmt(ui.s_ago, { n: s });
    if (s < 3600) return fmt(ui.min_ago, { n: Math.floor(s / 60) });
    if (s < 86400) return fmt(ui.h_ago, { n: Math.floor(s / 3600) });
    return fmt(ui.d_ago, { n: Math.floor(s / 86400) });
  }

  function localTime(iso) {
    return iso ? new Date(iso).toLocaleString() : "";
  }

  function tick() {
    document.querySelectorAll("[data-heartbeat]").forEach((root) => {
      const el = root.querySelector('[data-field="age"]');
      if (el) el.textContent = age(root.dataset.heartbeat);
    });
  }

  function flash(el) {
    el.classList.remove("flash");
    void el.offsetWidth; // restart the animation
    el.classList.add("flash");
  }

  function fill(root, agent) {
    root.dataset.status = agent.status;
    root.dataset.heartbeat = agent.last_heartbeat || "";
    root.querySelectorAll("[data-field]").forEach((el) => {
      const field = el.dataset.field;
      if (field === "age") return;
      if (field === "name") {
        if (table) {
          const link = el.querySelector("a") || el.appendChild(document.createElement("a"));
          link.href = table.dataset.detailUrl.replace(table.dataset.placeholder, agent.id);
          link.textContent = agent.name;
        }
      } else if (field === "status") {
        el.textContent = labels.statuses[agent.status] || agent.status;
      } else if (field === "connected") {
        el.textContent = agent.connected ? ui.yes : ui.no;
      } else if (field === "avg_task_time_ms") {
        const ms = agent.avg_task_time_ms;
        el.textContent = ms === null || ms === undefined ? "" : String(Math.round(ms));
      } else if (field in agent) {
        const value = agent[field];
        el.textContent = value === null || value === undefined ? "" : value;
      }
    });
    tick();
  }

  // Only the commands that make sense now: none without a socket (with the reason), no
  // "pause" for a paused agent and no "resume" for one that is not.
  function updateButtons(agent) {
    const clear = document.getElementById("clear-panic");
    if (clear) clear.hidden = agent.status !== "panic";
    const box = document.getElementById("command-buttons");
    if (!box) return;
    const hint = document.getElementById("command-hint");
    const reason = box.dataset.notConnected;
    box.querySelectorAll("button[data-action]").forEach((button) => {
      const action = button.dataset.action;
      button.hidden =
        (action === "pause" && agent.status === "paused") ||
        (action === "resume" && agent.status !== "paused");
      button.disabled = !agent.connected;
      button.title = agent.connected ? "" : reason;
    });
    if (hint) hint.hidden = Boolean(agent.connected);
  }

  function updateSummary() {
    const summary = document.getElementById("agents-summary");
    if (!summary || !table) return;
    const counts = { online: 0, working: 0, panic: 0, offline: 0 };
    table.querySelectorAll("tbody tr[data-status]").forEach((row) => {
      const status = row.dataset.status;
      if (status === "offline") counts.offline += 1;
      else {
        counts.online += 1;
        if (status === "working") counts.working += 1;
        if (status === "panic") counts.panic += 1;
      }
    });
    Object.entries(counts).forEach(([key, n]) => {
      const el = summary.querySelector(`[data-count="${key}"] b`);
      if (el) el.textContent = String(n);
    });
  }

  function setupCopy() {
    document.querySelectorAll("button[data-copy]").forEach((button) => {
      button.addEventListener("click", async () => {
        const text = document.getElementById(button.dataset.copy).textContent.trim();
        try {
          await navigator.clipboard.writeText(text);
        } catch (_err) {
          window.getSelection().selectAllChildren(document.getElementById(button.dataset.copy));
          document.execCommand("copy");
        }
        button.textContent = button.dataset.done;
      });
    });
  }

  function onAgent(agent) {
    if (card) {
      if (card.dataset.agentId !== agent.id) return;
      fill(card, agent);
      updateButtons(agent);
      flash(card);
      return;
    }
    if (!table) return;
    const body = table.tBodies[0];
    let row = body.querySelector(`tr[data-agent-id="${agent.id}"]`);
    if (!row) {
      const empty = body.querySelector("tr.empty");
      if (empty) empty.remove();
      row = rowTemplate.content.firstElementChild.cloneNode(true);
      row.dataset.agentId = agent.id;
      body.appendChild(row);
    }
    fill(row, agent);
    flash(row);
    updateSummary();
  }

  const FINAL_COMMAND_STATUSES = new Set(["acked", "failed"]);

  function commandCells(cmd) {
    return [
      localTime(cmd.created_at),
      labels.actions[cmd.action] || cmd.action,
      null, // the state badge
      cmd.ack_status || "",
      String(cmd.attempts),
      cmd.sent_by || "",
      localTime(cmd.acked_at),
    ];
  }

  function onCommand(cmd, prepend) {
    if (!historyBody || !card || cmd.agent_id !== card.dataset.agentId) return;
    let row = historyBody.querySelector(`tr[data-command-id="${cmd.id}"]`);
    // The "sent" event can arrive after the ACK's (they leave different threads): a command
    // that was ACKed does not go back to "sent".
    if (row && cmd.status === "sent" && FINAL_COMMAND_STATUSES.has(row.dataset.status)) return;
    if (!row) {
      const empty = document.getElementById("command-history-empty");
      if (empty) empty.hidden = true;
      row = document.createElement("tr");
      row.dataset.commandId = cmd.id;
      if (prepend) historyBody.prepend(row);
      else historyBody.appendChild(row);
      while (historyBody.rows.length > 100) historyBody.deleteRow(-1);
    }
    row.dataset.status = cmd.status;
    row.replaceChildren();
    commandCells(cmd).forEach((text, i) => {
      const td = row.insertCell();
      if (i === 2) {
        const badge = document.createElement("span");
        badge.className = "badge";
        badge.dataset.commandStatus = cmd.status;
        badge.textContent = labels.command_statuses[cmd.status] || cmd.status;
        td.appendChild(badge);
      } else {
        td.textContent = text;
      }
    });
    flash(row);
  }

  // The IP blocks in force that keep this agent idle, re-drawn whole on every change.
  const blocksTable = document.getElementById("ip-blocks");

  function renderBlocks(blocks) {
    if (!blocksTable) return;
    const body = blocksTable.tBodies[0];
    const heads = Array.from(blocksTable.tHead.rows[0].cells, (th) => th.textContent);
    body.replaceChildren();
    blocks.forEach((block) => {
      const row = body.insertRow();
      row.dataset.blockId = String(block.id);
      [block.ip, block.reason, localTime(block.created_at), localTime(block.expires_at)].forEach(
        (text, i) => {
          const td = row.insertCell();
          td.dataset.label = heads[i];
          td.textContent = text || "";
        }
      );
      const td = row.insertCell();
      if (blocksTable.dataset.canUnblock) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "danger";
        button.textContent = ui.unblock;
        button.addEventListener("click", () => unblock(block, button));
        td.appendChild(button);
      }
    });
    document.getElementById("ip-blocks-empty").hidden = blocks.length > 0;
  }

  async function post(url, resultEl) {
    try {
      const response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken() },
      });
      const body = await response.json().catch(() => ({}));
      resultEl.dataset.ok = response.ok ? "1" : "0";
      resultEl.textContent = response.ok
        ? body.detail || ""
        : `${ui.error} ${response.status}: ${body.detail || ""}`;
    } catch (err) {
      resultEl.dataset.ok = "0";
      resultEl.textContent = `${ui.error}: ${err}`;
    }
  }

  async function unblock(block, button) {
    if (!window.confirm(fmt(ui.confirm_unblock, { ip: block.ip }))) return;
    button.disabled = true;
    const url = blocksTable.dataset.url.replace("/blocks/0/", `/blocks/${block.id}/`);
    await post(url, document.getElementById("panic-result"));
    button.disabled = false;
  }

  function setupPanic() {
    const clear = document.getElementById("clear-panic");
    if (!clear) return;
    clear.addEventListener("click", async () => {
      if (!window.confirm(fmt(ui.confirm_clear, { agent: card.dataset.agentName }))) return;
      clear.disabled = true;
      await post(clear.dataset.url, document.getElementById("panic-result"));
      clear.disabled = false;
    });
  }

  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function setupButtons() {
    const box = document.getElementById("command-buttons");
    if (!box) return;
    const result = document.getElementById("command-result");
    box.querySelectorAll("button[data-action]").forEach((button) => {
      button.addEventListener("click", async () => {
        const action = button.dataset.action;
        const label = button.dataset.label;
        if (button.dataset.confirm) {
          const question = fmt(ui.confirm, { action: label, agent: card.dataset.agentName });
          if (!window.confirm(question)) return;
        }
        button.disabled = true;
        try {
          const response = await fetch(box.dataset.url, {
            method: "POST",
            credentials: "same-origin",
            headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
            body: JSON.stringify({ command: action, params: {} }),
          });
          const body = await response.json().catch(() => ({}));
          result.dataset.ok = response.ok ? "1" : "0";
          result.textContent = response.ok
            ? fmt(ui.sent, { action: label })
            : `${ui.error} ${response.status}: ${body.detail || ""}`;
        } catch (err) {
          result.dataset.ok = "0";
          result.textContent = `${ui.error}: ${err}`;
        } finally {
          button.disabled = false;
        }
      });
    });
  }

  let retry = 1000;
  function connect() {
    const proto = window.location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${proto}://${window.location.host}/ws/live/agents`);
    setSocketState("connecting", ui.connecting);
    socket.addEventListener("open", () => {
      retry = 1000;
      setSocketState("live", ui.live);
    });
    socket.addEventListener("message", (e) => {
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch (_err) {
        return;
      }
      if (msg.type === "agent") onAgent(msg.agent);
      else if (msg.type === "command") onCommand(msg.command, true);
      else if (msg.type === "blocks" && card && msg.agent_id === card.dataset.agentId) {
        renderBlocks(msg.blocks);
      }
    });
    socket.addEventListener("close", (e) => {
      if (e.code === 4003) {
        setSocketState("refused", ui.refused);
        return;
      }
      setSocketState("disconnected", ui.disconnected);
      window.setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    });
  }

  const initial = document.getElementById("command-history-data");
  if (initial) JSON.parse(initial.textContent).forEach((cmd) => onCommand(cmd, false));
  const initialBlocks = document.getElementById("ip-blocks-data");
  if (initialBlocks) renderBlocks(JSON.parse(initialBlocks.textContent));
  setupButtons();
  setupPanic();
  setupCopy();
  updateSummary();
  if (card) {
    updateButtons({ status: card.dataset.status, connected: card.dataset.connected === "1" });
  }
  tick();
  window.setInterval(tick, 1000);
  connect();
})();
