// aio-ray dashboard: the top strategies, their price/equity/drawdown charts and Pine scripts,
// the vision model's chart analyses (their support/resistance levels drawn on the price chart)
// and the mined pattern library. Every URL is relative, so the page works under any Serve route
// prefix. Library text is only ever inserted with textContent (never as HTML). When everything
// has loaded (a panel whose fetch failed says so and counts as loaded), <body> carries
// data-state="ready", data-strategies=N, data-charts-drawn=K, data-analyses=N, data-patterns=N
// and data-sr-lines=N (read by the browser tests). #strategy=<id> in the URL selects a strategy.
// The run's verdict (its message in plain words, the best rejected and the gates they failed)
// is the banner above the table: <body data-verdict="passed|none_passed|none">.
"use strict";

const LWC = window.LightweightCharts;
const body = document.body;
const state = {
  data: null, selected: null, charts: [], token: null,
  priceSeries: null, lastClose: null, srLines: [], analyses: null,
};
const STRATEGY_HASH = /^#strategy=([0-9a-f]{20})$/;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

async function getJSON(url) {
  const r = await fetch(url, { headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status} ${(await r.text()).slice(0, 200)}`);
  return r.json();
}

function showError(msg) {
  const b = document.getElementById("banner");
  b.hidden = false;
  b.textContent = msg;
}

const fmt = {
  n(x, d = 2) { return x === null || x === undefined ? "–" : Number(x).toFixed(d); },
  pct(x, d = 1) { return x === null || x === undefined ? "–" : (100 * x).toFixed(d) + "%"; },
  money(x) {
    if (x === null || x === undefined) return "–";
    const s = Math.abs(x).toLocaleString("en-US", { maximumFractionDigits: 0 });
    return (x < 0 ? "−$" : "$") + s;
  },
  int(x) { return x === null || x === undefined ? "–" : String(Math.round(x)); },
  signed(x, d = 2) { return x === null || x === undefined ? "–" : (x > 0 ? "+" : x < 0 ? "−" : "") + Math.abs(x).toFixed(d); },
  date(ms) { return ms ? new Date(ms).toISOString().slice(0, 16).replace("T", " ") + " UTC" : "–"; },
};
const signClass = (x) => (x === null || x === undefined ? "" : x >= 0 ? "pos" : "neg");

function pineBadge(p) {
  const v = p && p.strategy;
  if (!v) return el("span", { class: "badge", text: "unchecked" });
  if (!v.parsed) return el("span", { class: "badge bad", text: "syntax error" });
  if (v.parity_passed === true) return el("span", { class: "badge ok", text: "✓ parity" });
  if (v.parity_passed === false)
    return el("span", { class: "badge bad", text: `diff @ bar ${v.first_diff_bar ?? "?"}` });
  return el("span", { class: "badge warn", text: "✓ syntax" });
}

function stateBadge(live) {
  return live && live.paused
    ? el("span", { class: "badge warn", text: "paused" })
    : el("span", { class: "badge ok", text: "active" });
}

// ------------------------------------------------------------------ verdict

function renderVerdict(data) {
  const box = document.getElementById("verdict");
  const verdict = data.verdict || "none";
  const passed = verdict === "passed";
  box.className = `verdict ${verdict}`;
  box.dataset.verdict = verdict;
  const badge = document.getElementById("verdict-badge");
  badge.className = `badge ${passed ? "ok" : verdict === "none_passed" ? "bad" : ""}`;
  badge.textContent = passed ? `✓ ${fmt.int(data.passed)} passed`
    : verdict === "none_passed" ? "✗ none passed" : "no verdict";
  document.getElementById("verdict-message").textContent = data.message || "No verdict for this run.";
  const list = document.getElementById("verdict-rejected");
  const rejected = passed ? [] : (data.best_rejected || []);
  list.replaceChildren(...rejected.map((r) => el("li", { "data-rejected-id": r.strategy_id || "" },
    el("span", { class: "fam", text: `${r.family || "?"} ${r.timeframe || "?"}` }),
    el("span", { text: r.dsr === null || r.dsr === undefined ? "" : ` · DSR ${fmt.n(r.dsr, 3)}` }),
    el("span", { class: "gate", text: ` · failed: ${(r.failed || []).join("; ") || "–"}` }))));
  list.hidden = !rejected.length;
  body.dataset.verdict = verdict;
  body.dataset.rejected = String(rejected.length);
}

// ------------------------------------------------------------------ rankings table

function renderTable(rows, verdict) {
  const tbody = document.querySelector("#rankings tbody");
  tbody.replaceChildren();
  for (const r of rows) {
    const c = r.criteria || {}, h = r.holdout || {};
    const tr = el(
      "tr",
      { class: "row", "data-strategy-id": r.strategy_id, onclick: () => select(r.strategy_id) },
      el("td", { text: r.rank }),
      el("td", {}, el("span", { class: "fam", text: r.family }), el("span", { class: "tf", text: r.timeframe })),
      el("td", { class: "num" }, fmt.n(r.score, 3),
        el("span", { class: "scorebar" }, el("i", { style: `width:${Math.max(0, Math.min(1, r.score)) * 100}%` }))),
      el("td", { class: `num ${signClass(c.sharpe)}`, text: fmt.n(c.sharpe) }),
      el("td", { class: "num", text: fmt.n(c.dsr, 3) }),
      el("td", { class: "num", text: fmt.pct(c.max_drawdown) }),
      el("td", { class: "num", text: fmt.n(c.profit_factor) }),
      el("td", { class: "num", text: fmt.int(c.trades) }),
      el("td", { class: `num ${signClass(h.net_profit)}`, text: fmt.money(h.net_profit) }),
      el("td", { class: `num ${signClass(h.sharpe)}`, text: fmt.n(h.sharpe) }),
      el("td", {}, pineBadge(r.pine)),
      el("td", {}, stateBadge(r.live)),
    );
    tbody.append(tr);
  }
  if (!rows.length) {
    const text = verdict === "none_passed" ? "No strategy passed every gate: nothing to trade (see the verdict above)."
      : "No ranked strategies yet: run the pipeline.";
    tbody.append(el("tr", {}, el("td", { colspan: 12, class: "muted wrap", text })));
  }
}

// ------------------------------------------------------------------ charts

const chartOptions = (height) => ({
  height,
  layout: { background: { type: "solid", color: "#151b23" }, textColor: "#8a96a6", fontSize: 11 },
  grid: { vertLines: { color: "#1e2631" }, horzLines: { color: "#1e2631" } },
  rightPriceScale: { borderColor: "#2a3341" },
  timeScale: { borderColor: "#2a3341", timeVisible: true, secondsVisible: false },
  crosshair: { mode: 0 },
  autoSize: true,
});

function resetCharts() {
  for (const c of state.charts) c.remove();
  state.charts = [];
  state.priceSeries = null;
  state.srLines = [];
}

function drawPrice(candles, eq, holdoutSec) {
  const chart = LWC.createChart(document.getElementById("price-chart"), chartOptions(340));
  const series = chart.addSeries(LWC.CandlestickSeries, {
    upColor: "#26a69a", downColor: "#ef5350", borderVisible: false,
    wickUpColor: "#26a69a", wickDownColor: "#ef5350", priceFormat: { type: "price", precision: 5, minMove: 0.00001 },
  });
  const data = candles.time_s.map((t, i) => ({
    time: t, open: candles.open[i], high: candles.high[i], low: candles.low[i], close: candles.close[i],
  }));
  series.setData(data);
  const first = data.length ? data[0].time : 0;
  const markers = [];
  const shown = (eq.trades || []).filter((t) => Math.floor(t.exit_ts / 1000) >= first);
  const label = shown.length <= 30; // P&L labels only while they stay readable
  for (const t of eq.trades || []) {
    const et = Math.floor(t.entry_ts / 1000), xt = Math.floor(t.exit_ts / 1000);
    if (et >= first) {
      markers.push(t.side === "long"
        ? { time: et, position: "belowBar", color: "#26a69a", shape: "arrowUp", text: label ? "L" : "" }
        : { time: et, position: "aboveBar", color: "#ef5350", shape: "arrowDown", text: label ? "S" : "" });
    }
    if (xt >= first) {
      markers.push({ time: xt, position: t.side === "long" ? "aboveBar" : "belowBar", color: "#b0bec5",
        shape: "circle", size: 0.6, text: label ? `${t.pnl_pips >= 0 ? "+" : ""}${t.pnl_pips.toFixed(1)}p` : "" });
    }
  }
  if (holdoutSec && holdoutSec >= first) {
    markers.push({ time: holdoutSec, position: "aboveBar", color: "#f0b429", shape: "square", text: "holdout ▸" });
  }
  markers.sort((a, b) => a.time - b.time);
  LWC.createSeriesMarkers(series, markers);
  chart.timeScale().fitContent();
  state.charts.push(chart);
  state.priceSeries = series;
  state.lastClose = data.length ? data[data.length - 1].close : null;
  return markers.length;
}

function splitAt(points, sec) {
  if (!sec) return [points, []];
  const a = points.filter((p) => p.time < sec), b = points.filter((p) => p.time >= sec);
  if (a.length && b.length) a.push({ time: b[0].time, value: b[0].value }); // join the two lines
  return [a.filter((p, i, arr) => i === arr.length - 1 || p.time !== arr[i + 1].time), b];
}

function drawEquity(eq, holdoutSec) {
  const chart = LWC.createChart(document.getElementById("equity-chart"), chartOptions(170));
  const pts = eq.ts.map((t, i) => ({ time: Math.floor(t / 1000), value: eq.equity[i] }));
  const [wf, hold] = splitAt(pts, holdoutSec);
  const s1 = chart.addSeries(LWC.AreaSeries, {
    lineColor: "#4c9ffe", topColor: "rgba(76,159,254,0.25)", bottomColor: "rgba(76,159,254,0.02)", lineWidth: 2,
    priceFormat: { type: "price", precision: 0, minMove: 1 },
  });
  s1.setData(wf.length ? wf : pts);
  if (hold.length && wf.length) {
    const s2 = chart.addSeries(LWC.AreaSeries, {
      lineColor: "#f0b429", topColor: "rgba(240,180,41,0.25)", bottomColor: "rgba(240,180,41,0.02)", lineWidth: 2,
      priceFormat: { type: "price", precision: 0, minMove: 1 },
    });
    s2.setData(hold);
  }
  s1.createPriceLine({ price: eq.initial_capital, color: "#5d6b7c", lineStyle: 2, lineWidth: 1, title: "start" });
  chart.timeScale().fitContent();
  state.charts.push(chart);
  const last = eq.equity.length ? eq.equity[eq.equity.length - 1] : eq.initial_capital;
  const ret = last / eq.initial_capital - 1;
  document.getElementById("equity-stats").textContent =
    `${fmt.money(last)} (${ret >= 0 ? "+" : ""}${fmt.pct(ret, 2)}) · ${eq.trades.length} trades · ${eq.source === "backtest" ? eq.price_model + " fills" : "holdout trades only"}`;
  return chart;
}

function drawDrawdown(eq, equityChart) {
  const chart = LWC.createChart(document.getElementById("drawdown-chart"), chartOptions(120));
  const s = chart.addSeries(LWC.AreaSeries, {
    lineColor: "#ef5350", topColor: "rgba(239,83,80,0.05)", bottomColor: "rgba(239,83,80,0.35)", lineWidth: 1,
    invertFilledArea: true, priceFormat: { type: "percent", precision: 1 },
  });
  s.setData(eq.ts.map((t, i) => ({ time: Math.floor(t / 1000), value: 100 * eq.drawdown[i] })));
  chart.timeScale().fitContent();
  state.charts.push(chart);
  const worst = Math.min(0, ...eq.drawdown);
  document.getElementById("dd-stats").textContent = `max ${fmt.pct(-worst, 2)} below peak`;
  // keep equity and drawdown on one time axis
  let syncing = false;
  const link = (a, b) => a.timeScale().subscribeVisibleLogicalRangeChange((r) => {
    if (syncing || !r) return;
    syncing = true; b.timeScale().setVisibleLogicalRange(r); syncing = false;
  });
  link(equityChart, chart); link(chart, equityChart);
}

// ------------------------------------------------------------------ chart analyses

const TRENDS = { up: "▲", down: "▼", sideways: "◆" };
const msOf = (iso) => (iso ? Date.parse(iso) : NaN);
const knownWindow = (a) => Number.isFinite(msOf(a.window_end)) && msOf(a.window_end) > 0;

function fmtWindow(a) {
  if (!knownWindow(a)) return "uploaded image";
  const s = new Date(msOf(a.window_start)).toISOString(), e = new Date(msOf(a.window_end)).toISOString();
  const start = s.slice(0, 16).replace("T", " ");
  const end = s.slice(0, 10) === e.slice(0, 10) ? e.slice(11, 16)
    : s.slice(0, 4) === e.slice(0, 4) ? e.slice(5, 16).replace("T", " ") : e.slice(0, 16).replace("T", " ");
  return `${start} – ${end}`;
}

const byWindowDesc = (rows) =>
  rows.map((a, i) => [a, i]).sort(([a, i], [b, j]) =>
    ((knownWindow(b) ? msOf(b.window_end) : -1) - (knownWindow(a) ? msOf(a.window_end) : -1)) || i - j)
    .map(([a]) => a);

function analysisRow(a) {
  const ok = a.status === "ok" && a.trend;
  const trend = ok
    ? el("span", { class: `trend ${a.trend}`, text: `${TRENDS[a.trend] || ""} ${a.trend}` })
    : el("span", { class: "badge bad", text: a.status || "failed" });
  const pats = el("td", { class: "wrap" });
  if (ok && a.patterns && a.patterns.length) {
    for (const p of a.patterns) pats.append(el("span", { class: "chip", text: p.replaceAll("_", " ") }));
  } else {
    pats.append(el("span", { class: "muted", text: ok ? "none" : String(a.error || "invalid model output").slice(0, 120) }));
  }
  const levels = ok ? [...(a.levels || [])].sort((x, y) => y - x).map((x) => fmt.n(x, 5)).join(" · ") : "";
  const lat = a.latency_ms === null || a.latency_ms === undefined ? "" : ` · ${fmt.n(a.latency_ms, 0)} ms`;
  return el("tr", {
      class: `analysis${ok ? "" : " failed"}`, "data-status": a.status, "data-trend": ok ? a.trend : null,
      "data-window-end": a.window_end || "",
      title: a.rationale || a.error || "",
    },
    el("td", { class: "mono", title: `${a.window_start} → ${a.window_end}`, text: fmtWindow(a) }),
    el("td", { class: "muted", text: a.timeframe || "–" }),
    el("td", {}, trend),
    pats,
    el("td", { class: "mono", text: levels || "–" }),
    el("td", { class: "num", text: ok ? fmt.pct(a.confidence, 0) : "–" }),
    el("td", {}, el("span", { text: a.model || "–" }), el("span", { class: "tf", text: `${a.backend || ""}${lat}` })),
  );
}

async function loadAnalyses() {
  const tbody = document.querySelector("#analyses tbody");
  const note = document.getElementById("analyses-note");
  try {
    const rows = await getJSON("analyses?limit=50");
    state.analyses = rows;
    // the API answers newest window end first (then newest logged): the first 12 are the newest
    const shown = byWindowDesc(rows.slice(0, 12));
    tbody.replaceChildren(...shown.map(analysisRow));
    if (!shown.length) {
      tbody.append(el("tr", {}, el("td", { colspan: 7, class: "muted",
        text: "No analyses yet: run the vision stage (aio analyze) or POST a chart to /analyze." })));
    }
    const latest = shown.find((a) => a.status === "ok" && knownWindow(a));
    note.textContent = latest
      ? `Latest window (${latest.timeframe}, ends ${fmt.date(msOf(latest.window_end))}): ${latest.rationale}`
      : "";
    const failed = rows.slice(0, 12).filter((a) => a.status !== "ok").length;
    document.getElementById("analyses-hint").textContent =
      `${shown.length} newest of the analysis log · newest window first` + (failed ? ` · ${failed} failed` : "");
    body.dataset.analyses = String(shown.length);
  } catch (e) {
    state.analyses = [];
    tbody.replaceChildren(el("tr", {}, el("td", { colspan: 7, class: "muted wrap", text: `Analyses unavailable: ${e.message || e}` })));
    body.dataset.analyses = "0";
    body.dataset.analysesError = "1";
  }
  drawLevels();
}

// The support/resistance levels of the newest analysed window of the selected strategy's
// timeframe and symbol, as dashed price lines on its candlestick chart.
function drawLevels() {
  const series = state.priceSeries;
  if (!series || state.analyses === null) return;
  for (const line of state.srLines) series.removePriceLine(line);
  state.srLines = [];
  const row = state.data && state.data.strategies.find((r) => r.strategy_id === state.selected);
  const legend = document.getElementById("sr-legend");
  const match = row && byWindowDesc(state.analyses).find((a) =>
    a.status === "ok" && knownWindow(a) && a.timeframe === row.timeframe &&
    (!a.instrument || !row.symbol || a.instrument === row.symbol) && (a.levels || []).length);
  if (match) {
    for (const price of match.levels) {
      if (!Number.isFinite(price) || price <= 0) continue;
      const above = state.lastClose !== null && price > state.lastClose;
      state.srLines.push(series.createPriceLine({
        price, color: above ? "#e57373" : "#4db6ac", lineWidth: 1, lineStyle: 2,
        axisLabelVisible: true, title: "S/R",
      }));
    }
  }
  legend.hidden = !state.srLines.length;
  legend.title = match ? `${match.model} · ${match.timeframe} window ${fmtWindow(match)} UTC` : "";
  body.dataset.srLines = String(state.srLines.length);
}

// ------------------------------------------------------------------ pattern library

const absT = (r) => (r.t_stat === null || r.t_stat === undefined ? -1 : Math.abs(r.t_stat));
const ARROWS = { 1: "▲", "-1": "▼", 0: "•" };

function patternRow(r) {
  const dirCls = r.direction > 0 ? "pos" : r.direction < 0 ? "neg" : "muted";
  return el("tr", { class: "pattern", "data-pattern": r.pattern, title:
      `${r.symbol} · ${r.n_independent} independent · baseline ${fmt.signed(r.baseline_mean_bps)} bps, ` +
      `hit ${fmt.pct(r.baseline_hit_rate, 1)}${r.validated ? " · validated" : ""}` },
    el("td", {}, el("span", { class: `dir ${dirCls}`, text: ARROWS[r.direction] || "•" }),
      el("span", { text: " " + r.pattern.replaceAll("_", " ") })),
    el("td", { class: "muted", text: r.timeframe }),
    el("td", { class: "num", text: fmt.int(r.horizon) }),
    el("td", { class: "num", text: fmt.int(r.count) }),
    el("td", { class: `num ${signClass(r.mean_bps)}`, text: fmt.signed(r.mean_bps) }),
    el("td", { class: "num", text: fmt.pct(r.hit_rate, 1) }),
    el("td", { class: `num ${signClass(r.t_stat)}`, text: fmt.signed(r.t_stat) }),
  );
}

async function loadPatterns() {
  const tbody = document.querySelector("#patterns tbody");
  const note = document.getElementById("patterns-note");
  try {
    let rows = await getJSON("patterns?validated=true");
    let mode = "validated";
    if (!rows.length) {
      mode = "top";
      const all = await getJSON("patterns");
      rows = all.filter((r) => absT(r) >= 0).sort((a, b) => absT(b) - absT(a)).slice(0, 10);
      const gate = all[0];
      note.textContent = all.length
        ? "None passes the validator" + (gate ? ` (count ≥ ${gate.min_count}, |t| ≥ ${fmt.n(gate.min_abs_t, 1)})` : "") +
          ": the 10 strongest by |t| are shown, not to be traded on."
        : "No pattern statistics yet: run the patterns stage (aio patterns).";
    } else {
      rows.sort((a, b) => absT(b) - absT(a));
      const gate = rows[0];
      note.textContent = `${rows.length} validated (count ≥ ${gate.min_count}, |t| ≥ ${fmt.n(gate.min_abs_t, 1)}) · strongest |t| first · ▲ bullish ▼ bearish: returns signed by the pattern's direction`;
    }
    tbody.replaceChildren(...rows.map(patternRow));
    if (!rows.length) tbody.append(el("tr", {}, el("td", { colspan: 7, class: "muted", text: "–" })));
    body.dataset.patterns = String(rows.length);
    body.dataset.patternsMode = mode;
  } catch (e) {
    tbody.replaceChildren(el("tr", {}, el("td", { colspan: 7, class: "muted wrap", text: `Pattern library unavailable: ${e.message || e}` })));
    body.dataset.patterns = "0";
    body.dataset.patternsError = "1";
  }
}

