"""resnet_tutorial.results: the lookup order of cached results, the one atomic write, the error
that names the rebuild command, and that every cache ships in the wheel's package data."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import stat
from fnmatch import fnmatch
from pathlib import Path

import pandas as pd
import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from resnet_tutorial import cli, results

ROOT = Path(__file__).resolve().parents[1]
NAME = "add_vs_cat.csv"


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Four empty folders standing for $RESNET_TUTORIAL_RESULTS, the working tree, the user's
    folder and the installed copy."""
    dirs = {k: tmp_path / k for k in ("env", "tree", "xdg", "installed")}
    for d in dirs.values():
        d.mkdir()
    monkeypatch.setenv(results.RESULTS_ENV, str(dirs["env"]))
    monkeypatch.setattr(results, "working_tree", lambda: dirs["tree"])
    monkeypatch.setenv("XDG_CACHE_HOME", str(dirs["xdg"]))
    monkeypatch.setattr(results, "INSTALLED", dirs["installed"])
    dirs["user"] = dirs["xdg"] / "resnet-tutorial" / "results"
    dirs["user"].mkdir(parents=True)
    return dirs


def _put(folder: Path, name: str = NAME, text: str = "x\n1\n") -> Path:
    (folder / name).write_text(text)
    return folder / name


def test_lookup_order_env_then_tree_then_user_then_installed(places, monkeypatch):
    for key in ("env", "tree", "user", "installed"):
        _put(places[key], text=f"where\n{key}\n")
    seen = []
    for key in ("env", "tree", "user", "installed"):
        found = results.locate(NAME)
        seen.append(found.read_text().split()[1])
        assert found == places[key] / NAME
        found.unlink()  # the next place takes over
    assert seen == ["env", "tree", "user", "installed"]


def test_unset_variable_and_no_working_tree_are_skipped(places, monkeypatch):
    monkeypatch.delenv(results.RESULTS_ENV)
    monkeypatch.setattr(results, "working_tree", lambda: None)
    _put(places["env"]), _put(places["tree"]), _put(places["installed"])
    assert [label for label, _ in results.search_path()] == ["your results folder", "the installed copy"]
    assert results.locate(NAME) == places["installed"] / NAME


def test_folders_are_caches_too(places):
    (places["installed"] / "lesson10").mkdir()
    assert results.locate("lesson10") == places["installed"] / "lesson10"


def test_rebuilds_write_to_the_first_writable_place_never_the_installed_copy(places, monkeypatch):
    assert results.output_path(NAME) == places["env"] / NAME
    monkeypatch.delenv(results.RESULTS_ENV)
    assert results.output_path(NAME) == places["tree"] / NAME
    monkeypatch.setattr(results, "working_tree", lambda: None)
    assert results.output_path(NAME) == places["user"] / NAME
    # path() (the non-raising default) prefers an existing copy, else the output path
    assert results.path(NAME) == places["user"] / NAME
    _put(places["installed"])
    assert results.path(NAME) == places["installed"] / NAME


def test_missing_cache_names_every_place_and_the_rebuild_command(places):
    with pytest.raises(FileNotFoundError) as err:
        results.locate(NAME)
    message = str(err.value)
    for key in ("env", "tree", "user", "installed"):
        assert str(places[key]) in message
    assert f"python -m resnet_tutorial add-vs-cat --out {places['env'] / NAME}" in message
    assert "scripts/" not in message


@pytest.mark.parametrize("name", sorted(results.REBUILD))
def test_every_rebuild_command_is_a_real_subcommand(name, places):
    """A wheel has no scripts/: each cache is rebuilt by `python -m resnet_tutorial ...`, and the
    command in the error parses with the package's own command line."""
    words = shlex.split(results.rebuild_command(name))
    assert words[:3] == ["python", "-m", "resnet_tutorial"]
    args = cli.build_parser().parse_args(words[3:])
    written = {Path(p) for p in (args.out, getattr(args, "weights_dir", None)) if p}
    assert places["env"] / name in written  # it writes where locate() looks first


def test_the_lessons_loaders_raise_with_the_rebuild_command(places):
    from resnet_tutorial import degradation
    from resnet_tutorial.lessons import l05_add_vs_concat as l05
    from resnet_tutorial.lessons import l10_shattered_gradients as l10
    from resnet_tutorial.lessons import l11_paths_and_landscapes as l11

    for load, command in ((l05.load_add_cat_runs, "resnet_tutorial add-vs-cat"),
                          (degradation.load_degradation, "resnet_tutorial degradation --depths 8 20 56"),
                          (l10.load_cache, "resnet_tutorial why"), (l11.load_cache, "resnet_tutorial why")):
        with pytest.raises(FileNotFoundError, match=command):
            load()


def test_unknown_cache_name_is_refused():
    with pytest.raises(ValueError, match="add_vs_cat.csv"):
        results.rebuild_command("nonsense.csv")


