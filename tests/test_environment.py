"""pyproject.toml (ranges), constraints.txt (the locked set CI tests) and environment.yml (conda)
agree: every lock pin lies inside its range, every direct dependency is locked, and the conda file
pins the same packages at the same versions."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pytorch": "torch"}  # conda-forge's name for the same package
LOCK_PYTHON = "3.11"  # the Python the lock (and environment.yml) is for


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def direct_requirements(python: str = LOCK_PYTHON) -> dict[str, Requirement]:
    """pyproject.toml's dependencies and extras that apply on ``python`` (markers evaluated)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"]) + [s for extra in project["optional-dependencies"].values() for s in extra]
    env = {**default_environment(), "python_version": python, "python_full_version": f"{python}.0"}
    reqs = [Requirement(s) for s in specs]
    return {_normalize(r.name): r for r in reqs if r.marker is None or r.marker.evaluate(env)}


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"constraints.txt: {line!r} is not pinned with =="
            pins[_normalize(name)] = version
    return pins


def environment_pins() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pins = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for spec in dep["pip"]:
                if spec.startswith("-e"):
                    continue
                name, _, version = spec.partition("==")
                pins[_normalize(name)] = version
        else:
            name, _, version = dep.partition("=")
            if name in {"python", "pip"}:
                continue
            pins[_normalize(CONDA_TO_PIP.get(name, name))] = version
    return pins


def test_every_dependency_is_a_range_not_a_pin() -> None:
    for name, req in direct_requirements().items():
        assert not any(s.operator == "==" for s in req.specifier), f"pyproject.toml pins {req}: use a range"
        assert any(s.operator == ">=" for s in req.specifier), f"pyproject.toml: {req} needs a tested lower bound"


def test_lock_pins_every_direct_dependency_inside_its_range() -> None:
    pins = lock_pins()
    for name, req in direct_requirements().items():
        assert name in pins, f"constraints.txt does not lock {name}"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"constraints.txt locks {name}=={pins[name]}, outside pyproject.toml's {req}"


def test_environment_yml_matches_the_lock() -> None:
    pins, lock = environment_pins(), lock_pins()
    assert set(pins) == set(direct_requirements()), "environment.yml must list exactly pyproject.toml's packages"
    assert {n: v for n, v in pins.items() if lock[n] != v} == {}, "environment.yml and constraints.txt disagree"


def test_environment_yml_is_for_the_lock_python() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert f"python={LOCK_PYTHON}" in env["dependencies"]


def test_environment_yml_installs_the_package_itself() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip_section


def test_setup_installs_the_lock_and_restamps_when_either_file_changes() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert re.search(r"pip install [^\n]*-c constraints\.txt", setup)
    stamp = next(line for line in setup.splitlines() if line.startswith("stamp="))
    assert "pyproject.toml" in stamp and "constraints.txt" in stamp

