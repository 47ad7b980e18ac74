"""Mutation testing of the money and risk code (issue 8): apply one mutant, run its tests, restore.

Each mutant in ``tests/mutation/mutants.toml`` is one (or, for a rule written in twins, a
few) exact textual edit(s) of ``envs/execution``, ``envs/kraken_spot.py`` or ``risk/``, with
the tests that should notice it. For every mutant the harness writes the edit(s) into the
working tree, runs ``python -m pytest -x -q -p no:randomly -m MARKERS <tests>`` with a
timeout, and restores every edited file byte for byte (checked by SHA-256; the original
mtime is put back too, so numba's and Python's caches of the original stay valid). A
journal file (``.mutation-journal.json``) holds the originals while a mutant is applied; a
run that was killed half-way restores from it at the next start.

Usage (from the repository root):

    python scripts/mutation.py [--exclude-equivalence] [--only PATTERN] [--out FILE]
                               [--timeout S] [--reuse-killed FILE] [--no-baseline]
    python scripts/mutation.py --list | --check
    python scripts/mutation.py --combine NO_EQ.json WITH_EQ.json --out docs/mutation/before

``--exclude-equivalence`` adds ``-m "not equivalence"``: the twin-equivalence tests
(kernel vs numpy reference vs Decimal reference, vector vs single env, all marked
``@pytest.mark.equivalence``) do not run, so only behavioural tests can kill. ``--only``
selects mutant ids by glob (a plain word matches as a substring; commas separate several).
``--out FILE`` writes FILE.json and FILE.md (default ``docs/mutation/run``).

Outcomes: ``killed`` (a test failed or errored; the first one is the ``killer``),
``survived`` (all selected tests passed), ``timeout`` (the tests ran past ``--timeout``:
counted as killed, since a hang is noticed too, and listed apart), ``stale`` (an original
snippet no longer occurs exactly once, or a test file is gone: not run, not counted, listed).
Score = (killed + timeout) / (mutants run). Mutants marked ``twin = "reference-only"``
change code the env never executes (the numpy or Decimal reference); only equivalence
tests can kill them, so the report also gives the score without them.

``--reuse-killed FILE`` (for the run *with* the equivalence tests after one without):
a mutant that FILE reports killed, with the same edits on the same source (file hashes)
and a test selection that is a subset of this run's, is killed here too (tests are
deterministic: hypothesis runs derandomised), so it is copied, not rerun. The recommended
pair of runs is therefore:

    python scripts/mutation.py --exclude-equivalence --out docs/mutation/after-no-equivalence
    python scripts/mutation.py --reuse-killed docs/mutation/after-no-equivalence.json \\
        --out docs/mutation/after-with-equivalence
    python scripts/mutation.py --combine docs/mutation/after-no-equivalence.json \\
        docs/mutation/after-with-equivalence.json --out docs/mutation/after

numba: the kernels are compiled with ``cache=True`` and numba's cache is keyed by the
source file's stamp, not by what it imports (``risk/kernels.py`` inlines a function of
``envs/execution/kernels.py``). A mutant that edits a kernel file therefore runs with a
fresh, empty ``NUMBA_CACHE_DIR`` (every kernel it touches compiles from the mutated
source: ~15-60 s); other mutants share one cache directory for the whole run.
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MUTANTS_FILE = ROOT / "tests" / "mutation" / "mutants.toml"
JOURNAL = ".mutation-journal.json"
KERNEL_FILES = frozenset({"envs/execution/kernels.py", "risk/kernels.py"})
DEFAULT_TIMEOUT = 600.0
STALE_LIMIT = 0.20  # the mutant list needs maintenance when more than this share is stale
MARKERS = {False: "not slow", True: "not slow and not equivalence"}
_SUMMARY = re.compile(r"^(FAILED|ERROR) (\S+)(?: - (.*))?$")


@dataclass(frozen=True)
class Edit:
    file: str  # relative to the repository root
    old: str  # must occur exactly once in the file
    new: str


@dataclass(frozen=True)
class Mutant:
    id: str
    description: str
    kind: str  # comparison, swap, off_by_one, dropped_update, sign, removed_guard, constant, ...
    twin: str  # single | kernel | reference-only | both (every twin of the rule edited)
    edits: tuple[Edit, ...]
    tests: tuple[str, ...]  # pytest node ids / files, run in this order

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e.file for e in self.edits))


@dataclass
class Result:
    id: str
    description: str
    kind: str
    twin: str
    files: list[str]
    tests: list[str]
    status: str  # killed | survived | timeout | stale | error
    killer: str = ""
    message: str = ""
    rc: int | None = None
    seconds: float = 0.0
    source_sha256: dict[str, str] = field(default_factory=dict)
    edits_sha256: str = ""
    reused: bool = False


# ---------------------------------------------------------------- mutant list
def load_mutants(path: Path = MUTANTS_FILE) -> list[Mutant]:
    """The mutants of ``path``; ``@name`` in a test list expands to the ``[suites]`` entry."""
    with path.open("rb") as fh:
        doc = tomllib.load(fh)
    suites: dict[str, list[str]] = doc.get("suites", {})
    out, seen = [], set()
    for raw in doc.get("mutant", []):
        tests: list[str] = []
        for t in raw["tests"]:
            if t.startswith("@"):
                if t[1:] not in suites:
                    raise ValueError(f"{path}: mutant {raw['id']}: unknown suite {t!r}")
                tests += suites[t[1:]]
            else:
                tests.append(t)
        edits = tuple(Edit(e["file"], e["old"], e["new"]) for e in raw["edit"])
        if not edits or any(e.old == e.new for e in edits):
            raise ValueError(f"{path}: mutant {raw['id']}: expected edits that change something")
        if raw["id"] in seen:
            raise ValueError(f"{path}: duplicate mutant id {raw['id']!r}")
        seen.add(raw["id"])
        out.append(
            Mutant(raw["id"], raw["description"], raw["kind"], raw.get("twin", "single"), edits,
                   tuple(dict.fromkeys(tests)))
        )
    return out


def stale_reasons(mutant: Mutant, root: Path = ROOT) -> list[str]:
    """Why ``mutant`` cannot be applied to the tree at ``root`` ([] when it can)."""
    why = []
    texts: dict[str, str] = {}
    for e in mutant.edits:
        p = root / e.file
        if not p.is_file():
            why.append(f"{e.file}: file missing")
            continue
        text = texts.setdefault(e.file, p.read_text(encoding="utf-8"))
        n = text.count(e.old)
        if n != 1:
            why.append(f"{e.file}: snippet {e.old.strip()[:60]!r} occurs {n} times (expected once)")
        else:
            texts[e.file] = text.replace(e.old, e.new, 1)  # later edits of the same file see this one
    for t in mutant.tests:
        if not (root / t.split("::", 1)[0]).is_file():
            why.append(f"test file {t.split('::', 1)[0]} missing")
    return why


def select(mutants: Sequence[Mutant], pattern: str | None) -> list[Mutant]:
    if not pattern:
        return list(mutants)
    pats = [p.strip() for p in pattern.split(",") if p.strip()]
    globs = [p if any(c in p for c in "*?[") else f"*{p}*" for p in pats]
    return [m for m in mutants if any(fnmatch.fnmatchcase(m.id, g) for g in globs)]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def edits_digest(mutant: Mutant) -> str:
    return sha256(json.dumps([asdict(e) for e in mutant.edits], sort_keys=True).encode())


# ------------------------------------------------------------ apply / restore
def recover(root: Path = ROOT) -> list[str]:
    """Restore files left mutated by an interrupted run (from the journal); returns their paths."""
    journal = root / JOURNAL
    if not journal.exists():
        return []
    entries = json.loads(journal.read_text())
    for rel, e in entries.items():
        _write_back(root / rel, base64.b64decode(e["data"]), e["mtime_ns"], e["atime_ns"], e["sha256"])
    journal.unlink()
    return sorted(entries)


def _write_back(path: Path, data: bytes, mtime_ns: int, atime_ns: int, digest: str) -> None:
    path.write_bytes(data)
    os.utime(path, ns=(atime_ns, mtime_ns))
    if sha256(path.read_bytes()) != digest:
        raise RuntimeError(f"mutation harness: {path} was not restored byte for byte")


@contextmanager
def mutated(mutant: Mutant, root: Path = ROOT) -> Iterator[dict[str, str]]:
    """Apply ``mutant`` inside the block; every edited file is restored (and verified) on exit.

    Yields the SHA-256 of each original file. Raises ValueError (nothing written) if a
    snippet does not occur exactly once.
    """
    why = [w for w in stale_reasons(mutant, root) if not w.startswith("test file")]
    if why:
        raise ValueError(f"mutant {mutant.id} is stale: {'; '.join(why)}")
    originals: dict[str, tuple[bytes, os.stat_result]] = {}
    for rel in mutant.files:
        p = root / rel
        originals[rel] = (p.read_bytes(), p.stat())
    journal = root / JOURNAL
    journal.write_text(json.dumps({
        rel: {"data": base64.b64encode(data).decode(), "mtime_ns": st.st_mtime_ns, "atime_ns": st.st_atime_ns,
              "sha256": sha256(data)}
        for rel, (data, st) in originals.items()
    }))
    try:
        texts = {rel: data.decode("utf-8") for rel, (data, _) in originals.items()}
        for e in mutant.edits:
            texts[e.file] = texts[e.file].replace(e.old, e.new, 1)
        for rel, text in texts.items():
            (root / rel).write_bytes(text.encode("utf-8"))
        yield {rel: sha256(data) for rel, (data, _) in originals.items()}
    finally:
        for rel, (data, st) in originals.items():
            _write_back(root / rel, data, st.st_mtime_ns, st.st_atime_ns, sha256(data))
        journal.unlink(missing_ok=True)


# -------------------------------------------------------------------- running
def pytest_command(tests: Sequence[str], exclude_equivalence: bool) -> list[str]:
    return [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly", "-m", MARKERS[exclude_equivalence],
            *tests]


def run_tests(
    tests: Sequence[str], exclude_equivalence: bool, timeout: float, env: dict[str, str], root: Path = ROOT
) -> tuple[str, str, str, int | None, str]:
    """Run the tests once: (status, killer, message, returncode, output tail)."""
    cmd = pytest_command(tests, exclude_equivalence)
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the pytest process we started and its children
        out, _ = proc.communicate()
        return "timeout", "", f"tests ran past {timeout:.0f} s", None, out[-4000:]
    rc = proc.returncode
    if rc == 0:
        return "survived", "", "", rc, out[-4000:]
    if rc == 5:  # nothing collected (e.g. every selected test is an equivalence test)
        return "survived", "", "no tests selected", rc, out[-4000:]
    killer, message = "", ""
    for line in out.splitlines():
        m = _SUMMARY.match(line.strip())
        if m:
            killer, message = m.group(2), (m.group(3) or "")[:300]
            break
    if not message:  # the first assertion line of the traceback
        message = next((ln[1:].strip()[:300] for ln in out.splitlines() if ln.startswith("E ")), "")
    if not killer:
        killer = f"pytest exit code {rc}" + (" (crash)" if rc < 0 else "")
        message = out.strip().splitlines()[-1][:300] if out.strip() else ""
    return "killed", killer, message, rc, out[-4000:]


def subprocess_env(numba_cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # never leave a mutant's .pyc behind
    env["NUMBA_CACHE_DIR"] = str(numba_cache)
    return env


def run_mutant(
    mutant: Mutant,
    *,
    exclude_equivalence: bool,
    timeout: float = DEFAULT_TIMEOUT,
    cache_root: Path,
    root: Path = ROOT,
    log: Any = None,
) -> Result:
    """Apply, test, restore one mutant; never leaves the tree changed."""
    res = Result(mutant.id, mutant.description, mutant.kind, mutant.twin, list(mutant.files), list(mutant.tests),
                 status="stale", edits_sha256=edits_digest(mutant))
    why = stale_reasons(mutant, root)
    if why:
        res.message = "; ".join(why)
        return res
    fresh = any(f in KERNEL_FILES for f in mutant.files)
    cache = Path(tempfile.mkdtemp(prefix=f"numba-{mutant.id}-", dir=cache_root)) if fresh else cache_root / "shared"
    t0 = time.perf_counter()
    try:
        with mutated(mutant, root) as hashes:
            res.source_sha256 = hashes
            status, killer, message, rc, tail = run_tests(mutant.tests, exclude_equivalence, timeout,
                                                          subprocess_env(cache), root)
    finally:
        if fresh:
            shutil.rmtree(cache, ignore_errors=True)
    res.status, res.killer, res.message, res.rc = status, killer, message, rc
    res.seconds = round(time.perf_counter() - t0, 1)
    if log is not None:
        log.write(f"\n===== {mutant.id}: {status} {killer} ({res.seconds} s)\n{tail}\n")
        log.flush()
    return res


# -------------------------------------------------------------------- reports
def score(results: Sequence[dict[str, Any]], *, shipping_only: bool = False) -> dict[str, Any]:
    rs = [r for r in results if r["status"] != "stale" and not (shipping_only and r["twin"] == "reference-only")]
    killed = sum(r["status"] in ("killed", "timeout") for r in rs)
    return {"killed": killed, "run": len(rs), "score": round(killed / len(rs), 4) if rs else None}


def git_commit(root: Path = ROOT) -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        return done.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def markdown(report: dict[str, Any]) -> str:
    rs = report["results"]
    s, ship = report["score"], report["score_shipping"]
    lines = [
        f"# Mutation run: {report['mode']}",
        "",
        f"- commit `{report['commit']}`, {report['started']} -> {report['finished']} "
        f"({report['seconds'] / 60:.1f} min), timeout {report['timeout_s']:.0f} s per mutant",
        f"- pytest markers: `-m \"{report['markers']}\"`",
        f"- mutants: {len(rs)}; run {s['run']}; stale {sum(r['status'] == 'stale' for r in rs)}",
        f"- **score {s['killed']}/{s['run']} = {_pct(s['score'])}**; without the reference-only mutants "
        f"{ship['killed']}/{ship['run']} = {_pct(ship['score'])}",
        f"- timeouts (counted as killed): {sum(r['status'] == 'timeout' for r in rs)}",
        "",
        "| id | twin | kind | files | status | killer | s | description |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rs:
        killer = r["killer"] + (" (reused)" if r.get("reused") else "")
        lines.append(
            f"| {r['id']} | {r['twin']} | {r['kind']} | {_cell(', '.join(r['files']))} | {r['status']} | "
            f"{_cell(killer)} | {r['seconds']} | {_cell(r['description'])} |"
        )
    surv = [r for r in rs if r["status"] == "survived"]
    lines += ["", f"## Survivors ({len(surv)})", ""]
    lines += [f"- `{r['id']}` ({r['twin']}): {r['description']}" for r in surv] or ["none"]
    stale = [r for r in rs if r["status"] == "stale"]
    if stale:
        lines += ["", f"## Stale ({len(stale)})", ""] + [f"- `{r['id']}`: {r['message']}" for r in stale]
    return "\n".join(lines) + "\n"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def combine(no_eq: dict[str, Any], with_eq: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """One report of a run without and one with the equivalence tests (same mutant list)."""
    by_id = {r["id"]: r for r in with_eq["results"]}
    lines = [
        "# Mutation score: behavioural tests only vs with the twin-equivalence tests",
        "",
        f"- commit `{no_eq['commit']}` (with equivalence: `{with_eq['commit']}`)",
        f"- without equivalence tests: **{no_eq['score']['killed']}/{no_eq['score']['run']} = "
        f"{_pct(no_eq['score']['score'])}** (without the reference-only mutants "
        f"{no_eq['score_shipping']['killed']}/{no_eq['score_shipping']['run']} = "
        f"{_pct(no_eq['score_shipping']['score'])})",
        f"- with equivalence tests: **{with_eq['score']['killed']}/{with_eq['score']['run']} = "
        f"{_pct(with_eq['score']['score'])}** (without the reference-only mutants "
        f"{with_eq['score_shipping']['killed']}/{with_eq['score_shipping']['run']} = "
        f"{_pct(with_eq['score_shipping']['score'])})",
        f"- run times: {no_eq['seconds'] / 60:.1f} min and {with_eq['seconds'] / 60:.1f} min",
        "",
        "| id | twin | kind | files | no equivalence | killer | with equivalence | killer | description |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in no_eq["results"]:
        w = by_id.get(r["id"], {"status": "missing", "killer": ""})
        wk = w["killer"] + (" (reused)" if w.get("reused") else "")
        lines.append(
            f"| {r['id']} | {r['twin']} | {r['kind']} | {_cell(', '.join(r['files']))} | {r['status']} | "
            f"{_cell(r['killer'])} | {w['status']} | {_cell(wk)} | {_cell(r['description'])} |"
        )
    only_eq = [r["id"] for r in no_eq["results"]
               if r["status"] == "survived" and by_id.get(r["id"], {}).get("status") in ("killed", "timeout")]
    both = [r["id"] for r in no_eq["results"]
            if r["status"] == "survived" and by_id.get(r["id"], {}).get("status") == "survived"]
    lines += ["", f"Killed only by the equivalence tests ({len(only_eq)}): " + ", ".join(f"`{i}`" for i in only_eq),
              "", f"Survived both runs ({len(both)}): " + ", ".join(f"`{i}`" for i in both), ""]
    return {"no_equivalence": no_eq, "with_equivalence": with_eq, "killed_only_by_equivalence": only_eq,
            "survived_both": both}, "\n".join(lines)


# ----------------------------------------------------------------------- main
def _reusable(prev: dict[str, Any] | None, mutant: Mutant, exclude_equivalence: bool) -> dict[str, Any] | None:
    """The previous result of ``mutant`` if it was killed under a subset of this run's tests."""
    if prev is None:
        return None
    if prev.get("exclude_equivalence") is not True and exclude_equivalence:
        return None  # the previous run had more tests than this one
    r = next((r for r in prev["results"] if r["id"] == mutant.id), None)
    if r is None or r["status"] not in ("killed", "timeout") or r["edits_sha256"] != edits_digest(mutant):
        return None
    if r["tests"] != list(mutant.tests):
        return None
    for rel, digest in r["source_sha256"].items():
        if sha256((ROOT / rel).read_bytes()) != digest:
            return None
    return r


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--exclude-equivalence", action="store_true", help='add -m "not equivalence"')
    ap.add_argument("--only", help="glob(s) on mutant ids, comma-separated; a plain word matches as a substring")
    ap.add_argument("--out", default="docs/mutation/run", help="writes OUT.json and OUT.md")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per mutant (default 600)")
    ap.add_argument("--reuse-killed", type=Path, help="JSON of an earlier run: copy its kills (see the docstring)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the check that the tests pass unmutated")
    ap.add_argument("--mutants", type=Path, default=MUTANTS_FILE)
    ap.add_argument("--list", action="store_true", help="print the mutants and exit")
    ap.add_argument("--check", action="store_true", help="report stale mutants; exit 1 if more than 20%% are")
    ap.add_argument("--combine", nargs=2, type=Path, metavar=("NO_EQ_JSON", "WITH_EQ_JSON"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out = out if out.is_absolute() else ROOT / out
    out = out.with_suffix("") if out.suffix in (".json", ".md") else out

    if args.combine:
        both, md = combine(json.loads(args.combine[0].read_text()), json.loads(args.combine[1].read_text()))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(both, indent=1) + "\n")
        out.with_suffix(".md").write_text(md)
        print(f"outputs: {out.with_suffix('.md')} {out.with_suffix('.json')}")
        return 0

    restored = recover()
    if restored:
        print(f"restored files left mutated by an interrupted run: {restored}", file=sys.stderr)
    mutants = select(load_mutants(args.mutants), args.only)
    if args.list or args.check:
        stale = 0
        for m in mutants:
            why = stale_reasons(m)
            stale += bool(why)
            if args.list or why:
                print(f"{m.id:8s} {m.twin:14s} {m.kind:15s} {','.join(m.files):40s} "
                      f"{'STALE: ' + '; '.join(why) if why else m.description}")
        print(f"{len(mutants)} mutants, {stale} stale")
        return 1 if args.check and stale > STALE_LIMIT * len(mutants) else 0
    if not mutants:
        print(f"no mutant matches {args.only!r}", file=sys.stderr)
        return 2

    from tqdm import tqdm

    prev = json.loads(args.reuse_killed.read_text()) if args.reuse_killed else None
    out.parent.mkdir(parents=True, exist_ok=True)
    cache_root = Path(tempfile.mkdtemp(prefix="mutation-numba-"))
    started, t0 = datetime.now(UTC).isoformat(timespec="seconds"), time.perf_counter()
    report: dict[str, Any] = {
        "mode": "without equivalence tests" if args.exclude_equivalence else "with equivalence tests",
        "exclude_equivalence": args.exclude_equivalence,
        "markers": MARKERS[args.exclude_equivalence],
        "commit": git_commit(),
        "started": started,
        "timeout_s": args.timeout,
        "python": sys.version.split()[0],
        "results": [],
    }
    log = out.with_suffix(".log").open("w")
    try:
        if not args.no_baseline:
            union = list(dict.fromkeys(t for m in mutants if not stale_reasons(m) for t in m.tests))
            print(f"baseline: {len(union)} test paths on the unmutated tree ...", file=sys.stderr)
            status, killer, message, rc, tail = run_tests(union, args.exclude_equivalence, 3 * args.timeout,
                                                          subprocess_env(cache_root / "shared"))
            log.write(f"===== baseline: {status} {killer}\n{tail}\n")
            if status != "survived" or rc != 0:
                print(f"baseline failed ({status}: {killer} {message}): fix the tests first", file=sys.stderr)
                return 3
        counts = {"killed": 0, "survived": 0, "timeout": 0, "stale": 0}
        bar = tqdm(mutants, unit="mutant", dynamic_ncols=True, mininterval=0)
        for m in bar:
            bar.set_description(m.id)
            old = _reusable(prev, m, args.exclude_equivalence)
            if old is not None:
                res = Result(**{**old, "reused": True})
            else:
                res = run_mutant(m, exclude_equivalence=args.exclude_equivalence, timeout=args.timeout,
                                 cache_root=cache_root, log=log)
            counts[res.status] = counts.get(res.status, 0) + 1
            bar.set_postfix(counts)
            report["results"].append(asdict(res))
            _write(out, report, t0)  # after every mutant: an interrupted run keeps what it measured
            tqdm.write(f"{m.id:8s} {res.status:8s} {res.seconds:6.1f}s {res.killer}", file=sys.stderr)
    finally:
        log.close()
        shutil.rmtree(cache_root, ignore_errors=True)
    _write(out, report, t0)
    s = report["score"]
    print(f"score {s['killed']}/{s['run']} = {_pct(s['score'])} ({report['mode']})")
    print(f"outputs: {out.with_suffix('.md')} {out.with_suffix('.json')}")
    return 0


def _write(out: Path, report: dict[str, Any], t0: float) -> None:
    report["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["seconds"] = round(time.perf_counter() - t0, 1)
    report["score"] = score(report["results"])
    report["score_shipping"] = score(report["results"], shipping_only=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(report))


if __name__ == "__main__":
    sys.exit(main())
