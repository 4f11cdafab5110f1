"""Lesson 03's exercises: the basic block's forward pass, the zero-padding shortcut, plain and residual stacks, and the gradient a stack passes to its input."""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..blocks import ZeroPadShortcut, conv1x1, conv3x3
from ..lessons import l03_residual_block as lesson03
from .catalogue import Case, Exercise, Mistake, register
from .cases import f32, randn


# --------------------------------------------------------------------------- residual_block_forward
def residual_block_forward(x: torch.Tensor, conv1: nn.Module, bn1: nn.Module, conv2: nn.Module, bn2: nn.Module,
                           shortcut: nn.Module | None = None) -> torch.Tensor:
    """The basic block: ReLU(bn2(conv2(ReLU(bn1(conv1(x))))) + s(x)), ``s`` the identity when ``shortcut`` is None."""
    from ..blocks import BasicBlock

    block = BasicBlock(conv1.in_channels, conv1.out_channels, conv1.stride[0], downsample=shortcut)
    block.conv1, block.bn1, block.conv2, block.bn2 = conv1, bn1, conv2, bn2
    return block(x)


def _block_family(x, conv1, bn1, conv2, bn2, shortcut=None, *, flags=frozenset()):
    out = conv1(x)
    if "relu_before_bn" in flags:
        out = bn1(torch.relu(out))
    else:
        out = bn1(out)
        out = out if "no_inner_relu" in flags else torch.relu(out)
    out = conv2(out)
    s = x if shortcut is None or "shortcut_ignored" in flags else shortcut(x)
    if "add_before_bn" in flags:
        return torch.relu(bn2(out + s))
    out = bn2(out)
    if "relu_before_add" in flags:
        out = torch.relu(out)
    if "no_shortcut" not in flags:
        out = out + s
    return out if {"relu_before_add", "no_final_relu"} & set(flags) else torch.relu(out)


def _block_modules(seed: int, c_in: int, c_out: int, stride: int, projection: bool, eval_mode: bool = False):
    torch.manual_seed(seed)
    mods = [conv3x3(c_in, c_out, stride), nn.BatchNorm2d(c_out), conv3x3(c_out, c_out), nn.BatchNorm2d(c_out)]
    short = nn.Sequential(conv1x1(c_in, c_out, stride), nn.BatchNorm2d(c_out)) if projection else None
    if eval_mode:
        for bn in (mods[1], mods[3]):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.eval()
    return mods, short


def _block_args(seed: int, n: int, c_in: int, c_out: int, size: int, stride: int = 1, projection: bool = False,
                eval_mode: bool = False):
    mods, short = _block_modules(seed, c_in, c_out, stride, projection, eval_mode)
    return (f32(seed + 50, n, c_in, size, size), *mods, short), {}


register(Exercise(
    "residual_block_forward", "03", "The basic residual block's forward pass", residual_block_forward,
    cases=[
        Case("an identity shortcut (shortcut=None): 4 channels, a batch of 3 of 5×5",
             functools.partial(_block_args, 0, 3, 4, 4, 5)),
        Case("4 → 8 channels at stride 2 with a 1×1 projection shortcut",
             functools.partial(_block_args, 1, 2, 4, 8, 6, 2, True)),
        Case("BatchNorm layers in eval mode with running statistics, as at test time",
             functools.partial(_block_args, 2, 2, 4, 4, 4, eval_mode=True)),
    ],
    mistakes=[
        Mistake("relu_before_add", "The ReLU is applied to the branch before the addition (ReLU(F(x)) + x). The "
                                   "basic block adds first and applies the ReLU to the sum: ReLU(F(x) + s(x))."),
        Mistake("no_final_relu", "The ReLU after the addition is missing: the basic block returns ReLU(F(x) + s(x)), "
                                 "so its output is never negative."),
        Mistake("no_inner_relu", "The ReLU between the two convolutions is missing: F(x) = bn2(conv2(ReLU(bn1(conv1(x)))))."),
        Mistake("no_shortcut", "The shortcut is missing: without + s(x) this is a plain block. Add x (or "
                               "shortcut(x) when a shortcut module is given) before the last ReLU."),
        Mistake("shortcut_ignored", "The shortcut module is ignored: you always add x itself. When a shortcut is given "
                                    "(the shape changes) add shortcut(x); only shortcut=None means the identity."),
        Mistake("add_before_bn", "The shortcut is added before bn2: the branch F(x) ends with bn2, and s(x) is added "
                                 "to its output, ReLU(bn2(conv2(...)) + s(x))."),
        Mistake("relu_before_bn", "The first ReLU comes before bn1: the order in the branch is conv1 → bn1 → ReLU → "
                                  "conv2 → bn2."),
    ],
    hints=["The branch: conv1 → bn1 → ReLU → conv2 → bn2.",
           "The shortcut: x itself when shortcut is None, else shortcut(x) (it fixes the shape).",
           "Add the two, then apply the ReLU: torch.relu(branch + identity)."],
    family=_block_family, keeps_inputs=True,
))