def test_the_repository_caches_are_found_in_the_working_tree(monkeypatch):
    monkeypatch.delenv(results.RESULTS_ENV, raising=False)
    assert results.working_tree() == ROOT / "results"
    for name in results.REBUILD:
        assert results.locate(name) == ROOT / "results" / name


def test_installed_layout_has_no_working_tree(tmp_path, monkeypatch):
    """A copy of the module under site-packages (no pyproject.toml beside the package) looks in
    the package's _results folder, not in a folder next to site-packages."""
    package = tmp_path / "site-packages" / "resnet_tutorial"
    package.mkdir(parents=True)
    (tmp_path / "site-packages" / "results").mkdir()  # some other distribution's folder: ignored
    (package / "results.py").write_text((ROOT / "resnet_tutorial" / "results.py").read_text())
    spec = importlib.util.spec_from_file_location("installed_results", package / "results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.delenv(results.RESULTS_ENV, raising=False)
    assert module.working_tree() is None
    assert module.INSTALLED == package / "_results"
    assert [p for _, p in module.search_path()][-1] == package / "_results"
    assert module.output_dir() != module.INSTALLED


def test_atomic_write_replaces_the_file_in_one_step(tmp_path):
    target = tmp_path / "new" / "t.csv"  # the folder is created
    with results.atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_text("a\n")
        assert not target.exists()  # nothing visible before the block ends
    assert target.read_text() == "a\n"
    assert os.listdir(target.parent) == ["t.csv"]


def test_atomic_write_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = _put(tmp_path, "t.csv", "old\n")
    for error in (RuntimeError("disk full"), KeyboardInterrupt()):
        with pytest.raises(type(error)):
            with results.atomic_path(target) as tmp:
                tmp.write_text("half of the ne")
                raise error
        assert target.read_text() == "old\n"
        assert os.listdir(tmp_path) == ["t.csv"]


def test_atomic_write_gives_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with results.atomic_path(tmp_path / "t.json") as tmp:
            tmp.write_text("{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "t.json").stat().st_mode) == 0o644  # mkstemp alone gives 0o600


def test_table_and_json_beside_it_round_trip(tmp_path):
    table = pd.DataFrame({"epoch": [1, 2], "loss": [0.5, 1 / 3]})
    path = results.save_table(table, tmp_path / "runs.csv", {"command": "python -m resnet_tutorial x"})
    assert json.loads((tmp_path / "runs.json").read_text()) == {"command": "python -m resnet_tutorial x"}
    back = results.load_table(path)
    assert back.attrs["meta"]["command"] == "python -m resnet_tutorial x"
    assert back["loss"].tolist() == [0.5, pytest.approx(0.333333, abs=1e-6)]  # 6 significant digits
    assert results.load_table(results.save_table(table, tmp_path / "bare.csv")).attrs["meta"] == {}


def test_add_vs_cat_subcommand_writes_a_cache_its_loader_reads(tmp_path):
    from resnet_tutorial.lessons import l05_add_vs_concat as l05

    out = tmp_path / "avc.csv"
    assert cli.main(["add-vs-cat", "--depth", "8", "--epochs", "1", "--per-class", "2", "--test-per-class", "1",
                     "--seeds", "0", "--out", str(out)]) == 0
    cached = l05.load_add_cat_runs(out)
    assert sorted(cached["merge"].unique()) == ["add", "cat"] and cached["seed"].eq(0).all()
    assert cached.attrs["meta"]["command"].startswith("python -m resnet_tutorial add-vs-cat --depth 8")


# --- packaging: the caches travel with the package -----------------------------------------------

def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_cache_file_is_package_data():
    """Each file under results/ matches a package-data pattern of resnet_tutorial._results.* (so
    `pip install .` installs it); a new cache folder must be added to pyproject.toml."""
    config = _setuptools()
    assert config["package-dir"]["resnet_tutorial._results"] == "results"
    uncovered = []
    for f in (ROOT / "results").rglob("*"):
        if not f.is_file():
            continue
        rel = f.relative_to(ROOT / "results")
        package = ".".join(["resnet_tutorial._results", *rel.parent.parts])
        patterns = config["package-data"].get(package, [])
        if package not in config["packages"] or not any(fnmatch(rel.name, p) for p in patterns):
            uncovered.append(str(rel))
    assert not uncovered, f"results/ files the wheel would miss (add them to pyproject.toml): {uncovered}"


def test_every_code_package_is_listed():
    """The package list is explicit (the results are mapped in): a new subpackage must be added."""
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "resnet_tutorial").rglob("__init__.py")}
    listed = set(_setuptools()["packages"])
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"


def test_no_module_hand_writes_an_atomic_replace():
    """One atomic write in the package: results.atomic_path."""
    allowed = {"results.py"}
    offenders = [str(p.relative_to(ROOT)) for d in ("resnet_tutorial", "benchmarks", "scripts")
                 for p in (ROOT / d).rglob("*.py")
                 if p.name not in allowed and "os.replace(" in p.read_text(encoding="utf-8")]
    assert not offenders, f"use resnet_tutorial.results.atomic_path instead of os.replace in {offenders}"

