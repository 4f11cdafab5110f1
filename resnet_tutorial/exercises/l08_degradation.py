"""Lesson 08's exercises: telling degradation from overfitting, and a deeper ResNet that is exactly as good."""

from __future__ import annotations

import functools

import torch
from torch import nn

from ..blocks import ResidualBlock
from .catalogue import Case, Exercise, Mistake, Report, register
from .cases import f32, plain_case
from .running import Outcome
from .values import type_name


# --------------------------------------------------------------------------- degradation_or_overfitting
def degradation_or_overfitting(train_err_shallow: float, train_err_deep: float, test_err_shallow: float,
                               test_err_deep: float) -> str:
    """"degradation" when the deeper net has the higher *training* error, else "overfitting" when it has the
    higher test error, else "deeper is better"."""
    if train_err_deep > train_err_shallow:
        return "degradation"
    if test_err_deep > test_err_shallow:
        return "overfitting"
    return "deeper is better"


def _degradation_family(train_err_shallow, train_err_deep, test_err_shallow, test_err_deep, *, flags=frozenset()):
    trains_worse, tests_worse = train_err_deep > train_err_shallow, test_err_deep > test_err_shallow
    if "test_only" in flags:
        return "degradation" if tests_worse else "deeper is better"
    if "never_overfitting" in flags:
        return "degradation" if trains_worse or tests_worse else "deeper is better"
    if "overfitting_first" in flags:
        return "overfitting" if tests_worse else "degradation" if trains_worse else "deeper is better"
    if "gap" in flags:
        tests_worse = test_err_deep - train_err_deep > test_err_shallow - train_err_shallow
    answer = "degradation" if trains_worse else "overfitting" if tests_worse else "deeper is better"
    if "swapped" in flags:
        return {"degradation": "overfitting", "overfitting": "degradation"}.get(answer, answer)
    return answer


register(Exercise(
    "degradation_or_overfitting", "08", "Degradation or overfitting?", degradation_or_overfitting,
    cases=[
        plain_case("the cached run, plain-20 vs plain-56: training error 9.4 % → 22.1 %, test error 9.1 % → 20.5 %",
                   0.094, 0.221, 0.091, 0.205),
        plain_case("the deeper net fits the training set better but tests worse", 0.05, 0.01, 0.10, 0.14),
        plain_case("the deeper net is better on both", 0.10, 0.08, 0.12, 0.10),
        plain_case("the deeper net trains worse but happens to test a little better", 0.09, 0.12, 0.10, 0.09),
        plain_case("the deeper net is better on both, though its train-test gap is wider", 0.10, 0.02, 0.15, 0.12),
    ],
    mistakes=[
        Mistake("test_only", "You judged from the test error. Degradation is about the *training* error: a deeper "
                             "net that fits its own training data worse has an optimization problem, whatever its "
                             "test error. Look at the training errors first."),
        Mistake("swapped", "The two words are swapped: overfitting means a *lower* training error with a higher "
                           "test error (the net memorizes); degradation means a *higher* training error."),
        Mistake("overfitting_first", "You checked for overfitting before degradation. When the deeper net is worse on "
                                     "its own training data, that optimization problem comes first, whatever the test "
                                     "error does (the docstring: an optimization problem is diagnosed before a "
                                     "generalization problem)."),
        Mistake("gap", "You compared the train-test gaps. Overfitting here means the deeper net tests *worse* than the "
                       "shallow one although it trains at least as well: compare the two test errors."),
        Mistake("never_overfitting", "Your function never answers \"overfitting\": a deeper net that fits the "
                                     "training data as well or better but tests worse is overfitting, not degrading."),
    ],
    hints=["Compare the training errors first: is the deeper net worse on its own training data?",
           "Only if it is not, look at the test errors."],
    family=_degradation_family,
))


