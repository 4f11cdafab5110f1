"""Look inside any ``nn.Module`` without training it: shapes, parameter counts and FLOPs.

The lessons keep asking the same questions about a network's structure; the
helpers here answer them for *any* module, not just our ResNets:

* :func:`trace_shapes` runs one forward pass with hooks on every submodule and
  returns a table (one row per call of a leaf layer or of a container/stage).
  A wrong number of input channels is reported by layer name before torch's
  own, much more cryptic, shape error. (Lessons 03, 04.)
* :func:`count_params` splits the parameter count over the top-level children;
  :func:`num_params` is the total. (Lessons 03-06.)
* :func:`count_flops` uses :class:`torch.utils.flop_counter.FlopCounterMode`,
  which counts one multiply-add as **2** FLOPs. Papers and the blog posts
  usually quote multiply-adds (MACs) and call them "FLOPs"; both are returned. (Lessons 04, 06.)
* :func:`summary` wraps ``torchsummary`` so it returns its text, runs on a
  CPU-only machine and never leaves hooks behind. (Lesson 04.)

What flows through a network while it trains (gradients, activations, updates)
is in :mod:`resnet_tutorial.diagnostics.gradient_flow`.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, Iterator, Sequence

import pandas as pd
import torch
from torch import nn

from ..modes import frozen


# --------------------------------------------------------------------------- #
# small helpers
# --------------------------------------------------------------------------- #
def model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device and floating dtype of the model's first parameter (or buffer): where and in what to feed it."""
    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            return t.device, t.dtype
    return torch.device("cpu"), torch.get_default_dtype()


def make_input(model: nn.Module, input: torch.Tensor | Sequence[int], seed: int = 0) -> torch.Tensor:
    """Turn a shape tuple into a random tensor on the model's device and dtype.

    A tensor is moved to the model's device (and floating dtype) and returned.
    """
    device, dtype = model_device_dtype(model)
    if isinstance(input, torch.Tensor):
        x = input
        if x.is_floating_point() and x.dtype != dtype:
            x = x.to(dtype)
        return x.to(device)
    if isinstance(input, torch.Size) or (
        isinstance(input, (tuple, list)) and all(isinstance(s, int) for s in input)
    ):
        shape = tuple(int(s) for s in input)
        if not shape or any(s <= 0 for s in shape):
            raise ValueError(f"input shape must be positive integers like (1, 3, 224, 224), got {shape}")
        gen = torch.Generator().manual_seed(seed)
        return torch.randn(shape, generator=gen, dtype=dtype).to(device)
    raise ValueError(
        "input must be a tensor or a shape tuple such as (1, 3, 224, 224), "
        f"got {type(input).__name__}"
    )


def _shape_of(obj: Any) -> Any:
    """Shape of a tensor as a tuple; tuples/lists/dicts of tensors keep their structure."""
    if isinstance(obj, torch.Tensor):
        return tuple(obj.shape)
    if isinstance(obj, (tuple, list)):
        shapes = [_shape_of(o) for o in obj if _has_tensor(o)]
        return shapes[0] if len(shapes) == 1 else tuple(shapes)
    if isinstance(obj, dict):
        return {k: _shape_of(v) for k, v in obj.items() if _has_tensor(v)}
    return None


def _has_tensor(obj: Any) -> bool:
    if isinstance(obj, torch.Tensor):
        return True
    if isinstance(obj, (tuple, list)):
        return any(_has_tensor(o) for o in obj)
    if isinstance(obj, dict):
        return any(_has_tensor(v) for v in obj.values())
    return False


def _first_tensor(args: Any) -> torch.Tensor | None:
    if isinstance(args, torch.Tensor):
        return args
    if isinstance(args, (tuple, list)):
        for a in args:
            t = _first_tensor(a)
            if t is not None:
                return t
    return None


