"""Lesson 11: count_residual_paths, path_length_counts."""

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
