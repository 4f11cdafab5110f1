"""Residual networks and a timm-style registry: ``create_model(name, **kwargs)``.

* :class:`ResNet` -- torchvision's ImageNet ResNet (same module names and
  parameter counts, so torchvision state_dicts load), plus ``in_channels``.
* :class:`CifarResNet` -- He et al. (2016), section 4.2: 6n+2 layers, three
  stages of n basic blocks with 16/32/64 channels, for 28x28 / 32x32 inputs,
  built from the configurable :class:`~resnet_tutorial.blocks.ResidualBlock`
  (shortcut kind, BN, add/cat, pre-activation, activation are switches).
* :func:`make_deep_mlp` / :func:`make_deep_cnn`: deep plain or residual nets
  with a choice of activation, initialization and BatchNorm, for the gradient
  experiments of lessons 01 and 02.
* The posts' networks: :class:`PostFashionResNet18` (post 000),
  :class:`PostResNet` / :func:`post_resnet18` (post 002) and
  :class:`SimpleResNet` (post 001: torchvision's resnet50 with a new ``fc``).

``list_models()`` names everything ``create_model`` can build.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from collections import OrderedDict
from typing import Any, Callable

import torch
from torch import Tensor, nn

from .blocks import (
    ACTIVATIONS,
    BasicBlock,
    Bottleneck,
    PostBasicBlock,
    Residual,
    ResidualBlock,
    make_activation,
)

__all__ = [
    "INITS",
    "AddShortcut",
    "CifarResNet",
    "PostFashionResNet18",
    "PostResNet",
    "ResNet",
    "SimpleResNet",
    "check_input_channels",
    "create_model",
    "list_models",
    "make_deep_cnn",
    "make_deep_mlp",
    "make_deep_net",
    "plain_cifar",
    "post_resnet18",
    "register_model",
    "resnet_cifar",
]


def check_input_channels(x: Tensor, expected: int) -> None:
    """Raise a ValueError that says what to change when ``x`` is not N x C x H x W
    with ``C == expected``. Cheap: it only reads the shape."""
    if x.dim() != 4:
        raise ValueError(
            f"model expects a 4-d batch N x {expected} x H x W, got shape {tuple(x.shape)}: "
            "add a batch dimension with x.unsqueeze(0)" if x.dim() == 3 else
            f"model expects a 4-d batch N x {expected} x H x W, got shape {tuple(x.shape)}"
        )
    if x.shape[1] != expected:
        hint = (
            "or convert the images to grayscale (e.g. x.mean(1, keepdim=True))"
            if expected == 1
            else f"or repeat the channel (x.expand(-1, {expected}, -1, -1))"
            if x.shape[1] == 1
            else "or convert the images"
        )
        raise ValueError(
            f"model expects {expected} input channel(s), got {x.shape[1]}: "
            f"pass in_channels={x.shape[1]} when creating the model, {hint}"
        )


# ---------------------------------------------------------------------------
# torchvision-compatible ImageNet ResNet
# ---------------------------------------------------------------------------
class ResNet(nn.Module):
    """torchvision's ResNet with an ``in_channels`` argument.

    Stem (7x7 stride-2 conv, BN, ReLU, 3x3 stride-2 max pool), four stages
    built by ``_make_layer`` (64/128/256/512 planes, stride 1/2/2/2), global
    average pooling and a linear classifier. Module names, initialisation and
    parameter counts equal torchvision's, so ``load_state_dict`` works both ways.
    ``small_input=True`` swaps the stem for a 3x3 stride-1 conv without max
    pool (for 28x28/32x32 images, where the ImageNet stem shrinks 28 -> 7 at once).
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: list[int],
        num_classes: int = 1000,
        in_channels: int = 3,
        zero_init_residual: bool = False,
        groups: int = 1,
        width_per_group: int = 64,
        replace_stride_with_dilation: list[bool] | None = None,
        norm_layer: Callable[..., nn.Module] | None = None,
        small_input: bool = False,
    ) -> None:
        super().__init__()
        if len(layers) != 4 or any(n < 1 for n in layers):
            raise ValueError(f"layers must be four positive block counts, got {layers}")
        if in_channels < 1 or num_classes < 1:
            raise ValueError(
                f"in_channels and num_classes must be >= 1, got {in_channels} and {num_classes}"
            )
        self._norm_layer = nn.BatchNorm2d if norm_layer is None else norm_layer
        self.in_channels = in_channels
        self.inplanes = 64
        self.dilation = 1
        if replace_stride_with_dilation is None:
            replace_stride_with_dilation = [False, False, False]
        if len(replace_stride_with_dilation) != 3:
            raise ValueError(
                "replace_stride_with_dilation should be None or a 3-element list, "
                f"got {replace_stride_with_dilation}"
            )
        self.groups = groups
        self.base_width = width_per_group
        if small_input:
            self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = self._norm_layer(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool: nn.Module = (
            nn.Identity() if small_input else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        )
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], 2, replace_stride_with_dilation[0])
        self.layer3 = self._make_layer(block, 256, layers[2], 2, replace_stride_with_dilation[1])
        self.layer4 = self._make_layer(block, 512, layers[3], 2, replace_stride_with_dilation[2])
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            # each block starts as (almost) the identity: helps very deep nets early on
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    m.zero_init_residual()

    def _make_layer(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        planes: int,
        blocks: int,
        stride: int = 1,
        dilate: bool = False,
    ) -> nn.Sequential:
        """One stage: a first block that may change the shape, then ``blocks - 1``
        blocks that keep it. ``downsample`` is needed exactly when the shape changes."""
        norm_layer = self._norm_layer
        downsample = None
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                norm_layer(planes * block.expansion),
            )
        layers = [
            block(self.inplanes, planes, stride, downsample, self.groups, self.base_width,
                  previous_dilation, norm_layer)
        ]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(
                block(self.inplanes, planes, groups=self.groups, base_width=self.base_width,
                      dilation=self.dilation, norm_layer=norm_layer)
            )
        return nn.Sequential(*layers)

    def forward_features(self, x: Tensor) -> Tensor:
        """Everything up to (and including) ``layer4``: N x C x h x w feature maps."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: Tensor) -> Tensor:
        check_input_channels(x, self.in_channels)
        x = self.avgpool(self.forward_features(x))
        return self.fc(torch.flatten(x, 1))


# ---------------------------------------------------------------------------
# CIFAR-style ResNet (He et al. 2016, section 4.2)
# ---------------------------------------------------------------------------
def _cifar_blocks_per_stage(depth: int) -> int:
    """n for a 6n+2-layer network, or a ValueError naming the nearest valid depths."""
    if depth >= 8 and (depth - 2) % 6 == 0:
        return (depth - 2) // 6
    below = max(8, depth - (depth - 2) % 6) if depth >= 8 else None
    above = 8 if depth < 8 else below + 6  # type: ignore[operator]
    nearest = f"{below} or {above}" if below is not None and below != above else f"{above}"
    raise ValueError(
        f"depth must be 6n+2 with n >= 1 (8, 14, 20, 26, 32, 44, 56, 110, ...), got {depth}: "
        f"the nearest valid depths are {nearest}"
    )


class CifarResNet(nn.Module):
    """The 6n+2-layer ResNet of He et al. (2016, section 4.2) for small images.

    A 3x3 conv (16 channels), three stages of ``n`` two-conv blocks at
    16/32/64 channels (times ``width``) on 28x28 (or 32x32) -> 14 -> 7 feature
    maps, global average pooling and a linear layer: ``6n + 2`` weighted layers.
    The default option-A (zero-padding) shortcuts have no parameters, so for 3
    input channels and 10 classes the counts are the paper's Table 6 (ResNet-20
    0.27M, -32 0.46M, -44 0.66M, -56 0.85M, -110 1.7M).

    ``stem_stride=2`` makes the first conv halve the image (28x28 -> 14x14 ->
    7 -> 4): about a quarter of the arithmetic, for the speed-first training recipe.

    Switches (passed to every :class:`ResidualBlock`): ``shortcut`` ("zeropad",
    "projection", "identity" only where shapes match, "none" = plain net), ``bn``,
    ``merge`` ("add"/"cat"), ``preact``, ``activation``.
    """

    def __init__(
        self,
        depth: int = 20,
        num_classes: int = 10,
        in_channels: int = 1,
        width: int = 1,
        *,
        bn: bool = True,
        shortcut: str = "zeropad",
        merge: str = "add",
        preact: bool = False,
        activation: str = "relu",
        zero_init_residual: bool = False,
        stem_stride: int = 1,
    ) -> None:
        super().__init__()
        n = _cifar_blocks_per_stage(depth)
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 (the paper's stem) or 2 (start at half the size), got {stem_stride}")
        if width < 1 or in_channels < 1 or num_classes < 1:
            raise ValueError(
                f"width, in_channels and num_classes must be >= 1, got {width}, "
                f"{in_channels}, {num_classes}"
            )
        if merge == "cat" and shortcut in ("identity", "zeropad"):
            raise ValueError(
                f"merge='cat' doubles each block's output channels, so the next block gets "
                f"2x the channels it returns and a {shortcut!r} shortcut cannot shrink them: "
                "pass shortcut='projection' with merge='cat'"
            )
        if shortcut == "identity":
            raise ValueError(
                "shortcut='identity' cannot connect the stages (channels double and the size "
                "halves at stages 2 and 3): pass shortcut='zeropad' (option A, the paper's "
                "CIFAR choice) or 'projection' (option B)"
            )
        self.depth = depth
        self.in_channels = in_channels
        self.preact = preact
        block_kwargs = dict(
            shortcut=shortcut, bn=bn, merge=merge, preact=preact, activation=activation
        )
        c1 = 16 * width
        self.conv1 = nn.Conv2d(in_channels, c1, kernel_size=3, stride=stem_stride, padding=1, bias=not bn)
        # pre-activation nets normalise inside each block, so the stem is the bare conv
        self.bn1: nn.Module = nn.BatchNorm2d(c1) if bn and not preact else nn.Identity()
        self.act1: nn.Module = nn.Identity() if preact else make_activation(activation)
        self._channels = c1
        self.layer1 = self._make_layer(16 * width, n, 1, block_kwargs)
        self.layer2 = self._make_layer(32 * width, n, 2, block_kwargs)
        self.layer3 = self._make_layer(64 * width, n, 2, block_kwargs)
        # pre-activation blocks end with a conv: normalise once before pooling
        self.final_norm: nn.Module = (
            nn.Sequential(nn.BatchNorm2d(self._channels) if bn else nn.Identity(),
                          make_activation(activation))
            if preact
            else nn.Identity()
        )
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(self._channels, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, ResidualBlock):
                    m.zero_init_residual()

    def _make_layer(
        self, channels: int, blocks: int, stride: int, block_kwargs: dict[str, Any]
    ) -> nn.Sequential:
        """One stage of ``blocks`` ResidualBlocks; the first may halve the size."""
        layers = []
        for i in range(blocks):
            block = ResidualBlock(
                self._channels, channels, stride if i == 0 else 1, **block_kwargs
            )
            layers.append(block)
            self._channels = block.out_channels  # 2x channels after a cat merge
        return nn.Sequential(*layers)

    def blocks(self) -> list[ResidualBlock]:
        """All residual blocks in forward order (for per-block gradient plots)."""
        return [m for m in self.modules() if isinstance(m, ResidualBlock)]

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.final_norm(x)

    def forward(self, x: Tensor) -> Tensor:
        check_input_channels(x, self.in_channels)
        x = self.avgpool(self.forward_features(x))
        return self.fc(torch.flatten(x, 1))


# ---------------------------------------------------------------------------
# the posts' networks
# ---------------------------------------------------------------------------
class PostFashionResNet18(nn.Module):
    """Post 000's ResNet-18 for 1-channel FashionMNIST resized to 224x224.

    Kept as the post wrote it, including its unusual choices: a 7x7 conv with
    **stride 3** (torchvision uses 2), **ReLU before BN** in the stem, biased
    convs everywhere, and the post's module names ``block1`` ... ``block6`` so
    ``torchsummary`` output can be compared line by line. ``block`` is the
    residual block class (the post passes ``Residual`` in).
    """

    def __init__(
        self, block: type[Residual] = Residual, in_channels: int = 1, num_classes: int = 10
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.block1 = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=7, stride=3, padding=3),
            nn.ReLU(),
            nn.BatchNorm2d(64),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        self.block2 = nn.Sequential(block(64, 64), block(64, 64))
        self.block3 = nn.Sequential(block(64, 128, use_1x1conv=True, strides=2), block(128, 128))
        self.block4 = nn.Sequential(block(128, 256, use_1x1conv=True, strides=2), block(256, 256))
        self.block5 = nn.Sequential(block(256, 512, use_1x1conv=True, strides=2), block(512, 512))
        self.block6 = nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(512, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        check_input_channels(x, self.in_channels)
        for stage in (self.block1, self.block2, self.block3, self.block4, self.block5):
            x = stage(x)
        return self.block6(x)


class PostResNet(nn.Module):
    """Post 002's generic ``ResNet(block, num_blocks, num_classes=1000)``.

    Same layout as torchvision (7x7 stride-2 stem, max pool, four stages built
    by ``_make_layer``, global average pool, ``fc``) but with post 002's
    biased convs and its :class:`PostBasicBlock`, so it has a few thousand
    more parameters than torchvision's ResNet-18 and its weights don't load there.
    """

    def __init__(
        self,
        block: type[PostBasicBlock] = PostBasicBlock,
        num_blocks: list[int] | tuple[int, ...] = (2, 2, 2, 2),
        num_classes: int = 1000,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if len(num_blocks) != 4:
            raise ValueError(f"num_blocks must list four stage lengths, got {num_blocks}")
        self.input_channels = in_channels
        self.in_channels = 64  # the post's running channel count used by _make_layer
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 128, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 256, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(block, 512, num_blocks[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)

    def _make_layer(
        self, block: type[PostBasicBlock], out_channels: int, num_blocks: int, stride: int
    ) -> nn.Sequential:
        layers = [block(self.in_channels, out_channels, stride)]
        self.in_channels = out_channels
        for _ in range(1, num_blocks):
            layers.append(block(self.in_channels, out_channels))
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        check_input_channels(x, self.input_channels)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def post_resnet18(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> PostResNet:
    """Post 002's ``ResNet18()``: ``PostResNet(PostBasicBlock, [2, 2, 2, 2])``."""
    return PostResNet(PostBasicBlock, [2, 2, 2, 2], num_classes=num_classes,
                      in_channels=in_channels, **kwargs)


