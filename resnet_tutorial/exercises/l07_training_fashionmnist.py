"""Lesson 07's exercises: one training step, an evaluation, and label smoothing's targets."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from .catalogue import Case, Exercise, Mistake, Report, register
from .cases import f32, labels, plain_case


def _bn_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


# --------------------------------------------------------------------------- train_step
def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    """One optimizer step on ``(x, y)`` with the cross-entropy loss; returns the loss as a float."""
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def _loss(logits, y, flags):
    reduction = "sum" if "sum_loss" in flags else "mean"
    if "softmax_first" in flags:
        return F.cross_entropy(F.softmax(logits, dim=1), y, reduction=reduction)
    if "nll_on_logits" in flags:
        return F.nll_loss(logits, y, reduction=reduction)
    if "mse_loss" in flags:
        return F.mse_loss(logits, F.one_hot(y, logits.shape[1]).float(), reduction=reduction)
    return F.cross_entropy(logits, y, reduction=reduction)


def _train_family(model, optimizer, x, y, *, flags=frozenset()):
    if "eval_mode" in flags:
        model.eval()
    elif "stays_eval" not in flags:
        model.train()
    if not {"no_zero_grad", "zero_grad_at_end"} & flags:
        optimizer.zero_grad()
    loss = _loss(model(x), y, flags)
    loss.backward()
    if "no_update" in flags:
        optimizer.zero_grad()
    optimizer.step()
    if "zero_grad_at_end" in flags:
        optimizer.zero_grad()
    return loss if "tensor_loss" in flags else loss.item()


def _train_model(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 3))


def _train_args(seed: int, arrives_in_eval: bool = False):
    model = _train_model(seed)
    if arrives_in_eval:  # an earlier step left gradients behind, then an evaluation switched to eval mode
        F.cross_entropy(model(f32(77, 6, 1, 5, 5)), labels(78, 6)).backward()
        model.eval()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return (model, opt, f32(seed + 5, 6, 1, 5, 5), labels(seed + 6, 6)), {}


def _run_train_step(fn, model, optimizer, x, y, steps: int = 1):
    for _ in range(steps):
        loss = fn(model, optimizer, x, y)
    weights = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    running = torch.cat([m.running_mean.detach().reshape(-1) for m in _bn_modules(model)])
    return Report({"the loss returned": loss, "the weights afterwards": weights,
                   "BatchNorm's running mean afterwards": running})


register(Exercise(
    "train_step", "07", "One training step", train_step,
    cases=[
        Case("one step on a fresh model with BatchNorm (SGD, lr 0.1), a batch of 6", functools.partial(_train_args, 0),
             run=_run_train_step),
        Case("two steps in a row on the same batch (the second loss is checked)", functools.partial(_train_args, 1),
             run=functools.partial(_run_train_step, steps=2)),
        Case("a model that arrives in eval mode (as after an evaluation), with stale gradients in .grad",
             functools.partial(_train_args, 2, True), run=_run_train_step),
    ],
    mistakes=[
        Mistake("no_zero_grad", "optimizer.zero_grad() is missing: backward() *adds* to the gradients already "
                                "stored, so each step also applies the previous steps' gradients. Zero them before "
                                "loss.backward()."),
        Mistake("no_update", "The weights did not change: optimizer.step() found no gradients. It must run after "
                             "loss.backward(), and zero_grad() before the backward pass, not between backward and "
                             "step."),
        Mistake("stays_eval", "The model stayed in eval mode: start with model.train(), so that BatchNorm uses "
                              "the batch's statistics and updates its running ones (after an evaluation the "
                              "model is still in eval mode)."),
        Mistake("tensor_loss", "You returned the loss tensor: return loss.item(), a plain float (a tensor keeps "
                               "the whole graph of the step alive, and piles up memory in a loop)."),
        Mistake("sum_loss", "The loss is summed over the batch (reduction='sum'): its value and its gradients are N "
                            "times those of the mean, so every step is N times too large. Use the default, the "
                            "mean."),
        Mistake("zero_grad_at_end", "zero_grad() runs at the end of the step, so the gradients a model arrives with "
                                    "(left by an earlier backward pass) are applied by this step. Zero them at the "
                                    "start, before loss.backward()."),
        Mistake("eval_mode", "You switched the model to eval mode: training needs model.train(), so that BatchNorm "
                             "normalizes with the batch's statistics and updates its running ones."),
        Mistake("softmax_first", "F.cross_entropy takes the raw logits and applies log-softmax itself: a softmax "
                                 "before it squashes the logits twice and weakens the gradients."),
        Mistake("mse_loss", "You trained with the mean squared error against one-hot targets: a classifier's loss "
                            "is the cross-entropy of its logits, F.cross_entropy(model(x), y)."),
        Mistake("nll_on_logits", "F.nll_loss expects log-probabilities: on raw logits it is not the cross-entropy. "
                                 "Use F.cross_entropy(logits, y), or F.nll_loss(F.log_softmax(logits, dim=1), y)."),
    ],
    hints=["The order: model.train(), optimizer.zero_grad(), loss = F.cross_entropy(model(x), y), loss.backward(), "
           "optimizer.step().",
           "Return loss.item()."],
    family=_train_family,
))


# --------------------------------------------------------------------------- evaluate_accuracy
def evaluate_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``x`` classified as ``y``, in eval mode and without recording gradients."""
    model.eval()
    with torch.no_grad():
        pred = model(x).argmax(dim=1)
    return (pred == y).float().mean().item()


