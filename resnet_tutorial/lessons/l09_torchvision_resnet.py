"""Lesson 09 ("Using torchvision's ResNet"): transfer learning, weights, adapting to 1x28x28.

Transfer learning that runs offline (no ImageNet weights needed):

* :func:`class_loaders` -- FashionMNIST restricted to some classes, relabelled 0..k-1.
* :func:`pretrain` / :func:`load_pretrained` -- ResNet-20 trained on five classes
  (:data:`SOURCE_CLASSES`), cached as ``results/transfer_resnet20.pt``
  (``python -m resnet_tutorial pretrain``; trained on the spot when missing).
* :func:`transfer_model` / :func:`transfer_runs` / :func:`plot_transfer` -- the other five
  classes from a few images each: from scratch vs frozen backbone vs fine-tuned.

torchvision's ResNets:

* :func:`weights_cached` / :func:`load_resnet50` -- use pretrained ImageNet
  weights only if they are already in the torch hub cache (never downloads
  unless asked), so the lesson runs offline.
* :func:`adapt_input_channels` -- replace ``conv1`` for 1-channel images
  (summing the pretrained RGB filters when there are any).
* :func:`adapt_for_small_images` -- stride-1 stem conv and no max pool, so a
  28x28 image is not 1x1 by ``layer4``.
* :func:`feature_map_sizes` (traced), :func:`stage_sizes` (formula) and the
  :class:`FeatureMapExplorer` -- spatial size after each stage for a given input size.
* :func:`freeze_backbone` -- train only the new ``fc``, BatchNorm statistics frozen too.
"""

from __future__ import annotations

import contextlib
import copy
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator
from torch import nn

from .. import device as _device
from ..device import torch_threads
from .. import results
from ..live import LiveFigure
from ..checkpoints import load_model, save_checkpoint
from ..data import CLASSES, TensorLoader, load_tensors, stratified_indices
from ..models import create_model
from ..recipes import fit_recipe, recipe_of
from ..recipes import get as get_recipe
from ..train import evaluate, train_steps

__all__ = [
    "FeatureMapExplorer",
    "PRETRAINED",
    "SOURCE_CLASSES",
    "STARTS",
    "TARGET_CLASSES",
    "adapt_for_small_images",
    "adapt_input_channels",
    "class_loaders",
    "draw_feature_map_sizes",
    "feature_map_sizes",
    "freeze_backbone",
    "load_pretrained",
    "load_resnet50",
    "plot_transfer",
    "pretrain",
    "stage_sizes",
    "trainable_params",
    "transfer_model",
    "transfer_runs",
    "weights_cached",
    "weights_path",
]

STAGES = ("conv1", "maxpool", "layer1", "layer2", "layer3", "layer4")


def _resolve_weights(weights: Any) -> Any:
    from torchvision.models import ResNet50_Weights

    if isinstance(weights, str):
        return ResNet50_Weights.verify(weights)
    return weights


def weights_path(weights: Any = "DEFAULT") -> Path:
    """Where torch hub keeps the file of ``weights`` (a ``ResNet50_Weights`` member or
    its name such as ``"DEFAULT"``), downloaded or not."""
    w = _resolve_weights(weights)
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(w.url)


def weights_cached(weights: Any = "DEFAULT") -> bool:
    """True if the weights file is already on disk (no network access)."""
    return weights_path(weights).is_file()


def load_resnet50(
    weights: Any = "DEFAULT", num_classes: int | None = None, allow_download: bool = False
) -> tuple[nn.Module, Any, str]:
    """torchvision's resnet50 with pretrained weights if cached, else random init.

    Returns ``(model, weights or None, message)``. Without the file and without
    ``allow_download`` no network access is attempted. ``num_classes`` replaces
    ``fc`` (post 001's SimpleResNet) after loading.
    """
    from torchvision.models import resnet50

    w = _resolve_weights(weights)
    if w is not None and (allow_download or weights_cached(w)):
        model = resnet50(weights=w)
        message = f"loaded pretrained {w} from {weights_path(w)}"
    else:
        model = resnet50(weights=None)
        message = (
            "pretrained weights not cached: random initialisation (weights=None); "
            f"to use them, download once with resnet50(weights={w!s}) when online"
            if w is not None else "random initialisation (weights=None)"
        )
        w = None
    if num_classes is not None:
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model, w, message


