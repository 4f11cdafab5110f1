"""Print each lesson's style numbers: visible prose words, words before the first output, long cells.

    python scripts/lesson_stats.py                  # from the committed sources (no outputs)
    python scripts/lesson_stats.py build/lessons    # from executed notebooks (*.ipynb) in a folder

The numbers of the closing notes of the learner-first issues come from here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from lesson_style import lesson_stats  # noqa: E402


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else ROOT / "notebooks"
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise SystemExit(f"no lesson notebooks (NN_*.ipynb) in {folder}")
    print(f"{'lesson':40s} {'words':>6s} {'before 1st output':>17s}  long cells / posts named / silent ':'")
    for path in paths:
        cells = nbformat.read(path, as_version=4).cells
        executed = any(c.cell_type == "code" and c.get("outputs") for c in cells)
        s = lesson_stats(cells, executed)
        before = "-" if s.words_before_first_output is None else str(s.words_before_first_output)
        print(f"{path.stem:40s} {s.visible_words:6d} {before:>17s}  {s.long_cells} / {s.post_mentions} / "
              f"{s.announcements_without_output if executed else '-'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
