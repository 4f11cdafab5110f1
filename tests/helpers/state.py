"""Check that a call leaves a model, and the process's random and grad state, exactly as it was.

Several library functions promise to *look at* a model without changing it
(``count_flops``, ``trace_shapes``, ``grad_norms``, ``evaluate``, the exercise
``check``). A promise like that is broken by one forgotten ``model.eval()`` /
``torch.no_grad()`` guard, and the damage (BatchNorm running statistics moved by
a random batch, a model left in eval mode, the notebook's random stream
advanced) shows nowhere in the function's return value. So compare *everything*
before and after::

    from helpers.state import assert_untouched

    result = assert_untouched(lambda: count_flops(model, (2, 3, 32, 32)), model)

Compared: every parameter and buffer bit for bit (BatchNorm's running mean,
variance and batch counter included), ``requires_grad``, each parameter's
``.grad`` (unless ``grads=False``, for a function that keeps gradients on
purpose), every submodule's train/eval flag, the forward/backward hooks, the
global torch / numpy / ``random`` generators and grad mode.
"""

from __future__ import annotations

import random
from typing import Any, Callable, TypeVar

import numpy as np
import torch
from torch import nn

T = TypeVar("T")


def snapshot(model: nn.Module, grads: bool = True) -> dict[str, Any]:
    """Everything about ``model`` that a read-only function must leave unchanged."""
    return {
        "tensors": {f"param:{n}": p.detach().clone() for n, p in model.named_parameters()}
        | {f"buffer:{n}": b.detach().clone() for n, b in model.named_buffers()},
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "grads": {n: None if p.grad is None else p.grad.detach().clone() for n, p in model.named_parameters()}
        if grads else {},
        "training": {n or "<root>": m.training for n, m in model.named_modules()},
        "hooks": {
            n or "<root>": (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
            for n, m in model.named_modules()
        },
    }


def _numpy_state() -> tuple:
    """numpy's global generator state, comparable with ==: (key bytes, position, has_gauss, cached gaussian)."""
    _, key, pos, has_gauss, cached = np.random.get_state()
    return key.tobytes(), int(pos), int(has_gauss), float(cached)


def global_state() -> dict[str, Any]:
    """The process-wide state a notebook cell would notice: random generators and grad mode."""
    return {
        "torch_rng": torch.get_rng_state(),
        # the whole Mersenne Twister state: the key array alone changes only every 624 draws, the position every draw
        "numpy_rng": _numpy_state(),
        "python_rng": random.getstate(),
        "grad_enabled": torch.is_grad_enabled(),
    }


def _same_tensor(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    if a is None or b is None:
        return a is b
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.is_floating_point():
        return bool(torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(0.0), b.nan_to_num(0.0)))
    return bool(torch.equal(a, b))


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Human-readable list of what changed between two :func:`snapshot` results."""
    out = []
    for key in sorted(set(before["tensors"]) | set(after["tensors"])):
        if not _same_tensor(before["tensors"].get(key), after["tensors"].get(key)):
            out.append(f"{key} changed")
    for field in ("requires_grad", "training", "hooks"):
        for key in sorted(set(before[field]) | set(after[field])):
            if before[field].get(key) != after[field].get(key):
                out.append(f"{field} of {key}: {before[field].get(key)} -> {after[field].get(key)}")
    for key in sorted(set(before["grads"]) | set(after["grads"])):
        if not _same_tensor(before["grads"].get(key), after["grads"].get(key)):
            out.append(f".grad of {key} changed")
    return out


def global_differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    out = []
    if not torch.equal(before["torch_rng"], after["torch_rng"]):
        out.append("the global torch random generator advanced")
    if before["numpy_rng"] != after["numpy_rng"]:
        out.append("numpy's global random generator advanced")
    if before["python_rng"] != after["python_rng"]:
        out.append("Python's random generator advanced")
    if before["grad_enabled"] != after["grad_enabled"]:
        out.append(f"grad mode {before['grad_enabled']} -> {after['grad_enabled']}")
    return out


def assert_untouched(fn: Callable[[], T], *models: nn.Module, grads: bool = True, rng: bool = True) -> T:
    """Call ``fn()`` and fail, naming each change, if it altered any of ``models`` or the global state.

    ``grads=False`` skips ``.grad`` (for functions that keep gradients on purpose);
    ``rng=False`` skips the global random generators (for functions documented to draw from them).
    Returns what ``fn`` returned.
    """
    befores = [snapshot(m, grads) for m in models]
    glob = global_state()
    result = fn()
    problems = []
    for i, (m, before) in enumerate(zip(models, befores)):
        problems += [f"model {i} ({type(m).__name__}): {d}" for d in differences(before, snapshot(m, grads))]
    g = global_differences(glob, global_state())
    if not rng:
        g = [d for d in g if "random" not in d]
    problems += g
    assert not problems, "the call changed what it promised to leave alone:\n  " + "\n  ".join(problems)
    return result
