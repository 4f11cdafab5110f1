#!/usr/bin/env bash
# Check both ends of pyproject.toml's dependency ranges (not part of `make test`: the first run
# downloads two CUDA builds of torch, several GB, and takes about an hour on 2 cores).
#
#   scripts/check_compat.sh                 # both ends
#   scripts/check_compat.sh lowest          # or only one: lowest | newest
#   scripts/check_compat.sh report          # only rewrite docs/COMPAT.md from docs/compat.json
#
# lowest: a fresh venv with Python $PYTHON_LOWEST (default 3.10, the floor of requires-python) and
#         every direct dependency (with the lab and test extras) at the lower bound pyproject.toml
#         declares (`name==bound`; what they pull in resolves as usual);
# newest: a fresh venv with Python $PYTHON_NEWEST (default 3.13) and the newest releases pip finds.
# In each: the unit tests, then every lesson in FAST mode with its exercise solutions and the
# non-editable install test (pytest -m "notebooks and not browser"). The results go to
# docs/compat.json and docs/COMPAT.md (the versions, the test counts, any failure).
#
# Settings (environment): COMPAT_DIR (venvs and logs; default build/compat), PYTHON_LOWEST,
# PYTHON_NEWEST (a version like 3.10 or a path), JOBS (pytest workers, default 2),
# COMPAT_REUSE=1 (keep a venv that is already installed: reruns the tests only),
# COMPAT_PIP_CONFIG (exported as PIP_CONFIG_FILE for the installs and tests: /dev/null ignores a
# machine's pip configuration, e.g. one that caps torch at the release it keeps on disk).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DIR=${COMPAT_DIR:-$ROOT/build/compat}
JOBS=${JOBS:-2}
FLAVORS=("$@")
[ ${#FLAVORS[@]} -gt 0 ] || FLAVORS=(lowest newest)
mkdir -p "$DIR" docs
# for the installs and for the tests (the non-editable install test runs pip in the venv)
[ -z "${COMPAT_PIP_CONFIG:-}" ] || export PIP_CONFIG_FILE=$COMPAT_PIP_CONFIG
say() { printf '[compat] %s\n' "$*"; }

find_python() {  # a version (3.10) or a path -> an interpreter that runs
  local want=$1 cand
  for cand in "$want" "python$want" "$(command -v pyenv >/dev/null && echo "$(pyenv root)/versions/$want"*/bin/python"$want" | awk '{print $1}')"; do
    if [ -n "$cand" ] && "$cand" -c 'import sys' >/dev/null 2>&1; then command -v "$cand" || echo "$cand"; return; fi
  done
  say "no Python $want found (set PYTHON_LOWEST / PYTHON_NEWEST to an interpreter)" >&2
  return 1
}

lowest_constraints() {  # pyproject.toml's direct dependencies, each pinned to its lower bound
  "$1" - "$ROOT/pyproject.toml" <<'PY'
import sys
try:
    import tomllib
except ModuleNotFoundError:
    from pip._vendor import tomli as tomllib
from pip._vendor.packaging.requirements import Requirement

project = tomllib.load(open(sys.argv[1], "rb"))["project"]
for spec in project["dependencies"] + [s for e in project["optional-dependencies"].values() for s in e]:
    req = Requirement(spec)
    if req.marker is not None and not req.marker.evaluate():
        continue
    lows = [s.version for s in req.specifier if s.operator == ">="]
    if not lows:
        sys.exit(f"pyproject.toml: {spec} has no lower bound to test")
    print(f"{req.name}=={lows[0]}")
PY
}

install() {  # flavor python venv (each step must succeed: this runs under `||`, where set -e is off)
  local flavor=$1 py=$2 venv=$3
  rm -rf "$venv"
  "$py" -m venv "$venv" || return 1
  "$venv/bin/python" -m pip install -q --upgrade pip || return 1
  if [ "$flavor" = lowest ]; then
    lowest_constraints "$venv/bin/python" > "$DIR/lowest-constraints.txt" || return 1
    say "lowest: $(tr '\n' ' ' < "$DIR/lowest-constraints.txt")"
    "$venv/bin/python" -m pip install -c "$DIR/lowest-constraints.txt" -e ".[lab,test]" || return 1
  else
    "$venv/bin/python" -m pip install --upgrade --upgrade-strategy eager -e ".[lab,test]" || return 1
  fi
  "$venv/bin/python" -m ipykernel install --sys-prefix --name resnet-tutorial \
      --display-name "Python (resnet-tutorial)" >/dev/null || return 1
  touch "$venv/.compat-installed"
}

run_flavor() {
  local flavor=$1 want py venv start
  if [ "$flavor" = lowest ]; then want=${PYTHON_LOWEST:-3.10}; else want=${PYTHON_NEWEST:-3.13}; fi
  py=$(find_python "$want")
  venv="$DIR/$flavor"
  start=$(date +%s)
  if [ "${COMPAT_REUSE:-0}" = 1 ] && [ -f "$venv/.compat-installed" ]; then
    say "$flavor: reusing $venv"
  else
    say "$flavor: building $venv with $("$py" -V 2>&1) (log: $DIR/$flavor-install.log)"
    install "$flavor" "$py" "$venv" > "$DIR/$flavor-install.log" 2>&1 \
      || { say "$flavor: install failed, see $DIR/$flavor-install.log"; tail -5 "$DIR/$flavor-install.log"; }
  fi
  local installed=$(( $(date +%s) - start ))
  if [ -f "$venv/.compat-installed" ]; then
    say "$flavor: unit tests (log: $DIR/$flavor-unit.log)"
    env -u PYTHONPATH -u VIRTUAL_ENV "$venv/bin/python" -m pytest -n "$JOBS" --dist loadgroup -p no:cacheprovider -q \
        -m "not notebooks and not browser" --junitxml="$DIR/$flavor-unit.xml" > "$DIR/$flavor-unit.log" 2>&1 || true
    say "$flavor: lessons in FAST mode, exercise solutions, non-editable install (log: $DIR/$flavor-lessons.log)"
    env -u PYTHONPATH -u VIRTUAL_ENV "$venv/bin/python" -m pytest -n "$JOBS" --dist loadgroup -p no:cacheprovider -q \
        -m "notebooks and not browser" --junitxml="$DIR/$flavor-lessons.xml" > "$DIR/$flavor-lessons.log" 2>&1 || true
  fi
  python3 - "$flavor" "$venv" "$DIR" "$installed" "$(( $(date +%s) - start ))" <<'PY'
import datetime, json, os, subprocess, sys, xml.etree.ElementTree as ET
from pathlib import Path

flavor, venv, out, install_s, total_s = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), *map(int, sys.argv[4:6])
record = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
          "install_seconds": install_s, "total_seconds": total_s, "cores": os.cpu_count(),
          "load_average": [round(x, 1) for x in os.getloadavg()]}
probe = ("import json, platform, sys, importlib.metadata as m, torch\n"
         "names = ['torch', 'torchvision', 'numpy', 'pandas', 'matplotlib', 'seaborn', 'tqdm', 'ipywidgets',\n"
         "         'torchsummary', 'jupyterlab', 'ipykernel', 'nbclient', 'nbformat', 'pytest']\n"
         "print(json.dumps({'python': platform.python_version(), 'versions': {n: m.version(n) for n in names},\n"
         "                  'cpu': torch.backends.cpu.get_cpu_capability(), 'cuda': torch.cuda.is_available()}))")
try:
    record.update(json.loads(subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True,
                                            text=True, check=True).stdout))
