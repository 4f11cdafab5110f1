#!/usr/bin/env bash
# One idempotent setup for a fresh machine: system packages (FashionMNIST and
# Chromium, where apt is usable), a project-local virtual environment with the
# pinned dependencies, the named Jupyter kernel, and the data check.
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

# 2. The virtual environment, reinstalled only when pyproject.toml changed.
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  say "installing the package and its pinned dependencies (first time: about 2 minutes, 5.5 GB)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e ".[test]"
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
