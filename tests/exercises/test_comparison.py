"""The exercise checker's comparison (resnet_tutorial/exercises/comparison.py), called directly.

The engine tests (test_engine.py) check comparisons through whole exercises, which is slow
and names only a few of the messages; here every kind of difference is one fast case whose
exact text (what the learner reads) was worked out by hand from the two values.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from resnet_tutorial.exercises.catalogue import Report
from resnet_tutorial.exercises.comparison import Diff, compare, compare_outcomes
from resnet_tutorial.exercises.running import Outcome

T = torch.tensor
RTOL, ATOL = 1e-5, 1e-8


def text(got, exp, where="", lenient=False, rtol=RTOL, atol=ATOL):
    d = compare(got, exp, rtol, atol, where, lenient)
    return None if d is None else d.text()


# --------------------------------------------------------------------------- equal values
@pytest.mark.parametrize("got, exp", [
    (T([1.0, 2.0]), T([1.0, 2.0])),
    (T([1.0, 2.0]), T([1.0 + 1e-7, 2.0])),          # inside rtol 1e-5
    (T([1, 2]), T([1, 2])),                          # integer tensors: exactly equal
    (T([float("nan"), 1.0]), T([float("nan"), 1.0])),  # nan where nan is expected
    (T(3.0), T(3.0)),
    (2, 2),
    (True, True),
    (False, False),
    (0.5, 0.5 + 1e-7),
    (float("nan"), float("nan")),
    ("relu", "relu"),
    ([1, 2.0, "a"], [1, 2.0, "a"]),
    ((T([1.0]), 3), (T([1.0]), 3)),
    ({"a": 1, "b": [2.0]}, {"a": 1, "b": [2.0]}),
    (None, None),
    (torch.float32, torch.float32),                  # anything else: ==
])
def test_equal_values_have_no_difference(got, exp):
    assert compare(got, exp, RTOL, ATOL) is None


def test_tolerances_are_the_ones_given():
    # |1.1 - 1.0| = 0.1: outside the default tolerance, inside atol=0.2, inside rtol=0.2 (0.2 * 1.0)
    assert text(1.1, 1.0) == "1.1 instead of 1.0"
    assert text(1.1, 1.0, atol=0.2) is None
    assert text(1.1, 1.0, rtol=0.2, atol=0.0) is None
    assert text(T([1.1]), T([1.0])) is not None
    assert text(T([1.1]), T([1.0]), atol=0.2) is None
    assert text(T([1.1]), T([1.0]), rtol=0.2, atol=0.0) is None
    # rtol is relative to the expected value: |1.0 - 1.1| = 0.1 > 0.09 * 1.0, but <= 0.1 * 1.1
    assert text(T([1.0]), T([1.1]), rtol=0.095, atol=0.0) is None
    assert text(T([1.1]), T([1.0]), rtol=0.095, atol=0.0) is not None


# --------------------------------------------------------------------------- tensors
@pytest.mark.parametrize("got, exp, message", [
    (3.0, T([3.0]), "a float where a tensor was expected"),
    ([1.0], T([1.0]), "a list where a tensor was expected"),
    (T([1.0, 2.0]), T([1.0, 2.0, 3.0]), "shape 2 instead of 3"),
    (T([[1.0, 2.0]]), T([1.0, 2.0]), "shape 1×2 instead of 2"),
    (T(1.0), T([1.0]), "shape scalar instead of 1"),
    (T([1.0], dtype=torch.float64), T([1.0]), "dtype float64 instead of float32"),
    (T([1, 2]), T([1.0, 2.0]), "dtype int64 instead of float32"),
    (T([1, 2, 7]), T([1, 2, 3]), "at index (2,): 7 instead of 3"),
    (T([[1, 2], [5, 4]]), T([[1, 2], [3, 4]]), "at index (1, 0): 5 instead of 3"),
    (T([True, False]), T([True, True]), "at index (1,): False instead of True"),
    # two values differ; the largest difference (|4 - 9| = 5) is reported, not the first
    (T([1.0, 9.0, 3.5]), T([1.5, 4.0, 3.5]), "2 of 3 values differ; the largest difference is at index (1,): "
                                              "9.0 instead of 4.0"),
    (T([[0.0, 0.0], [0.0, 2.0]]), T([[0.0, 0.0], [0.0, 1.0]]),
     "1 of 4 values differ; the largest difference is at index (1, 1): 2.0 instead of 1.0"),
    # a NaN where a number is expected counts as the largest difference (inf), whatever the others
    (T([100.0, float("nan")]), T([1.0, 1.0]), "2 of 2 values differ; the largest difference is at index (1,): "
                                               "nan instead of 1.0"),
    (T(2.5), T(2.0), "1 of 1 values differ; the largest difference is at index (): 2.5 instead of 2.0"),
])
def test_tensor_differences_are_named(got, exp, message):
    assert text(got, exp) == message


def test_tensor_where_is_the_prefix():
    assert text(T([1.0]), T([2.0]), where="output") == (
        "output: 1 of 1 values differ; the largest difference is at index (0,): 1.0 instead of 2.0")


def test_tensors_with_gradients_compare_by_value():
    w = torch.ones(2, requires_grad=True)
    assert compare(w * 2, T([2.0, 2.0]), RTOL, ATOL) is None
    assert text(w * 3, T([2.0, 2.0])).startswith("2 of 2 values differ")


def test_lenient_forgives_the_dtype_and_compares_at_the_learners_precision():
    exp = T([1 / 3], dtype=torch.float64)
    got = exp.float()                       # the learner kept float32: 1/3 rounded to 24 bits
    assert text(got, exp) == "dtype float32 instead of float64"
    # at float32 the difference (about 1e-8) is inside rtol=1e-9 once the reference is rounded too
    assert compare(got, exp, 1e-9, 0.0, lenient=True) is None
    assert compare(got.double(), exp, 1e-9, 0.0) is not None  # strictly, float32's 1/3 is not 1/3
    # an integer answer for a float reference: compared as floats
    assert compare(T([1, 2]), T([1.0, 2.0]), RTOL, ATOL, lenient=True) is None
    assert text(T([1, 3]), T([1.0, 2.0]), lenient=True) == (
        "1 of 2 values differ; the largest difference is at index (1,): 3.0 instead of 2.0")
    # a float answer for an integer reference: cast to int (1.9 -> 1), then compared exactly
    assert compare(T([1.9, 2.0]), T([1, 2]), RTOL, ATOL, lenient=True) is None
    assert text(T([2.0, 2.0]), T([1, 2]), lenient=True) == "at index (0,): 2 instead of 1"


def test_lenient_still_checks_shapes():
    assert text(T([1.0, 2.0]), T([1.0]), lenient=True) == "shape 2 instead of 1"


# --------------------------------------------------------------------------- numbers
@pytest.mark.parametrize("got, exp, message", [
    (3, 2, "3 instead of 2"),
    (2.0, 2, "2.0, a float, where the int 2 was expected"),
    (2.5, 2, "a float where an int was expected"),
    (True, 1, "a bool where an int was expected"),
    (T(2), 2, "a 0-d tensor where an int was expected"),
    ("2", 2, "a str where an int was expected"),
    (0.25, 0.5, "0.25 instead of 0.5"),
    (3, 0.5, "3 instead of 0.5"),
    (float("nan"), 0.5, "nan instead of 0.5"),
    (0.5, float("nan"), "0.5 instead of nan"),
    (T(0.5), 0.5, "a 0-d tensor where a float was expected"),
    (True, 1.0, "a bool where a float was expected"),
    (None, 1.0, "None where a float was expected"),
    (1, True, "1 instead of True"),
    (False, True, "False instead of True"),
    (None, False, "None instead of False"),
])
def test_number_differences_are_named(got, exp, message):
    assert text(got, exp) == message


def test_an_int_may_stand_for_a_float():
    assert compare(2, 2.0, RTOL, ATOL) is None
    assert compare(torch.tensor(2).item(), 2.0, RTOL, ATOL) is None


@pytest.mark.parametrize("got, exp, message", [
    (T(2.0), 2.0, None),                 # a 0-d tensor is read as its number
    (T(2.0), 2, None),
    (T(3.0), 2, "3.0 instead of 2"),
    (2.0, 2, None),                      # a float for an int
    (2.5, 2, "2.5 instead of 2"),
    (T([2.0]), 2.0, "a tensor where a float was expected"),  # only 0-d tensors are read as numbers
    (1.0, True, "1.0 instead of True"),  # a bool is not an int here
])
def test_lenient_numbers(got, exp, message):
    assert text(got, exp, lenient=True) == message


# --------------------------------------------------------------------------- containers
@pytest.mark.parametrize("got, exp, message", [
    ((1, 2), [1, 2], None),                                    # a tuple for a list is fine
    ({1, 2}, [1, 2], "a set where a list was expected"),
    (T([1, 2]), (1, 2), "a tensor where a tuple was expected"),
    ([1, 2, 3], [1, 2], "3 items instead of 2"),
    ([1, 5], [1, 2], "item 1: 5 instead of 2"),
    ([[1, 2], [3, 4]], [[1, 2], [3, 0]], "item 1 item 1: 4 instead of 0"),
    ([{"a": 1}], [{"a": 2}], "item 0['a']: 1 instead of 2"),
    ([1, "b"], [1, "a"], "item 1: 'b' instead of 'a'"),
    ([1, None], [1, None], None),
    ([1, 3], [1, None], "item 1: 3 instead of None"),
])
def test_sequence_differences(got, exp, message):
    assert text(got, exp) == message


@pytest.mark.parametrize("got, exp, message", [
    ([("a", 1)], {"a": 1}, "a list where a dict was expected"),
    ({"a": 1}, {"a": 1, "b": 2}, "missing keys ['b']"),
    ({"a": 1, "c": 3}, {"a": 1}, "unexpected keys ['c']"),
    ({"c": 3}, {"a": 1}, "missing keys ['a']; unexpected keys ['c']"),
    ({"a": 1, "b": 5}, {"a": 1, "b": 2}, "['b']: 5 instead of 2"),
    ({"a": 9, "b": 5}, {"a": 1, "b": 2}, "['a']: 9 instead of 1"),    # the first key in the expected order
    ({"a": {"x": 1.5}}, {"a": {"x": 1.0}}, "['a']['x']: 1.5 instead of 1.0"),
    ({"a": [T([1.0, 2.0])]}, {"a": [T([1.0])]}, "['a'] item 0: shape 2 instead of 1"),
])
def test_dict_differences(got, exp, message):
    assert text(got, exp) == message


def test_where_is_prefixed_to_nested_locations():
    assert text([1, 5], [1, 2], where="out") == "out item 1: 5 instead of 2"
    assert text({"k": 5}, {"k": 2}, where="out") == "out['k']: 5 instead of 2"


def test_reports_compare_their_keys_in_order_and_name_the_key():
    exp = Report({"mean": 0.0, "std": 1.0})
    assert compare({"mean": 0.0, "std": 1.0, "extra": 5}, exp, RTOL, ATOL) is None  # extra keys are fine
    assert text({"mean": 0.0, "std": 2.0}, exp) == "std: 2.0 instead of 1.0"
    assert text({"mean": 3.0, "std": 2.0}, exp) == "mean: 3.0 instead of 0.0"      # the first one
    assert text({"mean": 0.0}, exp) == "std: None where a float was expected"
    assert text([0.0, 1.0], exp) == "a list instead of a report"
    # inside a report, the lenient comparison still applies
    assert compare({"mean": T(0.0), "std": 1.0}, exp, RTOL, ATOL, lenient=True) is None
    assert text({"mean": T(0.0), "std": 1.0}, exp) == "mean: a 0-d tensor where a float was expected"


def test_a_diff_keeps_both_values():
    got, exp = T([1.0, 5.0]), T([1.0, 2.0])
    d = compare(got, exp, RTOL, ATOL, "w")
    assert isinstance(d, Diff) and d.where == "w" and d.got is got and d.expected is exp
    assert d.detail == "1 of 2 values differ; the largest difference is at index (1,): 5.0 instead of 2.0"
    d = compare([1, 5], [1, 2], RTOL, ATOL)
    assert (d.where, d.got, d.expected) == ("item 1", 5, 2)
    assert Diff("", 1, 2, "just this").text() == "just this"


# --------------------------------------------------------------------------- whole outcomes
EX = SimpleNamespace(rtol=1e-4, atol=1e-6)


def outcome_text(got: Outcome, exp: Outcome, **kw) -> str | None:
    d = compare_outcomes(got, exp, EX, **kw)
    return None if d is None else d.text()


def test_outcomes_with_equal_values_are_right():
    assert outcome_text(Outcome(value=1.0), Outcome(value=1.0 + 1e-5)) is None  # within the exercise's rtol


def test_outcome_uses_the_exercise_tolerance():
    assert outcome_text(Outcome(value=1.0), Outcome(value=1.001)) == "1.0 instead of 1.001"
    loose = SimpleNamespace(rtol=1e-2, atol=0.0)
    assert compare_outcomes(Outcome(value=1.0), Outcome(value=1.001), loose) is None


def test_a_stopped_call_is_named_first():
    got = Outcome(value=1.0, timed_out=True)
    assert outcome_text(got, Outcome(value=1.0)) == "the call was stopped at the time limit"


def test_a_refused_input_must_be_refused_with_the_same_kind_of_error():
    exp = Outcome(error=ValueError("bad"))
    assert outcome_text(Outcome(value=T([1.0, 2.0])), exp) == (
        "returned a tensor of shape 2 (float32) [1.0, 2.0], but this input must be refused with a ValueError")
    assert outcome_text(Outcome(error=ValueError("other words")), exp) is None
    assert outcome_text(Outcome(error=FileNotFoundError("x")), Outcome(error=OSError("y"))) is None  # a subclass
    assert outcome_text(Outcome(error=TypeError("x")), exp) == "raised TypeError instead of ValueError"


def test_an_error_where_a_value_was_expected_is_described():
    got = Outcome(error=RuntimeError("shapes   cannot\nbe multiplied"), where="line 3")
    assert outcome_text(got, Outcome(value=1.0)) == "raised RuntimeError: shapes cannot be multiplied (line 3)"


def test_changing_an_input_in_place_is_named_only_when_the_reference_does_not():
    exp = Outcome(value=1.0)
    got = Outcome(value=1.0, changed_inputs=("x", "w"))
    assert outcome_text(got, exp) == "the right answer, but your function changed its input w, x in place"
    assert outcome_text(got, Outcome(value=1.0, changed_inputs=("x",))) == (
        "the right answer, but your function changed its input w in place")
    assert outcome_text(got, Outcome(value=1.0, changed_inputs=("w", "x"))) is None
    assert outcome_text(got, exp, inputs=False) is None
    # a wrong value is named before the changed input
    assert outcome_text(Outcome(value=2.0, changed_inputs=("x",)), exp) == "2.0 instead of 1.0"


def test_lenient_outcomes():
    assert outcome_text(Outcome(value=T(3.0)), Outcome(value=3)) == "a 0-d tensor where an int was expected"
    assert outcome_text(Outcome(value=T(3.0)), Outcome(value=3), lenient=True) is None


def test_nan_handling_is_symmetric_for_floats():
    assert math.isnan(float("nan"))
    assert text(float("nan"), float("nan")) is None
    assert text(1.0, float("nan")) == "1.0 instead of nan"


# --------------------------------------------------------------------------- what a Diff carries
# The mistake finder (exercises/slips.py, diagnosis.py) reads a Diff's got and expected to name a
# slip (a float where an int was expected, a tensor for a number...): they must be the two values
# at the place where the answers first differ, and `where` is always a str ("" at the top).
_A, _B = T([1.0, 5.0]), T([1.0, 2.0])
_I, _J = T([1, 7]), T([1, 3])
_F, _G = T([1.0], dtype=torch.float64), T([1.0])


@pytest.mark.parametrize("got, exp, inner_got, inner_exp, where", [
    ("x", T([1.0]), "x", None, ""),                           # not a tensor
    (_A, T([1.0, 2.0, 3.0]), _A, None, ""),                   # shape
    (_F, _G, _F, _G, ""),                                     # dtype
    (_I, _J, _I, _J, ""),                                     # integer values
    (_A, _B, _A, _B, ""),                                     # float values
    (3, 2, 3, 2, ""),
    (2.0, 2, 2.0, 2, ""),
    ("2", 2, "2", 2, ""),
    (0.25, 0.5, 0.25, 0.5, ""),
    (None, 0.5, None, 0.5, ""),
    ("x", 0.5, "x", 0.5, ""),
    (False, True, False, True, ""),
    ("b", "a", "b", "a", ""),
    (3, None, 3, None, ""),
    (torch.float64, torch.float32, torch.float64, torch.float32, ""),
    ({1}, [1], {1}, [1], ""),
    ([1, 2, 3], [1, 2], [1, 2, 3], [1, 2], ""),
    ([1, 5], [1, 2], 5, 2, "item 1"),
    ("ab", {"a": 1}, "ab", {"a": 1}, ""),
    ({"a": 1}, {"a": 1, "b": 2}, {"a": 1}, {"a": 1, "b": 2}, ""),
    ({"a": 9}, {"a": 1}, 9, 1, "['a']"),
    ([0.0], Report({"m": 0.0}), [0.0], Report({"m": 0.0}), ""),
])
def test_a_diff_carries_the_two_values_where_they_differ(got, exp, inner_got, inner_exp, where) -> None:
    d = compare(got, exp, RTOL, ATOL)
    assert d.where == where and isinstance(d.where, str)
    assert d.got is inner_got or (inner_got is not None and d.got == inner_got and type(d.got) is type(inner_got))
    if inner_exp is None and isinstance(exp, torch.Tensor):
        inner_exp = exp
    assert d.expected is inner_exp or (d.expected == inner_exp and type(d.expected) is type(inner_exp))
    assert d.detail and d.text().endswith(d.detail)


def test_lenient_diffs_carry_the_values_too() -> None:
    d = compare(2.5, 2, RTOL, ATOL, lenient=True)                   # a float for an int, not equal
    assert (d.where, d.got, d.expected, d.detail) == ("", 2.5, 2, "2.5 instead of 2")
    d = compare(T([1.5]), T([1 / 3], dtype=torch.float64), RTOL, ATOL, lenient=True)
    assert d.expected.dtype == torch.float64 and d.got.dtype == torch.float64   # compared in the reference's dtype
    assert d.detail == "1 of 1 values differ; the largest difference is at index (0,): 1.5 instead of 0.333333"


def test_a_dtype_change_alone_is_strict_by_default() -> None:
    assert compare(T([1, 2]), T([1.0, 2.0]), RTOL, ATOL).text() == "dtype int64 instead of float32"
    assert compare(2.0, 2, RTOL, ATOL).text() == "2.0, a float, where the int 2 was expected"


def test_lenient_reaches_into_lists_and_dicts() -> None:
    assert compare([T(2.0), 1], [2, 1], RTOL, ATOL, lenient=True) is None
    assert compare({"k": T(2.0)}, {"k": 2}, RTOL, ATOL, lenient=True) is None
    assert text([T(2.0)], [2]) == "item 0: a 0-d tensor where an int was expected"
    assert text({"k": T(2.0)}, {"k": 2}) == "['k']: a 0-d tensor where an int was expected"


def test_lenient_integer_answers_are_compared_with_the_unrounded_reference() -> None:
    # an int tensor for a float reference: the reference keeps its fraction (1.4 is not 1)
    assert text(T([1, 2]), T([1.4, 2.0]), lenient=True) == (
        "1 of 2 values differ; the largest difference is at index (0,): 1.0 instead of 1.4")


@pytest.mark.parametrize("got, rtol, atol, count", [
    # exp is all ones; 2.0 is off by 1, 1.1 by 0.1
    (T([1.0, 1.1, 2.0]), 0.2, 0.0, 1),   # rtol 0.2 forgives 1.1: one value differs
    (T([1.0, 1.1, 2.0]), 0.0, 0.15, 1),  # so does atol 0.15
    (T([1.0, 1.1, 2.0]), 0.0, 0.0, 2),
])
def test_the_count_of_differing_values_uses_the_given_tolerances(got, rtol, atol, count) -> None:
    d = compare(got, torch.ones(3), rtol, atol)
    assert d.detail.startswith(f"{count} of 3 values differ; the largest difference is at index (2,): 2.0")


def test_nan_matching_nan_is_not_a_difference_even_among_others() -> None:
    assert text(T([float("nan"), 5.0]), T([float("nan"), 1.0])) == (
        "1 of 2 values differ; the largest difference is at index (1,): 5.0 instead of 1.0")


def test_the_largest_difference_is_the_largest_gap_not_the_largest_sum() -> None:
    # gaps 6 and 1; sums 0 and 1: index 0 is the largest difference
    assert text(T([3.0, 0.0]), T([-3.0, 1.0])) == (
        "2 of 2 values differ; the largest difference is at index (0,): 3.0 instead of -3.0")


def test_a_report_where_a_list_was_given_names_its_place() -> None:
    assert text([0.0], Report({"m": 0.0}), where="out") == "out: a list instead of a report"
    assert text(torch.float64, torch.float32, where="dtype") == "dtype: torch.float64 instead of torch.float32"


def test_outcome_diffs_carry_the_values_and_errors() -> None:
    refused, wrong_kind = ValueError("bad"), TypeError("x")
    stopped, two = Outcome(value=1.0, timed_out=True), Outcome(value=2.0)
    returned, must_refuse = Outcome(value=3.0), Outcome(error=refused)
    raised = Outcome(error=wrong_kind)
    changed, same = Outcome(value=2.0, changed_inputs=("x",)), Outcome(value=2.0)
    cases = [
        (stopped, two, None, two.value),
        (returned, must_refuse, returned.value, refused),
        (raised, must_refuse, wrong_kind, refused),
        (raised, two, wrong_kind, two.value),
        (changed, same, changed.value, same.value),
    ]
    for got, exp, inner_got, inner_exp in cases:
        d = compare_outcomes(got, exp, EX)
        assert d.where == "" and d.got is inner_got and d.expected is inner_exp, d
