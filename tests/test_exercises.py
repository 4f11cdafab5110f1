"""The "Your turn" checker (resnet_tutorial.exercises) and the exercise cells in the lessons.

* every exercise accepts its reference and an independently written correct
  solution, and rejects an independently written wrong version of each of its
  named mistakes *with that mistake's diagnosis* (the wrong versions below are
  written like a learner would, not taken from the checker's own recognisers);
* the references agree with independent sources (torch modules, torchvision's
  networks, autograd, brute-force enumeration);
* stubs are "not attempted", never a traceback; exceptions, shapes, dtypes and
  types are reported with the case that triggered them; the notebook's random
  numbers are left alone; nothing is printed or warned;
* the progress file is written atomically and a corrupt one is reset with a
  warning; hints come one at a time;
* every lesson's "Your turn" cells are well formed, and (marked ``notebooks``)
  every lesson's folded solutions pass their checks when executed in a kernel.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import warnings
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resnet_tutorial import exercises as E
from resnet_tutorial.blocks import ResidualBlock
from resnet_tutorial.data import MEAN, STD

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ALL_IDS = E.list_exercises()
CHECK_CALL = re.compile(r'^\s*(?:exercises\.)?check\("(?P<id>\w+)",\s*(?P<fn>\w+)\)', re.MULTILINE)


@pytest.fixture(autouse=True)
def private_progress(tmp_path, monkeypatch):
    """Every test writes its progress into its own temporary file, never into ~/.cache."""
    path = tmp_path / "progress.json"
    monkeypatch.setenv(E.PROGRESS_ENV, str(path))
    E.reset_hints()
    return path


# =========================================================================== wrong versions, one per mistake
def _bn_stats(x, dims, unbiased=False):
    mean = x.mean(dim=dims, keepdim=True)
    sq = ((x - mean) ** 2).sum(dim=dims, keepdim=True)
    m = x.numel() // mean.numel()
    return mean, sq / (m - 1 if unbiased else m)


def _affine(x_hat, gamma, beta):
    return gamma[None, :, None, None] * x_hat + beta[None, :, None, None]


def _stages(n, channels, size, num_classes=1000, maxpool=True, layer1_halves=False, floor=False, widths=(64, 128, 256, 512)):
    def down(h, k, p):
        return h // 2 if floor else math.floor((h + 2 * p - k) / 2) + 1

    out = {"input": (n, channels, size, size)}
    h = down(size, 7, 3)
    out["conv1"] = (n, widths[0], h, h)
    h = down(h, 3, 1) if maxpool else h
    out["maxpool"] = (n, widths[0], h, h)
    h = down(h, 3, 1) if layer1_halves else h
    out["layer1"] = (n, widths[0], h, h)
    for name, c in zip(("layer2", "layer3", "layer4"), widths[1:]):
        h = down(h, 3, 1)
        out[name] = (n, c, h, h)
    out["avgpool"] = (n, widths[-1], 1, 1)
    out["fc"] = (n, num_classes)
    return out


def _zero_channels(x, out_channels):
    return torch.zeros(x.shape[0], out_channels - x.shape[1], *x.shape[2:], dtype=x.dtype)


def _deepen(shallow, extra, zero=True, shortcut="identity", also_shallow=False, count_extra=0):
    c = shallow[-1].out_channels
    blocks = [ResidualBlock(c, c, shortcut=shortcut) for _ in range(extra + count_extra)]
    for b in blocks + (list(shallow) if also_shallow else []):
        if zero:
            b.zero_init_residual()
    return nn.Sequential(*list(shallow), *blocks)


def _train(model, optimizer, x, y, train=True, zero=True, zero_after_backward=False, item=True):
    if train:
        model.train()
    if zero:
        optimizer.zero_grad()
    loss = nn.CrossEntropyLoss()(model(x), y)
    loss.backward()
    if zero_after_backward:
        optimizer.zero_grad()
    optimizer.step()
    return loss.item() if item else loss


def _smooth(y, k, eps, true_value, other_value):
    t = torch.full((len(y), k), float(other_value))
    t[torch.arange(len(y)), y] = float(true_value)
    return t


def _head_fc(model, num_classes, in_features=None, swap=False):
    inf = model.fc.in_features if in_features is None else in_features
    return nn.Linear(num_classes, inf) if swap else nn.Linear(inf, num_classes)


def _merge_cat_batch(f, s, merge):
    if merge == "add":
        if tuple(f) != tuple(s):
            raise ValueError("shapes differ")
        return tuple(f)
    if tuple(f[1:]) != tuple(s[1:]):
        raise ValueError("shapes differ")
    return (f[0] + s[0], *f[1:])


def _merge_add_sums(f, s, merge):
    if (merge == "add" and tuple(f) != tuple(s)) or (merge == "cat" and (f[0], *f[2:]) != (s[0], *s[2:])):
        raise ValueError("shapes differ")
    return (f[0], f[1] + s[1], *f[2:])


def _merge_add_no_check(f, s, merge):
    if merge == "add":
        return tuple(f)
    if (f[0], *f[2:]) != (s[0], *s[2:]):
        raise ValueError("shapes differ")
    return (f[0], f[1] + s[1], *f[2:])


def _merge_cat_no_check(f, s, merge):
    if merge == "add":
        if tuple(f) != tuple(s):
            raise ValueError("shapes differ")
        return tuple(f)
    return (f[0], f[1] + s[1], *f[2:])


WRONG = {
    "normalize_pixels": {
        "no_scale": lambda images: (images.float() - MEAN) / STD,
        "own_stats": lambda images: (images.float() / 255 - (images.float() / 255).mean()) / (images.float() / 255).std(),
        "no_std": lambda images: images.float() / 255 - MEAN,
        "variance": lambda images: (images.float() / 255 - MEAN) / STD ** 2,
    },
    "weight_grad_norms": {
        "weight_norms": lambda model, x, y: (model.zero_grad(), F.cross_entropy(model(x), y).backward(),
                                             [m.weight.norm().item() for m in model.modules()
                                              if isinstance(m, (nn.Linear, nn.Conv2d))])[-1],
        "not_zeroed": lambda model, x, y: (F.cross_entropy(model(x), y).backward(),
                                           [m.weight.grad.norm().item() for m in model.modules()
                                            if isinstance(m, (nn.Linear, nn.Conv2d))])[-1],
        "with_batchnorm": lambda model, x, y: (model.zero_grad(), F.cross_entropy(model(x), y).backward(),
                                               [p.grad.norm().item() for name, p in model.named_parameters()
                                                if name.endswith("weight")])[-1],
        "squared": lambda model, x, y: (model.zero_grad(), F.cross_entropy(model(x), y).backward(),
                                        [(m.weight.grad ** 2).sum().item() for m in model.modules()
                                         if isinstance(m, (nn.Linear, nn.Conv2d))])[-1],
        "reversed": lambda model, x, y: (model.zero_grad(), F.cross_entropy(model(x), y).backward(),
                                         [m.weight.grad.norm().item() for m in model.modules()
                                          if isinstance(m, (nn.Linear, nn.Conv2d))][::-1])[-1],
    },
    "chain_rule_product": {
        "wrong_order": lambda jacobians, grad_output: __import__("functools").reduce(lambda g, J: g @ J, jacobians,
                                                                                      grad_output),
        "transposed": lambda jacobians, grad_output: __import__("functools").reduce(lambda g, J: g @ J.T,
                                                                                     jacobians[::-1], grad_output),
        "skip_first": lambda jacobians, grad_output: __import__("functools").reduce(lambda g, J: g @ J,
                                                                                     jacobians[1:][::-1], grad_output),
    },
    "bn_forward_train": {
        "unbiased": lambda x, gamma, beta, eps=1e-5: _affine(
            (x - _bn_stats(x, (0, 2, 3), True)[0]) / (_bn_stats(x, (0, 2, 3), True)[1] + eps).sqrt(), gamma, beta),
        "eps_outside": lambda x, gamma, beta, eps=1e-5: _affine(
            (x - _bn_stats(x, (0, 2, 3))[0]) / (_bn_stats(x, (0, 2, 3))[1].sqrt() + eps), gamma, beta),
        "batch_only": lambda x, gamma, beta, eps=1e-5: _affine(
            (x - x.mean(0, keepdim=True)) / (x.var(0, keepdim=True, unbiased=False) + eps).sqrt(), gamma, beta),
        "per_image": lambda x, gamma, beta, eps=1e-5: _affine(
            (x - _bn_stats(x, (2, 3))[0]) / (_bn_stats(x, (2, 3))[1] + eps).sqrt(), gamma, beta),
        "no_affine": lambda x, gamma, beta, eps=1e-5: (x - _bn_stats(x, (0, 2, 3))[0]) / (
            _bn_stats(x, (0, 2, 3))[1] + eps).sqrt(),
    },
    "bn_running_update": {
        "momentum_swapped": lambda rm, rv, x, momentum=0.1: (
            momentum * rm + (1 - momentum) * x.mean((0, 2, 3)), momentum * rv + (1 - momentum) * x.var((0, 2, 3))),
        "biased_var": lambda rm, rv, x, momentum=0.1: (
            (1 - momentum) * rm + momentum * x.mean((0, 2, 3)),
            (1 - momentum) * rv + momentum * x.var((0, 2, 3), unbiased=False)),
        "replaced": lambda rm, rv, x, momentum=0.1: (x.mean((0, 2, 3)), x.var((0, 2, 3))),
    },
    "bn_forward_eval": {
        "batch_stats": lambda x, rm, rv, gamma, beta, eps=1e-5: _affine(
            (x - _bn_stats(x, (0, 2, 3))[0]) / (_bn_stats(x, (0, 2, 3))[1] + eps).sqrt(), gamma, beta),
        "eps_outside": lambda x, rm, rv, gamma, beta, eps=1e-5: _affine(
            (x - rm[None, :, None, None]) / (rv[None, :, None, None].sqrt() + eps), gamma, beta),
        "no_sqrt": lambda x, rm, rv, gamma, beta, eps=1e-5: _affine(
            (x - rm[None, :, None, None]) / (rv[None, :, None, None] + eps), gamma, beta),
        "no_affine": lambda x, rm, rv, gamma, beta, eps=1e-5: (x - rm[None, :, None, None]) / (
            rv[None, :, None, None] + eps).sqrt(),
    },
    "bn_identity_params": {
        "no_eps": lambda x, eps=1e-5: (x.std((0, 2, 3), unbiased=False), x.mean((0, 2, 3))),
        "unbiased": lambda x, eps=1e-5: ((x.var((0, 2, 3)) + eps).sqrt(), x.mean((0, 2, 3))),
        "swapped": lambda x, eps=1e-5: (x.mean((0, 2, 3)), (x.var((0, 2, 3), unbiased=False) + eps).sqrt()),
        "no_sqrt": lambda x, eps=1e-5: (x.var((0, 2, 3), unbiased=False) + eps, x.mean((0, 2, 3))),
    },
    "zero_pad_shortcut": {
        "no_subsample": lambda x, out_channels, stride: torch.cat([x, _zero_channels(x, out_channels)], 1),
        "zeros_first": lambda x, out_channels, stride: torch.cat(
            [_zero_channels(x[:, :, ::stride, ::stride], out_channels), x[:, :, ::stride, ::stride]], 1),
        "pooled": lambda x, out_channels, stride: torch.cat(
            [F.avg_pool2d(x, stride, stride), _zero_channels(F.avg_pool2d(x, stride, stride), out_channels)], 1),
    },
    "residual_block_forward": {
        "relu_before_add": lambda x, conv1, bn1, conv2, bn2, shortcut=None: F.relu(
            bn2(conv2(F.relu(bn1(conv1(x)))))) + (x if shortcut is None else shortcut(x)),
        "no_final_relu": lambda x, conv1, bn1, conv2, bn2, shortcut=None: bn2(conv2(F.relu(bn1(conv1(x))))) + (
            x if shortcut is None else shortcut(x)),
        "no_inner_relu": lambda x, conv1, bn1, conv2, bn2, shortcut=None: F.relu(
            bn2(conv2(bn1(conv1(x)))) + (x if shortcut is None else shortcut(x))),
        "no_shortcut": lambda x, conv1, bn1, conv2, bn2, shortcut=None: F.relu(bn2(conv2(F.relu(bn1(conv1(x)))))),
    },
    "residual_stack": {
        "adds_input": lambda x, branches, shortcut=True: __import__("functools").reduce(
            lambda h, f: x + f(h) if shortcut else f(h), branches, x),
        "branch_on_input": lambda x, branches, shortcut=True: __import__("functools").reduce(
            lambda h, f: h + f(x) if shortcut else f(x), branches, x),
        "always_residual": lambda x, branches, shortcut=True: __import__("functools").reduce(
            lambda h, f: h + f(h), branches, x),
    },
    "conv_output_size": {
        "ceil": lambda size, kernel, stride=1, padding=0: math.ceil((size + 2 * padding - kernel) / stride) + 1,
        "no_plus_one": lambda size, kernel, stride=1, padding=0: (size + 2 * padding - kernel) // stride,
        "one_side_padding": lambda size, kernel, stride=1, padding=0: (size + padding - kernel) // stride + 1,
        "float": lambda size, kernel, stride=1, padding=0: (size + 2 * padding - kernel) / stride + 1,
    },
    "resnet18_stage_shapes": {
        "no_maxpool": lambda n, channels, size, num_classes=1000: _stages(n, channels, size, num_classes, maxpool=False),
        "layer1_halves": lambda n, channels, size, num_classes=1000: _stages(n, channels, size, num_classes,
                                                                             layer1_halves=True),
        "floor_halving": lambda n, channels, size, num_classes=1000: _stages(n, channels, size, num_classes, floor=True),
        "same_channels": lambda n, channels, size, num_classes=1000: _stages(n, channels, size, num_classes,
                                                                             widths=(64,) * 4),
    },
    "merge_output_shape": {
        "cat_batch": _merge_cat_batch,
        "add_sums": _merge_add_sums,
        "add_no_check": _merge_add_no_check,
        "cat_no_check": _merge_cat_no_check,
    },
    "dense_block_channels": {
        "no_output": lambda c, k, n: [c + i * k for i in range(n)],
        "outputs_only": lambda c, k, n: [c + (i + 1) * k for i in range(n)],
        "doubling": lambda c, k, n: [c * 2 ** i for i in range(n + 1)],
        "growth_only": lambda c, k, n: [i * k for i in range(n + 1)],
    },
    "conv_params": {
        "kernel_not_squared": lambda cin, cout, k, bias=True: k * cin * cout + (cout if bias else 0),
        "bias_per_input": lambda cin, cout, k, bias=True: k * k * cin * cout + (cin if bias else 0),
        "bias_always": lambda cin, cout, k, bias=True: k * k * cin * cout + cout,
        "no_bias": lambda cin, cout, k, bias=True: k * k * cin * cout,
    },
    "bottleneck_params": {
        "no_bn": lambda i, p: i * p + 9 * p * p + 4 * p * p + (i * 4 * p if i != 4 * p else 0),
        "bn_buffers": lambda i, p: i * p + 9 * p * p + 4 * p * p + 4 * (6 * p) + ((i + 4) * 4 * p if i != 4 * p else 0),
        "no_shortcut": lambda i, p: i * p + 9 * p * p + 4 * p * p + 2 * 6 * p,
        "shortcut_always": lambda i, p: i * p + 9 * p * p + 4 * p * p + 2 * 6 * p + i * 4 * p + 2 * 4 * p,
    },
    "train_step": {
        "no_zero_grad": lambda model, optimizer, x, y: _train(model, optimizer, x, y, zero=False),
        "no_update": lambda model, optimizer, x, y: _train(model, optimizer, x, y, zero_after_backward=True),
        "stays_eval": lambda model, optimizer, x, y: _train(model, optimizer, x, y, train=False),
        "tensor_loss": lambda model, optimizer, x, y: _train(model, optimizer, x, y, item=False),
    },
    "evaluate_accuracy": {
        "no_eval": lambda model, x, y: (torch.no_grad().__enter__(), (model(x).argmax(1) == y).float().mean().item(),
                                        torch.set_grad_enabled(True))[1],
        "no_no_grad": lambda model, x, y: (model.eval(), (model(x).argmax(1) == y).float().mean().item())[-1],
        "count": lambda model, x, y: (model.eval(), (model(x).detach().argmax(1) == y).sum().item())[-1],
    },
    "label_smoothing_targets": {
        "other_classes": lambda y, k, eps: _smooth(y, k, eps, 1 - eps, eps / (k - 1)),
        "no_share": lambda y, k, eps: _smooth(y, k, eps, 1 - eps, eps / k),
        "unscaled": lambda y, k, eps: F.one_hot(y, k).float() + eps / k,
    },
    "degradation_or_overfitting": {
        "test_only": lambda a, b, c, d: "degradation" if d > c else "deeper is better",
        "swapped": lambda a, b, c, d: "overfitting" if b > a else ("degradation" if d > c else "deeper is better"),
    },
    "deepen_with_identity_blocks": {
        "random_extra": lambda shallow, extra: _deepen(shallow, extra, zero=False),
        "plain_extra": lambda shallow, extra: _deepen(shallow, extra, shortcut="none"),
        "changed_shallow": lambda shallow, extra: _deepen(shallow, extra, also_shallow=True),
        "wrong_count": lambda shallow, extra: _deepen(shallow, extra, count_extra=1),
    },
    "adapt_conv1_weights": {
        "mean": lambda w, k: w.mean(dim=1, keepdim=True).repeat(1, k, 1, 1),
        "red_only": lambda w, k: w[:, 0:1].repeat(1, k, 1, 1) / k,
        "not_spread": lambda w, k: w.sum(dim=1, keepdim=True).expand(-1, k, -1, -1).clone(),
        "wrong_axis": lambda w, k: w.sum(dim=0, keepdim=True).repeat(1, k, 1, 1) / k,
    },
    "replace_head": {
        "hardcoded_512": lambda model, n: (setattr(model, "fc", _head_fc(model, n, in_features=512)), model)[-1],
        "swapped": lambda model, n: (setattr(model, "fc", _head_fc(model, n, swap=True)), model)[-1],
        "returns_layer": lambda model, n: _head_fc(model, n),
        "no_return": lambda model, n: setattr(model, "fc", _head_fc(model, n)),
    },
    "count_residual_paths": {
        "lengths": lambda n: n + 1,
        "two_per_block": lambda n: 2 * n,
        "minus_one": lambda n: 2 ** n - 1,
    },
    "path_length_counts": {
        "no_zero_length": lambda n: [math.comb(n, k) for k in range(1, n + 1)],
        "fractions": lambda n: [math.comb(n, k) / 2 ** n for k in range(n + 1)],
        "all_ones": lambda n: [1] * (n + 1),
    },
}

# =========================================================================== correct versions, written independently
def _right_grad_norms(model, x, y):
    for p in model.parameters():
        p.grad = None
    loss = -F.log_softmax(model(x), dim=1)[torch.arange(len(y)), y].mean()
    loss.backward()
    return [math.sqrt(float((m.weight.grad ** 2).sum())) for m in model.modules() if type(m) in (nn.Linear, nn.Conv2d)]


def _right_bn_train(x, gamma, beta, eps=1e-5):
    mean, var = _bn_stats(x, (0, 2, 3))
    return _affine((x - mean) * torch.rsqrt(var + eps), gamma, beta)


def _right_zero_pad(x, out_channels, stride):
    return F.pad(x[..., ::stride, ::stride], (0, 0, 0, 0, 0, out_channels - x.shape[1]))


def _right_block(x, conv1, bn1, conv2, bn2, shortcut=None):
    branch = nn.Sequential(conv1, bn1, nn.ReLU(), conv2, bn2)
    return F.relu(branch(x) + (shortcut(x) if shortcut is not None else x))


def _right_stack(x, branches, shortcut=True):
    h = x
    for f in branches:
        h = h + f(h) if shortcut else f(h)
    return h


def _right_merge(f_shape, s_shape, merge):
    a, b = torch.empty(f_shape), torch.empty(s_shape)
    if merge == "add" and a.shape == b.shape:
        return tuple((a + b).shape)
    if merge == "cat" and a.dim() == b.dim() and a.shape[0] == b.shape[0] and a.shape[2:] == b.shape[2:]:
        return tuple(torch.cat([a, b], dim=1).shape)
    raise ValueError(f"{merge} of {f_shape} and {s_shape} is impossible")


def _right_train_step(model, optimizer, x, y):
    model.train(True)
    for p in model.parameters():
        p.grad = None
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return float(loss)


def _right_evaluate(model, x, y):
    model.train(False)
    with torch.inference_mode():
        hits = model(x).max(dim=1).indices.eq(y)
    return hits.sum().item() / len(y)


def _right_deepen(shallow, extra):
    blocks = list(shallow)
    for _ in range(extra):
        b = ResidualBlock(blocks[-1].out_channels, blocks[-1].out_channels)
        with torch.no_grad():
            b.bn2.weight.zero_()
            b.bn2.bias.zero_()
        blocks.append(b)
    return nn.Sequential(*blocks)


def _right_replace_head(model, num_classes):
    old = model.fc
    model.fc = nn.Linear(old.weight.shape[1], num_classes)
    return model


RIGHT = {
    "normalize_pixels": lambda images: images.to(torch.float32).div(255).sub(MEAN).div(STD),
    "weight_grad_norms": _right_grad_norms,
    "chain_rule_product": lambda jacobians, grad_output: (grad_output[None] @ torch.linalg.multi_dot(
        jacobians[::-1]) if len(jacobians) > 1 else grad_output[None] @ jacobians[0])[0],
    "bn_forward_train": _right_bn_train,
    "bn_running_update": lambda rm, rv, x, momentum=0.1: (
        rm + momentum * (x.mean((0, 2, 3)) - rm),
        rv + momentum * (x.var((0, 2, 3), correction=1) - rv)),
    "bn_forward_eval": lambda x, rm, rv, gamma, beta, eps=1e-5: _affine(
        (x - rm[None, :, None, None]) * torch.rsqrt(rv[None, :, None, None] + eps), gamma, beta),
    "bn_identity_params": lambda x, eps=1e-5: tuple(t.flatten() for t in reversed(
        [_bn_stats(x, (0, 2, 3))[0], (_bn_stats(x, (0, 2, 3))[1] + eps).sqrt()])),
    "zero_pad_shortcut": _right_zero_pad,
    "residual_block_forward": _right_block,
    "residual_stack": _right_stack,
    "conv_output_size": lambda size, kernel, stride=1, padding=0: int(math.floor((size + 2 * padding - kernel) / stride)) + 1,
    "resnet18_stage_shapes": lambda n, channels, size, num_classes=1000: _stages(n, channels, size, num_classes),
    "merge_output_shape": _right_merge,
    "dense_block_channels": lambda c, k, n: list(itertools.accumulate([c] + [k] * n)),
    "conv_params": lambda cin, cout, k, bias=True: cout * (cin * k ** 2 + int(bias)),
    "bottleneck_params": lambda i, p: sum(
        c_in * c_out * k * k + 2 * c_out for c_in, c_out, k in
        [(i, p, 1), (p, p, 3), (p, 4 * p, 1)] + ([(i, 4 * p, 1)] if i != 4 * p else [])),
    "train_step": _right_train_step,
    "evaluate_accuracy": _right_evaluate,
    "label_smoothing_targets": lambda y, k, eps: torch.full((len(y), k), eps / k).scatter_add(
        1, y[:, None], torch.full((len(y), 1), 1.0 - eps)),
    "degradation_or_overfitting": lambda a, b, c, d: ["deeper is better", "overfitting", "degradation"][
        2 if b > a else int(d > c)],
    "deepen_with_identity_blocks": _right_deepen,
    "adapt_conv1_weights": lambda w, k: torch.cat([w.sum(1, keepdim=True) / k] * k, dim=1),
    "replace_head": _right_replace_head,
    "count_residual_paths": lambda n: 1 << n,
    "path_length_counts": lambda n: [len(list(itertools.combinations(range(n), k))) if n <= 12 else math.comb(n, k)
                                     for k in range(n + 1)],
}


# =========================================================================== the catalogue
REQUIRED = {
    "bn_forward_train": "(x, gamma, beta, eps=1e-05)",
    "conv_output_size": "(size, kernel, stride=1, padding=0)",
    "zero_pad_shortcut": "(x, out_channels, stride)",
    "weight_grad_norms": "(model, x, y)",
}


def _plain_signature(fn) -> str:
    import inspect

    params = inspect.signature(fn).parameters.values()
    return "(" + ", ".join(p.name if p.default is p.empty else f"{p.name}={p.default!r}" for p in params) + ")"


def test_catalogue_has_the_required_exercises_and_enough_of_them() -> None:
    for ex_id, sig in REQUIRED.items():
        assert _plain_signature(E.get_exercise(ex_id).reference) == sig, ex_id
    assert len(ALL_IDS) >= 18 and len(set(ALL_IDS)) == len(ALL_IDS)
    for lesson in range(1, 11):
        assert len(E.list_exercises(lesson)) >= 2, f"lesson {lesson:02d} needs at least two exercises"
    for ex_id in ALL_IDS:
        ex = E.get_exercise(ex_id)
        assert ex.title and len(ex.cases) >= 2 and len(ex.hints) >= 2 and len(ex.mistakes) >= 2, ex_id
        assert len({c.label for c in ex.cases}) == len(ex.cases), f"{ex_id}: case labels must differ"


def test_the_wrong_versions_cover_every_listed_mistake() -> None:
    assert set(WRONG) == set(ALL_IDS) == set(RIGHT)
    for ex_id in ALL_IDS:
        assert set(WRONG[ex_id]) == {m.name for m in E.get_exercise(ex_id).mistakes}, ex_id


@pytest.mark.parametrize("ex_id", ALL_IDS)
def test_reference_and_an_independent_solution_pass(ex_id: str) -> None:
    ex = E.get_exercise(ex_id)
    assert E.check(ex_id, ex.reference).passed
    result = E.check(ex_id, RIGHT[ex_id])
    assert result.passed, result.message
    assert result.message.startswith(f"✓ {ex_id} passed") and len(result.cases) == len(ex.cases)


@pytest.mark.parametrize("ex_id,mistake", [(i, m) for i in ALL_IDS for m in WRONG[i]],
                         ids=[f"{i}-{m}" for i in ALL_IDS for m in WRONG[i]])
def test_every_mistake_is_rejected_with_its_diagnosis(ex_id: str, mistake: str) -> None:
    result = E.check(ex_id, WRONG[ex_id][mistake])
    assert result.status == "failed" and not result.passed
    assert mistake in result.mistakes, result.message
    assert E.get_exercise(ex_id).mistake(mistake).diagnosis in result.message
    assert result.tried.startswith("case ") and result.expected and result.got


def test_two_mistakes_at_once_are_both_named() -> None:
    def bn_forward_train(x, gamma, beta, eps=1e-5):
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        return _affine((x - mean) / (x.std(dim=(0, 2, 3), keepdim=True) + eps), gamma, beta)  # unbiased, eps outside

    result = E.check("bn_forward_train", bn_forward_train)
    assert result.mistakes == ["unbiased", "eps_outside"]
    assert result.diagnosis.startswith("Two mistakes at once.")


def test_a_mistake_behind_a_dtype_slip_is_still_named() -> None:
    def bn_forward_train(x, gamma, beta, eps=1e-5):
        return WRONG["bn_forward_train"]["unbiased"](x, gamma, beta, eps).float()

    result = E.check("bn_forward_train", bn_forward_train)
    assert result.mistakes == ["unbiased"]
    assert "dtype float32 instead of float64" in result.difference
    assert "dtype float32 instead of float64" in result.diagnosis


# =========================================================================== stubs, errors, reports
def _stubs():
    def a(x, gamma, beta, eps=1e-5):
        """Docstring."""
        raise NotImplementedError

    def b(x, gamma, beta, eps=1e-5):
        ...

    def c(x, gamma, beta, eps=1e-5):
        pass

    def d(x, gamma, beta, eps=1e-5):
        """Docstring."""
        return None  # noqa: RET501  (a stub form learners write)

    def e(x, gamma, beta, eps=1e-5):
        """Only a docstring."""

    def f(x, gamma, beta, eps=1e-5):
        raise NotImplementedError("write me")  # replace this line

    def g(x, gamma, beta, eps=1e-5):
        mean = x.mean()  # noqa: F841  (started, not finished)
        raise NotImplementedError

    return [a, b, c, d, e, f, g]


@pytest.mark.parametrize("stub", _stubs(), ids="abcdefg")
def test_unfinished_stubs_are_not_attempted(stub, private_progress, capsys) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = E.check("bn_forward_train", stub)
        text, page = repr(result), result._repr_html_()
    assert result.status == "not attempted" and not result.passed and not result.attempted
    assert "not attempted yet" in text and "Traceback" not in text and "rt-check-not-attempted" in page
    assert not private_progress.exists(), "a stub must not be recorded"
    assert capsys.readouterr() == ("", "")


def test_a_notimplementederror_from_a_library_is_an_error_not_a_stub() -> None:
    scope: dict = {}
    exec(compile("def helper():\n    raise NotImplementedError('not supported on this device')\n", "<library>", "exec"),
         scope)

    def conv_output_size(size, kernel, stride=1, padding=0):
        return scope["helper"]()

    result = E.check("conv_output_size", conv_output_size)
    assert result.status == "failed"
    assert "NotImplementedError: not supported on this device" in result.got


def test_an_exception_is_reported_with_its_case_and_line() -> None:
    def conv_output_size(size, kernel, stride=1, padding=0):
        if size % 2:
            raise ValueError("odd sizes are not supported")
        return (size + 2 * padding - kernel) // stride + 1

    result = E.check("conv_output_size", conv_output_size)
    assert result.status == "failed"
    assert result.tried.startswith("case 5 of 7, an odd 7×7 map")
    assert "ValueError: odd sizes are not supported" in result.got
    assert "line 3 of your function: `raise ValueError(\"odd sizes are not supported\")`" in result.got
    assert "Traceback" not in result.message


def test_a_wrong_shape_is_reported_with_its_case() -> None:
    def zero_pad_shortcut(x, out_channels, stride):
        return x[:, :, ::stride, ::stride]  # the zero channels are missing

    result = E.check("zero_pad_shortcut", zero_pad_shortcut)
    assert result.tried.startswith("case 1 of 4, stride 2, 4 → 8 channels")
    assert result.difference == "shape 2×4×4×4 instead of 2×8×4×4"
    assert "The shape is wrong" in result.diagnosis


def test_a_wrong_dtype_is_reported_with_its_case() -> None:
    def normalize_pixels(images):
        return ((images.double() / 255) - MEAN) / STD

    result = E.check("normalize_pixels", normalize_pixels)
    assert result.difference == "dtype float64 instead of float32" and result.tried.startswith("case 1 of 3")


def test_a_wrong_type_is_reported() -> None:
    result = E.check("conv_output_size", lambda size, kernel, stride=1, padding=0: str((size + 2 * padding - kernel)
                                                                                       // stride + 1))
    assert result.difference == "a str where an int was expected"
    result = E.check("weight_grad_norms", lambda model, x, y: torch.tensor(weight_grad_norms_ref(model, x, y)))
    assert result.difference == "a tensor where a list was expected"


def weight_grad_norms_ref(model, x, y):
    return E.get_exercise("weight_grad_norms").reference(model, x, y)


def test_a_forgotten_return_is_named() -> None:
    def zero_pad_shortcut(x, out_channels, stride):
        torch.cat([x[:, :, ::stride, ::stride], _zero_channels(x[:, :, ::stride, ::stride], out_channels)], 1)

    result = E.check("zero_pad_shortcut", zero_pad_shortcut)
    assert "forget the `return` statement" in result.diagnosis


def test_calls_that_cannot_work_are_explained() -> None:
    assert "without parentheses" in E.check("conv_output_size", 112).diagnosis
    assert "Keep the parameters of the stub" in E.check("conv_output_size", lambda size: size).diagnosis
    unknown = E.check("no_such_exercise", lambda: None)
    assert unknown.status == "unknown exercise" and "bn_forward_train" in unknown.message


def test_check_leaves_the_notebooks_random_numbers_and_grad_mode_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(5)
    torch.manual_seed(123)
    with torch.no_grad():  # a learner's cell may run under no_grad; training exercises still work
        assert E.check("train_step", RIGHT["train_step"]).passed
        assert not E.check("weight_grad_norms", WRONG["weight_grad_norms"]["not_zeroed"]).passed
        assert not torch.is_grad_enabled()
    assert torch.equal(torch.rand(5), expected)


def test_reports_render_as_html_and_as_text() -> None:
    failed = E.check("bn_forward_train", WRONG["bn_forward_train"]["unbiased"])
    page = failed._repr_html_()
    assert 'class="rt-check rt-check-failed"' in page and "unbiased variance" in page and "<table" in page
    assert repr(failed) == str(failed) == failed.message and failed.message.startswith("✗ bn_forward_train")
    for label in ("Tried: ", "Got: ", "Expected: ", "Difference: ", "Diagnosis: "):
        assert label in failed.message
    passed = E.check("bn_forward_train", RIGHT["bn_forward_train"])
    assert 'rt-check-passed' in passed._repr_html_() and "near-constant channel" in passed.message
    assert "<script" not in E.check("conv_output_size", lambda size, kernel, stride=1, padding=0: "<script>")._repr_html_()


# =========================================================================== progress
def _entries(path: Path) -> dict:
    return json.loads(path.read_text())["exercises"]


def test_progress_counts_attempts_and_passes(private_progress) -> None:
    assert not E.check("conv_output_size", WRONG["conv_output_size"]["ceil"]).passed
    assert _entries(private_progress)["conv_output_size"]["attempts"] == 1
    assert not _entries(private_progress)["conv_output_size"]["passed"]
    assert E.check("conv_output_size", RIGHT["conv_output_size"]).passed
    E.check("conv_output_size", WRONG["conv_output_size"]["float"])  # a later wrong try keeps the pass
    entry = _entries(private_progress)["conv_output_size"]
    assert entry["attempts"] == 3 and entry["passed"] and entry["first_passed"]
    table = E.progress()
    assert list(table["exercise"]) == ALL_IDS and table.attrs["path"] == str(private_progress)
    row = table.set_index("exercise").loc["conv_output_size"]
    assert row["status"] == "passed ✓" and row["attempts"] == 3
    assert set(table["status"]) == {"passed ✓", "not tried"} and table.attrs["passed"] == 1
    assert set(E.progress(lesson=4)["exercise"]) == set(E.list_exercises(4))
    E.reset_progress()
    assert not private_progress.exists() and E.progress().attrs["passed"] == 0


def test_record_false_leaves_progress_alone(private_progress) -> None:
    E.check("conv_output_size", RIGHT["conv_output_size"], record=False)
    E.check("conv_output_size", lambda size: size, record=False)
    assert not private_progress.exists()


def test_progress_is_written_atomically(private_progress, monkeypatch) -> None:
    assert E.check("conv_params", RIGHT["conv_params"]).passed
    before = private_progress.read_bytes()

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(E.os, "replace", failing_replace)
    with pytest.warns(E.ProgressFileWarning, match="could not save"):
        assert E.check("dense_block_channels", RIGHT["dense_block_channels"]).passed  # the check itself is fine
    assert private_progress.read_bytes() == before
    monkeypatch.undo()
    monkeypatch.setenv(E.PROGRESS_ENV, str(private_progress))

    def half_written(data, f, **kw):
        f.write('{"version": 1, "exercises": {"half')
        raise RuntimeError("killed while writing")

    monkeypatch.setattr(E.json, "dump", half_written)
    with pytest.warns(E.ProgressFileWarning):
        E.check("dense_block_channels", RIGHT["dense_block_channels"])
    assert private_progress.read_bytes() == before, "a half-written file must never replace the old one"
    assert [p.name for p in private_progress.parent.iterdir()] == ["progress.json"], "temporary files left behind"


@pytest.mark.parametrize("content", [b"{not json", b"", b'["a", "list"]', b'{"exercises": {"x": 3}}', b"\xff\xfe"])
def test_a_corrupt_progress_file_is_reset_with_a_warning(private_progress, content) -> None:
    private_progress.write_bytes(content)
    with pytest.warns(E.ProgressFileWarning, match="unreadable, so progress starts afresh"):
        table = E.progress()
    assert set(table["status"]) == {"not tried"}
    assert private_progress.with_name("progress.json.corrupt").read_bytes() == content
    assert json.loads(private_progress.read_text()) == {"version": 1, "exercises": {}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reset once: no warning the second time
        E.progress()
        assert E.check("conv_params", RIGHT["conv_params"]).passed
    assert _entries(private_progress)["conv_params"]["passed"]


def test_progress_path_follows_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(E.PROGRESS_ENV, str(tmp_path))  # a folder: progress.json inside it
    assert E.progress_path() == tmp_path / "progress.json"
    monkeypatch.delenv(E.PROGRESS_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert E.progress_path() == tmp_path / "xdg" / "resnet-tutorial" / "progress.json"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert E.progress_path() == tmp_path / "home" / ".cache" / "resnet-tutorial" / "progress.json"


# =========================================================================== hints
def test_hints_come_one_at_a_time_then_point_to_the_solution() -> None:
    hints = E.get_exercise("bn_forward_train").hints
    for number, text in enumerate(hints, start=1):
        shown = E.hint("bn_forward_train")
        assert (shown.number, shown.total) == (number, len(hints))
        assert text in repr(shown) and text in shown._repr_html_() and f"Hint {number} of {len(hints)}" in repr(shown)
    done = E.hint("bn_forward_train")
    assert done.number == 0 and "folded under 'Solution'" in repr(done)
    assert E.hint("conv_output_size").number == 1, "each exercise counts its own hints"
    E.reset_hints("bn_forward_train")
    assert E.hint("bn_forward_train").number == 1
    assert "No exercise" in repr(E.hint("nope"))


# =========================================================================== the references, against independent sources
def test_conv_output_size_matches_real_convolutions() -> None:
    ref = E.get_exercise("conv_output_size").reference
    for size, k, s, p in itertools.product((5, 7, 28, 97), (1, 3, 7), (1, 2, 3), (0, 1, 3)):
        if size + 2 * p >= k:
            out = F.conv2d(torch.zeros(1, 1, size, size), torch.zeros(1, 1, k, k), stride=s, padding=p)
            assert ref(size, k, s, p) == out.shape[-1], (size, k, s, p)


def test_resnet18_stage_shapes_match_torchvisions_network() -> None:
    import torchvision

    ref = E.get_exercise("resnet18_stage_shapes").reference
    net = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    for n, size in ((1, 224), (2, 100), (1, 97), (3, 32)):
        shapes, h = {}, torch.zeros(n, 3, size, size)
        with torch.no_grad():
            for name, child in net.named_children():
                h = child(torch.flatten(h, 1) if name == "fc" else h)
                shapes[name] = tuple(h.shape)
        want = ref(n, 3, size, 10)
        assert {k: v for k, v in want.items() if k not in ("input", "conv1")} == {
            k: v for k, v in shapes.items() if k not in ("conv1", "bn1", "relu")}
        assert want["conv1"] == shapes["conv1"]


def test_batchnorm_references_match_nn_batchnorm() -> None:
    x = torch.randn(6, 3, 5, 4, dtype=torch.float64) * 2 + 1
    bn = nn.BatchNorm2d(3, momentum=0.3).double()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([0.5, 1.5, -2.0]))
        bn.bias.copy_(torch.tensor([1.0, 0.0, 3.0]))
        bn.running_mean.copy_(torch.tensor([0.1, 0.2, 0.3]))
        bn.running_var.copy_(torch.tensor([1.0, 2.0, 0.5]))
    rm, rv = bn.running_mean.clone(), bn.running_var.clone()
    y = bn.train()(x)
    get = lambda i: E.get_exercise(i).reference
    assert torch.allclose(get("bn_forward_train")(x, bn.weight, bn.bias), y, atol=1e-12)
    new_mean, new_var = get("bn_running_update")(rm, rv, x, momentum=0.3)
    assert torch.allclose(new_mean, bn.running_mean) and torch.allclose(new_var, bn.running_var)
    z = torch.randn(2, 3, 5, 4, dtype=torch.float64)
    expected = bn.eval()(z)
    assert torch.allclose(get("bn_forward_eval")(z, bn.running_mean, bn.running_var, bn.weight, bn.bias), expected)
    gamma, beta = get("bn_identity_params")(x)
    identity = nn.BatchNorm2d(3).double()
    with torch.no_grad():
        identity.weight.copy_(gamma)
        identity.bias.copy_(beta)
    assert torch.allclose(identity.train()(x), x, atol=1e-10)


def test_block_and_shortcut_references_match_torchvision_and_the_definition() -> None:
    from torchvision.models.resnet import BasicBlock as TVBasicBlock

    ref = E.get_exercise("residual_block_forward").reference
    down = nn.Sequential(nn.Conv2d(4, 8, 1, stride=2, bias=False), nn.BatchNorm2d(8))
    tv = TVBasicBlock(4, 8, stride=2, downsample=down)
    x = torch.randn(2, 4, 7, 7)
    assert torch.allclose(ref(x, tv.conv1, tv.bn1, tv.conv2, tv.bn2, tv.downsample), tv(x), atol=1e-6)
    pad = E.get_exercise("zero_pad_shortcut").reference(x, 10, 3)
    assert pad.shape == (2, 10, 3, 3) and torch.equal(pad[:, :4], x[:, :, ::3, ::3]) and not pad[:, 4:].any()


def test_residual_stack_is_the_product_of_identity_plus_branch() -> None:
    ref = E.get_exercise("residual_stack").reference
    mats = [torch.randn(3, 3, dtype=torch.float64) * 0.3 for _ in range(4)]
    branches = [lambda h, a=a: h @ a.T for a in mats]
    x = torch.randn(2, 3, dtype=torch.float64)
    product, plain = torch.eye(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64)
    for a in mats:
        product, plain = (torch.eye(3, dtype=torch.float64) + a) @ product, a @ plain
    assert torch.allclose(ref(x, branches), x @ product.T)
    assert torch.allclose(ref(x, branches, shortcut=False), x @ plain.T)


def test_chain_rule_product_is_what_autograd_computes() -> None:
    ref = E.get_exercise("chain_rule_product").reference
    torch.manual_seed(0)
    layers = [nn.Sequential(nn.Linear(5, 4), nn.Tanh()), nn.Sequential(nn.Linear(4, 3), nn.Sigmoid()), nn.Linear(3, 2)]
    layers = [m.double() for m in layers]
    a = torch.randn(5, dtype=torch.float64)
    jacobians, h = [], a
    for layer in layers:
        jacobians.append(torch.autograd.functional.jacobian(layer, h))
        h = layer(h).detach()
    w = torch.randn(2, dtype=torch.float64)
    x = a.clone().requires_grad_(True)
    out = x
    for layer in layers:
        out = layer(out)
    (out @ w).backward()
    assert torch.allclose(ref(jacobians, w), x.grad)


def test_weight_grad_norms_matches_the_diagnostics_tool() -> None:
    from resnet_tutorial.diagnostics import grad_norms

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    x, y = torch.randn(4, 1, 6, 6), torch.tensor([0, 1, 2, 3])
    ours = E.get_exercise("weight_grad_norms").reference(model, x, y)
    theirs = grad_norms(model, x, y)["grad_norm"].tolist()
    assert ours == pytest.approx(theirs, rel=1e-6)


def test_merge_shapes_follow_what_torch_does() -> None:
    ref = E.get_exercise("merge_output_shape").reference
    a, b = torch.zeros(2, 8, 5, 5), torch.zeros(2, 3, 5, 5)
    assert ref(a.shape, b.shape, "cat") == tuple(torch.cat([a, b], 1).shape)
    assert ref(a.shape, a.shape, "add") == tuple((a + a).shape)
    with pytest.raises(RuntimeError):
        a + b
    with pytest.raises(ValueError):
        ref(a.shape, b.shape, "add")
    with pytest.raises(RuntimeError):
        torch.cat([a, torch.zeros(2, 3, 4, 4)], 1)
    with pytest.raises(ValueError):
        ref(a.shape, (2, 3, 4, 4), "cat")


def test_dense_block_channels_match_torchvisions_densenet() -> None:
    import torchvision

    net = torchvision.models.densenet121(weights=None)
    block = net.features.denseblock1
    entering = [layer.norm1.num_features for layer in block.children()]
    leaving = net.features.transition1.norm.num_features
    assert E.get_exercise("dense_block_channels").reference(64, 32, len(entering)) == entering + [leaving]


def test_parameter_counts_match_torchvisions_resnets() -> None:
    import torchvision

    count = lambda m: sum(p.numel() for p in m.parameters())
    r50, r18 = torchvision.models.resnet50(weights=None), torchvision.models.resnet18(weights=None)
    bottleneck = E.get_exercise("bottleneck_params").reference
    assert bottleneck(64, 64) == count(r50.layer1[0]) and bottleneck(256, 64) == count(r50.layer1[1])
    assert bottleneck(1024, 512) == count(r50.layer4[0]) and bottleneck(2048, 512) == count(r50.layer4[2])
    conv = E.get_exercise("conv_params").reference
    assert conv(3, 64, 7, bias=False) == count(r18.conv1) == 9408
    assert conv(512, 1000, 1) == count(r18.fc)  # a 1x1 conv on a 1x1 map is the fc layer


def test_training_references_match_the_package_loop_and_evaluate() -> None:
    from resnet_tutorial.train import evaluate, train_steps

    def model_and_opt(seed):
        torch.manual_seed(seed)
        m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 3 * 3, 3))
        return m, torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.0)

    x, y = torch.randn(5, 1, 5, 5), torch.tensor([0, 1, 2, 0, 1])
    (m1, o1), (m2, o2) = model_and_opt(0), model_and_opt(0)
    loss = E.get_exercise("train_step").reference(m1, o1, x, y)
    losses = train_steps(m2, (x, y), 1, optimizer=o2)
    assert loss == pytest.approx(losses[0])
    assert all(torch.allclose(a, b) for a, b in zip(m1.parameters(), m2.parameters()))
    acc = E.get_exercise("evaluate_accuracy").reference(m1, x, y)
    assert acc == pytest.approx(evaluate(m1, [(x, y)])["acc"])


def test_label_smoothing_targets_are_pytorchs() -> None:
    ref = E.get_exercise("label_smoothing_targets").reference
    logits, y = torch.randn(4, 6), torch.tensor([0, 5, 2, 2])
    soft = ref(y, 6, 0.2)
    assert torch.allclose(-(soft * logits.log_softmax(1)).sum(1).mean(), F.cross_entropy(logits, y, label_smoothing=0.2))
    assert torch.allclose(soft.sum(1), torch.ones(4))


def test_degradation_reference_reads_the_cached_run_as_degradation() -> None:
    from resnet_tutorial import degradation
    from resnet_tutorial.lessons.l08_degradation import final_errors

    final = final_errors(degradation.load_degradation())
    ref = E.get_exercise("degradation_or_overfitting").reference
    args = (final.loc[20, ("train_error", "plain")], final.loc[56, ("train_error", "plain")],
            final.loc[20, ("test_error", "plain")], final.loc[56, ("test_error", "plain")])
    assert ref(*args) == "degradation"


def test_deepened_network_computes_the_shallow_one_exactly() -> None:
    torch.manual_seed(0)
    shallow = nn.Sequential(ResidualBlock(4, 4), ResidualBlock(4, 4))
    x = torch.relu(torch.randn(3, 4, 6, 6))
    deep = E.get_exercise("deepen_with_identity_blocks").reference(shallow, 3)
    assert len(deep) == 5
    for mode in (True, False):
        shallow.train(mode), deep.train(mode)
        assert torch.equal(deep(x), shallow(x))


def test_adapted_conv1_gives_the_rgb_response_to_gray_images() -> None:
    ref = E.get_exercise("adapt_conv1_weights").reference
    w, gray = torch.randn(6, 3, 5, 5, dtype=torch.float64), torch.rand(2, 1, 12, 12, dtype=torch.float64)
    rgb = F.conv2d(gray.expand(-1, 3, -1, -1), w)
    for k in (1, 2, 5):
        assert torch.allclose(F.conv2d(gray.expand(-1, k, -1, -1), ref(w, k)), rgb)


def test_replace_head_on_torchvisions_resnet() -> None:
    import torchvision

    net = E.get_exercise("replace_head").reference(torchvision.models.resnet18(weights=None), 10)
    assert net.fc.in_features == 512 and net(torch.zeros(1, 3, 64, 64)).shape == (1, 10)


def test_path_counts_by_brute_force_and_lesson_10() -> None:
    from resnet_tutorial.lessons.l10_why_residual_networks_train import (
        path_length_counts as lesson_counts,
    )

    count = E.get_exercise("count_residual_paths").reference
    lengths = E.get_exercise("path_length_counts").reference
    for n in range(7):
        paths = list(itertools.product((0, 1), repeat=n))  # 1 = through the unit's branch
        assert count(n) == len(paths)
        assert lengths(n) == [sum(1 for p in paths if sum(p) == k) for k in range(n + 1)]
        assert lengths(n) == lesson_counts(n)["paths"].tolist()


# =========================================================================== the lessons' "Your turn" cells
def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _solution_code(markdown: str) -> str:
    match = re.search(r"<details><summary>Solution</summary>\s*```python\n(.*?)```", markdown, re.DOTALL)
    assert match, f"no ```python block in the folded solution:\n{markdown[:300]}"
    return match.group(1)


def your_turns(nb) -> list[dict]:
    """The lesson's exercises: per stub cell, the exercise id and the indices of its four cells."""
    blocks = []
    for i, cell in enumerate(nb.cells):
        if "exercise-stub" in _tags(cell):
            intro, check_cell, solution = nb.cells[i - 1], nb.cells[i + 1], nb.cells[i + 2]
            call = CHECK_CALL.search(check_cell.source)
            blocks.append({"id": call.group("id") if call else None, "fn": call.group("fn") if call else None,
                           "intro": intro, "stub": cell, "check": check_cell, "solution": solution, "index": i})
    return blocks


