"""Residual blocks: the posts' versions, torchvision's, and one configurable block.

Every block computes ``out = merge(F(x), shortcut(x))`` where ``F`` is the
*residual branch* (a few conv/BN/activation layers) and ``shortcut`` is either
the identity or a cheap map that makes the shapes match. The blocks here are:

* :class:`Residual` -- post 000's block (biased convs, BN, ReLU after the add,
  optional 1x1 conv shortcut without BN);
* :class:`PostBasicBlock` -- post 002's ``BasicBlock`` (a ``shortcut``
  ``Sequential``: empty for identity, 1x1 conv + BN when the shape changes);
* :class:`ConvBlock` / :class:`IdentityBlock` -- post 001's bottleneck pair
  (1x1 reduce, 3x3, 1x1 expand x4) with a projected / an identity shortcut;
* :class:`BasicBlock` / :class:`Bottleneck` -- torchvision-compatible (same
  submodule names, so torchvision state_dicts load);
* :class:`ResidualBlock` -- one block with switches for experiments: shortcut
  kind, BN on/off, add or concatenate, pre-activation, activation function.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ACTIVATIONS",
    "BasicBlock",
    "Bottleneck",
    "ConvBlock",
    "IdentityBlock",
    "PostBasicBlock",
    "Residual",
    "ResidualBlock",
    "ZeroPadShortcut",
    "conv1x1",
    "conv3x3",
    "make_activation",
]


def conv3x3(
    in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, dilation: int = 1,
    bias: bool = False,
) -> nn.Conv2d:
    """3x3 convolution with padding that keeps the size at stride 1."""
    return nn.Conv2d(
        in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation,
        groups=groups, bias=bias, dilation=dilation,
    )


def conv1x1(in_planes: int, out_planes: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    """1x1 convolution: mixes channels, optionally subsamples by ``stride``."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=bias)


# ---------------------------------------------------------------------------
# post 000: Residual(in, out, use_1x1conv, strides)
# ---------------------------------------------------------------------------
class Residual(nn.Module):
    """Post 000's residual block (the d2l.ai style block).

    ``conv1 (3x3, stride) -> bn1 -> ReLU -> conv2 (3x3) -> bn2``, plus the input
    (through ``conv3``, a biased 1x1 conv with the same stride, when
    ``use_1x1conv``), then ReLU after the add. As in the post, every conv has a
    bias (redundant in front of BN) and the 1x1 shortcut has no BN. The post
    names its ReLU ``Rulu`` and the flag ``use_1conv``; we spell them ``relu``
    and ``use_1x1conv`` (ReLU has no parameters, so nothing else changes).

    Lessons: 03.
    """

    def __init__(
        self, in_channels: int, out_channels: int, use_1x1conv: bool = False, strides: int = 1
    ) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv3: nn.Conv2d | None = (
            nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=strides)
            if use_1x1conv
            else None
        )
        if not use_1x1conv and (in_channels != out_channels or strides != 1):
            raise ValueError(
                f"Residual({in_channels}, {out_channels}, strides={strides}) changes the shape, "
                "so x cannot be added to the branch output: pass use_1x1conv=True"
            )

    def forward(self, x: Tensor) -> Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.conv3 is not None:
            x = self.conv3(x)
        return self.relu(x + y)


# ---------------------------------------------------------------------------
# post 002: BasicBlock(in, out, stride) with a `shortcut` Sequential
# ---------------------------------------------------------------------------
class PostBasicBlock(nn.Module):
    """Post 002's ``BasicBlock``: two biased 3x3 convs with BN, ReLU after the add.

    ``shortcut`` is an empty ``nn.Sequential`` (which returns its input: the
    identity) unless the stride or the channel count changes; then it is a
    biased 1x1 conv followed by BN.
    """

    expansion: int = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + self.shortcut(x)
        return self.relu(out)