except (subprocess.CalledProcessError, FileNotFoundError, json.JSONDecodeError) as e:
    record["error"] = f"the venv did not install or import: see {out}/{flavor}-install.log ({type(e).__name__})"
for part in ("unit", "lessons"):
    xml = out / f"{flavor}-{part}.xml"
    if not xml.is_file():
        continue
    cases = ET.parse(xml).getroot().iter("testcase")
    counts, failed = {"passed": 0, "failed": 0, "skipped": 0}, []
    for case in cases:
        kinds = {child.tag for child in case}
        if kinds & {"failure", "error"}:
            counts["failed"] += 1
            failed.append(f"{case.get('classname')}::{case.get('name')}")
        elif "skipped" in kinds:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    record[part] = {**counts, "failures": failed}
record["ok"] = "error" not in record and all(record.get(p, {}).get("failed", 1) == 0 for p in ("unit", "lessons"))
state_path = Path("docs/compat.json")
state = json.loads(state_path.read_text()) if state_path.is_file() else {}
state[flavor] = record
state_path.write_text(json.dumps(state, indent=2) + "\n")
print(f"[compat] {flavor}: {'all passed' if record['ok'] else 'FAILED'}; {state_path} updated")
PY
}

for flavor in "${FLAVORS[@]}"; do
  case $flavor in
    lowest|newest) run_flavor "$flavor" ;;
    report) ;;  # only rewrite docs/COMPAT.md from docs/compat.json
    *) say "unknown: $flavor (lowest, newest or report)"; exit 2 ;;
  esac
