"""Lesson 10's exercises: the autocorrelation of a gradient, from its formula, and the input gradient
dy/dx of a net, by autograd."""

from __future__ import annotations

import torch

from .catalogue import Case, Exercise, Mistake, register
from .cases import randn


# --------------------------------------------------------------------------- autocorrelation
def autocorrelation(g: torch.Tensor, max_lag: int) -> torch.Tensor:
    """r(0 … max_lag) of the 1-D tensor ``g``: mean removed, each lag averaged over its n − k pairs, over r(0)'s."""
    d = g - g.mean()
    n = len(g)
    return torch.stack([(d[:n - k] * d[k:]).mean() for k in range(max_lag + 1)]) / (d * d).mean()


def _autocorrelation_family(g, max_lag, *, flags=frozenset()):
    d = g if "no_mean" in flags else g - g.mean()
    n = len(g)
    sums = [(d[:n - k] * d[k:]).sum() for k in range(max_lag + 1)]
    covs = torch.stack([s / n if "no_overlap" in flags else s / (n - k) for k, s in enumerate(sums)])
    return covs if "no_normalize" in flags else covs / covs[0]


def _series(label: str, make_g, max_lag: int) -> Case:
    return Case(label, lambda: ((make_g(), max_lag), {}))


_AUTOCORRELATION_CASES = [
    _series("white noise, 64 points, lags 0-4", lambda: randn(1, 64), 4),
    _series("white noise around an offset of 3 (a gradient with a mean)", lambda: 3.0 + randn(2, 128), 8),
    _series("a random walk (brown noise), 100 points", lambda: randn(3, 100).cumsum(0), 10),
    _series("eight points, every lag up to 7", lambda: torch.tensor([1.0, 2, 0, 3, 5, 4, 2, 1], dtype=torch.float64), 7),
]

register(Exercise(
    "autocorrelation", "10", "The autocorrelation of a gradient, from its formula", autocorrelation,
    cases=list(_AUTOCORRELATION_CASES),
    mistakes=[
        Mistake("no_mean", "The mean is not removed: a gradient with an offset then looks correlated at every lag, "
                           "whatever its fluctuations do. Subtract g.mean() first (the ḡ in the formula)."),
        Mistake("no_overlap", "Every lag is divided by n, but lag k has only n − k pairs: the correlation then shrinks "
                              "with k like a triangle even for a perfectly smooth signal. Average each lag over its "
                              "own pairs: (d[:n-k] * d[k:]).mean()."),
        Mistake("no_normalize", "These are covariances, not correlations: divide every lag by the lag-0 value "
                                "(the variance), so that r(0) = 1."),
    ],
    hints=["Subtract the mean once: d = g - g.mean(). Lag k pairs d[:n-k] with d[k:].",
           "r(k) = (d[:n-k] * d[k:]).mean() / (d * d).mean(), for k = 0 … max_lag; torch.stack the list."],
    family=_autocorrelation_family,
))


# --------------------------------------------------------------------------- input_gradient
def input_gradient(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """dy/dx at every row of ``x`` [n, 1] for a net that maps each row on its own: a tensor shaped like ``x``."""
    x = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(net(x).sum(), x)
    return g


def _gradient_family(net, x, *, flags=frozenset()):
    if "output" in flags:
        return net(x).detach()
    x = x.detach().clone().requires_grad_(True)
    y = net(x)
    (g,) = torch.autograd.grad(y.mean() if "mean" in flags else y.sum(), x)
    return g


def _net_case(label: str, n: int, **kw) -> Case:
    def make() -> tuple[tuple, dict]:
        from ..lessons.l10_shattered_gradients import ShatterNet  # the lesson's net, lazily

        return (ShatterNet(width=24, **kw), torch.linspace(-2.0, 2.0, n).unsqueeze(1)), {}
    return Case(label, make)


_GRADIENT_CASES = [
    _net_case("no hidden layer (a straight line: dy/dx is one number)", 5, depth=0, seed=1),
    _net_case("three plain ReLU layers, 16 inputs", 16, depth=3, seed=2),
    _net_case("ten residual layers, β = 0.5, 64 inputs", 64, depth=10, shortcut=True, beta=0.5, seed=3),
]

register(Exercise(
    "input_gradient", "10", "The input gradient dy/dx, by autograd", input_gradient,
    cases=list(_GRADIENT_CASES),
    mistakes=[
        Mistake("output", "This is the net's output y, not its derivative: make x require grad, compute "
                          "y = net(x), and ask autograd for d(sum y)/dx."),
        Mistake("mean", "Backpropagating y.mean() divides every derivative by n: each row's dy/dx is the derivative of "
                        "the sum, because row i of the sum depends on x_i only."),
    ],
    hints=["x = x.detach().clone().requires_grad_(True); then y = net(x).",
           "y has one value per row and each depends only on its own x_i, so the gradient of y.sum() with respect to x "
           "holds every dy_i/dx_i: torch.autograd.grad(y.sum(), x)[0] (or y.sum().backward() and x.grad)."],
    family=_gradient_family,
))
