"""Training images/s of the d2l-style pipeline (A) against the package's fast path (B).

    python benchmarks/throughput.py                       # resnet20 @ 28x28 and post_fashion_resnet18 @ 96x96
    python benchmarks/throughput.py --rounds 1 --configs resnet20:28 --steps 5    # smoke test

Both pipelines train the same freshly seeded model for the same number of
SGD steps on real FashionMNIST batches; the time counts everything a training
loop waits for, data included.

* **A, d2l-style** (how the blog posts and d2l.ai train): torchvision's
  ``FashionMNIST`` dataset of PIL images, ``transforms`` (``ToTensor``,
  ``Resize`` for 96x96, ``Normalize``) applied one image at a time, a
  shuffling ``DataLoader`` (``num_workers=0``: on 2 cores worker processes
  compete with training), default NCHW layout, fp32, a plain loop.
* **B, fast path** (``resnet_tutorial.data.fast_loaders`` + ``fit``'s
  settings): the split lives in memory as one uint8 tensor and each batch is
  converted, resized and normalized as a whole; ``channels_last`` memory
  layout; bf16 autocast where the CPU computes bf16 natively
  (``train.fastest_amp``; BatchNorm and the loss stay fp32).

A and B alternate, round after round, each round in a fresh process (so that
each pipeline's peak memory is its own, and neither inherits the other's
warmed-up caches); the median of the rounds is reported with the spread of
the per-round ratios B/A. Target: B/A >= 1.5 for both models on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `_common` when run as a script
import _common  # noqa: E402

TARGET = 1.5
PIPELINES = {"A": "d2l-style (torchvision + transforms + DataLoader, NCHW fp32)",
             "B": "fast path (uint8 tensor loader, channels_last, bf16 autocast)"}


def run_worker(pipeline: str, model_name: str, size: int, batch_size: int, steps: int, warmup: int) -> dict:
    """Train ``warmup + steps`` steps with one pipeline in this process; time the last ``steps``."""
    import torch
    import torch.nn as nn

    from resnet_tutorial.data import fast_loaders, torchvision_loaders
    from resnet_tutorial.models import create_model
    from resnet_tutorial.device import autocast as _autocast, autocast_dtype as _amp_dtype, fastest_amp

    torch.manual_seed(0)
    model = create_model(model_name, num_classes=10)
    resize = None if size == 28 else size
    device = torch.device("cpu")
    if pipeline == "A":
        loader, _ = torchvision_loaders(batch_size=batch_size, resize=resize, num_workers=0)
        channels_last, dtype = False, None
    else:
        loader, _ = fast_loaders(batch_size=batch_size, resize=resize, device=device)
        channels_last, dtype = True, _amp_dtype(fastest_amp(device), device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    batches = iter(loader)
    done, t0 = 0, 0.0
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        x, y = next(batches)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device, dtype):
            out = model(x)
        loss = loss_fn(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warmup:
            done += len(y)
    seconds = time.perf_counter() - t0
    return {"images_per_s": done / seconds, "seconds": seconds, "peak_rss_mib": _common.peak_rss_mib(),
            "loss": float(loss), "amp": str(dtype).replace("torch.", "") if dtype else "fp32",
            "threads": torch.get_num_threads()}


def measure(model: str, size: int, batch_size: int, steps: int, warmup: int, rounds: int) -> dict:
    """``rounds`` alternating A/B runs, each in a fresh process; medians and the ratio's spread."""
    runs: dict[str, list[dict]] = {"A": [], "B": []}
    for r in range(rounds):
        for p in (("A", "B") if r % 2 == 0 else ("B", "A")):  # alternate who goes first
            cmd = [sys.executable, __file__, "--worker", p, "--configs", f"{model}:{size}",
                   "--batch-size", str(batch_size), "--steps", str(steps), "--warmup", str(warmup)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"pipeline {p} failed for {model}@{size}:\n{proc.stderr[-2000:]}")
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            runs[p].append(res)
            print(f"  round {r + 1}/{rounds} {p}: {res['images_per_s']:7.1f} images/s "
                  f"(peak RSS {res['peak_rss_mib']:.0f} MiB)", flush=True)
    ratios = [b["images_per_s"] / a["images_per_s"] for a, b in zip(runs["A"], runs["B"])]
    med = {p: statistics.median(x["images_per_s"] for x in runs[p]) for p in runs}
    return {
        "model": model,
        "input": f"{size}x{size}",
        "batch": batch_size,
        "steps": steps,
        "A_images_per_s": med["A"],
        "B_images_per_s": med["B"],
        "ratio_B_over_A": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "A_peak_rss_mib": max(x["peak_rss_mib"] for x in runs["A"]),
        "B_peak_rss_mib": max(x["peak_rss_mib"] for x in runs["B"]),
        "B_precision": runs["B"][0]["amp"],
        "torch_threads": runs["A"][0]["threads"],
    }


