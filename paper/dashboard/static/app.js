// The dashboard page: polls the JSON API every refresh_s seconds and redraws.
// No build step; uPlot is vendored under /static/vendor/uplot. Data goes into the DOM with
// textContent only (never innerHTML), and the page sends nothing but GETs.
"use strict";

const COLORS = ["#6cb6ff", "#f5a524", "#30a46c", "#e5484d", "#b07cff", "#3dd6d0", "#ff8ac4", "#c9d36a"];
const charts = {};
let config = { refresh_s: 30, stale_after_s: 7200 };
let nextAt = 0;

function $(id) { return document.getElementById(id); }

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function fmtMoney(v) {
  if (v === null || v === undefined) return "–";
  return Number(v).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}
function fmtPct(v, d = 2) { return v === null || v === undefined ? "–" : (100 * v).toFixed(d) + "%"; }
function fmtNum(v, d = 4) { return v === null || v === undefined ? "–" : Number(v).toFixed(d); }
function isoHour(h) { return h === null || h === undefined ? "–" : new Date(h * 1000).toISOString().slice(0, 16).replace("T", " "); }
function fmtAge(s) {
  if (s === null || s === undefined) return "never";
  if (s < 120) return Math.round(s) + " s";
  if (s < 7200) return Math.round(s / 60) + " min";
  if (s < 172800) return (s / 3600).toFixed(1) + " h";
  return (s / 86400).toFixed(1) + " days";
}

async function api(path) {
  const r = await fetch(path, { credentials: "same-origin", cache: "no-store" });
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { msg += ": " + (await r.json()).detail; } catch (e) { /* not JSON */ }
    throw new Error(path + ": " + msg);
  }
  return r.json();
}

function fillTable(id, rows) {
  const body = $(id).querySelector("tbody");
  body.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement("tr");
    for (const c of cells) {
      const td = document.createElement("td");
      if (c instanceof Node) td.appendChild(c); else td.textContent = c === null || c === undefined ? "–" : String(c);
      tr.appendChild(td);
    }
    return tr;
  }));
}

function plot(id, series, data, opts = {}) {
  const host = $(id);
  const width = Math.max(300, host.clientWidth || 600);
  const height = opts.height || 220;
  const spec = {
    width, height,
    scales: { x: { time: opts.time !== false } },
    axes: [{ stroke: "#8a96a3", grid: { stroke: "#222b36" } },
           { stroke: "#8a96a3", grid: { stroke: "#222b36" }, size: 70, values: opts.yValues }],
    series: [{}, ...series.map((s, i) => Object.assign({ stroke: COLORS[i % COLORS.length], width: 1.5 }, s))],
  };
  if (charts[id] && charts[id].series.length === spec.series.length) {
    charts[id].setData(data);
    charts[id].setSize({ width, height });
    return;
  }
  if (charts[id]) charts[id].destroy();
  host.replaceChildren();
  charts[id] = new uPlot(spec, data, host);
}

function renderStatus(s) {
  $("run-id").textContent = s.run_id;
  $("as-of").textContent = "as of " + (s.as_of || "–") + " UTC";
  const eq = $("equity");
  eq.textContent = fmtMoney(s.equity);
  eq.dataset.value = s.equity === null ? "" : s.equity;
  const pnl = $("pnl");
  pnl.textContent = s.pnl === null ? "–" : fmtMoney(s.pnl) + " (" + fmtPct(s.pnl_pct) + ")";
  pnl.className = "value " + (Number(s.pnl) < 0 ? "neg" : "pos");
  $("drawdown").textContent = fmtPct(s.drawdown);
  $("drawdown").dataset.value = s.drawdown === null ? "" : String(s.drawdown);
  $("ladder").textContent = String(s.ladder_level);
  $("behind").textContent = s.bars_behind === null ? "–" : String(s.bars_behind);
  $("fees").textContent = fmtMoney(s.fees_total);
  const h = s.hours;
  $("hours-count").textContent = `${h.traded} traded · ${h.held} held · ${h.halted} halted · ${h.missed} missed`;
  const kill = $("kill-banner");
  kill.hidden = !s.kill_switch.engaged;
  kill.textContent = s.kill_switch.engaged
    ? `KILL SWITCH ENGAGED since ${s.kill_switch.since_iso} — trigger: ${s.kill_switch.trigger}. Reactivate with the paper_trade.py CLI.`
    : "";
  const ladder = $("ladder-banner");
  ladder.hidden = s.ladder_level === 0 && !s.halted;
  ladder.textContent = s.halted ? "Trading HALTED by the drawdown ladder" : `Drawdown ladder at level ${s.ladder_level}`;
  const badge = $("freshness");
  badge.className = "badge " + (s.stale ? "stale" : "live");
  badge.textContent = (s.stale ? "STALE: " : "live: ") + "last write " + fmtAge(s.seconds_since_last_write) + " ago";
}

