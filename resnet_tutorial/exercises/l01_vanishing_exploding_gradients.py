"""Lesson 01's exercises: per-layer gradient norms, and backpropagation as a product of Jacobians."""

from __future__ import annotations

import functools
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .catalogue import Case, Exercise, Mistake, register
from .cases import labels, randn

_WEIGHT_LAYERS = (nn.Conv2d, nn.Linear)


# --------------------------------------------------------------------------- weight_grad_norms
def weight_grad_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """L2 norm of every Conv2d/Linear weight gradient, in ``model.modules()`` order, after one
    fresh cross-entropy backward pass on ``(x, y)``."""
    model.zero_grad(set_to_none=True)
    nn.CrossEntropyLoss()(model(x), y).backward()
    return [float(m.weight.grad.detach().double().norm()) for m in model.modules() if isinstance(m, _WEIGHT_LAYERS)]


def _grad_norms_family(model, x, y, *, flags=frozenset()):
    if "not_zeroed" not in flags:
        model.zero_grad()
    F.cross_entropy(model(x), y, reduction="sum" if "sum_loss" in flags else "mean").backward()
    if "zeroed_after_backward" in flags:
        model.zero_grad()
    if "all_parameters" in flags:
        tensors = list(model.parameters())
    else:
        if "with_batchnorm" in flags:
            layers = [m for m in model.modules() if isinstance(getattr(m, "weight", None), torch.Tensor)]
        else:
            layers = [m for m in model.modules() if isinstance(m, nn.Linear if "linear_only" in flags
                                                               else _WEIGHT_LAYERS)]
        tensors = [m.weight for m in layers]
    if "reversed" in flags:
        tensors = tensors[::-1]
    out = []
    for p in tensors:
        t = p.detach() if "weight_norms" in flags else p.grad
        out.append(float(t.pow(2).sum()) if "squared" in flags else float(t.norm()))
    return out


def _mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 3))


def _bn_cnn(seed: int = 1) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Conv2d(4, 4, 3, stride=2), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))


def _mlp_args(seed: int = 0):
    return (_mlp(seed), randn(10 + seed, 4, 3, 2, 2, dtype=torch.float32), labels(20 + seed, 4)), {}


def _cnn_args(seed: int = 1, stale: bool = False):
    model = _bn_cnn(seed)
    if stale:  # an earlier backward pass left its gradients in .grad
        F.cross_entropy(model(randn(99, 5, 1, 6, 6, dtype=torch.float32)), labels(98, 5)).backward()
    return (model, randn(30 + seed, 5, 1, 6, 6, dtype=torch.float32), labels(40 + seed, 5)), {}


def _twice(fn, *args, **kwargs):
    fn(*args, **kwargs)
    return fn(*args, **kwargs)


register(Exercise(
    "weight_grad_norms", "01", "Per-layer weight-gradient norms", weight_grad_norms,
    cases=[
        Case("a 3-layer MLP on a batch of 4", _mlp_args),
        Case("a small CNN with BatchNorm, a batch of 5", _cnn_args),
        Case("the CNN arriving with stale gradients from an earlier step in .grad",
             functools.partial(_cnn_args, stale=True)),
        Case("the MLP with your function called twice in a row (the second answer is checked)",
             functools.partial(_mlp_args, 2), run=_twice),
    ],
    mistakes=[
        Mistake("weight_norms", "These are the norms of the weights themselves (layer.weight), not of their "
                                "gradients: after loss.backward() each gradient is in layer.weight.grad."),
        Mistake("not_zeroed", "The gradients were never zeroed: PyTorch *adds* every backward pass's gradients to "
                              "whatever is already in .grad, so stale gradients (or your previous call's) are "
                              "included. Call model.zero_grad() before loss.backward()."),
        Mistake("with_batchnorm", "You included BatchNorm's weight (γ) as well: only Conv2d and Linear layers "
                                  "count here. Filter with isinstance(m, (nn.Conv2d, nn.Linear))."),
        Mistake("squared", "These are squared norms (the sum of squares): take the square root, e.g. "
                           "g.norm() or g.pow(2).sum().sqrt()."),
        Mistake("reversed", "The norms come out in reverse order (output to input): keep the order of "
                            "model.modules(), first layer first."),
        Mistake("all_parameters", "You measured every parameter's gradient, biases and BatchNorm's γ and β too: "
                                  "only the weight of each Conv2d and Linear layer counts, one number per layer."),
        Mistake("linear_only", "The Conv2d layers are missing: measure the weight gradient of every nn.Conv2d *and* "
                               "nn.Linear, isinstance(m, (nn.Conv2d, nn.Linear))."),
        Mistake("sum_loss", "The gradients are N times too large: the loss was summed over the batch "
                            "(reduction='sum'). Use F.cross_entropy's default, the mean over the batch."),
        Mistake("zeroed_after_backward", "The gradients are gone: zero_grad() ran *after* backward() (it sets every "
                                         ".grad to None), so there is nothing left to measure. Zero them before the "
                                         "backward pass."),
    ],
    hints=["Zero the old gradients, run the model, compute F.cross_entropy(model(x), y), call .backward().",
           "Then loop over model.modules(), keep the nn.Conv2d and nn.Linear ones, and read m.weight.grad.",
           "float(m.weight.grad.norm()) turns each norm into a plain Python float."],
    family=_grad_norms_family,
))