def _lesson(path: Path) -> str:
    return path.name[:2]


LESSONS_WITH_EXERCISES = [p for p in NOTEBOOKS if E.list_exercises(_lesson(p))]


def test_every_lesson_has_your_turn_exercises_where_its_module_has_them() -> None:
    total = 0
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        found = [b["id"] for b in your_turns(nb)]
        lesson = _lesson(path)
        assert sorted(found) == sorted(E.list_exercises(lesson)), f"{path.name}: exercises {found}"
        assert len(found) >= (1 if lesson == "00" else 2), f"{path.name}: at least two 'Your turn' exercises"
        total += len(found) if lesson != "00" else 0
    assert total >= 18


@pytest.mark.parametrize("path", LESSONS_WITH_EXERCISES, ids=[p.stem for p in LESSONS_WITH_EXERCISES])
def test_your_turn_cells_are_well_formed(path: Path) -> None:
    import ast

    nb = nbformat.read(path, as_version=4)
    # the lesson's own code cells: after the setup cell every lesson starts with (scripts/setup_cell.py)
    code_cells = [c for c in nb.cells if c.cell_type == "code" and not c.source.startswith("# Setup (the same")]
    assert "exercise-import" in _tags(code_cells[1]), "the checker is imported right after the lesson's imports"
    assert "from resnet_tutorial.exercises import check, hint" in code_cells[1].source
    for b in your_turns(nb):
        ex_id = b["id"]
        assert ex_id in ALL_IDS and b["fn"] == ex_id, f"{path.name}: check cell {b['check'].source!r}"
        assert E.get_exercise(ex_id).lesson == _lesson(path)
        assert b["intro"].cell_type == "markdown" and b["intro"].source.startswith("### Your turn")
        assert "exercise-intro" in _tags(b["intro"]) and f'hint("{ex_id}")' in b["intro"].source
        assert "exercise-check" in _tags(b["check"]) and b["check"].cell_type == "code"
        stub = next(n for n in ast.walk(ast.parse(b["stub"].source)) if isinstance(n, ast.FunctionDef))
        assert stub.name == ex_id and ast.get_docstring(stub), f"{ex_id}: the stub needs the signature and a docstring"
        last = stub.body[-1]
        assert isinstance(last, ast.Raise) and "NotImplementedError" in ast.unparse(last) and len(stub.body) == 2
        assert b["solution"].cell_type == "markdown" and "exercise-solution" in _tags(b["solution"])
        solution = ast.parse(_solution_code(b["solution"].source))
        assert any(isinstance(n, ast.FunctionDef) and n.name == ex_id for n in solution.body)