@torch.no_grad()
def adapt_input_channels(model: nn.Module, in_channels: int = 1) -> nn.Module:
    """Replace ``model.conv1`` by a conv with ``in_channels`` inputs (in place).

    The new conv keeps kernel size, stride and padding. Its weights are the old
    RGB filters summed over the colour axis and spread evenly over the new
    channels: for a gray image fed as R = G = B this gives exactly the old
    response, so pretrained filters stay useful. (With random weights this is
    just a fresh, equally scaled init.)
    """
    old = model.conv1
    if old.in_channels == in_channels:
        return model
    new = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding,
                    bias=old.bias is not None).to(old.weight.device, old.weight.dtype)
    summed = old.weight.sum(dim=1, keepdim=True)
    new.weight.copy_(summed.repeat(1, in_channels, 1, 1) / in_channels)
    if old.bias is not None:
        new.bias.copy_(old.bias)
    model.conv1 = new
    return model


def adapt_for_small_images(model: nn.Module) -> nn.Module:
    """Stride-1 ``conv1`` and no max pool (in place): 28x28 stays 28x28 through the
    stem instead of shrinking to 7x7, so ``layer4`` sees 4x4 instead of 1x1.
    The 7x7 kernel (and any pretrained filters in it) is kept. Costs about
    13x the FLOPs of the unmodified net at 28x28."""
    model.conv1.stride = (1, 1)
    model.maxpool = nn.Identity()
    return model


