"""The evaluation report: ``report.html`` and its PNG figures, from ``metrics.json`` and the episodes.

The numbers come from the metrics document (`agents.evaluation.metrics_document`), the
curves from the `EpisodeResult` objects, so the report shows exactly what ``metrics.json``
says. Figures are drawn on matplotlib ``Figure`` objects with the Agg canvas (no pyplot
global state, no display) at fixed sizes and dpi, so each PNG's pixel size is known in
advance (`PNG_SIZES`). The HTML references the PNGs by relative file name: the folder can
be moved or zipped as it is. Every file is written atomically (temp file + ``os.replace``).
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from agents.baselines import EpisodeResult
from agents.evaluation import UNKNOWN
from agents.metrics import HOURS_PER_YEAR, drawdown_series
from envs.atomic import atomic_write
from predictors.regime import REGIMES

DPI = 100
PNG_SIZES: dict[str, tuple[int, int]] = {  # file -> (width, height) in pixels
    "equity.png": (1200, 500),
    "drawdown.png": (1200, 400),
    "allocation.png": (1200, 450),
    "interventions.png": (1200, 400),
    "predictor_quality.png": (1200, 450),
    "per_regime.png": (1200, 450),
}
MAIN = "policy"  # the strategy the report emphasises when present
METRIC_COLUMNS: tuple[tuple[str, str], ...] = (  # (metric, format) of the main table, in order
    ("total_return", "pct"),
    ("cagr", "pct"),
    ("annualised_volatility", "pct"),
    ("sharpe", "sharpe_ci"),
    ("sortino", "num"),
    ("calmar", "num"),
    ("max_drawdown", "pct"),
    ("max_monthly_drawdown", "pct"),
    ("turnover", "num"),
    ("fees_paid", "money"),
    ("slippage_paid", "money"),
    ("n_trades", "int"),
    ("win_rate", "pct"),
    ("profit_factor", "num"),
    ("average_exposure", "pct"),
    ("probabilistic_sharpe", "num"),
    ("deflated_sharpe", "num"),
)
REGIME_COLUMNS: tuple[tuple[str, str], ...] = (
    ("hours", "int"), ("share", "pct"), ("total_return", "pct"), ("sharpe", "num"),
    ("max_drawdown", "pct"), ("mean_return", "bp"),
)  # fmt: skip
PREDICTOR_COLUMNS: tuple[tuple[str, str], ...] = (
    ("model", "text"), ("horizon", "int"), ("n", "int"), ("n_timestamps", "int"), ("ic", "num"),
    ("ic_t", "num"), ("ic_t_nw", "num"), ("auc", "num"), ("hit_rate", "pct"),
)  # fmt: skip
HOW_TO_READ = (
    "Read the predictor table first. If the information coefficient (IC) is near 0 and the AUC near 0.5, "
    "the signal failed: the predictions carried no information over this period and no policy could have "
    "traded them profitably; the fix is in the predictors, not the policy. If IC and AUC are clearly "
    "positive (IC t-statistic well above 2, Newey-West for horizons over 1 h) but the policy does not beat "
    "the baselines after fees, the policy failed to turn a working signal into returns (too much turnover, "
    "poor sizing, or the risk layer overriding it: see the interventions). Compare every strategy with "
    "all-cash and buy-and-hold, look at the Sharpe confidence interval (an interval that contains 0 is no "
    "evidence of skill) and at the deflated Sharpe ratio, which discounts for the number of trials."
)


# ------------------------------------------------------------------ formatting
def _num(value: Any) -> float:
    """A metric value as float; NaN for None (null in metrics.json) or non-numbers."""
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _fmt(value: Any, kind: str) -> str:
    if kind == "text":
        return "–" if value is None else str(value)
    v = _num(value)
    if math.isnan(v):
        return "–"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    formats: dict[str, Callable[[float], str]] = {
        "pct": lambda x: f"{100 * x:.2f}%",
        "int": lambda x: f"{round(x):,}",
        "money": lambda x: f"{x:,.2f}",
        "bp": lambda x: f"{1e4 * x:.2f} bp",
        "num": lambda x: f"{x:.3f}",
    }
    return formats[kind](v)


def _cell(text: str, header: bool = False) -> str:
    tag = "th" if header else "td"
    return f"<{tag}>{html.escape(text)}</{tag}>"


def _table(table_id: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(_cell(h, header=True) for h in header)
    body = "\n".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f'<table id="{html.escape(table_id)}">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>'


def _sharpe_ci(m: Mapping[str, Any]) -> str:
    point = _fmt(m.get("sharpe"), "num")
    low, high = _num(m.get("sharpe_ci_low")), _num(m.get("sharpe_ci_high"))
    if math.isnan(low) or math.isnan(high):
        return point
    return f"{point} [{low:.2f}, {high:.2f}]"


# ------------------------------------------------------------------ figures
def _figure(name: str) -> Figure:
    w, h = PNG_SIZES[name]
    fig = Figure(figsize=(w / DPI, h / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, out_dir: Path, name: str) -> None:
    """PNG at exactly PNG_SIZES[name] pixels (no tight bounding box: it would change the size)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    atomic_write(out_dir / name, buf.getvalue())