def _check_channels(name: str, module: nn.Module, x: torch.Tensor) -> None:
    """Raise a readable ValueError when ``x`` does not fit ``module``'s input size."""
    if isinstance(module, nn.modules.conv._ConvNd):
        spatial = len(module.kernel_size)
        if x.dim() not in (spatial + 1, spatial + 2):
            raise ValueError(
                f"layer '{name}' ({type(module).__name__}) expects a {spatial + 2}-D input "
                f"(batch, channels, {', '.join('HWD'[:spatial])}) but got shape {tuple(x.shape)}"
            )
        got = x.shape[-spatial - 1]
        if got != module.in_channels:
            raise ValueError(
                f"layer '{name}' ({type(module).__name__}) expects {module.in_channels} input "
                f"channels but was given {got} (input shape {tuple(x.shape)}). Give the input "
                f"{module.in_channels} channels or build the model for {got} input channels."
            )
    elif isinstance(module, nn.Linear):
        if x.dim() == 0 or x.shape[-1] != module.in_features:
            raise ValueError(
                f"layer '{name}' (Linear) expects {module.in_features} input features but was "
                f"given {x.shape[-1] if x.dim() else 0} (input shape {tuple(x.shape)}); the "
                "layers before it produce a different size (check input size and pooling)."
            )
    elif isinstance(module, nn.modules.batchnorm._BatchNorm):
        if x.dim() >= 2 and module.num_features != x.shape[1]:
            raise ValueError(
                f"layer '{name}' ({type(module).__name__}) normalizes {module.num_features} "
                f"channels but was given {x.shape[1]} (input shape {tuple(x.shape)})."
            )


