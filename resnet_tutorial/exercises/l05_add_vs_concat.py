"""Lesson 05's exercises: the shapes of add and cat merges, and DenseNet's channel bookkeeping."""

from __future__ import annotations

from typing import Sequence

from .catalogue import Exercise, Mistake, register
from .cases import plain_case


# --------------------------------------------------------------------------- merge_output_shape
def merge_output_shape(f_shape: Sequence[int], s_shape: Sequence[int], merge: str) -> tuple[int, ...]:
    """Shape after merging the branch output (``f_shape``) with the shortcut (``s_shape``): "add" or "cat"
    along the channels; a ValueError when the merge is impossible (a residual add needs identical shapes)."""
    f, s = tuple(f_shape), tuple(s_shape)
    if merge == "add":
        if f != s:
            raise ValueError(f"cannot add shapes {f} and {s}: they must be equal")
        return f
    if merge == "cat":
        if len(f) != len(s) or f[0] != s[0] or f[2:] != s[2:]:
            raise ValueError(f"cannot concatenate {f} and {s} along channels: batch and spatial sizes must match")
        return (f[0], f[1] + s[1], *f[2:])
    raise ValueError(f"merge must be 'add' or 'cat', got {merge!r}")


def _broadcast(f: tuple, s: tuple) -> tuple:
    if len(f) != len(s) or any(a != b and 1 not in (a, b) for a, b in zip(f, s)):
        raise ValueError("shapes do not broadcast")
    return tuple(max(a, b) for a, b in zip(f, s))


def _merge_family(f_shape, s_shape, merge, *, flags=frozenset()):
    f, s = tuple(f_shape), tuple(s_shape)
    if merge == "add":
        if "broadcast_add" in flags:
            return _broadcast(f, s)
        if "add_channels_only" in flags:
            if f[1] != s[1]:
                raise ValueError("channels differ")
            return f
        if f != s and "add_no_check" not in flags:
            raise ValueError("shapes differ")
        return (f[0], f[1] + s[1], *f[2:]) if "add_sums" in flags else f
    dim = 0 if "cat_batch" in flags else 1
    if "cat_same_channels" in flags and f != s:
        raise ValueError("shapes differ")
    checked = [i for i in range(len(f)) if i != dim and not (i == 0 and "cat_no_batch_check" in flags)]
    if "cat_no_check" not in flags and any(f[i] != s[i] for i in checked):
        raise ValueError("shapes differ")
    out = list(f)
    out[dim] = f[dim] + s[dim]
    return tuple(out)


register(Exercise(
    "merge_output_shape", "05", "Add versus concatenate: output shapes", merge_output_shape,
    cases=[
        plain_case("adding two 1×64×28×28 tensors", (1, 64, 28, 28), (1, 64, 28, 28), "add"),
        plain_case("concatenating the same two", (1, 64, 28, 28), (1, 64, 28, 28), "cat"),
        plain_case("concatenating 64 and 32 channels of 14×14", (2, 64, 14, 14), (2, 32, 14, 14), "cat"),
        plain_case("adding 64 and 32 channels (must be refused)", (2, 64, 14, 14), (2, 32, 14, 14), "add"),
        plain_case("concatenating 8×8 and 7×7 maps (must be refused)", (2, 16, 8, 8), (2, 16, 7, 7), "cat"),
        plain_case("adding 1 channel to 64 (broadcasting would allow it; a residual add must refuse it)",
                   (1, 1, 28, 28), (1, 64, 28, 28), "add"),
        plain_case("concatenating batches of 2 and 3 (must be refused)", (2, 16, 8, 8), (3, 16, 8, 8), "cat"),
        plain_case("adding 8×8 and 7×7 maps of 16 channels each (must be refused)", (2, 16, 8, 8), (2, 16, 7, 7), "add"),
    ],
    mistakes=[
        Mistake("cat_batch", "You concatenated along the batch dimension (dim 0). A merge stacks channels: "
                             "torch.cat([f, s], dim=1), so the batch size stays and the channel counts add up."),
        Mistake("add_sums", "Addition does not add channels: x + y is element-wise and keeps the shape "
                            "(C channels in, C channels out). Only concatenation gives C₁ + C₂."),
        Mistake("add_no_check", "An add with different shapes must be refused (raise ValueError): element-wise "
                                "addition needs identical shapes."),
        Mistake("cat_no_check", "Concatenating along channels needs the same batch size and the same height and "
                                "width: refuse other shapes with a ValueError."),
        Mistake("broadcast_add", "You let broadcasting decide the add: (1, 1, 28, 28) + (1, 64, 28, 28) runs in "
                                 "PyTorch, but a residual add F(x) + s(x) needs identical shapes (a 1-channel shortcut "
                                 "copied into 64 channels is not an identity). Refuse any difference."),
        Mistake("add_channels_only", "Your add compares the channel counts only: x + y needs *all* sizes equal, "
                                     "batch, channels, height and width."),
        Mistake("cat_no_batch_check", "Your cat checks height and width but not the batch size: torch.cat along dim 1 "
                                      "needs the same N as well."),
        Mistake("cat_same_channels", "A cat along channels does not need equal channel counts: only N, H and W must "
                                     "match, and the channels add up (64 + 32 = 96)."),
    ],
    hints=["add: both shapes must be identical, and the result has that same shape.",
           "cat along dim 1: N, H and W must agree; the channel counts add up.",
           "raise ValueError(...) when the shapes do not allow the merge."],
    family=_merge_family,
))