def _evaluate_family(model, x, y, *, flags=frozenset()):
    if "no_eval" not in flags:
        model.eval()
    with torch.set_grad_enabled("no_no_grad" in flags):
        pred = model(x).argmax(dim=0 if "argmax_dim0" in flags else 1)
    right = (pred == y).float()
    if "count" in flags:
        return right.sum().item()
    if "floor_division" in flags:
        return int(right.sum().item()) // len(y)
    if "error_rate" in flags:
        return 1 - right.mean().item()
    return 100 * right.mean().item() if "percent" in flags else right.mean().item()


def _eval_args(seed: int, n: int, flipped: int):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    bn = model[1]
    bn.running_mean.fill_(1.5)
    bn.running_var.fill_(3.0)
    x = f32(seed + 1, n, 4)
    model.eval()
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    y[:flipped] = (y[:flipped] + 1) % 3
    model.train()  # as it is during training
    return (model, x, y), {}


def _run_evaluate(fn, model, x, y):
    recorded: list[bool] = []
    handle = model.register_forward_hook(lambda m, i, o: recorded.append(torch.is_grad_enabled()))
    try:
        accuracy = fn(model, x, y)
    finally:
        handle.remove()
    running = torch.cat([m.running_mean.detach().reshape(-1) for m in _bn_modules(model)])
    return Report({"the accuracy returned": accuracy, "BatchNorm's running mean afterwards": running,
                   "autograd recorded the forward pass": any(recorded)})


