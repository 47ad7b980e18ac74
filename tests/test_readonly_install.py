"""`import envs, risk` and a risk-wrapped env step work from a read-only install where numba
finds no cache location (issue 15, item 3).

numba raises at decoration time (``cannot cache function ...: no locator available``) when
neither the package's ``__pycache__`` nor the user-wide cache (``$HOME/.cache/numba``) is
writable and ``NUMBA_CACHE_DIR`` is unset; `envs.numba_utils.njit` then compiles without a
cache. Root ignores permission bits, so the read-only install is real: a copy of the
packages and of ``$HOME`` under a read-only bind mount inside a private mount namespace
(``unshare --map-root-user -m``, which works for root and for other users). Where that mechanism is missing (no ``unshare``, no right to create a
namespace) the test fails and says why; it never skips silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("envs", "risk", "krakenrl")

SCRIPT = textwrap.dedent(
    """
    import os, sys
    assert "NUMBA_CACHE_DIR" not in os.environ
    import numba.core.config as cfg
    assert not cfg.CACHE_DIR, cfg.CACHE_DIR
    import envs, risk
    here = os.path.dirname(os.path.dirname(envs.__file__))
    assert here == sys.argv[1] and os.path.dirname(os.path.dirname(risk.__file__)) == here, (envs.__file__, here)
    try:
        open(os.path.join(here, "envs", "probe"), "w")
    except OSError as exc:
        print("read-only:", exc.errno)
    else:
        raise SystemExit("the install is writable: the test proves nothing")
    import numpy as np
    from risk.kernels import clip_action, pwsum
    assert pwsum(np.arange(300.0)) == np.arange(300.0).sum() and clip_action(np.array([2.0]), np.empty(1)) == 1.0
    print("kernels run")
    if sys.argv[2] == "import":
        raise SystemExit(0)
    from envs.data.synthetic import generate_synthetic_market
    from envs.kraken_spot import KrakenSpotEnv
    from risk import RiskWrapper
    market = generate_synthetic_market(("BTC", "ETH", "SOL"), n_bars=400, seed=3)
    env = RiskWrapper(KrakenSpotEnv(market, window=24, episode_hours=50, start_mode="fixed"), "spec_a")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(5):
        obs, reward, term, trunc, info = env.step(rng.uniform(-1, 1, env.action_space.shape))
    assert np.isfinite(reward) and "executed" in info["risk"]
    print("stepped", info["risk"]["t"])
    """
)

# inside the namespace: make the tree read-only, then run python there ($1 tree, $2 python, $3 script)
MOUNT = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && cd "$1" && exec "$2" -c "$3" "$1/site" "$4"'


def _read_only_tree(tmp: Path) -> Path:
    tree = tmp / "ro"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tree / "site" / pkg, ignore=ignore)
    (tree / "home").mkdir()
    return tree


def _run(tree: Path, what: str) -> subprocess.CompletedProcess[str]:
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.fail("unshare (util-linux) is not installed: cannot build the read-only install this test needs")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "XDG_", "PYTHON"))}
    env.update(HOME=str(tree / "home"), PYTHONPATH=str(tree / "site"))
    # --map-root-user: a user namespace too, so that a non-root user may create the mount namespace
    cmd = [unshare, "--map-root-user", "-m", "--propagation", "private",
           "sh", "-c", MOUNT, "sh", str(tree), sys.executable, SCRIPT, what]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if "unshare failed" in done.stderr or "mount:" in done.stderr:
        pytest.fail(f"cannot create a read-only bind mount here (needs root or user namespaces): {done.stderr[-500:]}")
    return done


def _check(done: subprocess.CompletedProcess[str], tmp_path: Path) -> None:
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "read-only: 30" in done.stdout  # EROFS: the copy really is read-only
    assert "kernels run" in done.stdout
    assert "compiling without cache" in done.stderr  # numba found no cache location: the fallback ran
    assert not list(tmp_path.rglob("*.nbi")), "numba wrote a cache index into the read-only tree"


def test_import_envs_and_risk_from_a_read_only_install_without_numba_cache(tmp_path: Path) -> None:
    """The import (where numba used to raise for `risk.kernels`) and two small risk kernels."""
    _check(_run(_read_only_tree(tmp_path), "import"), tmp_path)


@pytest.mark.slow
def test_risk_wrapped_env_step_from_a_read_only_install_without_numba_cache(tmp_path: Path) -> None:
    """A whole step: every env and risk kernel compiles without a cache (~1-2 min on 2 cores)."""
    done = _run(_read_only_tree(tmp_path), "step")
    _check(done, tmp_path)
    assert "stepped" in done.stdout
