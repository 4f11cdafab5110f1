"""Evaluating a model without changing it: eval mode for a while, then each module's own mode back.

``model.eval()`` followed by ``model.train(was_training)`` is the usual idiom, and it is wrong
for a deliberately mixed model: a BatchNorm frozen in eval mode inside a training model (as
fine-tuning with frozen statistics does) comes back in training mode and its running
statistics start to move. :func:`frozen` restores every module's own flag instead. Used by
``train.evaluate`` and by the ``diagnostics`` measurements (shapes, FLOPs, summaries).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn as nn

__all__ = ["frozen"]


@contextlib.contextmanager
def frozen(model: nn.Module) -> Iterator[None]:
    """Eval mode + no_grad for the duration, then every module's own mode back.

    Eval mode keeps BatchNorm's running statistics untouched and lets batch-1
    inputs through; restoring per module keeps a deliberately mixed setup
    (e.g. frozen BN inside a training model) intact, also when the block raises.
    """
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, training in modes.items():
            m.training = training
