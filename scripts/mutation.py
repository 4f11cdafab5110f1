"""Mutation testing of the core modules with mutmut, one module at a time, and its report.

A mutant is a copy of a module with one small change (``<`` for ``<=``, ``-`` for
``+``, a constant off by one, a call's argument dropped, ...). A test suite that
notices a bug must fail on most of them: the share of mutants that make at least
one test fail (*killed*) measures how well the tests pin the code down. A
surviving mutant is either a gap in the tests or *equivalent* (it cannot change
what the code does, like ``x[:k]`` vs ``x[:k+1]`` when ``k`` is the length), and
the equivalent ones are listed with their reason in ``setup.cfg``.

For each ``[mutation:<module>]`` section of ``setup.cfg`` this script

1. copies the package, ``tests/`` and ``pyproject.toml`` to ``build/mutation/<module>/``
   (mutmut's cache there survives between runs: unchanged functions are not retested);
2. writes there a ``setup.cfg`` whose ``[mutmut]`` section is the project's, with
   ``only_mutate`` = that module and the test selection = that module's tests;
3. runs ``mutmut run`` under ``nice`` and times it;
4. reads the verdicts and writes ``benchmarks/results/mutation.json`` and the
   table of ``docs/MUTATION.md`` (every survivor with its diff).

Usage (``make mutation`` installs mutmut and runs the first line)::

    python scripts/mutation.py                 # every module, then the report
    python scripts/mutation.py bn blocks       # only these (the report keeps the others' last results)
    python scripts/mutation.py --report-only   # rewrite the report from build/mutation/
    python scripts/mutation.py --fresh bn      # forget bn's cached verdicts first
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "mutation"
RESULT = ROOT / "benchmarks" / "results" / "mutation.json"
DOC = ROOT / "docs" / "MUTATION.md"
MARKER = "<!-- Do not edit below this line: `make mutation` rewrites it (scripts/mutation.py). -->"
TARGET = 0.90
#: mutmut's exit codes that count as killed: a test failed (1), pytest broke (3),
#: the mutant hung past the time limit (timeouts: 24, 36, 152, 255, -24) or crashed.
KILLED = {1, 3, 24, 36, 152, 255, -24, -11, -9, 37}
SURVIVED = {0}
NO_TESTS = {5, 33}


@dataclass
class Module:
    name: str
    path: str
    tests: list[str]
    equivalent: dict[str, tuple[str, str]] = field(default_factory=dict)  # mutant -> (fingerprint, reason)


# --------------------------------------------------------------------------- configuration
def read_config(path: Path = ROOT / "setup.cfg") -> tuple[configparser.ConfigParser, dict[str, Module]]:
    """The project's setup.cfg and its ``[mutation:<name>]`` sections, in file order."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.optionxform = str  # keep mutant names' case
    cfg.read(path, encoding="utf-8")
    modules: dict[str, Module] = {}
    for section in cfg.sections():
        if not section.startswith("mutation:"):
            continue
        name = section.split(":", 1)[1]
        s = cfg[section]
        equivalent = {}
        for line in _lines(s.get("equivalent", "")):
            # "<mutant> <fingerprint>: <reason>"
            head, _, reason = line.partition(": ")
            mutant, _, fingerprint = head.strip().partition(" ")
            if not reason or not fingerprint:
                raise ValueError(f"setup.cfg [{section}] equivalent: write '<mutant> <fingerprint>: <reason>', got {line!r}")
            equivalent[mutant] = (fingerprint.strip(), reason.strip())
        modules[name] = Module(name, s["module"], _lines(s["tests"]), equivalent)
    return cfg, modules


def _lines(text: str) -> list[str]:
    return [x.strip() for x in text.splitlines() if x.strip()]


def module_setup_cfg(cfg: configparser.ConfigParser, module: Module) -> str:
    """The ``[mutmut]`` section of the project with this module's file and tests."""
    out = configparser.ConfigParser(interpolation=None)
    out.optionxform = str
    out["mutmut"] = dict(cfg["mutmut"])
    out["mutmut"]["only_mutate"] = module.path
    out["mutmut"]["pytest_add_cli_args_test_selection"] = "\n" + "\n".join(module.tests)
    buf = [f"# written by scripts/mutation.py for {module.name}; edit the project's setup.cfg instead\n"]
    with contextlib.closing(_StringWriter(buf)) as w:
        out.write(w)
    return "".join(buf)


