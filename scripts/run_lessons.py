#!/usr/bin/env python
"""Execute the lessons to HTML under build/lessons/ for reading.

    python scripts/run_lessons.py                 # every lesson, full settings
    python scripts/run_lessons.py --fast          # RESNET_TUTORIAL_FAST=1
    python scripts/run_lessons.py --images notebooks/01_*.ipynb   # also dump figures as PNG

Executes a copy in memory: the committed notebooks are never modified.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_one(path: Path, out_dir: Path, *, images: bool, timeout: int) -> float:
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=nb.metadata.get("kernelspec", {}).get("name", "python3"),
        resources={"metadata": {"path": str(path.parent)}},
    )
    try:
        client.execute()
    finally:
        seconds = time.perf_counter() - start
        out_dir.mkdir(parents=True, exist_ok=True)
        html, _ = HTMLExporter().from_notebook_node(nb)
        (out_dir / f"{path.stem}.html").write_text(html, encoding="utf-8")
        if images:
            img_dir = out_dir / path.stem
            img_dir.mkdir(exist_ok=True)
            n = 0
            for i, cell in enumerate(nb.cells):
                for output in cell.get("outputs", []):
                    data = output.get("data", {})
                    if "image/png" in data:
                        n += 1
                        (img_dir / f"cell{i:02d}_{n:02d}.png").write_bytes(base64.b64decode(data["image/png"]))
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/*.ipynb")
    parser.add_argument("--fast", action="store_true", help="set RESNET_TUTORIAL_FAST=1")
    parser.add_argument("--images", action="store_true", help="also write every figure as PNG")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "lessons")
    parser.add_argument("--timeout", type=int, default=3600, help="per-cell timeout in seconds")
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
