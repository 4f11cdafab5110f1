#!/usr/bin/env bash
# One idempotent setup for a fresh machine: system packages (FashionMNIST and
# Chromium, where apt is usable), a project-local virtual environment with the
# locked dependencies (constraints.txt), the named Jupyter kernel, and the data check.
# Re-running is fast: each step is skipped when its inputs did not change.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY=${PYTHON:-python3}

say() { printf '[setup] %s\n' "$*"; }

# 1. System packages: the Debian FashionMNIST files and Chromium for the browser tests.
need_apt=()
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need_apt+=(dataset-fashion-mnist)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing with apt: ${need_apt[*]}"
    (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}") >/tmp/resnet-tutorial-apt.log 2>&1 \
      || say "apt-get could not install ${need_apt[*]} (see /tmp/resnet-tutorial-apt.log); data falls back to torchvision's download, browser tests will say they skip"
  else
    say "not root or no apt-get: skipping ${need_apt[*]} (data falls back to torchvision's download; browser tests need Chromium)"
  fi
fi

# 2. The virtual environment with the locked set CI tests (constraints.txt; pyproject.toml has
#    the ranges), reinstalled only when pyproject.toml or constraints.txt changed.
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  say "$("$PY" -V 2>&1) is too old for the locked set (constraints.txt needs Python >= 3.11): run with PYTHON=python3.11,"
  say "or install the package's ranges into an environment of your own: pip install '.[lab]' (README, Other ways to run the course)"
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  say "installing the package and the locked set of constraints.txt (first time: about 2 minutes, 5.5 GB)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[lab,test]"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi

# 3. The named kernel the notebooks ask for, inside the venv (found by its jupyter).
if [ ! -f "$VENV/share/jupyter/kernels/resnet-tutorial/kernel.json" ]; then
  say "registering the Jupyter kernel 'resnet-tutorial'"
  "$VENV/bin/python" -m ipykernel install --sys-prefix --name resnet-tutorial \
      --display-name "Python (resnet-tutorial)" >/dev/null
fi

# 4. FashionMNIST: locate, verify, unpack from Debian's files or download.
"$VENV/bin/python" -m resnet_tutorial data --quiet || say "FashionMNIST is not available yet: run '.venv/bin/python -m resnet_tutorial data' to see why"
say "ready"