# --------------------------------------------------------------------------- deepen_with_identity_blocks
def deepen_with_identity_blocks(shallow: nn.Sequential, extra: int) -> nn.Sequential:
    """The shallow net's blocks followed by ``extra`` new ``ResidualBlock(c, c)`` that start as the identity, so
    the deeper net computes exactly what the shallow one does; ``shallow`` itself is left as it is."""
    channels = shallow[-1].out_channels
    new = []
    for _ in range(extra):
        block = ResidualBlock(channels, channels)
        block.zero_init_residual()
        new.append(block)
    return nn.Sequential(*shallow, *new)


def _shallow_args(seed: int, blocks: int, channels: int, extra: int):
    torch.manual_seed(seed)
    shallow = nn.Sequential(*[ResidualBlock(channels, channels) for _ in range(blocks)])
    with torch.no_grad():  # "trained": running statistics that are not the initial 0 / 1
        for k in range(3):
            shallow(f32(seed + k, 8, channels, 5, 5) * 2 + 1)
    return (shallow, extra), {}


def _same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


_BLOCKS, _OUTPUT, _WEIGHTS, _CALLER = ("blocks in the deeper network", "its output in eval mode",
                                       "the shallow network's weights unchanged", "the caller's nn.Sequential unchanged")
_FIRST, _RESIDUAL, _DISTINCT = ("the shallow network's blocks come first", "the new blocks are ResidualBlocks",
                                "the new blocks are distinct objects")


def _run_deepen(fn, shallow, extra):
    originals = list(shallow)
    n, before = len(originals), {k: v.clone() for k, v in shallow.state_dict().items()}
    # negative values too: a block in front of the shallow ones would change them (ReLU), one after cannot
    x = f32(123, 3, originals[0].in_channels, 5, 5)
    deep = fn(shallow, extra)
    if not isinstance(deep, nn.Module):
        raise TypeError(f"your function returned {type_name(deep)}; return an nn.Sequential of blocks")
    blocks = list(deep) if isinstance(deep, nn.Sequential) else [deep]  # children() would hide a repeated block
    new = blocks[n:]
    deep.eval()
    with torch.no_grad():
        out = deep(x)
    now = shallow.state_dict()
    return Report({
        _BLOCKS: len(blocks),
        _OUTPUT: out,
        _WEIGHTS: all(torch.equal(now[k], v) for k, v in before.items() if k in now),
        _CALLER: len(shallow) == n and all(a is b for a, b in zip(shallow, originals)),
        _FIRST: len(blocks) >= n and all(b is o or _same_state(b, o) for b, o in zip(blocks, originals)),
        _RESIDUAL: all(isinstance(b, ResidualBlock) for b in new),
        _DISTINCT: len({id(b) for b in new}) == len(new) and not {id(b) for b in new} & {id(o) for o in originals},
    })


def _reports(got: list[Outcome], expected: list[Outcome]) -> list[tuple[Report, Report]]:
    return [(g.value, e.value) for g, e in zip(got, expected)
            if g.error is None and e.error is None and isinstance(g.value, dict)]


def _output_differs(g: Report, e: Report) -> bool:
    a, b = g[_OUTPUT], e[_OUTPUT]
    return not (isinstance(a, torch.Tensor) and a.shape == b.shape and torch.allclose(a, b, atol=1e-5))


def _structure_ok(g: Report, e: Report) -> bool:
    return g[_BLOCKS] == e[_BLOCKS] and all(g[k] for k in (_WEIGHTS, _CALLER, _FIRST, _RESIDUAL, _DISTINCT))


def _detect_random_extra(got, expected) -> bool:
    pairs = _reports(got, expected)
    return bool(pairs) and all(_structure_ok(g, e) for g, e in pairs) and any(
        _output_differs(g, e) and g[_OUTPUT].abs().max() > 0 for g, e in pairs)


def _detect_plain_extra(got, expected) -> bool:
    return any(isinstance(g[_OUTPUT], torch.Tensor) and g[_OUTPUT].abs().max() == 0 and e[_OUTPUT].abs().max() > 0
               for g, e in _reports(got, expected))


