"""Lesson 03: residual_block_forward, zero_pad_shortcut, residual_stack, stack_input_gradient."""

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from . import right, wrong


# --------------------------------------------------------------------------- zero_pad_shortcut
@right("the lesson's solution: slice, new_zeros, cat")
def zero_pad_shortcut(x, out_channels, stride):
    x = x[:, :, ::stride, ::stride]
    n, c, h, w = x.shape
    zeros = x.new_zeros(n, out_channels - c, h, w)
    return torch.cat([x, zeros], dim=1)


@right("F.pad on the channel dimension")
def zero_pad_shortcut(x, out_channels, stride):
    sub = x[..., ::stride, ::stride]
    return F.pad(sub, (0, 0, 0, 0, 0, out_channels - x.shape[1]))


@right("a zero tensor of the final shape, filled in")
def zero_pad_shortcut(x, out_channels, stride):
    n, c, h, w = x.shape
    out = torch.zeros(n, out_channels, math.ceil(h / stride), math.ceil(w / stride), dtype=x.dtype)
    out[:, :c] = x[:, :, ::stride, ::stride]
    return out


@right("a 1 x 1 max pool with the stride subsamples too")
def zero_pad_shortcut(x, out_channels, stride):
    sub = F.max_pool2d(x, kernel_size=1, stride=stride)
    zeros = torch.zeros(sub.shape[0], out_channels - sub.shape[1], *sub.shape[2:], dtype=x.dtype, device=x.device)
    return torch.cat((sub, zeros), 1)


@wrong("no subsampling", mistake="no_subsample")
def zero_pad_shortcut(x, out_channels, stride):
    zeros = x.new_zeros(x.shape[0], out_channels - x.shape[1], x.shape[2], x.shape[3])
    return torch.cat([x, zeros], dim=1)


@wrong("zero channels first", mistake="zeros_first")
def zero_pad_shortcut(x, out_channels, stride):
    x = x[:, :, ::stride, ::stride]
    zeros = x.new_zeros(x.shape[0], out_channels - x.shape[1], x.shape[2], x.shape[3])
    return torch.cat([zeros, x], dim=1)


@wrong("average pooling instead of subsampling", mistake="pooled")
def zero_pad_shortcut(x, out_channels, stride):
    x = F.avg_pool2d(x, stride) if stride > 1 else x
    return F.pad(x, (0, 0, 0, 0, 0, out_channels - x.shape[1]))


@wrong("stride hard-coded to 2", mistake="stride_2")
def zero_pad_shortcut(x, out_channels, stride):
    x = x[:, :, ::2, ::2]
    return F.pad(x, (0, 0, 0, 0, 0, out_channels - x.shape[1]))


