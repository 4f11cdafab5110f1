"""Short, human descriptions of the values a check shows: type, shape, dtype and the first numbers.

A float is always shown as one (``64.0``, never ``64``), so a report that
compares a float with an int shows the difference it is about.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .catalogue import Report


def short(text: str, n: int) -> str:
    """``text`` on one line, cut to ``n`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def shape_text(t: torch.Tensor) -> str:
    """``2×3×4`` (``scalar`` for a 0-d tensor)."""
    return "×".join(str(s) for s in t.shape) if t.dim() else "scalar"


def dtype_text(dtype: torch.dtype) -> str:
    """``float32`` for ``torch.float32``."""
    return str(dtype).replace("torch.", "")


def number(v: Any) -> str:
    """A number as a report shows it: six significant digits, and a float always looks like a float."""
    if isinstance(v, bool) or not isinstance(v, float):
        return str(v)
    text = f"{v:.6g}"
    return text if any(c in text for c in ".eEn") else text + ".0"  # 64.0, not 64; nan and inf stay


def _tensor_values(t: torch.Tensor, n: int = 6) -> str:
    flat = t.detach().reshape(-1).cpu()
    shown = ", ".join(number(v) for v in flat[:n].tolist())
    return f"[{shown}{', …' if flat.numel() > n else ''}]"


def describe(value: Any) -> str:
    """A short description of ``value``: type, shape, dtype and the first numbers."""
    if isinstance(value, torch.Tensor):
        if value.dim() == 0:
            return f"a 0-d tensor {number(value.item())} ({dtype_text(value.dtype)})"
        return f"a tensor of shape {shape_text(value)} ({dtype_text(value.dtype)}) {_tensor_values(value)}"
    if isinstance(value, nn.Module):
        return _describe_module(value)
    if isinstance(value, torch.optim.Optimizer):
        return f"a {type(value).__name__}(lr={value.param_groups[0]['lr']:g})"
    if isinstance(value, Report):
        return "; ".join(f"{k}: {describe(v)}" for k, v in value.items())
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {describe(v)}" for k, v in list(value.items())[:10]) + "}"
    if isinstance(value, (list, tuple)) and not isinstance(value, torch.Size):
        return _describe_sequence(value)
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return number(value)
    if isinstance(value, str):
        return repr(value)
    return short(repr(value), 120)


def _describe_module(value: nn.Module) -> str:
    kids = len(list(value.children()))
    if kids:
        return f"a {type(value).__name__} of {kids} modules"
    if isinstance(value, nn.modules.batchnorm._BatchNorm):  # its mode matters more than its eps
        return f"{type(value).__name__}({value.num_features}, {'train' if value.training else 'eval'} mode)"
    return short(repr(value), 90)


def _describe_sequence(value: list | tuple) -> str:
    if value and all(isinstance(v, torch.Tensor) for v in value):
        return f"a {type(value).__name__} of {len(value)} tensors ({', '.join(shape_text(v) for v in value)})"
    if value and all(callable(v) for v in value):
        return f"a {type(value).__name__} of {len(value)} functions/modules"
    inner = ", ".join(number(v) if isinstance(v, (int, float)) else
                      repr(v) if isinstance(v, str) else describe(v) for v in value[:8])
    open_, close = ("[", "]") if isinstance(value, list) else ("(", ")" if len(value) != 1 else ",)")
    return open_ + inner + (", …" if len(value) > 8 else "") + close


def brief(value: Any) -> str:
    """Like :func:`describe`, without the numbers of tensors larger than 8 values."""
    if isinstance(value, torch.Tensor) and value.numel() > 8:
        return f"a {shape_text(value)} tensor ({dtype_text(value.dtype)})"
    return describe(value)


def type_name(v: Any) -> str:
    """``a tensor``, ``an int``, ``a float``, ... for messages such as "a float where an int was expected"."""
    if isinstance(v, torch.Tensor):
        return "a 0-d tensor" if v.dim() == 0 else "a tensor"
    if isinstance(v, bool):
        return "a bool"
    if isinstance(v, int):
        return "an int"
    if isinstance(v, float):
        return "a float" if type(v) is float else f"a {type(v).__module__.split('.')[0]}.{type(v).__name__}"
    return {str: "a str", list: "a list", tuple: "a tuple", dict: "a dict", type(None): "None"}.get(
        type(v), f"a {type(v).__name__}")
