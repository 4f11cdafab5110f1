"""Experiments and explorers for lesson 02 (batch normalization).

Each experiment returns plain data (dicts / DataFrames) and has a ``plot_*`` or
``draw_*`` companion that turns it into a Figure, so the lesson stays thin and
the tests can check the numbers without looking at pictures.

* :func:`affine_recovery` - the post's example: a layer whose ideal output is
  N(2, 0.5^2); BN forces N(0, 1); gamma and beta learned by gradient descent
  bring the ideal distribution back.
* :func:`batch_stat_noise` - how noisy a batch's mean and variance are as a
  function of the batch size (about 1/sqrt(B)).
* :func:`batch_dependence` and :func:`train_eval_experiment` - what goes wrong
  when the train/eval switch is forgotten.
* :func:`bn_grad_norms` and :func:`bn_training_curves` - a deep CNN with and
  without BN: per-layer gradient norms and training loss per step.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Iterator, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from ..bn import BatchNorm2d, recompute_bn_stats
from ..data import fashion_batch, stratified_subset
from ..diagnostics import grad_norms
from ..models import make_deep_cnn
from ..plots import plot_step_losses
from ..train import train_steps

__all__ = [
    "bn_gradient_growth",
    "affine_recovery",
    "draw_affine_recovery",
    "batch_stat_noise",
    "plot_batch_stat_noise",
    "draw_batch_mean_spread",
    "SmallBNNet",
    "batch_dependence",
    "recompute_bn_stats",
    "train_eval_experiment",
    "plot_train_eval",
    "bn_grad_norms",
    "bn_training_curves",
    "draw_bn_training",
]


# --------------------------------------------------------------------------- affine recovery
def affine_recovery(
    target_mean: float = 2.0,
    target_std: float = 0.5,
    n: int = 4000,
    steps: int = 150,
    lr: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """Learn gamma and beta that turn BN's N(0, 1) output back into N(target_mean, target_std^2).

    The "ideal" output ``y`` of a layer is drawn from N(target_mean, target_std^2).
    What reaches BN is an affinely distorted version of it, ``z = 3 y - 7`` (the
    previous layer's arbitrary scale). BN normalizes ``z`` to zero mean and unit
    variance, losing the location and scale of ``y``; gradient descent on the
    mean squared error between ``gamma * x_hat + beta`` and ``y`` then recovers
    ``gamma ~ target_std`` and ``beta ~ target_mean``.

    Returns a dict with ``ideal``, ``normalized``, ``recovered`` (1-D numpy
    arrays), ``gamma``, ``beta`` (final floats) and ``history`` (DataFrame with
    ``step, gamma, beta, loss``).
    """
    if target_std <= 0:
        raise ValueError(f"target_std must be > 0, got {target_std}")
    if n < 2 or steps < 1:
        raise ValueError(f"need n >= 2 samples and steps >= 1, got n={n}, steps={steps}")
    g = torch.Generator().manual_seed(seed)
    ideal = target_mean + target_std * torch.randn(n, generator=g)
    z = 3.0 * ideal - 7.0  # the layer's raw output, on some arbitrary scale
    bn = BatchNorm2d(1)
    opt = torch.optim.SGD(bn.parameters(), lr=lr)
    x = z.view(n, 1, 1, 1)
    target = ideal.view(n, 1, 1, 1)
    history = []
    for step in range(steps + 1):
        out = bn(x)
        loss = torch.mean((out - target) ** 2)
        history.append(
            {"step": step, "gamma": bn.weight.item(), "beta": bn.bias.item(), "loss": loss.item()}
        )
        if step == steps:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        normalized = (z - z.mean()) / torch.sqrt(z.var(unbiased=False) + bn.eps)
        recovered = bn.weight * normalized + bn.bias
    return {
        "ideal": ideal.numpy(),
        "normalized": normalized.numpy(),
        "recovered": recovered.detach().numpy(),
        "gamma": bn.weight.item(),
        "beta": bn.bias.item(),
        "history": pd.DataFrame(history),
    }


def draw_affine_recovery(target_mean: float = 2.0, target_std: float = 0.5, steps: int = 150) -> Figure:
    """Histograms (ideal, after BN, after learned gamma/beta) and gamma/beta per step."""
    res = affine_recovery(target_mean, target_std, steps=steps)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    lo = min(res["ideal"].min(), res["normalized"].min(), -4)
    hi = max(res["ideal"].max(), res["normalized"].max(), 4)
    bins = np.linspace(lo, hi, 80)
    ax1.hist(res["normalized"], bins=bins, alpha=0.45, density=True, label="after BN: N(0, 1)")
    ax1.hist(res["ideal"], bins=bins, alpha=0.45, density=True,
             label=f"ideal output: N({target_mean:g}, {target_std:g}²)")
    ax1.hist(res["recovered"], bins=bins, histtype="step", linewidth=2, density=True, color="k",
             label=f"γ·x̂+β learned: γ={res['gamma']:.2f}, β={res['beta']:.2f}")
    ax1.set_xlabel("activation value")
    ax1.set_ylabel("density (1 / unit)")
    ax1.set_title("BN normalizes; γ and β can restore the ideal distribution", fontsize=10)
    ax1.legend(fontsize=8)
    h = res["history"]
    ax2.plot(h["step"], h["gamma"], label="γ (scale)")
    ax2.plot(h["step"], h["beta"], label="β (shift)")
    ax2.axhline(target_std, color="C0", linestyle="--", linewidth=1, label=f"target std {target_std:g}")
    ax2.axhline(target_mean, color="C1", linestyle="--", linewidth=1, label=f"target mean {target_mean:g}")
    ax2.set_xlabel("gradient-descent step")
    ax2.set_ylabel("parameter value")
    ax2.set_title("γ and β learned by SGD (MSE to the ideal output)", fontsize=10)
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- batch-statistics noise
def _per_sample_moments(values: torch.Tensor | None, seed: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per-sample mean and mean of squares (channel 0) plus values per sample.

    A batch's mean and biased variance follow exactly from these, so sampling
    many batches never has to touch the full images again.
    """
    if values is None:
        g = torch.Generator().manual_seed(seed)
        values = torch.randn(100_000, generator=g, dtype=torch.float64)
    values = values.to(torch.float64)
    if values.dim() == 1:
        return values, values * values, 1
    if values.dim() == 3:  # N x H x W (one channel)
        values = values.unsqueeze(1)
    if values.dim() != 4:
        raise ValueError(f"values must be 1-D, N x H x W or N x C x H x W, got shape {tuple(values.shape)}")
    ch = values[:, 0]
    return ch.mean(dim=(1, 2)), (ch * ch).mean(dim=(1, 2)), ch[0].numel()


def batch_stat_noise(
    values: torch.Tensor | None = None,
    batch_sizes: Sequence[int] = (2, 4, 8, 16, 32, 64, 128, 256),
    trials: int = 400,
    seed: int = 0,
) -> pd.DataFrame:
    """Spread (std over random batches) of the batch mean and batch variance.

    ``values`` are samples (1-D, default 100k draws of N(0, 1)) or images
    ``N x C x H x W`` (channel 0 is used; a batch's statistics are over all its
    pixels, as in ``BatchNorm2d``). For each batch size, ``trials`` random
    batches are drawn (indices with replacement; the pool is much larger than B).

    Returns columns ``batch_size, mean_std, var_std, pop_mean, pop_var``.
    """
    m1, m2, per_sample = _per_sample_moments(values, seed)
    n = len(m1)
    pop_mean = float(m1.mean())
    pop_var = float(m2.mean() - pop_mean**2)
    g = torch.Generator().manual_seed(seed + 1)
    rows = []
    for b in batch_sizes:
        if not 1 <= b <= n:
            raise ValueError(f"batch size {b} must be between 1 and the number of samples {n}")
        if b * per_sample < 2:
            raise ValueError("a batch needs at least 2 values for a variance; use batch sizes >= 2")
        idx = torch.randint(0, n, (trials, b), generator=g)  # n >> b: repeats are negligible
        mean = m1[idx].mean(dim=1)
        var = m2[idx].mean(dim=1) - mean**2
        rows.append(
            {
                "batch_size": int(b),
                "mean_std": float(mean.std()),
                "var_std": float(var.std()),
                "pop_mean": pop_mean,
                "pop_var": pop_var,
            }
        )
    return pd.DataFrame(rows)


def plot_batch_stat_noise(df: pd.DataFrame, title: str | None = None) -> Figure:
    """Log-log plot of the batch statistics' spread against B with a 1/sqrt(B) reference."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    b = df["batch_size"].to_numpy(dtype=float)
    for col, label in (("mean_std", "std of the batch mean"), ("var_std", "std of the batch variance")):
        y = df[col].to_numpy(dtype=float)
        ax.plot(b, y, marker="o", label=label)
        ref = y[-1] * np.sqrt(b[-1] / b)
        ax.plot(b, ref, linestyle=":", color="gray")
    ax.plot([], [], linestyle=":", color="gray", label="∝ 1/√B reference")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size B (samples, log scale)")
    ax.set_ylabel("spread over random batches (std, log scale)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(title or "Small batches give noisy BN statistics", fontsize=10)
    fig.tight_layout()
    return fig


def draw_batch_mean_spread(batch_size: int = 16, trials: int = 400, seed: int = 0) -> Figure:
    """Histogram of batch means and variances of N(0, 1) samples for one batch size."""
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2 for a variance, got {batch_size}")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(trials, batch_size, generator=g, dtype=torch.float64)
    means, variances = x.mean(dim=1).numpy(), x.var(dim=1, unbiased=False).numpy()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.5))
    a1.hist(means, bins=np.linspace(-2, 2, 61), color="C0")
    a1.axvline(0, color="k", linestyle="--", linewidth=1, label="true mean 0")
    a1.set_xlabel("batch mean μ_B")
    a1.set_title(f"B = {batch_size}: std of μ_B = {means.std():.3f} (1/√B = {1 / math.sqrt(batch_size):.3f})",
                 fontsize=10)
    a2.hist(variances, bins=np.linspace(0, 3, 61), color="C1")
    a2.axvline(1, color="k", linestyle="--", linewidth=1, label="true variance 1")
    a2.set_xlabel("batch variance σ²_B (biased)")
    a2.set_title(f"std of σ²_B = {variances.std():.3f}", fontsize=10)
    for a in (a1, a2):
        a.set_ylabel(f"count (of {trials} batches)")
        a.legend(fontsize=8)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- train / eval pitfalls
class SmallBNNet(nn.Module):
    """Two conv layers with batch norm, for 1 x 28 x 28 FashionMNIST images.

    ``norm_layer`` picks the BN implementation: our :class:`~resnet_tutorial.bn.BatchNorm2d`
    by default (it is a drop-in for ``nn.BatchNorm2d``).
    """

    def __init__(self, width: int = 16, num_classes: int = 10, norm_layer: type[nn.Module] = BatchNorm2d) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1, bias=False),
            norm_layer(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
            norm_layer(2 * width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def batch_dependence(model: nn.Module, x: torch.Tensor, seed: int = 0) -> pd.DataFrame:
    """Does sample 0's output depend on the rest of its batch? Train vs eval mode.

    Sample ``x[0]`` is run in two batches with different companions (two
    random halves of ``x[1:]``). Returns, per mode, the largest absolute
    difference of its logits between the two batches. The model is copied,
    so its running statistics and mode stay as they were.
    """
    if x.shape[0] < 5:
        raise ValueError(f"batch_dependence needs at least 5 samples, got {x.shape[0]}")
    m = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    rest = x[1:][torch.randperm(x.shape[0] - 1, generator=g)]
    half = rest.shape[0] // 2
    batch_a = torch.cat([x[:1], rest[:half]])
    batch_b = torch.cat([x[:1], rest[half:]])
    rows = []
    for mode in ("train", "eval"):
        m.train(mode == "train")
        with torch.no_grad():
            diff = (m(batch_a)[0] - m(batch_b)[0]).abs().max()
        rows.append({"mode": mode, "max_logit_difference": float(diff)})
    return pd.DataFrame(rows)


def random_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless mini-batches drawn at random (with replacement, seeded) from ``(x, y)``."""
    g = torch.Generator().manual_seed(seed)
    while True:
        idx = torch.randint(0, x.shape[0], (batch_size,), generator=g)
        yield x[idx], y[idx]


def _train_steps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float, batch_size: int,
                 seed: int, progress: bool = False, desc: str = "training") -> list[float]:
    """SGD with momentum 0.9 on random mini-batches (:func:`~resnet_tutorial.train.train_steps`); a
    diverged run ends with NaN."""
    losses = train_steps(model, random_batches(x, y, batch_size, seed), steps, optimizer="sgd", lr=lr,
                         momentum=0.9, progress=progress, desc=desc)
    return losses[:-1] + [float("nan")] if not math.isfinite(losses[-1]) else losses


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            correct += int((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
    return correct / x.shape[0]


def train_eval_experiment(
    steps: int = 300,
    per_class: int = 200,
    test_per_class: int = 100,
    lr: float = 0.05,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Train :class:`SmallBNNet` briefly, then test it with the mode switch used right and wrong.

    Scenarios (test accuracy on a class-balanced FashionMNIST test subset):

    * ``eval mode`` - the right way: running statistics, batch size irrelevant;
    * ``train mode, mixed batches of 256`` - forgot ``model.eval()``: batch
      statistics, close to eval with large shuffled batches...
    * ``train mode, one-class batches of 32`` - ...but sorted batches (all one
      class) are normalized away: predictions depend on batch composition;
    * ``train mode, batch of 1`` - per-image statistics;
    * ``eval mode, running stats never updated`` - running mean 0 / var 1, as if
      the statistics had never been collected (or not loaded);
    * ``eval mode, running stats recomputed`` - :func:`recompute_bn_stats` on the
      training subset: removes the lag of the running averages.

    Returns ``{"accuracy": DataFrame(scenario, accuracy), "losses": list,
    "running_mean_changed": bool}`` where the last entry says whether testing
    in train mode overwrote the running statistics (it does).
    """
    torch.manual_seed(seed)
    x, y = stratified_subset(True, per_class, seed)
    xt, yt = stratified_subset(False, test_per_class, seed)
    model = SmallBNNet()
    losses = _train_steps(model, x, y, steps, lr, batch_size, seed, progress, "SmallBNNet")
    rows = []
    model.eval()
    rows.append(("eval mode (correct)", _accuracy(model, xt, yt, 256)))
    trained = copy.deepcopy(model)

    model.train()
    perm = torch.randperm(len(yt), generator=torch.Generator().manual_seed(seed))
    rows.append(("train mode, mixed batches of 256", _accuracy(model, xt[perm], yt[perm], 256)))
    bn0 = model.features[1]
    changed = not torch.allclose(bn0.running_mean, trained.features[1].running_mean)
    order = torch.argsort(yt, stable=True)
    rows.append(("train mode, one-class batches of 32", _accuracy(model, xt[order], yt[order], 32)))
    rows.append(("train mode, batch of 1", _accuracy(model, xt, yt, 1)))

    fresh = copy.deepcopy(trained)
    for m in fresh.modules():
        if hasattr(m, "reset_running_stats"):
            m.reset_running_stats()
    fresh.eval()
    rows.append(("eval mode, running stats never updated", _accuracy(fresh, xt, yt, 256)))
    recomputed = recompute_bn_stats(copy.deepcopy(trained), x)
    rows.append(("eval mode, running stats recomputed", _accuracy(recomputed, xt, yt, 256)))
    return {
        "accuracy": pd.DataFrame(rows, columns=["scenario", "accuracy"]),
        "losses": losses,
        "running_mean_changed": changed,
    }


def plot_train_eval(acc: pd.DataFrame) -> Figure:
    """Horizontal bars of test accuracy per scenario with the 10 % chance level."""
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    y = np.arange(len(acc))
    colors = ["C2" if s.startswith("eval mode") and "never" not in s else "C3" for s in acc["scenario"]]
    ax.barh(y, 100 * acc["accuracy"], color=colors)
    for yi, a in zip(y, acc["accuracy"]):
        ax.text(100 * a + 1, yi, f"{100 * a:.1f} %", va="center", fontsize=8)
    ax.axvline(10, color="gray", linestyle=":")
    ax.text(10.5, len(acc) - 0.5, "chance (10 classes)", color="gray", fontsize=8, va="bottom")
    ax.set_yticks(y, acc["scenario"])
    ax.invert_yaxis()
    ax.set_xlim(0, 105)
    ax.set_xlabel("test accuracy (%)")  # no legend box: it would cover a bar's label
    ax.set_title("The same trained weights, tested with the BN mode set right and wrong", fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- BN on / off
def bn_gradient_growth(depths: Sequence[int] = (10, 20, 40, 56), activation: str = "relu", n: int = 128,
                       seed: int = 0) -> pd.DataFrame:
    """With BN, how the per-layer gradient norms of a plain deep CNN spread as depth grows.

    One row per depth: ``first`` and ``last`` layer gradient norm, ``first_over_last`` (> 1: the
    gradient grows toward the input) and ``max_over_min`` over all layers, at initialization.
    """
    rows = []
    for depth in depths:
        g = bn_grad_norms(depth=depth, activation=activation, n=n, seed=seed)["with BN"]["grad_norm"]
        rows.append({"depth": depth, "first": g.iloc[0], "last": g.iloc[-1],
                     "first_over_last": g.iloc[0] / g.iloc[-1], "max_over_min": g.max() / g.min()})
    return pd.DataFrame(rows)


def bn_grad_norms(
    depth: int = 20,
    activation: str = "relu",
    n: int = 128,
    channels: int = 8,
    seed: int = 0,
) -> dict[str, pd.DataFrame]:
    """Per-layer gradient norms of ``gradients.make_deep_cnn`` without and with BN.

    One forward/backward pass on a fixed FashionMNIST batch at initialization.
    Returns ``{"no BN": df, "with BN": df}`` (``gradients.grad_norms`` frames),
    ready for ``plots.plot_grad_norms``.
    """
    x, y = fashion_batch(n, seed)
    out = {}
    for name, bn in (("no BN", False), ("with BN", True)):
        torch.manual_seed(seed)
        model = make_deep_cnn(depth, channels=channels, activation=activation, bn=bn)
        model.train()
        out[name] = grad_norms(model, x, y)
    return out


def bn_training_curves(
    depth: int = 20,
    activation: str = "relu",
    steps: int = 300,
    lr: float = 0.05,
    batch_size: int = 64,
    per_class: int = 200,
    channels: int = 16,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, pd.DataFrame]:
    """Training loss per step of the same deep CNN without and with BN.

    Both nets start from the same seed, see the same mini-batches and use the
    same SGD (momentum 0.9) learning rate. Returns ``{"no BN": df, "with BN": df}``
    with columns ``step, loss`` (ready for ``plots.plot_step_losses``). A run
    that diverges stops early (its last loss is NaN).
    """
    x, y = stratified_subset(True, per_class, seed)
    out = {}
    for name, bn in (("no BN", False), ("with BN", True)):
        torch.manual_seed(seed)
        model = make_deep_cnn(depth, channels=channels, activation=activation, bn=bn)
        losses = _train_steps(model, x, y, steps, lr, batch_size, seed, progress, name)
        out[name] = pd.DataFrame({"step": np.arange(1, len(losses) + 1), "loss": losses})
    return out


def draw_bn_training(depth: int = 10, lr: float = 0.05, steps: int = 100, activation: str = "relu") -> Figure:
    """Explorer: loss curves with and without BN for a chosen depth and learning rate."""
    runs = bn_training_curves(depth=depth, activation=activation, steps=steps, lr=lr,
                              per_class=100, channels=8, progress=False)
    return plot_step_losses(runs, chance_level=math.log(10),
                            title=f"{depth} conv layers, {activation}, SGD lr={lr:g}: with vs without BN")
