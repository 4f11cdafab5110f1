"""The checker's engine (``resnet_tutorial.exercises``): what every exercise gets, whatever its lesson.

* the catalogue is well formed, every exercise has correct variants in at least
  two styles and a wrong variant for every mistake it names, and every case set
  exercises the rule behind each mistake (the mistake's variant differs from the
  reference on at least one case);
* stubs are "not attempted", a function that raises NotImplementedError on some
  cases only is "half finished"; exceptions, shapes, dtypes and types are
  reported with the case that triggered them, in messages that say what they
  mean (64.0, not 64; a dtype the docstring asks for; a renamed parameter on any
  case);
* a slow or endless function is stopped at the time limit and named, with a
  notice while it runs, from the main thread and from any other;
* the notebook's random streams (torch, numpy, ``random``) and grad mode are
  left alone; nothing is printed or warned by a quick check;
* the progress file is written atomically and a corrupt one is reset with a
  warning; hints come one at a time.
"""

from __future__ import annotations

import inspect
import json
import random
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from resnet_tutorial import exercises as E
from resnet_tutorial.data import MEAN, STD
from resnet_tutorial.exercises import checker, progress_store
from resnet_tutorial.exercises.running import known

from .variants import load

ALL_IDS = E.list_exercises()
VARIANTS = load()
DEFECTS = {  # the classes of defects issue 19 found, as the corpus tags them
    "input mutated in place", "float32 for float64", "broadcasting add", "cat without a batch check",
    "deepen: nn.Identity", "deepen: blocks in front", "deepen: one block repeated",
    "deepen: appends to the caller's net", "float binomial", "hard-coded 2048",
}


def _right(ex_id: str):
    return next(v.fn for v in VARIANTS if v.exercise == ex_id and v.correct)


def _bn_var(x):
    return x.var(dim=(0, 2, 3), keepdim=True, unbiased=False)


# =========================================================================== the catalogue and its corpus
def test_catalogue_has_the_required_exercises_and_enough_of_them() -> None:
    required = {"bn_forward_train": "(x, gamma, beta, eps=1e-05)", "conv_output_size": "(size, kernel, stride=1, padding=0)",
                "zero_pad_shortcut": "(x, out_channels, stride)", "weight_grad_norms": "(model, x, y)"}
    for ex_id, sig in required.items():
        params = inspect.signature(E.get_exercise(ex_id).reference).parameters.values()
        plain = ", ".join(p.name if p.default is p.empty else f"{p.name}={p.default!r}" for p in params)
        assert f"({plain})" == sig, ex_id
    assert len(ALL_IDS) >= 18 and len(set(ALL_IDS)) == len(ALL_IDS)
    for lesson in range(1, 11):
        assert len(E.list_exercises(lesson)) >= 2, f"lesson {lesson:02d} needs at least two exercises"
    for ex_id in ALL_IDS:
        ex = E.get_exercise(ex_id)
        assert ex.title and len(ex.cases) >= 2 and len(ex.hints) >= 2 and len(ex.mistakes) >= 2, ex_id
        assert len({c.label for c in ex.cases}) == len(ex.cases), f"{ex_id}: case labels must differ"
    assert [E.get_exercise(i).lesson for i in ALL_IDS] == sorted(E.get_exercise(i).lesson for i in ALL_IDS)


def test_each_lesson_module_holds_its_own_exercises() -> None:
    for ex_id in ALL_IDS:
        ex = E.get_exercise(ex_id)
        module = ex.reference.__module__.rsplit(".", 1)[-1]
        assert module.startswith(f"l{ex.lesson}_"), f"{ex_id} is registered in {module}, not lesson {ex.lesson}'s module"


def test_the_corpus_has_two_correct_styles_and_a_wrong_variant_for_every_mistake() -> None:
    assert {v.exercise for v in VARIANTS} == set(ALL_IDS)
    for ex_id in ALL_IDS:
        right = [v for v in VARIANTS if v.exercise == ex_id and v.correct]
        assert len(right) >= 2 and len({v.note for v in right}) == len(right), ex_id
        listed = {v.mistake for v in VARIANTS if v.exercise == ex_id and not v.correct}
        missing = {m.name for m in E.get_exercise(ex_id).mistakes} - listed
        assert not missing, f"{ex_id}: no wrong variant for the mistakes {missing}"
    assert DEFECTS <= {v.defect for v in VARIANTS if not v.correct}