// ------------------------------------------------------------------ detail

function kv(dl, k, v, cls) {
  dl.append(el("dt", { text: k }), el("dd", { class: cls || "", text: v }));
}

function renderDetail(d) {
  const box = document.getElementById("detail-body");
  box.className = "";
  // the parameters in force: a live override (with who and when) or the ranked ones
  const force = d.params_in_force || {};
  const inForce = force.source === "override" && force.params ? force.params : d.params;
  const params = el("dl", { id: "params-in-force", "data-params-source": force.source || "ranked" });
  for (const [k, v] of Object.entries(inForce)) {
    const changed = inForce !== d.params && d.params[k] !== v;
    kv(params, k, changed ? `${v} (ranked ${d.params[k]})` : String(v), changed ? "override" : "");
  }
  const c = d.criteria || {}, h = d.holdout || {}, t = d.trades_summary || {};
  const oos = el("dl");
  kv(oos, "Score", fmt.n(d.score, 3));
  kv(oos, "OOS Sharpe", fmt.n(c.sharpe), signClass(c.sharpe));
  kv(oos, "Deflated Sharpe", fmt.n(c.dsr, 3));
  kv(oos, "Positive folds", fmt.pct(c.positive_folds, 0));
  kv(oos, "Max drawdown", fmt.pct(c.max_drawdown));
  const hold = el("dl");
  kv(hold, "Net P&L", fmt.money(h.net_profit), signClass(h.net_profit));
  kv(hold, "Sharpe", fmt.n(h.sharpe), signClass(h.sharpe));
  kv(hold, "Max drawdown", fmt.pct(h.max_drawdown));
  kv(hold, "Trades / win rate", `${fmt.int(t.trades)} / ${fmt.pct(t.win_rate, 0)}`);
  kv(hold, "Net pips", fmt.n(t.net_pips, 1), signClass(t.net_pips));
  const live = d.live || {};
  const actions = el("div", { class: "actions" },
    el("button", { class: "btn small", onclick: () => control(d.strategy_id, live.paused ? "resume" : "pause") },
      live.paused ? "Resume" : "Pause"));
  box.replaceChildren(
    el("div", {}, el("span", { class: "fam", text: d.family }), el("span", { class: "tf", text: `${d.timeframe} · ${d.symbol}` }),
      " ", stateBadge(live)),
    el("div", { class: "muted", text: `id ${d.strategy_id} · rank ${d.rank ?? "–"}` }),
    el("div", { class: "section" }, el("h3", { text: force.source === "override"
      ? `Parameters in force: override by ${force.by} at ${fmt.date(force.at_ms)}` : "Parameters (ranked)" }), params),
    el("div", { class: "section" }, el("h3", { text: "Out-of-sample" }), oos),
    el("div", { class: "section" }, el("h3", { text: "Holdout (never ranked on)" }), hold),
    el("div", { class: "section" }, el("h3", { text: "Why it ranks here" }), el("p", { text: d.rationale || "–" })),
    el("div", { class: "section" }, el("h3", { text: "Live control" }), actions),
  );
}