def _config(text: str) -> tuple[str, int]:
    name, _, size = text.partition(":")
    if not size.isdigit():
        raise argparse.ArgumentTypeError(f"a config looks like resnet20:28 (model:image side), got {text!r}")
    return name, int(size)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--configs", type=_config, nargs="+",
                   default=[("resnet20", 28), ("post_fashion_resnet18", 96)], help="model:side pairs")
    p.add_argument("--batch-size", type=int, default=None,
                   help="default: 128 at 28x28, 64 at larger sizes")
    p.add_argument("--steps", type=int, default=None, help="timed steps per run (default: 40 at 28x28, 12 above)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (oneDNN builds its kernels)")
    p.add_argument("--rounds", type=int, default=5, help="alternating A/B rounds")
    p.add_argument("--worker", choices=["A", "B"], help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help="result JSON (default: benchmarks/results/throughput.json)")
    args = p.parse_args(argv)

    if args.worker:
        (model, size), = args.configs
        batch = args.batch_size or (128 if size <= 32 else 64)
        steps = args.steps or (40 if size <= 32 else 12)
        print(json.dumps(run_worker(args.worker, model, size, batch, steps, args.warmup)))
        return 0

    rows = []
    for model, size in args.configs:
        batch = args.batch_size or (128 if size <= 32 else 64)
        steps = args.steps or (40 if size <= 32 else 12)
        print(f"{model} at {size}x{size}, batch {batch}, {steps} timed steps, {args.rounds} rounds:", flush=True)
        rows.append(measure(model, size, batch, steps, args.warmup, args.rounds))
    print()
    print(f"{'model':24s} {'input':>7s} {'A img/s':>9s} {'B img/s':>9s} {'B/A':>6s} {'spread':>11s} "
          f"{'A RSS':>8s} {'B RSS':>8s}")
    for r in rows:
        print(f"{r['model']:24s} {r['input']:>7s} {r['A_images_per_s']:9.1f} {r['B_images_per_s']:9.1f} "
              f"{r['ratio_B_over_A']:6.2f} {r['ratio_min']:5.2f}-{r['ratio_max']:<5.2f} "
              f"{r['A_peak_rss_mib']:6.0f}MB {r['B_peak_rss_mib']:6.0f}MB")
    met = all(r["ratio_B_over_A"] >= TARGET for r in rows)
    print(f"target B/A >= {TARGET} for every model: {'met' if met else 'NOT met'}")
    path = _common.write_result("throughput", {
        "target": f"B/A >= {TARGET} for resnet20 @ 28x28 and post_fashion_resnet18 @ 96x96 on 2 CPU cores",
        "target_met": met,
        "rows": rows,
        "summary": {"A": PIPELINES["A"], "B": PIPELINES["B"], "rounds": args.rounds,
                    "timing": "median of alternating rounds, each in a fresh process; spread = min-max of "
                              "per-round B/A"},
    }, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