def test_lesson_00_explains_exercises_and_shows_progress() -> None:
    nb = nbformat.read(ROOT / "notebooks" / "00_start_here.ipynb", as_version=4)
    about = "\n".join(c.source for c in nb.cells if "exercise-about" in _tags(c))
    for word in ("Your turn", "raise NotImplementedError", "check(", "hint(", "Solution", "progress"):
        assert word in about, word
    assert any(c.source.strip() == "exercises.progress()" for c in nb.cells if "exercise-progress" in _tags(c))
    demo = [c for c in nb.cells if "exercise-demo" in _tags(c)]
    assert demo and "record=False" in demo[0].source, "the demonstration must not count as the learner's attempt"


@pytest.mark.parametrize("path", LESSONS_WITH_EXERCISES, ids=[p.stem for p in LESSONS_WITH_EXERCISES])
def test_folded_solutions_pass_their_checks(path: Path) -> None:
    """The solutions as a learner would paste them (no kernel needed: fast, and a clear message)."""
    for b in your_turns(nbformat.read(path, as_version=4)):
        scope: dict = {}
        exec(compile(_solution_code(b["solution"].source), f"<solution of {b['id']}>", "exec"), scope)
        result = E.check(b["id"], scope[b["id"]])
        assert result.passed, f"{path.name}: the folded solution of {b['id']} fails:\n{result.message}"


