"""What the pipeline claims on markets whose truth is known (slow: `make test-slow`).

- On the null market (no planted edge, no regime drift: log prices are martingales) the
  trained policies must not claim significance: probabilistic Sharpe ratio below 0.95.
  This is the test that fails if the pipeline reports an edge on noise (a leak, a
  look-ahead, an evaluation on training data).
- On the planted-edge market the same pipeline, same budget, finds it: the hierarchical
  policy's probabilistic Sharpe ratio is above 0.95 out of sample, after fees.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agents.pipeline_helpers import compose_config
from tests.conftest import load_script

EVAL = ["eval.start=2022-10-01T00:00:00Z", "eval.end=2022-12-31T23:00:00Z"]


def _run(tmp: Path, data: str) -> dict:  # type: ignore[type-arg]
    common = ["mlflow.enabled=false", "tensorboard=false", "progress=false", f"cache_dir={tmp / 'cache'}",
              "n_boot=200", "report=false"]
    cfg = compose_config("run", [f"data={data}", "stages=[train,evaluate]", *EVAL, *common])
    done = load_script("run").main_job(cfg, tmp / "out")
    return done["evaluate"]  # type: ignore[no-any-return]


@pytest.mark.slow
def test_null_market_policies_claim_no_significance(tmp_path: Path) -> None:
    doc = _run(tmp_path, "synthetic_null")
    for name in ("policy", "flat_ppo"):
        psr = doc["strategies"][name]["probabilistic_sharpe"]
        assert psr is None or psr < 0.95, (name, psr)


@pytest.mark.slow
def test_planted_edge_is_found_out_of_sample_after_fees(tmp_path: Path) -> None:
    doc = _run(tmp_path, "synthetic_edge")
    assert doc["strategies"]["policy"]["probabilistic_sharpe"] > 0.95
    assert doc["strategies"]["policy"]["fees_paid"] > 0
