#!/usr/bin/env python
"""Execute the lessons to HTML under build/lessons/ for reading.

    python scripts/run_lessons.py                 # every lesson, full settings
    python scripts/run_lessons.py --fast          # RESNET_TUTORIAL_FAST=1
    python scripts/run_lessons.py --images notebooks/01_*.ipynb   # also dump figures as PNG
                                                                  # and a digest.md to read them with
    python scripts/run_lessons.py --digest-only --out build/review build/benchmarks/lessons/full/*.ipynb

The executed notebook is written too (build/lessons/NN_name.ipynb), so
``scripts/lesson_stats.py build/lessons`` can count words before the first output.

Executes a copy in memory (the committed notebooks are never modified) with
resnet_tutorial.executor, the executor the tests and benchmarks use too.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from pathlib import Path

import nbformat

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
    nbformat.write(nb, out_dir / f"{path.stem}.ipynb")
    if not images:
        return
    img_dir = out_dir / path.stem
    img_dir.mkdir(exist_ok=True)
    (img_dir / "digest.md").write_text(_digest(nb, img_dir), encoding="utf-8")


def _digest(nb, img_dir: Path) -> str:
    """The lesson as a reader meets it: markdown, code, text outputs, and the figures written as PNG files."""
    lines, n = [f"# {img_dir.name}: executed, read top to bottom\n"], 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            lines.append(f"--- cell {i} (markdown)\n{cell.source}\n")
            continue
        if cell.cell_type != "code":
            continue
        lines.append(f"--- cell {i} (code)\n```python\n{cell.source}\n```")
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                n += 1
                name = f"cell{i:02d}_{n:02d}.png"
                (img_dir / name).write_bytes(base64.b64decode(data["image/png"]))
                lines.append(f"[figure: {name}]")
            text = output.get("text") or data.get("text/markdown") or data.get("text/plain")
            if output.get("output_type") == "error":
                text = f"{output.get('ename')}: {output.get('evalue')}"
            if text and "image/png" not in data:
                text = text if isinstance(text, str) else "".join(text)
                lines.append("output:\n" + (text if len(text) < 3000 else text[:3000] + "\n...[cut]"))
            if "application/vnd.jupyter.widget-view+json" in data:
                lines.append("[widget: an explorer; its first frame is in the widget state, if saved]")
        lines.append("")
    return "\n".join(lines)


def digest_executed(paths: list[Path], out_dir: Path) -> None:
    """Write digest.md and the figures of already executed notebooks (``--digest-only``), running nothing."""
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        img_dir = out_dir / path.stem
        img_dir.mkdir(parents=True, exist_ok=True)
        (img_dir / "digest.md").write_text(_digest(nb, img_dir), encoding="utf-8")
        print(f"digest  {img_dir / 'digest.md'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/*.ipynb")
    parser.add_argument("--digest-only", action="store_true",
                        help="the given notebooks are already executed: only write their digests and figures")
    parser.add_argument("--fast", action="store_true", help="set RESNET_TUTORIAL_FAST=1")
    parser.add_argument("--images", action="store_true", help="also write every figure as PNG")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "lessons")
    parser.add_argument("--timeout", type=int, default=None,
                        help="per-cell timeout in seconds (default: 60 with --fast, 3600 otherwise)")
    args = parser.parse_args(argv)
    if args.fast:
        os.environ["RESNET_TUTORIAL_FAST"] = "1"
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if args.digest_only:
        digest_executed(paths, args.out)
        return 0
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