done

python3 - <<'PY'
import json
from pathlib import Path

state = json.loads(Path("docs/compat.json").read_text())
order = [f for f in ("lowest", "newest") if f in state]
first = ["torch", "torchvision"]
names = sorted({n for f in order for n in state[f].get("versions", {})},
               key=lambda n: (first.index(n) if n in first else len(first), n))
def cell(f, key):
    part = state[f].get(key)
    if part is None:
        return "not run"
    text = f"{part['passed']} passed, {part['failed']} failed, {part['skipped']} skipped"
    return text + ("" if not part["failures"] else ": " + ", ".join(f"`{x}`" for x in part["failures"][:8]))
rows = [("Python", {f: state[f].get("python", "?") for f in order})]
rows += [(n, {f: state[f].get("versions", {}).get(n, "?") for f in order}) for n in names]
rows += [("unit tests", {f: cell(f, "unit") for f in order}),
         ("lessons (FAST), exercise solutions, non-editable install", {f: cell(f, "lessons") for f in order}),
         ("result", {f: "**all passed**" if state[f]["ok"] else "**FAILED**" for f in order}),
         ("CPU capability, CUDA", {f: f"{state[f].get('cpu', '?')}, {state[f].get('cuda', '?')}" for f in order}),
         ("cores, load average at the end (1/5/15 min)",
          {f: f"{state[f].get('cores', '?')}, {'/'.join(map(str, state[f].get('load_average', ['?'])))}" for f in order}),
         ("measured", {f: f"{state[f]['date']} ({state[f]['total_seconds'] / 60:.0f} min, install "
                          f"{state[f]['install_seconds'] / 60:.0f} min)" for f in order})]
lines = ["# Compatibility: both ends of the dependency ranges", "",
         "Written by `scripts/check_compat.sh` (do not edit by hand). **lowest**: every direct dependency of",
         "`pyproject.toml` (with the `lab` and `test` extras) at its declared lower bound, on the oldest Python",
         "`requires-python` admits; **newest**: the newest releases pip found, on the newest Python tried.",
         "Each venv runs the unit tests, then every lesson in FAST mode, the lessons' exercise solutions",
         "and the non-editable install test (`pytest -m \"notebooks and not browser\"`). The browser tests",
         "are not part of it. The exact set CI tests is `constraints.txt`. A lesson fails when one of its",
         "cells runs past the 60 s FAST limit: on a loaded machine (see the load row) compare with the",
         "locked set run at the same time before blaming a version.", "",
         "| | " + " | ".join(order) + " |", "|---|" + "---|" * len(order)]
lines += [f"| {label} | " + " | ".join(str(v[f]) for f in order) + " |" for label, v in rows]
Path("docs/COMPAT.md").write_text("\n".join(lines) + "\n")
print("[compat] docs/COMPAT.md written")
PY
