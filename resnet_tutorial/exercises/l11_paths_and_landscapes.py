"""Lesson 11's exercises: how many paths run through a residual stack, how long they are, and a lesion
(one block's branch deleted) with a forward hook."""

from __future__ import annotations

import functools
import math
from typing import Any

import torch

from .catalogue import Case, Exercise, Mistake, Report, register
from .cases import f32, plain_case


# --------------------------------------------------------------------------- count_residual_paths
def count_residual_paths(n_blocks: int) -> int:
    """Paths from input to output through ``n_blocks`` residual units (each unit: through the branch, or around it)."""
    return 2 ** n_blocks


def _paths_family(n_blocks, *, flags=frozenset()):
    if "lengths" in flags:
        return n_blocks + 1
    if "two_per_block" in flags:
        return 2 * n_blocks
    if "squared_n" in flags:
        return n_blocks ** 2
    if "factorial" in flags:
        return math.factorial(n_blocks)
    return 2 ** n_blocks - 1 if "minus_one" in flags else 2 ** n_blocks


_PATH_CASES = [
    plain_case("no residual unit at all", 0),
    plain_case("one unit", 1),
    plain_case("three units", 3),
    plain_case("ten units", 10),
    plain_case("ResNet-110's 54 units", 54),
    plain_case("ResNet-1202's 600 units (where float arithmetic loses digits)", 600),
]

register(Exercise(
    "count_residual_paths", "11", "Counting the paths through a residual stack", count_residual_paths,
    cases=list(_PATH_CASES),
    mistakes=[
        Mistake("lengths", "n + 1 is the number of different path *lengths* (0 … n branches). The paths themselves "
                           "multiply: each unit doubles them (branch or shortcut), so there are 2ⁿ."),
        Mistake("two_per_block", "The choices multiply, they do not add: two ways through each of n units give "
                                 "2·2·…·2 = 2ⁿ paths, not 2·n."),
        Mistake("minus_one", "One path is missing: the one that takes every shortcut and no branch at all "
                             "(length 0) counts too, so there are 2ⁿ, not 2ⁿ − 1."),
        Mistake("factorial", "n! counts the orders of n units: a path does not reorder the units, it only chooses, "
                             "for each unit, branch or shortcut. Two choices n times: 2ⁿ."),
        Mistake("squared_n", "n² is not the count: two choices per unit, made independently for n units, give 2ⁿ "
                             "paths (2 to the power n)."),
    ],
    hints=["Unroll two units: (1 + f₂)(1 + f₁) has four terms, each one path.",
           "Each unit doubles the number of paths."],
    family=_paths_family,
))


# --------------------------------------------------------------------------- path_length_counts
def path_length_counts(n_blocks: int) -> list[int]:
    """How many of the 2ⁿ paths pass through exactly k residual branches, for k = 0 … n: C(n, k)."""
    return [math.comb(n_blocks, k) for k in range(n_blocks + 1)]


def _float_comb(n: int, k: int) -> float:
    f = math.factorial
    return f(n) / (f(k) * f(n - k))


def _lengths_family(n_blocks, *, flags=frozenset()):
    ks = range(1, n_blocks + 1) if "no_zero_length" in flags else range(n_blocks + (0 if "missing_last" in flags
                                                                                    else 1))
    if "all_ones" in flags:
        return [1 for _ in ks]
    if "permutations" in flags:
        return [math.perm(n_blocks, k) for k in ks]
    if "fractions" in flags:
        return [math.comb(n_blocks, k) / 2 ** n_blocks for k in ks]
    if "float_binomial" in flags:
        return [int(_float_comb(n_blocks, k)) for k in ks]
    if "float_division" in flags:
        return [_float_comb(n_blocks, k) for k in ks]
    return [math.comb(n_blocks, k) for k in ks]


