"""Lesson 01: weight_grad_norms, chain_rule_product."""

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from . import right, wrong

LAYERS = (nn.Conv2d, nn.Linear)


# --------------------------------------------------------------------------- weight_grad_norms
@right("the lesson's solution: zero_grad, cross_entropy, backward, norms")
def weight_grad_norms(model, x, y):
    model.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    return [float(m.weight.grad.norm()) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


@right("grads set to None by hand, nn.CrossEntropyLoss, torch.linalg.norm")
def weight_grad_norms(model, x, y):
    for p in model.parameters():
        p.grad = None
    nn.CrossEntropyLoss()(model(x), y).backward()
    norms = []
    for m in model.modules():
        if isinstance(m, LAYERS):
            norms.append(torch.linalg.norm(m.weight.grad).item())
    return norms


@right("torch.autograd.grad: no .grad to clear at all")
def weight_grad_norms(model, x, y):
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    loss = F.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, [m.weight for m in layers])
    return [math.sqrt((g ** 2).sum().item()) for g in grads]


@right("weights with more than one dimension (BN's gamma is 1-D)")
def weight_grad_norms(model, x, y):
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    return [p.grad.norm().item() for name, p in model.named_parameters() if name.endswith("weight") and p.dim() > 1]


@wrong("the weights' norms, not their gradients'", mistake="weight_norms")
def weight_grad_norms(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return [m.weight.norm().item() for m in model.modules() if isinstance(m, LAYERS)]


@wrong("no zero_grad: stale gradients are added", mistake="not_zeroed")
def weight_grad_norms(model, x, y):
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    return [m.weight.grad.norm().item() for m in model.modules() if isinstance(m, LAYERS)]


@wrong("every parameter named weight, BatchNorm's gamma too", mistake="with_batchnorm")
def weight_grad_norms(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return [p.grad.norm().item() for name, p in model.named_parameters() if "weight" in name]


@wrong("sum of squares without the square root", mistake="squared")
def weight_grad_norms(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return [(m.weight.grad ** 2).sum().item() for m in model.modules() if isinstance(m, LAYERS)]


@wrong("output layer first", mistake="reversed")
def weight_grad_norms(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    norms = [m.weight.grad.norm().item() for m in model.modules() if isinstance(m, LAYERS)]
    norms.reverse()
    return norms


@wrong("every parameter's gradient, biases included", mistake="all_parameters")
def weight_grad_norms(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return [p.grad.norm().item() for p in model.parameters()]


@wrong("0-d tensors instead of floats", mistake="tensor_for_number")
def weight_grad_norms(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return [m.weight.grad.norm() for m in model.modules() if isinstance(m, LAYERS)]


@wrong("summed loss (reduction='sum')", mistake="sum_loss")
def weight_grad_norms(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y, reduction="sum").backward()
    return [m.weight.grad.norm().item() for m in model.modules() if isinstance(m, LAYERS)]


@wrong("Linear layers only", mistake="linear_only")
def weight_grad_norms(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return [m.weight.grad.norm().item() for m in model.modules() if isinstance(m, nn.Linear)]


@wrong("zero_grad after backward wipes the new gradients", mistake="zeroed_after_backward")
def weight_grad_norms(model, x, y):
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    model.zero_grad()
    return [m.weight.grad.norm().item() for m in model.modules() if isinstance(m, LAYERS)]


# --------------------------------------------------------------------------- chain_rule_product
@right("the lesson's loop over reversed(jacobians)")
def chain_rule_product(jacobians, grad_output):
    g = grad_output
    for J in reversed(jacobians):
        g = g @ J
    return g


@right("functools.reduce")
def chain_rule_product(jacobians, grad_output):
    return functools.reduce(lambda g, J: g @ J, reversed(jacobians), grad_output)


@right("column-vector convention: J.T @ g")
def chain_rule_product(jacobians, grad_output):
    g = grad_output
    for k in range(len(jacobians) - 1, -1, -1):
        g = jacobians[k].T @ g
    return g


@right("the whole product first, then the vector")
def chain_rule_product(jacobians, grad_output):
    product = jacobians[-1]
    for J in reversed(jacobians[:-1]):
        product = product @ J
    return grad_output @ product


@right("torch.linalg.multi_dot with the vector as a 1 x n matrix")
def chain_rule_product(jacobians, grad_output):
    return torch.linalg.multi_dot([grad_output.unsqueeze(0), *jacobians[::-1]]).squeeze(0)


@wrong("the Jacobians in layer order", mistake="wrong_order")
def chain_rule_product(jacobians, grad_output):
    g = grad_output
    for J in jacobians:
        g = g @ J
    return g


@wrong("J @ g instead of g @ J", mistake="transposed")
def chain_rule_product(jacobians, grad_output):
    g = grad_output
    for J in reversed(jacobians):
        g = J @ g
    return g


@wrong("J(0) left out: range stops at 1", mistake="skip_first")
def chain_rule_product(jacobians, grad_output):
    g = grad_output
    for k in range(len(jacobians) - 1, 0, -1):
        g = g @ jacobians[k]
    return g


@wrong("the last Jacobian left out", mistake="skip_last")
def chain_rule_product(jacobians, grad_output):
    g = grad_output
    for J in reversed(jacobians[:-1]):
        g = g @ J
    return g


@wrong("kept the 1 x n row matrix", mistake="row_matrix")
def chain_rule_product(jacobians, grad_output):
    g = grad_output.reshape(1, -1)
    for J in reversed(jacobians):
        g = g @ J
    return g


@wrong("element-wise * instead of a matrix product", mistake="elementwise")
def chain_rule_product(jacobians, grad_output):
    g = grad_output
    for J in reversed(jacobians):
        g = g * J
    return g


@wrong("returned the product of the Jacobians, forgot the vector", mistake="no_grad_output")
def chain_rule_product(jacobians, grad_output):
    product = jacobians[-1]
    for J in reversed(jacobians[:-1]):
        product = product @ J
    return product
