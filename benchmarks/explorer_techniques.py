"""Ways to make an explorer's next picture, timed on lesson 01's gradient explorer figure (issue 22).

    python benchmarks/explorer_techniques.py            # 7 rounds, depth 20 -> 21 -> ... moves
    python benchmarks/explorer_techniques.py --rounds 3

The same figure (15 x 4.2 in, three panels, one log axis, three legends or
titles) is made the next frame in each way, for a depth slider moved one
step at a time, with the data precomputed (so only drawing and encoding are
timed):

* *rebuild + tight*: a new figure every frame, saved with ``bbox_inches="tight"``
  (what every explorer did before issue 22, and IPython's inline backend does);
* *rebuild*: the same without the tight box (one draw instead of two);
* *kept, full draw*: one figure, artists updated, the whole figure drawn;
* *kept, blit*: one figure, only the changed artists drawn over a saved
  background when the axes did not change (what ``LiveFigure`` does);
* the three PNG encoders for the same pixels: Pillow at zlib level 6 (matplotlib's
  default), Pillow at level 1, and ``live.encode_png`` (rows unfiltered, level 1).

Rounds are interleaved so a neighbour's load spike hits every way alike; the
median and the slowest frame are reported. This is how ``live.py`` was chosen.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `_common` when run as a script

import _common  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from PIL import Image

    from resnet_tutorial.lessons import l01_vanishing_exploding_gradients as L01
    from resnet_tutorial.live import encode_png, figure_png

    load_before = os.getloadavg()
    depths = list(range(20, 32))
    data = {d: L01.GradientExplorer().compute(depth=d) for d in depths}  # precomputed: only drawing is timed

    def rebuilt(depth: int, tight: bool) -> None:
        view = L01.GradientExplorer()
        view.data = lambda **_: data[depth]  # type: ignore[method-assign]
        figure_png(view.draw(depth=depth), tight=tight)

    kept_full, kept_blit = L01.GradientExplorer(), L01.GradientExplorer()
    for view in (kept_full, kept_blit):
        view.data = lambda depth=20, **_: data[depth]  # type: ignore[method-assign]
        view.go_live()
        view.frame(depth=depths[0])

    def full(depth: int) -> None:
        kept_full.draw(depth=depth)
        kept_full.fig.stale = True  # force the whole figure
        kept_full.png()

    def pillow(level: int) -> Callable[[int], None]:
        def encode(_: int) -> None:
            buf = np.asarray(kept_blit.canvas.buffer_rgba())
            Image.fromarray(buf).convert("RGB").save(io.BytesIO(), format="png", compress_level=level)
        return encode

    ways: dict[str, Callable[[int], None]] = {
        "rebuild + tight box (before)": lambda d: rebuilt(d, True),
        "rebuild, no tight box": lambda d: rebuilt(d, False),
        "kept figure, full draw + PNG": full,
        "kept figure, blit when axes stay + PNG (LiveFigure)": lambda d: kept_blit.frame(depth=d),
        "PNG only: Pillow, zlib level 6": pillow(6),
        "PNG only: Pillow, zlib level 1": pillow(1),
        "PNG only: live.encode_png (unfiltered, level 1)": lambda d: encode_png(kept_blit.canvas),
    }
    samples: dict[str, list[float]] = {k: [] for k in ways}
    for r in range(args.rounds):
        for name, way in ways.items():
            for d in (depths if r % 2 == 0 else depths[::-1]):
                t0 = time.perf_counter()
                way(d)
                samples[name].append((time.perf_counter() - t0) * 1000)
    load_after = os.getloadavg()
    rows = [{"way": k, "median_ms": statistics.median(v), "slowest_ms": max(v), "frames": len(v)}
            for k, v in samples.items()]
    for r in rows:
        print(f"{r['way']:55s} median {r['median_ms']:7.1f} ms  slowest {r['slowest_ms']:7.1f} ms")
    blit_share = kept_blit.blits / max(1, kept_blit.blits + kept_blit.full_draws)
    result: dict[str, Any] = {
        "rows": rows,
        "summary": {
            "frames that blitted (LiveFigure)": f"{blit_share:.0%}",
            "rounds": args.rounds,
            "load average before/after (1 min)": f"{load_before[0]:.2f} / {load_after[0]:.2f}",
        },
    }
    print(f"wrote {_common.write_result('explorer_techniques', result, path=args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
