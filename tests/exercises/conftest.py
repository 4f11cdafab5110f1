"""Shared fixtures of the checker's tests: a private progress file, fresh hint counts."""

from __future__ import annotations

import pytest

from resnet_tutorial import exercises as E


@pytest.fixture(autouse=True)
def private_progress(tmp_path, monkeypatch):
    """Every test writes its progress into its own temporary file, never into ~/.cache."""
    path = tmp_path / "progress.json"
    monkeypatch.setenv(E.PROGRESS_ENV, str(path))
    E.reset_hints()
    return path
