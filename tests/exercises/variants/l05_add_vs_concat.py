"""Lesson 05: merge_output_shape, dense_block_channels."""

import itertools

import torch

from . import right, wrong


# --------------------------------------------------------------------------- merge_output_shape
@right("the lesson's solution")
def merge_output_shape(f_shape, s_shape, merge):
    f, s = tuple(f_shape), tuple(s_shape)
    if merge == "add":
        if f != s:
            raise ValueError(f"x + y needs equal shapes, got {f} and {s}")
        return f
    if merge == "cat":
        if f[0] != s[0] or f[2:] != s[2:]:
            raise ValueError(f"cat along channels needs equal N, H and W, got {f} and {s}")
        return (f[0], f[1] + s[1], *f[2:])
    raise ValueError(f"merge must be 'add' or 'cat', got {merge!r}")


@right("unpacking N, C, H, W")
def merge_output_shape(f_shape, s_shape, merge):
    n1, c1, h1, w1 = f_shape
    n2, c2, h2, w2 = s_shape
    if merge == "add":
        if (n1, c1, h1, w1) != (n2, c2, h2, w2):
            raise ValueError("add needs the same shape")
        return (n1, c1, h1, w1)
    if (n1, h1, w1) != (n2, h2, w2):
        raise ValueError("cat needs the same N, H, W")
    return (n1, c1 + c2, h1, w1)


@right("ask torch, but refuse broadcasting")
def merge_output_shape(f_shape, s_shape, merge):
    a, b = torch.empty(f_shape), torch.empty(s_shape)
    try:
        if merge == "add":
            if a.shape != b.shape:
                raise ValueError("shapes differ")
            return tuple((a + b).shape)
        return tuple(torch.cat([a, b], dim=1).shape)
    except RuntimeError as err:
        raise ValueError(str(err)) from None


@wrong("concatenated along the batch", mistake="cat_batch")
def merge_output_shape(f_shape, s_shape, merge):
    if merge == "add":
        if tuple(f_shape) != tuple(s_shape):
            raise ValueError("shapes differ")
        return tuple(f_shape)
    if tuple(f_shape[1:]) != tuple(s_shape[1:]):
        raise ValueError("shapes differ")
    return (f_shape[0] + s_shape[0], *f_shape[1:])


@wrong("add sums the channels too", mistake="add_sums")
def merge_output_shape(f_shape, s_shape, merge):
    n, c, h, w = f_shape
    if merge == "add" and tuple(f_shape) != tuple(s_shape):
        raise ValueError("shapes differ")
    if merge == "cat" and (n, h, w) != (s_shape[0], s_shape[2], s_shape[3]):
        raise ValueError("shapes differ")
    return (n, c + s_shape[1], h, w)


@wrong("add never refuses", mistake="add_no_check")
def merge_output_shape(f_shape, s_shape, merge):
    if merge == "add":
        return tuple(f_shape)
    if f_shape[0] != s_shape[0] or tuple(f_shape[2:]) != tuple(s_shape[2:]):
        raise ValueError("shapes differ")
    return (f_shape[0], f_shape[1] + s_shape[1], *f_shape[2:])


@wrong("cat never refuses", mistake="cat_no_check")
def merge_output_shape(f_shape, s_shape, merge):
    if merge == "add":
        if tuple(f_shape) != tuple(s_shape):
            raise ValueError("shapes differ")
        return tuple(f_shape)
    return (f_shape[0], f_shape[1] + s_shape[1], *f_shape[2:])


@wrong("torch's broadcasting decides the add", mistake="broadcast_add", defect="broadcasting add")
def merge_output_shape(f_shape, s_shape, merge):
    if merge == "add":
        try:
            return tuple(torch.broadcast_shapes(tuple(f_shape), tuple(s_shape)))
        except RuntimeError as err:
            raise ValueError(str(err)) from None
    if f_shape[0] != s_shape[0] or tuple(f_shape[2:]) != tuple(s_shape[2:]):
        raise ValueError("shapes differ")
    return (f_shape[0], f_shape[1] + s_shape[1], *f_shape[2:])


