"""One recorded step -> one :class:`Layer`: its kind (conv, norm, act, ...) and the text of its box.

The label is read from the layer's own attributes (kernel size, stride, output
channels), in the style of He et al. (2016), Fig. 3: ``"3×3 conv, 64, /2"``.
Built-in torch layers are recognised by type; functional calls (``F.relu``,
``x[:, :, ::2, ::2]``, ``F.pad``) by the torch function; a custom layer by
what it called inside (a parameter-free layer that subsamples and pads the
channels *is* a zero-padding shortcut, whatever its class is called).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from .trace import Node

__all__ = ["Layer", "ADD_OPS", "CAT_OPS", "node_layer", "WEIGHT_KINDS"]

ADD_OPS = {"add", "add_", "iadd", "radd"}
CAT_OPS = {"cat", "concat", "concatenate"}
WEIGHT_KINDS = {"conv", "linear"}

_ACT_TYPES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardtanh,
    nn.Softplus, nn.Mish, nn.PReLU, nn.SELU, nn.CELU, nn.Hardswish, nn.Hardsigmoid, nn.Softmax,
)
_ACT_FUNCS = {
    "relu": "ReLU", "relu_": "ReLU", "relu6": "ReLU6", "leaky_relu": "LeakyReLU", "elu": "ELU",
    "gelu": "GELU", "silu": "SiLU", "sigmoid": "sigmoid", "tanh": "tanh", "hardtanh": "Hardtanh",
    "softplus": "Softplus", "mish": "Mish", "selu": "SELU", "softmax": "softmax",
}
_ACT_NAMES = {"Sigmoid": "sigmoid", "Tanh": "tanh"}
_POOL_FUNCS = {"max_pool2d": "max pool", "avg_pool2d": "avg pool",
               "adaptive_avg_pool2d": "avg pool", "adaptive_max_pool2d": "max pool"}


@dataclass(frozen=True)
class Layer:
    """One layer (or torch function) as a diagram shows it.

    Attributes:
        name: dotted module path (``"layer1.0.conv1"``) or, for a torch function
            called in ``forward``, its name (``"add"``, ``"flatten"``).
        kind: ``conv``, ``norm``, ``act``, ``pool``, ``linear``, ``flatten``,
            ``subsample``, ``pad``, ``zeropad``, ``dropout``, ``identity`` or ``other``.
        label: the text in its box, e.g. ``"3×3 conv, 64, /2"``.
        out_shape: output shape of one example (batch dimension dropped), e.g.
            ``(64, 56, 56)``; the same as ``diagnostics.trace_shapes``' output
            shape without its first entry.
        call: 0 for a module's first call, 1 for its second (a shared ReLU).
        stride: spatial subsampling factor of this layer (1 if none).
        channels: output channels (features for a linear layer), if it sets them.
        is_module: ``True`` for a module call, ``False`` for a torch function.
    """

    name: str
    kind: str
    label: str
    out_shape: tuple[int, ...] | None
    call: int = 0
    stride: int = 1
    channels: int | None = None
    is_module: bool = True


def _pair(v: Any) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[-1]))


def _conv_label(m: nn.modules.conv._ConvNd) -> tuple[str, int]:
    k = m.kernel_size
    stride = int(m.stride[0])
    kernel = "×".join(str(int(s)) for s in k)
    parts = [f"{kernel} conv, {m.out_channels}"]
    if stride > 1:
        parts.append(f"/{stride}")
    if m.groups > 1:
        parts.append(f"groups {m.groups}")
    if int(m.dilation[0]) > 1:
        parts.append(f"dilation {int(m.dilation[0])}")
    return ", ".join(parts), stride


def _pool_label(m: nn.Module) -> tuple[str, int]:
    if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        out = _pair(m.output_size) if m.output_size is not None else (1, 1)
        what = "avg" if isinstance(m, nn.AdaptiveAvgPool2d) else "max"
        if out == (1, 1):
            return f"global {what} pool", 1
        return f"adaptive {what} pool → {out[0]}×{out[1]}", 1
    kind = "max" if isinstance(m, nn.MaxPool2d) else "avg"
    k = _pair(m.kernel_size)
    stride = _pair(m.stride if m.stride is not None else m.kernel_size)[0]
    return f"{k[0]}×{k[1]} {kind} pool" + (f", /{stride}" if stride > 1 else ""), stride


def _inner_summary(node: Node) -> tuple[str, str, int] | None:
    """Kind, label and stride of a custom leaf layer, read from the torch functions it called.

    Only parameter-free layers that subsample (strided slicing) and/or pad are
    recognised: that is the zero-padding shortcut (option A of He et al.).
    """
    if node.module is None or any(True for _ in node.module.parameters()) or not node.inner:
        return None
    names = [n for n, _ in node.inner]
    if not set(names) <= {"__getitem__", "pad"}:
        return None
    stride, extra = 1, 0
    for name, info in node.inner:
        if name == "__getitem__":
            steps = info.get("steps", ())
            stride *= max(steps[2:] or (1,))
        elif name == "pad":
            pad = info.get("pad", ())
            extra += sum(pad[4:6]) if len(pad) >= 6 else 0
    parts = [f"subsample /{stride}"] if stride > 1 else []
    if extra:
        parts.append(f"zero-pad +{extra} ch")
    if not parts:
        return None
    return ("zeropad" if extra else "subsample"), ", ".join(parts), stride


def _module_layer(m: nn.Module) -> tuple[str, str, int, int | None]:
    """(kind, label, stride, channels) of a leaf module, from its type and attributes."""
    if isinstance(m, nn.modules.conv._ConvNd):
        label, stride = _conv_label(m)
        return "conv", label, stride, m.out_channels
    if isinstance(m, nn.Linear):
        return "linear", f"fc, {m.out_features}", 1, m.out_features
    if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm,
                      nn.modules.instancenorm._InstanceNorm)) or hasattr(m, "running_mean"):
        label = "BN" if isinstance(m, nn.modules.batchnorm._BatchNorm) or hasattr(m, "running_mean") \
            else type(m).__name__.replace("Norm", " norm")
        return "norm", label, 1, None
    if isinstance(m, _ACT_TYPES):
        name = type(m).__name__
        return "act", _ACT_NAMES.get(name, name), 1, None
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        label, stride = _pool_label(m)
        return "pool", label, stride, None
    if isinstance(m, nn.Flatten):
        return "flatten", "flatten", 1, None
    if isinstance(m, nn.modules.dropout._DropoutNd):
        return "dropout", f"dropout {m.p:g}", 1, None
    if isinstance(m, nn.Identity):
        return "identity", "identity", 1, None
    return "other", type(m).__name__, 1, None


def _op_layer(node: Node) -> tuple[str, str, int, int | None]:
    """(kind, label, stride, channels) of a torch function called in ``forward``."""
    name, info = node.name, node.info
    if name in _ACT_FUNCS:
        return "act", _ACT_FUNCS[name], 1, None
    if name in _POOL_FUNCS:
        return "pool", _POOL_FUNCS[name], 1, None
    if name in ("flatten", "view", "reshape"):
        return "flatten", "flatten", 1, None
    if name == "__getitem__":
        stride = max(info.get("steps", (1,))[2:] or (1,))
        return ("subsample", f"subsample /{stride}", stride, None) if stride > 1 else \
            ("other", "slice", 1, None)
    if name == "pad":
        pad = info.get("pad", ())
        extra = sum(pad[4:6]) if len(pad) >= 6 else 0
        return ("pad", f"zero-pad +{extra} ch", 1, None) if extra else ("pad", "pad", 1, None)
    if name in ("conv2d", "conv1d"):
        k = "×".join(str(s) for s in info.get("kernel", ()))
        stride = int(info.get("stride", 1))
        ch = info.get("out_channels")
        return "conv", f"{k} conv, {ch}" + (f", /{stride}" if stride > 1 else ""), stride, ch
    if name == "linear":
        return "linear", f"fc, {info.get('out_features')}", 1, info.get("out_features")
    if name in ("batch_norm", "layer_norm", "group_norm"):
        return "norm", "BN" if name == "batch_norm" else name.replace("_", " "), 1, None
    if name == "mean":
        return "pool", "mean", 1, None
    if name in ("dropout",):
        return "dropout", "dropout", 1, None
    return "other", name.strip("_"), 1, None


def node_layer(node: Node) -> Layer:
    """The :class:`Layer` a recorded node is drawn as."""
    if node.info.get("passthrough"):
        kind, label, stride, channels = "identity", "identity", 1, None
    elif node.kind == "module" and node.module is not None:
        custom = _inner_summary(node) if type(node.module).__module__.split(".")[0] != "torch" else None
        if custom is not None:
            kind, label, stride = custom
            channels = None
        else:
            kind, label, stride, channels = _module_layer(node.module)
    else:
        kind, label, stride, channels = _op_layer(node)
    shape = node.shape[1:] if node.shape is not None else None
    if channels is None and kind in ("zeropad", "pad", "subsample") and shape:
        channels = shape[0]
    return Layer(node.name, kind, label, shape, node.call, stride, channels, node.kind == "module")
