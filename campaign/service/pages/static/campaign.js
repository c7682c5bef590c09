// One campaign's page kept up to date: its status polled every second, the rate over time drawn as
// SVG, and pause/resume/cancel sent without leaving the page. Text goes in with textContent only.
"use strict";

(() => {
  const root = document.getElementById("campaign");
  if (!root) return;
  const statusUrl = root.dataset.statusUrl;
  const POLL_MS = 1000;
  const KEPT = 120; // chart points: two minutes at one a second
  const ETA_WINDOW_S = 10; // the ETA reads the rate over this many seconds, steadier than the last one
  const FINISHED = ["completed", "failed", "cancelled"];
  const ACTIONS = {
    pause: ["queued", "scheduled", "running", "held"],
    resume: ["paused"],
    cancel: ["queued", "scheduled", "running", "held", "paused"],
  };
  const byId = (id) => document.getElementById(id);
  const samples = []; // {at: seconds, settled, rate}
  let timer = null;

  function setText(id, value) {
    const element = byId(id);
    if (element) element.textContent = String(value);
  }

  function duration(seconds) {
    const whole = Math.floor(seconds);
    if (whole < 60) return `${whole}s`;
    if (whole < 3600) return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, "0")}s`;
    return `${Math.floor(whole / 3600)}h${String(Math.floor((whole % 3600) / 60)).padStart(2, "0")}m`;
  }

  function record(settled) {
    const at = performance.now() / 1000;
    const last = samples[samples.length - 1];
    const rate = last && at > last.at ? Math.max(settled - last.settled, 0) / (at - last.at) : null;
    samples.push({ at, settled, rate });
    if (samples.length > KEPT + 1) samples.shift();
    return rate;
  }

  function etaRate() {
    const last = samples[samples.length - 1];
    const first = samples.find((s) => last.at - s.at <= ETA_WINDOW_S) || last;
    return last.at > first.at ? (last.settled - first.settled) / (last.at - first.at) : null;
  }

  function showState(state) {
    const badge = byId("state");
    badge.textContent = state;
    badge.className = `state state-${state}`;
    for (const [action, states] of Object.entries(ACTIONS)) {
      const button = byId(action);
      if (button) button.disabled = !states.includes(state);
    }
  }

  function showFailures(failures) {
    const table = byId("failures");
    const ranked = Object.entries(failures).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    table.replaceChildren(
      ...ranked.map(([code, count]) => {
        const row = document.createElement("tr");
        const name = document.createElement("th");
        const value = document.createElement("td");
        name.textContent = code;
        value.textContent = String(count);
        value.className = "num";
        row.append(name, value);
        return row;
      }),
    );
    byId("no-failures").hidden = ranked.length > 0;
  }

  function drawChart() {
    const rates = samples.filter((s) => s.rate !== null);
    const line = byId("chart-line");
    if (rates.length === 0) return;
    const top = Math.max(...rates.map((s) => s.rate), 1);
    const now = samples[samples.length - 1].at;
    const span = Math.max(now - rates[0].at, 1);
    const points = rates.map((s) => {
      const x = 40 + (550 * (s.at - rates[0].at)) / span;
      const y = 140 - (130 * s.rate) / top;
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
    line.setAttribute("points", points.join(" "));
    setText("chart-max", `${Math.round(top)}/s`);
    setText("chart-span", `-${duration(span)}`);
  }

  function show(status) {
    const settled = status.total - status.pending;
    const rate = record(settled);
    showState(status.state);
    setText("name", status.name || status.campaign_id);
    setText("settled", settled);
    setText("total", status.total);
    setText("percent", status.total ? `${Math.round((100 * settled) / status.total)}%` : "0%");
    const bar = byId("progress");
    bar.max = Math.max(status.total, 1);
    bar.value = settled;
    setText("rate", rate === null ? "–" : rate.toFixed(1));
    const finished = FINISHED.includes(status.state) || status.pending === 0;
    const steady = etaRate();
    setText("eta", finished ? "done" : steady ? duration(status.pending / steady) : "–");
    for (const cell of document.querySelectorAll("[data-field]")) {
      cell.textContent = String(status[cell.dataset.field] ?? 0);
    }
    showFailures(status.failures || {});
    byId("held").hidden = !status.held_reason;
    setText("held-reason", status.held_reason || "");
    setText("updated", `updated ${new Date().toLocaleTimeString()}`);
    drawChart();
  }

  async function poll() {
    timer = null;
    let done = false;
    try {
      const response = await fetch(statusUrl, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (response.status === 401) {
        window.location.assign(`/ui/sign-in?next=${encodeURIComponent(window.location.pathname)}`);
        return;
      }
      if (!response.ok) throw new Error(`status ${response.status}`);
      const status = await response.json();
      show(status);
      byId("offline").hidden = true;
      // A cancelled campaign's pending recipients are counted cancelled over the next minute.
      done = FINISHED.includes(status.state) && status.pending === 0;
    } catch (error) {
      byId("offline").hidden = false;
    }
    if (!done) timer = setTimeout(poll, POLL_MS);
  }

  async function steer(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const failure = byId("action-error");
    failure.hidden = true;
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        headers: { Accept: "application/json" },
      });
      const answer = await response.json();
      if (!response.ok) throw new Error(answer.error ? answer.error.message : `status ${response.status}`);
      showState(answer.state);
    } catch (error) {
      failure.textContent = `Could not ${form.dataset.action}: ${error.message}`;
      failure.hidden = false;
    }
    if (timer === null) poll();
  }

  for (const form of document.querySelectorAll("form.steer")) form.addEventListener("submit", steer);
  poll();
})();