# --------------------------------------------------------------------------- zero_pad_shortcut
def zero_pad_shortcut(x: torch.Tensor, out_channels: int, stride: int) -> torch.Tensor:
    """He et al.'s option A: keep every ``stride``-th pixel, then append zero channels up to ``out_channels``."""
    return ZeroPadShortcut(x.shape[1], out_channels, stride)(x)


def _subsample(x, stride, flags):
    if "pooled" in flags:
        return F.avg_pool2d(x, stride) if stride > 1 else x
    if "no_subsample" in flags:
        return x
    s = 2 if "stride_2" in flags else stride
    start = s // 2 if "offset" in flags else 0
    sub = x[:, :, start::s, start::s]
    return sub[:, :, : x.shape[2] // s, : x.shape[3] // s] if "floor_size" in flags else sub


def _zeropad_family(x, out_channels, stride, *, flags=frozenset()):
    x = _subsample(x, stride, flags)
    n, c, h, w = x.shape
    extra = out_channels if "too_many_zeros" in flags else c if "zeros_like" in flags else out_channels - c
    if "symmetric" in flags:
        return torch.cat([x.new_zeros(n, extra // 2, h, w), x, x.new_zeros(n, extra - extra // 2, h, w)], dim=1)
    zeros = x.new_zeros(n, extra, h, w)
    return torch.cat([zeros, x] if "zeros_first" in flags else [x, zeros], dim=1)


register(Exercise(
    "zero_pad_shortcut", "03", "The zero-padding shortcut (option A)", zero_pad_shortcut,
    cases=[
        Case("stride 2, 4 → 8 channels, a batch of 2 of 8×8", lambda: ((f32(0, 2, 4, 8, 8), 8, 2), {})),
        Case("stride 1: only channels are added, 3 → 5 channels of 5×5", lambda: ((f32(1, 1, 3, 5, 5), 5, 1), {})),
        Case("stride 3 on an odd 7×7 map, 2 → 6 channels", lambda: ((f32(2, 2, 2, 7, 7), 6, 3), {})),
        Case("nothing to add: 4 → 4 channels at stride 2 on 6×6", lambda: ((f32(3, 1, 4, 6, 6), 4, 2), {})),
        Case("a float64 batch, 3 → 6 channels at stride 2 (the answer keeps float64)",
             lambda: ((randn(4, 2, 3, 6, 6), 6, 2), {})),
    ],
    mistakes=[
        Mistake("no_subsample", "The input is not subsampled: with stride s the shortcut must keep every s-th "
                                "row and column, x[:, :, ::s, ::s], so that its size matches the strided branch."),
        Mistake("zeros_first", "The zero channels come before the input's channels: option A appends them *after*, "
                               "so channel c of the output is channel c of the input."),
        Mistake("pooled", "You averaged over s×s windows (avg_pool2d) instead of subsampling: option A keeps single "
                          "pixels, x[:, :, ::s, ::s], which also keeps odd sizes right (7 → 3 at stride 3)."),
        Mistake("stride_2", "The stride is fixed at 2: use the stride argument, x[:, :, ::stride, ::stride] (the "
                            "cases also use stride 1 and 3)."),
        Mistake("symmetric", "You put zero channels on both sides of the input's channels (as some CIFAR code does "
                             "with F.pad). The stub asks for them *after* x's own channels, so channel c of the "
                             "output is channel c of the input: F.pad(x, (0, 0, 0, 0, 0, out_channels − C))."),
        Mistake("floor_size", "The output is too small on odd sizes: subsampling keeps ⌈H / s⌉ rows (7 → 3 at stride "
                              "3), which is what x[:, :, ::s, ::s] gives; do not cut it to H // s."),
        Mistake("too_many_zeros", "There are out_channels zero channels on top of the input's C: append only "
                                  "out_channels − C, so the result has out_channels channels in all."),
        Mistake("zeros_like", "You appended as many zero channels as the input has (zeros_like(x)): append "
                              "out_channels − C of them, so the result has out_channels channels."),
        Mistake("offset", "The subsampling starts at the wrong pixel: x[:, :, ::s, ::s] keeps rows and columns "
                          "0, s, 2s, ..., as a strided 1×1 convolution does."),
    ],
    hints=["Two steps: subsample the spatial dimensions, then add channels of zeros.",
           "x[:, :, ::stride, ::stride] keeps every stride-th row and column (odd sizes round up).",
           "torch.cat([x, zeros], dim=1) with zeros = x.new_zeros(N, out_channels − C, H, W)."],
    family=_zeropad_family, rtol=0.0, atol=0.0, keeps_inputs=True,
))


# --------------------------------------------------------------------------- residual_stack
def residual_stack(x: torch.Tensor, branches: Sequence[Callable[[torch.Tensor], torch.Tensor]],
                   shortcut: bool = True) -> torch.Tensor:
    """Run ``x`` through the branches in order: x ← x + f(x) with shortcuts, x ← f(x) without (a plain stack)."""
    for f in branches:
        x = x + f(x) if shortcut else f(x)
    return x


def _stack_family(x, branches, shortcut=True, *, flags=frozenset()):
    use = shortcut
    if "always_residual" in flags:
        use = True
    if "never_residual" in flags:
        use = False
    if "inverted_switch" in flags:
        use = not shortcut
    h = x
    for f in (reversed(branches) if "reversed_branches" in flags else branches):
        inp = x if "branch_on_input" in flags else h
        h = ((x if "adds_input" in flags else h) + f(inp)) if use else f(inp)
    return h


def _stack_args(seed: int, n: int, shortcut: bool | None):
    torch.manual_seed(seed)
    branches = [nn.Sequential(nn.Linear(4, 4), nn.Tanh()) for _ in range(n)]
    kwargs = {} if shortcut is None else {"shortcut": shortcut}
    return (f32(seed + 7, 3, 4), branches), kwargs


register(Exercise(
    "residual_stack", "03", "A plain stack versus a residual stack", residual_stack,
    cases=[
        Case("three branches with shortcuts (shortcut=True)", functools.partial(_stack_args, 0, 3, True)),
        Case("the same three branches as a plain stack (shortcut=False)", functools.partial(_stack_args, 0, 3, False)),
        Case("a single branch, shortcut left at its default", functools.partial(_stack_args, 1, 1, None)),
        Case("five branches, plain", functools.partial(_stack_args, 2, 5, False)),
    ],
    mistakes=[
        Mistake("adds_input", "You added the stack's *input* x to every branch's output. Each residual unit adds "
                              "its own input, the previous unit's output: h = h + f(h)."),
        Mistake("branch_on_input", "Every branch was applied to the stack's input x instead of the previous "
                                   "unit's output: the units are chained, h = h + f(h) (or h = f(h) when plain)."),
        Mistake("always_residual", "The plain stack still adds the shortcut: with shortcut=False each unit is "
                                   "just h = f(h)."),
        Mistake("never_residual", "The shortcut is never added: with shortcut=True each unit computes h + f(h)."),
        Mistake("reversed_branches", "The branches run in reverse order: the first branch in the list is the first "
                                     "unit the input meets."),
        Mistake("inverted_switch", "The switch works the wrong way round: shortcut=True means h = h + f(h), "
                                   "shortcut=False a plain h = f(h)."),
    ],
    hints=["Keep one running tensor h, starting at x, and update it once per branch.",
           "With shortcuts: h = h + f(h). Without: h = f(h)."],
    family=_stack_family, keeps_inputs=True,
))


# --------------------------------------------------------------------------- stack_input_gradient
def stack_input_gradient(x: torch.Tensor, branches: Sequence[Callable[[torch.Tensor], torch.Tensor]],
                         shortcut: bool = True) -> torch.Tensor:
    """dL/dx for L = the sum of the stack's output (h ← h + f(h) per branch, or h ← f(h) without shortcuts)."""
    return lesson03.stack_input_gradient(x, branches, shortcut)


def _grad_family(x, branches, shortcut=True, *, flags=frozenset()):
    x0 = x.detach().clone().requires_grad_(True)
    out = _stack_family(x0, branches, shortcut, flags=flags & _STACK_FLAGS)
    if "returns_output" in flags:
        return out.detach()
    loss = out.mean() if "mean_loss" in flags else out.sum()
    (grad,) = torch.autograd.grad(loss, x0)
    return grad


_STACK_FLAGS = frozenset({"adds_input", "branch_on_input", "always_residual", "never_residual", "inverted_switch",
                          "reversed_branches"})


def _tanh_args(seed: int, n: int, shortcut: bool | None, zero: bool = False, width: int = 4, batch: int = 3):
    torch.manual_seed(seed)
    branches = [nn.Sequential(nn.Linear(width, width), nn.Tanh()) for _ in range(n)]
    if zero:
        with torch.no_grad():
            for b in branches:
                b[0].weight.zero_()
                b[0].bias.zero_()
    kwargs = {} if shortcut is None else {"shortcut": shortcut}
    return (f32(seed + 7, batch, width), branches), kwargs


def _twice(fn, x, branches, **kwargs):
    """Call ``fn`` twice on the same tensors, as a loop over depths or seeds does; compare the second answer."""
    fn(x, branches, **kwargs)
    return fn(x, branches, **kwargs)


def _accumulating(x, branches, shortcut=True):
    """The usual slip: autograd on the caller's own x, so x.grad keeps the previous call's gradient."""
    x.requires_grad_(True)
    h = x
    for f in branches:
        h = h + f(h) if shortcut else f(h)
    h.sum().backward()
    return x.grad


def _matrix_args(seed: int, n: int, shortcut: bool):
    g = torch.Generator().manual_seed(seed)
    mats = [0.6 * torch.randn(3, 3, generator=g, dtype=torch.float64) for _ in range(n)]
    return (torch.randn(2, 3, generator=g, dtype=torch.float64), [lambda h, a=a: h @ a.T for a in mats]), \
        {"shortcut": shortcut}


register(Exercise(
    "stack_input_gradient", "03", "The gradient at a stack's input, with and without shortcuts",
    stack_input_gradient,
    cases=[
        Case("three tanh units with shortcuts (shortcut=True)", functools.partial(_tanh_args, 0, 3, True)),
        Case("the same three units as a plain stack (shortcut=False)", functools.partial(_tanh_args, 0, 3, False)),
        Case("four units whose branches are all zero, shortcut left at its default",
             functools.partial(_tanh_args, 1, 4, None, True)),
        Case("five linear float64 branches h @ A.T, plain", functools.partial(_matrix_args, 2, 5, False)),
        Case("two units of width 5 on a batch of 1, with shortcuts",
             functools.partial(_tanh_args, 3, 2, True, False, 5, 1)),
        Case("called twice on the same x (as a loop over depths does): the second answer",
             functools.partial(_tanh_args, 4, 3, True), run=_twice),
    ],
    mistakes=[
        Mistake("returns_output", "You returned the stack's output, not the gradient: take L = out.sum() and return "
                                  "torch.autograd.grad(L, x0)[0], the gradient with respect to the input copy x0."),
        Mistake("grad_accumulates", "The second call on the same x returns twice the gradient: your function "
                                    "changes the caller's x (requires_grad_, then x.grad), and x.grad adds each new "
                                    "gradient to the last. Work on a copy: x0 = x.detach().clone().requires_grad_(True).",
                wrong=_accumulating),
        Mistake("mean_loss", "The gradient is too small by the number of elements: L is the *sum* of the output "
                             "(out.sum()), so that a stack that passes the gradient on unchanged gives exactly 1."),
        Mistake("adds_input", "You added the stack's *input* to every unit. Each residual unit adds its own input, "
                              "the previous unit's output: h = h + f(h)."),
        Mistake("branch_on_input", "Every branch was applied to the stack's input instead of the previous unit's "
                                   "output: the units are chained, h = h + f(h) (or h = f(h) when plain)."),
        Mistake("always_residual", "The plain stack still adds the shortcut: with shortcut=False each unit is just "
                                   "h = f(h), and its gradient is a product of the branches' Jacobians."),
        Mistake("never_residual", "The shortcut is never added: with shortcut=True each unit computes h + f(h)."),
        Mistake("inverted_switch", "The switch works the wrong way round: shortcut=True means h = h + f(h), "
                                   "shortcut=False a plain h = f(h)."),
        Mistake("reversed_branches", "The branches run in reverse order: the first branch in the list is the "
                                     "first unit the input meets."),
    ],
    hints=["Make a copy of x that autograd tracks: x0 = x.detach().clone().requires_grad_(True).",
           "Run the stack on x0 (your residual_stack does it: residual_stack(x0, branches, shortcut)).",
           "torch.autograd.grad(out.sum(), x0) returns a one-element tuple: return its element."],
    family=_grad_family, keeps_inputs=True,
))