# ---------------------------------------------------------------------------
# post 001: the bottleneck "Conv Block" and "Identity Block"
# ---------------------------------------------------------------------------
class _PostBottleneck(nn.Module):
    """Shared body of post 001's two bottleneck blocks.

    The residual branch is 1x1 reduce (to ``filters``) -> 3x3 -> 1x1 expand
    (to ``filters * 4``), each conv followed by BN, ReLU between them and after
    the add.
    """

    expansion: int = 4

    def __init__(self, in_channels: int, filters: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = filters * self.expansion
        self.conv1 = conv1x1(in_channels, filters)
        self.bn1 = nn.BatchNorm2d(filters)
        self.conv2 = conv3x3(filters, filters, stride)
        self.bn2 = nn.BatchNorm2d(filters)
        self.conv3 = conv1x1(filters, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.in_channels = in_channels
        self.out_channels = out_channels

    def _branch(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))


class ConvBlock(_PostBottleneck):
    """Post 001's "Conv Block": a bottleneck whose shortcut is a 1x1 conv + BN.

    Input and output shapes differ (``in_channels -> filters * 4`` channels,
    spatial size divided by ``stride``), so it *changes the dimensions*; it is
    used once at the start of each stage.

    Lessons: 06.
    """

    def __init__(self, in_channels: int, filters: int, stride: int = 2) -> None:
        super().__init__(in_channels, filters, stride)
        self.shortcut = nn.Sequential(
            conv1x1(in_channels, self.out_channels, stride), nn.BatchNorm2d(self.out_channels)
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"ConvBlock expects {self.in_channels} input channels, got {x.shape[1]}: a conv "
                "block changes the channel count, so the next block must be built with "
                f"in_channels={self.out_channels} (an IdentityBlock({self.out_channels}) or a "
                f"ConvBlock({self.out_channels}, ...))"
            )
        return self.relu(self._branch(x) + self.shortcut(x))


class IdentityBlock(_PostBottleneck):
    """Post 001's "Identity Block": a bottleneck with an identity shortcut.

    Input and output shapes are equal (``channels = filters * 4``), so any number
    of them can be chained to add depth.

    Lessons: 06.
    """

    def __init__(self, channels: int, filters: int | None = None) -> None:
        filters = channels // self.expansion if filters is None else filters
        if filters * self.expansion != channels:
            raise ValueError(
                f"IdentityBlock keeps the shape, so channels ({channels}) must equal "
                f"filters * 4 ({filters * self.expansion}): pass filters={channels // 4} "
                "or use a ConvBlock to change the channel count"
            )
        super().__init__(channels, filters, stride=1)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"IdentityBlock({self.in_channels}) got {x.shape[1]} channels: an identity "
                "shortcut cannot change dimensions, put a ConvBlock in front"
            )
        return self.relu(self._branch(x) + x)


# ---------------------------------------------------------------------------
# torchvision-compatible blocks (same submodule names, same init as resnet.py)
# ---------------------------------------------------------------------------
class BasicBlock(nn.Module):
    """torchvision's ``BasicBlock``: two 3x3 convs (no bias) with BN; ReLU after the add.

    ``downsample`` (1x1 conv + BN, built by ``ResNet._make_layer``) maps the
    input to the output's shape when the stride or the width changes.
    """

    expansion: int = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        norm_layer: Callable[..., nn.Module] | None = None,
    ) -> None:
        super().__init__()
        norm_layer = nn.BatchNorm2d if norm_layer is None else norm_layer
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock only supports groups=1 and base_width=64: use Bottleneck")
        if dilation > 1:
            raise ValueError("BasicBlock does not support dilation > 1: use Bottleneck")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)

    def zero_init_residual(self) -> None:
        """Zero the last BN's gamma: the branch outputs 0 and the block starts as ReLU(x)."""
        nn.init.zeros_(self.bn2.weight)


class Bottleneck(nn.Module):
    """torchvision's ``Bottleneck`` (ResNet v1.5: the stride sits in the 3x3 conv).

    1x1 conv reduces to ``width`` channels, the 3x3 conv works at that width,
    a 1x1 conv expands to ``planes * 4``; each followed by BN, ReLU between them
    and after the add.

    Lessons: 06.
    """

    expansion: int = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        norm_layer: Callable[..., nn.Module] | None = None,
    ) -> None:
        super().__init__()
        norm_layer = nn.BatchNorm2d if norm_layer is None else norm_layer
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride, groups, dilation)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)

    def zero_init_residual(self) -> None:
        """Zero the last BN's gamma: the branch outputs 0 and the block starts as ReLU(x)."""
        nn.init.zeros_(self.bn3.weight)


# ---------------------------------------------------------------------------
# the configurable block for experiments
# ---------------------------------------------------------------------------
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=False),
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}

SHORTCUTS = ("identity", "projection", "zeropad", "none")
MERGES = ("add", "cat")


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by name (see ``ACTIVATIONS``)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}: choose one of {sorted(ACTIVATIONS)}"
        ) from None