# --------------------------------------------------------------------------- chain_rule_product
def chain_rule_product(jacobians: list[torch.Tensor], grad_output: torch.Tensor) -> torch.Tensor:
    """dL/da(0) from the layer Jacobians ``J(k) = d a(k+1) / d a(k)`` (shape out × in, in layer order)
    and ``grad_output = dL/da(L)``: the row vector times J(L−1) ··· J(0)."""
    g = grad_output
    for jac in reversed(jacobians):
        g = g @ jac
    return g


def _chain_family(jacobians, grad_output, *, flags=frozenset()):
    order = list(jacobians) if "wrong_order" in flags else list(reversed(jacobians))
    if "skip_first" in flags:
        order = [j for j in order if j is not jacobians[0]]
    if "skip_last" in flags:
        order = [j for j in order if j is not jacobians[-1]]
    if "no_grad_output" in flags:
        return functools.reduce(lambda p, j: p @ j, order[1:], order[0])
    g = grad_output.reshape(1, -1) if "row_matrix" in flags else grad_output
    for jac in order:
        if "transposed" in flags:
            g = jac @ g
        else:
            g = g * jac if "elementwise" in flags else g @ jac
    return g


def _jacobians(seed: int, sizes: Sequence[int], scale: float = 1.0):
    """Jacobians for layers with ``sizes[0] → sizes[1] → ...`` units, and dL/da(L)."""
    jacs = [scale * randn(seed + k, sizes[k + 1], sizes[k]) for k in range(len(sizes) - 1)]
    return (jacs, randn(seed + 100, sizes[-1])), {}


register(Exercise(
    "chain_rule_product", "01", "Backpropagation as a product of Jacobians", chain_rule_product,
    cases=[
        Case("one 3×3 Jacobian", functools.partial(_jacobians, 0, (3, 3))),
        Case("three square 4×4 Jacobians", functools.partial(_jacobians, 10, (4, 4, 4, 4))),
        Case("three Jacobians of different sizes: 5 → 4 → 3 → 2 units", functools.partial(_jacobians, 20, (5, 4, 3, 2))),
        Case("six small 3×3 Jacobians (a vanishing product)", functools.partial(_jacobians, 30, (3,) * 7, 0.25)),
    ],
    mistakes=[
        Mistake("wrong_order", "You multiplied the Jacobians in layer order, J(0) first. The gradient meets them on "
                               "its way *back*: start from dL/da(L) and multiply by J(L−1), then J(L−2), ..., J(0) "
                               "last (loop over reversed(jacobians))."),
        Mistake("transposed", "You computed J @ g, i.e. multiplied by the transposed Jacobians. With the row-vector "
                              "convention of the lesson the gradient is g @ J: dL/da(k) = dL/da(k+1) · J(k)."),
        Mistake("skip_first", "Off by one: J(0) is missing, so this is dL/da(1), the gradient at the first layer's "
                              "output. Multiply by every Jacobian, J(0) included."),
        Mistake("skip_last", "Off by one: J(L−1), the last layer's Jacobian, is missing. The gradient meets it "
                             "first on its way back: multiply by every Jacobian."),
        Mistake("row_matrix", "The answer is a 1 × n matrix: return a 1-D tensor, as grad_output is (drop the extra "
                              "dimension with g[0] or g.squeeze(0), or keep g 1-D throughout)."),
        Mistake("elementwise", "* multiplies element by element (with broadcasting): the chain rule needs the "
                               "matrix product, g @ J."),
        Mistake("no_grad_output", "You returned the product of the Jacobians, a matrix: multiply grad_output by it "
                                  "(grad_output @ product) to get the gradient, a vector."),
    ],
    hints=["Start with g = grad_output and multiply it by one Jacobian per layer.",
           "The row vector goes on the left: g = g @ J. Which Jacobian does the gradient meet first on its way back?",
           "for J in reversed(jacobians): g = g @ J"],
    family=_chain_family, rtol=1e-7, atol=1e-10, keeps_inputs=True,
))