def _detect_not_module(got: list[Outcome], expected: list[Outcome]) -> bool:
    return any(isinstance(g.error, TypeError) and str(g.error).startswith("your function returned") for g in got)


def _detect(key: str, counted: bool = False):
    def detect(got: list[Outcome], expected: list[Outcome]) -> bool:
        pairs = _reports(got, expected)
        if counted:
            return any(g[key] != e[key] for g, e in pairs)
        return any(not g[key] for g, _ in pairs)
    return detect


register(Exercise(
    "deepen_with_identity_blocks", "08", "A deeper ResNet that is exactly as good", deepen_with_identity_blocks,
    cases=[
        Case("2 trained blocks at 4 channels, 2 extra blocks", functools.partial(_shallow_args, 0, 2, 4, 2),
             run=_run_deepen),
        Case("1 trained block at 6 channels, 3 extra blocks", functools.partial(_shallow_args, 1, 1, 6, 3),
             run=_run_deepen),
        Case("3 trained blocks, no extra block", functools.partial(_shallow_args, 2, 3, 4, 0), run=_run_deepen),
    ],
    mistakes=[
        Mistake("random_extra", "The deeper network computes something else: its extra blocks keep their random "
                                "initial weights, so their branches are not zero. Call block.zero_init_residual() "
                                "on every new block (it zeroes the last BatchNorm's γ and β, so F(x) = 0).",
                detect=_detect_random_extra),
        Mistake("plain_extra", "The output is all zeros: the extra blocks have no shortcut (shortcut='none'), so "
                               "zeroing their branches zeroes everything. Use ResidualBlock(c, c), whose identity "
                               "shortcut carries x past the zeroed branch.", detect=_detect_plain_extra),
        Mistake("changed_shallow", "Your function changed the shallow network's own weights (did you "
                                   "zero-initialize its blocks too?). Only the new blocks start as the identity; the "
                                   "trained ones keep what they learned.", detect=_detect(_WEIGHTS)),
        Mistake("wrong_count", "The deeper network should have len(shallow) + extra blocks: the shallow net's "
                               "blocks, then exactly `extra` new ones.", detect=_detect(_BLOCKS, counted=True)),
        Mistake("not_residual_blocks", "The new blocks are not residual blocks: the exercise asks for extra "
                                       "ResidualBlock(c, c) (identity shortcut) that *start* as the identity and can "
                                       "learn later; nn.Identity() can never learn anything.",
                detect=_detect(_RESIDUAL)),
        Mistake("in_front", "The new blocks come before the trained ones: append them *after* the shallow net's "
                            "blocks. A new block is the identity only on the non-negative output of a ReLU, which the "
                            "raw input is not.", detect=_detect(_FIRST)),
        Mistake("same_block", "The same block object is used several times ([block] * extra): its weights would be "
                              "shared, so the deeper net has fewer parameters than it seems. Create a new "
                              "ResidualBlock(c, c) for each extra block.", detect=_detect(_DISTINCT)),
        Mistake("not_sequential", "Your function returned a list (or another plain container): wrap the blocks in "
                                  "nn.Sequential(*blocks), a module that runs them one after the other.",
                detect=_detect_not_module),
        Mistake("changed_caller", "Your function appended the new blocks to the caller's own nn.Sequential, so "
                                  "`shallow` itself became deeper. Build a new one: nn.Sequential(*shallow, *new).",
                detect=_detect(_CALLER)),
    ],
    hints=["The shallow net's last block tells you the channel count: shallow[-1].out_channels.",
           "A new ResidualBlock(c, c) is the identity after block.zero_init_residual() (its input, the output of "
           "the shallow net's last ReLU, is non-negative, so the final ReLU changes nothing).",
           "nn.Sequential(*shallow, *new_blocks) chains them in a new network and leaves shallow as it is."],
))