# --------------------------------------------------------------------------- dense_block_channels
def dense_block_channels(in_channels: int, growth_rate: int, num_layers: int) -> list[int]:
    """Channels entering each of a dense block's layers, then the channels leaving the block
    (``num_layers + 1`` numbers)."""
    return [in_channels + i * growth_rate for i in range(num_layers + 1)]


def _dense_family(in_channels, growth_rate, num_layers, *, flags=frozenset()):
    if "total_only" in flags:
        return in_channels + num_layers * growth_rate
    if "new_channels_only" in flags:
        return [growth_rate] * num_layers + [in_channels + num_layers * growth_rate]
    if "outputs_only" in flags:
        ks = range(1, num_layers + 1)
    else:
        ks = range(num_layers + (0 if "no_output" in flags else 2 if "one_too_many" in flags else 1))
    if "doubling" in flags:
        return [in_channels * 2 ** i for i in ks]
    base = 0 if "growth_only" in flags else in_channels
    return [base + i * growth_rate for i in ks]


register(Exercise(
    "dense_block_channels", "05", "DenseNet's channel bookkeeping", dense_block_channels,
    cases=[
        plain_case("DenseNet-121's first block: 64 channels in, growth rate 32, 6 layers", 64, 32, 6),
        plain_case("its second block: 128 in, growth 32, 12 layers", 128, 32, 12),
        plain_case("one layer: 3 in, growth 4", 3, 4, 1),
        plain_case("no layers at all: 16 in", 16, 12, 0),
    ],
    mistakes=[
        Mistake("no_output", "The block's output is missing at the end: after the last layer the block emits "
                             "in_channels + num_layers·growth_rate channels, so the list has num_layers + 1 numbers."),
        Mistake("outputs_only", "The first number must be what enters the first layer (in_channels itself); your "
                                "list starts one layer late."),
        Mistake("doubling", "The channels double at every layer in your answer. A dense layer adds only "
                            "growth_rate new channels to what it received, so the count grows linearly: "
                            "c₀ + ℓ·k."),
        Mistake("growth_only", "The block's input channels are missing: every layer receives the block's input "
                               "*plus* all new channels so far, c₀ + ℓ·k."),
        Mistake("one_too_many", "One number too many: the list has num_layers + 1 numbers, for ℓ = 0 … num_layers "
                                "(range(num_layers + 1))."),
        Mistake("new_channels_only", "These are the channels each layer *adds* (growth_rate); the exercise asks for "
                                     "the channels each layer *receives*, c₀ + ℓ·k, which grow by k per layer."),
        Mistake("total_only", "You returned only the block's output channels, one int: return a list with the channels "
                              "entering every layer, then that output (num_layers + 1 numbers)."),
    ],
    hints=["Layer ℓ (counting from 0) receives the block's input and the k new channels of each earlier layer.",
           "That is in_channels + ℓ · growth_rate, for ℓ = 0 … num_layers (the last one is the block's output)."],
    family=_dense_family,
))
