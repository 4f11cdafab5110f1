"""What flows through a network while it trains: gradient norms, activation statistics, update ratios, Jacobians.

The vanishing-gradient story measured on *any* module, layer by layer:

* :func:`grad_norms` (per-layer weight-gradient norms after one backward pass),
  :func:`activation_stats` (mean, std, dead and saturated units per activation
  layer: the forward half of the same story), :func:`update_to_data_ratios`
  (how big each step is compared with the weights), :func:`fit_exponential` /
  :func:`per_layer_factor` (how fast a gradient shrinks per layer) and
  :func:`chain_rule_check` / :func:`layer_jacobians` (the gradient as a product
  of Jacobians, checked against autograd). (Lessons 01-03, 05.)

Every diagnostic here leaves the model as it found it: hooks are removed and
BatchNorm's running statistics restored, even when the forward pass raises.
Shapes, parameter counts and FLOPs are in
:mod:`resnet_tutorial.diagnostics.shapes_and_counts`.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .shapes_and_counts import model_device_dtype

SIGMOID_SATURATION = 0.03
"""A sigmoid output below 0.03 or above 0.97 counts as saturated (its slope is then < 0.03, vs 0.25 at 0)."""
TANH_SATURATION = 0.97
"""A tanh output with |y| > 0.97 counts as saturated (its slope 1 - y² is then < 0.06, vs 1 at 0)."""
WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_ACTIVATION_KINDS = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Softplus,
)


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


def _prepare_inputs(model: nn.Module, inputs: Any, what: str) -> torch.Tensor:
    if not isinstance(inputs, torch.Tensor):
        raise ValueError(f"{what}: inputs must be a torch.Tensor batch, got {type(inputs).__name__}")
    if inputs.dim() < 2:
        raise ValueError(f"{what}: inputs need a batch dimension first, got shape {tuple(inputs.shape)}")
    device, dtype = model_device_dtype(model)
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
    kinds: tuple[type[nn.Module], ...] | None = WEIGHT_LAYERS,
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

    Lessons: 01.
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

    Lessons: 01.
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
        # one convention everywhere: the factor multiplies the gradient (×0.147), its inverse only in brackets
        if self.factor < 1:
            trend = f"÷{1 / self.factor:.3g}: the gradient shrinks"
        elif self.factor > 1:
            trend = "the gradient grows"
        else:
            trend = "the gradient keeps its size"
        return f"×{self.factor:.3g} per layer ({trend}; R² = {self.r2:.3f})"


def fit_exponential(x: Sequence[float] | np.ndarray, norms: Sequence[float] | np.ndarray) -> ExponentialFit:
    """Least-squares line through ``log10(norm)`` against ``x`` (layer index or depth).

    ``factor`` is the measured multiplicative change per unit of ``x``:
    0.25 means "a quarter per layer". Norms must be positive and finite
    (a gradient that underflowed to 0 has no logarithm: measure in float64).

    Lessons: 01.
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

    Lessons: 01.
    """
    _require = [c for c in ("index", "grad_norm") if c not in grads.columns]
    if _require:
        raise ValueError(f"per_layer_factor needs grad_norms() output; missing columns {_require}")
    df = grads.iloc[:-1] if skip_head and len(grads) > 2 else grads
    steps_back = df["index"].max() - df["index"]
    return fit_exponential(steps_back.to_numpy(), df["grad_norm"].to_numpy())


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
    actual change of the weights, ``W_after - W_before``. Karpathy's rule of
    thumb puts a healthy layer near 1e-3 (``log10 = -3``). ``batches`` is a
    DataLoader, a list of ``(x, y)`` pairs, or one pair; it is cycled.
    ``optimizer``: ``"sgd"``, ``"momentum"`` (SGD, 0.9) or ``"adam"``. By
    default a deep copy is trained so your model is unchanged
    (``copy_model=False`` trains it in place). The steps are
    :func:`resnet_tutorial.train.train_steps`.

    Columns: ``step`` (1 = after the first update), ``index``, ``layer``,
    ``type``, ``ratio``, ``log10_ratio``, ``loss`` (before that update). If
    the loss becomes NaN/inf, training stops and
    ``df.attrs["diverged_at_step"]`` says at which step (else ``None``).

    Lessons: 01.
    """
    from ..train import _cycle, train_steps

    if optimizer not in ("sgd", "momentum", "adam"):
        raise ValueError(f"update_to_data_ratios: optimizer must be 'sgd', 'momentum' or 'adam', got {optimizer!r}")
    net = copy.deepcopy(model) if copy_model else model
    modules = dict(net.named_modules())
    x0, _ = next(_cycle(batches))
    layers = _forward_order(net, _prepare_inputs(net, x0, "update_to_data_ratios"), WEIGHT_LAYERS)
    before = {n: modules[n].weight.detach().clone() for n in layers}
    rows: list[dict[str, Any]] = []

    def record(step: int, loss: float) -> None:
        for i, n in enumerate(layers):
            w = modules[n].weight.detach()
            if optimizer == "sgd":  # Karpathy's definition; exact even when W + update rounds back to W
                upd = (lr * modules[n].weight.grad.detach().double()).std()
            else:
                upd = (w - before[n]).double().std()
            ratio = float(upd / before[n].double().std())
            rows.append({"step": step, "index": i, "layer": n, "type": type(modules[n]).__name__, "ratio": ratio,
                         "log10_ratio": math.log10(ratio) if ratio > 0 else float("-inf"), "loss": loss})
            before[n] = w.clone()

    losses = train_steps(net, batches, steps, optimizer="adam" if optimizer == "adam" else "sgd", lr=lr,
                         momentum=0.9 if optimizer == "momentum" else 0.0, loss_fn=loss_fn, on_step=record,
                         progress=progress, desc="update ratios")
    out = pd.DataFrame(rows, columns=["step", "index", "layer", "type", "ratio", "log10_ratio", "loss"])
    out.attrs["diverged_at_step"] = len(losses) if not math.isfinite(losses[-1]) else None
    return out


def layer_jacobians(model: nn.Sequential, x: torch.Tensor) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """For ONE sample ``x`` (no batch dim), the Jacobian of every top-level child of ``model``.

    Returns ``[(name, a_in, J)]`` where ``J = d child(a_in) / d a_in`` has
    shape ``[out_features, in_features]`` (flattened). Runs in eval mode
    (BatchNorm as a fixed affine map, so one sample is well defined).

    Lessons: 01.
    """
    if not isinstance(model, nn.Sequential):
        raise ValueError("layer_jacobians needs an nn.Sequential (a chain of layers), e.g. make_deep_mlp(...)")
    was_training = model.training
    model.eval()
    out = []
    try:
        a = x.detach().unsqueeze(0).to(*model_device_dtype(model))
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

    Lessons: 01.
    """
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    jacs = layer_jacobians(model, x)
    was_training = model.training
    model.eval()
    try:
        acts = []
        a = x.detach().unsqueeze(0).to(*model_device_dtype(model)).requires_grad_(True)
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
