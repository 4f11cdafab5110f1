"""Lesson 03 ("The residual block"): the experiments behind the notebook.

* :func:`draw_plain_and_residual`, :func:`draw_shortcut_kinds` -- the blocks
  the lesson runs, drawn from the modules (``resnet_tutorial.diagrams``).
* :func:`fit_identity` / :func:`identity_fit_experiment` -- ask a plain block
  and a residual block of the same size to output their input; the plain one
  struggles, the residual one switches its branch off.
* :func:`compare_post_blocks` -- the blog posts' two blocks and torchvision's:
  where the parameters go (conv biases before BN, BN in the shortcut).
* :func:`shortcut_table` -- identity, zero-padding (option A) and 1x1
  projection (option B) shortcuts: output shape and parameter cost.
* :func:`shortcut_gradient_check` -- the identity
  ``dL/dx_l = dL/dx_L (1 + d/dx_l sum F_i)`` checked with autograd.
* :func:`stack_input_gradient` / :func:`input_gradient_by_depth` -- the
  gradient that reaches the input of a stack of small units, with and without
  shortcuts (the lesson's "Your turn" measures it).
* :class:`ShortcutExplorer` -- per-layer gradient norms of a CIFAR-style
  ResNet with zero-pad or projection shortcuts and its plain twin (same
  weights), beside the stage-entry block the toggle changes.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from torch import nn

from ..blocks import BasicBlock, PostBasicBlock, Residual, ResidualBlock
from ..data import fashion_batch
from ..device import torch_threads
from ..diagnostics import grad_norms, num_params
from ..diagrams import draw_block, draw_blocks
from ..live import LiveFigure, log_ticks
from ..models import CifarResNet

__all__ = [
    "SHORTCUT_COLORS",
    "ShortcutExplorer",
    "block_stack",
    "compare_post_blocks",
    "draw_plain_and_residual",
    "draw_shortcut_explorer",
    "draw_shortcut_kinds",
    "fit_identity",
    "gradient_spread",
    "identity_block",
    "identity_fit_experiment",
    "input_gradient_by_depth",
    "plot_identity_fit",
    "plot_input_gradient",
    "projection_vs_zeropad",
    "shortcut_explorer",
    "shortcut_grad_norms",
    "shortcut_gradient_check",
    "shortcut_table",
    "stack_input_gradient",
    "tanh_branches",
    "times",
    "twin_nets",
]

#: One colour per net across the lesson: residual (zero-pad), residual (projection), plain.
SHORTCUT_COLORS = {"zeropad": "C0", "projection": "C3", "none": "0.45"}
SHORTCUT_NAMES = {"zeropad": "residual, zero-pad shortcuts", "projection": "residual, projection shortcuts",
                  "none": "plain twin (no shortcuts)"}
KIND_COLORS = {"plain": SHORTCUT_COLORS["none"], "residual": SHORTCUT_COLORS["zeropad"]}


# ====================================================================== pictures
def identity_block(kind: str, channels: int = 16, seed: int = 0) -> ResidualBlock:
    """The block of the identity experiment: ``"plain"`` (no shortcut) or ``"residual"``
    (identity shortcut); the same layers, the same parameter count and, for one
    ``seed``, the same initial weights."""
    if kind not in KIND_COLORS:
        raise ValueError(f"kind must be 'plain' or 'residual', got {kind!r}")
    torch.manual_seed(seed)
    return ResidualBlock(channels, channels, shortcut="none" if kind == "plain" else "identity")


def draw_plain_and_residual(channels: int = 16, size: int = 8) -> Figure:
    """The plain block and the residual block of the identity experiment, side by side,
    drawn from the modules :func:`fit_identity` trains (shapes on the arrows)."""
    blocks = [identity_block("plain", channels), identity_block("residual", channels)]
    return draw_blocks(blocks, titles=["plain block: y = H(x)", "residual block: y = F(x) + x"],
                       input_shape=(channels, size, size))


def draw_shortcut_kinds(in_channels: int = 16, out_channels: int = 32, size: int = 28) -> Figure:
    """The three shortcut kinds as blocks: identity (shapes match), zero-padding and
    projection at a stage entry (stride 2, ``in_channels -> out_channels``)."""
    blocks = [ResidualBlock(in_channels, in_channels, shortcut="identity"),
              ResidualBlock(in_channels, out_channels, 2, shortcut="zeropad"),
              ResidualBlock(in_channels, out_channels, 2, shortcut="projection")]
    return draw_blocks(blocks, titles=["identity (shapes match)", "zero-pad (option A)", "projection (option B)"],
                       input_shape=(in_channels, size, size))


# ====================================================================== the identity experiment
def fit_identity(kind: str, steps: int = 200, *, channels: int = 16, size: int = 8, batch_size: int = 32,
                 lr: float = 0.1, seed: int = 0) -> dict[str, Any]:
    """Train one block to output its own input: minimise ``mse(block(x), x)``.

    ``x`` is a fresh batch of non-negative maps (``ReLU`` of Gaussian noise,
    like the output of an earlier ReLU layer) at every step, so the block must
    learn the identity *function*, not memorise a batch. SGD with momentum 0.9,
    the block in training mode (BatchNorm on batch statistics).

    Returns ``{"losses": array of the loss before each step, "final": loss on a
    new batch after training, "gamma_before"/"gamma_after": mean |gamma| of the
    block's last BatchNorm (bn2), "block": the trained block}``.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    block = identity_block(kind, channels, seed).train()
    gamma_before = float(block.bn2.weight.detach().abs().mean())
    opt = torch.optim.SGD(block.parameters(), lr=lr, momentum=0.9)
    g = torch.Generator().manual_seed(seed + 1)
    losses = np.empty(steps)
    with torch_threads(1):
        for step in range(steps):
            x = torch.relu(torch.randn(batch_size, channels, size, size, generator=g))
            loss = F.mse_loss(block(x), x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses[step] = loss.item()
        with torch.no_grad():
            x = torch.relu(torch.randn(batch_size, channels, size, size, generator=g))
            final = float(F.mse_loss(block(x), x))
    return {"losses": losses, "final": final, "gamma_before": gamma_before,
            "gamma_after": float(block.bn2.weight.detach().abs().mean()), "block": block}


def identity_fit_experiment(steps: int = 200, *, seed: int = 0, **kwargs: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`fit_identity` for the plain and the residual block (same initial weights).

    Returns ``(curves, summary)``: ``curves`` has columns ``step, plain,
    residual`` (the training loss), ``summary`` one row per block with
    ``start, final`` (loss before training and on a fresh batch after it),
    ``gamma_before, gamma_after`` (mean |gamma| of bn2) and ``params`` (int).
    """
    runs = {kind: fit_identity(kind, steps, seed=seed, **kwargs) for kind in ("plain", "residual")}
    curves = pd.DataFrame({"step": np.arange(steps), **{k: r["losses"] for k, r in runs.items()}})
    summary = pd.DataFrame({k: {"start": r["losses"][0], "final": r["final"], "gamma_before": r["gamma_before"],
                                "gamma_after": r["gamma_after"]} for k, r in runs.items()}).T
    summary["params"] = [num_params(r["block"]) for r in runs.values()]
    summary.index.name = "block"
    return curves, summary


def plot_identity_fit(curves: pd.DataFrame) -> Figure:
    """Both training losses of :func:`identity_fit_experiment` on a log scale."""
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    for kind in ("plain", "residual"):
        ax.plot(curves["step"], curves[kind], color=KIND_COLORS[kind], lw=1.6,
                label=f"{kind} block" + (": ReLU(F(x) + x)" if kind == "residual" else ": H(x)"))
    ax.set_yscale("log")
    lo = max(float(curves[["plain", "residual"]].min().min()), 1e-12)
    hi = float(curves[["plain", "residual"]].max().max())
    ax.set_ylim(10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi)))
    ax.set_xlim(0, len(curves))
    ax.set_xlabel("training step (SGD, a fresh batch each step)")
    ax.set_ylabel("mean squared error to x (log scale)")
    ax.set_title("Learning the identity: output your input", fontsize=11)
    ax.grid(alpha=0.3, which="major")
    ax.legend(loc="lower left", fontsize=9, framealpha=0.95)
    fig.tight_layout()
    return fig


# ====================================================================== the blog posts' blocks
def compare_post_blocks(
    in_channels: int = 64, out_channels: int = 128, stride: int = 2
) -> pd.DataFrame:
    """Parameters of the three basic blocks for one shape change.

    Columns: ``block``, ``total``, ``branch`` (the convs and BNs of F),
    ``shortcut``, ``conv_bias`` (parameters spent on conv biases; the ones right
    before a BN are cancelled by it), ``shortcut_bn`` (does the 1x1 shortcut have a BN?).
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


# ====================================================================== the gradient through a shortcut
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


def stack_input_gradient(x: torch.Tensor, branches: Sequence[Callable[[torch.Tensor], torch.Tensor]],
                         shortcut: bool = True) -> torch.Tensor:
    """``dL/dx`` for ``L = sum(stack(x))``: the stack runs ``h <- h + f(h)`` per branch
    (``h <- f(h)`` without shortcuts). ``x`` itself is not changed (its copy gets the gradient)."""
    h = x0 = x.detach().clone().requires_grad_(True)
    for f in branches:
        h = h + f(h) if shortcut else f(h)
    (grad,) = torch.autograd.grad(h.sum(), x0, allow_unused=True)
    return torch.zeros_like(x0) if grad is None else grad.detach()


def tanh_branches(n: int, width: int = 16, seed: int = 0, zero: bool = False) -> list[nn.Module]:
    """``n`` small branches ``tanh(W h + b)`` (PyTorch's default init; ``zero=True``: W = 0, b = 0)."""
    torch.manual_seed(seed)
    branches = [nn.Sequential(nn.Linear(width, width), nn.Tanh()) for _ in range(n)]
    if zero:
        with torch.no_grad():
            for b in branches:
                b[0].weight.zero_()
                b[0].bias.zero_()
    return branches


def input_gradient_by_depth(
    depths: Sequence[int] = (1, 2, 4, 8, 16, 32), *, width: int = 16, batch_size: int = 8, seed: int = 0,
    zero: bool = False, gradient: Callable[..., torch.Tensor] = stack_input_gradient,
) -> pd.DataFrame:
    """RMS of ``dL/dx`` at the input of a stack of ``depth`` tanh branches, with and without shortcuts.

    ``L`` is the sum of the stack's output, so a stack that passes the gradient
    on unchanged gives exactly 1. ``gradient`` is the function that computes it
    (the learner's, or :func:`stack_input_gradient`). Columns ``depth,
    residual, plain``.
    """
    x = torch.randn(batch_size, width, generator=torch.Generator().manual_seed(seed + 1))
    rows = []
    for depth in depths:
        branches = tanh_branches(depth, width, seed, zero)
        rms = {name: float(gradient(x, branches, shortcut=sc).pow(2).mean().sqrt())
               for name, sc in (("residual", True), ("plain", False))}
        rows.append({"depth": depth, **rms})
    return pd.DataFrame(rows)


def plot_input_gradient(by_depth: pd.DataFrame, zeroed: pd.DataFrame | None = None) -> Figure:
    """The input gradient's RMS against depth (log scale): residual vs plain, and with zeroed branches."""
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    for name in ("residual", "plain"):
        color = KIND_COLORS[name]
        ax.plot(by_depth["depth"], by_depth[name], "o-", color=color, label=f"{name} stack")
        if zeroed is not None and name == "residual":
            ax.plot(zeroed["depth"], zeroed[name], "s--", color=color, mfc="white",
                    label="residual stack, every branch zeroed (plain: exactly 0)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(list(by_depth["depth"]))
    ax.set_xticklabels([str(d) for d in by_depth["depth"]])
    ax.set_xlabel("units in the stack")
    ax.set_ylabel("RMS of ∂L/∂x at the input")
    ax.axhline(1.0, color="0.7", lw=0.8, zorder=0)
    ax.grid(alpha=0.3, which="major")
    ax.legend(loc="lower left", fontsize=8, framealpha=0.95)
    fig.tight_layout()
    return fig


# ====================================================================== gradient per layer, three nets
def twin_nets(depth: int = 20, seed: int = 0, in_channels: int = 1) -> dict[str, CifarResNet]:
    """The CIFAR-style ResNet with zero-pad shortcuts, its projection twin and its plain twin.

    All three hold the *same* weights wherever they have the same layer (the
    projection net gets the zero-pad net's weights plus its own 1x1 convs), so
    any difference between their gradients comes from the shortcuts alone.
    """
    torch.manual_seed(seed)
    zeropad = CifarResNet(depth, in_channels=in_channels, shortcut="zeropad")
    nets = {"zeropad": zeropad}
    for kind in ("projection", "none"):
        torch.manual_seed(seed)
        net = CifarResNet(depth, in_channels=in_channels, shortcut=kind)
        net.load_state_dict(zeropad.state_dict(), strict=False)
        nets[kind] = net
    return nets


def shortcut_grad_norms(
    shortcut: str = "zeropad", depth: int = 20, batch_size: int = 32, seed: int = 0,
    inputs: torch.Tensor | None = None, targets: torch.Tensor | None = None,
) -> pd.DataFrame:
    """Per-layer weight-gradient norms of ``CifarResNet(depth, shortcut=...)`` on one
    FashionMNIST batch (``diagnostics.grad_norms``; the weights of :func:`twin_nets`)."""
    if inputs is None or targets is None:
        inputs, targets = fashion_batch(batch_size, seed)
    model = twin_nets(depth, seed, inputs.shape[1])[shortcut].train()
    with torch_threads(1):
        return grad_norms(model, inputs, targets)


def _split_layers(norms: pd.DataFrame) -> dict[str, np.ndarray]:
    """Main-path convs (stem + block convs, in order), the 1x1 shortcut convs (placed at their
    block's first conv) and the fc layer, from a :func:`grad_norms` table."""
    is_short = norms["layer"].str.contains(".shortcut.", regex=False).to_numpy()
    is_fc = (norms["type"] == "Linear").to_numpy()
    main = norms[~is_short & ~is_fc]
    position = {name: i for i, name in enumerate(main["layer"])}
    short = norms[is_short]
    short_x = [position[name.split(".shortcut.")[0] + ".conv1"] + 0.5 for name in short["layer"]]
    return {"conv": main["grad_norm"].to_numpy(), "short_x": np.asarray(short_x, dtype=float),
            "short": short["grad_norm"].to_numpy(), "fc": float(norms.loc[is_fc, "grad_norm"].iloc[0])}


def _stage_entries(depth: int) -> list[int]:
    """Main-path index of the first conv of stages 2 and 3 (index 0 is the stem conv)."""
    n = (depth - 2) // 6
    return [1 + 2 * n, 1 + 4 * n]


def _block_pixels(block: nn.Module, input_shape: tuple[int, int, int], title: str, height_px: int) -> np.ndarray:
    """A block diagram rendered to RGBA pixels at most ``height_px`` tall (an explorer swaps them fast)."""
    fig = draw_block(block, input_shape=input_shape, title=title)
    try:
        fig.set_dpi(min(100.0, height_px / fig.get_size_inches()[1]))
        fig.canvas.draw()
        return np.asarray(fig.canvas.buffer_rgba()).copy()
    finally:
        plt.close(fig)


def _pad_to(img: np.ndarray, height: int, width: int) -> np.ndarray:
    out = np.full((height, width, 4), 255, dtype=np.uint8)
    top, left = 0, (width - img.shape[1]) // 2
    out[top:top + img.shape[0], left:left + img.shape[1]] = img
    return out


class ShortcutExplorer(LiveFigure):
    """Gradient norm per layer of a CIFAR-style ResNet (zero-pad or projection shortcuts)
    and its plain twin, all three with the same weights, beside the stage-entry block.

    ``explore(ShortcutExplorer(batch_size=32), shortcut=..., depth=...)``. Every
    (depth, net) pair is computed once: all of them up front by :meth:`precompute`
    (a few seconds, one torch thread), so a move only redraws. The toggle picks
    the net in bold and the stage-entry block drawn on the left (its shortcut is
    the only place the two residual nets differ); the other two curves stay
    faint for comparison. The fc layer is a separate marker, not part of the
    conv curve; the projection net's 1x1 shortcut convs are squares.
    """

    figsize = (12.5, 4.6)
    kinds = ("zeropad", "projection", "none")
    depths = tuple(range(8, 57, 6))

    def __init__(self, *, batch_size: int = 32, seed: int = 0, depths: Sequence[int] | None = None) -> None:
        super().__init__()
        self.batch_size, self.seed = batch_size, seed
        self.depths = tuple(depths) if depths is not None else type(self).depths
        for d in self.depths:
            if d < 8 or (d - 2) % 6:
                raise ValueError(f"depth must be 6n+2 with n >= 1 (8, 14, 20, ...), got {d}")
        self.inputs, self.targets = fashion_batch(batch_size, seed)
        self._by_depth: dict[int, dict[str, dict[str, np.ndarray]]] = {}
        self._pictures: dict[str, np.ndarray] | None = None

    # -------------------------------------------------------------- numbers
    def depth_data(self, depth: int) -> dict[str, dict[str, Any]]:
        """``{kind: {"conv", "short_x", "short", "fc"}}`` for the three nets at ``depth`` (cached)."""
        if depth not in self._by_depth:
            nets = twin_nets(depth, self.seed, self.inputs.shape[1])
            with torch_threads(1):
                self._by_depth[depth] = {k: _split_layers(grad_norms(net.train(), self.inputs, self.targets))
                                         for k, net in nets.items()}
        return self._by_depth[depth]

    def precompute(self, progress: bool = True) -> "ShortcutExplorer":
        """Compute every depth the slider offers (and the pictures) now; say how long it will take."""
        t0 = time.perf_counter()
        self.pictures()
        self.depth_data(self.depths[0])
        t1 = time.perf_counter()
        self.depth_data(self.depths[-1])
        rest = self.depths[1:-1]
        # the cost grows with the number of layers: estimate from the deepest net
        estimate = (time.perf_counter() - t1) * sum(rest) / self.depths[-1]
        if progress:
            print(f"Measuring {len(self.depths)} depths x 3 nets on {self.batch_size} images "
                  f"(about {estimate:.0f} s more on this machine)...", flush=True)
        for d in rest:
            self.depth_data(d)
        if progress:
            print(f"done in {time.perf_counter() - t0:.1f} s", flush=True)
        return self

    def pictures(self) -> dict[str, np.ndarray]:
        """The stage-entry block of each net (``layer2[0]``: 16 -> 32 channels, 28x28 -> 14x14), as pixels."""
        if self._pictures is None:
            nets = twin_nets(self.depths[0], self.seed, self.inputs.shape[1])
            size = self.inputs.shape[-1]
            titles = {"zeropad": "stage-entry block: zero-pad", "projection": "stage-entry block: projection",
                      "none": "stage-entry block: plain"}
            height = int(0.96 * self.figsize[1] * self.dpi)
            imgs = {k: _block_pixels(nets[k].layer2[0], (16, size, size), titles[k], height) for k in self.kinds}
            h = max(i.shape[0] for i in imgs.values())
            w = max(i.shape[1] for i in imgs.values())
            self._pictures = {k: _pad_to(i, h, w) for k, i in imgs.items()}
        return self._pictures

    def compute(self, shortcut: str = "zeropad", depth: int = 20) -> dict[str, Any]:
        if shortcut not in self.kinds:
            raise ValueError(f"shortcut must be one of {self.kinds}, got {shortcut!r}")
        return self.depth_data(depth)

    # -------------------------------------------------------------- figure
    def build(self, fig: Figure) -> None:
        pics = self.pictures()
        first = next(iter(pics.values()))
        # pixels placed as they are (figimage: no resampling), so swapping the picture is a cheap blit
        top = int(self.figsize[1] * self.dpi) - first.shape[0] - 4
        self.image = fig.figimage(first, xo=max(0, int(0.15 * self.figsize[0] * self.dpi) - first.shape[1] // 2),
                                  yo=max(0, top), origin="upper")
        ax = self.ax = fig.add_axes((0.335, 0.13, 0.655, 0.66))
        self.lines = {k: ax.plot([], [], "o-", ms=3, color=SHORTCUT_COLORS[k])[0] for k in self.kinds}
        self.fc = {k: ax.plot([], [], "D", ms=6, color=SHORTCUT_COLORS[k], mec="black", mew=0.6)[0]
                   for k in self.kinds}
        (self.short,) = ax.plot([], [], "s", ms=6, color=SHORTCUT_COLORS["projection"], mfc="white", mew=1.4)
        self.stage_lines = [ax.axvline(0, color="0.55", ls=":", lw=1) for _ in range(2)]
        self.stage_texts = [ax.text(0, 0.97, f"stage {i + 2} →", transform=ax.get_xaxis_transform(), fontsize=8,
                                    color="0.35", ha="right", va="top", rotation=90) for i in range(2)]
        self.fc_text = ax.text(0, 1, "fc", fontsize=8, ha="center", va="bottom")
        ax.set_yscale("log")
        log_ticks(ax.yaxis)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
        ax.set_xlabel("layer (0 = first conv, input → output; ◆ = the fc layer)")
        ax.set_ylabel("gradient norm ‖∂L/∂W‖₂")
        ax.grid(alpha=0.3)
        handles = [Line2D([], [], color=SHORTCUT_COLORS[k], marker="o", ms=3, label=SHORTCUT_NAMES[k])
                   for k in self.kinds]
        handles.append(Line2D([], [], ls="", marker="s", ms=6, color=SHORTCUT_COLORS["projection"], mfc="white",
                              mew=1.4, label="1×1 projection conv"))
        ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.02), ncol=4, fontsize=8,
                  frameon=False, borderaxespad=0.0)
        self.ratio_text = fig.text(0.335, 0.965, " ", fontsize=9, va="top")
        self.suptitle = fig.suptitle(" ", x=0.66, y=0.995, fontsize=10, va="top", ha="center", alpha=0.0)
        self.dynamic(self.image, *self.lines.values(), *self.fc.values(), self.short, *self.stage_lines,
                     *self.stage_texts, self.fc_text, self.ratio_text, self.suptitle)

    def update(self, data: dict[str, Any], shortcut: str = "zeropad", depth: int = 20) -> None:
        self.image.set_data(self.pictures()[shortcut])
        n_conv = len(data["zeropad"]["conv"])
        for kind in self.kinds:
            chosen = kind == shortcut
            d = data[kind]
            self.lines[kind].set_data(np.arange(n_conv), d["conv"])
            self.fc[kind].set_data([n_conv], [d["fc"]])
            for artist in (self.lines[kind], self.fc[kind]):
                artist.set_alpha(1.0 if chosen else 0.3)
                artist.set_zorder(3 if chosen else 2)
            self.lines[kind].set_linewidth(2.2 if chosen else 1.0)
        proj = data["projection"]
        self.short.set_data(proj["short_x"], proj["short"])
        self.short.set_alpha(1.0 if shortcut == "projection" else 0.3)
        for line, text, x in zip(self.stage_lines, self.stage_texts, _stage_entries(depth)):
            line.set_xdata([x - 0.5, x - 0.5])
            text.set_x(x - 0.6)
        self.fc_text.set_position((n_conv, 1.5 * max(data[k]["fc"] for k in self.kinds)))
        spread = {k: data[k]["conv"][0] / data[k]["conv"][-1] for k in self.kinds}
        self.ratio_text.set_text(
            f"ResNet-{depth} and its twins, one batch of {self.batch_size} images.   First conv ÷ last conv: "
            + ",  ".join(f"{name} {times(spread[k])}" for name, k in zip(("zero-pad", "projection", "plain"), self.kinds)))
        self.suptitle.set_text(f"shortcut={shortcut}, depth {depth}")
        self.set_limits(self.ax, *self._limits())

    def _limits(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """Axes that hold every depth measured so far (after :meth:`precompute`: all of them), so moving
        a control never rescales the plot: curves are compared across depths and frames are cheap blits."""
        values = np.concatenate([np.r_[d["conv"], d["fc"], d["short"]]
                                 for by_kind in self._by_depth.values() for d in by_kind.values()])
        lo, hi = math.floor(math.log10(values.min())), math.ceil(math.log10(values.max()))
        return (-1.0, max(self._by_depth) + 1.0), (10.0 ** lo, 10.0 ** max(hi, lo + 1))


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def times(ratio: float) -> str:
    """A ratio with the digits that matter: ``2.4×``, ``309×``, ``3,097×``, ``6·10⁶×``."""
    if not math.isfinite(ratio) or ratio <= 0:
        return f"{ratio}×"
    if ratio >= 1e5:
        exponent = math.floor(math.log10(ratio))
        return f"{ratio / 10 ** exponent:.0f}·10{str(exponent).translate(_SUPERSCRIPT)}×"
    return f"{ratio:,.0f}×" if ratio >= 100 else f"{ratio:.1f}×"


_SHARED: dict[tuple[int, tuple[int, ...], int], ShortcutExplorer] = {}


def shortcut_explorer(batch_size: int = 32, depths: Sequence[int] = ShortcutExplorer.depths,
                      seed: int = 0) -> ShortcutExplorer:
    """The lesson's :class:`ShortcutExplorer`, measured once (:meth:`~ShortcutExplorer.precompute`) and kept:
    the explorer cell and the cells after it that read its numbers get the same instance."""
    key = (batch_size, tuple(depths), seed)
    if key not in _SHARED:
        _SHARED[key] = ShortcutExplorer(batch_size=batch_size, seed=seed, depths=depths).precompute()
    return _SHARED[key]


def draw_shortcut_explorer(
    shortcut: str = "zeropad", depth: int = 20, batch_size: int = 32, seed: int = 0
) -> Figure:
    """The :class:`ShortcutExplorer` figure for one setting (tests and headless runs)."""
    view = ShortcutExplorer(batch_size=batch_size, seed=seed, depths=[depth])
    return view.draw(shortcut=shortcut, depth=depth)


def gradient_spread(view: ShortcutExplorer, depths: Sequence[int] = (20, 38, 56)) -> pd.DataFrame:
    """First-conv / last-conv and max / min gradient ratio over the convs, per net and depth."""
    rows = []
    for depth in depths:
        for kind in view.kinds:
            g = view.depth_data(depth)[kind]["conv"]
            rows.append({"net": SHORTCUT_NAMES[kind], "depth": depth, "first / last conv": g[0] / g[-1],
                         "max / min over convs": g.max() / g.min()})
    return pd.DataFrame(rows).set_index(["net", "depth"])


def projection_vs_zeropad(view: ShortcutExplorer, depth: int = 56) -> pd.DataFrame:
    """Median (projection / zero-pad) gradient ratio of the convs of each stage (and the stem):
    where the two residual nets differ, given the same weights."""
    data = view.depth_data(depth)
    ratio = data["projection"]["conv"] / data["zeropad"]["conv"]
    s2, s3 = _stage_entries(depth)
    parts = {"stem conv": ratio[:1], "stage 1 (16 channels)": ratio[1:s2],
             "stage 2 (32 channels)": ratio[s2:s3], "stage 3 (64 channels)": ratio[s3:]}
    return pd.DataFrame({"convs": {k: len(v) for k, v in parts.items()},
                         "projection ÷ zero-pad (median)": {k: float(np.median(v)) for k, v in parts.items()}})