def _dates(seconds: np.ndarray) -> np.ndarray:
    return np.asarray(seconds, dtype=np.int64).astype("datetime64[s]")


def _time_axis(ax: Any) -> None:
    loc = AutoDateLocator()
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(loc))
    ax.grid(True, alpha=0.3)


def _style(name: str, main: str) -> dict[str, Any]:
    if name == main:
        return {"linewidth": 2.6, "color": "black", "zorder": 10}
    return {"linewidth": 1.1, "alpha": 0.85}


def _equity_png(out_dir: Path, results: Mapping[str, EpisodeResult], main: str) -> None:
    fig = _figure("equity.png")
    ax = fig.add_subplot()
    for name, r in results.items():
        ax.plot(_dates(r.timestamps), r.equity / r.equity[0], label=name, **_style(name, main))
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_title(f"Equity (start = 1); {main} in bold black")
    ax.set_ylabel("equity / initial equity")
    _time_axis(ax)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    _save(fig, out_dir, "equity.png")


def _drawdown_png(out_dir: Path, results: Mapping[str, EpisodeResult], main: str) -> None:
    fig = _figure("drawdown.png")
    ax = fig.add_subplot()
    for name, r in results.items():
        dd = np.concatenate([[0.0], drawdown_series(r.returns)]) if r.n_steps else np.zeros(1)
        ax.plot(_dates(r.timestamps), -100.0 * dd, label=name, **_style(name, main))
    ax.set_title("Drawdown from the running peak")
    ax.set_ylabel("drawdown (%)")
    _time_axis(ax)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    _save(fig, out_dir, "drawdown.png")


def _allocation_png(out_dir: Path, result: EpisodeResult, main: str) -> None:
    fig = _figure("allocation.png")
    ax = fig.add_subplot()
    if result.n_steps:
        w = np.clip(result.weights, 0.0, None)
        cash = np.clip(1.0 - w.sum(axis=1), 0.0, None)
        assets = list(result.assets) or [f"asset {i}" for i in range(w.shape[1])]
        ax.stackplot(_dates(result.timestamps[1:]), *w.T, cash, labels=[*assets, "cash"], alpha=0.9)
        ax.legend(loc="upper left", fontsize=8, ncol=min(len(assets) + 1, 8))
    ax.set_ylim(0.0, 1.0)
    ax.set_title(f"Allocation of {main} after each step (weights of equity)")
    ax.set_ylabel("weight")
    _time_axis(ax)
    fig.tight_layout()
    _save(fig, out_dir, "allocation.png")


def intervention_days(result: EpisodeResult) -> pd.DataFrame:
    """Daily (UTC) counts of the steps in which each risk rule changed the target.

    A step's interventions are dated by its decision bar (``result.timestamps[k]``), when the
    risk layer projected the proposed weights. Columns: rules that bound at least once.
    """
    n = len(result.intervention_rules)
    days = _dates(result.timestamps[:n]).astype("datetime64[D]")
    records = [(d, rule) for d, rules in zip(days, result.intervention_rules, strict=True) for rule in rules]
    if not records:
        return pd.DataFrame(index=pd.DatetimeIndex([], name="day"))
    df = pd.DataFrame(records, columns=["day", "rule"])
    table = df.pivot_table(index="day", columns="rule", aggfunc="size", fill_value=0)
    all_days = pd.date_range(days.min(), days.max(), freq="D", name="day")
    return table.reindex(all_days, fill_value=0)


def _interventions_png(out_dir: Path, result: EpisodeResult, main: str) -> None:
    fig = _figure("interventions.png")
    ax = fig.add_subplot()
    table = intervention_days(result)
    if table.empty:
        ax.text(0.5, 0.5, "the risk layer changed no target in this episode", ha="center", va="center",
                transform=ax.transAxes)  # fmt: skip
    else:
        x = table.index.to_numpy("datetime64[s]")
        bottom = np.zeros(len(table))
        for rule in table.columns:
            counts = table[rule].to_numpy(dtype=np.float64)
            ax.bar(x, counts, bottom=bottom, width=np.timedelta64(20, "h"), align="edge", label=str(rule))
            bottom += counts
        ax.legend(loc="upper left", fontsize=8, ncol=min(len(table.columns), 6))
        _time_axis(ax)
    ax.set_title(f"Risk-layer interventions on {main}: steps per day in which each rule changed the target")
    ax.set_ylabel("steps per day")
    fig.tight_layout()
    _save(fig, out_dir, "interventions.png")