def test_the_cases_exercise_every_mistake_they_can_name() -> None:
    """Each mistake with a variant differs from the reference on some case: its rule is exercised."""
    for ex_id in ALL_IDS:
        ex = E.get_exercise(ex_id)
        for m in ex.mistakes:
            if m.detect is not None:
                continue
            outcomes = [known(ex, (m.name,), i) for i in range(len(ex.cases))]
            expected = [known(ex, (), i) for i in range(len(ex.cases))]
            assert any(E.comparison.compare_outcomes(o, e, ex) is not None for o, e in zip(outcomes, expected)), \
                f"{ex_id}: no case shows the mistake {m.name}"


def test_references_keep_their_inputs_and_pass() -> None:
    for ex_id in ALL_IDS:
        ex = E.get_exercise(ex_id)
        for i in range(len(ex.cases)):
            outcome = known(ex, (), i)
            assert outcome.error is None or ex_id == "merge_output_shape", (ex_id, i, outcome.describe())
            assert outcome.changed_inputs == (), (ex_id, i)
        assert E.check(ex_id, ex.reference, record=False).passed, ex_id


def test_two_mistakes_at_once_are_both_named() -> None:
    def bn_forward_train(x, gamma, beta, eps=1e-5):
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        return gamma.view(1, -1, 1, 1) * (x - mean) / (x.std(dim=(0, 2, 3), keepdim=True) + eps) + beta.view(1, -1, 1, 1)

    result = E.check("bn_forward_train", bn_forward_train)
    assert result.mistakes == ["unbiased", "eps_outside"]
    assert result.diagnosis.startswith("Two mistakes at once.")


def test_a_mistake_behind_a_dtype_slip_is_still_named() -> None:
    def bn_forward_train(x, gamma, beta, eps=1e-5):
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        y = (x - mean) / torch.sqrt(x.var(dim=(0, 2, 3), keepdim=True) + eps)  # unbiased
        return (gamma.view(1, -1, 1, 1) * y + beta.view(1, -1, 1, 1)).float()

    result = E.check("bn_forward_train", bn_forward_train)
    assert result.mistakes == ["unbiased"]
    assert "dtype float32 instead of float64" in result.difference and "dtype float32 instead of float64" in result.diagnosis


def test_an_input_changed_in_place_is_named_with_any_other_mistake() -> None:
    def bn_forward_train(x, gamma, beta, eps=1e-5):
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        var = x.var(dim=(0, 2, 3), keepdim=True)  # unbiased, and x changed in place below
        x -= mean
        return gamma.view(1, -1, 1, 1) * x / torch.sqrt(var + eps) + beta.view(1, -1, 1, 1)

    result = E.check("bn_forward_train", bn_forward_train)
    assert result.mistakes == ["unbiased", "mutated_input"]
    assert "Also: Your function changes its input x in place" in result.diagnosis


# =========================================================================== stubs, errors, reports
def _stubs():
    def a(x, gamma, beta, eps=1e-5):
        """Docstring."""
        raise NotImplementedError

    def b(x, gamma, beta, eps=1e-5):
        ...

    def c(x, gamma, beta, eps=1e-5):
        pass

    def d(x, gamma, beta, eps=1e-5):
        """Docstring."""
        return None  # noqa: RET501  (a stub form learners write)

    def e(x, gamma, beta, eps=1e-5):
        """Only a docstring."""

    def f(x, gamma, beta, eps=1e-5):
        raise NotImplementedError("write me")  # replace this line

    def g(x, gamma, beta, eps=1e-5):
        mean = x.mean()  # noqa: F841  (started, not finished)
        raise NotImplementedError

    return [a, b, c, d, e, f, g]


