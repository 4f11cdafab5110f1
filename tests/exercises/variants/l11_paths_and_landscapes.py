"""Lesson 11: count_residual_paths, path_length_counts, delete_block."""

import math

from . import right, wrong


# --------------------------------------------------------------------------- count_residual_paths
@right("the lesson's solution")
def count_residual_paths(n_blocks):
    return 2 ** n_blocks


@right("a bit shift")
def count_residual_paths(n_blocks):
    return 1 << n_blocks


@right("doubling in a loop")
def count_residual_paths(n_blocks):
    paths = 1
    for _ in range(n_blocks):
        paths *= 2
    return paths


@right("the sum of the binomial coefficients")
def count_residual_paths(n_blocks):
    return sum(math.comb(n_blocks, k) for k in range(n_blocks + 1))


@wrong("the number of path lengths", mistake="lengths")
def count_residual_paths(n_blocks):
    return n_blocks + 1


@wrong("two per block, added", mistake="two_per_block")
def count_residual_paths(n_blocks):
    return 2 * n_blocks


@wrong("the all-shortcut path left out", mistake="minus_one")
def count_residual_paths(n_blocks):
    return 2 ** n_blocks - 1


@wrong("a float power", mistake="float_for_int")
def count_residual_paths(n_blocks):
    return 2.0 ** n_blocks


@wrong("n squared", mistake="squared_n")
def count_residual_paths(n_blocks):
    return n_blocks ** 2


# --------------------------------------------------------------------------- path_length_counts
@right("the lesson's solution: math.comb")
def path_length_counts(n_blocks):
    return [math.comb(n_blocks, k) for k in range(n_blocks + 1)]


@right("Pascal's triangle")
def path_length_counts(n_blocks):
    row = [1]
    for _ in range(n_blocks):
        row = [a + b for a, b in zip([0] + row, row + [0])]
    return row


@right("factorials with integer division")
def path_length_counts(n_blocks):
    f = math.factorial
    return [f(n_blocks) // (f(k) * f(n_blocks - k)) for k in range(n_blocks + 1)]


@right("the multiplicative formula, exact")
def path_length_counts(n_blocks):
    counts, c = [], 1
    for k in range(n_blocks + 1):
        counts.append(c)
        c = c * (n_blocks - k) // (k + 1)
    return counts


@wrong("length 0 left out", mistake="no_zero_length")
def path_length_counts(n_blocks):
    return [math.comb(n_blocks, k) for k in range(1, n_blocks + 1)]


@wrong("fractions of the paths", mistake="fractions")
def path_length_counts(n_blocks):
    return [math.comb(n_blocks, k) / 2 ** n_blocks for k in range(n_blocks + 1)]


@wrong("one path per length", mistake="all_ones")
def path_length_counts(n_blocks):
    return [1] * (n_blocks + 1)


@wrong("float factorial formula, rounded back to int", mistake="float_binomial", defect="float binomial")
def path_length_counts(n_blocks):
    f = math.factorial
    return [int(f(n_blocks) / (f(k) * f(n_blocks - k))) for k in range(n_blocks + 1)]


@wrong("float factorial formula", mistake="float_division")
def path_length_counts(n_blocks):
    f = math.factorial
    return [f(n_blocks) / (f(k) * f(n_blocks - k)) for k in range(n_blocks + 1)]


@wrong("k = n left out", mistake="missing_last")
def path_length_counts(n_blocks):
    return [math.comb(n_blocks, k) for k in range(n_blocks)]


# --------------------------------------------------------------------------- delete_block
import torch  # noqa: E402


@right("the lesson's solution: a hook that returns ReLU(shortcut(x))")
def delete_block(block):
    def hook(module, inputs, output):
        return torch.relu(module.shortcut(inputs[0]))
    return block.register_forward_hook(hook)


@right("a lambda and F.relu on the block's own shortcut")
def delete_block(block):
    import torch.nn.functional as F

    return block.register_forward_hook(lambda m, inp, out: F.relu(block.shortcut(inp[0])))


@right("clamp at zero, the shortcut read from the closure")
def delete_block(block):
    shortcut = block.shortcut

    def replace(module, args, output):
        (x,) = args
        return shortcut(x).clamp(min=0)
    return block.register_forward_hook(replace)


@wrong("the whole block zeroed", mistake="zero")
def delete_block(block):
    return block.register_forward_hook(lambda m, inp, out: torch.zeros_like(out))


@wrong("the shortcut without the ReLU", mistake="no_relu")
def delete_block(block):
    return block.register_forward_hook(lambda m, inp, out: m.shortcut(inp[0]))


@wrong("the input passed on as if every shortcut were the identity", mistake="input")
def delete_block(block):
    return block.register_forward_hook(lambda m, inp, out: torch.relu(inp[0]))


@wrong("the handle not returned", mistake="no_handle")
def delete_block(block):
    block.register_forward_hook(lambda m, inp, out: torch.relu(m.shortcut(inp[0])))


@wrong("the branch's output returned instead (the shortcut deleted)")
def delete_block(block):
    return block.register_forward_hook(lambda m, inp, out: torch.relu(m.bn2(m.conv2(m.act1(m.bn1(m.conv1(inp[0])))))))