async function control(sid, action) {
  if (!state.token) state.token = window.prompt("Control token (sent as a bearer token)") || null;
  if (!state.token) return;
  const r = await fetch(`strategies/${sid}/${action}`, {
    method: "POST", headers: { Authorization: `Bearer ${state.token}`, "Content-Type": "application/json" }, body: "{}",
  });
  if (r.status === 401) { state.token = null; showError("Control refused: wrong or missing token."); return; }
  if (!r.ok) { showError(`Control failed: HTTP ${r.status}`); return; }
  await load(document.getElementById("run-select").value || null, sid);
}

// ------------------------------------------------------------------ Pine

async function renderPine(rows) {
  const list = document.getElementById("pine-list");
  list.replaceChildren();
  if (!rows.length) {
    list.append(el("p", { class: "muted", text: state.data && state.data.verdict === "none_passed"
      ? "No Pine script: no strategy passed every gate." : "No Pine script yet." }));
  }
  await Promise.all(rows.map(async (r, i) => {
    const pre = el("pre", { "data-strategy-id": r.strategy_id }, el("code", { text: "loading…" }));
    const copy = el("button", { class: "btn small", onclick: async (ev) => {
      ev.preventDefault();
      const text = pre.textContent;
      try { await navigator.clipboard.writeText(text); }
      catch (_) {
        const ta = el("textarea"); ta.value = text; document.body.append(ta); ta.select();
        document.execCommand("copy"); ta.remove();
      }
      copy.textContent = "Copied ✓"; setTimeout(() => (copy.textContent = "Copy"), 1500);
    } }, "Copy");
    const item = el("details", { class: "pine", ...(i === 0 ? { open: "" } : {}) },
      el("summary", {}, el("span", { class: "badge", text: `#${r.rank}` }), el("span", { class: "fam", text: r.family }),
        el("span", { class: "tf", text: r.timeframe }), el("span", { class: "grow" }), pineBadge(r.pine), copy,
        el("a", { class: "btn small ghost", href: `strategies/${r.strategy_id}/pine`, download: `aio-${r.family}-${r.timeframe}.pine` }, ".pine")),
      pre);
    list.append(item);
    try {
      const resp = await fetch(`strategies/${r.strategy_id}/pine`);
      pre.firstChild.textContent = resp.ok ? await resp.text() : `// Pine unavailable: HTTP ${resp.status}`;
    } catch (e) { pre.firstChild.textContent = `// ${e}`; }
  }));
  // keep the page order by rank whatever order the fetches finished in
  return list.querySelectorAll("details.pine").length;
}

