"""A second batch of variants, written after the checker's recognisers were done and kept out of their design.

Its counts measure how the checker does on mistakes it was *not* tuned to (see
``count_variants.py``). Each variant's ``mistake`` is the name the checker
should give where one of its mistakes fits; None where none does yet.
"""

import copy
import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from resnet_tutorial.blocks import ResidualBlock
from resnet_tutorial.data import MEAN, STD

from . import right, wrong

DIMS = (0, 2, 3)


def _c(t):
    return t.view(1, -1, 1, 1)


# --------------------------------------------------------------------------- 00
@right("constants scaled to 0..255 instead of the pixels")
def normalize_pixels(images):
    return (images - MEAN * 255) / (STD * 255)


@wrong("standardized each image with its own statistics")
def normalize_pixels(images):
    x = images.float() / 255
    return (x - x.mean(dim=(1, 2, 3), keepdim=True)) / x.std(dim=(1, 2, 3), keepdim=True)


@wrong("the inverse: x * STD + MEAN", mistake="inverse")
def normalize_pixels(images):
    return images.float() / 255 * STD + MEAN


@wrong("an extra channel dimension", mistake="extra_dimension")
def normalize_pixels(images):
    return ((images.float() / 255 - MEAN) / STD).unsqueeze(1)


# --------------------------------------------------------------------------- 01
@right("named_modules and the class name")
def weight_grad_norms(model, x, y):
    for p in model.parameters():
        p.grad = None
    F.cross_entropy(model(x), y).backward()
    return [m.weight.grad.norm().item() for _, m in model.named_modules() if type(m).__name__ in ("Conv2d", "Linear")]