register(Exercise(
    "path_length_counts", "11", "Path lengths: the binomial distribution", path_length_counts,
    cases=list(_PATH_CASES),
    mistakes=[
        Mistake("no_zero_length", "The list must start at length 0: one path takes every shortcut and passes no "
                                  "branch, so there are n + 1 lengths, 0 … n."),
        Mistake("fractions", "These are the *fractions* of paths (C(n, k) / 2ⁿ); the exercise asks for the counts "
                             "C(n, k), as ints (math.comb)."),
        Mistake("all_ones", "There is one way to pick 0 or n branches, but many to pick k of them in between: "
                            "choosing which k of the n units use their branch gives C(n, k) paths."),
        Mistake("float_binomial", "n! / (k!·(n − k)!) with / is computed in floating point, which keeps only about 16 "
                                  "digits: beyond n ≈ 56 the counts come out wrong, and int() cannot bring the lost "
                                  "digits back. Use integer arithmetic: math.comb(n, k), or // instead of /."),
        Mistake("float_division", "n! / (k!·(n − k)!) with / gives floats, which keep only about 16 digits: the "
                                  "counts must be exact ints. Use math.comb(n, k), or // instead of /."),
        Mistake("permutations", "math.perm counts ordered choices: a path is a *set* of k units that use their "
                                "branch, in no particular order, so the count is math.comb(n, k)."),
        Mistake("missing_last", "The last length is missing: k runs from 0 to n inclusive, range(n + 1), so the "
                                "list has n + 1 counts (the path through every branch is the last)."),
    ],
    hints=["A path of length k chooses which k of the n units it passes through their branch.",
           "math.comb(n, k) counts the ways to choose k of n; k runs from 0 to n."],
    family=_lengths_family,
))


# --------------------------------------------------------------------------- delete_block
def delete_block(block: torch.nn.Module) -> Any:
    """Make a residual block compute ReLU(shortcut(x)) (its branch deleted) with a forward hook; return the handle."""
    def hook(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        return torch.relu(module.shortcut(inputs[0]))
    return block.register_forward_hook(hook)


def _delete_family(block, *, flags=frozenset()):
    def hook(module, inputs, output):
        x = inputs[0]
        if "zero" in flags:
            return torch.zeros_like(output)
        kept = x if "input" in flags else module.shortcut(x)
        return kept if "no_relu" in flags else torch.relu(kept)
    handle = block.register_forward_hook(hook)
    return None if "no_handle" in flags else handle


def _run_deletion(shape: tuple[int, ...], seed: int, fn, block):
    x = f32(seed, *shape)
    with torch.no_grad():
        intact = block(x)
        handle = fn(block)
        try:
            deleted = block(x)
        except RuntimeError as err:  # a hook that returns the wrong shape fails inside the next layer
            deleted = f"the deleted block raised {type(err).__name__}"
        undone = hasattr(handle, "remove")
        if undone:
            handle.remove()
        block._forward_hooks.clear()  # leave the case's block as it was, whatever the hook did
        return Report({"the block's output with the branch deleted": deleted,
                       "a handle that undoes it (handle.remove())": undone,
                       "the output after handle.remove()": block(x) if undone else intact})


def _block_case(label: str, seed: int, c_in: int, c_out: int, stride: int, shortcut: str) -> Case:
    def make() -> tuple[tuple, dict]:
        from ..blocks import ResidualBlock

        torch.manual_seed(seed)
        block = ResidualBlock(c_in, c_out, stride, shortcut=shortcut).eval()
        for m in block.modules():  # BN statistics as a trained block has them
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        return (block,), {}
    return Case(label, make, run=functools.partial(_run_deletion, (2, c_in, 6, 6), seed + 1))


register(Exercise(
    "delete_block", "11", "A lesion with a forward hook", delete_block,
    cases=[
        _block_case("a shape-keeping block (identity shortcut), 8 channels, inputs of both signs", 0, 8, 8, 1,
                    "identity"),
        _block_case("a downsampling block with option A's zero-pad shortcut, 8 → 16 channels, stride 2", 1, 8, 16, 2,
                    "zeropad"),
        _block_case("a downsampling block with a 1×1 projection shortcut, 4 → 8 channels, stride 2", 2, 4, 8, 2,
                    "projection"),
    ],
    mistakes=[
        Mistake("zero", "Your hook returns zeros: that deletes the whole block, shortcut included, and cuts every "
                        "path through it. A lesion removes only the branch: return ReLU(shortcut(x))."),
        Mistake("no_relu", "The ReLU after the addition is missing: a deleted block still applies it, "
                           "ReLU(0 + shortcut(x)). Return torch.relu(module.shortcut(inputs[0]))."),
        Mistake("input", "Your hook passes the input x on unchanged. That is right for an identity shortcut, but a "
                         "downsampling block's shortcut subsamples (and pads or projects the channels): use "
                         "module.shortcut(inputs[0])."),
        Mistake("no_handle", "The deletion works, but the function does not return the handle that "
                             "register_forward_hook gives back, so it cannot be undone: return it."),
    ],
    hints=["A forward hook is hook(module, inputs, output); whatever it returns replaces the block's output. "
           "inputs is a tuple: the block's input is inputs[0].",
           "Return torch.relu(module.shortcut(inputs[0])) from the hook, and return "
           "block.register_forward_hook(hook) from your function."],
    family=_delete_family,
))