# --------------------------------------------------------------------------- #
# shape tracing
# --------------------------------------------------------------------------- #
class _ShapeRecorder:
    """Forward hooks on every submodule that record one row per call (used as a context manager)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.names = {m: n for n, m in model.named_modules(remove_duplicate=True)}
        self.rows: list[dict[str, Any]] = []
        self.open_rows: dict[int, list[int]] = {}  # id(module) -> stack of row indices
        self.calls: dict[int, int] = {}
        self.active: list[int] = []  # row indices of modules currently running
        self.handles: list[Any] = []

    def __enter__(self) -> "_ShapeRecorder":
        for module in self.names:
            if module is not self.model:
                self.handles.append(module.register_forward_pre_hook(self.pre_hook))
                self.handles.append(module.register_forward_hook(self.post_hook))
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self.handles:
            h.remove()

    def pre_hook(self, module: nn.Module, args: Any) -> None:
        name = self.names[module]
        t = _first_tensor(args)
        if t is not None:
            _check_channels(name, module, t)
        n_call = self.calls.get(id(module), 0)
        self.calls[id(module)] = n_call + 1
        self.rows.append({
            "name": name, "type": type(module).__name__, "depth": name.count(".") + 1,
            "is_leaf": next(module.children(), None) is None, "call": n_call,
            "input_shape": _shape_of(args), "output_shape": None,
            "params": sum(p.numel() for p in module.parameters()),
        })
        self.open_rows.setdefault(id(module), []).append(len(self.rows) - 1)
        self.active.append(len(self.rows) - 1)

    def post_hook(self, module: nn.Module, args: Any, output: Any) -> None:
        idx = self.open_rows[id(module)].pop()
        self.rows[idx]["output_shape"] = _shape_of(output)
        # this call has finished, and so have the calls inside it that raised an error its forward caught
        del self.active[self.active.index(idx):]

    def failure(self, x: torch.Tensor, err: Exception) -> ValueError:
        """A ValueError that names the layer the forward pass failed in."""
        if not self.active:
            return ValueError(f"forward pass of {type(self.model).__name__} failed on input shape "
                              f"{tuple(x.shape)}: {err}")
        where = self.rows[self.active[-1]]
        return ValueError(f"forward pass failed inside layer '{where['name']}' ({where['type']}) "
                          f"with input shape {where['input_shape']}: {err}")


def trace_shapes(
    model: nn.Module,
    input: torch.Tensor | Sequence[int],
    *,
    depth: int | None = None,
    leaves_only: bool = False,
) -> pd.DataFrame:
    """Run one forward pass and record input/output shapes of every submodule call.

    Args:
        model: any ``nn.Module``.
        input: a tensor, or a shape tuple such as ``(10, 3, 224, 224)`` (a random
            tensor on the model's device is made for it).
        depth: keep only rows with ``depth <= depth``; ``depth=1`` gives the
            top-level stages (``conv1``, ``layer1``, ..., ``fc`` for a ResNet).
        leaves_only: keep only modules without children (the actual layers).

    Returns:
        DataFrame in call order with columns ``name`` (dotted path), ``type``,
        ``depth`` (1 = top-level child), ``is_leaf``, ``call`` (0 for the first
        call of that module, 1 for the second ... so a shared ReLU used twice gives
        two rows), ``input_shape``, ``output_shape`` and ``params`` (parameters of
        the module including its children). Functional ops inside ``forward``
        (``torch.flatten``, ``F.relu``) are not modules and get no row.

    The model runs in eval mode under ``torch.no_grad`` (so BatchNorm statistics
    are not changed) and every module's train/eval mode is restored afterwards.
    Hooks are removed even when the forward pass raises.

    Raises:
        ValueError: when a conv / linear / batch-norm layer gets the wrong number
            of channels (named layer, expected and given numbers), or when the
            forward pass fails inside a layer (named layer, its input shape).

    Lessons: 04, 06, 09.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    if depth is not None and depth < 0:
        raise ValueError(f"depth must be None or >= 0, got {depth}")
    x = make_input(model, input)

    recorder = _ShapeRecorder(model)
    with recorder:
        with frozen(model):
            try:
                model(x)
            except (RuntimeError, IndexError) as err:
                raise recorder.failure(x, err) from err
    rows = recorder.rows
    df = pd.DataFrame(
        rows,
        columns=["name", "type", "depth", "is_leaf", "call", "input_shape", "output_shape", "params"],
    )
    if depth is not None:
        df = df[df["depth"] <= depth]
    if leaves_only:
        df = df[df["is_leaf"]]
    return df.reset_index(drop=True)


def stage_table(model: nn.Module, input: torch.Tensor | Sequence[int]) -> pd.DataFrame:
    """Top-level stages only, with the input as the first row (like post 002's table).

    Columns ``stage``, ``output_shape``, ``params``; row 0 is ``input``.

    Lessons: 04.
    """
    x = make_input(model, input)
    df = trace_shapes(model, x, depth=1)
    first = pd.DataFrame([{"stage": "input", "output_shape": tuple(x.shape), "params": 0}])
    rest = df.rename(columns={"name": "stage"})[["stage", "output_shape", "params"]]
    return pd.concat([first, rest], ignore_index=True)


# --------------------------------------------------------------------------- #
# parameters
# --------------------------------------------------------------------------- #
def num_params(model: nn.Module | None, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (0 for ``None``); ``trainable_only`` counts ``requires_grad`` ones."""
    if model is None:
        return 0
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_params(model: nn.Module) -> dict[str, Any]:
    """Parameter counts: ``total``, ``trainable``, ``frozen`` and ``per_child``.

    ``per_child`` maps each top-level child's name to its parameter count
    (parameters registered directly on the root appear under ``"(root)"``).
    Shared parameters are counted once in ``total``. Use :func:`params_table`
    for the same numbers as a DataFrame.

    Lessons: 03, 04, 06, 07, 09.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    params = list(model.parameters())  # unique tensors
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    per_child: dict[str, int] = {}
    own = sum(p.numel() for p in model.parameters(recurse=False))
    if own:
        per_child["(root)"] = own
    for name, child in model.named_children():
        per_child[name] = sum(p.numel() for p in child.parameters())
    return {"total": total, "trainable": trainable, "frozen": total - trainable, "per_child": per_child}


def params_table(model: nn.Module) -> pd.DataFrame:
    """One row per top-level child: ``name``, ``type``, ``params``, ``percent``.

    Lessons: 04.
    """
    counts = count_params(model)
    children = dict(model.named_children())
    rows = [
        {
            "name": name,
            "type": type(children[name]).__name__ if name in children else type(model).__name__,
            "params": n,
            "percent": 100.0 * n / counts["total"] if counts["total"] else 0.0,
        }
        for name, n in counts["per_child"].items()
    ]
    return pd.DataFrame(rows, columns=["name", "type", "params", "percent"])


# --------------------------------------------------------------------------- #
# FLOPs
# --------------------------------------------------------------------------- #
def count_flops(model: nn.Module, input: torch.Tensor | Sequence[int]) -> dict[str, Any]:
    """Count the FLOPs of one forward pass with ``torch.utils.flop_counter``.

    Returns a dict with ``flops`` (multiply-add = 2 FLOPs, FlopCounterMode's
    convention), ``macs`` (= ``flops / 2``, the number papers and the posts
    call "FLOPs"), ``per_child`` (FLOPs per top-level child, by name) and
    ``by_op`` (FLOPs per aten op, e.g. convolution vs addmm). Only matrix-like
    ops (convolution, matmul, linear) are counted; BatchNorm, ReLU, pooling and
    additions are ignored, as in the papers. Batch size scales the count: pass
    batch 1 for "per image" numbers.

    Lessons: 06, 09.
    """
    from torch.utils.flop_counter import FlopCounterMode

    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    x = make_input(model, input)
    counter = FlopCounterMode(display=False, depth=None)
    with frozen(model), counter:
        model(x)
    counts = counter.get_flop_counts()
    total = int(counter.get_total_flops())
    root = type(model).__name__
    per_child: dict[str, int] = {}
    for name, _ in model.named_children():
        per_child[name] = int(sum(counts.get(f"{root}.{name}", {}).values()))
    by_op = {str(op).replace("aten.", ""): int(n) for op, n in counts.get("Global", {}).items()}
    return {"flops": total, "macs": total // 2, "per_child": per_child, "by_op": by_op}


# --------------------------------------------------------------------------- #
# torchsummary
# --------------------------------------------------------------------------- #
def summary(
    model: nn.Module,
    input_size: Sequence[int] | Sequence[Sequence[int]],
    device: str | torch.device | None = None,
    batch_size: int = -1,
) -> str:
    """``torchsummary.summary`` as a string, safe on CPU-only machines.

    ``input_size`` excludes the batch dimension, e.g. ``(1, 224, 224)``.
    ``device`` defaults to the device the model's parameters are on (torchsummary
    itself defaults to ``"cuda"`` and fails without a GPU). The model runs in
    eval mode under ``no_grad`` (torchsummary feeds random data, which must not
    leak into BatchNorm's running statistics), every module's mode is restored
    and any hook torchsummary left behind after a failure is removed.

    Lessons: 04.
    """
    try:
        from torchsummary import summary as _ts_summary
    except ImportError as err:  # pragma: no cover - dependency is in pyproject
        raise ImportError("summary() needs torchsummary: pip install torchsummary") from err

    if device is None:
        device = model_device_dtype(model)[0]
    device_type = torch.device(device).type
    if device_type not in ("cpu", "cuda"):
        raise ValueError(f"torchsummary supports only 'cpu' or 'cuda' devices, got {device!r}")
    model_device = model_device_dtype(model)[0]
    if model_device.type != device_type:
        raise ValueError(
            f"the model's parameters are on {model_device} but device={device!r}; "
            f"move the model (model.to('{device_type}')) or pass device='{model_device.type}'"
        )
    sizes = [input_size] if all(isinstance(s, int) for s in input_size) else list(input_size)
    for s in sizes:
        if not s or any((not isinstance(d, int)) or d <= 0 for d in s):
            raise ValueError(f"input_size must be positive ints without the batch dim, e.g. (1, 224, 224); got {s}")

    before = {m: (set(m._forward_hooks), set(m._forward_pre_hooks)) for m in model.modules()}
    buf = io.StringIO()
    failure: RuntimeError | None = None
    try:
        with frozen(model), contextlib.redirect_stdout(buf):
            arg = tuple(sizes[0]) if len(sizes) == 1 else [tuple(s) for s in sizes]
            _ts_summary(model, arg, batch_size=batch_size, device=device_type)
    except RuntimeError as err:
        failure = err
    finally:
        _remove_new_hooks(before)
    if failure is not None:
        if len(sizes) == 1:
            # re-run with our tracer: it names the layer and the numbers that do not fit
            trace_shapes(model, (2, *sizes[0]))
        raise failure
    return buf.getvalue()


def _remove_new_hooks(before: dict[nn.Module, tuple[set[int], set[int]]]) -> None:
    """Delete forward (pre-)hooks added since ``before`` was taken (torchsummary's leftovers)."""
    for m, (fwd, pre) in before.items():
        for key in set(m._forward_hooks) - fwd:
            del m._forward_hooks[key]
        for key in set(m._forward_pre_hooks) - pre:
            del m._forward_pre_hooks[key]
        always = getattr(m, "_forward_hooks_always_called", None)
        if always is not None:
            for key in set(always) - fwd:
                del always[key]
