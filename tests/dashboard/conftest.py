"""Shared fixtures: one synthetic 300-hour run (built once per session) and a server over it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dashboard.fixture import build_state
from tests.dashboard.server import running_dashboard

N_HOURS = 300


@pytest.fixture(scope="session")
def built_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pristine fixture run; tests copy it rather than read it in place."""
    return build_state(tmp_path_factory.mktemp("dash") / "state.db", N_HOURS)


@pytest.fixture
def state_db(built_state: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "state.db"
    shutil.copy(built_state, dst)
    return dst


@pytest.fixture
def server(state_db: Path) -> Iterator[str]:
    with running_dashboard(state_db) as base:
        yield base
