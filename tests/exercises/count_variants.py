#!/usr/bin/env python
"""How the checker does on the variant corpus: correct accepted, wrong rejected, wrong named.

    PYTHONPATH=$PWD .venv/bin/python tests/exercises/count_variants.py            # one line per exercise, totals
    PYTHONPATH=$PWD .venv/bin/python tests/exercises/count_variants.py --misses   # and every variant it gets wrong

"Named" means the report names a mistake (``CheckResult.mistakes`` is not
empty); "as listed" means it names the mistake the corpus lists for that
variant. The totals are given for the first batch (the variants the recognisers
were designed with), the held-out batch (written afterwards, ``variants/held_out.py``)
and both. Nothing is written to the progress file.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the corpus package

os.environ.setdefault("RESNET_TUTORIAL_PROGRESS", str(Path(tempfile.mkdtemp()) / "progress.json"))

from exercises.variants import load  # noqa: E402

from resnet_tutorial import exercises as E  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--misses", action="store_true", help="list every variant the checker gets wrong or leaves unnamed")
    args = parser.parse_args(argv)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    batches: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    misses: list[str] = []
    for v in load():
        result = E.check(v.exercise, v.fn, record=False)
        for c in (counts[v.exercise], batches["held-out batch" if v.held_out else "first batch"], batches["TOTAL"]):
            _count(c, v, result)
        tag = " (held out)" if v.held_out else ""
        if v.correct and not result.passed:
            misses.append(f"REJECTED a correct one{tag}  {v.exercise}: {v.note}\n{_indent(result.message)}")
        elif not v.correct and result.passed:
            misses.append(f"ACCEPTED a wrong one{tag}    {v.exercise}: {v.note}")
        elif not v.correct and (not result.mistakes or (v.mistake is not None and v.mistake not in result.mistakes)):
            misses.append(f"not named as {v.mistake!s:<18}{tag} {v.exercise}: {v.note} -> {result.mistakes}\n"
                          f"{_indent(result.diagnosis)}")
    print(f"{'exercise':<28} {'correct accepted':>17} {'wrong rejected':>15} {'wrong named':>12} {'as listed':>10}")
    for ex_id, c in counts.items():
        print(_row(ex_id, c))
    for name in ("first batch", "held-out batch", "TOTAL"):
        print(_row(name, batches[name]))
    if args.misses:
        print("\n" + "\n".join(misses))
    return 0


def _count(c: dict[str, int], v, result) -> None:
    if v.correct:
        c["right"] += 1
        c["accepted"] += result.passed
        return
    c["wrong"] += 1
    c["rejected"] += not result.passed
    c["named"] += bool(not result.passed and result.mistakes)
    if v.mistake is not None:
        c["listed"] += 1
        c["as_listed"] += bool(not result.passed and v.mistake in result.mistakes)


def _row(name: str, c: dict[str, int]) -> str:
    return (f"{name:<28} {c['accepted']:>8} of {c['right']:<5} {c['rejected']:>6} of {c['wrong']:<5} "
            f"{c['named']:>4} of {c['wrong']:<4} {c['as_listed']:>3} of {c['listed']:<3}")


def _indent(text: str) -> str:
    return "\n".join("      " + line for line in str(text).splitlines())


if __name__ == "__main__":
    sys.exit(main())