def _predictor_png(out_dir: Path, pq: pd.DataFrame) -> None:
    fig = _figure("predictor_quality.png")
    ax_ic, ax_auc = fig.subplots(1, 2)
    models = sorted(pq["model"].astype(str).unique())
    horizons = sorted(int(h) for h in pq["horizon"].unique())
    width = 0.8 / max(len(horizons), 1)
    x = np.arange(len(models))
    for j, h in enumerate(horizons):
        sub = pq[pq["horizon"] == h].set_index("model")
        for ax, col in ((ax_ic, "ic"), (ax_auc, "auc")):
            vals = [_num(sub[col].get(m)) if m in sub.index else math.nan for m in models]
            ax.bar(x + (j - (len(horizons) - 1) / 2) * width, vals, width=width, label=f"{h} h")
    ax_auc.axhline(0.5, color="grey", linestyle=":", linewidth=1.0)
    ax_ic.axhline(0.0, color="grey", linewidth=0.8)
    for ax, title in ((ax_ic, "Mean cross-sectional IC (Spearman)"), (ax_auc, "AUC of p_up (0.5 = no skill)")):
        ax.set_xticks(x, models, rotation=20, fontsize=8)
        ax.set_title(title)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8, title="horizon", title_fontsize=8)
    auc = pq["auc"].astype(float)
    lo = float(np.nanmin(auc)) if auc.notna().any() else 0.5
    hi = float(np.nanmax(auc)) if auc.notna().any() else 0.5
    ax_auc.set_ylim(min(0.4, lo - 0.02), max(0.6, hi + 0.02))
    fig.tight_layout()
    _save(fig, out_dir, "predictor_quality.png")