class SimpleResNet(nn.Module):
    """Post 001's ``SimpleResNet``: torchvision's resnet50 with a new ``fc``.

    The post calls ``models.resnet50(pretrained=True)``; ``pretrained=`` is
    deprecated since torchvision 0.13, so this takes the current ``weights=``
    argument (``None``: random init, offline; ``"DEFAULT"`` or
    ``ResNet50_Weights.IMAGENET1K_V2``: downloads unless cached). The new
    ``fc`` maps the 2048 pooled features to ``num_classes``.
    """

    def __init__(self, num_classes: int = 1000, weights: Any = None) -> None:
        super().__init__()
        from torchvision import models

        resnet = models.resnet50(weights=weights)
        resnet.fc = nn.Linear(resnet.fc.in_features, num_classes)
        self.model = resnet

    def forward(self, x: Tensor) -> Tensor:
        check_input_channels(x, self.model.conv1.in_channels)
        return self.model(x)


# ---------------------------------------------------------------------------
# deep plain / residual MLPs and CNNs for the gradient experiments (lessons 01, 02)
# ---------------------------------------------------------------------------
INITS: tuple[str, ...] = ("default", "xavier", "kaiming", "small", "large")
#: std of the "too small" and "too large" Gaussian initializations.
SMALL_STD, LARGE_STD = 0.01, 1.0