// ------------------------------------------------------------------ flow

async function select(sid) {
  state.selected = sid;
  if (location.hash !== `#strategy=${sid}`) history.replaceState(null, "", `#strategy=${sid}`);
  for (const tr of document.querySelectorAll("tr.row")) tr.classList.toggle("selected", tr.dataset.strategyId === sid);
  const row = state.data.strategies.find((r) => r.strategy_id === sid);
  document.getElementById("chart-title").textContent = row ? `${row.family} · ${row.symbol} ${row.timeframe}` : "Price";
  resetCharts();
  let drawn = 0;
  try {
    const [detail, eq] = await Promise.all([getJSON(`strategies/${sid}`), getJSON(`strategies/${sid}/equity`)]);
    renderDetail(detail);
    const holdoutSec = eq.holdout_start_ms ? Math.floor(eq.holdout_start_ms / 1000) : null;
    const ec = drawEquity(eq, holdoutSec); drawn++;
    drawDrawdown(eq, ec); drawn++;
    try {
      const candles = await getJSON(`strategies/${sid}/candles`);
      body.dataset.markers = String(drawPrice(candles, eq, holdoutSec)); drawn++;
      drawLevels();
    } catch (e) {
      document.getElementById("price-chart").replaceChildren(el("div", { class: "muted", text: `Price chart unavailable: ${e.message}` }));
    }
  } catch (e) { showError(String(e.message || e)); }
  body.dataset.chartsDrawn = String(drawn);
  body.dataset.selected = sid;
}

