"""Lesson 05 ("x + y versus torch.cat"): add and concatenate, measured.

* :func:`merge_shapes` -- output shapes of ``x + y`` and ``torch.cat``.
* :func:`downstream_params` -- what the *next* conv pays for a cat merge.
* :func:`merge_network` / :func:`network_table` -- the same CIFAR-style net
  with add or cat merges: channels per block, parameters.
* :func:`merge_grad_norms` -- per-layer weight-gradient norms of either net;
  :func:`block_input_grad_norms` -- the gradient at every block's input.
* :func:`compare_add_cat` -- a short training of both on a FashionMNIST subset;
  :func:`cache_add_cat_runs` / :func:`load_add_cat_runs` / :func:`plot_add_cat_runs`
  -- the longer, several-seed runs the lesson shows.
* :class:`MergeExplorer` (a ``LiveFigure``; :func:`merge_explorer` keeps one
  measured instance, :func:`draw_merge_explorer` draws one setting) -- the
  gradient at every block's input and the parameters per block, for add or
  cat merges, with identity shortcuts where the shapes allow or a 1x1
  projection in every block; :func:`gradient_measures` -- the input-gradient
  and weight-gradient spreads side by side (why lesson 03's ratio is smaller).
* :func:`merge_blocks` -- one add block and one cat block of the two nets, to draw;
  :func:`param_totals` -- parameters of both nets per depth.
* :func:`plot_live_runs` / :func:`final_accuracy` -- the live runs on a log loss axis,
  and the last epoch of cached or live runs.
* :func:`inception_bookkeeping` / :func:`densenet_bookkeeping` -- how
  GoogLeNet and DenseNet count channels when they concatenate.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator
from torch import nn

from .. import results
from ..blocks import ResidualBlock, conv1x1
from ..data import fashion_batch
from ..device import machine_line, torch_threads
from ..diagnostics import grad_norms, num_params
from ..live import LiveFigure, log_ticks
from ..models import CifarResNet
from ..recipes import fit_recipe, recipe_of
from ..recipes import get as get_recipe

__all__ = [
    "MergeExplorer",
    "compare_add_cat",
    "final_accuracy",
    "gradient_measures",
    "merge_blocks",
    "merge_explorer",
    "param_totals",
    "plot_live_runs",
    "densenet_bookkeeping",
    "downstream_params",
    "draw_merge_explorer",
    "inception_bookkeeping",
    "merge_grad_norms",
    "merge_network",
    "merge_shapes",
    "network_table",
]


def merge_shapes(channels: int = 64, size: int = 28, batch: int = 1) -> pd.DataFrame:
    """Shapes of ``x``, ``y``, ``x + y`` and ``torch.cat([x, y], dim=1)``, and what
    happens when the shapes differ."""
    x = torch.randn(batch, channels, size, size)
    y = torch.randn_like(x)
    rows = [
        {"expression": "x", "shape": tuple(x.shape)},
        {"expression": "y = F(x)", "shape": tuple(y.shape)},
        {"expression": "x + y", "shape": tuple((x + y).shape)},
        {"expression": "torch.cat([x, y], dim=1)", "shape": tuple(torch.cat([x, y], 1).shape)},
    ]
    z = torch.randn(batch, 2 * channels, size, size)
    try:
        x + z
        add_other = "works"
    except RuntimeError:
        add_other = "RuntimeError: shapes must match"
    rows.append({"expression": f"x + z ({2 * channels} channels)", "shape": add_other})
    rows.append({"expression": f"torch.cat([x, z], dim=1) ({2 * channels} channels)",
                 "shape": tuple(torch.cat([x, z], 1).shape)})
    return pd.DataFrame(rows)


def downstream_params(channels: int = 64, kernel_size: int = 3) -> pd.DataFrame:
    """Weights of the next ``kernel_size`` conv (``channels`` out, no bias) after
    an add merge (``C`` channels in) and after a cat merge (``2C`` in)."""
    rows = []
    for merge, cin in (("add", channels), ("cat", 2 * channels)):
        conv = nn.Conv2d(cin, channels, kernel_size, bias=False)
        rows.append({"merge": merge, "channels_in": cin, "next_conv_params": num_params(conv)})
    return pd.DataFrame(rows)


#: The explorer's shortcut options: identity where the shapes match (a ResNet), or a 1x1 conv + BN in every block.
SHORTCUTS = ("where needed", "every block")


def project_every_block(net: CifarResNet) -> CifarResNet:
    """Replace every identity shortcut of ``net`` by a 1x1 conv + BN (in place; returns ``net``).

    The control experiment of section 3: an add net without a single
    weight-free path, to tell the effect of the merge from that of the identity.
    """
    for block in net.blocks():
        if isinstance(block.shortcut, nn.Identity):
            c_in, c_out = block.in_channels, block.branch_channels
            block.shortcut = nn.Sequential(conv1x1(c_in, c_out, block.stride, bias=False), nn.BatchNorm2d(c_out))
            nn.init.kaiming_normal_(block.shortcut[0].weight, mode="fan_out", nonlinearity="relu")
    return net


def merge_network(merge: str = "add", depth: int = 8, width: int = 1, seed: int = 0,
                  in_channels: int = 1, shortcuts: str = "where needed") -> CifarResNet:
    """The same CIFAR-style ResNet with ``merge="add"`` or ``"cat"``.

    Both use projection shortcuts where the shapes differ (a cat merge doubles
    the channels, so the next block's shortcut must be able to shrink them
    back) and the identity elsewhere; only the merge differs.
    ``shortcuts="every block"`` puts a 1x1 conv + BN into every block
    (:func:`project_every_block`).
    """
    if shortcuts not in SHORTCUTS:
        raise ValueError(f"shortcuts must be one of {SHORTCUTS}, got {shortcuts!r}")
    torch.manual_seed(seed)
    net = CifarResNet(depth, in_channels=in_channels, width=width, shortcut="projection", merge=merge)
    return project_every_block(net) if shortcuts == "every block" else net


def merge_blocks(depth: int = 14, size: int = 28) -> tuple[list[ResidualBlock], list[tuple[int, int, int]]]:
    """The second block of stage 1 of the add net and of the cat net (what :func:`merge_network`
    builds), with their input shapes: the blocks to draw side by side."""
    blocks = [merge_network(m, depth).layer1[1] for m in ("add", "cat")]
    return blocks, [(b.in_channels, size, size) for b in blocks]


def param_totals(depths: Sequence[int] = (8, 14, 20, 56)) -> pd.DataFrame:
    """Parameters of the add net and of the cat net per depth, and their ratio."""
    totals = pd.DataFrame({m: {d: num_params(merge_network(m, d)) for d in depths} for m in ("add", "cat")})
    totals["cat / add"] = totals["cat"] / totals["add"]
    totals.index.name = "depth"
    return totals


def network_table(depth: int = 8, width: int = 1) -> pd.DataFrame:
    """Per block of both nets (and their ``fc``): channels in, channels out, parameters.

    Columns ``merge, layer, index, in_channels, out_channels, shortcut, params``
    (``shortcut``: ``"identity"`` where the shapes let the block add its input
    unchanged, else ``"1x1 projection"``).
    """
    rows = []
    for merge in ("add", "cat"):
        net = merge_network(merge, depth, width)
        for i, b in enumerate(net.blocks()):
            rows.append({"merge": merge, "layer": f"block{i}", "index": i,
                         "in_channels": b.in_channels, "out_channels": b.out_channels,
                         "shortcut": "identity" if isinstance(b.shortcut, nn.Identity) else "1x1 projection",
                         "params": num_params(b)})
        rows.append({"merge": merge, "layer": "fc", "index": i + 1,
                     "in_channels": net.fc.in_features, "out_channels": net.fc.out_features,
                     "shortcut": "", "params": num_params(net.fc)})
    return pd.DataFrame(rows)


def merge_grad_norms(merge: str = "add", depth: int = 8, batch_size: int = 32,
                     seed: int = 0) -> pd.DataFrame:
    """Per-layer weight-gradient norms on one FashionMNIST batch."""
    x, y = fashion_batch(batch_size, seed)
    return grad_norms(merge_network(merge, depth, seed=seed).train(), x, y)


def _shortcut_name(block: ResidualBlock) -> str:
    return "identity" if isinstance(block.shortcut, nn.Identity) else "1x1 projection"


def block_input_grad_norms(merge: str = "add", depth: int = 8, batch_size: int = 32,
                           seed: int = 0, shortcuts: str = "where needed",
                           batch: tuple[torch.Tensor, torch.Tensor] | None = None) -> pd.DataFrame:
    """‖∂L/∂x_l‖ at the input of every block ``l`` (one FashionMNIST batch, train mode).

    This is the quantity the identity-path argument is about: with an add merge
    and identity shortcuts, ``∂L/∂x_l`` contains ``∂L/∂x_L`` unchanged; a cat
    stack has no weight-free path. One row per block, aligned by block index
    (both nets have the same blocks, the cat net just has more weights in them):
    columns ``block, in_channels, shortcut, params, grad_norm``.
    """
    x, y = fashion_batch(batch_size, seed) if batch is None else batch
    net = merge_network(merge, depth, seed=seed, shortcuts=shortcuts).train()
    blocks = net.blocks()
    inputs: list[torch.Tensor] = []

    def keep_input(module: nn.Module, args: tuple) -> None:
        args[0].retain_grad()
        inputs.append(args[0])

    handles = [b.register_forward_pre_hook(keep_input) for b in blocks]
    try:
        nn.functional.cross_entropy(net(x), y).backward()
    finally:
        for h in handles:
            h.remove()
    return pd.DataFrame([
        {"block": i, "in_channels": b.in_channels, "shortcut": _shortcut_name(b), "params": num_params(b),
         "grad_norm": float(t.grad.norm())}
        for i, (b, t) in enumerate(zip(blocks, inputs))
    ])


def gradient_measures(depth: int = 56, batch_size: int = 32, seed: int = 0) -> pd.DataFrame:
    """Two ways to measure how the gradient spreads through the add and the cat net (same batch).

    ``input gradient``: ‖∂L/∂x‖ at the first block's input ÷ at the last block's
    (this lesson). ``weight gradient``: ‖∂L/∂W‖ of the first conv ÷ the last conv
    of the main path (lesson 03's measure). A weight's gradient is the gradient at
    its output times the activation at its input, and the activations entering
    early blocks are smaller than those entering late ones, so the second ratio
    is the smaller one. ``activation``: RMS of the last block's input ÷ the first's.
    """
    x, y = fashion_batch(batch_size, seed)
    rows = []
    for merge in ("add", "cat"):
        net = merge_network(merge, depth, seed=seed).train()
        blocks = net.blocks()
        inputs: list[torch.Tensor] = []
        handles = [b.register_forward_pre_hook(lambda m, a: (a[0].retain_grad(), inputs.append(a[0]), None)[-1])
                   for b in blocks]
        try:
            with torch_threads(1):
                nn.functional.cross_entropy(net(x), y).backward()
        finally:
            for h in handles:
                h.remove()
        first_w, last_w = net.conv1.weight.grad.norm(), blocks[-1].conv2.weight.grad.norm()
        rms = [float(t.detach().pow(2).mean().sqrt()) for t in (inputs[0], inputs[-1])]
        rows.append({"merge": merge, "input gradient, first ÷ last block":
                     float(inputs[0].grad.norm() / inputs[-1].grad.norm()),
                     "weight gradient, first ÷ last conv": float(first_w / last_w),
                     "activation RMS, last ÷ first block input": rms[1] / rms[0]})
    return pd.DataFrame(rows).set_index("merge")


def compare_add_cat(
    depth: int = 8, epochs: int = 1, per_class: int = 50, test_per_class: int = 20,
    batch_size: int = 64, seed: int = 0, progress: bool = True,
    device: str | torch.device | None = None, **overrides,
) -> pd.DataFrame:
    """Train the add net and the cat net with identical data and settings.

    The recipe is ``"add-vs-cat"`` of :mod:`resnet_tutorial.recipes` (the one
    the cached runs were made with: SGD with momentum 0.9, lr 0.1, cosine,
    weight decay 5e-4, fp32), here with the given budget; ``overrides``
    replace further fields. Returns the two ``train.fit`` histories stacked,
    with ``merge`` and ``params`` columns.
    """
    frames = []
    for merge in ("add", "cat"):
        model = merge_network(merge, depth, seed=seed)
        run = fit_recipe("add-vs-cat", model, device=device, progress=progress, epochs=epochs,
                         per_class=per_class, test_per_class=test_per_class, batch_size=batch_size, seed=seed,
                         model_kwargs={"depth": depth, "shortcut": "projection", "merge": merge}, **overrides)
        hist = run.history
        hist.insert(0, "merge", merge)
        hist["params"] = num_params(model)
        frames.append(hist)
    return pd.concat(frames, ignore_index=True)


def inception_bookkeeping() -> pd.DataFrame:
    """Channels of each branch of torchvision GoogLeNet's ``inception3a`` and of
    the concatenated output (measured with a forward pass, weights=None)."""
    from torchvision.models import googlenet

    net = googlenet(weights=None, aux_logits=False, init_weights=False).eval()
    block = net.inception3a
    x = torch.randn(1, 192, 28, 28)
    rows = []
    with torch.no_grad():
        for name in ("branch1", "branch2", "branch3", "branch4"):
            rows.append({"part": name, "channels": getattr(block, name)(x).shape[1]})
        rows.append({"part": "torch.cat of the 4 branches", "channels": block(x).shape[1]})
    return pd.DataFrame(rows)


def densenet_bookkeeping(layers: int = 6) -> pd.DataFrame:
    """Channels entering each layer of torchvision DenseNet-121's first dense
    block: every layer concatenates its 32 new channels (the growth rate)."""
    from torchvision.models import densenet121

    block = densenet121(weights=None).features.denseblock1
    rows = []
    for i, (name, layer) in enumerate(list(block.named_children())[:layers]):
        rows.append({"layer": name, "channels_in": layer.norm1.num_features,
                     "new_channels": layer.conv2.out_channels})
    with torch.no_grad():
        out = block(torch.randn(1, 64, 8, 8)).shape[1]
    rows.append({"layer": "block output (torch.cat)", "channels_in": out, "new_channels": None})
    return pd.DataFrame(rows)


#: The cached runs, found by :func:`resnet_tutorial.results.locate` (``add_vs_cat.csv``).
CACHE = results.path("add_vs_cat.csv")


def cache_add_cat_runs(depth: int = 14, epochs: int = 5, per_class: int = 600, test_per_class: int = 200,
                       seeds: Sequence[int] = (0, 1, 2), out: str | os.PathLike | None = None,
                       progress: bool = True, command: str | None = None) -> pd.DataFrame:
    """Longer add-vs-cat runs over several seeds, written to ``out`` (+ ``.json`` with the settings).

    What section 4 of the lesson plots instead of a 2-epoch live run;
    ``python -m resnet_tutorial add-vs-cat`` reproduces it (``out=None``:
    :func:`resnet_tutorial.results.output_path`).
    """
    start = time.perf_counter()
    frames = []
    for seed in seeds:
        h = compare_add_cat(depth=depth, epochs=epochs, per_class=per_class, test_per_class=test_per_class,
                            batch_size=64, seed=seed, progress=progress)
        h.insert(1, "seed", seed)
        frames.append(h)
    table = pd.concat(frames, ignore_index=True)
    meta = {"depth": depth, "epochs": epochs, "per_class": per_class, "test_per_class": test_per_class,
            "seeds": list(seeds), "batch_size": 64,
            # the recipe of the add runs (the cat runs differ only in model_kwargs["merge"])
            "recipe": get_recipe("add-vs-cat").replace(
                epochs=epochs, per_class=per_class, test_per_class=test_per_class,
                model_kwargs={"depth": depth, "shortcut": "projection", "merge": "add"}).to_dict(),
            "wall_seconds": round(time.perf_counter() - start, 1), "machine": machine_line(),
            "torch": torch.__version__, "finished_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
            "command": command or "python -m resnet_tutorial add-vs-cat"}
    results.save_table(table, results.output_path("add_vs_cat.csv") if out is None else out, meta)
    return table


def load_add_cat_runs(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The cached runs of :func:`cache_add_cat_runs` (settings in ``.attrs["meta"]``; the recipe that
    produced them named in ``.attrs["recipe"]``, "unknown" for a cache written before recipes were recorded).

    ``path=None`` looks the cache up with :func:`resnet_tutorial.results.locate`.
    """
    path = results.locate("add_vs_cat.csv") if path is None else Path(path)
    if not path.is_file():
        raise results.missing("add_vs_cat.csv", path, "no cached add-vs-cat runs")
    table = results.load_table(path)
    table.attrs["recipe"] = recipe_of(table.attrs["meta"])
    return table


def plot_add_cat_runs(table: pd.DataFrame) -> Figure:
    """Test accuracy per epoch, mean over seeds with the min-max band, for both merges."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for merge, color in (("add", "C0"), ("cat", "C1")):
        runs = table[table["merge"] == merge]
        for ax, col, label in ((axes[0], "train_loss", "training loss"), (axes[1], "test_acc", "test accuracy (%)")):
            per_epoch = runs.groupby("epoch")[col]
            scale = 100 if col == "test_acc" else 1
            mean, lo, hi = (scale * per_epoch.mean(), scale * per_epoch.min(), scale * per_epoch.max())
            ax.plot(mean.index, mean, marker="o", color=color, label=f"{merge} (mean of {runs['seed'].nunique()} seeds)")
            ax.fill_between(mean.index, lo, hi, color=color, alpha=0.2)
            ax.set_ylabel(label)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("add vs cat merge, cached runs: band = min to max over seeds")
    fig.tight_layout()
    return fig


def final_accuracy(table: pd.DataFrame) -> pd.DataFrame:
    """Last epoch of add-vs-cat runs (cached: several seeds; live: one), per merge: parameters,
    test accuracy (mean, min, max over seeds), final training loss, seconds per epoch."""
    last = table[table["epoch"] == table["epoch"].max()]
    return last.groupby("merge").agg(params=("params", "first"), test_acc_mean=("test_acc", "mean"),
                                     test_acc_min=("test_acc", "min"), test_acc_max=("test_acc", "max"),
                                     train_loss=("train_loss", "mean"), s_per_epoch=("seconds", "mean"))


MERGE_COLORS = {"add": "C0", "cat": "C1"}


def plot_live_runs(history: pd.DataFrame) -> Figure:
    """Loss (log scale: an early test loss far above the rest stays readable) and test accuracy per
    epoch of :func:`compare_add_cat`'s runs; training dashed, test solid, one colour per merge."""
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 3.8))
    for merge, runs in history.groupby("merge"):
        color = MERGE_COLORS[str(merge)]
        loss_ax.plot(runs["epoch"], runs["train_loss"], "--o", ms=3, color=color, label=f"{merge}, training")
        loss_ax.plot(runs["epoch"], runs["test_loss"], "-o", ms=3, color=color, label=f"{merge}, test")
        acc_ax.plot(runs["epoch"], 100 * runs["test_acc"], "-o", ms=3, color=color, label=f"{merge}, test")
    loss_ax.set_yscale("log")
    loss_ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    loss_ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else ""))
    loss_ax.set_ylabel("cross-entropy loss (log scale)")
    acc_ax.set_ylabel("test accuracy (%)")
    acc_ax.set_ylim(0, 100)
    acc_ax.axhline(10, color="0.6", ls=":", lw=1)
    acc_ax.text(history["epoch"].max(), 11, "chance (10 %)", ha="right", va="bottom", fontsize=8, color="0.4")
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="best")
    fig.suptitle("add vs cat, one run each on this machine")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- the explorer
