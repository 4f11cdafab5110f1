"""Depth experiments: why gradients vanish or explode, measured layer by layer.

The chain rule makes the gradient at layer ``l`` a product of layer Jacobians,

    dL/da(l) = dL/da(L) · J(L-1) ··· J(l),     J(k) = da(k+1)/da(k),

so a per-layer factor a little below (above) one shrinks (grows) the gradient
exponentially with depth. This module builds deep plain/residual MLPs and
CNNs, measures per-layer gradient norms and activation statistics, and fits the
per-layer factor, so the lessons can *measure* the story instead of telling it.

Main API
--------
* :func:`grad_norms` — per-layer weight-gradient norms after one backward pass
  (input → output order of first use in forward).
* :func:`activation_stats` — per activation layer: mean, std, share of zeros
  (dead ReLUs), dead units, share of saturated sigmoid/tanh outputs.
* :func:`make_deep_mlp`, :func:`make_deep_cnn` — plain or residual, BN or not,
  five initializations, three activations.
* :func:`first_layer_grad_vs_depth`, :func:`fit_exponential`,
  :func:`update_to_data_ratios`, :func:`chain_rule_check`.
* :func:`draw_gradient_explorer`, :func:`draw_first_layer_grad_vs_depth` —
  the lesson-01 explorers (plain functions that return a Figure).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "SIGMOID_SATURATION",
    "TANH_SATURATION",
    "AddShortcut",
    "ExponentialFit",
    "grad_norms",
    "activation_stats",
    "make_deep_mlp",
    "make_deep_cnn",
    "make_deep_net",
    "first_layer_grad_vs_depth",
    "fit_exponential",
    "per_layer_factor",
    "update_to_data_ratios",
    "layer_jacobians",
    "chain_rule_check",
    "fashion_batch",
    "draw_gradient_explorer",
    "draw_first_layer_grad_vs_depth",
]

ACTIVATIONS: dict[str, type[nn.Module]] = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
INITS: tuple[str, ...] = ("default", "xavier", "kaiming", "small", "large")
#: std of the "too small" and "too large" Gaussian initializations.
SMALL_STD, LARGE_STD = 0.01, 1.0
#: A sigmoid output below 0.03 or above 0.97 counts as saturated (its slope is then < 0.03, vs 0.25 at 0).
SIGMOID_SATURATION = 0.03
#: A tanh output with |y| > 0.97 counts as saturated (its slope 1 - y² is then < 0.06, vs 1 at 0).
TANH_SATURATION = 0.97
_WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_ACTIVATION_KINDS = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardtanh,
    nn.Softplus,
)


# --------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def _hooks() -> Iterator[list[Any]]:
    """Collect hook handles and always remove them, even when the forward pass raises."""
    handles: list[Any] = []
    try:
        yield handles
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def _buffers_preserved(model: nn.Module) -> Iterator[None]:
    """Restore every buffer (BatchNorm running statistics) afterwards: a diagnostic must not train."""
    saved = {name: b.detach().clone() for name, b in model.named_buffers()}
    try:
        yield
    finally:
        with torch.no_grad():
            for name, b in model.named_buffers():
                if name in saved:
                    b.copy_(saved[name])


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    p = next(model.parameters(), None)
    if p is None:
        return torch.device("cpu"), torch.get_default_dtype()
    return p.device, p.dtype


def _prepare_inputs(model: nn.Module, inputs: Any, what: str) -> torch.Tensor:
    if not isinstance(inputs, torch.Tensor):
        raise ValueError(f"{what}: inputs must be a torch.Tensor batch, got {type(inputs).__name__}")
    if inputs.dim() < 2:
        raise ValueError(f"{what}: inputs need a batch dimension first, got shape {tuple(inputs.shape)}")
    device, dtype = _model_device_dtype(model)
    x = inputs.to(device)
    return x.to(dtype) if x.is_floating_point() or x.dtype == torch.uint8 else x


def _record_first_use(model: nn.Module, kinds: tuple[type[nn.Module], ...] | None, order: list[str], handles: list[Any]) -> None:
    """Pre-hooks that append each weight layer's name to ``order`` the first time forward calls it."""
    for name, m in model.named_modules():
        if _is_weight_layer(m, kinds):

            def pre_hook(mod: nn.Module, args: Any, _name: str = name) -> None:
                if _name not in order:
                    order.append(_name)

            handles.append(m.register_forward_pre_hook(pre_hook))