@wrong("zeros on both sides of the channels, as some CIFAR code does", mistake="symmetric")
def zero_pad_shortcut(x, out_channels, stride):
    extra = out_channels - x.shape[1]
    return F.pad(x[:, :, ::stride, ::stride], (0, 0, 0, 0, extra // 2, extra - extra // 2))


@wrong("torch.zeros without dtype: float32 for a float64 input", mistake="wrong_dtype", defect="float32 for float64")
def zero_pad_shortcut(x, out_channels, stride):
    n, c, h, w = x.shape
    out = torch.zeros(n, out_channels, (h + stride - 1) // stride, (w + stride - 1) // stride)
    out[:, :c] = x[:, :, ::stride, ::stride]
    return out


@wrong("output size H // stride: rounds down", mistake="floor_size")
def zero_pad_shortcut(x, out_channels, stride):
    n, c, h, w = x.shape
    sub = x[:, :, ::stride, ::stride][:, :, : h // stride, : w // stride]
    return torch.cat([sub, sub.new_zeros(n, out_channels - c, h // stride, w // stride)], 1)


@wrong("out_channels zero channels instead of out_channels - C", mistake="too_many_zeros")
def zero_pad_shortcut(x, out_channels, stride):
    x = x[:, :, ::stride, ::stride]
    return torch.cat([x, x.new_zeros(x.shape[0], out_channels, *x.shape[2:])], 1)


@wrong("subsampled from the second pixel on", mistake="offset")
def zero_pad_shortcut(x, out_channels, stride):
    x = x[:, :, stride // 2::stride, stride // 2::stride]
    return F.pad(x, (0, 0, 0, 0, 0, out_channels - x.shape[1]))


# --------------------------------------------------------------------------- residual_block_forward
@right("the lesson's solution")
def residual_block_forward(x, conv1, bn1, conv2, bn2, shortcut=None):
    out = torch.relu(bn1(conv1(x)))
    out = bn2(conv2(out))
    identity = x if shortcut is None else shortcut(x)
    return torch.relu(out + identity)


@right("nn.Sequential for the branch, F.relu")
def residual_block_forward(x, conv1, bn1, conv2, bn2, shortcut=None):
    branch = nn.Sequential(conv1, bn1, nn.ReLU(), conv2, bn2)
    s = shortcut(x) if shortcut is not None else x
    return F.relu(branch(x) + s)


@right("in-place ReLU and add, as torchvision's BasicBlock")
def residual_block_forward(x, conv1, bn1, conv2, bn2, shortcut=None):
    identity = x
    out = conv1(x)
    out = bn1(out)
    out = F.relu(out, inplace=True)
    out = bn2(conv2(out))
    if shortcut is not None:
        identity = shortcut(x)
    out += identity
    return F.relu(out, inplace=True)


@wrong("ReLU on the branch before the add", mistake="relu_before_add")
def residual_block_forward(x, conv1, bn1, conv2, bn2, shortcut=None):
    out = torch.relu(bn2(conv2(torch.relu(bn1(conv1(x))))))
    return out + (x if shortcut is None else shortcut(x))


@wrong("no ReLU after the add", mistake="no_final_relu")
def residual_block_forward(x, conv1, bn1, conv2, bn2, shortcut=None):
    out = bn2(conv2(torch.relu(bn1(conv1(x)))))
    return out + (x if shortcut is None else shortcut(x))


@wrong("no ReLU between the convolutions", mistake="no_inner_relu")
def residual_block_forward(x, conv1, bn1, conv2, bn2, shortcut=None):
    out = bn2(conv2(bn1(conv1(x))))
    return torch.relu(out + (x if shortcut is None else shortcut(x)))


@wrong("the shortcut forgotten", mistake="no_shortcut")
def residual_block_forward(x, conv1, bn1, conv2, bn2, shortcut=None):
    return torch.relu(bn2(conv2(torch.relu(bn1(conv1(x))))))


@wrong("always adds x, the shortcut module is ignored", mistake="shortcut_ignored")
def residual_block_forward(x, conv1, bn1, conv2, bn2, shortcut=None):
    out = bn2(conv2(torch.relu(bn1(conv1(x)))))
    return torch.relu(out + x)


@wrong("adds the shortcut before bn2", mistake="add_before_bn")
def residual_block_forward(x, conv1, bn1, conv2, bn2, shortcut=None):
    out = conv2(torch.relu(bn1(conv1(x))))
    return torch.relu(bn2(out + (x if shortcut is None else shortcut(x))))


@wrong("ReLU before BN in the first layer", mistake="relu_before_bn")
def residual_block_forward(x, conv1, bn1, conv2, bn2, shortcut=None):
    out = bn2(conv2(bn1(torch.relu(conv1(x)))))
    return torch.relu(out + (x if shortcut is None else shortcut(x)))


# --------------------------------------------------------------------------- residual_stack
@right("the lesson's solution")
def residual_stack(x, branches, shortcut=True):
    for f in branches:
        x = x + f(x) if shortcut else f(x)
    return x


@right("a running h, two loops")
def residual_stack(x, branches, shortcut=True):
    h = x
    if shortcut:
        for f in branches:
            h = h + f(h)
    else:
        for f in branches:
            h = f(h)
    return h


@right("functools.reduce")
def residual_stack(x, branches, shortcut=True):
    return functools.reduce(lambda h, f: h + f(h) if shortcut else f(h), branches, x)


@right("a clone, then in-place adds")
def residual_stack(x, branches, shortcut=True):
    h = x.clone()
    for f in branches:
        if shortcut:
            h += f(h)
        else:
            h = f(h)
    return h


@wrong("adds the stack's input x to every unit", mistake="adds_input")
def residual_stack(x, branches, shortcut=True):
    h = x
    for f in branches:
        h = x + f(h) if shortcut else f(h)
    return h


@wrong("every branch applied to the stack's input", mistake="branch_on_input")
def residual_stack(x, branches, shortcut=True):
    if shortcut:
        return x + sum(f(x) for f in branches)
    h = x
    for f in branches:
        h = f(x)
    return h


@wrong("the plain stack keeps its shortcuts", mistake="always_residual")
def residual_stack(x, branches, shortcut=True):
    for f in branches:
        x = x + f(x)
    return x


@wrong("never adds the shortcut", mistake="never_residual")
def residual_stack(x, branches, shortcut=True):
    for f in branches:
        x = f(x)
    return x


@wrong("the switch inverted", mistake="inverted_switch")
def residual_stack(x, branches, shortcut=True):
    for f in branches:
        x = f(x) if shortcut else x + f(x)
    return x


@wrong("x += f(x) on the caller's tensor", mistake="mutated_input", defect="input mutated in place")
def residual_stack(x, branches, shortcut=True):
    if not shortcut:
        for f in branches:
            x = f(x)
        return x
    for f in branches:
        x += f(x)
    return x


# --------------------------------------------------------------------------- stack_input_gradient
@right("the lesson's solution: a tracked copy, the stack, autograd.grad")
def stack_input_gradient(x, branches, shortcut=True):
    x0 = x.detach().clone().requires_grad_(True)
    h = x0
    for f in branches:
        h = h + f(h) if shortcut else f(h)
    return torch.autograd.grad(h.sum(), x0)[0]


@right("backward() and x0.grad")
def stack_input_gradient(x, branches, shortcut=True):
    x0 = x.clone().detach().requires_grad_()
    out = x0
    for f in branches:
        out = (out + f(out)) if shortcut else f(out)
    out.sum().backward()
    return x0.grad


@right("grad_outputs of ones instead of a sum")
def stack_input_gradient(x, branches, shortcut=True):
    x0 = x.detach().requires_grad_(True)
    h = functools.reduce(lambda h, f: h + f(h) if shortcut else f(h), branches, x0)
    (g,) = torch.autograd.grad(h, x0, grad_outputs=torch.ones_like(h))
    return g


@right("torch.func.grad of a function of x")
def stack_input_gradient(x, branches, shortcut=True):
    def loss(inp):
        for f in branches:
            inp = inp + f(inp) if shortcut else f(inp)
        return inp.sum()
    return torch.func.grad(loss)(x)


@wrong("returns the stack's output", mistake="returns_output")
def stack_input_gradient(x, branches, shortcut=True):
    h = x
    for f in branches:
        h = h + f(h) if shortcut else f(h)
    return h.detach()


@wrong("the mean as the loss", mistake="mean_loss")
def stack_input_gradient(x, branches, shortcut=True):
    x0 = x.detach().clone().requires_grad_(True)
    h = x0
    for f in branches:
        h = h + f(h) if shortcut else f(h)
    return torch.autograd.grad(h.mean(), x0)[0]


@wrong("the plain stack keeps its shortcuts", mistake="always_residual")
def stack_input_gradient(x, branches, shortcut=True):
    x0 = x.detach().clone().requires_grad_(True)
    h = x0
    for f in branches:
        h = h + f(h)
    return torch.autograd.grad(h.sum(), x0)[0]


@wrong("adds the stack's input to every unit", mistake="adds_input")
def stack_input_gradient(x, branches, shortcut=True):
    x0 = x.detach().clone().requires_grad_(True)
    h = x0
    for f in branches:
        h = x0 + f(h) if shortcut else f(h)
    return torch.autograd.grad(h.sum(), x0)[0]


@wrong("the switch inverted", mistake="inverted_switch")
def stack_input_gradient(x, branches, shortcut=True):
    x0 = x.detach().clone().requires_grad_(True)
    h = x0
    for f in branches:
        h = f(h) if shortcut else h + f(h)
    return torch.autograd.grad(h.sum(), x0)[0]


@wrong("requires_grad_ on the caller's tensor, then x.grad", mistake="grad_accumulates", defect="input mutated in place")
def stack_input_gradient(x, branches, shortcut=True):
    x.requires_grad_(True)
    h = x
    for f in branches:
        h = h + f(h) if shortcut else f(h)
    h.sum().backward()
    return x.grad


@wrong("the shortcut never added", mistake="never_residual")
def stack_input_gradient(x, branches, shortcut=True):
    x0 = x.detach().clone().requires_grad_(True)
    h = x0
    for f in branches:
        h = f(h)
    return torch.autograd.grad(h.sum(), x0)[0]


@wrong("every branch applied to the input copy", mistake="branch_on_input")
def stack_input_gradient(x, branches, shortcut=True):
    x0 = x.detach().clone().requires_grad_(True)
    h = x0
    for f in branches:
        h = h + f(x0) if shortcut else f(x0)
    return torch.autograd.grad(h.sum(), x0)[0]


@wrong("the branches in reverse order", mistake="reversed_branches")
def stack_input_gradient(x, branches, shortcut=True):
    x0 = x.detach().clone().requires_grad_(True)
    h = x0
    for f in branches[::-1]:
        h = h + f(h) if shortcut else f(h)
    return torch.autograd.grad(h.sum(), x0)[0]
