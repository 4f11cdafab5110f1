"""Lesson 10: autocorrelation, input_gradient."""

import numpy as np
import torch

from . import right, wrong


# --------------------------------------------------------------------------- autocorrelation
@right("the lesson's solution: slices and a stack")
def autocorrelation(g, max_lag):
    d = g - g.mean()
    n = len(g)
    return torch.stack([(d[:n - k] * d[k:]).mean() for k in range(max_lag + 1)]) / (d * d).mean()


@right("a loop with the formula's sums written out")
def autocorrelation(g, max_lag):
    n = len(g)
    mean = g.sum() / n
    var = ((g - mean) ** 2).sum() / n
    out = torch.zeros(max_lag + 1, dtype=g.dtype)
    for k in range(max_lag + 1):
        total = 0.0
        for i in range(n - k):
            total = total + (g[i] - mean) * (g[i + k] - mean)
        out[k] = total / (n - k) / var
    return out


@right("numpy's correlate, then divided by the overlap")
def autocorrelation(g, max_lag):
    d = (g - g.mean()).numpy()
    n = len(d)
    full = np.correlate(d, d, mode="full")[n - 1:n + max_lag]
    cov = full / (n - np.arange(max_lag + 1))
    return torch.from_numpy(cov / cov[0])


@wrong("the mean kept in", mistake="no_mean")
def autocorrelation(g, max_lag):
    n = len(g)
    return torch.stack([(g[:n - k] * g[k:]).mean() for k in range(max_lag + 1)]) / (g * g).mean()


@wrong("every lag divided by n", mistake="no_overlap")
def autocorrelation(g, max_lag):
    d = g - g.mean()
    n = len(g)
    return torch.stack([(d[:n - k] * d[k:]).sum() / n for k in range(max_lag + 1)]) / (d * d).mean()


@wrong("covariances, not divided by the variance", mistake="no_normalize")
def autocorrelation(g, max_lag):
    d = g - g.mean()
    n = len(g)
    return torch.stack([(d[:n - k] * d[k:]).mean() for k in range(max_lag + 1)])


@wrong("np.correlate normalised at lag 0: the naive estimator (no mean, no overlap)")
def autocorrelation(g, max_lag):
    x = g.numpy()
    n = len(x)
    full = np.correlate(x, x, mode="full")[n - 1:n + max_lag]
    return torch.from_numpy(full / full[0])


# --------------------------------------------------------------------------- input_gradient
@right("autograd.grad of the summed output")
def input_gradient(net, x):
    x = x.detach().clone().requires_grad_(True)
    return torch.autograd.grad(net(x).sum(), x)[0]


@right("backward and x.grad")
def input_gradient(net, x):
    x = x.clone().requires_grad_()
    net(x).sum().backward()
    return x.grad


@right("backward with a gradient of ones")
def input_gradient(net, x):
    x = x.detach().requires_grad_(True)
    y = net(x)
    y.backward(torch.ones_like(y))
    return x.grad.detach()


@wrong("the output instead of its derivative", mistake="output")
def input_gradient(net, x):
    with torch.no_grad():
        return net(x)


@wrong("the mean backpropagated", mistake="mean")
def input_gradient(net, x):
    x = x.detach().clone().requires_grad_(True)
    net(x).mean().backward()
    return x.grad


@wrong("a finite difference with a large step")
def input_gradient(net, x):
    with torch.no_grad():
        return (net(x + 0.1) - net(x - 0.1)) / 0.2
