"""Lesson 06's exercises: counting the parameters of a convolution and of a bottleneck block."""

from __future__ import annotations

from torch import nn

from ..blocks import Bottleneck, conv1x1
from .catalogue import Exercise, Mistake, register
from .cases import plain_case


# --------------------------------------------------------------------------- conv_params
def conv_params(in_channels: int, out_channels: int, kernel_size: int, bias: bool = True) -> int:
    """Learnable parameters of ``nn.Conv2d(in_channels, out_channels, kernel_size, bias=bias)``."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, bias=bias)
    return sum(p.numel() for p in conv.parameters())


def _conv_params_family(in_channels, out_channels, kernel_size, bias=True, *, flags=frozenset()):
    k = kernel_size if "kernel_not_squared" in flags else kernel_size * kernel_size
    if "channels_added" in flags:
        weights = k * (in_channels + out_channels)
    else:
        weights = k * (1 if "no_in_channels" in flags else in_channels) * out_channels
    if "bias_flag_added" in flags:
        return weights + bias
    counted = (bias or "bias_always" in flags) and "no_bias" not in flags
    return weights + ((in_channels if "bias_per_input" in flags else out_channels) if counted else 0)


register(Exercise(
    "conv_params", "06", "Parameters of a convolution", conv_params,
    cases=[
        plain_case("ResNet's stem conv: 3 → 64 channels, 7×7, no bias", 3, 64, 7, False),
        plain_case("a 3×3 conv at 64 channels, no bias", 64, 64, 3, False),
        plain_case("a 1×1 conv 256 → 64 with a bias", 256, 64, 1, True),
        plain_case("a 3×3 conv 16 → 32 with a bias (left at its default)", 16, 32, 3),
        plain_case("a single 5×5 filter on one channel, with a bias", 1, 1, 5, True),
    ],
    mistakes=[
        Mistake("kernel_not_squared", "The kernel size must be squared: a k×k kernel has k² weights for every pair "
                                      "of input and output channels, k²·C_in·C_out in all."),
        Mistake("bias_per_input", "A conv has one bias per *output* channel (each filter adds one number), so the "
                                  "bias adds C_out parameters, not C_in."),
        Mistake("bias_always", "You counted a bias even with bias=False: then the layer has only its k²·C_in·C_out "
                               "weights."),
        Mistake("no_bias", "The bias is missing: with bias=True the layer also learns one number per output "
                           "channel (+ C_out)."),
        Mistake("bias_flag_added", "You added the flag bias itself (True counts as 1): a bias is one number per "
                                   "output channel, so add out_channels when bias is True."),
        Mistake("channels_added", "The channel counts multiply, they do not add: every one of the C_out filters has a "
                                  "k×k kernel for each of the C_in input channels, k²·C_in·C_out weights."),
        Mistake("no_in_channels", "The input channels are missing: each filter spans all C_in input channels, so it "
                                  "has k²·C_in weights, and there are C_out filters."),
    ],
    hints=["Every output channel has one k×k filter per input channel.",
           "weights = k·k·C_in·C_out; with bias=True add one bias per output channel."],
    family=_conv_params_family,
))


# --------------------------------------------------------------------------- bottleneck_params
def bottleneck_params(in_channels: int, planes: int) -> int:
    """Parameters of torchvision's ``Bottleneck(in_channels, planes)`` (convs without bias, BN's γ and β), plus
    its 1×1 projection shortcut (conv + BN) when ``in_channels != 4 * planes``."""
    out = Bottleneck.expansion * planes
    down = nn.Sequential(conv1x1(in_channels, out), nn.BatchNorm2d(out)) if in_channels != out else None
    return sum(p.numel() for p in Bottleneck(in_channels, planes, downsample=down).parameters())


def _bottleneck_family(in_channels, planes, *, flags=frozenset()):
    out = (1 if "no_expansion" in flags else 4) * planes
    k = 3 if "kernel_not_squared" in flags else 9
    per_channel = 0 if "no_bn" in flags else 4 if "bn_buffers" in flags else 1 if "bn_one_param" in flags else 2
    biases = "conv_biases" in flags
    total = in_channels * planes + k * planes * planes + planes * out + per_channel * (planes + planes + out)
    total += (planes + planes + out) if biases else 0
    needs_projection = (in_channels != planes) if "shortcut_condition" in flags else (in_channels != out)
    if (needs_projection and "no_shortcut" not in flags) or "shortcut_always" in flags:
        total += in_channels * out + (0 if "shortcut_no_bn" in flags else per_channel * out) + (out if biases else 0)
    return total


register(Exercise(
    "bottleneck_params", "06", "Parameters of a bottleneck block", bottleneck_params,
    cases=[
        plain_case("an identity block of ResNet-50's layer1: 256 channels, planes 64", 256, 64),
        plain_case("layer1's first block: 64 → 256 channels (projection shortcut)", 64, 64),
        plain_case("an identity block of layer4: 2048 channels, planes 512", 2048, 512),
        plain_case("layer4's first block: 1024 → 2048 channels (projection shortcut)", 1024, 512),
        plain_case("layer2's first block: 256 → 512 channels (projection shortcut)", 256, 128),
    ],
    mistakes=[
        Mistake("no_bn", "BatchNorm's parameters are missing: every BN layer learns γ and β, 2 numbers per channel "
                         "(2·(planes + planes + 4·planes) in the branch)."),
        Mistake("bn_buffers", "You counted 4 numbers per BN channel: running_mean and running_var are buffers, "
                              "not parameters (they are not learned by gradient descent). Only γ and β count."),
        Mistake("no_shortcut", "The projection shortcut is missing: when in_channels ≠ 4·planes the block needs a "
                               "1×1 conv (in_channels·4·planes weights) and its BN (2·4·planes)."),
        Mistake("shortcut_always", "You added a projection shortcut where the shapes already match: then the "
                                   "shortcut is the identity and costs nothing."),
        Mistake("shortcut_condition", "The projection shortcut is needed when the input does not have the block's "
                                      "*output* width, in_channels ≠ 4·planes (not in_channels ≠ planes)."),
        Mistake("shortcut_no_bn", "The projection shortcut's BatchNorm is missing: it is a 1×1 conv *and* a BN, "
                                  "2·4·planes more parameters."),
        Mistake("kernel_not_squared", "The 3×3 conv has 3·3 = 9 weights per pair of channels: 9·planes², not 3·planes²."),
        Mistake("no_expansion", "The last 1×1 conv expands to 4·planes channels (the expansion of 4): the block "
                                "outputs 4·planes channels, and its BN and the shortcut have that width too."),
        Mistake("bn_one_param", "Each BN channel has *two* learnable parameters, γ (weight) and β (bias)."),
        Mistake("conv_biases", "The convolutions have no bias here (bias=False, because BN's β follows): count only "
                               "their weights."),
    ],
    hints=["The branch: 1×1 conv in → planes, 3×3 conv planes → planes, 1×1 conv planes → 4·planes; no biases.",
           "Each conv is followed by a BN with 2 parameters per channel (γ, β).",
           "If in_channels ≠ 4·planes, add a 1×1 conv in → 4·planes and its BN."],
    family=_bottleneck_family,
))
