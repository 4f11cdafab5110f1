"""Lesson 07: train_step, evaluate_accuracy, label_smoothing_targets."""

import torch
import torch.nn.functional as F
from torch import nn

from . import right, wrong


# --------------------------------------------------------------------------- train_step
@right("the lesson's solution")
def train_step(model, optimizer, x, y):
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


@right("nn.CrossEntropyLoss, set_to_none, float(loss)")
def train_step(model, optimizer, x, y):
    model.train(True)
    optimizer.zero_grad(set_to_none=True)
    criterion = nn.CrossEntropyLoss()
    loss = criterion(model(x), y)
    loss.backward()
    optimizer.step()
    return float(loss)


@right("model.zero_grad() instead of the optimizer's")
def train_step(model, optimizer, x, y):
    model.train()
    model.zero_grad()
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    optimizer.step()
    return loss.detach().item()


@right("log_softmax + nll_loss")
def train_step(model, optimizer, x, y):
    model.train()
    optimizer.zero_grad()
    loss = F.nll_loss(F.log_softmax(model(x), dim=1), y)
    loss.backward()
    optimizer.step()
    return loss.item()


@wrong("no zero_grad", mistake="no_zero_grad")
def train_step(model, optimizer, x, y):
    model.train()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


@wrong("zero_grad between backward and step", mistake="no_update")
def train_step(model, optimizer, x, y):
    model.train()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()


@wrong("the mode switch forgotten", mistake="stays_eval")
def train_step(model, optimizer, x, y):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


@wrong("returns the loss tensor", mistake="tensor_loss")
def train_step(model, optimizer, x, y):
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss


@wrong("reduction='sum'", mistake="sum_loss")
def train_step(model, optimizer, x, y):
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y, reduction="sum")
    loss.backward()
    optimizer.step()
    return loss.item()


@wrong("zero_grad at the end of the step: the stale gradients of the first step count", mistake="zero_grad_at_end")
def train_step(model, optimizer, x, y):
    model.train()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


@wrong("model.eval() instead of model.train()", mistake="eval_mode")
def train_step(model, optimizer, x, y):
    model.eval()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


@wrong("softmax before cross_entropy", mistake="softmax_first")
def train_step(model, optimizer, x, y):
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(F.softmax(model(x), dim=1), y)
    loss.backward()
    optimizer.step()
    return loss.item()


@wrong("nll_loss on raw logits", mistake="nll_on_logits")
def train_step(model, optimizer, x, y):
    model.train()
    optimizer.zero_grad()
    loss = F.nll_loss(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


@wrong("step before backward", mistake="no_update")
def train_step(model, optimizer, x, y):
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    optimizer.step()
    loss.backward()
    return loss.item()


# --------------------------------------------------------------------------- evaluate_accuracy
@right("the lesson's solution")
def evaluate_accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        pred = model(x).argmax(dim=1)
    return (pred == y).float().mean().item()


@right("inference_mode, hits / len(y)")
def evaluate_accuracy(model, x, y):
    model.train(False)
    with torch.inference_mode():
        hits = model(x).max(dim=1).indices.eq(y)
    return hits.sum().item() / len(y)


@right("torch.no_grad as a decorator")
@torch.no_grad()
def evaluate_accuracy(model, x, y):
    model.eval()
    logits = model(x)
    return float((logits.argmax(1) == y).sum()) / y.numel()


@right("puts the model back in the mode it came in")
def evaluate_accuracy(model, x, y):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        correct = (torch.softmax(model(x), dim=1).argmax(dim=1) == y).sum().item()
    model.train(was_training)
    return correct / len(y)


@wrong("model.eval() forgotten", mistake="no_eval")
def evaluate_accuracy(model, x, y):
    with torch.no_grad():
        pred = model(x).argmax(dim=1)
    return (pred == y).float().mean().item()


@wrong("torch.no_grad() forgotten", mistake="no_no_grad")
def evaluate_accuracy(model, x, y):
    model.eval()
    pred = model(x).argmax(dim=1)
    return (pred == y).float().mean().item()


@wrong("the number of hits", mistake="count")
def evaluate_accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).sum().item()


@wrong("in percent", mistake="percent")
def evaluate_accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        pred = model(x).argmax(1)
    return 100 * (pred == y).float().mean().item()


@wrong("returns a 0-d tensor", mistake="tensor_for_number")
def evaluate_accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        pred = model(x).argmax(1)
    return (pred == y).float().mean()


@wrong("floor division of hits by the batch size", mistake="floor_division")
def evaluate_accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        pred = model(x).argmax(1)
    return (pred == y).sum().item() // len(y)


@wrong("argmax over the batch dimension", mistake="argmax_dim0")
def evaluate_accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        pred = model(x).argmax(0)
    return (pred == y).float().mean().item()


# --------------------------------------------------------------------------- label_smoothing_targets
@right("the lesson's solution")
def label_smoothing_targets(y, num_classes, smoothing):
    one_hot = F.one_hot(y, num_classes).float()
    return (1 - smoothing) * one_hot + smoothing / num_classes


@right("fill with eps / K, then add 1 - eps at the labels")
def label_smoothing_targets(y, num_classes, smoothing):
    t = torch.full((len(y), num_classes), smoothing / num_classes)
    t[torch.arange(len(y)), y] += 1 - smoothing
    return t


@right("scatter_")
def label_smoothing_targets(y, num_classes, smoothing):
    t = torch.full((y.shape[0], num_classes), smoothing / num_classes, dtype=torch.float32)
    return t.scatter_(1, y.unsqueeze(1), 1 - smoothing + smoothing / num_classes)


@right("int64 one-hot times floats promotes to float32")
def label_smoothing_targets(y, num_classes, smoothing):
    return F.one_hot(y, num_classes) * (1 - smoothing) + smoothing / num_classes


@wrong("eps spread over the K - 1 wrong classes", mistake="other_classes")
def label_smoothing_targets(y, num_classes, smoothing):
    t = torch.full((len(y), num_classes), smoothing / (num_classes - 1))
    t[torch.arange(len(y)), y] = 1 - smoothing
    return t


@wrong("the true class gets 1 - eps, the others eps / K", mistake="no_share")
def label_smoothing_targets(y, num_classes, smoothing):
    t = torch.full((len(y), num_classes), smoothing / num_classes)
    t[torch.arange(len(y)), y] = 1 - smoothing
    return t


@wrong("one_hot + eps / K", mistake="unscaled")
def label_smoothing_targets(y, num_classes, smoothing):
    return F.one_hot(y, num_classes).float() + smoothing / num_classes


@wrong("(1 - eps) * one_hot only: the uniform part forgotten", mistake="no_uniform")
def label_smoothing_targets(y, num_classes, smoothing):
    return (1 - smoothing) * F.one_hot(y, num_classes).float()


@wrong("float64 targets", mistake="wrong_dtype")
def label_smoothing_targets(y, num_classes, smoothing):
    return (1 - smoothing) * F.one_hot(y, num_classes).double() + smoothing / num_classes