@pytest.mark.parametrize("stub", _stubs(), ids="abcdefg")
def test_unfinished_stubs_are_not_attempted(stub, private_progress, capsys) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = E.check("bn_forward_train", stub)
        text, page = repr(result), result._repr_html_()
    assert result.status == "not attempted" and not result.passed and not result.attempted
    assert "not attempted yet" in text and "Traceback" not in text and "rt-check-not-attempted" in page
    assert not private_progress.exists(), "a stub must not be recorded"
    assert capsys.readouterr() == ("", "")


def test_a_function_unfinished_on_some_cases_is_half_finished(private_progress) -> None:
    def conv_output_size(size, kernel, stride=1, padding=0):
        if padding:
            raise NotImplementedError  # TODO: padding
        return (size - kernel) // stride + 1

    result = E.check("conv_output_size", conv_output_size)
    assert result.status == "failed" and result.mistakes == ["half_finished"]
    assert result.tried.startswith("case 1 of 7, ResNet's stem")
    assert "half finished: it answers 3 of the 7 cases" in result.diagnosis
    assert "line 3 of your function: `raise NotImplementedError # TODO: padding`" in result.diagnosis
    assert json.loads(private_progress.read_text())["exercises"]["conv_output_size"]["attempts"] == 1


def test_a_notimplementederror_from_a_library_is_an_error_not_a_stub() -> None:
    scope: dict = {}
    exec(compile("def helper():\n    raise NotImplementedError('not supported on this device')\n", "<library>", "exec"),
         scope)

    def conv_output_size(size, kernel, stride=1, padding=0):
        return scope["helper"]()

    result = E.check("conv_output_size", conv_output_size)
    assert result.status == "failed" and "half_finished" not in result.mistakes
    assert "NotImplementedError: not supported on this device" in result.got


def test_an_exception_is_reported_with_its_case_and_line() -> None:
    def conv_output_size(size, kernel, stride=1, padding=0):
        if size % 2:
            raise ValueError("odd sizes are not supported")
        return (size + 2 * padding - kernel) // stride + 1

    result = E.check("conv_output_size", conv_output_size)
    assert result.status == "failed"
    assert result.tried.startswith("case 5 of 7, an odd 7×7 map")
    assert "ValueError: odd sizes are not supported" in result.got
    assert "line 3 of your function: `raise ValueError(\"odd sizes are not supported\")`" in result.got
    assert "its line is shown above" in result.diagnosis and "Traceback" not in result.message


def test_no_line_is_promised_when_none_can_be_shown() -> None:
    scope: dict = {}  # a function whose source cannot be read: no line to show
    exec("def conv_output_size(size, kernel, stride=1, padding=0):\n    return size // 0\n", scope)
    result = E.check("conv_output_size", scope["conv_output_size"])
    assert result.got == "ZeroDivisionError: integer division or modulo by zero"
    assert "raised an exception on this case" in result.diagnosis and "shown above" not in result.diagnosis


def test_a_wrong_shape_is_reported_with_its_case() -> None:
    def zero_pad_shortcut(x, out_channels, stride):
        return x[:, :, ::stride, ::stride]  # the zero channels are missing

    result = E.check("zero_pad_shortcut", zero_pad_shortcut)
    assert result.tried.startswith("case 1 of 5, stride 2, 4 → 8 channels")
    assert result.difference == "shape 2×4×4×4 instead of 2×8×4×4"
    assert "The shape is wrong" in result.diagnosis


