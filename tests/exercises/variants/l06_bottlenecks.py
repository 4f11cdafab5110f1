"""Lesson 06: conv_params, bottleneck_params."""

import math

from torch import nn

from . import right, wrong


# --------------------------------------------------------------------------- conv_params
@right("the lesson's solution")
def conv_params(in_channels, out_channels, kernel_size, bias=True):
    weights = kernel_size * kernel_size * in_channels * out_channels
    return weights + (out_channels if bias else 0)


@right("per output channel: one filter plus its bias")
def conv_params(in_channels, out_channels, kernel_size, bias=True):
    return out_channels * (in_channels * kernel_size ** 2 + int(bias))


@right("counting a real nn.Conv2d")
def conv_params(in_channels, out_channels, kernel_size, bias=True):
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, bias=bias)
    return sum(p.numel() for p in conv.parameters())


@wrong("kernel not squared", mistake="kernel_not_squared")
def conv_params(in_channels, out_channels, kernel_size, bias=True):
    return kernel_size * in_channels * out_channels + (out_channels if bias else 0)


@wrong("one bias per input channel", mistake="bias_per_input")
def conv_params(in_channels, out_channels, kernel_size, bias=True):
    return kernel_size ** 2 * in_channels * out_channels + (in_channels if bias else 0)


@wrong("bias always counted", mistake="bias_always")
def conv_params(in_channels, out_channels, kernel_size, bias=True):
    return kernel_size ** 2 * in_channels * out_channels + out_channels


@wrong("bias never counted", mistake="no_bias")
def conv_params(in_channels, out_channels, kernel_size, bias=True):
    return kernel_size ** 2 * in_channels * out_channels


@wrong("channels added instead of multiplied", mistake="channels_added")
def conv_params(in_channels, out_channels, kernel_size, bias=True):
    return kernel_size ** 2 * (in_channels + out_channels) + (out_channels if bias else 0)


@wrong("input channels forgotten", mistake="no_in_channels")
def conv_params(in_channels, out_channels, kernel_size, bias=True):
    return kernel_size ** 2 * out_channels + (out_channels if bias else 0)


@wrong("math.pow: a float", mistake="float_for_int")
def conv_params(in_channels, out_channels, kernel_size, bias=True):
    return math.pow(kernel_size, 2) * in_channels * out_channels + (out_channels if bias else 0)


# --------------------------------------------------------------------------- bottleneck_params
@right("the lesson's solution")
def bottleneck_params(in_channels, planes):
    out = 4 * planes
    convs = in_channels * planes + 9 * planes * planes + planes * out
    bns = 2 * (planes + planes + out)
    shortcut = in_channels * out + 2 * out if in_channels != out else 0
    return convs + bns + shortcut


@right("counting torchvision's Bottleneck")
def bottleneck_params(in_channels, planes):
    from torchvision.models.resnet import Bottleneck

    down = None
    if in_channels != 4 * planes:
        down = nn.Sequential(nn.Conv2d(in_channels, 4 * planes, 1, bias=False), nn.BatchNorm2d(4 * planes))
    return sum(p.numel() for p in Bottleneck(in_channels, planes, downsample=down).parameters())


@right("helpers for a conv and a BN")
def bottleneck_params(in_channels, planes):
    def conv(cin, cout, k):
        return cin * cout * k * k

    def bn(c):
        return 2 * c

    total = conv(in_channels, planes, 1) + bn(planes) + conv(planes, planes, 3) + bn(planes)
    total += conv(planes, 4 * planes, 1) + bn(4 * planes)
    if in_channels != 4 * planes:
        total += conv(in_channels, 4 * planes, 1) + bn(4 * planes)
    return total


@wrong("BatchNorm not counted", mistake="no_bn")
def bottleneck_params(in_channels, planes):
    total = in_channels * planes + 9 * planes * planes + 4 * planes * planes
    return total + (in_channels * 4 * planes if in_channels != 4 * planes else 0)


@wrong("running statistics counted as parameters", mistake="bn_buffers")
def bottleneck_params(in_channels, planes):
    total = in_channels * planes + 9 * planes * planes + 4 * planes * planes + 4 * (6 * planes)
    return total + (in_channels * 4 * planes + 4 * 4 * planes if in_channels != 4 * planes else 0)


@wrong("no projection shortcut", mistake="no_shortcut")
def bottleneck_params(in_channels, planes):
    return in_channels * planes + 9 * planes * planes + 4 * planes * planes + 2 * 6 * planes


@wrong("a projection shortcut in every block", mistake="shortcut_always")
def bottleneck_params(in_channels, planes):
    total = in_channels * planes + 9 * planes * planes + 4 * planes * planes + 2 * 6 * planes
    return total + in_channels * 4 * planes + 2 * 4 * planes


@wrong("the shortcut's BatchNorm forgotten", mistake="shortcut_no_bn")
def bottleneck_params(in_channels, planes):
    total = in_channels * planes + 9 * planes * planes + 4 * planes * planes + 2 * 6 * planes
    return total + (in_channels * 4 * planes if in_channels != 4 * planes else 0)


@wrong("the 3x3 kernel counted as 3 weights", mistake="kernel_not_squared")
def bottleneck_params(in_channels, planes):
    total = in_channels * planes + 3 * planes * planes + 4 * planes * planes + 2 * 6 * planes
    return total + (in_channels * 4 * planes + 8 * planes if in_channels != 4 * planes else 0)


@wrong("no expansion: the last conv gives planes channels", mistake="no_expansion")
def bottleneck_params(in_channels, planes):
    total = in_channels * planes + 9 * planes * planes + planes * planes + 2 * 3 * planes
    return total + (in_channels * planes + 2 * planes if in_channels != planes else 0)


@wrong("one parameter per BN channel", mistake="bn_one_param")
def bottleneck_params(in_channels, planes):
    total = in_channels * planes + 9 * planes * planes + 4 * planes * planes + 6 * planes
    return total + (in_channels * 4 * planes + 4 * planes if in_channels != 4 * planes else 0)


@wrong("biases on the convolutions", mistake="conv_biases")
def bottleneck_params(in_channels, planes):
    out = 4 * planes
    total = in_channels * planes + planes + 9 * planes * planes + planes + planes * out + out + 2 * 6 * planes
    return total + (in_channels * out + out + 2 * out if in_channels != out else 0)
