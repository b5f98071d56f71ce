// Switchboard status page: asks for the admin key once, then draws GET v1/dashboard every
// few seconds. Everything is written with textContent and createElement(NS): nothing the
// gateway returns (model names, provider error messages) is ever parsed as markup.
"use strict";

(() => {
  const STORE = "switchboard.adminKey";
  const DATA = "v1/dashboard"; // relative: works behind a path prefix too
  const REFRESH_MS = 5000;
  const SVG_NS = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);
  let timer = null;
  let inFlight = false;

  // -- DOM helpers ------------------------------------------------------------------------
  function html(tag, attrs = {}, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function tip(node, text) {
    node.appendChild(svg("title", {}, text));
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function setText(id, text) {
    $(id).textContent = text;
  }

  // -- formatting -------------------------------------------------------------------------
  const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

  function count(n) {
    return n === null || n === undefined ? "–" : integer.format(n);
  }

  function usd(text) {
    const n = Number(text);
    if (!Number.isFinite(n) || n === 0) return "$0";
    if (n < 0.0001) return "<$0.0001";
    if (n < 1) return "$" + n.toFixed(4);
    return "$" + n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  function ms(value) {
    if (value === null || value === undefined) return "–";
    return value >= 1000 ? (value / 1000).toFixed(1) + " s" : Math.round(value) + " ms";
  }

  function msPair(a, b) {
    if (a !== null && b !== null && a < 1000 && b < 1000) return `${Math.round(a)} / ${Math.round(b)} ms`;
    return `${ms(a)} / ${ms(b)}`;
  }

  function clock(iso, seconds = false) {
    const parts = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    if (seconds) parts.second = "2-digit";
    return new Date(iso).toLocaleTimeString([], parts);
  }

  function ago(iso, now) {
    const s = Math.max(0, (new Date(now) - new Date(iso)) / 1000);
    if (s < 60) return Math.round(s) + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " d ago";
  }

  // A round axis maximum at or above n: 1, 2, 5 × 10^k.
  function niceMax(n) {
    if (n <= 0) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(n)));
    for (const step of [1, 2, 5, 10]) if (step * power >= n) return step * power;
    return 10 * power;
  }

  // -- views ------------------------------------------------------------------------------
  function showLogin(message) {
    stop();
    $("board").hidden = true;
    $("forget").hidden = true;
    $("login").hidden = false;
    setText("login-error", message || "");
    setText("status", "Sign in with the admin key.");
    $("status").classList.remove("stale");
    $("key").value = "";
    $("key").focus();
  }

  function showBoard() {
    $("login").hidden = true;
    $("board").hidden = false;
    $("forget").hidden = false;
  }

  function stale(message) {
    setText("status", message);
    $("status").classList.add("stale");
  }

  // -- drawing ----------------------------------------------------------------------------
  function drawTiles(d) {
    const h = d.last_hour;
    setText("tile-jobs", count(h.jobs));
    setText("tile-jobs-note", `${count(h.succeeded)} succeeded · ${count(h.failed)} failed`);
    const rate = h.success_rate;
    setText("tile-success", rate === null ? "–" : (rate * 100).toFixed(rate === 1 ? 0 : 1) + "%");
    setText("tile-success-note", rate === null ? "no job judged yet" : `of ${count(h.succeeded + h.failed)} judged`);
    drawRing(rate);
    setText("tile-latency", msPair(h.latency_p50_ms, h.latency_p95_ms));
    setText("tile-spend", usd(d.spend.total_cost_usd));
    setText("tile-spend-note", `${d.spend.by_model.length} model(s)`);
    const sum = (field) => d.queues.reduce((n, q) => n + (q[field] || 0), 0);
    setText("tile-queued", count(sum("queued") + sum("waiting")));
    setText("tile-queued-note", `${count(sum("queued"))} queued · ${count(sum("waiting"))} set aside`);
    setText("tile-running", count(sum("running")));
  }

  function drawRing(rate) {
    const ring = $("success-ring");
    clear(ring);
    const r = 16;
    const length = 2 * Math.PI * r;
    ring.appendChild(svg("circle", { class: "track", cx: 21, cy: 21, r }));
    if (rate !== null) {
      const done = svg("circle", {
        class: rate < 0.95 ? "done low" : "done",
        cx: 21,
        cy: 21,
        r,
        "stroke-dasharray": `${(rate * length).toFixed(2)} ${length.toFixed(2)}`,
        transform: "rotate(-90 21 21)",
      });
      ring.appendChild(tip(done, `${(rate * 100).toFixed(1)}% succeeded`));
    }
    ring.setAttribute("aria-label", rate === null ? "No success rate yet" : `Success rate ${(rate * 100).toFixed(1)}%`);
  }

  function drawThroughput(t) {
    const chart = $("throughput-chart");
    clear(chart);
    const W = 640, H = 200, left = 40, right = 8, top = 10, bottom = 24;
    const minutes = t.per_minute;
    const totals = minutes.map((m) => m.succeeded + m.failed + m.cancelled);
    const max = niceMax(Math.max(0, ...totals));
    const plotW = W - left - right, plotH = H - top - bottom;
    const y = (n) => top + plotH - (n / max) * plotH;
    for (const v of [0, max / 2, max]) {
      chart.appendChild(svg("line", { class: "grid", x1: left, x2: W - right, y1: y(v), y2: y(v) }));
      chart.appendChild(svg("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end" }, count(v)));
    }
    const slot = plotW / Math.max(minutes.length, 1);
    const barW = Math.max(1, slot - 2);
    minutes.forEach((m, i) => {
      const x = left + i * slot + 1;
      const group = svg("g", { class: "minute", "data-minute": m.minute, "data-jobs": totals[i] });
      let base = 0;
      for (const kind of ["succeeded", "failed", "cancelled"]) {
        const n = m[kind];
        if (!n) continue;
        const rect = svg("rect", { class: `bar ${kind}`, x: x.toFixed(1), y: y(base + n).toFixed(1), width: barW.toFixed(1), height: (y(base) - y(base + n)).toFixed(1) });
        group.appendChild(rect);
        base += n;
      }
      tip(group, `${clock(m.minute)}: ${m.succeeded} succeeded, ${m.failed} failed, ${m.cancelled} cancelled`);
      chart.appendChild(group);
    });
    minutes.forEach((m, i) => {
      const lastOne = i === minutes.length - 1;
      if (i % 15 === 0 || lastOne) {
        const x = lastOne ? W - right : left + i * slot + slot / 2;
        const anchor = lastOne ? "end" : i === 0 ? "start" : "middle";
        chart.appendChild(svg("text", { x, y: H - 6, "text-anchor": anchor }, clock(m.minute)));
      }
    });
    const last = totals.length ? totals[totals.length - 1] : 0;
    setText("throughput-note", `· ${t.jobs_per_minute.toFixed(1)}/min on average, ${count(last)} this minute`);
    chart.setAttribute("aria-label", `Jobs finished per minute over the last hour: ${t.jobs_per_minute.toFixed(1)} on average`);
  }

  function drawSpend(spend) {
    const chart = $("spend-chart");
    clear(chart);
    const lines = spend.by_model;
    const W = 640, row = 26, labelW = 190, amountW = 90;
    const H = Math.max(60, lines.length * row + 8);
    chart.setAttribute("viewBox", `0 0 ${W} ${H}`);
    if (!lines.length) {
      chart.appendChild(svg("text", { class: "empty", x: 8, y: 34 }, "No spend in the last 24 hours."));
      chart.setAttribute("aria-label", "No spend in the last 24 hours");
      return;
    }
    const max = Math.max(...lines.map((l) => Number(l.cost_usd)), 1e-12);
    const barMax = W - labelW - amountW - 16;
    lines.forEach((line, i) => {
      const y = 4 + i * row;
      const group = svg("g", { class: "spend-line", "data-model": line.model, "data-cost": line.cost_usd });
      const name = line.model.length > 28 ? line.model.slice(0, 27) + "…" : line.model;
      group.appendChild(svg("text", { class: "model", x: labelW - 8, y: y + 16, "text-anchor": "end" }, name));
      const width = Math.max(2, (Number(line.cost_usd) / max) * barMax);
      group.appendChild(svg("rect", { class: "bar spend", x: labelW, y: y + 4, width: width.toFixed(1), height: row - 10, rx: 2 }));
      group.appendChild(svg("text", { class: "amount", x: labelW + width + 6, y: y + 16 }, `${usd(line.cost_usd)} · ${line.percent}%`));
      tip(group, `${line.model}: ${usd(line.cost_usd)} (${line.percent}%), ${count(line.attempts)} attempts`);
      chart.appendChild(group);
    });
    chart.setAttribute("aria-label", "Spend by model: " + lines.map((l) => `${l.model} ${usd(l.cost_usd)}`).join(", "));
  }

  function drawQueues(d) {
    const body = $("queue-table").tBodies[0];
    clear(body);
    const byProvider = new Map();
    for (const q of d.queues) {
      if (!byProvider.has(q.provider)) byProvider.set(q.provider, { provider: q.provider, queues: {}, queued: 0, waiting: 0, running: 0, load: 0 });
      const p = byProvider.get(q.provider);
      p.queues[q.priority] = q;
      for (const field of ["queued", "waiting", "running"]) p[field] += q[field] || 0;
      p.load += (q.messages || 0) + (q.queued || 0) + (q.waiting || 0) + (q.running || 0);
    }
    const rows = [...byProvider.values()].sort((a, b) => b.load - a.load || a.provider.localeCompare(b.provider));
    for (const p of rows) {
      const tr = html("tr", { class: p.load ? "busy" : "idle", "data-provider": p.provider });
      tr.appendChild(html("th", { scope: "row" }, p.provider));
      for (const priority of ["high", "normal", "low"]) {
        const q = p.queues[priority];
        const n = q ? q.messages : null;
        const td = html("td", { class: n ? "num busy" : "num", title: q ? q.queue : "", "data-queue": q ? q.queue : "" }, count(n));
        tr.appendChild(td);
      }
      for (const field of ["queued", "waiting", "running"]) tr.appendChild(html("td", { class: "num" }, count(d.services.postgres ? p[field] : null)));
      body.appendChild(tr);
    }
    const extra = [`webhooks: ${count(d.webhook_messages)} message(s) queued, ${count(d.webhook_events_pending)} event(s) to deliver`];
    extra.push(`timers of set-aside jobs: ${count(d.delayed_jobs)}`);
    setText("queue-extra", extra.join(" · "));
  }

  function drawBreakers(breakers) {
    const list = $("breakers");
    clear(list);
    if (!breakers.length) {
      list.appendChild(html("li", { class: "none" }, "All closed: no provider or model is being routed around."));
      return;
    }
    for (const b of breakers) {
      const li = html("li", { "data-target": b.target });
      li.appendChild(html("span", { class: `badge ${b.state}` }, b.state.replace("_", "-")));
      li.appendChild(html("code", {}, b.target));
      const why = [b.forced ? "held open by the gateway" : `${b.consecutive_failures} failure(s) in a row`];
      if (b.state === "open" && b.open_until) why.push(`until ${clock(new Date(b.open_until * 1000).toISOString(), true)}`);
      if (b.last_failure) why.push(b.last_failure);
      li.appendChild(html("span", { class: "note" }, why.join(" — ")));
      list.appendChild(li);
    }
  }

  function drawFailures(d) {
    const body = $("failure-table").tBodies[0];
    clear(body);
    if (!d.failures.length) {
      const tr = html("tr");
      tr.appendChild(html("td", { colspan: "5", class: "none" }, "No failed job."));
      body.appendChild(tr);
      return;
    }
    for (const f of d.failures) {
      const tr = html("tr", { "data-job": f.job_id });
      tr.appendChild(html("td", { title: new Date(f.finished_at).toLocaleString() }, ago(f.finished_at, d.generated_at)));
      tr.appendChild(html("td", {}, f.job_id));
      tr.appendChild(html("td", {}, f.model));
      tr.appendChild(html("td", {}, f.error_class || "–"));
      tr.appendChild(html("td", { class: "message", title: f.message || "" }, f.message || ""));
      body.appendChild(tr);
    }
  }

  function draw(d) {
    const down = [];
    if (!d.services.postgres) down.push("Postgres");
    if (!d.services.redis) down.push("Redis");
    $("degraded").hidden = !down.length;
    setText("degraded", down.length ? `${down.join(" and ")} did not answer: some figures are missing.` : "");
    drawTiles(d);
    drawThroughput(d.throughput);
    drawSpend(d.spend);
    drawQueues(d);
    drawBreakers(d.breakers);
    drawFailures(d);
    const scope = d.tenant ? ` · tenant ${d.tenant}` : "";
    setText("status", `Updated ${new Date(d.generated_at).toLocaleTimeString()}${scope} · every ${REFRESH_MS / 1000} s`);
    $("status").classList.remove("stale");
  }

  // -- the loop ---------------------------------------------------------------------------
  function stop() {
    clearTimeout(timer);
    timer = null;
  }

  function schedule() {
    stop();
    timer = setTimeout(refresh, REFRESH_MS);
  }

  async function refresh() {
    const key = localStorage.getItem(STORE);
    if (!key) {
      showLogin("");
      return;
    }
    if (document.hidden || inFlight) {
      schedule();
      return;
    }
    inFlight = true;
    try {
      let response;
      try {
        response = await fetch(DATA, { headers: { Authorization: `Bearer ${key}` }, cache: "no-store" });
      } catch (err) {
        stale("The gateway did not answer; trying again…");
        schedule();
        return;
      }
      if (response.status === 401 || response.status === 403) {
        localStorage.removeItem(STORE);
        showLogin(response.status === 403 ? "That is not the admin key: the dashboard needs the admin key." : "That key is not valid.");
        return;
      }
      if (!response.ok) {
        stale(`The gateway answered ${response.status}; trying again…`);
        schedule();
        return;
      }
      const data = await response.json();
      showBoard();
      draw(data);
      schedule();
    } finally {
      inFlight = false;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("key").value.trim();
      if (!key) return;
      localStorage.setItem(STORE, key);
      setText("login-error", "");
      setText("status", "Loading…");
      refresh();
    });
    $("forget").addEventListener("click", () => {
      localStorage.removeItem(STORE);
      showLogin("");
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && localStorage.getItem(STORE)) refresh();
    });
    refresh();
  });
})();