class AddShortcut(nn.Module):
    """``x + body(x)``: an identity shortcut around one hidden layer (the residual idea, minimal)."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _check_options(depth: int, width: int, activation: str, init: str, what: str, width_name: str) -> None:
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 1000:
        raise ValueError(f"{what}: depth must be an int between 1 and 1000 (number of hidden layers), got {depth!r}")
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"{what}: {width_name} must be a positive int, got {width!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"{what}: activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    if init not in INITS:
        raise ValueError(f"{what}: init must be one of {list(INITS)}, got {init!r}")


def _init_weights(model: nn.Module, init: str) -> None:
    """Re-initialize every Linear/Conv layer; ``default`` keeps PyTorch's own init.

    PyTorch's default is Kaiming-uniform with a=√5, i.e. weight variance 1/(3·fan_in):
    one sixth of the 2/fan_in He et al. recommend for ReLU.
    """
    if init == "default":
        return
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            if init == "xavier":
                nn.init.xavier_normal_(m.weight)
            elif init == "kaiming":
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            elif init == "small":
                nn.init.normal_(m.weight, std=SMALL_STD)
            elif init == "large":
                nn.init.normal_(m.weight, std=LARGE_STD)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _preact_layer(weight_layer: nn.Module, norm: nn.Module | None, activation: str, *tail: nn.Module) -> nn.Sequential:
    """[norm] → activation → (tail) → weight layer: one hidden layer in pre-activation order."""
    parts: list[tuple[str, nn.Module]] = [("bn", norm)] if norm is not None else []
    parts.append(("act", make_activation(activation)))
    parts += [(type(t).__name__.lower(), t) for t in tail]
    parts.append(("linear" if isinstance(weight_layer, nn.Linear) else "conv", weight_layer))
    return nn.Sequential(OrderedDict(parts))


def make_deep_mlp(
    depth: int,
    width: int = 64,
    activation: str = "sigmoid",
    init: str = "default",
    bn: bool = False,
    shortcut: bool = False,
    in_features: int = 784,
    num_classes: int = 10,
) -> nn.Sequential:
    """A deep fully connected net with ``depth`` hidden layers of ``width`` units.

    Layout ``flatten, hidden1 … hidden{depth}, head`` with ``depth + 1``
    Linear layers and ``depth`` activations::

        hidden1 = Linear(in_features → width)
        hidden2…depth = [BatchNorm1d] → activation → Linear(width → width)
        head = [BatchNorm1d] → activation → Linear(width → num_classes)

    Without shortcuts this is the familiar Linear → [BN] → activation chain,
    grouped so that each group *ends* with its Linear. With
    ``shortcut=True`` hidden layers 2…depth become ``x + layer(x)`` (hidden1
    changes the width, so it cannot). Grouping this way keeps the identity
    path clean — no activation after the addition, as in He et al.'s
    "Identity mappings in deep residual networks" — so the gradient reaches
    the first layer without passing through any activation's slope.

    Lessons: 01.
    """
    _check_options(depth, width, activation, init, "make_deep_mlp", "width")
    if in_features < 1 or num_classes < 1:
        raise ValueError("make_deep_mlp: in_features and num_classes must be positive")
    layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    layers.append(("hidden1", nn.Sequential(OrderedDict(linear=nn.Linear(in_features, width, bias=not bn)))))
    for i in range(2, depth + 1):
        block = _preact_layer(nn.Linear(width, width, bias=not bn), nn.BatchNorm1d(width) if bn else None, activation)
        layers.append((f"hidden{i}", AddShortcut(block) if shortcut else block))
    head = _preact_layer(nn.Linear(width, num_classes), nn.BatchNorm1d(width) if bn else None, activation)
    layers.append(("head", head))
    model = nn.Sequential(OrderedDict(layers))
    _init_weights(model, init)
    return model


def make_deep_cnn(
    depth: int,
    channels: int = 8,
    activation: str = "sigmoid",
    init: str = "default",
    bn: bool = False,
    shortcut: bool = False,
    in_channels: int = 1,
    num_classes: int = 10,
    stem_stride: int = 2,
) -> nn.Sequential:
    """A deep conv net with ``depth`` hidden 3×3 conv layers of ``channels`` maps.

    Same layout as :func:`make_deep_mlp` with convolutions::

        hidden1 = Conv3×3(in_channels → channels, stride stem_stride)
        hidden2…depth = [BatchNorm2d] → activation → Conv3×3(channels → channels)
        head = [BatchNorm2d] → activation → global average pool → Linear

    ``stem_stride=2`` halves 28×28 to 14×14 so depth 100 stays cheap.
    ``shortcut=True`` wraps hidden layers 2…depth as ``x + layer(x)``.

    Lessons: 01.
    """
    _check_options(depth, channels, activation, init, "make_deep_cnn", "channels")
    if in_channels < 1 or num_classes < 1 or stem_stride < 1:
        raise ValueError("make_deep_cnn: in_channels, num_classes and stem_stride must be positive")

    def conv(c_in: int, stride: int = 1) -> nn.Conv2d:
        return nn.Conv2d(c_in, channels, 3, stride=stride, padding=1, bias=not bn)

    def norm() -> nn.Module | None:
        return nn.BatchNorm2d(channels) if bn else None

    layers: list[tuple[str, nn.Module]] = [("hidden1", nn.Sequential(OrderedDict(conv=conv(in_channels, stem_stride))))]
    for i in range(2, depth + 1):
        block = _preact_layer(conv(channels), norm(), activation)
        layers.append((f"hidden{i}", AddShortcut(block) if shortcut else block))
    head = _preact_layer(nn.Linear(channels, num_classes), norm(), activation, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    layers.append(("head", head))
    model = nn.Sequential(OrderedDict(layers))
    _init_weights(model, init)
    return model


def make_deep_net(arch: str = "mlp", depth: int = 20, **kw: Any) -> nn.Sequential:
    """``make_deep_mlp`` for ``arch="mlp"``, ``make_deep_cnn`` for ``arch="cnn"``."""
    if arch == "mlp":
        return make_deep_mlp(depth, **kw)
    if arch == "cnn":
        return make_deep_cnn(depth, **kw)
    raise ValueError(f"arch must be 'mlp' or 'cnn', got {arch!r}")


# ---------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------
_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: make ``fn`` available as ``create_model(fn.__name__, ...)``.

    A second model under a name already taken raises a ValueError (two entry
    points with one name would make ``create_model`` and checkpoints ambiguous).
    """
    if fn.__name__ in _MODELS and _MODELS[fn.__name__] is not fn:
        raise ValueError(
            f"a model named {fn.__name__!r} is already registered "
            f"({_MODELS[fn.__name__].__module__}); give the new entry point another name"
        )
    _MODELS[fn.__name__] = fn
    return fn


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted names ``create_model`` accepts, optionally filtered (``"plain*"``)."""
    names = sorted(_MODELS, key=lambda s: (s.rstrip("0123456789"), len(s), s))
    return [n for n in names if pattern is None or fnmatch.fnmatch(n, pattern)]


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model by name: ``create_model("resnet20", in_channels=1)``.

    Unknown names or keyword arguments raise a ValueError that lists what is
    accepted. The model remembers how it was built in ``model.model_spec``
    (``{"name": ..., "kwargs": ...}``), which checkpoints store, so that
    :func:`resnet_tutorial.checkpoints.load_model` rebuilds it from a file in
    one call (as timm's ``create_model(..., checkpoint_path=)`` does).

    Lessons: 03, 04, 06, 07, 09.
    """
    model = _build(name, kwargs)
    model.model_spec = {"name": name, "kwargs": dict(kwargs)}
    return model


