"""Lesson 03 ("The residual block"): the experiments behind the notebook.

* :func:`compare_post_blocks` -- post 000's ``Residual`` vs post 002's
  ``BasicBlock`` vs torchvision's ``BasicBlock``: where the parameters are.
* :func:`shortcut_table` -- identity, zero-padding (option A) and 1x1
  projection (option B) shortcuts: output shape and parameter cost.
* :func:`shortcut_gradient_check` -- the identity
  ``dL/dx_l = dL/dx_L (1 + d/dx_l sum F_i)`` checked with autograd.
* :func:`draw_shortcut_explorer` -- per-layer gradient norms of a CIFAR-style
  ResNet with a chosen shortcut kind next to its plain twin.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import nn

from ..blocks import BasicBlock, PostBasicBlock, Residual, ResidualBlock
from ..data import fashion_batch
from ..diagnostics import grad_norms, num_params
from ..models import CifarResNet

__all__ = [
    "block_stack",
    "compare_post_blocks",
    "draw_shortcut_explorer",
    "shortcut_gradient_check",
    "shortcut_grad_norms",
    "shortcut_table",
]


def compare_post_blocks(
    in_channels: int = 64, out_channels: int = 128, stride: int = 2
) -> pd.DataFrame:
    """Parameters of the three basic blocks for one shape change.

    Columns: ``block``, ``total``, ``branch`` (the convs and BNs of F),
    ``shortcut``, ``conv_bias`` (parameters spent on conv biases that the
    following BN cancels), ``shortcut_bn`` (does the 1x1 shortcut have a BN?).
    """
    change = stride != 1 or in_channels != out_channels
    post000 = Residual(in_channels, out_channels, use_1x1conv=change, strides=stride)
    post002 = PostBasicBlock(in_channels, out_channels, stride)
    downsample = (
        nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                      nn.BatchNorm2d(out_channels))
        if change else None
    )
    tv = BasicBlock(in_channels, out_channels, stride, downsample)
    rows = []
    for name, block, shortcut in (
        ("post 000 Residual", post000, post000.conv3),
        ("post 002 BasicBlock", post002, post002.shortcut),
        ("torchvision BasicBlock", tv, tv.downsample),
    ):
        convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
        rows.append({
            "block": name,
            "total": num_params(block),
            "branch": num_params(block) - num_params(shortcut),
            "shortcut": num_params(shortcut),
            "conv_bias": sum(c.bias.numel() for c in convs if c.bias is not None),
            "shortcut_bn": shortcut is not None
            and any(isinstance(m, nn.BatchNorm2d) for m in shortcut.modules()),
        })
    return pd.DataFrame(rows)


def shortcut_table(
    in_channels: int = 16, out_channels: int = 32, stride: int = 2, size: int = 28
) -> pd.DataFrame:
    """Each shortcut kind for one block: can it be built, output shape, parameters.

    Columns ``shortcut, works, output_shape, shortcut_params, block_params, note``.
    """
    x = torch.randn(2, in_channels, size, size)
    rows = []
    for kind in ("identity", "zeropad", "projection", "none"):
        try:
            block = ResidualBlock(in_channels, out_channels, stride, shortcut=kind).eval()
        except ValueError as err:
            rows.append({"shortcut": kind, "works": False, "output_shape": None,
                         "shortcut_params": None, "block_params": None, "note": str(err)})
            continue
        with torch.no_grad():
            shape = tuple(block(x).shape)
        rows.append({
            "shortcut": kind, "works": True, "output_shape": shape,
            "shortcut_params": num_params(block.shortcut), "block_params": num_params(block),
            "note": {
                "identity": "x itself",
                "zeropad": "option A: x[:, :, ::s, ::s] + zero channels",
                "projection": "option B: 1x1 conv (stride s) + BN",
                "none": "plain block: no skip path",
            }[kind],
        })
    return pd.DataFrame(rows)


def block_stack(
    n_blocks: int = 4, channels: int = 8, shortcut: str = "identity", seed: int = 0
) -> nn.Sequential:
    """``n_blocks`` pre-activation blocks in a row (no activation after the add),
    so that exactly ``x_L = x_l + sum_i F_i(x_i)`` holds."""
    torch.manual_seed(seed)
    return nn.Sequential(*[
        ResidualBlock(channels, channels, shortcut=shortcut, preact=True) for _ in range(n_blocks)
    ])


def shortcut_gradient_check(
    n_blocks: int = 4, channels: int = 8, zero_branch: bool = False, seed: int = 0,
    shortcut: str = "identity",
) -> dict[str, float | torch.Tensor]:
    """Check ``dL/dx_l = dL/dx_L + (branch terms)`` against an independent computation.

    Builds :func:`block_stack`, takes a random linear loss ``L = <w, x_L>`` (so
    ``dL/dx_L = w``) and computes the gradient with respect to the input ``x_l``
    twice:

    * ``full``: autograd through the whole stack, as training does;
    * ``shortcut + branch``: the identity-path recursion ``g_i = g_{i+1} + J_{F_i}(x_i)^T g_{i+1}``
      run from the top with vector-Jacobian products of each block's *branch*
      :meth:`~resnet_tutorial.blocks.ResidualBlock.residual` alone (the blocks'
      own ``forward`` is never differentiated). ``shortcut`` is ``w``, the term
      the identity paths carry unchanged; ``branch`` is everything the branches add.

    The two agree exactly when every block computes ``x + F(x)``; for a plain
    stack (``shortcut="none"``) they do not, which ``max_abs_error`` shows.
    ``zero_branch=True`` zero-initialises every block: the branch term vanishes
    and the gradient still arrives, through the shortcuts.
    """
    stack = block_stack(n_blocks, channels, shortcut, seed).train()
    if zero_branch:
        for block in stack:
            block.zero_init_residual()
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(4, channels, 6, 6, generator=g, requires_grad=True)
    w = torch.randn(4, channels, 6, 6, generator=g)
    (full,) = torch.autograd.grad((stack(x) * w).sum(), x)

    with torch.no_grad():  # each block's input x_i, from one forward pass
        inputs = [x.detach()]
        for block in list(stack)[:-1]:
            inputs.append(block(inputs[-1]))
    grad = w
    for block, x_i in zip(reversed(list(stack)), reversed(inputs)):
        x_i = x_i.clone().requires_grad_(True)
        (through_branch,) = torch.autograd.grad(block.residual(x_i), x_i, grad_outputs=grad)
        grad = grad + through_branch  # identity path + branch path
    shortcut_term, branch = w, grad - w
    return {
        "full": full, "shortcut": shortcut_term, "branch": branch,
        "full_norm": float(full.norm()), "shortcut_norm": float(shortcut_term.norm()),
        "branch_norm": float(branch.norm()),
        "max_abs_error": float((full - (shortcut_term + branch)).abs().max()),
    }


def shortcut_grad_norms(
    shortcut: str = "zeropad", depth: int = 20, batch_size: int = 32, seed: int = 0,
    inputs: torch.Tensor | None = None, targets: torch.Tensor | None = None,
) -> pd.DataFrame:
    """Per-layer weight-gradient norms of ``CifarResNet(depth, shortcut=...)`` on one
    FashionMNIST batch (``gradients.grad_norms``)."""
    if inputs is None or targets is None:
        inputs, targets = fashion_batch(batch_size, seed)
    torch.manual_seed(seed)
    model = CifarResNet(depth, in_channels=inputs.shape[1], shortcut=shortcut).train()
    return grad_norms(model, inputs, targets)


def draw_shortcut_explorer(
    shortcut: str = "zeropad", depth: int = 20, batch_size: int = 32, seed: int = 0
) -> Figure:
    """Gradient norm per layer for a ResNet with the chosen shortcut and its plain twin.

    With shortcuts the first layers get gradients of the same order as the
    last ones at any depth; without them (``"none"``) the norms drift apart as
    depth grows.
    """
    x, y = fashion_batch(batch_size, seed)
    chosen = shortcut_grad_norms(shortcut, depth, inputs=x, targets=y, seed=seed)
    fig, ax = plt.subplots(figsize=(7.5, 4))
    if shortcut != "none":
        plain = shortcut_grad_norms("none", depth, inputs=x, targets=y, seed=seed)
        ax.plot(plain["index"], plain["grad_norm"], "o-", ms=3, color="0.6",
                label="plain twin (shortcut='none')")
    ax.plot(chosen["index"], chosen["grad_norm"], "o-", ms=3, color="C0",
            label=f"shortcut={shortcut!r}")
    last = chosen.iloc[-1]  # the classifier, not a conv: mark it so it is not read as one
    ax.annotate("fc", (last["index"], last["grad_norm"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_yscale("log")
    ax.set_xlabel("layer index (0 = first conv, input → output; the last point is the fc layer)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("gradient norm ‖∂L/∂W‖₂")
    ax.set_title(f"{depth}-layer CIFAR-style net, one FashionMNIST batch of {batch_size}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