def _forward_order(model: nn.Module, x: torch.Tensor, kinds: tuple[type[nn.Module], ...] | None) -> list[str]:
    """Names of the weight layers in the order the forward pass first uses them (not registration order)."""
    order: list[str] = []
    with _hooks() as handles:
        _record_first_use(model, kinds, order, handles)
        with torch.no_grad(), _buffers_preserved(model):
            model(x)
    return order


def _is_weight_layer(m: nn.Module, kinds: tuple[type[nn.Module], ...] | None) -> bool:
    w = getattr(m, "weight", None)
    if not isinstance(w, nn.Parameter) or not w.requires_grad:
        return False
    return kinds is None or isinstance(m, kinds)


# --------------------------------------------------------------------------- gradient norms
def grad_norms(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    *,
    kinds: tuple[type[nn.Module], ...] | None = _WEIGHT_LAYERS,
) -> pd.DataFrame:
    """Per-layer L2 norm of the weight gradient after one forward/backward pass.

    Rows follow the order in which the forward pass *first uses* each layer
    (found with forward pre-hooks), which is input → output even when the
    modules were registered in another order. ``kinds`` picks the layers
    (default: Linear and Conv; ``None`` = every module with its own ``weight``,
    BatchNorm included). Layers the forward pass never reaches are left out.

    Side effects, on purpose: existing ``.grad`` of all parameters are zeroed
    first, and the new gradients are *kept* afterwards so you can inspect
    ``layer.weight.grad`` yourself. BatchNorm running statistics are restored,
    so the diagnostic does not change what the model computes. The model runs
    in its current mode (``train()``: BN uses batch statistics).

    Returns columns ``index, layer, type, numel, param_norm, grad_norm``.
    """
    x = _prepare_inputs(model, inputs, "grad_norms")
    if not isinstance(targets, torch.Tensor):
        raise ValueError(f"grad_norms: targets must be a torch.Tensor, got {type(targets).__name__}")
    if targets.shape[0] != x.shape[0]:
        raise ValueError(f"grad_norms: {x.shape[0]} inputs but {targets.shape[0]} targets; give one target per input")
    targets = targets.to(x.device)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    modules = dict(model.named_modules())
    order: list[str] = []
    model.zero_grad(set_to_none=True)
    with _hooks() as handles, _buffers_preserved(model):
        _record_first_use(model, kinds, order, handles)
        out = model(x)
        loss = loss_fn(out, targets)
        if loss.dim() != 0:
            raise ValueError("grad_norms: loss_fn must return a scalar (use reduction='mean')")
        loss.backward()
    rows = []
    for i, name in enumerate(order):
        w = modules[name].weight
        g = w.grad
        rows.append(
            {
                "index": i,
                "layer": name,
                "type": type(modules[name]).__name__,
                "numel": w.numel(),
                "param_norm": float(w.detach().double().norm()),
                "grad_norm": float(g.double().norm()) if g is not None else float("nan"),
            }
        )
    return pd.DataFrame(rows, columns=["index", "layer", "type", "numel", "param_norm", "grad_norm"])


