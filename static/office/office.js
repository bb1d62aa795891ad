/* The Office dashboard: one WebSocket to /ws/office, plain DOM updates, no build step. */
(function () {
  "use strict";

  const labels = JSON.parse(document.getElementById("office-labels").textContent);
  const ui = labels.ui;
  const lang = document.documentElement.lang || "ru";
  const plural = new Intl.PluralRules(lang);
  const number = new Intl.NumberFormat(lang, { maximumFractionDigits: 2 });
  const fmt = (tpl, vars) => tpl.replace(/%\((\w+)\)s/g, (_, k) => (k in vars ? vars[k] : ""));
  const stateEl = document.getElementById("socket-state");
  const root = document.getElementById("departments");
  const agentTemplate = document.getElementById("agent-template");
  const departmentTemplate = document.getElementById("department-template");
  const headlineEl = document.getElementById("office-headline");

  function setSocketState(state, text) {
    stateEl.dataset.state = state;
    stateEl.textContent = text;
  }

  function secondsSince(iso) {
    return iso ? Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000)) : null;
  }

  function age(iso) {
    const s = secondsSince(iso);
    if (s === null) return ui.never;
    if (s < 60) return fmt(ui.s_ago, { n: s });
    if (s < 3600) return fmt(ui.min_ago, { n: Math.floor(s / 60) });
    if (s < 86400) return fmt(ui.h_ago, { n: Math.floor(s / 3600) });
    return fmt(ui.d_ago, { n: Math.floor(s / 86400) });
  }

  // Silent for over 5 minutes: offline, whatever the agent last said.
  function shownStatus(card) {
    const s = secondsSince(card.dataset.lastActivity);
    if (s === null || s > labels.stale_seconds) return "offline";
    return card.dataset.storedStatus || card.dataset.status;
  }

  function tick() {
    document.querySelectorAll("article.agent[data-agent-id]").forEach((card) => {
      const status = shownStatus(card);
      if (card.dataset.status !== status) {
        card.dataset.status = status;
        card.querySelector('[data-field="status"]').textContent = labels.statuses[status] || status;
      }
      card.querySelector('[data-field="age"]').textContent = age(card.dataset.lastActivity);
    });
  }

  function phrase(forms, totals) {
    const tpl = forms[plural.select(totals.agents)] || forms.other;
    return fmt(tpl, {
      count: totals.agents,
      fte: number.format(Number(totals.fte)),
      amount: number.format(totals.salary),
    });
  }

  function flash(el) {
    el.classList.remove("flash");
    void el.offsetWidth; // restart the animation
    el.classList.add("flash");
  }

  function department(code) {
    let section = root.querySelector(`section.department[data-department="${CSS.escape(code)}"]`);
    if (section) return section;
    section = departmentTemplate.content.firstElementChild.cloneNode(true);
    section.dataset.department = code;
    section.querySelector('[data-field="label"]').textContent = labels.departments[code] || code;
    root.querySelectorAll(":scope > p.muted").forEach((p) => p.remove());
    root.appendChild(section);
    return section;
  }

  function fill(card, agent) {
    card.dataset.agentId = agent.agent_id;
    card.dataset.storedStatus = agent.stored_status;
    card.dataset.lastActivity = agent.last_activity || "";
    card.querySelector('[data-field="name"]').textContent = agent.name;
    card.querySelector('[data-field="task"]').textContent = agent.task;
    const metrics = card.querySelector('[data-field="metrics"]');
    metrics.replaceChildren();
    Object.entries(agent.metrics || {}).forEach(([key, value]) => {
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = key;
      dd.textContent = typeof value === "object" && value !== null ? JSON.stringify(value) : value;
      metrics.append(dt, dd);
    });
    card.querySelector('[data-field="salary"]').textContent = number.format(agent.salary_equivalent);
    card.dataset.status = "";  // tick() sets the shown status and its label
    tick();
  }

  function onAgent(agent, live) {
    let card = root.querySelector(`article.agent[data-agent-id="${CSS.escape(agent.agent_id)}"]`);
    const section = department(agent.department);
    if (!card || card.closest("section") !== section) {
      if (card) card.remove();
      card = agentTemplate.content.firstElementChild.cloneNode(true);
      section.querySelector(".cards").appendChild(card);
    }
    fill(card, agent);
    if (live) flash(card);
  }

  function onTotals(totals) {
    headlineEl.textContent = phrase(labels.headline, totals.overall);
    Object.entries(totals.departments).forEach(([code, t]) => {
      const el = department(code).querySelector('[data-field="totals"]');
      el.textContent = phrase(labels.department_line, t);
    });
  }

  // After (re)connecting, catch up with what changed while the socket was down.
  async function refresh() {
    try {
      const response = await fetch("/api/v1/office/agents", { credentials: "same-origin" });
      if (!response.ok) return;
      const body = await response.json();
      body.agents.forEach((agent) => onAgent(agent, false));
      onTotals({ overall: body.totals, departments: body.departments });
    } catch (_err) {
      /* the next event or reconnect brings the page up to date */
    }
  }

  let retry = 1000;
  function connect() {
    const proto = window.location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${proto}://${window.location.host}/ws/office`);
    setSocketState("connecting", ui.connecting);
    socket.addEventListener("open", () => {
      retry = 1000;
      setSocketState("live", ui.live);
      refresh();
    });
    socket.addEventListener("message", (e) => {
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch (_err) {
        return;
      }
      if (msg.type === "agent") {
        onAgent(msg.agent, true);
        onTotals(msg.totals);
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

  tick();
  window.setInterval(tick, 1000);
  connect();
})();
