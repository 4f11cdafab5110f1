#!/usr/bin/env python
"""Execute the lessons to HTML under build/lessons/ for reading.

    python scripts/run_lessons.py                 # every lesson, full settings
    python scripts/run_lessons.py --fast          # RESNET_TUTORIAL_FAST=1
    python scripts/run_lessons.py --images notebooks/01_*.ipynb   # also dump figures as PNG

Executes a copy in memory (the committed notebooks are never modified) with
resnet_tutorial.executor, the executor the tests and benchmarks use too.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_one(path: Path, out_dir: Path, *, images: bool, timeout: int | None = None) -> float:
    """Execute ``path`` with the project's executor, write its HTML (and figures): seconds taken.

    The HTML is written even when a cell fails, so the error can be read there.
    """
    from nbconvert import HTMLExporter

    from resnet_tutorial.executor import execute_notebook

    try:
        nb, seconds = execute_notebook(path, timeout=timeout)
    except Exception as exc:
        if getattr(exc, "notebook", None) is not None:
            _write(exc.notebook, path, out_dir, images, HTMLExporter)
        raise
    _write(nb, path, out_dir, images, HTMLExporter)
    return seconds


def _write(nb, path: Path, out_dir: Path, images: bool, exporter) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    html, _ = exporter().from_notebook_node(nb)
    (out_dir / f"{path.stem}.html").write_text(html, encoding="utf-8")
    if not images:
        return
    img_dir = out_dir / path.stem
    img_dir.mkdir(exist_ok=True)
    n = 0
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                n += 1
                (img_dir / f"cell{i:02d}_{n:02d}.png").write_bytes(base64.b64decode(data["image/png"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/*.ipynb")
    parser.add_argument("--fast", action="store_true", help="set RESNET_TUTORIAL_FAST=1")
    parser.add_argument("--images", action="store_true", help="also write every figure as PNG")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "lessons")
    parser.add_argument("--timeout", type=int, default=None,
                        help="per-cell timeout in seconds (default: 60 with --fast, 3600 otherwise)")
    args = parser.parse_args(argv)
    if args.fast:
        os.environ["RESNET_TUTORIAL_FAST"] = "1"
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    failed = 0
    for path in paths:
        path = path.resolve()
        try:
            seconds = run_one(path, args.out, images=args.images, timeout=args.timeout)
            print(f"ok      {path.name}  {seconds:6.1f} s  -> {args.out / (path.stem + '.html')}")
        except Exception as exc:  # report and go on with the next lesson
            failed += 1
            print(f"FAILED  {path.name}: {type(exc).__name__}: {str(exc)[-2000:]}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
