"""Building blocks for the lessons' cases: seeded tensors, labels and plain-value cases.

Every builder takes a seed and gives the same values on every call, so a case's
``make()`` is reproducible and the learner's answer can be compared with the
reference's, computed on a fresh copy of the same inputs.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Sequence

import torch

from .catalogue import Case


def generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (the notebook's global stream is never used)."""
    return torch.Generator().manual_seed(seed)


def randn(seed: int, *shape: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Standard normal values (float64 unless ``dtype`` says otherwise)."""
    return torch.randn(*shape, generator=generator(seed), dtype=dtype)


def f32(seed: int, *shape: int) -> torch.Tensor:
    """Standard normal float32 values."""
    return randn(seed, *shape, dtype=torch.float32)


def tensor(values: Sequence[float], dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A 1-D tensor of ``values`` (float64 unless ``dtype`` says otherwise)."""
    return torch.tensor(values, dtype=dtype)


def uint8(seed: int, *shape: int) -> torch.Tensor:
    """Random pixels 0..255."""
    return torch.randint(0, 256, shape, generator=generator(seed), dtype=torch.uint8)


def labels(seed: int, n: int, classes: int = 3) -> torch.Tensor:
    """``n`` random class indices below ``classes`` (int64)."""
    return torch.randint(0, classes, (n,), generator=generator(seed))


def plain_case(label: str, *args: Any, run: Callable[..., Any] | None = None, **kwargs: Any) -> Case:
    """A case whose arguments are plain values (deep-copied for every run)."""
    return Case(label, lambda: (copy.deepcopy(args), copy.deepcopy(kwargs)), run)