def _per_regime_png(out_dir: Path, strategies: Mapping[str, Mapping[str, Any]]) -> None:
    fig = _figure("per_regime.png")
    ax = fig.add_subplot()
    regimes = [*REGIMES, UNKNOWN]
    names = [n for n, m in strategies.items() if isinstance(m.get("per_regime"), Mapping)]
    if not any(_num(strategies[n]["per_regime"].get(UNKNOWN, {}).get("hours")) > 0 for n in names):
        regimes = list(REGIMES)  # every decision bar had a label: no empty "unknown" group
    x = np.arange(len(regimes))
    width = 0.8 / max(len(names), 1)
    for j, name in enumerate(names):
        pr = strategies[name]["per_regime"]
        vals = [_num(pr.get(reg, {}).get("sharpe")) for reg in regimes]
        ax.bar(x + (j - (len(names) - 1) / 2) * width, vals, width=width, label=name)
    hours = [_num(strategies[names[0]]["per_regime"].get(reg, {}).get("hours")) for reg in regimes]
    ax.set_xticks(x, [f"{reg}\n({int(h) if math.isfinite(h) else 0} h)" for reg, h in zip(regimes, hours, strict=True)])
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_title("Annualised Sharpe ratio per regime (regime of the decision bar; no bar: no hours or undefined)")
    ax.set_ylabel("Sharpe (annualised)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, out_dir, "per_regime.png")


# ------------------------------------------------------------------ HTML
def _metrics_rows(strategies: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    rows = []
    for name, m in strategies.items():
        cells = [str(name)]
        for metric, kind in METRIC_COLUMNS:
            cells.append(_sharpe_ci(m) if kind == "sharpe_ci" else _fmt(m.get(metric), kind))
        rows.append(cells)
    return rows


def _regime_rows(strategies: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    rows = []
    for name, m in strategies.items():
        pr = m.get("per_regime")
        if not isinstance(pr, Mapping):
            continue
        for regime, vals in pr.items():
            rows.append([str(name), str(regime), *(_fmt(vals.get(col), kind) for col, kind in REGIME_COLUMNS)])
    return rows


def _risk_rows(doc: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    strategies = doc["strategies"]
    rules = sorted({k for m in strategies.values() for k, v in m.items() if k.startswith("risk_") and _num(v) > 0})
    episodes = doc.get("episodes", {})
    rows = []
    for name, m in strategies.items():
        ep = episodes.get(name, {})
        rows.append([str(name), _fmt(ep.get("n_steps"), "int"), _fmt(ep.get("termination_reason"), "text"),
                     *(_fmt(m.get(r, 0), "int") for r in rules)])  # fmt: skip
    return ["strategy", "steps", "episode ended by", *rules], rows


def _period_text(p: Any) -> str:
    if not isinstance(p, Mapping) or p.get("start") is None:
        return "none (no trained run: baselines only)"
    return f"{p.get('start')} to {p.get('end')}"


def _image(name: str, alt: str) -> str:
    w, h = PNG_SIZES[name]
    return f'<p><img src="{html.escape(name)}" alt="{html.escape(alt)}" width="{w}" height="{h}"></p>'


BASELINE_NAMES = ("all_cash", "buy_and_hold_", "equal_weight_", "rule_strategy", "top")


def verdicts(strategies: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Plain sentences on the questions a reader asks first: did the hierarchy beat the flat
    ablation, and did the policy beat every baseline (annualised Sharpe, after fees)?"""
    def sharpe(name: str) -> float:
        return _num(strategies[name].get("sharpe"))

    out: list[str] = []
    if "policy" in strategies and "flat_ppo" in strategies:
        a, b = sharpe("policy"), sharpe("flat_ppo")
        won = "beat" if a > b else "did not beat"
        out.append(f"<p id='verdict-flat'>The hierarchical policy {won} the flat PPO ablation: Sharpe "
                   f"{a:.2f} vs {b:.2f}.</p>")
    if "policy" in strategies:
        base = {n: sharpe(n) for n in strategies if n.startswith(BASELINE_NAMES)}
        better = [n for n, v in base.items() if math.isfinite(v) and v >= sharpe("policy")]
        text = ("beat every baseline's Sharpe" if not better else
                "did not beat " + ", ".join(f"{html.escape(n)} ({base[n]:.2f})" for n in better))
        out.append(f"<p id='verdict-baselines'>The policy (Sharpe {sharpe('policy'):.2f}) {text}.</p>")
    return out


def _html(title: str, doc: Mapping[str, Any], pq: pd.DataFrame | None, main: str, has_regimes: bool) -> str:
    strategies = doc["strategies"]
    ppy = int(_num(doc.get("annualisation", {}).get("periods_per_year", HOURS_PER_YEAR)))
    level = 100 * (1 - _num(next(iter(strategies.values())).get("sharpe_ci_alpha", 0.05)))
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1260px;margin:1em auto}table{border-collapse:collapse;"
        "font-size:13px}th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}"
        "th{background:#f2f2f2}td:first-child{text-align:left}img{max-width:100%;height:auto}</style>",
        "</head><body>",
        f"<h1>{e(title)}</h1>",
        "<h2>Periods</h2>",
        "<ul>",
        f"<li>Training period: {e(_period_text(doc.get('train_period')))}</li>",
        f"<li>Evaluation period: {e(_period_text(doc.get('period')))}</li>",
        "</ul>",
        f"<p>Returns are hourly; ratios are annualised with 365 × 24 = {ppy} periods per year "
        "(crypto trades around the clock). No risk-free rate.</p>",
        f"<p>Sharpe confidence interval ({level:g}%): {e(str(doc.get('bootstrap', '')))}.</p>",
        "<h2>How to read this</h2>",
        f"<p>{e(HOW_TO_READ)}</p>",
        "<h2>Strategies</h2>",
        f"<p>{e(main)} is emphasised in the figures. Returns, volatility, drawdowns, win rate and exposure in %; "
        "fees and slippage in quote currency; turnover in multiples of equity over the period; sharpe shows "
        f"the annualised point estimate and its {level:g}% bootstrap interval in brackets.</p>",
        _table("metrics", ["strategy", *(m for m, _ in METRIC_COLUMNS)], _metrics_rows(strategies)),
        *verdicts(strategies),
        _image("equity.png", "equity curves"),
        _image("drawdown.png", "drawdowns"),
        _image("allocation.png", f"allocation of {main}"),
        "<h2>Risk layer</h2>",
        "<p>Steps in which each rule changed the proposed target (rules that never bound are left out).</p>",
        _table("risk", *_risk_rows(doc)),
        _image("interventions.png", "risk interventions per day"),
        "<h2>Per regime</h2>",
    ]
    if has_regimes:
        parts += [
            "<p>Each step's return belongs to the market-wide regime of its decision bar (argmax of the mean "
            "out-of-sample regime probability over the assets); regimes without hours show no metrics.</p>",
            _table("per_regime", ["strategy", "regime", *(c for c, _ in REGIME_COLUMNS)], _regime_rows(strategies)),
            _image("per_regime.png", "Sharpe ratio per regime"),
        ]
    else:
        parts.append("<p>No regime labels were given (no regimes.parquet): no per-regime split.</p>")
    parts.append("<h2>Predictor quality</h2>")
    if pq is not None and len(pq):
        parts += [
            "<p>Out-of-sample predictions over the evaluation bars. <code>ic</code>: mean over hours of the "
            "cross-sectional Spearman correlation of exp_return with the realised forward return; "
            "<code>ic_t</code>: its plain t-statistic; <code>ic_t_nw</code>: Newey-West t-statistic with h − 1 "
            "lags (overlapping multi-hour labels); <code>auc</code>: AUC of p_up against the net-of-fee up "
            "label.</p>",
            _table("predictor_quality", [c for c, _ in PREDICTOR_COLUMNS],
                   [[_fmt(r.get(c), k) for c, k in PREDICTOR_COLUMNS] for r in pq.to_dict("records")]),
            _image("predictor_quality.png", "IC and AUC per model and horizon"),
        ]  # fmt: skip
    else:
        parts.append("<p>No predictor data (no predictions.parquet for this period): predictor quality "
                     "not shown, so a failed signal cannot be told from a failed policy here.</p>")  # fmt: skip
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def markdown_table(doc: Mapping[str, Any]) -> str:
    """The headline metrics of every strategy as a Markdown table (README, notes, ``metrics.md``)."""
    head = ("strategy", "total return", "Sharpe [95% CI]", "PSR", "DSR", "max DD", "fees paid", "trades", "end")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    episodes = doc.get("episodes", {})

    def num(v: Any, fmt: str) -> str:
        return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)

    for name, m in doc["strategies"].items():
        low, high = num(m.get("sharpe_ci_low"), ".2f"), num(m.get("sharpe_ci_high"), ".2f")
        sharpe = f"{num(m.get('sharpe'), '.2f')} [{low}, {high}]"
        lines.append("| " + " | ".join([
            name, num(m.get("total_return"), "+.1%"), sharpe, num(m.get("probabilistic_sharpe"), ".3f"),
            num(m.get("deflated_sharpe"), ".3f"), num(m.get("max_drawdown"), ".1%"), num(m.get("fees_paid"), ",.0f"),
            num(m.get("n_trades"), "d"), str(episodes.get(name, {}).get("termination_reason") or ""),
        ]) + " |")
    return "\n".join(lines) + "\n"


def write_report(
    out_dir: str | Path,
    doc: Mapping[str, Any],
    results: Mapping[str, EpisodeResult],
    predictor_quality_df: pd.DataFrame | None = None,
    title: str = "krakenrl held-out evaluation",
) -> Path:
    """Write ``report.html`` and its PNGs into ``out_dir``; returns the HTML's path.

    ``doc`` is the `metrics_document` (in memory or read back from ``metrics.json``),
    ``results`` the episodes behind it (same names). The strategy named ``"policy"`` is
    emphasised and its allocation and interventions drawn; without one, the first strategy.
    ``predictor_quality_df`` defaults to ``doc["predictor_quality"]``; without predictor data
    ``predictor_quality.png`` is not written, and without per-regime metrics neither is
    ``per_regime.png`` (the HTML says so in both cases).
    """
    if not results:
        raise ValueError("results: expected at least one strategy, got none")
    if "strategies" not in doc or not doc["strategies"]:
        raise ValueError("doc: expected a metrics document with a non-empty 'strategies' mapping")
    missing = sorted(set(doc["strategies"]) - set(results))
    if missing:
        raise ValueError(f"results: no episode for strategies {missing} of the metrics document")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    main = MAIN if MAIN in results else next(iter(results))
    pq = predictor_quality_df
    if pq is None and doc.get("predictor_quality"):
        pq = pd.DataFrame.from_records(doc["predictor_quality"])
    strategies = doc["strategies"]
    has_regimes = any(isinstance(m.get("per_regime"), Mapping) for m in strategies.values())
    _equity_png(out, results, main)
    _drawdown_png(out, results, main)
    _allocation_png(out, results[main], main)
    _interventions_png(out, results[main], main)
    if pq is not None and len(pq):
        _predictor_png(out, pq)
    if has_regimes:
        _per_regime_png(out, strategies)
    return atomic_write(out / "report.html", _html(title, doc, pq, main, has_regimes).encode("utf-8"))


__all__ = ["DPI", "METRIC_COLUMNS", "PNG_SIZES", "intervention_days", "markdown_table", "write_report"]
