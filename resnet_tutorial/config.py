"""Run-time settings shared by the lessons.

FAST mode (``RESNET_TUTORIAL_FAST=1``) shrinks subsets and epochs so that the
whole lesson series executes headless in CI on two CPU cores. Lessons read it
through :func:`pick` so that the full and the fast value sit side by side.
"""

from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")

FAST_ENV = "RESNET_TUTORIAL_FAST"


def is_fast() -> bool:
    """True when the environment asks for FAST mode (``RESNET_TUTORIAL_FAST=1``)."""
    return os.environ.get(FAST_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def pick(full: T, fast: T) -> T:
    """Return ``fast`` in FAST mode, else ``full``: ``epochs = pick(10, 1)``."""
    return fast if is_fast() else full