class ZeroPadShortcut(nn.Module):
    """Option A of He et al. (2016): subsample, then zero-pad the missing channels.

    ``x[:, :, ::stride, ::stride]`` followed by ``out_channels - in_channels``
    channels of zeros appended after the input's channels. No parameters, so
    ResNet-20...110 keep the parameter counts of the paper's Table 6.

    Lessons: 03.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(
                f"a zero-padding shortcut can only add channels ({in_channels} -> {out_channels} "
                "would drop some): use shortcut='projection'"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out_channels - self.in_channels
        if extra:
            # F.pad pads the last dims first: (W_left, W_right, H_top, H_bottom, C_front, C_back)
            x = F.pad(x, (0, 0, 0, 0, 0, extra))
        return x

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


class ResidualBlock(nn.Module):
    """A basic (two 3x3 convs) residual block with switches for experiments.

    Args:
        in_channels, out_channels, stride: as for a conv layer; ``stride`` sits
            in the first conv.
        shortcut: ``"identity"`` (shapes must match), ``"projection"`` (option B:
            1x1 conv + BN, only where the shape changes), ``"zeropad"`` (option A:
            subsample + zero channels, no parameters) or ``"none"`` (a *plain*
            block: no skip path at all).
        bn: BatchNorm after each conv (``False``: no BN modules; convs get a bias).
        merge: ``"add"`` (``F(x) + s(x)``, same shape as the branch) or ``"cat"``
            (``torch.cat([F(x), s(x)], dim=1)``: ``2 * out_channels`` channels out).
            ``self.out_channels`` records what the block really emits.
        preact: pre-activation ordering of He et al. (2016b):
            ``BN -> act -> conv -> BN -> act -> conv``, merge, no activation after.
        activation: a name from ``ACTIVATIONS``.

    ``zero_init_residual()`` zeroes the last BN (or, without BN, the last conv)
    so the branch outputs exactly 0 and the block starts as the identity.

    Lessons: 03, 05, 08.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        shortcut: str = "identity",
        bn: bool = True,
        merge: str = "add",
        preact: bool = False,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if shortcut not in SHORTCUTS:
            raise ValueError(f"unknown shortcut {shortcut!r}: choose one of {SHORTCUTS}")
        if merge not in MERGES:
            raise ValueError(f"unknown merge {merge!r}: choose 'add' or 'cat'")
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        shape_changes = stride != 1 or in_channels != out_channels
        if shortcut == "identity" and shape_changes:
            raise ValueError(
                f"an identity shortcut needs matching shapes, but this block maps "
                f"{in_channels} -> {out_channels} channels with stride {stride}: "
                "choose shortcut='projection' (1x1 conv + BN) or shortcut='zeropad' "
                "(subsample + zero channels)"
            )
        if merge == "cat" and shortcut == "none":
            raise ValueError(
                "merge='cat' concatenates the branch with the shortcut, but shortcut='none' "
                "has no shortcut: use merge='add' (ignored without a shortcut) or pick a shortcut"
            )
        self.in_channels = in_channels
        self.branch_channels = out_channels
        self.stride = stride
        self.shortcut_kind = shortcut
        self.merge = merge
        self.preact = preact
        self.use_bn = bn
        self.activation = activation
        # the channel count after the merge: what the next block must take in
        self.out_channels = 2 * out_channels if merge == "cat" else out_channels

        def norm(channels: int) -> nn.Module:
            return nn.BatchNorm2d(channels) if bn else nn.Identity()

        self.conv1 = conv3x3(in_channels, out_channels, stride, bias=not bn)
        self.bn1 = norm(in_channels if preact else out_channels)
        self.act1 = make_activation(activation)
        self.conv2 = conv3x3(out_channels, out_channels, bias=not bn)
        self.bn2 = norm(out_channels)
        self.act2 = make_activation(activation)  # after the merge, or inside (preact)

        self.shortcut: nn.Module | None
        if shortcut == "none":
            self.shortcut = None
        elif shortcut == "zeropad":
            self.shortcut = ZeroPadShortcut(in_channels, out_channels, stride)
        elif shortcut == "projection" and shape_changes:
            layers: list[nn.Module] = [conv1x1(in_channels, out_channels, stride, bias=not bn)]
            if bn:
                layers.append(nn.BatchNorm2d(out_channels))
            self.shortcut = nn.Sequential(*layers)
        else:  # identity, or projection where the shapes already match
            self.shortcut = nn.Identity()

    @property
    def last_norm(self) -> nn.Module:
        """The layer whose output ends the residual branch (BN, or the conv without BN)."""
        if self.preact or not self.use_bn:
            return self.conv2
        return self.bn2

    def residual(self, x: Tensor) -> Tensor:
        """The residual branch F(x) alone."""
        if self.preact:
            out = self.conv1(self.act1(self.bn1(x)))
            return self.conv2(self.act2(self.bn2(out)))
        out = self.act1(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(out))

    def forward(self, x: Tensor) -> Tensor:
        out = self.residual(x)
        if self.shortcut is not None:
            skip = self.shortcut(x)
            out = torch.cat([out, skip], dim=1) if self.merge == "cat" else out + skip
        return out if self.preact else self.act2(out)

    @torch.no_grad()
    def zero_init_residual(self) -> None:
        """Make the branch output exactly zero, so the block starts as the identity.

        Post-activation: zero the last BN's gamma and beta (beta starts at 0
        anyway; zeroing it too keeps the claim true after training). The block
        is then ``act(x + 0)``, the identity for the non-negative inputs a
        ReLU network feeds it. Pre-activation: the branch ends in a conv, whose
        weight (and bias) are zeroed; the block is then exactly ``x``.
        """
        last = self.last_norm
        nn.init.zeros_(last.weight)
        if getattr(last, "bias", None) is not None:
            nn.init.zeros_(last.bias)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels} -> {self.out_channels}, stride={self.stride}, "
            f"shortcut={self.shortcut_kind!r}, bn={self.use_bn}, merge={self.merge!r}, "
            f"preact={self.preact}, activation={self.activation!r}"
        )
