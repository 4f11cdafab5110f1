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
* :func:`draw_merge_explorer` -- channels, parameters and gradients for the
  chosen merge.
* :func:`inception_bookkeeping` / :func:`densenet_bookkeeping` -- how
  GoogLeNet and DenseNet count channels when they concatenate.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import nn

from .. import results
from ..data import fashion_batch
from ..device import machine_line
from ..diagnostics import grad_norms, num_params
from ..models import CifarResNet
from ..recipes import fit_recipe, recipe_of
from ..recipes import get as get_recipe

__all__ = [
    "compare_add_cat",
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


def merge_network(merge: str = "add", depth: int = 8, width: int = 1, seed: int = 0,
                  in_channels: int = 1) -> CifarResNet:
    """The same CIFAR-style ResNet with ``merge="add"`` or ``"cat"``.

    Both use projection shortcuts (a cat merge doubles the channels, so the
    next block's shortcut must be able to shrink them back); only the merge differs.
    """
    torch.manual_seed(seed)
    return CifarResNet(depth, in_channels=in_channels, width=width, shortcut="projection",
                       merge=merge)


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


def block_input_grad_norms(merge: str = "add", depth: int = 8, batch_size: int = 32,
                           seed: int = 0) -> pd.DataFrame:
    """‖∂L/∂x_l‖ at the input of every block ``l`` (one FashionMNIST batch, train mode).

    This is the quantity the identity-path argument is about: with an add merge
    and identity shortcuts, ``∂L/∂x_l`` contains ``∂L/∂x_L`` unchanged; a cat
    stack has no weight-free path. One row per block, aligned by block index
    (both nets have the same blocks, the cat net just has more weights in them):
    columns ``block, in_channels, shortcut, grad_norm``.
    """
    x, y = fashion_batch(batch_size, seed)
    net = merge_network(merge, depth, seed=seed).train()
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
        {"block": i, "in_channels": b.in_channels,
         "shortcut": "identity" if isinstance(b.shortcut, nn.Identity) else "1x1 projection",
         "grad_norm": float(t.grad.norm())}
        for i, (b, t) in enumerate(zip(blocks, inputs))
    ])


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


def draw_merge_explorer(merge: str = "add", depth: int = 8, batch_size: int = 32) -> Figure:
    """Three panels for the chosen merge (the other one in gray for reference), all on the
    block axis: channels after each block, parameters per block, and the gradient
    norm at each block's input (:func:`block_input_grad_norms`)."""
    table = network_table(depth)
    other = "cat" if merge == "add" else "add"
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    styles = {other: dict(color="0.7", ls="--"),
              merge: dict(color="C0" if merge == "add" else "C1", ls="-")}
    for m, style in styles.items():
        t = table[(table["merge"] == m) & (table["layer"] != "fc")]
        idx = t["index"].to_numpy(dtype=float)
        axes[0].plot(idx, t.out_channels.to_numpy(dtype=float), marker="o", label=m, **style)
        axes[1].plot(idx, t.params.to_numpy(dtype=float), marker="o", label=m, **style)
        g = block_input_grad_norms(m, depth, batch_size)
        axes[2].plot(g["block"], g["grad_norm"], marker="o", ms=3, label=m, **style)
    axes[0].set_ylabel("channels after the merge")
    axes[1].set_ylabel("parameters per block")
    axes[2].set_ylabel("gradient at the block's input ‖∂L/∂x‖₂")
    axes[2].set_yscale("log")
    for ax in axes:
        ax.set_xlabel("block index (input → output)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    total = {m: num_params(merge_network(m, depth)) for m in ("add", "cat")}
    fig.suptitle(
        f"merge={merge!r}, depth {depth}: {total[merge]:,} parameters "
        f"({total[merge] / total['add']:.2f}x the add net)"
    )
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


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