def test_a_wrong_type_is_reported() -> None:
    result = E.check("conv_output_size", lambda size, kernel, stride=1, padding=0: str((size + 2 * padding - kernel)
                                                                                       // stride + 1))
    assert result.difference == "a str where an int was expected"
    reference = E.get_exercise("weight_grad_norms").reference
    result = E.check("weight_grad_norms", lambda model, x, y: torch.tensor(reference(model, x, y)))
    assert result.difference == "a tensor where a list was expected"


def test_a_float_where_an_int_is_asked_shows_as_a_float() -> None:
    def dense_block_channels(in_channels, growth_rate, num_layers):
        return [in_channels + k * growth_rate / 1 for k in range(num_layers + 1)]  # true division: floats

    result = E.check("dense_block_channels", dense_block_channels)
    assert result.got.startswith("item 0: 64.0") and result.expected.startswith("item 0: 64")
    assert "64.0" not in result.expected
    assert result.difference == "item 0: 64.0, a float, where the int 64 was expected"
    assert result.mistakes == ["float_for_int"] and "use // (floor division)" in result.diagnosis


def test_the_dtype_message_depends_on_what_the_docstring_asks() -> None:
    def normalize_pixels(images):  # uint8 in, float32 asked, float64 out
        return (images.double() / 255 - MEAN) / STD

    result = E.check("normalize_pixels", normalize_pixels)
    assert result.difference == "dtype float64 instead of float32" and result.tried.startswith("case 1 of 3")
    assert result.mistakes == ["wrong_dtype"]
    assert "The docstring asks for float32" in result.diagnosis and "(the input here is uint8)" in result.diagnosis
    assert "input's dtype" not in result.diagnosis

    def label_smoothing_targets(y, num_classes, smoothing):  # int64 in, float32 asked, float64 out
        return (1 - smoothing) * F.one_hot(y, num_classes).double() + smoothing / num_classes

    result = E.check("label_smoothing_targets", label_smoothing_targets)
    assert "The docstring asks for float32" in result.diagnosis and "int64" in result.diagnosis

    def zero_pad_shortcut(x, out_channels, stride):  # float64 in, float64 asked, float32 out
        out = torch.zeros(x.shape[0], out_channels, *x[:, :, ::stride, ::stride].shape[2:])
        out[:, : x.shape[1]] = x[:, :, ::stride, ::stride]
        return out

    result = E.check("zero_pad_shortcut", zero_pad_shortcut)
    assert result.tried.startswith("case 5 of 5") and result.mistakes == ["wrong_dtype"]
    assert "the dtype of the input. Compute in the input's dtype" in result.diagnosis


def test_the_signature_is_bound_on_every_case() -> None:
    def bn_forward_train(x, gamma, beta, epsilon=1e-5):  # renamed: only case 4 passes eps by name
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        return gamma.view(1, -1, 1, 1) * (x - mean) / torch.sqrt(_bn_var(x) + epsilon) + beta.view(1, -1, 1, 1)

    result = E.check("bn_forward_train", bn_forward_train)
    assert result.status == "failed" and result.mistakes == ["signature"]
    assert result.tried.startswith("case 4 of 5, ε = 0.1 given by the caller") and "eps=0.1" in result.tried
    assert "unexpected keyword argument 'eps'" in result.diagnosis
    assert "bn_forward_train(x, gamma, beta, epsilon=1e-05)" in result.diagnosis
    assert "shown above" not in result.diagnosis
    assert "Keep the parameters of the stub" in E.check("conv_output_size", lambda size: size).diagnosis


def test_calls_that_cannot_work_are_explained() -> None:
    assert "without parentheses" in E.check("conv_output_size", 112).diagnosis
    unknown = E.check("no_such_exercise", lambda: None)
    assert unknown.status == "unknown exercise" and "bn_forward_train" in unknown.message


def test_reports_render_as_html_and_as_text() -> None:
    wrong = next(v.fn for v in VARIANTS if v.mistake == "unbiased" and v.exercise == "bn_forward_train")
    failed = E.check("bn_forward_train", wrong)
    page = failed._repr_html_()
    assert 'class="rt-check rt-check-failed"' in page and "unbiased variance" in page and "<table" in page
    assert repr(failed) == str(failed) == failed.message and failed.message.startswith("✗ bn_forward_train")
    for label in ("Tried: ", "Got: ", "Expected: ", "Difference: ", "Diagnosis: "):
        assert label in failed.message
    passed = E.check("bn_forward_train", _right("bn_forward_train"))
    assert "rt-check-passed" in passed._repr_html_() and "near-constant channel" in passed.message
    assert "<script" not in E.check("conv_output_size", lambda size, kernel, stride=1, padding=0: "<script>")._repr_html_()


# =========================================================================== time limit
def _endless(n_blocks):
    count = 0
    while True:  # a loop whose condition never changes
        count += 1


def _sleepy(n_blocks):
    time.sleep(30)
    return 2 ** n_blocks


def _swallows(n_blocks):
    while True:
        try:
            n_blocks += 0
        except Exception:  # a learner's catch-all: CaseTimeout is not an Exception
            pass


def _swallows_everything(n_blocks):
    while True:
        try:
            time.sleep(0.05)
        except:  # noqa: E722  (a bare except around a sleep catches the stop itself)
            pass


@pytest.mark.parametrize("fn", [_endless, _sleepy, _swallows, _swallows_everything],
                         ids=["endless-loop", "sleep", "except-Exception", "bare-except-around-sleep"])
def test_a_case_running_past_the_limit_is_stopped_and_named(fn, monkeypatch, capsys) -> None:
    monkeypatch.setattr(checker, "NOTICE_AFTER_S", 0.2)
    previous, trace = signal.getsignal(signal.SIGALRM), sys.gettrace()
    result = E.check("count_residual_paths", fn, time_limit=1.0)
    assert result.status == "failed" and result.mistakes == ["too_slow"]
    assert result.tried.startswith("case 1 of 6, no residual unit at all")
    assert "still running on case 1 (no residual unit at all) after 1 s, so it was stopped" in result.diagnosis
    assert "time_limit=60" in result.diagnosis and "cases after case 1 were not run" in result.note
    out, err = capsys.readouterr()
    assert "⏳ count_residual_paths: still running case 1 of 6 (no residual unit at all)" in out and err == ""
    assert signal.getsignal(signal.SIGALRM) == previous and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert sys.gettrace() is trace, "the trace function (a debugger's, coverage's) is restored"


def test_the_limit_works_outside_the_main_thread_too() -> None:
    results = []
    worker = threading.Thread(target=lambda: results.append(E.check("count_residual_paths", _endless, time_limit=0.5)))
    worker.start()
    worker.join(60)
    assert not worker.is_alive() and results[0].mistakes == ["too_slow"]


def test_a_slow_case_is_stopped_where_it_is_slow(monkeypatch) -> None:
    monkeypatch.setattr(checker, "NOTICE_AFTER_S", None)

    def path_length_counts(n_blocks):  # brute force: fine for 10 units, hopeless for 54
        import itertools

        counts = [0] * (n_blocks + 1)
        for path in itertools.product((0, 1), repeat=n_blocks):
            counts[sum(path)] += 1
        return counts

    result = E.check("path_length_counts", path_length_counts, time_limit=1.0)
    assert result.mistakes == ["too_slow"] and result.tried.startswith("case 5 of 6, ResNet-110's 54 units")


def test_a_quick_check_prints_nothing_and_leaves_no_timer(capsys) -> None:
    assert E.check("count_residual_paths", _right("count_residual_paths")).passed
    assert capsys.readouterr() == ("", "") and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


# =========================================================================== the notebook's state
def test_check_leaves_every_random_stream_and_grad_mode_alone() -> None:
    def train_step(model, optimizer, x, y):  # draws from all three streams, and is right
        random.random(), np.random.rand(), torch.rand(1)
        return _right("train_step")(model, optimizer, x, y)

    torch.manual_seed(123), np.random.seed(123), random.seed(123)
    expected = (torch.rand(5), np.random.rand(5), [random.random() for _ in range(5)])
    torch.manual_seed(123), np.random.seed(123), random.seed(123)
    with torch.no_grad():  # a learner's cell may run under no_grad; training exercises still work
        assert E.check("train_step", train_step).passed
        assert not E.check("weight_grad_norms", lambda model, x, y: [0.0]).passed
        assert not torch.is_grad_enabled()
    assert torch.equal(torch.rand(5), expected[0])
    assert np.array_equal(np.random.rand(5), expected[1]) and [random.random() for _ in range(5)] == expected[2]


def test_check_restores_the_default_dtype() -> None:
    def conv_output_size(size, kernel, stride=1, padding=0):
        torch.set_default_dtype(torch.float64)  # a learner's experiment
        return (size + 2 * padding - kernel) // stride + 1

    assert E.check("conv_output_size", conv_output_size).passed
    assert torch.get_default_dtype() == torch.float32


# =========================================================================== progress
def _entries(path: Path) -> dict:
    return json.loads(path.read_text())["exercises"]


def _wrong(ex_id: str, mistake: str):
    return next(v.fn for v in VARIANTS if v.exercise == ex_id and v.mistake == mistake)


def test_progress_counts_attempts_and_passes(private_progress) -> None:
    assert not E.check("conv_output_size", _wrong("conv_output_size", "ceil")).passed
    assert _entries(private_progress)["conv_output_size"]["attempts"] == 1
    assert not _entries(private_progress)["conv_output_size"]["passed"]
    assert E.check("conv_output_size", _right("conv_output_size")).passed
    E.check("conv_output_size", _wrong("conv_output_size", "float"))  # a later wrong try keeps the pass
    entry = _entries(private_progress)["conv_output_size"]
    assert entry["attempts"] == 3 and entry["passed"] and entry["first_passed"]
    table = E.progress()
    assert list(table["exercise"]) == ALL_IDS and table.attrs["path"] == str(private_progress)
    row = table.set_index("exercise").loc["conv_output_size"]
    assert row["status"] == "passed ✓" and row["attempts"] == 3
    assert set(table["status"]) == {"passed ✓", "not tried"} and table.attrs["passed"] == 1
    assert set(E.progress(lesson=4)["exercise"]) == set(E.list_exercises(4))
    E.reset_progress()
    assert not private_progress.exists() and E.progress().attrs["passed"] == 0


def test_record_false_leaves_progress_alone(private_progress) -> None:
    E.check("conv_output_size", _right("conv_output_size"), record=False)
    E.check("conv_output_size", lambda size: size, record=False)
    assert not private_progress.exists()


def test_progress_is_written_atomically(private_progress, monkeypatch) -> None:
    assert E.check("conv_params", _right("conv_params")).passed
    before = private_progress.read_bytes()

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(progress_store.os, "replace", failing_replace)
    with pytest.warns(E.ProgressFileWarning, match="could not save"):
        assert E.check("dense_block_channels", _right("dense_block_channels")).passed  # the check itself is fine
    assert private_progress.read_bytes() == before
    monkeypatch.undo()
    monkeypatch.setenv(E.PROGRESS_ENV, str(private_progress))

    def half_written(data, f, **kw):
        f.write('{"version": 1, "exercises": {"half')
        raise RuntimeError("killed while writing")

    monkeypatch.setattr(progress_store.json, "dump", half_written)
    with pytest.warns(E.ProgressFileWarning):
        E.check("dense_block_channels", _right("dense_block_channels"))
    assert private_progress.read_bytes() == before, "a half-written file must never replace the old one"
    assert [p.name for p in private_progress.parent.iterdir()] == ["progress.json"], "temporary files left behind"


@pytest.mark.parametrize("content", [b"{not json", b"", b'["a", "list"]', b'{"exercises": {"x": 3}}', b"\xff\xfe"])
def test_a_corrupt_progress_file_is_reset_with_a_warning(private_progress, content) -> None:
    private_progress.write_bytes(content)
    with pytest.warns(E.ProgressFileWarning, match="unreadable, so progress starts afresh"):
        table = E.progress()
    assert set(table["status"]) == {"not tried"}
    assert private_progress.with_name("progress.json.corrupt").read_bytes() == content
    assert json.loads(private_progress.read_text()) == {"version": 1, "exercises": {}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reset once: no warning the second time
        E.progress()
        assert E.check("conv_params", _right("conv_params")).passed
    assert _entries(private_progress)["conv_params"]["passed"]


def test_progress_path_follows_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(E.PROGRESS_ENV, str(tmp_path))  # a folder: progress.json inside it
    assert E.progress_path() == tmp_path / "progress.json"
    monkeypatch.delenv(E.PROGRESS_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert E.progress_path() == tmp_path / "xdg" / "resnet-tutorial" / "progress.json"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert E.progress_path() == tmp_path / "home" / ".cache" / "resnet-tutorial" / "progress.json"


# =========================================================================== hints
def test_hints_come_one_at_a_time_then_point_to_the_solution() -> None:
    hints = E.get_exercise("bn_forward_train").hints
    for number, text in enumerate(hints, start=1):
        shown = E.hint("bn_forward_train")
        assert (shown.number, shown.total) == (number, len(hints))
        assert text in repr(shown) and text in shown._repr_html_() and f"Hint {number} of {len(hints)}" in repr(shown)
    done = E.hint("bn_forward_train")
    assert done.number == 0 and "folded under 'Solution'" in repr(done)
    assert E.hint("conv_output_size").number == 1, "each exercise counts its own hints"
    E.reset_hints("bn_forward_train")
    assert E.hint("bn_forward_train").number == 1
    assert "No exercise" in repr(E.hint("nope"))


def test_register_refuses_a_duplicate_and_a_bad_lesson() -> None:
    ex = E.get_exercise("conv_params")
    with pytest.raises(ValueError, match="defined twice"):
        E.register(ex)
    with pytest.raises(ValueError, match="two digits"):
        E.register(E.Exercise("x_new", "2", "t", ex.reference, cases=ex.cases))


# ------------------------------------------------------------------ what each verdict carries (mutation survivors)
def test_every_verdict_names_the_exercise_and_says_what_to_do():
    first = E.list_exercises()[0]
    ex = E.get_exercise(first)
    unknown = E.check("no_such_exercise", ex.reference, record=False)
    assert (unknown.exercise_id, unknown.status) == ("no_such_exercise", "unknown exercise")
    assert unknown.note == f"Known exercises: {', '.join(E.list_exercises())}. Check the spelling of the id."

    def stub(*args, **kwargs):
        raise NotImplementedError

    todo = E.check(first, stub, record=False)
    assert (todo.exercise_id, todo.status, todo.title) == (first, "not attempted", ex.title)
    assert todo.note == ("Write your function in the cell above (replace `raise NotImplementedError`), run that cell, "
                         f"then run this one again. hint({first!r}) gives a hint.")
    done = E.check(first, ex.reference, record=False)
    assert (done.exercise_id, done.status, done.title) == (first, "passed", ex.title)
    assert done.cases == [c.label for c in ex.cases]


def test_the_still_running_notice_counts_from_the_start_and_shows_once(monkeypatch):
    ex = E.get_exercise(E.list_exercises()[0])
    clock = {"now": 100.0}
    monkeypatch.setattr(checker.time, "monotonic", lambda: clock["now"])
    printed = []
    monkeypatch.setattr("builtins.print", lambda *args, **kwargs: printed.append((args, kwargs)))
    notice = checker._Notice(ex, 5.0, 30.0)
    clock["now"] = 102.0  # two seconds into the check: the notice is due three seconds later
    first = notice.limits(1)
    assert (first.limit_s, first.notice_s) == (30.0, 3.0) and first.notice == notice.show
    clock["now"] = 107.4
    first.notice()
    (args, kwargs), = printed
    assert args == (f"⏳ {ex.id}: still running case 2 of {len(ex.cases)} ({ex.cases[1].label}) after 7 s; "
                    "a case still running after 30 s is stopped.",)
    assert kwargs == {"flush": True}  # on screen now, not when the check ends
    later = notice.limits(2)
    assert (later.limit_s, later.notice_s, later.notice) == (30.0, None, None)  # shown once
    late = checker._Notice(ex, 5.0, None)
    clock["now"] += 9.0  # a first case that took longer than the notice delay
    overdue = late.limits(0)
    assert overdue.notice_s == 0.0  # due at once, never a negative delay
    printed.clear()
    overdue.notice()
    assert printed[0][0][0].endswith("after 9 s.")  # no time limit: no "is stopped" clause
    assert checker._Notice(ex, None, 30.0).limits(0) == checker.Limits(30.0)  # no notice asked for


def test_a_value_instead_of_a_function_is_named_with_the_fix():
    first = E.list_exercises()[0]
    ex = E.get_exercise(first)
    result = E.check(first, 3.5, record=False)  # check("id", fn(x)) instead of check("id", fn)
    assert (result.exercise_id, result.status, result.title) == (first, "failed", ex.title)
    assert result.got == "3.5"
    assert result.diagnosis == (f"check needs your function itself: check({first!r}, {first}) without parentheses "
                                "after the function's name.")