register(Exercise(
    "evaluate_accuracy", "07", "Evaluation: eval mode and no_grad", evaluate_accuracy,
    cases=[
        Case("a model with BatchNorm that arrives in training mode, a batch of 8", functools.partial(_eval_args, 0, 8, 2),
             run=_run_evaluate),
        Case("the same kind of model, 5 images all predicted right", functools.partial(_eval_args, 3, 5, 0),
             run=_run_evaluate),
    ],
    mistakes=[
        Mistake("no_eval", "model.eval() is missing: in training mode BatchNorm normalizes with the test batch's own "
                           "statistics (predictions depend on the batch) and overwrites its running statistics "
                           "with test data."),
        Mistake("no_no_grad", "The forward pass ran with autograd on: wrap it in `with torch.no_grad():`, which "
                              "saves the memory and time of recording a graph nobody will backpropagate through."),
        Mistake("count", "You returned the number of right answers, not the fraction: divide by len(y) "
                         "(or take the mean of the 0/1 hits)."),
        Mistake("percent", "You returned a percentage (75.0): the exercise asks for the fraction, a float in [0, 1] "
                           "(0.75). Leave out the factor 100."),
        Mistake("error_rate", "This is the error rate, the fraction classified *wrong*: the accuracy is the fraction "
                              "where pred == y."),
        Mistake("floor_division", "// is floor division: hits // len(y) is 0 unless every answer is right. Use / for "
                                  "the fraction."),
        Mistake("argmax_dim0", "argmax over dim 0 picks, for each class, the image with the highest score: the "
                               "predicted class of each image is the argmax over the classes, dim=1."),
    ],
    hints=["Two switches: model.eval() for BatchNorm (and dropout), torch.no_grad() for autograd.",
           "pred = model(x).argmax(dim=1); accuracy = (pred == y).float().mean().item()."],
    family=_evaluate_family,
))


# --------------------------------------------------------------------------- label_smoothing_targets
def label_smoothing_targets(y: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """Soft targets (N × num_classes, float32) as ``F.cross_entropy(..., label_smoothing=smoothing)`` uses them:
    (1 − ε)·one_hot + ε / K."""
    return F.one_hot(y, num_classes).float() * (1 - smoothing) + smoothing / num_classes


def _smoothing_family(y, num_classes, smoothing, *, flags=frozenset()):
    hot = F.one_hot(y, num_classes).float()
    if "other_classes" in flags:
        return hot * (1 - smoothing) + (1 - hot) * smoothing / (num_classes - 1)
    if "no_share" in flags:
        return hot * (1 - smoothing) + (1 - hot) * smoothing / num_classes
    if "no_uniform" in flags:
        return hot * (1 - smoothing)
    if "no_divide_k" in flags:
        return hot * (1 - smoothing) + smoothing
    return hot * (1 if "unscaled" in flags else 1 - smoothing) + smoothing / num_classes


register(Exercise(
    "label_smoothing_targets", "07", "Label smoothing's targets", label_smoothing_targets,
    cases=[
        plain_case("3 labels, 10 classes, ε = 0.1 (the recipe's setting)", torch.tensor([0, 3, 9]), 10, 0.1),
        plain_case("2 labels, 3 classes, ε = 0.2", torch.tensor([2, 0]), 3, 0.2),
        plain_case("ε = 0: plain one-hot targets", torch.tensor([1]), 4, 0.0),
        plain_case("2 classes, ε = 0.5", torch.tensor([1, 1, 0]), 2, 0.5),
    ],
    mistakes=[
        Mistake("other_classes", "You spread ε over the K − 1 wrong classes only. PyTorch's label smoothing (and "
                                 "the original paper's) mixes with the uniform distribution over *all* K classes: "
                                 "(1 − ε)·one_hot + ε/K, so the true class gets 1 − ε + ε/K."),
        Mistake("no_share", "The true class is missing its share ε/K: every class, the true one included, gets ε/K "
                            "on top of (1 − ε)·one_hot, so each row sums to 1."),
        Mistake("unscaled", "The one-hot part is not scaled by 1 − ε: with one_hot + ε/K the rows sum to 1 + ε. "
                            "Use (1 − ε)·one_hot + ε/K."),
        Mistake("no_divide_k", "Every class got ε on top, so each row sums to 1 + (K − 1)·ε: the uniform part spreads "
                               "ε over the K classes, ε/K each."),
        Mistake("no_uniform", "The uniform part is missing: (1 − ε)·one_hot alone sums to 1 − ε per row. Add ε/K to "
                              "every class."),
    ],
    hints=["F.one_hot(y, num_classes).float() gives the hard targets.",
           "Mix them with the uniform distribution 1/K: weight 1 − ε for the one-hot, ε for the uniform."],
    family=_smoothing_family, keeps_inputs=True,
))