class MergeExplorer(LiveFigure):
    """Section 3's explorer: gradient at every block's input (left, log scale) and parameters per
    block (right) of the chosen net: ``merge`` add or cat, ``shortcuts`` "where needed" (identity
    where the shapes match, as a ResNet) or "every block" (a 1x1 conv + BN in every block: no
    weight-free path at all), ``depth`` 8..56. The ResNet (add, identity where possible) stays in
    gray for reference. Every setting is measured once up front (:meth:`precompute`), so a move
    only redraws; the axes hold every setting, so most moves are cheap blits.
    """

    figsize = (12.0, 4.4)
    merges = ("add", "cat")
    depths = tuple(range(8, 57, 6))
    reference = ("add", "where needed")

    def __init__(self, *, batch_size: int = 32, seed: int = 0, depths: Sequence[int] | None = None) -> None:
        super().__init__()
        self.batch_size, self.seed = batch_size, seed
        self.depths = tuple(depths) if depths is not None else type(self).depths
        for d in self.depths:
            if d < 8 or (d - 2) % 6:
                raise ValueError(f"depth must be 6n+2 with n >= 1 (8, 14, 20, ...), got {d}")
        self.batch = fashion_batch(batch_size, seed)
        self._measured: dict[tuple[str, str, int], pd.DataFrame] = {}

    def measure(self, merge: str, shortcuts: str, depth: int) -> pd.DataFrame:
        """:func:`block_input_grad_norms` of one net on the explorer's batch (kept)."""
        if merge not in self.merges:
            raise ValueError(f"merge must be 'add' or 'cat', got {merge!r}")
        key = (merge, shortcuts, depth)
        if key not in self._measured:
            with torch_threads(1):
                self._measured[key] = block_input_grad_norms(merge, depth, seed=self.seed, shortcuts=shortcuts,
                                                             batch=self.batch)
        return self._measured[key]

    def precompute(self, progress: bool = True) -> "MergeExplorer":
        """Measure every setting the controls offer now, and say how long it takes."""
        t0 = time.perf_counter()
        for m in self.merges:
            self.measure(m, "where needed", self.depths[-1])
        estimate = (time.perf_counter() - t0) * 2 * sum(self.depths) / self.depths[-1] - (time.perf_counter() - t0)
        if progress:
            print(f"Measuring {len(self.depths)} depths x 4 nets on {self.batch_size} images "
                  f"(about {estimate:.0f} s more on this machine)...", flush=True)
        for d in self.depths:
            for m in self.merges:
                for s in SHORTCUTS:
                    self.measure(m, s, d)
        if progress:
            print(f"done in {time.perf_counter() - t0:.1f} s", flush=True)
        return self

    def compute(self, merge: str = "cat", shortcuts: str = "where needed", depth: int = 56) -> dict[str, Any]:
        chosen, ref = self.measure(merge, shortcuts, depth), self.measure(*self.reference, depth)
        spread = {k: t["grad_norm"].iloc[0] / t["grad_norm"].iloc[-1] for k, t in (("chosen", chosen), ("ref", ref))}
        return {"chosen": chosen, "ref": ref, "spread": spread,
                "params": {"chosen": int(chosen["params"].sum()), "ref": int(ref["params"].sum())}}

    def build(self, fig: Figure) -> None:
        grid = fig.add_gridspec(1, 2, width_ratios=[1.45, 1], left=0.07, right=0.99, bottom=0.14, top=0.78,
                                wspace=0.22)
        self.grad_ax, self.param_ax = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
        ref_style = dict(color="0.6", lw=1.2)
        (self.ref_line,) = self.grad_ax.plot([], [], "-", **ref_style)
        (self.line,) = self.grad_ax.plot([], [], "-", lw=2.2)
        (self.ident,) = self.grad_ax.plot([], [], "o", ms=5, zorder=4)
        (self.proj,) = self.grad_ax.plot([], [], "s", ms=6, mfc="white", mew=1.5, zorder=4)
        (self.ref_params,) = self.param_ax.plot([], [], "-", drawstyle="steps-mid", **ref_style)
        (self.params,) = self.param_ax.plot([], [], "-", drawstyle="steps-mid", lw=2.2)
        self.stage_lines = [ax.axvline(0, color="0.55", ls=":", lw=1) for ax in (self.grad_ax, self.param_ax)
                            for _ in range(2)]
        self.grad_ax.set_yscale("log")
        log_ticks(self.grad_ax.yaxis)
        self.grad_ax.set_ylabel("gradient at the block's input ‖∂L/∂x‖₂")
        self.param_ax.set_ylabel("parameters per block (thousands)")
        self.param_ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1e3:g}"))
        for ax in (self.grad_ax, self.param_ax):
            ax.set_xlabel("block (input → output; dotted: a new stage)")
            ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
            ax.grid(alpha=0.3)
        handles = [Line2D([], [], color="0.6", lw=1.2, label="reference: ResNet (add, identity where shapes match)"),
                   Line2D([], [], color="0.2", ls="", marker="o", ms=5, label="block with an identity shortcut"),
                   Line2D([], [], color="0.2", ls="", marker="s", ms=6, mfc="white", mew=1.5,
                          label="block with a 1×1 conv shortcut")]
        fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.07, 0.905), ncol=3, fontsize=8, frameon=False)
        self.grad_title = self.grad_ax.set_title(" ", fontsize=10, y=1.0, loc="left")
        self.param_title = self.param_ax.set_title(" ", fontsize=10, y=1.0, loc="left")
        self.suptitle = fig.suptitle(" ", fontsize=11, x=0.07, ha="left", y=0.985)
        self.dynamic(self.ref_line, self.line, self.ident, self.proj, self.ref_params, self.params,
                     *self.stage_lines, self.grad_title, self.param_title, self.suptitle)

    def _limits(self) -> dict[str, tuple[float, float]]:
        """Whole decades around every gradient measured, 0 to the largest block: fixed for every move."""
        tables = list(self._measured.values()) or [self.measure(*self.reference, self.depths[0])]
        g = np.concatenate([t["grad_norm"].to_numpy() for t in tables])
        p = max(float(t["params"].max()) for t in tables)
        return {"grad": (10.0 ** np.floor(np.log10(g.min())), 10.0 ** np.ceil(np.log10(g.max()))),
                "params": (0.0, 1.08 * p)}

    def update(self, data: dict[str, Any], merge: str = "cat", shortcuts: str = "where needed",
               depth: int = 56) -> None:
        chosen, ref = data["chosen"], data["ref"]
        color = MERGE_COLORS[merge]
        x = chosen["block"].to_numpy(dtype=float)
        g = chosen["grad_norm"].to_numpy()
        is_id = (chosen["shortcut"] == "identity").to_numpy()
        self.ref_line.set_data(ref["block"], ref["grad_norm"])
        self.line.set_data(x, g)
        self.ident.set_data(x[is_id], g[is_id])
        self.proj.set_data(x[~is_id], g[~is_id])
        self.ref_params.set_data(ref["block"], ref["params"])
        self.params.set_data(x, chosen["params"])
        for artist in (self.line, self.ident, self.proj, self.params):
            artist.set_color(color)
        n = (depth - 2) // 6
        for i, line in enumerate(self.stage_lines):
            entry = n * (1 + i % 2) - 0.5
            line.set_xdata([entry, entry])
        spread, params = data["spread"], data["params"]
        self.grad_title.set_text(f"first block ÷ last block: ×{spread['chosen']:,.0f}   (ResNet: ×{spread['ref']:,.0f})")
        self.param_title.set_text(f"{params['chosen'] / 1e3:,.0f} k parameters in the blocks "
                                  f"({params['chosen'] / params['ref']:.2f}× the ResNet's)")
        self.suptitle.set_text(f"merge = {merge}, 1×1 conv shortcuts {shortcuts}, {depth} layers "
                               f"({len(x)} blocks), one batch of {self.batch_size} images, at initialisation")
        limits = self._limits()
        self.set_limits(self.grad_ax, x=(-0.6, len(x) - 0.4), y=limits["grad"])
        self.set_limits(self.param_ax, x=(-0.6, len(x) - 0.4), y=limits["params"])


_SHARED: dict[tuple[int, tuple[int, ...], int], MergeExplorer] = {}


def merge_explorer(batch_size: int = 32, depths: Sequence[int] = MergeExplorer.depths, seed: int = 0) -> MergeExplorer:
    """The lesson's :class:`MergeExplorer`, measured once and kept (the explorer cell and the cells
    after it that read its numbers get the same instance)."""
    key = (batch_size, tuple(depths), seed)
    if key not in _SHARED:
        _SHARED[key] = MergeExplorer(batch_size=batch_size, seed=seed, depths=depths).precompute()
    return _SHARED[key]


def draw_merge_explorer(merge: str = "cat", shortcuts: str = "where needed", depth: int = 56,
                        batch_size: int = 32, seed: int = 0) -> Figure:
    """The :class:`MergeExplorer` figure for one setting (tests and headless runs)."""
    view = MergeExplorer(batch_size=batch_size, seed=seed, depths=[depth])
    return view.draw(merge=merge, shortcuts=shortcuts, depth=depth)
