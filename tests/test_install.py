"""A learner's install: the wheel, installed the ordinary way (not editable) into a fresh virtual
environment that already has torch, and lessons 05, 08 and 10 (the ones that read cached results)
run from a folder outside the repository with that environment's ``python3`` kernel.

"Already has torch": when the tests run in a virtual environment (``make test``: ``.venv``), the new
one sees the packages of the running one through a ``.pth`` line (what ``--system-site-packages``
does for a system Python, which is used when the tests run outside a venv), so nothing is
downloaded; ``pip install --no-index`` makes sure of it, and also checks that pyproject.toml's
ranges accept the torch that is there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ["05_add_vs_concat", "08_degradation", "09_torchvision_resnet", "10_shattered_gradients", "11_paths_and_landscapes"]
pytestmark = [pytest.mark.slow, pytest.mark.notebooks]


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _clean_env(tmp: Path) -> dict[str, str]:
    """The environment of a learner: no PYTHONPATH pointing at the repository, no results override,
    an empty ~/.cache/resnet-tutorial/results (XDG), FAST mode, one thread per kernel."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "RESNET_TUTORIAL_RESULTS", "MPLBACKEND", "VIRTUAL_ENV", "PYTHONHOME"}}
    env.update(XDG_CACHE_HOME=str(tmp / "xdg"), RESNET_TUTORIAL_FAST="1", OMP_NUM_THREADS="1")
    return env


def _setuptools_builds_here() -> bool:
    """Can this environment's setuptools build the wheel offline (pyproject.toml's build requirement)?"""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return tuple(int(p) for p in version("setuptools").split(".")[:2]) >= (70, 1)
    except (PackageNotFoundError, ValueError):
        return False


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    isolation = [] if not _setuptools_builds_here() else ["--no-build-isolation"]  # else pip fetches setuptools
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w", str(out), str(ROOT)], cwd=out)
    (whl,) = out.glob("resnet_tutorial-*.whl")
    return whl


@pytest.fixture(scope="module")
def learner(tmp_path_factory, wheel) -> tuple[Path, dict[str, str], Path]:
    """(the new venv's python, its environment, the course folder outside the repo)."""
    tmp = tmp_path_factory.mktemp("learner")
    env = _clean_env(tmp)
    in_venv = sys.prefix != sys.base_prefix
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", *([] if in_venv else ["--system-site-packages"]), str(venv)], env=env)
    python = venv / "bin" / "python"
    if in_venv:  # layer the running environment under the new one (its torch, jupyter, ...)
        site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip()
        Path(site, "_outer_env.pth").write_text(sysconfig.get_path("purelib") + "\n")
        # Python < 3.12 seeds a venv with an old setuptools that would shadow the one torch needs
        subprocess.run([str(python), "-m", "pip", "uninstall", "-q", "-y", "setuptools"], env=env, capture_output=True)
    _run([str(python), "-m", "pip", "install", "--no-index", "-q", str(wheel)], env=env, cwd=tmp)
    course = tmp / "course"
    course.mkdir()
    for name in LESSONS:
        shutil.copy(ROOT / "notebooks" / f"{name}.ipynb", course)
    return python, env, course


def test_the_wheel_carries_every_cached_result(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"resnet_tutorial/_results/{p.relative_to(ROOT / 'results').as_posix()}"
                for p in (ROOT / "results").rglob("*") if p.is_file()}
    assert expected and expected <= names, f"missing from the wheel: {sorted(expected - names)}"
    assert not any(n.startswith(("tests/", "notebooks/", "scripts/", "results/")) for n in names)


def test_installed_package_finds_its_caches_outside_the_repo(learner):
    python, env, course = learner
    probe = _run([str(python), "-c", textwrap.dedent("""
        import json, resnet_tutorial, torch
        from resnet_tutorial import results
        print(json.dumps({"package": resnet_tutorial.__file__, "torch": [torch.__version__, torch.__file__],
                          "found": {n: str(results.locate(n)) for n in results.REBUILD},
                          "writes": str(results.output_dir())}))
        """)], env=env, cwd=course)
    info = json.loads(probe.stdout)
    site = Path(info["package"]).parents[1]
    assert site.name == "site-packages" and str(ROOT) not in info["package"]
    assert all(Path(p).is_relative_to(site / "resnet_tutorial" / "_results") for p in info["found"].values())
    assert not Path(info["writes"]).is_relative_to(site)  # a rebuild never writes into site-packages
    import torch  # the environment's own torch is the one used: the install replaced nothing

    assert info["torch"] == [torch.__version__, torch.__file__]


def test_lessons_run_from_an_installed_package(learner):
    """Lessons 05, 08 and 10 in FAST mode, each cell within 60 s, with the venv's python3 kernel."""
    python, env, course = learner
    driver = textwrap.dedent("""
        import json, sys
        from resnet_tutorial.executor import execute_notebook
        times = {}
        for name in sys.argv[1:]:
            nb, seconds = execute_notebook(f"{name}.ipynb", fast=True, kernel_name="python3")
            first = next(c for c in nb.cells if c.cell_type == "code")
            times[name] = {"seconds": round(seconds, 1), "setup_cell_output": first.outputs}
        print(json.dumps(times))
        """)
    proc = _run([str(python), "-c", driver, *LESSONS], env=env, cwd=course, timeout=1800)
    times = json.loads(proc.stdout.strip().splitlines()[-1])
    assert list(times) == LESSONS
    for name, t in times.items():  # the package is importable: the setup cell stays silent
        assert t["setup_cell_output"] == [], f"{name}: the setup cell printed {t['setup_cell_output']}"
    print("installed-package lessons (s):", {n: t["seconds"] for n, t in times.items()})
