"""Shared fixtures: the real-data directory and common helpers.

Tests that need ``../shared/data/real`` use the ``real_data`` fixture. It skips
with a clear reason when the directory is absent, and fails instead when
``CI=true`` (CI always has it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REAL_DATA = REPO.parent / "shared" / "data" / "real"


def in_ci() -> bool:
    """True when running under CI, where every optional dependency must be present."""
    return os.environ.get("CI", "").lower() == "true"


def need(condition: bool, reason: str) -> None:
    """Skip (locally) or fail (under CI=true) when ``condition`` is false."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Path to ../shared/data/real; skip locally or fail in CI when absent."""
    need(REAL_DATA.is_dir(), f"real data not found at {REAL_DATA} (clone ../shared beside the repo)")
    return REAL_DATA
