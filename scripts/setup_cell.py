#!/usr/bin/env python
"""Put the canonical setup cell first among the code cells of every lesson (idempotent).

    python scripts/setup_cell.py            # insert or update it in notebooks/*.ipynb
    python scripts/setup_cell.py --check    # exit 1 if a notebook lacks it or has an old version
    python scripts/setup_cell.py a.ipynb    # only these notebooks

The cell makes a lesson open in any notebook client. Where the package is importable (``make lab``,
``pip install`` into the kernel's environment, VS Code or Jupyter Notebook 7 with that kernel) it
does nothing and prints nothing. On Google Colab or Kaggle without the package it installs the
course from its repository (:data:`REPOSITORY`) and says so in one line; the data then comes
through torchvision's download on first use. Anywhere else without the package it stops with an
error that says which kernel to pick or what to install, instead of a bare ``ModuleNotFoundError``
three cells later. It is self-contained: it cannot import ``resnet_tutorial`` before knowing that
it is there.

Edit the cell here, never in a notebook: tests/test_setup_cell.py checks that every lesson carries
exactly this text. Rerun the script after adding or rewriting a lesson.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
#: Where hosted notebooks install the course from. A placeholder until the repository is
#: published: set it to the public URL (then run this script) before sending anyone to Colab.
REPOSITORY = "https://github.com/OWNER/resnet-tutorial"
#: The first line of the cell; how the script recognises an earlier version of it.
MARKER = "# Setup (the same in every lesson)"
CELL_ID = "setup"

SOURCE = f'''{MARKER}: nothing happens where the course package is installed;
# on Colab or Kaggle it installs the package (about a minute; the data downloads on first use).
import importlib, importlib.util, os, subprocess, sys

REPOSITORY = "{REPOSITORY}"
if importlib.util.find_spec("resnet_tutorial") is None:
    if "google.colab" not in sys.modules and "KAGGLE_KERNEL_RUN_TYPE" not in os.environ:
        raise ModuleNotFoundError(
            f"resnet_tutorial is not installed for this kernel ({{sys.executable}}): pick the kernel 'Python "
            f"(resnet-tutorial)' (make setup registers it) or run %pip install 'resnet-tutorial @ git+{{REPOSITORY}}'")
    print(f"Installing the course package from {{REPOSITORY}} ...")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"resnet-tutorial @ git+{{REPOSITORY}}"], check=True)
    importlib.invalidate_caches()
if "google.colab" in sys.modules:  # Colab shows ipywidgets 8 through its custom widget manager
    from google.colab import output
    output.enable_custom_widget_manager()'''


def canonical_cell() -> nbformat.NotebookNode:
    """A fresh copy of the setup cell."""
    return nbformat.v4.new_code_cell(SOURCE, id=CELL_ID)


def is_setup_cell(cell: nbformat.NotebookNode) -> bool:
    return cell.cell_type == "code" and cell.source.startswith(MARKER)


def apply(nb: nbformat.NotebookNode) -> bool:
    """Make the canonical cell the first code cell of ``nb`` (in place); True if anything changed.

    An earlier version keeps its id and metadata (``nbstripout`` renumbers ids; that is no change).
    """
    before = [(c.cell_type, c.source) for c in nb.cells]
    old = next((c for c in nb.cells if is_setup_cell(c)), None)
    rest = [c for c in nb.cells if not is_setup_cell(c)]
    first_code = next((i for i, c in enumerate(rest) if c.cell_type == "code"), len(rest))
    cell = canonical_cell()
    if old is not None:
        cell.id, cell.metadata = old.get("id", CELL_ID), old.metadata
    nb.cells = rest[:first_code] + [cell] + rest[first_code:]
    return [(c.cell_type, c.source) for c in nb.cells] != before or bool(old is not None and old.get("outputs"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/[0-9][0-9]_*.ipynb")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook needs the update")
    args = p.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    stale = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if apply(nb):
            stale.append(path)
            if not args.check:
                nbformat.write(nb, path)
    verb = "need" if args.check else "updated"
    print(f"{len(stale)} of {len(paths)} notebooks {verb} the setup cell" + "".join(f"\n  {p}" for p in stale))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