def _build(name: str, kwargs: dict[str, Any]) -> nn.Module:
    if name not in _MODELS:
        close = difflib.get_close_matches(name, list(_MODELS), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(
            f"unknown model {name!r}{hint}; available models: {', '.join(list_models())}"
        )
    fn = _MODELS[name]
    params = inspect.signature(fn).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = [k for k in kwargs if k not in params]
    if unknown and not takes_any:
        raise ValueError(
            f"{name} does not take {', '.join(unknown)}; it accepts: {', '.join(params)}"
        )
    try:
        return fn(**kwargs)
    except TypeError as err:
        if "unexpected keyword argument" not in str(err):
            raise
        raise ValueError(f"{name}: {err}; see help(create_model({name!r}).__class__)") from err


def _resnet(block: type[BasicBlock] | type[Bottleneck], layers: list[int], **kw: Any) -> ResNet:
    return ResNet(block, layers, **kw)


@register_model
def resnet18(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-18 (BasicBlock, [2, 2, 2, 2]): 11.7M parameters with 1000 classes."""
    return _resnet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes, in_channels=in_channels,
                   **kwargs)


@register_model
def resnet34(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-34 (BasicBlock, [3, 4, 6, 3]): 21.8M parameters with 1000 classes."""
    return _resnet(BasicBlock, [3, 4, 6, 3], num_classes=num_classes, in_channels=in_channels,
                   **kwargs)


@register_model
def resnet50(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-50 (Bottleneck, [3, 4, 6, 3]): 25.6M parameters with 1000 classes."""
    return _resnet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes, in_channels=in_channels,
                   **kwargs)


@register_model
def resnet101(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-101 (Bottleneck, [3, 4, 23, 3]): 44.5M parameters with 1000 classes."""
    return _resnet(Bottleneck, [3, 4, 23, 3], num_classes=num_classes, in_channels=in_channels,
                   **kwargs)


@register_model
def resnet152(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-152 (Bottleneck, [3, 8, 36, 3]): 60.2M parameters with 1000 classes."""
    return _resnet(Bottleneck, [3, 8, 36, 3], num_classes=num_classes, in_channels=in_channels,
                   **kwargs)


@register_model
def resnet_cifar(depth: int = 20, **kwargs: Any) -> CifarResNet:
    """A 6n+2-layer CIFAR-style ResNet (option-A shortcuts by default)."""
    return CifarResNet(depth, **kwargs)


@register_model
def plain_cifar(depth: int = 20, **kwargs: Any) -> CifarResNet:
    """The plain twin of :func:`resnet_cifar`: identical layers, no shortcuts."""
    if kwargs.get("shortcut", "none") != "none":
        raise ValueError("plain_cifar has no shortcuts: use resnet_cifar(shortcut=...) instead")
    kwargs["shortcut"] = "none"
    return CifarResNet(depth, **kwargs)


_CIFAR_SIGNATURE = inspect.signature(CifarResNet)


def _register_cifar(depth: int) -> None:
    def residual(**kwargs: Any) -> CifarResNet:
        return resnet_cifar(depth, **kwargs)

    def plain(**kwargs: Any) -> CifarResNet:
        return plain_cifar(depth, **kwargs)

    for fn, prefix, what in ((residual, "resnet", "ResNet"), (plain, "plain", "plain net")):
        fn.__name__ = fn.__qualname__ = f"{prefix}{depth}"
        # advertise CifarResNet's keywords so create_model can name the accepted ones
        skip = {"depth", "shortcut"} if prefix == "plain" else {"depth"}
        fn.__signature__ = _CIFAR_SIGNATURE.replace(  # type: ignore[attr-defined]
            parameters=[p for p in _CIFAR_SIGNATURE.parameters.values() if p.name not in skip]
        )
        fn.__doc__ = (
            f"The {depth}-layer CIFAR-style {what} (He et al. 2016, section 4.2); "
            "keyword arguments go to CifarResNet."
        )
        register_model(fn)


for _depth in (20, 32, 44, 56, 110):
    _register_cifar(_depth)


@register_model
def post_fashion_resnet18(in_channels: int = 1, num_classes: int = 10, **kwargs: Any) -> PostFashionResNet18:
    """Post 000's ResNet-18 for 1x224x224 FashionMNIST (stride-3 stem, ReLU before BN)."""
    return PostFashionResNet18(Residual, in_channels=in_channels, num_classes=num_classes, **kwargs)


register_model(post_resnet18)


@register_model
def simple_resnet(num_classes: int = 10, weights: Any = None, **kwargs: Any) -> SimpleResNet:
    """Post 001's SimpleResNet: torchvision resnet50 with a new fc (weights=None: offline)."""
    return SimpleResNet(num_classes=num_classes, weights=weights, **kwargs)
