"""Lesson 06 ("Bottlenecks and deeper ResNets"): cost tables and parity checks.

* :func:`block_comparison` -- a basic block vs a bottleneck block: parameters,
  multiply-accumulates (MACs) and FLOPs (1 MAC = 2 FLOPs).
* :func:`stage_costs` -- parameters and FLOPs of every stage of
  ResNet-18/34/50/101/152 (stem, layer1..layer4, head).
* :func:`draw_depth_costs` -- the explorer: per-stage bars for one depth.
* :func:`torchvision_parity` -- our ResNet vs torchvision's: parameter count
  and identical outputs after loading torchvision's ``state_dict``.

FLOPs come from :func:`resnet_tutorial.diagnostics.count_flops`.
"""

from __future__ import annotations

import functools

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from ..blocks import BasicBlock, Bottleneck, ConvBlock
from ..diagnostics import count_flops, num_params
from ..models import ResNet, create_model

__all__ = [
    "DEPTHS",
    "block_comparison",
    "chain_conv_blocks",
    "draw_depth_costs",
    "stage_costs",
    "stage_inputs",
    "torchvision_parity",
]

DEPTHS = (18, 34, 50, 101, 152)
STAGES = ("stem", "layer1", "layer2", "layer3", "layer4", "head")


def _costs(module: nn.Module, x: torch.Tensor) -> dict[str, int]:
    module.eval()
    with torch.no_grad():
        c = count_flops(module, x)
    return {"macs": int(c["macs"]), "flops": int(c["flops"])}


def block_comparison(size: int = 56) -> pd.DataFrame:
    """The paper's Fig. 5 comparison, measured on a ``size x size`` feature map.

    * basic block at 64 channels (ResNet-18/34's first stage),
    * bottleneck 256 -> 64 -> 64 -> 256 (ResNet-50's first stage): 4x the
      channels for about the same cost,
    * a basic block at 256 channels: what 256 channels cost without the 1x1s.

    (Post 001's ``IdentityBlock(256)`` is the same bottleneck in the post's own
    code; the lesson checks that it costs exactly as much instead of listing it twice.)
    """
    torch.manual_seed(0)
    cases = [
        ("basic block, 64 ch", BasicBlock(64, 64), 64),
        ("bottleneck 256→64→64→256", Bottleneck(256, 64), 256),
        ("basic block, 256 ch", BasicBlock(256, 256), 256),
    ]
    rows = []
    for name, block, channels in cases:
        x = torch.randn(1, channels, size, size)
        rows.append({"block": name, "channels": channels, "params": num_params(block),
                     **_costs(block, x)})
    return pd.DataFrame(rows)


def stage_inputs(model: ResNet, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The input tensor of every top-level stage (forward pre-hooks on layer1..4
    and avgpool; the stem's input is ``x``)."""
    seen: dict[str, torch.Tensor] = {"stem": x}
    handles = []
    for name in ("layer1", "layer2", "layer3", "layer4", "avgpool"):
        def hook(_m: nn.Module, args: tuple, _name: str = name) -> None:
            seen[_name] = args[0].detach()

        handles.append(getattr(model, name).register_forward_pre_hook(hook))
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    seen["head"] = seen.pop("avgpool")
    return seen


@functools.lru_cache(maxsize=16)
def _stage_costs_cached(depth: int, input_size: int, num_classes: int) -> pd.DataFrame:
    model = create_model(f"resnet{depth}", num_classes=num_classes)
    x = torch.randn(1, 3, input_size, input_size)
    inputs = stage_inputs(model, x)
    parts: dict[str, nn.Module] = {
        "stem": nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool),
        "layer1": model.layer1, "layer2": model.layer2, "layer3": model.layer3,
        "layer4": model.layer4,
        "head": nn.Sequential(model.avgpool, nn.Flatten(), model.fc),
    }
    rows = []
    for stage in STAGES:
        part = parts[stage]
        blocks = len(part) if stage.startswith("layer") else 0
        with torch.no_grad():
            out_shape = tuple(part(inputs[stage]).shape[1:])
        rows.append({"depth": depth, "stage": stage, "blocks": blocks, "params": num_params(part),
                     "output": "×".join(map(str, out_shape)), **_costs(part, inputs[stage])})
    return pd.DataFrame(rows)


def stage_costs(depth: int = 50, input_size: int = 224, num_classes: int = 1000) -> pd.DataFrame:
    """Per stage of ResNet-``depth``: blocks, parameters, output shape, MACs, FLOPs
    for one ``3 x input_size x input_size`` image (cached)."""
    if depth not in DEPTHS:
        raise ValueError(f"depth must be one of {DEPTHS}, got {depth}")
    return _stage_costs_cached(depth, input_size, num_classes).copy()


def draw_depth_costs(depth: int = 50, input_size: int = 224) -> Figure:
    """Bars of parameters (millions) and GFLOPs per stage for ResNet-``depth``.

    The y-axes are the same for every depth (the largest stage of ResNet-152 sets
    them), so switching depth shows the change in the bars, not in the axes.
    """
    table = stage_costs(depth, input_size)
    largest = [stage_costs(d, input_size) for d in DEPTHS]
    top_params = 1.08 * max(t.params.max() for t in largest) / 1e6
    top_flops = 1.08 * max(t.flops.max() for t in largest) / 1e9
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    color = "C0" if depth < 50 else "C1"
    axes[0].bar(table.stage, table.params / 1e6, color=color)
    axes[0].set_ylabel("parameters (millions)")
    axes[1].bar(table.stage, table.flops / 1e9, color=color)
    axes[1].set_ylabel("GFLOPs per image (1 MAC = 2 FLOPs)")
    axes[0].set_ylim(0, top_params)
    axes[1].set_ylim(0, top_flops)
    for ax in axes:
        ax.set_xlabel("stage (input → output)")
        ax.grid(alpha=0.3, axis="y")
    kind = "basic blocks" if depth < 50 else "bottleneck blocks"
    fig.suptitle(
        f"ResNet-{depth} ({kind}, {'/'.join(str(b) for b in table.blocks[1:5])} per stage), "
        f"3×{input_size}×{input_size} input: "
        f"{table.params.sum() / 1e6:.1f} M parameters, {table.flops.sum() / 1e9:.2f} GFLOPs "
        f"= {table.macs.sum() / 1e9:.2f} G MACs"
    )
    fig.tight_layout()
    return fig


def torchvision_parity(depth: int = 50, input_size: int = 64, seed: int = 0) -> dict[str, float]:
    """Load torchvision's randomly initialised ``resnet{depth}`` weights into ours and
    compare outputs on a random batch (eval mode). Returns parameter counts and the
    largest absolute output difference."""
    import torchvision

    torch.manual_seed(seed)
    theirs = getattr(torchvision.models, f"resnet{depth}")(weights=None).eval()
    ours = create_model(f"resnet{depth}").eval()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 3, input_size, input_size)
    with torch.no_grad():
        diff = (ours(x) - theirs(x)).abs().max().item()
    return {"params_ours": num_params(ours), "params_torchvision": num_params(theirs), "max_abs_diff": diff}


def chain_conv_blocks(channels: int = 64, filters: int = 64) -> str:
    """Try to chain two identical ConvBlocks; return the error message (or "works")."""
    first = ConvBlock(channels, filters, stride=1)
    x = torch.randn(1, channels, 8, 8)
    try:
        first(first(x))
    except ValueError as err:
        return str(err)
    return "works"