# --------------------------------------------------------------------------- activations
def activation_stats(
    model: nn.Module,
    inputs: torch.Tensor,
    kinds: tuple[type[nn.Module], ...] = _ACTIVATION_KINDS,
    *,
    samples: bool = False,
    max_samples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Statistics of every activation-module output in one forward pass (no gradients).

    One row per call, in forward order (a module used twice, like the ReLU of
    torchvision's BasicBlock, gives two rows, ``name#2`` for the second).
    Columns:

    * ``mean``, ``std`` of the outputs;
    * ``frac_zero`` — share of outputs exactly 0 (ReLU units that are "off");
    * ``frac_dead_units`` — share of units that are 0 for the *whole batch*
      (a unit is a feature of an MLP, a channel of a conv map);
    * ``frac_saturated`` — sigmoid outputs < 0.03 or > 0.97, tanh with
      |y| > 0.97 (where the slope is under ~0.03/0.06); NaN for other kinds;
    * ``samples`` (with ``samples=True``) — up to ``max_samples`` random
      output values for histograms.

    Only ``nn.Module`` activations are seen (not ``F.relu`` calls). Hooks are
    removed and BN running statistics restored even when forward raises.
    """
    x = _prepare_inputs(model, inputs, "activation_stats")
    if not kinds:
        raise ValueError("activation_stats: kinds must name at least one activation module class, e.g. (nn.ReLU,)")
    rows: list[dict[str, Any]] = []
    calls: dict[str, int] = {}
    gen = torch.Generator().manual_seed(seed)

    def hook(mod: nn.Module, args: Any, out: torch.Tensor, _name: str) -> None:
        if not isinstance(out, torch.Tensor):
            return
        calls[_name] = calls.get(_name, 0) + 1
        y = out.detach()
        yf = y.double()
        row: dict[str, Any] = {
            "index": len(rows),
            "layer": _name if calls[_name] == 1 else f"{_name}#{calls[_name]}",
            "type": type(mod).__name__,
            "mean": float(yf.mean()),
            "std": float(yf.std()) if y.numel() > 1 else 0.0,
            "frac_zero": float((y == 0).double().mean()),
        }
        if y.dim() >= 2:
            alive = (y != 0).transpose(0, 1).reshape(y.shape[1], -1).any(dim=1)
            row["frac_dead_units"] = float((~alive).double().mean())
        else:
            row["frac_dead_units"] = float("nan")
        if isinstance(mod, nn.Sigmoid):
            row["frac_saturated"] = float(((y < SIGMOID_SATURATION) | (y > 1 - SIGMOID_SATURATION)).double().mean())
        elif isinstance(mod, nn.Tanh):
            row["frac_saturated"] = float((y.abs() > TANH_SATURATION).double().mean())
        else:
            row["frac_saturated"] = float("nan")
        if samples:
            flat = y.reshape(-1).float().cpu()
            if flat.numel() > max_samples:
                flat = flat[torch.randperm(flat.numel(), generator=gen)[:max_samples]]
            row["samples"] = flat.numpy()
        rows.append(row)

    with _hooks() as handles, _buffers_preserved(model):
        for name, m in model.named_modules():
            if isinstance(m, kinds):
                handles.append(m.register_forward_hook(functools.partial(hook, _name=name)))
        with torch.no_grad():
            model(x)
    columns = ["index", "layer", "type", "mean", "std", "frac_zero", "frac_dead_units", "frac_saturated"]
    return pd.DataFrame(rows, columns=columns + (["samples"] if samples else []))


# --------------------------------------------------------------------------- deep nets
class AddShortcut(nn.Module):
    """``x + body(x)``: an identity shortcut around one hidden layer (the residual idea, minimal)."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _check_options(depth: int, width: int, activation: str, init: str, what: str, width_name: str) -> None:
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 1000:
        raise ValueError(f"{what}: depth must be an int between 1 and 1000 (number of hidden layers), got {depth!r}")
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"{what}: {width_name} must be a positive int, got {width!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"{what}: activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    if init not in INITS:
        raise ValueError(f"{what}: init must be one of {list(INITS)}, got {init!r}")


def _init_weights(model: nn.Module, init: str) -> None:
    """Re-initialize every Linear/Conv layer; ``default`` keeps PyTorch's own init.

    PyTorch's default is Kaiming-uniform with a=√5, i.e. weight std = 1/√(3·fan_in),
    a third of the variance He et al. recommend for ReLU.
    """
    if init == "default":
        return
    for m in model.modules():
        if isinstance(m, _WEIGHT_LAYERS):
            if init == "xavier":
                nn.init.xavier_normal_(m.weight)
            elif init == "kaiming":
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            elif init == "small":
                nn.init.normal_(m.weight, std=SMALL_STD)
            elif init == "large":
                nn.init.normal_(m.weight, std=LARGE_STD)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _preact_layer(weight_layer: nn.Module, norm: nn.Module | None, activation: str, *tail: nn.Module) -> nn.Sequential:
    """[norm] → activation → (tail) → weight layer: one hidden layer in pre-activation order."""
    parts: list[tuple[str, nn.Module]] = [("bn", norm)] if norm is not None else []
    parts.append(("act", ACTIVATIONS[activation]()))
    parts += [(type(t).__name__.lower(), t) for t in tail]
    parts.append(("linear" if isinstance(weight_layer, nn.Linear) else "conv", weight_layer))
    return nn.Sequential(OrderedDict(parts))


def make_deep_mlp(
    depth: int,
    width: int = 64,
    activation: str = "sigmoid",
    init: str = "default",
    bn: bool = False,
    shortcut: bool = False,
    in_features: int = 784,
    num_classes: int = 10,
) -> nn.Sequential:
    """A deep fully connected net with ``depth`` hidden layers of ``width`` units.

    Layout ``flatten, hidden1 … hidden{depth}, head`` with ``depth + 1``
    Linear layers and ``depth`` activations::

        hidden1 = Linear(in_features → width)
        hidden2…depth = [BatchNorm1d] → activation → Linear(width → width)
        head = [BatchNorm1d] → activation → Linear(width → num_classes)

    Without shortcuts this is the familiar Linear → [BN] → activation chain,
    grouped so that each group *ends* with its Linear. With
    ``shortcut=True`` hidden layers 2…depth become ``x + layer(x)`` (hidden1
    changes the width, so it cannot). Grouping this way keeps the identity
    path clean — no activation after the addition, as in He et al.'s
    "Identity mappings in deep residual networks" — so the gradient reaches
    the first layer without passing through any activation's slope.
    """
    _check_options(depth, width, activation, init, "make_deep_mlp", "width")
    if in_features < 1 or num_classes < 1:
        raise ValueError("make_deep_mlp: in_features and num_classes must be positive")
    layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    layers.append(("hidden1", nn.Sequential(OrderedDict(linear=nn.Linear(in_features, width, bias=not bn)))))
    for i in range(2, depth + 1):
        block = _preact_layer(nn.Linear(width, width, bias=not bn), nn.BatchNorm1d(width) if bn else None, activation)
        layers.append((f"hidden{i}", AddShortcut(block) if shortcut else block))
    head = _preact_layer(nn.Linear(width, num_classes), nn.BatchNorm1d(width) if bn else None, activation)
    layers.append(("head", head))
    model = nn.Sequential(OrderedDict(layers))
    _init_weights(model, init)
    return model


def make_deep_cnn(
    depth: int,
    channels: int = 8,
    activation: str = "sigmoid",
    init: str = "default",
    bn: bool = False,
    shortcut: bool = False,
    in_channels: int = 1,
    num_classes: int = 10,
    stem_stride: int = 2,
) -> nn.Sequential:
    """A deep conv net with ``depth`` hidden 3×3 conv layers of ``channels`` maps.

    Same layout as :func:`make_deep_mlp` with convolutions::

        hidden1 = Conv3×3(in_channels → channels, stride stem_stride)
        hidden2…depth = [BatchNorm2d] → activation → Conv3×3(channels → channels)
        head = [BatchNorm2d] → activation → global average pool → Linear

    ``stem_stride=2`` halves 28×28 to 14×14 so depth 100 stays cheap.
    ``shortcut=True`` wraps hidden layers 2…depth as ``x + layer(x)``.
    """
    _check_options(depth, channels, activation, init, "make_deep_cnn", "channels")
    if in_channels < 1 or num_classes < 1 or stem_stride < 1:
        raise ValueError("make_deep_cnn: in_channels, num_classes and stem_stride must be positive")

    def conv(c_in: int, stride: int = 1) -> nn.Conv2d:
        return nn.Conv2d(c_in, channels, 3, stride=stride, padding=1, bias=not bn)

    def norm() -> nn.Module | None:
        return nn.BatchNorm2d(channels) if bn else None

    layers: list[tuple[str, nn.Module]] = [("hidden1", nn.Sequential(OrderedDict(conv=conv(in_channels, stem_stride))))]
    for i in range(2, depth + 1):
        block = _preact_layer(conv(channels), norm(), activation)
        layers.append((f"hidden{i}", AddShortcut(block) if shortcut else block))
    head = _preact_layer(nn.Linear(channels, num_classes), norm(), activation, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    layers.append(("head", head))
    model = nn.Sequential(OrderedDict(layers))
    _init_weights(model, init)
    return model


def make_deep_net(arch: str = "mlp", depth: int = 20, **kw: Any) -> nn.Sequential:
    """``make_deep_mlp`` for ``arch="mlp"``, ``make_deep_cnn`` for ``arch="cnn"``."""
    if arch == "mlp":
        return make_deep_mlp(depth, **kw)
    if arch == "cnn":
        return make_deep_cnn(depth, **kw)
    raise ValueError(f"arch must be 'mlp' or 'cnn', got {arch!r}")


# --------------------------------------------------------------------------- fits and sweeps
@dataclass(frozen=True)
class ExponentialFit:
    """``norm ≈ 10**(log10_intercept + log10_slope · x)``; ``factor`` = 10**log10_slope per unit of x."""

    factor: float
    log10_slope: float
    log10_intercept: float
    r2: float

    def predict(self, x: Any) -> np.ndarray:
        return 10 ** (self.log10_intercept + self.log10_slope * np.asarray(x, dtype=float))

    def __str__(self) -> str:
        kind = "shrinks" if self.factor < 1 else "grows"
        per = 1 / self.factor if self.factor < 1 else self.factor
        return f"the gradient {kind} by a factor of {per:.3g} per layer (R² = {self.r2:.3f})"


def fit_exponential(x: Sequence[float] | np.ndarray, norms: Sequence[float] | np.ndarray) -> ExponentialFit:
    """Least-squares line through ``log10(norm)`` against ``x`` (layer index or depth).

    ``factor`` is the measured multiplicative change per unit of ``x``:
    0.25 means "a quarter per layer". Norms must be positive and finite
    (a gradient that underflowed to 0 has no logarithm: measure in float64).
    """
    xs = np.asarray(x, dtype=float).ravel()
    ys = np.asarray(norms, dtype=float).ravel()
    if xs.shape != ys.shape:
        raise ValueError(f"fit_exponential: {xs.size} x values but {ys.size} norms")
    if xs.size < 2 or np.unique(xs).size < 2:
        raise ValueError("fit_exponential needs at least two distinct x values")
    bad = ~np.isfinite(ys) | (ys <= 0)
    if bad.any():
        raise ValueError(
            f"fit_exponential: norms must be positive and finite; got {ys[bad][:3]} at x = {xs[bad][:3]} "
            "(underflow? build the model in float64, or drop those points)"
        )
    ly = np.log10(ys)
    slope, intercept = np.polyfit(xs, ly, 1)
    pred = intercept + slope * xs
    ss_tot = float(((ly - ly.mean()) ** 2).sum())
    r2 = 1.0 - float(((ly - pred) ** 2).sum()) / ss_tot if ss_tot > 0 else 1.0
    return ExponentialFit(float(10**slope), float(slope), float(intercept), r2)


def per_layer_factor(grads: pd.DataFrame, *, skip_head: bool = True) -> ExponentialFit:
    """The measured factor by which the gradient norm changes per layer, going BACK toward the input.

    Fits ``log10(grad_norm)`` against the number of layers between each layer
    and the output (``grad_norms`` output; the head is left out by default
    because its gradient also carries the loss's own scale). ``factor < 1``:
    the gradient shrinks by ``1/factor`` per layer on its way to the input
    (vanishing); ``factor > 1``: it grows (exploding).
    """
    _require = [c for c in ("index", "grad_norm") if c not in grads.columns]
    if _require:
        raise ValueError(f"per_layer_factor needs grad_norms() output; missing columns {_require}")
    df = grads.iloc[:-1] if skip_head and len(grads) > 2 else grads
    steps_back = df["index"].max() - df["index"]
    return fit_exponential(steps_back.to_numpy(), df["grad_norm"].to_numpy())


def _variant_name(shortcut: bool, bn: bool) -> str:
    return ("residual" if shortcut else "plain") + (" + BN" if bn else "")


def _as_bools(value: bool | Sequence[bool], name: str) -> list[bool]:
    vals = [value] if isinstance(value, bool) else list(value)
    if not vals or not all(isinstance(v, bool) for v in vals):
        raise ValueError(f"{name} must be a bool or a sequence of bools, got {value!r}")
    return vals


def first_layer_grad_vs_depth(
    depths: Iterable[int],
    *,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    arch: str = "mlp",
    activation: str = "sigmoid",
    init: str = "default",
    bn: bool | Sequence[bool] = (False, True),
    shortcut: bool | Sequence[bool] = (False, True),
    seeds: Sequence[int] = (0, 1, 2),
    dtype: torch.dtype = torch.float64,
    progress: bool = True,
    **model_kw: Any,
) -> pd.DataFrame:
    """Gradient norm at the FIRST and LAST weight layer for nets of growing depth.

    For every depth × shortcut × bn × seed a fresh net is built (seeded),
    one batch goes forward and backward, and the first hidden layer's and the
    head's weight-gradient norms are recorded. ``bn``/``shortcut`` take a bool
    or a sequence (the default runs all four variants). Models are built in
    ``dtype`` (float64 by default: a plain sigmoid net's first-layer gradient
    drops below float32's smallest number, 1e-45, around depth 40-60).

    Columns: ``depth, seed, shortcut, bn, variant, first_grad_norm,
    last_grad_norm, first_over_last``.
    """
    from tqdm.auto import tqdm

    depths = [int(d) for d in depths]
    if not depths:
        raise ValueError("first_layer_grad_vs_depth: give at least one depth")
    if not seeds:
        raise ValueError("first_layer_grad_vs_depth: give at least one seed")
    combos = [
        (d, s, b, seed)
        for s in _as_bools(shortcut, "shortcut")
        for b in _as_bools(bn, "bn")
        for d in depths
        for seed in seeds
    ]
    rows = []
    for d, s, b, seed in tqdm(combos, desc="depth sweep", disable=not progress):
        torch.manual_seed(seed)
        model = make_deep_net(arch, d, activation=activation, init=init, bn=b, shortcut=s, **model_kw)
        model.to(device=inputs.device, dtype=dtype)
        df = grad_norms(model, inputs, targets)
        first, last = float(df["grad_norm"].iloc[0]), float(df["grad_norm"].iloc[-1])
        rows.append(
            {
                "depth": d,
                "seed": seed,
                "shortcut": s,
                "bn": b,
                "variant": _variant_name(s, b),
                "first_grad_norm": first,
                "last_grad_norm": last,
                "first_over_last": first / last if last > 0 else float("nan"),
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- update-to-data ratio
def _cycle_batches(batches: Any) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    if isinstance(batches, tuple) and len(batches) == 2 and isinstance(batches[0], torch.Tensor):
        batches = [batches]  # one (x, y) pair
    while True:
        n = 0
        for batch in batches:
            if not (isinstance(batch, (tuple, list)) and len(batch) >= 2):
                raise ValueError("update_to_data_ratios: batches must yield (inputs, targets) pairs")
            n += 1
            yield batch[0], batch[1]
        if n == 0:
            raise ValueError("update_to_data_ratios: the loader/batches yielded nothing")


def update_to_data_ratios(
    model: nn.Module,
    batches: Any,
    steps: int = 50,
    lr: float = 0.1,
    optimizer: str = "sgd",
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    copy_model: bool = True,
    progress: bool = True,
) -> pd.DataFrame:
    """Train for ``steps`` steps and record, per weight layer and step, log10(update std / weight std).

    For plain SGD the update is ``lr·grad`` (Karpathy's ``lr * p.grad``,
    computed from the gradient, so a float32 update too small to change the
    weight at all still gets its true size); for momentum and Adam it is the
    actual change of the weights, ``W_after - W_before``. A healthy layer sits near 1e-3
    (``log10 = -3``). ``batches`` is a DataLoader, a list of ``(x, y)`` pairs,
    or one pair; it is cycled. ``optimizer``: ``"sgd"``, ``"momentum"``
    (SGD, 0.9) or ``"adam"``. By default a deep copy is trained so your
    model is unchanged (``copy_model=False`` trains it in place).

    Columns: ``step`` (1 = after the first update), ``index``, ``layer``,
    ``type``, ``ratio``, ``log10_ratio``, ``loss`` (before that update). If
    the loss becomes NaN/inf, training stops and
    ``df.attrs["diverged_at_step"]`` says at which step (else ``None``).
    """
    from tqdm.auto import tqdm

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"update_to_data_ratios: steps must be a positive int, got {steps!r}")
    if not lr > 0:
        raise ValueError(f"update_to_data_ratios: lr must be > 0, got {lr!r}")
    net = copy.deepcopy(model) if copy_model else model
    params = [p for p in net.parameters() if p.requires_grad]
    if optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(params, lr=lr)
    elif optimizer == "momentum":
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9)
    elif optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr)
    else:
        raise ValueError(f"update_to_data_ratios: optimizer must be 'sgd', 'momentum' or 'adam', got {optimizer!r}")
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    device = _model_device_dtype(net)[0]
    stream = _cycle_batches(batches)
    modules = dict(net.named_modules())
    net.train()
    rows = []
    layers: list[str] = []
    diverged_at: int | None = None
    for step in tqdm(range(1, steps + 1), desc="update ratios", disable=not progress):
        x, y = next(stream)
        x = _prepare_inputs(net, x, "update_to_data_ratios")
        y = y.to(device)
        if not layers:
            layers = _forward_order(net, x, _WEIGHT_LAYERS)
        before = {n: modules[n].weight.detach().clone() for n in layers}
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        if not torch.isfinite(loss):
            # Diverged (exploding activations or too large a step): stop, and say when.
            diverged_at = step
            break
        loss.backward()
        opt.step()
        for i, n in enumerate(layers):
            w_old = before[n]
            if optimizer == "sgd":  # Karpathy's definition; exact even when W + update rounds back to W
                upd = (lr * modules[n].weight.grad.detach().double()).std()
            else:
                upd = (modules[n].weight.detach() - w_old).double().std()
            ratio = float(upd / w_old.double().std())
            rows.append(
                {
                    "step": step,
                    "index": i,
                    "layer": n,
                    "type": type(modules[n]).__name__,
                    "ratio": ratio,
                    "log10_ratio": math.log10(ratio) if ratio > 0 else float("-inf"),
                    "loss": float(loss.detach()),
                }
            )
    out = pd.DataFrame(rows, columns=["step", "index", "layer", "type", "ratio", "log10_ratio", "loss"])
    out.attrs["diverged_at_step"] = diverged_at
    return out


# --------------------------------------------------------------------------- chain rule, by hand
def layer_jacobians(model: nn.Sequential, x: torch.Tensor) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """For ONE sample ``x`` (no batch dim), the Jacobian of every top-level child of ``model``.

    Returns ``[(name, a_in, J)]`` where ``J = d child(a_in) / d a_in`` has
    shape ``[out_features, in_features]`` (flattened). Runs in eval mode
    (BatchNorm as a fixed affine map, so one sample is well defined).
    """
    if not isinstance(model, nn.Sequential):
        raise ValueError("layer_jacobians needs an nn.Sequential (a chain of layers), e.g. make_deep_mlp(...)")
    was_training = model.training
    model.eval()
    out = []
    try:
        a = x.detach().unsqueeze(0).to(*_model_device_dtype(model))
        for name, child in model.named_children():

            def f(inp: torch.Tensor, _child: nn.Module = child) -> torch.Tensor:
                return _child(inp)

            jac = torch.autograd.functional.jacobian(f, a)
            out_numel = int(np.prod(jac.shape[: jac.dim() // 2]))
            out.append((name, a.squeeze(0), jac.reshape(out_numel, -1)))
            with torch.no_grad():
                a = child(a)
    finally:
        model.train(was_training)
    return out


def chain_rule_check(
    model: nn.Sequential,
    x: torch.Tensor,
    target: int,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> pd.DataFrame:
    """The gradient at every layer's input, once as a product of Jacobians and once by autograd.

    With ``a(0) = x`` and ``a(k+1) = layer_k(a(k))``:
    ``dL/da(l) = dL/da(L) · J(L-1) ··· J(l)``. For each boundary ``l`` the
    table gives the spectral norm of ``J(l)`` and the norm of ``dL/da(l)``
    computed both ways (``chain_grad_norm`` vs ``autograd_grad_norm``) and
    their largest absolute difference: they agree to rounding error.
    """
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    jacs = layer_jacobians(model, x)
    was_training = model.training
    model.eval()
    try:
        acts = []
        a = x.detach().unsqueeze(0).to(*_model_device_dtype(model)).requires_grad_(True)
        h = a
        for _, child in model.named_children():
            h.retain_grad()
            acts.append(h)
            h = child(h)
        y = torch.tensor([target], device=h.device)
        loss = loss_fn(h, y)
        g_out = torch.autograd.grad(loss, h, retain_graph=True)[0].reshape(1, -1)
        autograd = torch.autograd.grad(loss, acts)
    finally:
        model.train(was_training)
    rows = []
    g = g_out
    for k in range(len(jacs) - 1, -1, -1):
        name, _, J = jacs[k]
        g = g @ J  # dL/da(k) = dL/da(k+1) · J(k)
        ref = autograd[k].reshape(1, -1)
        rows.append(
            {
                "index": k,
                "layer": name,
                "jacobian_spectral_norm": float(torch.linalg.matrix_norm(J.double(), ord=2)),
                "chain_grad_norm": float(g.double().norm()),
                "autograd_grad_norm": float(ref.double().norm()),
                "max_abs_diff": float((g - ref).abs().max()),
            }
        )
    return pd.DataFrame(rows[::-1]).reset_index(drop=True)


# --------------------------------------------------------------------------- explorers
@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run torch with ``n`` intra-op threads inside the block, then restore the previous count.

    The explorer's nets are tiny (128 × 64 in the MLP, 8 maps of 14 × 14 in the
    CNN): one thread computes them in tens of milliseconds. With more threads,
    every small op waits for all of them, and on a busy 2-core machine
    (JupyterLab, the browser, a training run in another kernel) that wait made
    one redraw take seconds (``benchmarks/explorer_latency.py``). One thread
    or two give the same numbers (checked bit for bit at depth 56).
    """
    before = torch.get_num_threads()
    if before == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@functools.lru_cache(maxsize=4)
def _fashion_batch_cached(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    from . import data

    images, labels = data.load_tensors(train=True)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(labels), generator=g)[:n]
    x = (images[idx].float().div(255.0) - data.MEAN) / data.STD
    return x.unsqueeze(1), labels[idx].clone()


def fashion_batch(n: int = 128, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed, normalized FashionMNIST training batch ``([n, 1, 28, 28] float32, [n] int64)`` (cached)."""
    if n < 2:
        raise ValueError(f"fashion_batch: n must be at least 2 (BatchNorm needs a batch), got {n}")
    x, y = _fashion_batch_cached(int(n), int(seed))
    return x.clone(), y.clone()


def draw_gradient_explorer(
    depth: int = 20,
    activation: str = "sigmoid",
    init: str = "default",
    bn: bool = False,
    shortcut: bool = False,
    arch: str = "mlp",
    seed: int = 0,
    *,
    inputs: torch.Tensor | None = None,
    targets: torch.Tensor | None = None,
    batch_size: int | None = None,
) -> Any:
    """Build one deep net, send one FashionMNIST batch through it, and show what happens.

    Left: per-layer weight-gradient norms (log scale) with the fitted per-layer
    factor. Middle: mean ± std of each activation layer's output. Right: share
    of saturated sigmoid/tanh outputs or of zero (dead) ReLU outputs. The
    model runs in float64 so even 1e-100 gradients are measured, not rounded
    to 0. Without ``inputs``/``targets`` it uses a fixed FashionMNIST batch of
    ``batch_size`` images (default 128 for the MLP, 16 for the CNN). Cheap: one
    forward/backward on one torch thread (restored afterwards), well under
    1.5 s at depth 100 on one CPU core, figure included.
    """
    import matplotlib.pyplot as plt

    from .plots import plot_grad_norms, plot_layer_stats

    if inputs is None or targets is None:
        inputs, targets = fashion_batch(batch_size or (128 if arch == "mlp" else 16), seed=0)
    with _torch_threads(1):  # tiny net: one thread is enough and does not stall on a busy CPU
        torch.manual_seed(seed)
        model = make_deep_net(arch, depth, activation=activation, init=init, bn=bn, shortcut=shortcut).double()
        model.train()
        grads = grad_norms(model, inputs, targets)
        stats = activation_stats(model, inputs)
    norms = grads["grad_norm"].to_numpy()
    ok = np.isfinite(norms) & (norms > 0)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), gridspec_kw={"width_ratios": [1.3, 1, 1]})
    variant = f"{arch.upper()}, {activation}, init={init}, {_variant_name(shortcut, bn)}, depth {depth}"
    plot_grad_norms({variant: grads}, ax=axes[0])
    if ok.sum() >= 3:
        fit = per_layer_factor(grads[ok])
        idx = grads["index"][ok].iloc[:-1]
        axes[0].plot(idx, fit.predict(idx.max() - idx), ":", color="gray", label=f"fit: ×{fit.factor:.3g} per layer toward the input")
        axes[0].legend(fontsize=8)
    ratio = norms[0] / norms[-1] if norms[-1] > 0 else float("nan")
    axes[0].set_title(f"first/last layer gradient = {ratio:.2g}", fontsize=10)
    x = stats["index"].to_numpy()
    axes[1].plot(x, stats["mean"], marker="o", markersize=3, label="mean")
    axes[1].fill_between(x, stats["mean"] - stats["std"], stats["mean"] + stats["std"], alpha=0.25, label="± std")
    axes[1].set_xlabel("activation layer index (input → output)")
    axes[1].set_ylabel("activation value (unitless)")
    axes[1].set_title("activation mean ± std", fontsize=10)
    axes[1].legend(fontsize=8)
    axes[1].grid(alpha=0.3)
    col = "frac_zero" if activation == "relu" else "frac_saturated"
    plot_layer_stats(stats, [col] + (["frac_dead_units"] if activation == "relu" else []), ax=axes[2])
    axes[2].set_title("dead ReLU outputs" if activation == "relu" else "saturated outputs", fontsize=10)
    fig.suptitle(variant, fontsize=11)
    fig.tight_layout()
    return fig


def draw_first_layer_grad_vs_depth(
    depths: Sequence[int] = (2, 5, 10, 20, 30, 50),
    arch: str = "mlp",
    activation: str = "sigmoid",
    init: str = "default",
    seeds: Sequence[int] = (0, 1, 2),
    *,
    inputs: torch.Tensor | None = None,
    targets: torch.Tensor | None = None,
    progress: bool = False,
) -> Any:
    """The four-curve plot: first-layer gradient norm vs depth, plain/residual × without/with BN."""
    from .plots import plot_first_layer_grad_vs_depth

    if inputs is None or targets is None:
        inputs, targets = fashion_batch(128 if arch == "mlp" else 32)
    df = first_layer_grad_vs_depth(
        depths, inputs=inputs, targets=targets, arch=arch, activation=activation, init=init, seeds=seeds, progress=progress
    )
    title = f"{arch.upper()}, {activation}, init={init}: gradient reaching the first layer"
    return plot_first_layer_grad_vs_depth(df, title=title)