@wrong("cat checks H and W but not the batch", mistake="cat_no_batch_check", defect="cat without a batch check")
def merge_output_shape(f_shape, s_shape, merge):
    if merge == "add":
        if tuple(f_shape) != tuple(s_shape):
            raise ValueError("shapes differ")
        return tuple(f_shape)
    if tuple(f_shape[2:]) != tuple(s_shape[2:]):
        raise ValueError("height and width differ")
    return (f_shape[0], f_shape[1] + s_shape[1], *f_shape[2:])


@wrong("cat also wants equal channels", mistake="cat_same_channels")
def merge_output_shape(f_shape, s_shape, merge):
    if tuple(f_shape) != tuple(s_shape):
        raise ValueError("shapes differ")
    if merge == "add":
        return tuple(f_shape)
    return (f_shape[0], 2 * f_shape[1], *f_shape[2:])


@wrong("assert instead of raise ValueError", mistake="wrong_exception")
def merge_output_shape(f_shape, s_shape, merge):
    if merge == "add":
        assert tuple(f_shape) == tuple(s_shape), "shapes differ"
        return tuple(f_shape)
    assert f_shape[0] == s_shape[0] and tuple(f_shape[2:]) == tuple(s_shape[2:]), "shapes differ"
    return (f_shape[0], f_shape[1] + s_shape[1], *f_shape[2:])


@wrong("torch's errors passed on (RuntimeError, not ValueError)", mistake="wrong_exception")
def merge_output_shape(f_shape, s_shape, merge):
    a, b = torch.empty(f_shape), torch.empty(s_shape)
    if merge == "add":
        if a.shape != b.shape:
            raise RuntimeError("shapes differ")
        return tuple(a.shape)
    return tuple(torch.cat([a, b], dim=1).shape)


# --------------------------------------------------------------------------- dense_block_channels
@right("the lesson's solution: a list comprehension")
def dense_block_channels(in_channels, growth_rate, num_layers):
    return [in_channels + l * growth_rate for l in range(num_layers + 1)]


@right("a loop that appends")
def dense_block_channels(in_channels, growth_rate, num_layers):
    channels = [in_channels]
    for _ in range(num_layers):
        channels.append(channels[-1] + growth_rate)
    return channels


@right("itertools.accumulate")
def dense_block_channels(in_channels, growth_rate, num_layers):
    return list(itertools.accumulate([in_channels] + [growth_rate] * num_layers))


@right("range with a step")
def dense_block_channels(in_channels, growth_rate, num_layers):
    return list(range(in_channels, in_channels + (num_layers + 1) * growth_rate, growth_rate))


@wrong("the block's output missing", mistake="no_output")
def dense_block_channels(in_channels, growth_rate, num_layers):
    return [in_channels + l * growth_rate for l in range(num_layers)]


@wrong("starts one layer late", mistake="outputs_only")
def dense_block_channels(in_channels, growth_rate, num_layers):
    return [in_channels + l * growth_rate for l in range(1, num_layers + 1)]


@wrong("doubling every layer", mistake="doubling")
def dense_block_channels(in_channels, growth_rate, num_layers):
    return [in_channels * 2 ** l for l in range(num_layers + 1)]


@wrong("the block's input forgotten", mistake="growth_only")
def dense_block_channels(in_channels, growth_rate, num_layers):
    return [l * growth_rate for l in range(num_layers + 1)]


@wrong("one number too many", mistake="one_too_many")
def dense_block_channels(in_channels, growth_rate, num_layers):
    return [in_channels + l * growth_rate for l in range(num_layers + 2)]


@wrong("the new channels of each layer only", mistake="new_channels_only")
def dense_block_channels(in_channels, growth_rate, num_layers):
    return [growth_rate] * num_layers + [in_channels + num_layers * growth_rate]


@wrong("only the channels leaving the block", mistake="total_only")
def dense_block_channels(in_channels, growth_rate, num_layers):
    return in_channels + num_layers * growth_rate