def solutions_notebook(path: Path):
    """The lesson's import cell(s) and exercise cells only, every stub replaced by its folded solution."""
    nb = nbformat.read(path, as_version=4)
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    cells = [first_code] + [c for c in nb.cells if set(_tags(c)) & {"exercise-import", "exercise-demo"}]
    for b in your_turns(nb):
        cells += [nbformat.v4.new_code_cell(_solution_code(b["solution"].source)), b["check"]]
    cells += [c for c in nb.cells if "exercise-progress" in _tags(c)]
    out = nbformat.v4.new_notebook(metadata=nb.metadata)
    out.cells = [nbformat.v4.new_code_cell(c.source, metadata=dict(c.metadata)) for c in cells]
    return out


@pytest.mark.notebooks
@pytest.mark.parametrize("path", LESSONS_WITH_EXERCISES, ids=[p.stem for p in LESSONS_WITH_EXERCISES])
def test_solutions_pass_in_a_fresh_kernel(path: Path, tmp_path: Path, monkeypatch, private_progress) -> None:
    """FAST mode, the project's executor: every check of the lesson, fed its folded solution, says passed."""
    from resnet_tutorial.executor import execute_notebook

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    built = tmp_path / path.name
    nbformat.write(solutions_notebook(path), built)
    nb, _ = execute_notebook(built, fast=True)
    ids = [b["id"] for b in your_turns(nbformat.read(path, as_version=4))]
    seen = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", f"{path.name}: {out.get('ename')}: {out.get('evalue')}"
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                assert not re.search(r"\b\w*Warning\b|Traceback", out.get("text", "")), out["text"][:2000]
        call = CHECK_CALL.search(cell.source)
        if call and "exercise-check" in _tags(cell):
            text = "".join(o["data"].get("text/plain", "") for o in cell.outputs if o.get("output_type") == "execute_result")
            assert text.startswith(f"✓ {call.group('id')} passed"), f"{path.name}: {text[:1500]}"
            seen.append(call.group("id"))
    assert seen == ids
    assert all(_entries(private_progress)[i]["passed"] for i in ids), "the kernel recorded the passes"