class _StringWriter:
    def __init__(self, buf: list[str]) -> None:
        self.buf = buf

    def write(self, s: str) -> None:
        self.buf.append(s)

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- running
def prepare(module: Module, cfg: configparser.ConfigParser, fresh: bool) -> Path:
    """build/mutation/<name>/ with a fresh copy of the sources, the tests and the config."""
    work = BUILD / module.name
    if fresh and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in ("resnet_tutorial", "tests"):
        if (work / name).exists():
            shutil.rmtree(work / name)
        shutil.copytree(ROOT / name, work / name, ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", work / "pyproject.toml")
    (work / "setup.cfg").write_text(module_setup_cfg(cfg, module), encoding="utf-8")
    retest_survivors(work / "mutants" / f"{module.path}.meta")
    return work


def retest_survivors(meta: Path) -> int:
    """Forget the cached verdict of every mutant that was not killed, so that new tests get their chance.

    mutmut keeps a cached verdict until the mutated function changes; a test added since
    would never be tried on an old survivor. Killed verdicts are kept (a test that killed a
    mutant still does, unless it was weakened: ``--fresh`` retests everything).
    """
    if not meta.exists():
        return 0
    data = json.loads(meta.read_text(encoding="utf-8"))
    codes = data["exit_code_by_key"]
    reset = [k for k, c in codes.items() if c is None or c not in KILLED]
    for k in reset:
        codes[k] = None
    meta.write_text(json.dumps(data, indent=4), encoding="utf-8")
    return len(reset)


def run_mutmut(module: Module, work: Path, jobs: int) -> tuple[float, int]:
    """Run ``mutmut run`` in ``work``; return (seconds, exit code). The log goes to build/mutation/<name>.log."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg",
               # a mutant can write anything where the module writes: never into the learner's own data and
               # results folders (one once wrote "null" into the real data stamp and made XXFashionMNISTXX/)
               RESNET_TUTORIAL_DATA=str(work / "sandbox" / "data"), XDG_CACHE_HOME=str(work / "sandbox" / "cache"))
    env.pop("PYTHONPATH", None)  # mutmut puts its mutants/ copy first on the path itself
    cmd = ["nice", "-n", "10", sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs)]
    log = BUILD / f"{module.name}.log"
    start = time.perf_counter()
    with open(log, "wb") as f:
        rc = subprocess.call(cmd, cwd=work, env=env, stdout=f, stderr=subprocess.STDOUT)
    return time.perf_counter() - start, rc


# --------------------------------------------------------------------------- verdicts
@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def fingerprint(diff: str) -> str:
    """A short hash of the changed lines of a mutant's diff (stays valid while the function is unchanged)."""
    changed = [ln[1:].strip() for ln in diff.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    return hashlib.sha256("\n".join(changed).encode()).hexdigest()[:8]


def diffs(work: Path, names: list[str], source: Path) -> dict[str, str]:
    """mutmut's unified diff of each named mutant (original vs mutated function)."""
    if not names:
        return {}
    from mutmut.configuration import reset_config
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    with _cwd(work):
        reset_config()
        return {n: get_diff_for_mutant(n, path=source) for n in names}


def collect(module: Module) -> dict[str, Any] | None:
    """Counts, survivors (with diffs) and equivalents of one module, from its build directory."""
    work = BUILD / module.name
    meta = work / "mutants" / f"{module.path}.meta"
    if not meta.exists():
        return None
    data = json.loads(meta.read_text(encoding="utf-8"))
    codes: dict[str, int | None] = data["exit_code_by_key"]
    durations: dict[str, float] = data.get("durations_by_key", {})
    alive = sorted((k for k, c in codes.items() if c in SURVIVED or c in NO_TESTS), key=_natural)
    unknown = sorted(k for k, c in codes.items() if c is None or (c not in KILLED and c not in SURVIVED and c not in NO_TESTS))
    diff = diffs(work, alive, Path(module.path))
    equivalent, survivors, stale = [], [], []
    for k in alive:
        entry = module.equivalent.get(k)
        fp = fingerprint(diff[k])
        item = {"mutant": k, "fingerprint": fp, "diff": _short_diff(diff[k]),
                "status": "no tests" if codes[k] in NO_TESTS else "survived"}
        if entry and entry[0] == fp:
            equivalent.append({**item, "reason": entry[1]})
        else:
            survivors.append(item)
    for k, (fp, _) in module.equivalent.items():
        if k not in diff or fingerprint(diff[k]) != fp:
            stale.append(k)
    total = len(codes)
    killed = sum(1 for c in codes.values() if c in KILLED)
    scored = total - len(unknown) - len(equivalent)  # a run stopped early leaves some mutants unchecked
    state = json.loads((work / "mutants" / "mutmut-stats.json").read_text()) if (work / "mutants" / "mutmut-stats.json").exists() else {}
    return {
        "module": module.name,
        "file": module.path,
        "tests": module.tests,
        "mutants": total,
        "killed": killed,
        "survived": len(survivors),
        "equivalent": len(equivalent),
        "not_run": len(unknown),
        "score": round(killed / scored, 4) if scored else None,
        "mutant_test_seconds": round(sum(durations.values()), 1),
        "stats_tests": len(state.get("duration_by_test", {})),
        "survivors": survivors,
        "equivalents": equivalent,
        "stale_equivalents": stale,
    }


def _natural(name: str) -> tuple[str, int]:
    head, _, num = name.rpartition("_")
    return (head, int(num) if num.isdigit() else -1)


def _short_diff(diff: str) -> str:
    """The changed lines only (``-`` original, ``+`` mutant)."""
    return "\n".join(ln for ln in diff.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---")))


# --------------------------------------------------------------------------- report
def write_report(rows: list[dict[str, Any]], seconds: dict[str, float], previous: dict[str, Any]) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _common import machine_info  # noqa: E402 (benchmarks/_common.py)

    old_rows = {r["module"]: r for r in previous.get("rows", [])} if previous else {}
    table = []
    for r in rows:
        wall = seconds.get(r["module"], old_rows.get(r["module"], {}).get("wall_s"))
        table.append({
            "module": r["module"], "mutants": r["mutants"], "killed": r["killed"], "survived": r["survived"],
            "equivalent": r["equivalent"], "not_run": r["not_run"], "score": r["score"],
            "wall_s": round(wall, 1) if wall else wall,
            "target_met": bool(r["score"] is not None and r["score"] >= TARGET and r["not_run"] == 0),
            "unexplained_survivors": r["survived"],
        })
    result = {
        "benchmark": "mutation",
        "description": (
            "Mutation testing of the core modules (mutmut): the share of one-line bugs that make a unit test fail, "
            "per module; score = killed / (mutants - equivalent)."
        ),
        "command": "make mutation",
        "machine": machine_info(),
        "target": f"≥ {TARGET:.0%} killed in every core module, every survivor killed or listed as equivalent",
        "target_met": all(t["target_met"] for t in table),
        "rows": table,
        "modules": rows,
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(RESULT)
    write_doc(result)
    return result


def write_doc(result: dict[str, Any]) -> None:
    head = DOC.read_text(encoding="utf-8").split(MARKER, 1)[0].rstrip("\n") if DOC.exists() else "# Mutation testing"
    m = result["machine"]
    out = [head, "", MARKER, "",
           f"Measured {m.get('date')} on {m.get('cpu')} ({m.get('cores')} cores, CPU capability "
           f"{m.get('cpu_capability')}), mutmut run with `--max-children 2` under `nice -n 10`; "
           "wall time includes mutmut's clean run of the module's tests.", "",
           "Score = killed / (mutants - equivalent - not run); *not run*: mutants a stopped run did not reach.", "",
           "| module | mutants | killed | survived | equivalent | not run | score | wall time | target met |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for t in result["rows"]:
        score = f"{t['score']:.1%}" if t["score"] is not None else "-"
        wall = f"{t['wall_s'] / 60:.1f} min" if t.get("wall_s") else "-"
        out.append(f"| `{t['module']}` | {t['mutants']} | {t['killed']} | {t['survived']} | {t['equivalent']} | "
                   f"{t['not_run']} | {score} | {wall} | {'yes' if t['target_met'] else 'no'} |")
    for r in result["modules"]:
        out += ["", f"### `{r['module']}`", "", f"Tests: {', '.join('`' + t + '`' for t in r['tests'])}."]
        if r["stale_equivalents"]:
            out += ["", "Listed as equivalent in setup.cfg but no longer surviving with that diff (remove or update): "
                    + ", ".join(f"`{s}`" for s in r["stale_equivalents"]) + "."]
        if r["survivors"]:
            out += ["", "Survivors (each is a missing test, or equivalent and to be listed in setup.cfg):", ""]
            for s in r["survivors"]:
                out += [f"- `{s['mutant']}` ({s['status']}, fingerprint `{s['fingerprint']}`)", "", "  ```diff"]
                out += ["  " + ln for ln in s["diff"].splitlines()] + ["  ```"]
        if r["equivalents"]:
            out += ["", "Equivalent mutants (cannot change behaviour):", ""]
            for s in r["equivalents"]:
                out += [f"- `{s['mutant']}`: {s['reason']}", "", "  ```diff"]
                out += ["  " + ln for ln in s["diff"].splitlines()] + ["  ```"]
        if not r["survivors"] and not r["equivalents"]:
            out += ["", "Every mutant is killed."]
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text("\n".join(out) + "\n", encoding="utf-8")


def kept_rows(modules: dict[str, Module], previous: dict[str, Any]) -> list[dict[str, Any]]:
    """Each module's verdicts from its build directory, or else its last reported ones.

    A fresh checkout (or a worktree that ran some modules only) has no build/mutation/<name>/
    for the others; their last results in benchmarks/results/mutation.json stay in the report.
    """
    old = {r["module"]: r for r in previous.get("modules", [])} if previous else {}
    rows = []
    for name in modules:
        row = collect(modules[name])
        if row is None:
            row = old.get(name)
        if row is not None:
            rows.append(row)
    return rows


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", help="module names from setup.cfg's [mutation:<name>] sections (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once (mutmut --max-children; default 2)")
    parser.add_argument("--fresh", action="store_true", help="delete the modules' cached verdicts first")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the report from build/mutation/")
    args = parser.parse_args(argv)

    cfg, modules = read_config()
    unknown = [m for m in args.modules if m not in modules]
    if unknown:
        parser.error(f"unknown module(s) {unknown}: setup.cfg has [mutation:...] sections for {list(modules)}")
    chosen = args.modules or list(modules)
    previous = json.loads(RESULT.read_text(encoding="utf-8")) if RESULT.exists() else {}
    seconds: dict[str, float] = {}
    failed = []
    if not args.report_only:
        BUILD.mkdir(parents=True, exist_ok=True)
        for name in chosen:
            work = prepare(modules[name], cfg, args.fresh)
            print(f"[mutation] {name}: mutmut run (log: {BUILD / (name + '.log')})", flush=True)
            seconds[name], rc = run_mutmut(modules[name], work, args.jobs)
            print(f"[mutation] {name}: {seconds[name] / 60:.1f} min, exit code {rc}", flush=True)
            if rc != 0:
                failed.append(name)
    rows = kept_rows(modules, previous)
    result = write_report(rows, seconds, previous)
    for t in result["rows"]:
        print(f"[mutation] {t['module']:8s} {t['mutants']:4d} mutants  {t['killed']:4d} killed  "
              f"{t['survived']:3d} survived  {t['equivalent']:3d} equivalent  {t['not_run']:4d} not run  "
              f"score {t['score'] if t['score'] is None else format(t['score'], '.1%')}")
    print(f"[mutation] wrote {RESULT.relative_to(ROOT)} and {DOC.relative_to(ROOT)}")
    if failed:
        print(f"[mutation] mutmut failed for {failed}: see build/mutation/<module>.log", file=sys.stderr)
        return 1
    return 0 if result["target_met"] else 2


if __name__ == "__main__":
    sys.exit(main())
