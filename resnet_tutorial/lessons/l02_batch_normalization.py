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
from ..data import MEAN, STD, fashion_batch, load_tensors, stratified_subset
from ..device import torch_threads
from ..diagnostics import grad_norms
from ..diagrams import draw_block
from ..live import LiveFigure, Panel, RunPlot, nice_limits
from ..models import make_deep_cnn
from ..train import train_steps

__all__ = [
    "bn_in_action",
    "plot_bn_in_action",
    "bn_with_wrong_backward",
    "GAMMA_MODES",
    "AffineRecoveryExplorer",
    "SPREAD_SOURCES",
    "BatchSpreadExplorer",
    "BNTrainingRun",
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


# --------------------------------------------------------------------------- BN in action
def bn_in_action(n: int = 64, scales: Sequence[float] = (0.25, 1.0, 4.0), seed: int = 0) -> dict[str, Any]:
    """A conv → BN → ReLU block on real images: each channel's values before and after BN.

    The conv (1 → ``len(scales)`` channels, 3×3, no bias) has PyTorch's default
    initialization with filter ``c`` multiplied by ``scales[c]``, so the channels
    start on different scales, as the channels of a real layer do. BN is our
    :class:`~resnet_tutorial.bn.BatchNorm2d` in training mode (γ = 1, β = 0).

    Returns ``{"block", "before", "after", "table"}``: the block, the conv's and
    BN's outputs (``n × C × 28 × 28``) and one row per channel with the mean and
    std of all its ``n·28·28`` values before and after BN.
    """
    if not scales or min(scales) <= 0:
        raise ValueError(f"scales must be positive numbers, one per channel, got {scales}")
    x, _ = fashion_batch(n, seed)
    torch.manual_seed(seed)
    block = nn.Sequential(nn.Conv2d(1, len(scales), 3, padding=1, bias=False), BatchNorm2d(len(scales)), nn.ReLU())
    with torch.no_grad():
        block[0].weight.mul_(torch.tensor(scales, dtype=torch.float32).view(-1, 1, 1, 1))
        before = block[0](x)
        after = block[1](before)
    rows = [{"channel": c, "mean before": before[:, c].mean().item(), "std before": before[:, c].std().item(),
             "mean after": after[:, c].mean().item(), "std after": after[:, c].std().item()}
            for c in range(len(scales))]
    return {"block": block, "before": before, "after": after, "table": pd.DataFrame(rows).set_index("channel")}


def plot_bn_in_action(demo: dict[str, Any]) -> Figure:
    """The block (drawn from the module) and each channel's histogram before and after BN."""
    fig = plt.figure(figsize=(12, 3.6))
    grid = fig.add_gridspec(1, 3, width_ratios=[0.55, 1, 1], wspace=0.3)
    draw_block(demo["block"], input_shape=(1, 28, 28), ax=fig.add_subplot(grid[0, 0]), title="")
    before, after = demo["before"], demo["after"]
    for k, (values, title) in enumerate(((before, "conv output, per channel (before BN)"),
                                         (after, "BN output, per channel (γ = 1, β = 0)"))):
        ax = fig.add_subplot(grid[0, k + 1])
        lim = float(values.abs().quantile(0.999)) if values.numel() < 2**24 else float(values.abs().max())
        bins = np.linspace(-lim, lim, 81)
        for c in range(values.shape[1]):
            ax.hist(values[:, c].flatten().numpy(), bins=bins, histtype="step", linewidth=1.5, density=True,
                    label=f"channel {c}")
        ax.set_yscale("log")
        ax.set_xlabel("activation value")
        ax.set_ylabel("density (log scale)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="upper right")
    return fig


class _StatsAsConstants(torch.autograd.Function):
    """Training-mode BN whose backward treats μ_B and σ²_B as constants: the classic wrong derivative."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        inv_std = 1.0 / torch.sqrt(x.var(dim=(0, 2, 3), keepdim=True, unbiased=False) + 1e-5)
        x_hat = (x - mean) * inv_std
        ctx.save_for_backward(x_hat, inv_std, gamma)
        return gamma.view(1, -1, 1, 1) * x_hat + beta.view(1, -1, 1, 1)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x_hat, inv_std, gamma = ctx.saved_tensors
        grad_x = grad * gamma.view(1, -1, 1, 1) * inv_std  # forgets that every x moves μ_B and σ²_B too
        return grad_x, (grad * x_hat).sum(dim=(0, 2, 3)), grad.sum(dim=(0, 2, 3))


def bn_with_wrong_backward(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Training-mode BN (ε = 1e-5) with a deliberately wrong backward: the batch statistics treated as constants.

    Its forward pass is right; the gradient it reports for ``x`` misses the
    terms through μ_B and σ²_B. A negative control for ``gradcheck``.
    """
    return _StatsAsConstants.apply(x, gamma, beta)


# --------------------------------------------------------------------------- affine recovery
GAMMA_MODES = ("learned", "frozen at 1", "frozen at 0")


def affine_recovery(
    target_mean: float = 2.0,
    target_std: float = 0.5,
    n: int = 4000,
    steps: int = 150,
    lr: float = 0.05,
    seed: int = 0,
    gamma: str = "learned",
) -> dict[str, Any]:
    """Learn gamma and beta that turn BN's N(0, 1) output back into N(target_mean, target_std^2).

    The "ideal" output ``y`` of a layer is drawn from N(target_mean, target_std^2).
    What reaches BN is an affinely distorted version of it, ``z = 3 y - 7`` (the
    previous layer's arbitrary scale). BN normalizes ``z`` to zero mean and unit
    variance, losing the location and scale of ``y``; gradient descent on the
    mean squared error between ``gamma * x_hat + beta`` and ``y`` then recovers
    ``gamma ~ target_std`` and ``beta ~ target_mean``.

    ``gamma`` is ``"learned"`` or held fixed (``"frozen at 1"``: BN without a
    scale; ``"frozen at 0"``: every output is beta, the input is lost): the
    failures the learner should see next to the success. The loss is a
    quadratic with curvature 2 in gamma and in beta (x_hat has mean 0 and
    variance 1), so plain SGD converges for ``lr < 1``, in one step at
    ``lr = 0.5``, oscillates at 1 and diverges above; a run whose parameters
    pass 1e6 stops there (``diverged_at`` is that step, else ``None``).

    Returns a dict with ``ideal``, ``normalized``, ``recovered`` (1-D numpy
    arrays; ``recovered`` is NaN after a divergence), ``gamma``, ``beta``
    (final floats), ``history`` (DataFrame with ``step, gamma, beta, loss``)
    and ``diverged_at``.
    """
    if target_std <= 0:
        raise ValueError(f"target_std must be > 0, got {target_std}")
    if n < 2 or steps < 1:
        raise ValueError(f"need n >= 2 samples and steps >= 1, got n={n}, steps={steps}")
    if gamma not in GAMMA_MODES:
        raise ValueError(f"gamma must be one of {GAMMA_MODES}, got {gamma!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    g = torch.Generator().manual_seed(seed)
    ideal = target_mean + target_std * torch.randn(n, generator=g)
    z = 3.0 * ideal - 7.0  # the layer's raw output, on some arbitrary scale
    bn = BatchNorm2d(1)
    if gamma != "learned":
        with torch.no_grad():
            bn.weight.fill_(0.0 if gamma == "frozen at 0" else 1.0)
        bn.weight.requires_grad_(False)
    opt = torch.optim.SGD([p for p in bn.parameters() if p.requires_grad], lr=lr)
    x = z.view(n, 1, 1, 1)
    target = ideal.view(n, 1, 1, 1)
    history, diverged_at = [], None
    for step in range(steps + 1):
        out = bn(x)
        loss = torch.mean((out - target) ** 2)
        history.append(
            {"step": step, "gamma": bn.weight.item(), "beta": bn.bias.item(), "loss": loss.item()}
        )
        if max(abs(bn.weight.item()), abs(bn.bias.item())) > 1e6 or not math.isfinite(loss.item()):
            diverged_at = step
            break
        if step == steps:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        normalized = (z - z.mean()) / torch.sqrt(z.var(unbiased=False) + bn.eps)
        recovered = bn.weight * normalized + bn.bias
        if diverged_at is not None:
            recovered = torch.full_like(recovered, float("nan"))
    return {
        "ideal": ideal.numpy(),
        "normalized": normalized.numpy(),
        "recovered": recovered.detach().numpy(),
        "gamma": bn.weight.item(),
        "beta": bn.bias.item(),
        "history": pd.DataFrame(history),
        "diverged_at": diverged_at,
    }


class AffineRecoveryExplorer(LiveFigure):
    """Explorer: BN's output, the ideal one, and what the learned γ·x̂ + β makes of it; γ and β per step.

    Controls: the ideal distribution (``target_mean``, ``target_std``), the
    learning rate ``lr`` (above 1 the run diverges) and ``gamma`` (learned, or
    frozen at 1 or 0: :data:`GAMMA_MODES`). Histograms on fixed 0.1-wide bins.
    """

    figsize = (11.0, 3.9)
    edges = np.linspace(-12.0, 12.0, 241)

    def compute(self, target_mean: float = 2.0, target_std: float = 0.5, lr: float = 0.05, gamma: str = "learned",
                steps: int = 150) -> dict[str, Any]:
        with torch_threads(1):  # one parameter pair: a second thread only adds waiting
            res = affine_recovery(target_mean, target_std, steps=steps, lr=lr, gamma=gamma)
        hist = {k: np.histogram(res[k], bins=self.edges, density=True)[0] if np.isfinite(res[k]).all()
                else np.zeros(len(self.edges) - 1) for k in ("normalized", "ideal", "recovered")}
        return {**res, "hist": hist}

    def build(self, fig: Figure) -> None:
        self.ax1, self.ax2 = fig.subplots(1, 2)
        e = self.edges
        zero = np.zeros(len(e) - 1)
        self.bn_hist = self.ax1.stairs(zero, e, fill=True, alpha=0.45, color="C0", label="after BN: x̂ ~ N(0, 1)")
        self.ideal_hist = self.ax1.stairs(zero, e, fill=True, alpha=0.45, color="C1", label="ideal output y")
        (self.rec_line,) = self.ax1.plot([], [], color="k", linewidth=1.8, drawstyle="steps-mid", label="γ·x̂ + β")
        self.ax1.set_xlabel("activation value")
        self.ax1.set_ylabel("density (1 / unit)")
        self.ax1.legend(fontsize=8, loc="upper left")
        (self.g_line,) = self.ax2.plot([], [], color="C2", label="γ (scale)")
        (self.b_line,) = self.ax2.plot([], [], color="C3", label="β (shift)")
        self.g_target = self.ax2.axhline(0.5, color="C2", linestyle="--", linewidth=1, label="target std")
        self.b_target = self.ax2.axhline(2.0, color="C3", linestyle="--", linewidth=1, label="target mean")
        self.ax2.set_xlabel("gradient-descent step")
        self.ax2.set_ylabel("parameter value")
        self.ax2.grid(alpha=0.3)
        self.ax2.legend(fontsize=8, loc="lower right", ncol=2)
        self.t1 = self.ax1.set_title(" ", fontsize=10, y=1.0)
        self.t2 = self.ax2.set_title(" ", fontsize=10, y=1.0)
        self.dynamic(self.bn_hist, self.ideal_hist, self.rec_line, self.g_line, self.b_line, self.g_target,
                     self.b_target, self.t1, self.t2)
        fig.subplots_adjust(left=0.06, right=0.98, bottom=0.14, top=0.9, wspace=0.2)

    def update(self, data: dict[str, Any], target_mean: float = 2.0, target_std: float = 0.5, lr: float = 0.05,
               gamma: str = "learned", steps: int = 150) -> None:
        e, hist = self.edges, data["hist"]
        self.bn_hist.set_data(hist["normalized"], e)
        self.ideal_hist.set_data(hist["ideal"], e)
        centres = (e[:-1] + e[1:]) / 2
        self.rec_line.set_data(centres, hist["recovered"] if data["diverged_at"] is None else np.full_like(centres, np.nan))
        h = data["history"]
        self.g_line.set_data(h["step"], h["gamma"])
        self.b_line.set_data(h["step"], h["beta"])
        self.g_target.set_ydata([target_std, target_std])
        self.b_target.set_ydata([target_mean, target_mean])
        if data["diverged_at"] is not None:
            self.t1.set_text(f"lr {lr:g}: γ and β diverged at step {data['diverged_at']}, nothing recovered")
        elif gamma == "frozen at 0":
            self.t1.set_text(f"γ frozen at 0: every output is β = {data['beta']:.2f}, the input is lost")
        else:
            self.t1.set_text(f"γ {gamma}: γ = {data['gamma']:.2f}, β = {data['beta']:.2f} after {steps} steps")
        self.t2.set_text(f"SGD, lr {lr:g}, on the squared error to y")
        peak = max(0.5, float(hist["ideal"].max()), float(hist["normalized"].max()))  # a γ = 0 spike may leave the axes
        span = max(4.0, abs(target_mean) + 4 * target_std)
        self.set_limits(self.ax1, x=nice_limits(-span, span), y=(0.0, nice_limits(0.0, 1.1 * peak)[1]))
        lo = min(0.0, target_mean, target_std) - 0.5
        hi = max(1.0, target_mean, target_std) + 0.5
        self.set_limits(self.ax2, x=(0.0, float(steps)), y=nice_limits(lo, hi))


def draw_affine_recovery(target_mean: float = 2.0, target_std: float = 0.5, lr: float = 0.05,
                         gamma: str = "learned", steps: int = 150) -> Figure:
    """:class:`AffineRecoveryExplorer` for one setting (a new figure)."""
    return AffineRecoveryExplorer().draw(target_mean=target_mean, target_std=target_std, lr=lr, gamma=gamma,
                                         steps=steps)


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


SPREAD_SOURCES = ("B images", "B single pixels")


class BatchSpreadExplorer(LiveFigure):
    """Explorer: the batch mean and variance of random batches, for one batch size and one kind of batch.

    ``source`` is ``"B images"`` (BatchNorm2d's case: all 784 pixels of B
    FashionMNIST images, the pool :func:`batch_stat_noise` measures in the
    lesson) or ``"B single pixels"`` (B pixel values drawn independently from
    the same images: the textbook ``1/sqrt(B)`` case). The pool is the first
    ``pool`` training images, normalized with the data set's mean and std.
    """

    figsize = (10.0, 3.6)
    mean_edges = np.linspace(-2.0, 2.0, 81)
    var_edges = np.linspace(0.0, 3.0, 76)

    def __init__(self, pool: int = 20_000, trials: int = 1000, seed: int = 0) -> None:
        super().__init__()
        if pool < 2 or trials < 2:
            raise ValueError(f"pool and trials must be at least 2, got pool={pool}, trials={trials}")
        self.pool, self.trials, self.seed = pool, trials, seed
        self._moments: tuple[torch.Tensor, torch.Tensor] | None = None
        self._pixels: torch.Tensor | None = None

    def _load(self) -> None:
        if self._moments is not None:
            return
        images, _ = load_tensors(train=True)
        pixels = (images[: self.pool].to(torch.float64) / 255 - MEAN) / STD
        m1, m2, _ = _per_sample_moments(pixels.unsqueeze(1), self.seed)
        self._moments = (m1, m2)
        g = torch.Generator().manual_seed(self.seed)
        flat = pixels.flatten()
        self._pixels = flat[torch.randint(0, flat.numel(), (1_000_000,), generator=g)]

    def compute(self, batch_size: int = 16, source: str = "B images") -> dict[str, np.ndarray]:
        if batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 for a variance, got {batch_size}")
        if source not in SPREAD_SOURCES:
            raise ValueError(f"source must be one of {SPREAD_SOURCES}, got {source!r}")
        self._load()
        g = torch.Generator().manual_seed(self.seed + batch_size)
        if source == "B images":
            m1, m2 = self._moments
            idx = torch.randint(0, len(m1), (self.trials, batch_size), generator=g)
            mean = m1[idx].mean(dim=1)
            var = m2[idx].mean(dim=1) - mean**2
        else:
            x = self._pixels[torch.randint(0, len(self._pixels), (self.trials, batch_size), generator=g)]
            mean, var = x.mean(dim=1), x.var(dim=1, unbiased=False)
        return {"mean": mean.numpy(), "var": var.numpy()}

    def build(self, fig: Figure) -> None:
        self.a1, self.a2 = fig.subplots(1, 2)
        self.h1 = self.a1.stairs(np.zeros(len(self.mean_edges) - 1), self.mean_edges, fill=True, color="C0")
        self.h2 = self.a2.stairs(np.zeros(len(self.var_edges) - 1), self.var_edges, fill=True, color="C1")
        self.a1.axvline(0, color="k", linestyle="--", linewidth=1, label="data-set mean 0")
        self.a2.axvline(1, color="k", linestyle="--", linewidth=1, label="data-set variance 1")
        self.a1.set_xlabel("batch mean μ_B (normalized pixel units)")
        self.a2.set_xlabel("batch variance σ²_B (biased)")
        for a, edges in ((self.a1, self.mean_edges), (self.a2, self.var_edges)):
            a.set_ylabel(f"count (of {self.trials} batches)")
            a.set_xlim(edges[0], edges[-1])
            a.legend(fontsize=8, loc="upper right")
        self.t1 = self.a1.set_title(" ", fontsize=10, y=1.0)
        self.t2 = self.a2.set_title(" ", fontsize=10, y=1.0)
        self.dynamic(self.h1, self.h2, self.t1, self.t2)
        fig.subplots_adjust(left=0.08, right=0.98, bottom=0.15, top=0.88, wspace=0.25)

    def update(self, data: dict[str, np.ndarray], batch_size: int = 16, source: str = "B images") -> None:
        c1 = np.histogram(data["mean"], bins=self.mean_edges)[0]
        c2 = np.histogram(data["var"], bins=self.var_edges)[0]
        self.h1.set_data(c1, self.mean_edges)
        self.h2.set_data(c2, self.var_edges)
        self.t1.set_text(f"{source}, B = {batch_size}: std of μ_B = {data['mean'].std():.3f}")
        self.t2.set_text(f"std of σ²_B = {data['var'].std():.3f}")
        top = nice_limits(0.0, 1.1 * max(int(c1.max()), int(c2.max()), 10))[1]
        for a in (self.a1, self.a2):
            self.set_limits(a, y=(0.0, top))


def draw_batch_mean_spread(batch_size: int = 16, source: str = "B images", trials: int = 400) -> Figure:
    """:class:`BatchSpreadExplorer` for one batch size and source (a new figure)."""
    return BatchSpreadExplorer(trials=trials).draw(batch_size=batch_size, source=source)


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
    ax.set_yticks(y, acc["scenario"])
    ax.set_ylim(len(acc) - 0.5, -1.4)  # inverted, with an empty row on top for the chance label
    ax.text(10.5, -1.0, "chance (10 classes)", color="gray", fontsize=8, va="center")
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


class BNTrainingRun(RunPlot):
    """Explorer: the same deep plain CNN trained without and with BN, both loss curves growing step by step.

    Both nets start from the same seed, see the same mini-batches (drawn from a
    class-balanced FashionMNIST subset) and use SGD with momentum 0.9 at the
    same learning rate. A net whose loss turns NaN or infinite stops there
    ("diverged at step k" in the legend); earlier runs stay, faded.
    """

    figsize = (8.0, 4.2)
    panels = (Panel("training loss (cross-entropy, nats)", title="dotted: chance level ln 10 ≈ 2.30", ylim=(0.0, 4.0)),)
    xlabel = "training step"
    nets = (("no BN", False), ("with BN", True))

    def build(self, fig: Figure) -> None:
        super().build(fig)
        ax = self.axes[0]
        ax.axhline(math.log(10), color="gray", linestyle=":", linewidth=1)
        fig.subplots_adjust(left=0.1, right=0.97, bottom=0.13, top=0.86)

    def train(self, depth: int = 10, lr: float = 0.05, steps: int = 100, activation: str = "relu", channels: int = 8,
              per_class: int = 100, batch_size: int = 64, seed: int = 0) -> None:
        if depth < 1 or steps < 1 or not lr > 0:
            raise ValueError(f"depth and steps must be >= 1 and lr > 0, got depth={depth}, steps={steps}, lr={lr}")
        self.start(f"{depth} conv layers, {activation}, SGD lr {lr:g}", steps)  # the first frame, before any work
        x, y = stratified_subset(True, per_class, seed)
        models, optimizers, batches = [], [], []
        for _, bn in self.nets:
            torch.manual_seed(seed)
            models.append(make_deep_cnn(depth, channels=channels, activation=activation, bn=bn).train())
            optimizers.append(torch.optim.SGD(models[-1].parameters(), lr=lr, momentum=0.9))
            batches.append(random_batches(x, y, batch_size, seed))  # the same batches for both nets
        alive = [True, True]
        loss_fn = nn.CrossEntropyLoss()
        with torch_threads(1):
            for step in range(1, steps + 1):
                for k, (name, _) in enumerate(self.nets):
                    xb, yb = next(batches[k])
                    if not alive[k]:
                        continue
                    optimizers[k].zero_grad(set_to_none=True)
                    loss = loss_fn(models[k](xb), yb)
                    loss.backward()
                    optimizers[k].step()
                    alive[k] = math.isfinite(loss.item())
                    self.add(name, step, loss.item())
                self.note(f"{self.label}: step {step} of {steps}")
        self.note(f"{self.label}: {steps} steps done")


def draw_bn_training(depth: int = 10, lr: float = 0.05, steps: int = 100, activation: str = "relu") -> Figure:
    """:class:`BNTrainingRun` trained to its end: loss curves with and without BN for one depth and learning rate."""
    return BNTrainingRun().draw(depth=depth, lr=lr, steps=steps, activation=activation)