@wrong("the model put in eval mode first")
def weight_grad_norms(model, x, y):
    model.eval()
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return [m.weight.grad.norm().item() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


@wrong("the L1 norm")
def weight_grad_norms(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return [m.weight.grad.abs().sum().item() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


@wrong("nll_loss on the logits")
def weight_grad_norms(model, x, y):
    model.zero_grad()
    F.nll_loss(model(x), y).backward()
    return [m.weight.grad.norm().item() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


@right("the product built from the input side, then the vector")
def chain_rule_product(jacobians, grad_output):
    product = jacobians[0]
    for J in jacobians[1:]:
        product = J @ product
    return grad_output @ product


@wrong("layer order and J @ g", mistake="wrong_order")
def chain_rule_product(jacobians, grad_output):
    g = grad_output
    for J in jacobians:
        g = J.T @ g
    return g


@wrong("adds up the partial products")
def chain_rule_product(jacobians, grad_output):
    g, total = grad_output, 0
    for J in reversed(jacobians):
        g = g @ J
        total = total + g
    return total


# --------------------------------------------------------------------------- 02
@right("std(unbiased=False) squared")
def bn_forward_train(x, gamma, beta, eps=1e-5):
    mean = torch.mean(x, dim=DIMS, keepdim=True)
    std = torch.std(x, dim=DIMS, keepdim=True, unbiased=False)
    return _c(gamma) * (x - mean) / torch.sqrt(std ** 2 + eps) + _c(beta)


@wrong("the mean of the whole batch, the variance per channel")
def bn_forward_train(x, gamma, beta, eps=1e-5):
    return _c(gamma) * (x - x.mean()) / torch.sqrt(x.var(DIMS, keepdim=True, unbiased=False) + eps) + _c(beta)


@wrong("sqrt(var) + sqrt(eps)")
def bn_forward_train(x, gamma, beta, eps=1e-5):
    mean = x.mean(DIMS, keepdim=True)
    return _c(gamma) * (x - mean) / (x.var(DIMS, keepdim=True, unbiased=False).sqrt() + eps ** 0.5) + _c(beta)


@wrong("gamma and beta applied before normalizing", mistake="affine_first")
def bn_forward_train(x, gamma, beta, eps=1e-5):
    y = _c(gamma) * x + _c(beta)
    return (y - y.mean(DIMS, keepdim=True)) / torch.sqrt(y.var(DIMS, keepdim=True, unbiased=False) + eps)


@right("torch.var with correction=1, channel by channel")
def bn_running_update(running_mean, running_var, x, momentum=0.1):
    means = torch.stack([x[:, c].mean() for c in range(x.shape[1])])
    variances = torch.stack([torch.var(x[:, c], correction=1) for c in range(x.shape[1])])
    return (1 - momentum) * running_mean + momentum * means, (1 - momentum) * running_var + momentum * variances


@wrong("the variance around the running mean")
def bn_running_update(running_mean, running_var, x, momentum=0.1):
    var = ((x - running_mean.view(1, -1, 1, 1)) ** 2).mean(DIMS)
    return (1 - momentum) * running_mean + momentum * x.mean(DIMS), (1 - momentum) * running_var + momentum * var


@wrong("returns (variance, mean)", mistake="swapped_items")
def bn_running_update(running_mean, running_var, x, momentum=0.1):
    return ((1 - momentum) * running_var + momentum * x.var(DIMS),
            (1 - momentum) * running_mean + momentum * x.mean(DIMS))


@right("(C, 1, 1) vectors broadcast as well")
def bn_forward_eval(x, running_mean, running_var, gamma, beta, eps=1e-5):
    return (x - running_mean[:, None, None]) / torch.sqrt(running_var[:, None, None] + eps) * gamma[:, None, None] \
        + beta[:, None, None]


@wrong("a BatchNorm2d module left in training mode", mistake="batch_stats")
def bn_forward_eval(x, running_mean, running_var, gamma, beta, eps=1e-5):
    bn = nn.BatchNorm2d(x.shape[1], eps=eps).to(x.dtype)
    with torch.no_grad():
        bn.running_mean.copy_(running_mean)
        bn.running_var.copy_(running_var)
        bn.weight.copy_(gamma)
        bn.bias.copy_(beta)
    return bn(x)


@wrong("the running variance taken for a standard deviation")
def bn_forward_eval(x, running_mean, running_var, gamma, beta, eps=1e-5):
    return _c(gamma) * (x - _c(running_mean)) / (_c(running_var) + eps) ** 0.25 + _c(beta)


@right("channels first, flattened")
def bn_identity_params(x, eps=1e-5):
    flat = x.transpose(0, 1).flatten(1)
    return torch.sqrt(flat.var(1, unbiased=False) + eps), flat.mean(1)


@wrong("beta = mean / gamma")
def bn_identity_params(x, eps=1e-5):
    gamma = torch.sqrt(x.var(DIMS, unbiased=False) + eps)
    return gamma, x.mean(DIMS) / gamma


@wrong("one stacked tensor", mistake="stacked")
def bn_identity_params(x, eps=1e-5):
    return torch.stack([torch.sqrt(x.var(DIMS, unbiased=False) + eps), x.mean(DIMS)])


# --------------------------------------------------------------------------- 03
@right("pads the channels first, then subsamples")
def zero_pad_shortcut(x, out_channels, stride):
    return F.pad(x, (0, 0, 0, 0, 0, out_channels - x.shape[1]))[:, :, ::stride, ::stride]


@wrong("zeros_like: as many zero channels as x has", mistake="zeros_like")
def zero_pad_shortcut(x, out_channels, stride):
    x = x[:, :, ::stride, ::stride]
    return torch.cat([x, torch.zeros_like(x)], dim=1)


@wrong("subsamples the rows only")
def zero_pad_shortcut(x, out_channels, stride):
    x = x[:, :, ::stride]
    return F.pad(x, (0, 0, 0, 0, 0, out_channels - x.shape[1]))


@wrong("nearest-neighbour interpolation", mistake="floor_size")
def zero_pad_shortcut(x, out_channels, stride):
    x = F.interpolate(x, scale_factor=1 / stride, mode="nearest")
    return F.pad(x, (0, 0, 0, 0, 0, out_channels - x.shape[1]))


@right("torch.add(...).relu()")
def residual_block_forward(x, conv1, bn1, conv2, bn2, shortcut=None):
    branch = bn2(conv2(bn1(conv1(x)).relu()))
    return torch.add(branch, x if shortcut is None else shortcut(x)).relu()


@wrong("the shortcut applied to the branch's output")
def residual_block_forward(x, conv1, bn1, conv2, bn2, shortcut=None):
    out = bn2(conv2(torch.relu(bn1(conv1(x)))))
    return torch.relu(out + (x if shortcut is None else shortcut(out)))


@wrong("bn1 used twice")
def residual_block_forward(x, conv1, bn1, conv2, bn2, shortcut=None):
    out = bn1(conv2(torch.relu(bn1(conv1(x)))))
    return torch.relu(out + (x if shortcut is None else shortcut(x)))


@wrong("ReLU before and after the add")
def residual_block_forward(x, conv1, bn1, conv2, bn2, shortcut=None):
    out = torch.relu(bn2(conv2(torch.relu(bn1(conv1(x))))))
    return torch.relu(out + (x if shortcut is None else shortcut(x)))


@right("recursion")
def residual_stack(x, branches, shortcut=True):
    def run(h, rest):
        if not rest:
            return h
        return run(h + rest[0](h) if shortcut else rest[0](h), rest[1:])

    return run(x, list(branches))


@wrong("the branches in reverse order", mistake="reversed_branches")
def residual_stack(x, branches, shortcut=True):
    for f in reversed(branches):
        x = x + f(x) if shortcut else f(x)
    return x


@wrong("averages input and branch")
def residual_stack(x, branches, shortcut=True):
    for f in branches:
        x = (x + f(x)) / 2 if shortcut else f(x)
    return x


@wrong("returns every unit's output", mistake="all_steps")
def residual_stack(x, branches, shortcut=True):
    outs = []
    for f in branches:
        x = x + f(x) if shortcut else f(x)
        outs.append(x)
    return outs


# --------------------------------------------------------------------------- 04
@right("the length of a range of window positions")
def conv_output_size(size, kernel, stride=1, padding=0):
    return len(range(0, size + 2 * padding - kernel + 1, stride))


@right("a ceiling that is the same floor")
def conv_output_size(size, kernel, stride=1, padding=0):
    return math.ceil((size + 2 * padding - kernel + 1) / stride)


@wrong("padding added after the division")
def conv_output_size(size, kernel, stride=1, padding=0):
    return (size - kernel) // stride + 1 + 2 * padding


@wrong("the kernel's half subtracted")
def conv_output_size(size, kernel, stride=1, padding=0):
    return (size + 2 * padding - kernel // 2) // stride + 1


@wrong("a misspelled key", mistake="key_names")
def resnet18_stage_shapes(n, channels, size, num_classes=1000):
    h = (size + 6 - 7) // 2 + 1
    shapes = {"input": (n, channels, size, size), "conv1": (n, 64, h, h)}
    h = (h + 2 - 3) // 2 + 1
    shapes["maxpool"] = shapes["layer1"] = (n, 64, h, h)
    for stage, c in (("layer2", 128), ("layer3", 256), ("layer4", 512)):
        h = (h + 2 - 3) // 2 + 1
        shapes[stage] = (n, c, h, h)
    shapes["avg_pool"], shapes["fc"] = (n, 512, 1, 1), (n, num_classes)
    return shapes


@wrong("the channels of the input kept in conv1")
def resnet18_stage_shapes(n, channels, size, num_classes=1000):
    h = (size + 6 - 7) // 2 + 1
    shapes = {"input": (n, channels, size, size), "conv1": (n, channels, h, h)}
    h = (h + 2 - 3) // 2 + 1
    shapes["maxpool"] = shapes["layer1"] = (n, 64, h, h)
    for stage, c in (("layer2", 128), ("layer3", 256), ("layer4", 512)):
        h = (h + 2 - 3) // 2 + 1
        shapes[stage] = (n, c, h, h)
    shapes["avgpool"], shapes["fc"] = (n, 512, 1, 1), (n, num_classes)
    return shapes


# --------------------------------------------------------------------------- 05
@wrong("add compares the channels only", mistake="add_channels_only")
def merge_output_shape(f_shape, s_shape, merge):
    if merge == "add":
        if f_shape[1] != s_shape[1]:
            raise ValueError("channels differ")
        return tuple(f_shape)
    if f_shape[0] != s_shape[0] or tuple(f_shape[2:]) != tuple(s_shape[2:]):
        raise ValueError("shapes differ")
    return (f_shape[0], f_shape[1] + s_shape[1], *f_shape[2:])


@wrong("cat refuses nothing but returns the larger batch")
def merge_output_shape(f_shape, s_shape, merge):
    if merge == "add":
        if tuple(f_shape) != tuple(s_shape):
            raise ValueError("shapes differ")
        return tuple(f_shape)
    return (max(f_shape[0], s_shape[0]), f_shape[1] + s_shape[1], *f_shape[2:])


@wrong("starts counting at the first layer's output")
def dense_block_channels(in_channels, growth_rate, num_layers):
    return [in_channels + l * growth_rate for l in range(1, num_layers + 2)]


@wrong("multiplies instead of adding")
def dense_block_channels(in_channels, growth_rate, num_layers):
    return [in_channels * (l + 1) for l in range(num_layers + 1)]


# --------------------------------------------------------------------------- 06
@wrong("adds the bias flag itself (True is 1)", mistake="bias_flag_added")
def conv_params(in_channels, out_channels, kernel_size, bias=True):
    return kernel_size ** 2 * in_channels * out_channels + bias


@wrong("two bias numbers per output channel")
def conv_params(in_channels, out_channels, kernel_size, bias=True):
    return kernel_size ** 2 * in_channels * out_channels + (2 * out_channels if bias else 0)


@wrong("the shortcut whenever in_channels != planes", mistake="shortcut_condition")
def bottleneck_params(in_channels, planes):
    total = in_channels * planes + 9 * planes * planes + 4 * planes * planes + 2 * 6 * planes
    return total + (in_channels * 4 * planes + 8 * planes if in_channels != planes else 0)


@wrong("BatchNorm counted after the last conv only")
def bottleneck_params(in_channels, planes):
    total = in_channels * planes + 9 * planes * planes + 4 * planes * planes + 2 * 4 * planes
    return total + (in_channels * 4 * planes + 8 * planes if in_channels != 4 * planes else 0)


# --------------------------------------------------------------------------- 07
@wrong("the model run twice (once more for the returned loss)")
def train_step(model, optimizer, x, y):
    model.train()
    optimizer.zero_grad()
    F.cross_entropy(model(x), y).backward()
    optimizer.step()
    return F.cross_entropy(model(x), y).item()


@wrong("returns loss.data, a tensor", mistake="tensor_loss")
def train_step(model, optimizer, x, y):
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.data


@wrong("MSE on the one-hot labels", mistake="mse_loss")
def train_step(model, optimizer, x, y):
    model.train()
    optimizer.zero_grad()
    out = model(x)
    loss = F.mse_loss(out, F.one_hot(y, out.shape[1]).float())
    loss.backward()
    optimizer.step()
    return loss.item()


@wrong("hits.sum() / len(y), a tensor", mistake="tensor_for_number")
def evaluate_accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().sum() / len(y)


@wrong("mean of a bool tensor", mistake="bool_mean")
def evaluate_accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).mean().item()


@wrong("the error rate", mistake="error_rate")
def evaluate_accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) != y).float().mean().item()


@right("a list of rows")
def label_smoothing_targets(y, num_classes, smoothing):
    rows = []
    for label in y.tolist():
        rows.append([1 - smoothing + smoothing / num_classes if k == label else smoothing / num_classes
                     for k in range(num_classes)])
    return torch.tensor(rows)


@wrong("+ eps without dividing by K", mistake="no_divide_k")
def label_smoothing_targets(y, num_classes, smoothing):
    return (1 - smoothing) * F.one_hot(y, num_classes).float() + smoothing


@wrong("the true class gets 1 - eps + eps/(K - 1)")
def label_smoothing_targets(y, num_classes, smoothing):
    t = torch.full((len(y), num_classes), smoothing / (num_classes - 1))
    t[torch.arange(len(y)), y] = 1 - smoothing + smoothing / (num_classes - 1)
    return t


# --------------------------------------------------------------------------- 08
@wrong("the deep net's own train-test gap", mistake="gap")
def degradation_or_overfitting(train_err_shallow, train_err_deep, test_err_shallow, test_err_deep):
    if train_err_deep > train_err_shallow:
        return "degradation"
    if test_err_deep > train_err_deep:
        return "overfitting"
    return "deeper is better"


@wrong("'worse' for both problems", mistake="unknown_answer")
def degradation_or_overfitting(train_err_shallow, train_err_deep, test_err_shallow, test_err_deep):
    if train_err_deep > train_err_shallow or test_err_deep > test_err_shallow:
        return "deeper is worse"
    return "deeper is better"


@wrong("blocks kept in eval mode, not zeroed", mistake="random_extra")
def deepen_with_identity_blocks(shallow, extra):
    c = shallow[-1].out_channels
    return nn.Sequential(*shallow, *[ResidualBlock(c, c).eval() for _ in range(extra)])


@right("zeroes the first BN's gamma: ReLU(0) = 0 makes the branch 0 as well")
def deepen_with_identity_blocks(shallow, extra):
    c = shallow[-1].out_channels
    new = []
    for _ in range(extra):
        block = ResidualBlock(c, c)
        nn.init.zeros_(block.bn1.weight)
        new.append(block)
    return nn.Sequential(*shallow, *new)


@wrong("copies of the shallow net's last block, unchanged", mistake="random_extra")
def deepen_with_identity_blocks(shallow, extra):
    return nn.Sequential(*shallow, *[copy.deepcopy(shallow[-1]) for _ in range(extra)])


# --------------------------------------------------------------------------- 09
@wrong("expand without dividing", mistake="not_spread")
def adapt_conv1_weights(rgb_weight, in_channels):
    return rgb_weight.sum(1, keepdim=True).expand(-1, in_channels, -1, -1)


@wrong("repeated over the output filters")
def adapt_conv1_weights(rgb_weight, in_channels):
    return rgb_weight.sum(1, keepdim=True).repeat(in_channels, 1, 1, 1) / in_channels


@wrong("out_features of the old head as the new input size", mistake="used_out_features")
def replace_head(model, num_classes):
    model.fc = nn.Linear(model.fc.out_features, num_classes)
    return model


@wrong("a Sequential head with a softmax")
def replace_head(model, num_classes):
    model.fc = nn.Sequential(nn.Linear(model.fc.in_features, num_classes), nn.Softmax(dim=1))
    return model


# --------------------------------------------------------------------------- 10
@wrong("2 ** (n + 1)", mistake="scaled")
def count_residual_paths(n_blocks):
    return 2 ** (n_blocks + 1)


@wrong("n factorial", mistake="factorial")
def count_residual_paths(n_blocks):
    return math.factorial(n_blocks)


@right("a reduce over Pascal's rule")
def path_length_counts(n_blocks):
    return functools.reduce(lambda row, _: [a + b for a, b in zip([0] + row, row + [0])], range(n_blocks), [1])


@wrong("permutations instead of combinations", mistake="permutations")
def path_length_counts(n_blocks):
    return [math.perm(n_blocks, k) for k in range(n_blocks + 1)]
