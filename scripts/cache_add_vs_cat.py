#!/usr/bin/env python
"""Reproduce lesson 05's cached add-vs-cat runs: results/add_vs_cat.csv (+ .json).

    python scripts/cache_add_vs_cat.py                 # 14 layers, 5 epochs, 600 images per class, seeds 0-2
    python scripts/cache_add_vs_cat.py --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resnet_tutorial.lessons.l05_add_vs_concat import CACHE, cache_add_cat_runs  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--depth", type=int, default=14)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--per-class", type=int, default=600)
    p.add_argument("--test-per-class", type=int, default=200)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", type=Path, default=CACHE)
    args = p.parse_args(argv)
    table = cache_add_cat_runs(args.depth, args.epochs, args.per_class, args.test_per_class, args.seeds, args.out)
    last = table[table["epoch"] == table["epoch"].max()]
    print(last.groupby("merge")["test_acc"].describe()[["mean", "min", "max"]])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