function renderSeries(eq, alloc) {
  const xs = eq.points.map((p) => p.hour);
  plot("chart-equity", [{ label: "equity" }], [xs, eq.points.map((p) => p.equity_value)]);
  plot("chart-drawdown", [{ label: "drawdown", stroke: "#e5484d", fill: "rgba(229,72,77,0.15)" }],
    [xs, eq.points.map((p) => p.drawdown)], { yValues: (u, v) => v.map((x) => fmtPct(x, 1)) });
  const series = alloc.assets.map((a) => ({ label: a }));
  series.push({ label: "cash", stroke: "#8a96a3", dash: [4, 4] });
  plot("chart-allocation", series, [alloc.hours, ...alloc.assets.map((a) => alloc.weights[a]), alloc.cash],
    { yValues: (u, v) => v.map((x) => fmtPct(x, 0)) });
}

function renderPositions(p) {
  fillTable("positions", [...p.positions.map((r) => [r.asset, fmtNum(r.units, 6), fmtMoney(r.mark), fmtMoney(r.value), fmtPct(r.weight)]),
    ["cash", "", "", fmtMoney(p.cash), fmtPct(p.cash_weight)]]);
}

function renderSignals(s) {
  $("signals-hour").textContent = s.signals_hour ? "(" + isoHour(s.signals_hour) + " UTC)" : "(none recorded)";
  const preds = (s.predictions || []).filter((p) => p.model === "meta" || p.model === null);
  fillTable("signals", preds.map((p) => [p.asset, p.horizon + "h", fmtNum(p.p_up, 3), fmtPct(p.exp_return, 3), fmtNum(p.confidence, 3)]));
  const reg = s.regime || {};
  fillTable("regime", Object.keys(reg).map((k) => [k, fmtPct(reg[k].trend, 0), fmtPct(reg[k].range, 0), fmtPct(reg[k].high_vol, 0), fmtPct(reg[k].crash, 0)]));
  const prop = s.proposed || {}, tgt = s.target || {};
  const names = [...new Set([...Object.keys(prop), ...Object.keys(tgt)])];
  fillTable("weights", names.map((a) => [a, fmtPct(prop[a]), fmtPct(tgt[a])]));
}

function renderInterventions(iv) {
  plot("chart-interventions", iv.rules.map((r) => ({ label: r, paths: uPlot.paths.stepped({ align: 1 }) })),
    [iv.buckets, ...iv.rules.map((r) => iv.counts[r])]);
  fillTable("intervention-totals", iv.rules.map((r) => [r, iv.totals[r]]));
  fillTable("events", iv.events.slice(-20).reverse().map((e) => [isoHour(e.hour), e.kind, JSON.stringify(e.payload).slice(0, 120)]));
}

function renderConfidence(c) {
  const mids = c.edges.slice(0, -1).map((e, i) => (e + c.edges[i + 1]) / 2);
  plot("chart-confidence", [{ label: "count", fill: "rgba(108,182,255,0.35)", paths: uPlot.paths.bars({ size: [0.9] }) }],
    [mids, c.counts], { time: false, height: 180 });
  $("confidence-stats").textContent = `n=${c.n} · mean ${fmtNum(c.mean, 3)} · p05 ${fmtNum(c.quantiles.p05, 3)} · median ${fmtNum(c.quantiles.p50, 3)} · p95 ${fmtNum(c.quantiles.p95, 3)}`;
}

function renderHours(h) {
  fillTable("hours", h.hours.map((r) => {
    const a = el("a", "record");
    a.href = r.audit;
    return [isoHour(r.hour), r.outcome || r.stage, fmtMoney(r.equity), r.n_orders, r.n_fills, a];
  }));
}

function renderFills(f) {
  fillTable("fills", f.fills.map((r) => [isoHour(r.hour), r.pair, r.side, fmtNum(r.units, 6), fmtMoney(r.price), fmtMoney(r.fee)]));
}

async function refresh() {
  try {
    const [status, eq, alloc, pos, sig, iv, conf, hours, fills] = await Promise.all([
      api("/api/status"), api("/api/equity?limit=10000"), api("/api/allocation?limit=10000"), api("/api/positions"),
      api("/api/signals"), api("/api/interventions?bucket_hours=24&recent=20"), api("/api/confidence?window_hours=168"),
      api("/api/hours?limit=24"), api("/api/fills?limit=20"),
    ]);
    renderStatus(status);
    renderSeries(eq, alloc);
    renderPositions(pos);
    renderSignals(sig);
    renderInterventions(iv);
    renderConfidence(conf);
    renderHours(hours);
    renderFills(fills);
    $("error-banner").hidden = true;
    document.body.dataset.rendered = String(Number(document.body.dataset.rendered || 0) + 1);
    document.body.dataset.lastOk = String(Date.now());
  } catch (err) {
    const b = $("error-banner");
    b.hidden = false;
    b.textContent = "Data unavailable (showing the last good view): " + err.message;
    const badge = $("freshness");
    badge.className = "badge down";
    badge.textContent = "unreachable";
  }
  nextAt = Date.now() + config.refresh_s * 1000;
}

function tick() {
  const left = Math.max(0, Math.round((nextAt - Date.now()) / 1000));
  $("next-refresh").textContent = "refresh in " + left + " s";
  if (Date.now() >= nextAt) { nextAt = Infinity; refresh(); }
}

async function main() {
  if (new URLSearchParams(location.search).has("token")) history.replaceState(null, "", location.pathname);
  try { config = await api("/api/config"); } catch (e) { /* keep defaults; refresh() reports */ }
  await refresh();
  setInterval(tick, 1000);
}

window.addEventListener("DOMContentLoaded", main);
