"""Read-only queries over a paper-trading state file, for the dashboard.

Every request opens its own SQLite connection with ``mode=ro`` (`paper.fileguard.connect`)
plus ``PRAGMA query_only``, and reads inside one deferred transaction: a WAL reader sees one
consistent snapshot while the loop keeps committing, and nothing here can write. The file is
identified (header, application id, schema version, integrity) the first time it is seen.
Money comes back as exact decimal text; series meant for charts as floats.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from paper.audit import TERMINAL_KINDS, envelope_text, record_hash
from paper.dashboard.views import hour_view, num
from paper.errors import PaperStateError
from paper.fileguard import check_header, connect, identify
from paper.hours import HOUR_S, iso
from paper.state import Stage

OUTCOMES = ("traded", "held", "halted", "missed")


class StateUnavailable(Exception):
    """The state file is missing, foreign or unreadable right now (HTTP 503)."""


class StateReader:
    """Opens the state file read-only per request; knows nothing of HTTP."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._identified: tuple[int, int] | None = None  # (st_dev, st_ino) of the file last identified

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection inside one read transaction (one consistent view)."""
        try:
            check_header(self.path)
            conn = connect(self.path, readonly=True)
        except PaperStateError as exc:
            raise StateUnavailable(str(exc)) from None
        try:
            conn.execute("PRAGMA query_only = ON")
            st = self.path.stat()
            if self._identified != (st.st_dev, st.st_ino):
                identify(conn, self.path, quick=True)
                self._identified = (st.st_dev, st.st_ino)
            conn.execute("BEGIN")
            yield conn
        except PaperStateError as exc:
            raise StateUnavailable(str(exc)) from None
        except sqlite3.Error as exc:
            raise StateUnavailable(f"{self.path}: {exc}") from None
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()


# ---------------------------------------------------------------------- helpers


def dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def where_range(start: int | None, end: int | None, col: str = "hour") -> tuple[str, list[Any]]:
    parts, args = [], []
    if start is not None:
        parts.append(f"{col} >= ?")
        args.append(start)
    if end is not None:
        parts.append(f"{col} <= ?")
        args.append(end)
    return (" WHERE " + " AND ".join(parts) if parts else ""), args


def page(conn: sqlite3.Connection, table: str, where: str, args: list[Any]) -> int:
    return int(conn.execute(f"SELECT COUNT(*) FROM {table}{where}", args).fetchone()[0])


def stage_json(conn: sqlite3.Connection, hour: int, stage: Stage) -> Any:
    row = conn.execute("SELECT payload FROM cycle_stages WHERE hour = ? AND stage = ?", (hour, int(stage))).fetchone()
    return None if row is None else json.loads(row[0])


def view_of(conn: sqlite3.Connection, hour: int, payload_text: str | None) -> dict[str, Any]:
    """The normalised view of one hour (terminal payload over the DECIDED decision)."""
    payload = json.loads(payload_text) if payload_text else None
    decided = stage_json(conn, hour, Stage.DECIDED) or {}
    fetched = stage_json(conn, hour, Stage.FETCHED) or {}
    return hour_view(payload, decided.get("decision"), fetched.get("snapshot"))


def initial_equity(conn: sqlite3.Connection) -> Decimal | None:
    """The run's starting equity: a ``start`` event's ``initial_cash``/``initial_equity``, else the first ledger row."""
    row = conn.execute("SELECT payload FROM audit WHERE kind = 'start' ORDER BY seq LIMIT 1").fetchone()
    if row is not None:
        p = json.loads(row[0])
        for key in ("initial_cash", "initial_equity"):
            if isinstance(p, dict) and num(p.get(key)) is not None:
                return Decimal(str(p[key]))
    first = conn.execute("SELECT equity FROM ledger ORDER BY hour LIMIT 1").fetchone()
    return None if first is None else Decimal(first[0])


def wall_seconds(text: str) -> float | None:
    """Unix seconds of a stored wall time (``2024-01-01T00:00:00Z``, fractions allowed); None if unreadable."""
    try:
        dt = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def latest_closed_bar(now: float) -> int:
    """Open time of the last hourly bar that has closed at wall time ``now``."""
    return (int(now) // HOUR_S) * HOUR_S - HOUR_S


# ---------------------------------------------------------------------- queries


def status(conn: sqlite3.Connection, now: float, stale_after_s: float) -> dict[str, Any]:
    """Equity, PnL, drawdown, ladder, kill switch, last bar, staleness."""
    run_id, first_hour, created_at = conn.execute("SELECT run_id, first_hour, created_at FROM meta").fetchone()
    cash = conn.execute("SELECT cash FROM portfolio").fetchone()[0]
    r = conn.execute(
        "SELECT ladder_level, peak_equity, kill_switch_engaged, kill_switch_trigger, kill_switch_since, halted,"
        " as_of_hour FROM risk_state"
    ).fetchone()
    last_bar, last_terminal = conn.execute("SELECT last_bar, last_terminal_hour FROM cursor").fetchone()
    led = conn.execute("SELECT hour, equity, fees FROM ledger ORDER BY hour DESC LIMIT 1").fetchone()
    fees_total = conn.execute("SELECT fees FROM ledger").fetchall()
    head = conn.execute("SELECT seq, hash FROM audit_head").fetchone()
    last_rec = conn.execute("SELECT wall_time FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    counts = dict(conn.execute("SELECT outcome, COUNT(*) FROM cycles WHERE stage = 6 GROUP BY outcome").fetchall())
    open_cycle = conn.execute("SELECT hour, stage FROM cycles WHERE stage < 6").fetchone()
    equity = dec(led[1]) if led else dec(cash)
    peak = Decimal(r[1])
    init = initial_equity(conn)
    drawdown = float(equity / peak - 1) if equity is not None and peak > 0 else None
    pnl = None if init is None or equity is None else equity - init
    last_write = None if last_rec is None else wall_seconds(last_rec[0])
    age = None if last_write is None else max(0.0, now - last_write)
    behind = None if last_terminal is None else max(0, (latest_closed_bar(now) - int(last_terminal)) // HOUR_S)
    return {
        "run_id": run_id,
        "first_hour": int(first_hour),
        "created_at": created_at,
        "as_of_hour": None if led is None else int(led[0]),
        "as_of": None if led is None else iso(int(led[0])),
        "equity": None if equity is None else str(equity),
        "cash": cash,
        "initial_equity": None if init is None else str(init),
        "pnl": None if pnl is None else str(pnl),
        "pnl_pct": None if pnl is None or not init else float(pnl / init),
        "fees_total": str(sum((Decimal(f[0]) for f in fees_total), Decimal(0))),
        "peak_equity": r[1],
        "drawdown": drawdown,
        "ladder_level": int(r[0]),
        "kill_switch": {
            "engaged": bool(r[2]),
            "trigger": r[3],
            "since": None if r[4] is None else int(r[4]),
            "since_iso": None if r[4] is None else iso(int(r[4])),
        },
        "halted": bool(r[5]),
        "last_bar": None if last_bar is None else int(last_bar),
        "last_bar_iso": None if last_bar is None else iso(int(last_bar)),
        "last_closed_hour": None if last_terminal is None else int(last_terminal),
        "next_hour": int(first_hour) if last_terminal is None else int(last_terminal) + HOUR_S,
        "open_cycle": None if open_cycle is None else {"hour": int(open_cycle[0]), "stage": Stage(open_cycle[1]).name},
        "hours": {k: int(counts.get(k, 0)) for k in OUTCOMES},
        "audit_head": {"seq": int(head[0]), "hash": head[1]},
        "last_write": last_rec[0] if last_rec else None,
        "seconds_since_last_write": age,
        "bars_behind": behind,
        "stale": age is None or age > stale_after_s,
        "stale_after_s": stale_after_s,
        "now": now,
    }


def equity_series(conn: sqlite3.Connection, start: int | None, end: int | None, limit: int,
                  offset: int) -> dict[str, Any]:
    """Per-hour equity, cash, fees and drawdown (from the running peak of the whole curve)."""
    where, args = where_range(start, end)
    total = page(conn, "ledger", where, args)
    rows = conn.execute(
        f"SELECT hour, equity, cash, fees FROM ledger{where} ORDER BY hour LIMIT ? OFFSET ?", [*args, limit, offset]
    ).fetchall()
    peak = -math.inf
    if rows:
        before = conn.execute("SELECT equity FROM ledger WHERE hour < ?", (rows[0][0],)).fetchall()
        peak = max((float(Decimal(e[0])) for e in before), default=-math.inf)
    points = []
    for hour, equity, cash, fees in rows:
        e = float(Decimal(equity))
        peak = max(peak, e)
        points.append({"hour": int(hour), "equity": equity, "equity_value": e, "cash": cash, "fees": fees,
                       "drawdown": e / peak - 1.0 if peak > 0 else 0.0})
    return {"total": total, "offset": offset, "limit": limit, "points": points}


def positions(conn: sqlite3.Connection) -> dict[str, Any]:
    """Current units per asset, valued at the last ledger marks, with their weights."""
    cash = Decimal(conn.execute("SELECT cash FROM portfolio").fetchone()[0])
    units = {a: Decimal(u) for a, u in conn.execute("SELECT asset, units FROM positions ORDER BY asset")}
    led = conn.execute("SELECT hour, equity, marks FROM ledger ORDER BY hour DESC LIMIT 1").fetchone()
    marks = {a: Decimal(m) for a, m in json.loads(led[2]).items()} if led else {}
    equity = Decimal(led[1]) if led else cash
    rows = []
    for a, u in units.items():
        mark = marks.get(a)
        value = None if mark is None else u * mark
        rows.append({"asset": a, "units": str(u), "mark": None if mark is None else str(mark),
                     "value": None if value is None else str(value),
                     "weight": None if value is None or equity <= 0 else float(value / equity)})
    return {"as_of_hour": None if led is None else int(led[0]), "cash": str(cash), "equity": str(equity),
            "cash_weight": None if equity <= 0 else float(cash / equity), "positions": rows}


def allocation(conn: sqlite3.Connection, start: int | None, end: int | None, limit: int,
               offset: int) -> dict[str, Any]:
    """Weights per asset over time (units x mark / equity at each hour's close), and cash."""
    where, args = where_range(start, end)
    total = page(conn, "ledger", where, args)
    rows = conn.execute(
        f"SELECT hour, equity, cash, positions, marks FROM ledger{where} ORDER BY hour LIMIT ? OFFSET ?",
        [*args, limit, offset],
    ).fetchall()
    assets = sorted({a for r in rows for a in json.loads(r[3])})
    hours, cash_w, weights = [], [], {a: [] for a in assets}  # type: ignore[var-annotated]
    for hour, equity, cash, pos, mk in rows:
        e = Decimal(equity)
        units, marks = json.loads(pos), json.loads(mk)
        hours.append(int(hour))
        cash_w.append(None if e <= 0 else float(Decimal(cash) / e))
        for a in assets:
            u, m = units.get(a), marks.get(a)
            weights[a].append(None if u is None or m is None or e <= 0 else float(Decimal(u) * Decimal(m) / e))
    return {"total": total, "offset": offset, "limit": limit, "hours": hours, "assets": assets,
            "weights": weights, "cash": cash_w}


def orders(conn: sqlite3.Connection, start: int | None, end: int | None, status: str | None, limit: int,
           offset: int) -> dict[str, Any]:
    where, args = where_range(start, end)
    if status is not None:
        where += (" AND" if where else " WHERE") + " status = ?"
        args.append(status)
    total = page(conn, "orders", where, args)
    rows = conn.execute(
        "SELECT client_order_id, hour, pair, side, seq, order_type, units, limit_price, status FROM orders"
        f"{where} ORDER BY hour DESC, pair, side, seq LIMIT ? OFFSET ?", [*args, limit, offset]
    ).fetchall()
    keys = ("client_order_id", "hour", "pair", "side", "seq", "order_type", "units", "limit_price", "status")
    return {"total": total, "offset": offset, "limit": limit, "orders": [dict(zip(keys, r, strict=True)) for r in rows]}


def fills(conn: sqlite3.Connection, start: int | None, end: int | None, limit: int, offset: int) -> dict[str, Any]:
    where, args = where_range(start, end, "f.hour")
    total = page(conn, "fills f", where, args)
    rows = conn.execute(
        "SELECT f.client_order_id, f.fill_seq, f.hour, o.pair, o.side, f.price, f.units, f.fee, f.liquidity"
        f" FROM fills f JOIN orders o USING (client_order_id){where}"
        " ORDER BY f.hour DESC, f.client_order_id, f.fill_seq LIMIT ? OFFSET ?", [*args, limit, offset]
    ).fetchall()
    keys = ("client_order_id", "fill_seq", "hour", "pair", "side", "price", "units", "fee", "liquidity")
    return {"total": total, "offset": offset, "limit": limit, "fills": [dict(zip(keys, r, strict=True)) for r in rows]}


class ViewCache:
    """Views of sealed hours, keyed by their terminal record's hash.

    A sealed hour never changes (its record and stage inputs are hash-chained) and the hash
    is unique across runs (the chain starts from the run id), so a view computed once is
    valid for good. Bounded; the oldest entries go first.
    """

    def __init__(self, max_entries: int = 20_000) -> None:
        self.max_entries = max_entries
        self._views: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()  # requests are served from a thread pool

    def get(self, conn: sqlite3.Connection, hour: int, digest: str) -> dict[str, Any]:
        """The view of the sealed hour whose terminal record has hash ``digest`` (treat it as read-only)."""
        with self._lock:
            view = self._views.get(digest)
        if view is None:
            payload = conn.execute("SELECT payload FROM audit WHERE hash = ?", (digest,)).fetchone()[0]
            view = view_of(conn, hour, payload)
            with self._lock:
                while len(self._views) >= self.max_entries:
                    del self._views[next(iter(self._views))]
                self._views[digest] = view
        return view


VIEWS = ViewCache()


def terminal_views(conn: sqlite3.Connection, start: int | None,
                   end: int | None) -> list[tuple[int, str, dict[str, Any]]]:
    """(hour, kind, view) of the closed full cycles in a range, oldest first."""
    where, args = where_range(start, end)
    where += (" AND" if where else " WHERE") + " terminal = 1 AND kind != 'missed'"
    rows = conn.execute(f"SELECT hour, kind, hash FROM audit{where} ORDER BY hour", args).fetchall()
    return [(int(h), k, VIEWS.get(conn, int(h), d)) for h, k, d in rows]


def signals(conn: sqlite3.Connection, scan: int = 48) -> dict[str, Any]:
    """The newest hour's predictions, regime probabilities and proposed/executed weights."""
    rows = conn.execute(
        "SELECT hour, kind, hash FROM audit WHERE terminal = 1 AND kind != 'missed' ORDER BY hour DESC LIMIT ?",
        (scan,),
    ).fetchall()
    latest: dict[str, Any] | None = None
    for hour, kind, digest in rows:
        v = VIEWS.get(conn, int(hour), digest)
        if latest is None:
            latest = {"hour": int(hour), "kind": kind, **v}
        if v["predictions"] or v["regime"]:
            return {**(latest or {}), "signals_hour": int(hour), "predictions": v["predictions"],
                    "regime": v["regime"]}
    return {**(latest or {"hour": None}), "signals_hour": None, "predictions": [], "regime": None}


def interventions(conn: sqlite3.Connection, start: int | None, end: int | None, bucket_hours: int,
                  recent: int) -> dict[str, Any]:
    """Risk interventions counted by rule per time bucket, the newest ones, and risk events."""
    per_hour = [(h, v["interventions"]) for h, _, v in terminal_views(conn, start, end)]
    rules = sorted({iv["rule"] for _, ivs in per_hour for iv in ivs})
    width = bucket_hours * HOUR_S
    buckets = sorted({(h // width) * width for h, _ in per_hour})
    index = {b: i for i, b in enumerate(buckets)}
    counts = {r: [0] * len(buckets) for r in rules}
    flat = []
    for h, ivs in per_hour:
        for iv in ivs:
            counts[iv["rule"]][index[(h // width) * width]] += 1
            flat.append({"hour": h, **iv})
    where, args = where_range(start, end)
    where += (" AND" if where else " WHERE") + " kind IN ('kill_switch', 'reactivate', 'ladder', 'fault')"
    events = [{"seq": int(s), "hour": int(h), "kind": k, "wall_time": w, "payload": json.loads(p)}
              for s, h, k, w, p in conn.execute(f"SELECT seq, hour, kind, wall_time, payload FROM audit{where}"
                                                 " ORDER BY seq", args)]
    return {"bucket_hours": bucket_hours, "buckets": buckets, "rules": rules, "counts": counts,
            "totals": {r: sum(c) for r, c in counts.items()}, "hours_seen": len(per_hour),
            "recent": flat[-recent:][::-1], "events": events}


def confidence(conn: sqlite3.Connection, end: int | None, window_hours: int, bins: int, model: str | None,
               horizon: int | None, asset: str | None) -> dict[str, Any]:
    """Histogram of the (meta-learner's) confidence over the last ``window_hours`` hours up to ``end``."""
    if end is None:
        row = conn.execute("SELECT MAX(hour) FROM audit WHERE terminal = 1").fetchone()
        end = None if row[0] is None else int(row[0])
    values: list[float] = []
    start = None if end is None else end - (window_hours - 1) * HOUR_S
    if end is not None:
        for _, _, v in terminal_views(conn, start, end):
            for rec in v["predictions"]:
                if model is not None and rec["model"] not in (model, None):
                    continue
                if horizon is not None and rec["horizon"] != horizon:
                    continue
                if asset is not None and rec["asset"] != asset:
                    continue
                if rec["confidence"] is not None:
                    values.append(min(1.0, max(0.0, rec["confidence"])))
    edges = [i / bins for i in range(bins + 1)]
    counts = [0] * bins
    for x in values:
        counts[min(bins - 1, int(x * bins))] += 1
    srt = sorted(values)

    def q(p: float) -> float | None:
        return None if not srt else srt[min(len(srt) - 1, int(p * (len(srt) - 1) + 0.5))]

    return {"start": start, "end": end, "window_hours": window_hours, "model": model, "horizon": horizon,
            "asset": asset, "n": len(values), "edges": edges, "counts": counts,
            "mean": None if not values else sum(values) / len(values),
            "quantiles": {"p05": q(0.05), "p50": q(0.5), "p95": q(0.95)}}


def hours(conn: sqlite3.Connection, start: int | None, end: int | None, limit: int, offset: int) -> dict[str, Any]:
    """Closed and open cycles, newest first, with equity and order/fill counts."""
    where, args = where_range(start, end, "c.hour")
    total = page(conn, "cycles c", where, args)
    rows = conn.execute(
        "SELECT c.hour, c.stage, c.outcome, c.seal_hash, l.equity,"
        " (SELECT COUNT(*) FROM orders o WHERE o.hour = c.hour), (SELECT COUNT(*) FROM fills f WHERE f.hour = c.hour)"
        f" FROM cycles c LEFT JOIN ledger l ON l.hour = c.hour{where} ORDER BY c.hour DESC LIMIT ? OFFSET ?",
        [*args, limit, offset],
    ).fetchall()
    return {"total": total, "offset": offset, "limit": limit, "hours": [
        {"hour": int(h), "iso": iso(int(h)), "stage": Stage(s).name, "outcome": o, "seal_hash": sh, "equity": e,
         "n_orders": int(no), "n_fills": int(nf), "audit": f"/api/audit/{int(h)}"}
        for h, s, o, sh, e, no, nf in rows]}


def audit_hour(conn: sqlite3.Connection, hour: int) -> dict[str, Any] | None:
    """Everything recorded for one hour: cycle, stage inputs, audit records (hash re-checked), orders, fills, ledger."""
    cyc = conn.execute("SELECT stage, outcome, seal_hash, updated_at FROM cycles WHERE hour = ?", (hour,)).fetchone()
    recs = conn.execute(
        "SELECT seq, kind, terminal, wall_time, state_hash, payload, prev_hash, hash FROM audit WHERE hour = ?"
        " ORDER BY seq", (hour,)
    ).fetchall()
    if cyc is None and not recs:
        return None
    stages = [
        {"stage": int(s), "name": Stage(s).name, "committed_at": c, "payload_hash": ph, "payload": json.loads(p)}
        for s, p, ph, c in conn.execute(
            "SELECT stage, payload, payload_hash, committed_at FROM cycle_stages WHERE hour = ? ORDER BY stage", (hour,)
        )
    ]
    records = []
    terminal_payload = None
    for seq, kind, term, wall, sh, payload, prev, digest in recs:
        obj = json.loads(payload)
        ok = record_hash(prev, envelope_text(int(seq), hour, kind, wall, sh, obj)) == digest
        records.append({"seq": int(seq), "kind": kind, "terminal": bool(term), "wall_time": wall, "state_hash": sh,
                        "prev_hash": prev, "hash": digest, "hash_ok": ok, "payload": obj})
        if term and kind in TERMINAL_KINDS:
            terminal_payload = payload
    led = conn.execute("SELECT cash, equity, fees, positions, marks FROM ledger WHERE hour = ?", (hour,)).fetchone()
    return {
        "hour": hour,
        "iso": iso(hour),
        "cycle": None if cyc is None else {"stage": Stage(cyc[0]).name, "outcome": cyc[1], "seal_hash": cyc[2],
                                            "updated_at": cyc[3]},
        "stages": stages,
        "records": records,
        "orders": orders(conn, hour, hour, None, 10_000, 0)["orders"],
        "fills": fills(conn, hour, hour, 10_000, 0)["fills"],
        "ledger": None if led is None else {"cash": led[0], "equity": led[1], "fees": led[2],
                                             "positions": json.loads(led[3]), "marks": json.loads(led[4])},
        "view": view_of(conn, hour, terminal_payload),
    }


def metrics_snapshot(conn: sqlite3.Connection, now: float, stale_after_s: float) -> dict[str, float]:
    """The numbers the Prometheus gauges export."""
    s = status(conn, now, stale_after_s)
    return {
        "equity": float(s["equity"]) if s["equity"] is not None else math.nan,
        "drawdown": s["drawdown"] if s["drawdown"] is not None else math.nan,
        "ladder_level": float(s["ladder_level"]),
        "kill_switch": 1.0 if s["kill_switch"]["engaged"] else 0.0,
        "bars_behind": float(s["bars_behind"]) if s["bars_behind"] is not None else math.nan,
        "seconds_since_last_write": s["seconds_since_last_write"] if s["seconds_since_last_write"] is not None
        else math.nan,
        "last_closed_hour": float(s["last_closed_hour"]) if s["last_closed_hour"] is not None else math.nan,
    }
