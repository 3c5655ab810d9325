"""Fixtures shared by every test module."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearbench.data.synth import synthesize


@pytest.fixture(scope="session")
def mini_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CLEAR-mini folder (10 persons), generated once per test session (~0.3 s)."""
    return synthesize(tmp_path_factory.mktemp("clear-mini") / "data", persons=10)