def feature_map_sizes(model: nn.Module, input_size: int = 28, in_channels: int | None = None
                      ) -> pd.DataFrame:
    """Output shape of each stem part and stage for one ``input_size`` square image.

    Columns ``stage, channels, height, width``.
    """
    in_channels = model.conv1.in_channels if in_channels is None else in_channels
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []
    for name in STAGES:
        def hook(_m: nn.Module, _i: Any, out: torch.Tensor, _name: str = name) -> None:
            shapes[_name] = tuple(out.shape)

        handles.append(getattr(model, name).register_forward_hook(hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            device = next(model.parameters()).device
            model(torch.zeros(1, in_channels, input_size, input_size, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    rows = [{"stage": "input", "channels": in_channels, "height": input_size, "width": input_size}]
    rows += [{"stage": n, "channels": s[1], "height": s[2], "width": s[3]}
             for n, s in shapes.items()]
    return pd.DataFrame(rows)


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def stage_sizes(input_size: int, adapted: bool = False) -> list[int]:
    """Feature-map side after each of :data:`STAGES` (input first) from the layer formula
    ``floor((n + 2p - k) / s) + 1``: the same for every torchvision ResNet (18 ... 152), whose
    stages differ in depth and width, not in strides. ``adapted``: stride-1 ``conv1``, no max pool."""
    if int(input_size) != input_size or input_size < 1:
        raise ValueError(f"input_size must be a positive number of pixels, got {input_size!r}")
    sizes = [int(input_size)]
    sizes.append(_conv_out(sizes[-1], 7, 1 if adapted else 2, 3))      # conv1
    sizes.append(sizes[-1] if adapted else _conv_out(sizes[-1], 3, 2, 1))  # maxpool
    sizes.append(sizes[-1])                                              # layer1 keeps the size
    for _ in range(3):                                                   # layer2-4: a 3x3 conv, stride 2
        sizes.append(_conv_out(sizes[-1], 3, 2, 1))
    return sizes


class FeatureMapExplorer(LiveFigure):
    """Input size -> feature-map side after each part of a torchvision ResNet, ImageNet stem vs adapted stem.

    Both stems as lines on a log2 axis with fixed limits (every move blits), the
    standard case (224 pixels, ImageNet stem, 7x7 at ``layer4``) as a wide grey
    band, and the title saying what ``layer4`` sees with each stem. Sizes from
    :func:`stage_sizes` (microseconds); :func:`feature_map_sizes` traces a real net.
    """

    figsize = (8.5, 4.4)

    def compute(self, input_size: int = 28) -> dict[str, list[int]]:
        return {"imagenet": stage_sizes(input_size), "adapted": stage_sizes(input_size, adapted=True)}

    def build(self, fig: Figure) -> None:
        self.ax = ax = fig.subplots()
        xs = np.arange(len(STAGES) + 1)
        ax.plot(xs, stage_sizes(224), color="0.55", lw=11, alpha=0.35, solid_capstyle="round", zorder=1,
                label="224 px, ImageNet stem")
        (self.imagenet,) = ax.plot([], [], "o-", color="C0", lw=2, ms=5, zorder=3,
                                   label="ImageNet stem (conv1 stride 2 + max pool)")
        (self.adapted,) = ax.plot([], [], "s--", color="C1", lw=2, ms=5, zorder=3,
                                  label="adapted (stride-1 conv1, no max pool)")
        self.labels = [[ax.text(x, 1, "", ha="center", va=va, fontsize=8, color=c, zorder=4) for x in xs]
                       for va, c in (("top", "C0"), ("bottom", "C1"))]
        ax.set_yscale("log", base=2)
        ax.yaxis.set_major_locator(FixedLocator([2.0 ** k for k in range(10)]))
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:g}")
        ax.yaxis.set_minor_locator(NullLocator())
        ax.set_ylim(0.6, 400)
        ax.set_xticks(xs, ("input", *STAGES))
        ax.set_xlim(-0.4, len(xs) - 0.6)
        ax.set_xlabel("part of the network (input → output)")
        ax.set_ylabel("feature-map height = width (pixels)")
        ax.grid(alpha=0.3, axis="y")
        # below the axes: inside, some input size would put a curve under it
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=8, frameon=False)
        self.title = ax.set_title(" ", fontsize=10, y=1.0)
        self.dynamic(self.imagenet, self.adapted, *self.labels[0], *self.labels[1], self.title)
        fig.subplots_adjust(left=0.09, right=0.98, bottom=0.24, top=0.92)

    def update(self, data: dict[str, list[int]], input_size: int = 28) -> None:
        xs = np.arange(len(STAGES) + 1)
        for line, texts, key, factor in ((self.imagenet, self.labels[0], "imagenet", 0.82),
                                         (self.adapted, self.labels[1], "adapted", 1.2)):
            line.set_data(xs, data[key])
            for text, x, size in zip(texts, xs, data[key]):
                text.set_position((x, size * factor))
                text.set_text(str(size))
        a, b = data["imagenet"][-1], data["adapted"][-1]
        self.title.set_text(f"{input_size}×{input_size} input: layer4 sees {a}×{a} with the ImageNet stem, "
                            f"{b}×{b} adapted (224 px, ImageNet stem: 7×7)")


def draw_feature_map_sizes(input_size: int = 28) -> Figure:
    """The explorer's figure for one input size (tests and headless runs): see :class:`FeatureMapExplorer`."""
    return FeatureMapExplorer().draw(input_size=input_size)


def _freeze_batchnorm(module: nn.Module, skip: tuple[str, ...] = ()) -> None:
    """Swap every BatchNorm2d below ``module`` for torchvision's FrozenBatchNorm2d
    (same state_dict keys minus ``num_batches_tracked``; statistics never update)."""
    from torchvision.ops.misc import FrozenBatchNorm2d

    for name, child in module.named_children():
        if name in skip:
            continue
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            frozen.to(child.weight.device)
            with torch.no_grad():
                for key in ("weight", "bias", "running_mean", "running_var"):
                    getattr(frozen, key).copy_(getattr(child, key))
            setattr(module, name, frozen)
        else:
            _freeze_batchnorm(child)


def freeze_backbone(model: nn.Module, head: str = "fc", freeze_bn_stats: bool = True) -> nn.Module:
    """Freeze every parameter except those of ``model.<head>`` (in place).

    ``requires_grad=False`` alone does not freeze BatchNorm: in ``train()`` mode
    its running mean and variance keep moving towards the new data. With
    ``freeze_bn_stats`` (default) the backbone's BN layers become
    ``FrozenBatchNorm2d``, so the backbone computes exactly the same function
    before and after training.
    """
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(head + "."))
    if freeze_bn_stats:
        _freeze_batchnorm(model, skip=(head,))
    return model


def trainable_params(model: nn.Module) -> int:
    """Number of parameters with ``requires_grad``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --------------------------------------------------------------------------- transfer learning, offline
#: The pretraining task: five classes (T-shirt/top, Trouser, Pullover, Dress, Coat) ...
SOURCE_CLASSES: tuple[int, ...] = (0, 1, 2, 3, 4)
#: ... and the new task: the other five (Sandal, Shirt, Sneaker, Bag, Ankle boot), labelled 0-4 there.
TARGET_CLASSES: tuple[int, ...] = (5, 6, 7, 8, 9)
#: The cached pretrained net, found by :func:`resnet_tutorial.results.locate`.
PRETRAINED = "transfer_resnet20.pt"
#: The three ways to start the new task, in the order (and colours) of every figure.
STARTS: tuple[str, ...] = ("from scratch", "frozen backbone + new head", "fine-tuned (all layers)")
_COLORS = dict(zip(STARTS, ("C7", "C0", "C1")))


def class_loaders(
    classes: Sequence[int], per_class: int | None, test_per_class: int | None = None, *,
    batch_size: int = 128, seed: int = 0, augment: bool = False, device: str | torch.device | None = None,
) -> tuple[TensorLoader, TensorLoader]:
    """Training and test loaders of FashionMNIST restricted to ``classes``, relabelled ``0 .. len(classes)-1``.

    ``per_class`` / ``test_per_class`` images of each class (stratified, seeded;
    ``None``: all 6,000 / 1,000). The training loader shuffles; the test loader
    does not. A network trained on them has ``len(classes)`` outputs.
    """
    classes = [int(c) for c in classes]
    if not classes or len(set(classes)) != len(classes) or not all(0 <= c < 10 for c in classes):
        raise ValueError(f"classes must be distinct FashionMNIST labels 0-9, got {classes}")
    lookup = torch.full((10,), -1, dtype=torch.int64)
    lookup[classes] = torch.arange(len(classes))
    loaders = []
    for train, n in ((True, per_class), (False, test_per_class)):
        images, labels = load_tensors(train)
        keep = torch.nonzero(lookup[labels] >= 0).reshape(-1)
        if n is not None:
            keep = keep[stratified_indices(labels[keep], n, seed=seed)]
        loaders.append(TensorLoader(images[keep], lookup[labels[keep]], batch_size=batch_size if train else 500,
                                    shuffle=train, augment=augment and train, seed=seed, device=device))
    return loaders[0], loaders[1]


def _one_thread_on_cpu(device: str | torch.device | None) -> Any:
    """One torch thread for these small nets on a CPU: measured on a busy 2-core machine, ResNet-20
    trained 420 images/s on one thread and 35 on two (every small op waits for both threads)."""
    return torch_threads(1) if _device.get_device(device).type == "cpu" else contextlib.nullcontext()


def pretrain(recipe: str = "transfer-pretrain", *, out: str | os.PathLike | None = None, progress: bool = True,
             device: str | torch.device | None = None, **overrides: Any) -> tuple[nn.Module, dict]:
    """Train the recipe's small ResNet on :data:`SOURCE_CLASSES` and save it (``out=None``: don't save).

    Returns ``(model, record)``; ``record`` (also in the checkpoint, with the
    recipe) holds the classes, the test accuracy on the source classes and the
    seconds it took. ``checkpoints.load_model(out)`` rebuilds the net.
    """
    run_recipe = get_recipe(recipe).replace(**overrides) if overrides else get_recipe(recipe)
    loaders = class_loaders(SOURCE_CLASSES, run_recipe.per_class, run_recipe.test_per_class,
                            batch_size=run_recipe.batch_size, seed=run_recipe.seed, augment=run_recipe.augment,
                            device=_device.get_device(device))
    with _one_thread_on_cpu(device):
        run = fit_recipe(run_recipe, None, loaders=loaders, device=device, progress=progress, test_each_epoch=False)
        test_acc = run.evaluate()["acc"]
        machine = _device.machine_line()  # with the one thread it trained on
    record = {"classes": list(SOURCE_CLASSES), "class_names": [CLASSES[c] for c in SOURCE_CLASSES],
              "test_acc": test_acc, "seconds": round(run.seconds, 1),
              "train_images": len(loaders[0].images), "test_images": len(loaders[1].images),
              "machine": machine, "torch": str(torch.__version__)}
    model = run.model.cpu().eval()
    if out is not None:
        save_checkpoint(out, model, recipe=run_recipe.to_dict(), transfer=record)
    return model, record


def load_pretrained(path: str | os.PathLike | None = None, *, build_if_missing: bool = True, fast: bool = False,
                    progress: bool = True) -> tuple[nn.Module, dict, str]:
    """The pretrained net of :func:`pretrain`: ``(model, record, message)``.

    ``path=None`` looks up :data:`PRETRAINED` along the results search path.
    When there is none and ``build_if_missing``, it is trained now: by the full
    recipe, and saved where a rebuild writes (:func:`resnet_tutorial.results.output_path`),
    or with ``fast`` on a small budget (a few seconds) and not saved, so that a
    quick run never leaves a weaker net where the lesson looks for the real one.
    """
    found = results.find(PRETRAINED) if path is None else (Path(path) if Path(path).is_file() else None)
    if found is not None:
        model = load_model(found)
        record = torch.load(found, map_location="cpu", weights_only=True).get("transfer", {})
        return model, record, f"loaded {found} (recipe {recipe_of(model)})"
    if not build_if_missing:
        raise results.missing(PRETRAINED, path or results.output_path(PRETRAINED), "no pretrained net")
    out = None if fast else (path or results.output_path(PRETRAINED))
    budget = {"epochs": 1, "per_class": 300, "test_per_class": 200} if fast else {}
    model, record = pretrain(out=out, progress=progress, **budget)
    where = f"saved to {out}" if out else "not saved (FAST budget)"
    return model, record, f"no cached {PRETRAINED}: pretrained now in {record['seconds']:.0f} s, {where}"


def transfer_model(start: str, pretrained: nn.Module, num_classes: int = len(TARGET_CLASSES), seed: int = 0
                   ) -> nn.Module:
    """The network a run of :func:`transfer_runs` starts from (``pretrained`` is never changed).

    ``"from scratch"``: the same architecture, freshly initialised; ``"frozen
    backbone + new head"``: a copy of ``pretrained`` with a new ``fc`` and
    everything else frozen (:func:`freeze_backbone`, BatchNorm statistics
    included); ``"fine-tuned (all layers)"``: a copy with a new ``fc``, all of it trainable.
    """
    if start not in STARTS:
        raise ValueError(f"start must be one of {STARTS}, got {start!r}")
    torch.manual_seed(seed)
    if start == "from scratch":
        spec = getattr(pretrained, "model_spec", None)
        if spec is None:
            raise ValueError("the pretrained net must come from create_model (it has no model_spec)")
        return create_model(spec["name"], **{**spec["kwargs"], "num_classes": num_classes}).train()
    model = copy.deepcopy(pretrained).train()
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return freeze_backbone(model) if start == STARTS[1] else model


def transfer_runs(
    pretrained: nn.Module, per_class: int = 10, steps: int = 120, *, eval_every: int = 10, batch_size: int = 25,
    lr: float = 3e-3, test_per_class: int | None = 300, seed: int = 0, starts: Sequence[str] = STARTS,
    on_point: Callable[[str, int, float], None] | None = None, progress: bool = True,
) -> pd.DataFrame:
    """Train the three :data:`STARTS` on ``per_class`` images of each :data:`TARGET_CLASSES` class.

    The same images, batches, optimizer (AdamW, ``lr``, weight decay 0.05) and
    number of ``steps`` for each; the test accuracy (on ``test_per_class``
    images of each class) before training and every ``eval_every`` steps.
    ``on_point(start, step, test_acc)`` is called for every point (a live plot).
    Returns one row per point: ``start, step, test_acc, train_loss`` (the mean
    loss of the steps since the last point; NaN at step 0).
    """
    from tqdm.auto import tqdm

    train, test = class_loaders(TARGET_CLASSES, per_class, test_per_class, batch_size=batch_size, seed=seed)
    rows: list[dict] = []
    bar = tqdm(total=len(starts) * steps, desc="three starts", disable=not progress, leave=False)
    for start in starts:
        model = transfer_model(start, pretrained, seed=seed)
        losses: list[float] = []

        def point(step: int, loss: float = float("nan"), _start: str = start, _model: nn.Module = model) -> None:
            if step:
                losses.append(loss)
                bar.update(1)
            if step % eval_every == 0 or step == steps:
                acc = evaluate(_model, test)["acc"]
                mean = sum(losses) / len(losses) if losses else float("nan")
                rows.append({"start": _start, "step": step, "test_acc": acc, "train_loss": mean})
                losses.clear()
                if on_point is not None:
                    on_point(_start, step, acc)

        point(0)
        train.seed = seed  # every start sees the same batches in the same order
        train.set_epoch(0)
        with _one_thread_on_cpu(None):
            train_steps(model, train, steps, optimizer="adamw", lr=lr, weight_decay=0.05, on_step=point)
    bar.close()
    return pd.DataFrame(rows)


def plot_transfer(runs: pd.DataFrame, title: str = "", ax: Any = None) -> Figure:
    """Test accuracy against training step for each start of :func:`transfer_runs`, overlaid.

    Accuracy from 0 to 100 % with chance (one class in five, 20 %) marked; the
    legend sits below the axes, never on a curve.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(8.0, 4.4))
    else:
        fig = ax.figure
    for start in [s for s in STARTS if s in set(runs["start"])]:
        r = runs[runs["start"] == start]
        final = r["test_acc"].iloc[-1]
        ax.plot(r["step"], 100 * r["test_acc"], "o-", ms=3, color=_COLORS[start],
                label=f"{start}: {final:.1%} at the end")
    n = len(TARGET_CLASSES)
    ax.axhline(100 / n, color="0.5", ls=":", lw=1)
    ax.text(runs["step"].max(), 100 / n + 1.5, f"chance ({100 / n:.0f} %)", ha="right", va="bottom", fontsize=8,
            color="0.4")
    ax.set_ylim(0, 100)
    ax.set_xlim(0, runs["step"].max())
    ax.set_xlabel("training step (one batch each)")
    ax.set_ylabel("test accuracy on the new classes (%)")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1, fontsize=9, frameon=False)
    fig.tight_layout()
    return fig