async function load(runId, keep) {
  const q = runId ? `?run_id=${encodeURIComponent(runId)}` : "";
  const data = await getJSON(`rankings${q}`);
  state.data = data;
  const sel = document.getElementById("run-select");
  sel.replaceChildren(...data.runs.map((r) => el("option", { value: r, ...(r === data.run_id ? { selected: "" } : {}) }, r)));
  renderVerdict(data);
  renderTable(data.strategies, data.verdict);
  body.dataset.strategies = String(data.strategies.length);
  const pine = renderPine(data.strategies);
  const linked = (STRATEGY_HASH.exec(location.hash) || [])[1];
  const wanted = keep || (data.strategies.some((r) => r.strategy_id === linked) ? linked : null);
  const first = wanted || (data.strategies[0] && data.strategies[0].strategy_id);
  if (first) await select(first);
  body.dataset.pineScripts = String(await pine);
}

async function main() {
  if (!LWC) {
    showError("Charting library missing: run `bash serve/vendor.sh` on the server and reload.");
    body.dataset.state = "error";
    return;
  }
  try {
    const health = await getJSON("health");
    const badge = document.getElementById("control-badge");
    const on = health.control === "enabled";
    badge.textContent = on ? "control on" : "control off";
    badge.className = `badge ${on ? "ok" : "warn"}`;
    badge.title = `library ${health.library}`;
    document.getElementById("run-select").addEventListener("change", (ev) => load(ev.target.value));
    // the two side panels catch their own failures: they never stop the strategies from loading
    await Promise.all([load(null), loadAnalyses(), loadPatterns()]);
    body.dataset.state = "ready";
  } catch (e) {
    showError(String(e.message || e));
    body.dataset.state = "error";
  }
}

main();
