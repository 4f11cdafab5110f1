"""Lesson 09 ("Using torchvision's ResNet"): weights, adapting to 1x28x28, fine-tuning.

* :func:`weights_cached` / :func:`load_resnet50` -- use pretrained ImageNet
  weights only if they are already in the torch hub cache (never downloads
  unless asked), so the lesson runs offline.
* :func:`adapt_input_channels` -- replace ``conv1`` for 1-channel images
  (summing the pretrained RGB filters when there are any).
* :func:`adapt_for_small_images` -- stride-1 stem conv and no max pool, so a
  28x28 image is not 1x1 by ``layer4``.
* :func:`feature_map_sizes` / :func:`draw_feature_map_sizes` -- spatial size
  after each stage for a given input size.
* :func:`freeze_backbone` -- train only the new ``fc``.
* :func:`finetune` -- a short training of an adapted net on a FashionMNIST subset.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter
from torch import nn

from ..recipes import fit_recipe
from ..train import DEFAULT_WEIGHT_DECAY

__all__ = [
    "adapt_for_small_images",
    "adapt_input_channels",
    "draw_feature_map_sizes",
    "feature_map_sizes",
    "finetune",
    "freeze_backbone",
    "load_resnet50",
    "trainable_params",
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


def _small_resnet(adapted: bool, depth: int = 18) -> nn.Module:
    from torchvision import models

    model = getattr(models, f"resnet{depth}")(weights=None, num_classes=10)
    adapt_input_channels(model, 1)
    return adapt_for_small_images(model) if adapted else model


def draw_feature_map_sizes(input_size: int = 28, depth: int = 50) -> Figure:
    """Spatial size after each stage, unmodified vs adapted stem, for one input size.

    The sizes depend only on the strides, so they are the same for ResNet-18 ... 152
    (``depth`` only changes the title and which net is traced).
    """
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for adapted, label in ((False, "unmodified stem (7×7 stride 2 + max pool)"),
                           (True, "adapted: stride-1 conv1, no max pool")):
        t = feature_map_sizes(_small_resnet(adapted, depth), input_size)
        ax.plot(t.stage, t.height, "o-", label=label)
        for s, h in zip(t.stage, t.height):
            ax.annotate(str(h), (s, h), textcoords="offset points", xytext=(0, 6), ha="center",
                        fontsize=8)
    ax.set_yscale("log", base=2)
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.margins(y=0.15)
    ax.set_xlabel("stage (input → output)")
    ax.set_ylabel("feature map height = width (pixels)")
    ax.set_title(f"ResNet-{depth} on a 1×{input_size}×{input_size} image")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


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


def finetune(
    model: nn.Module, epochs: int = 1, per_class: int = 20, test_per_class: int = 20,
    batch_size: int = 32, optimizer: str = "adamw", lr: float = 1e-3, seed: int = 0,
    progress: bool = True, device: str | torch.device | None = None, **overrides: Any,
) -> pd.DataFrame:
    """Train ``model`` (1-channel input, 10 outputs) on a FashionMNIST subset at 28x28
    by the ``"finetune"`` recipe of :mod:`resnet_tutorial.recipes` (AdamW, cosine, fp32)
    with the given budget, and return its history (``overrides`` replace further fields)."""
    overrides.setdefault("weight_decay", DEFAULT_WEIGHT_DECAY[optimizer])  # fit's default for that optimizer
    return fit_recipe("finetune", model, device=device, progress=progress, epochs=epochs, per_class=per_class,
                      test_per_class=test_per_class, batch_size=batch_size, optimizer=optimizer, lr=lr, seed=seed,
                      **overrides).history
