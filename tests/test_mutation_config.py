"""The mutation-testing setup (setup.cfg's [mutation:*] sections, scripts/mutation.py) stays consistent.

`make mutation` is long and not part of the test command, so a renamed test file, a
moved module or a malformed equivalent entry would only show up hours later; these
checks catch it in CI. The scores themselves live in benchmarks/results/mutation.json.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mutation():
    spec = importlib.util.spec_from_file_location("mutation_script", ROOT / "scripts" / "mutation.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_every_core_module_has_a_section(mutation) -> None:
    _, modules = mutation.read_config()
    core = {"bn", "blocks", "models", "data", "metrics", "checkpoints", "train", "widgets", "live",
            "diagnostics.shapes_and_counts", "diagnostics.gradient_flow", "exercises.checker",
            "exercises.comparison"}
    assert core <= set(modules)


def test_each_section_names_its_module_file_and_existing_fast_tests(mutation) -> None:
    _, modules = mutation.read_config()
    for name, m in modules.items():
        assert m.path == "resnet_tutorial/" + name.replace(".", "/") + ".py" and (ROOT / m.path).is_file(), name
        assert m.tests, name
        for t in m.tests:
            path = ROOT / t.split("::")[0]
            assert path.is_file(), f"[mutation:{name}] lists {t}, which does not exist"
            assert "e2e" not in path.parts and "test_notebooks" not in path.name  # browser and notebooks never run


def test_equivalents_name_a_mutant_of_their_module_a_fingerprint_and_a_reason(mutation) -> None:
    _, modules = mutation.read_config()
    for name, m in modules.items():
        prefix = "resnet_tutorial." + name + "."
        for mutant, (fp, reason) in m.equivalent.items():
            assert mutant.startswith(prefix) and re.search(r"__mutmut_\d+$", mutant), mutant
            assert re.fullmatch(r"[0-9a-f]{8}", fp), (mutant, fp)
            assert len(reason.split()) >= 4, (mutant, reason)  # a reason, not a shrug


def test_a_malformed_equivalent_is_refused_with_the_format(mutation, tmp_path) -> None:
    cfg = tmp_path / "setup.cfg"
    cfg.write_text("[mutmut]\n[mutation:bn]\nmodule = resnet_tutorial/bn.py\ntests =\n    tests/test_bn.py\n"
                   "equivalent =\n    resnet_tutorial.bn.x_f__mutmut_1 no reason given\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"write '<mutant> <fingerprint>: <reason>'"):
        mutation.read_config(cfg)


def test_the_module_config_selects_only_that_module_and_its_tests(mutation) -> None:
    cfg, modules = mutation.read_config()
    text = mutation.module_setup_cfg(cfg, modules["bn"])
    assert "only_mutate = resnet_tutorial/bn.py" in text
    assert "pytest_add_cli_args_test_selection = \n\ttests/test_bn.py" in text
    assert "process_isolation = forkserver" in text


def test_fingerprints_hash_only_the_changed_lines(mutation) -> None:
    diff = "--- a\n+++ b\n@@\n     x = 1\n-    y = x + 1\n+    y = x - 1\n"
    same_change_elsewhere = "--- a\n+++ b\n@@\n     z = 2\n-        y = x + 1\n+        y = x - 1\n"
    assert mutation.fingerprint(diff) == mutation.fingerprint(same_change_elsewhere)
    assert mutation.fingerprint(diff) != mutation.fingerprint(diff.replace("x - 1", "x * 1"))
    assert re.fullmatch(r"[0-9a-f]{8}", mutation.fingerprint(diff))


def test_the_report_has_a_row_for_every_section(mutation) -> None:
    _, modules = mutation.read_config()
    report = json.loads((ROOT / "benchmarks" / "results" / "mutation.json").read_text(encoding="utf-8"))
    assert {row["module"] for row in report["modules"]} == set(modules)
