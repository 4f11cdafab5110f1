"""Training throughput of one model under three CPU settings, as ratios from one run.

    OMP_NUM_THREADS=1 python benchmarks/throughput.py                 # ResNet-20 at 28x28
    python benchmarks/throughput.py --model post_fashion_resnet18 --size 96 --batch-size 64

Settings: eager NCHW fp32, ``channels_last`` fp32, ``channels_last`` + bf16
autocast. The settings are measured in interleaved rounds and the median is
reported, so a neighbour's load spike hurts all three alike. Speed targets
live here, not in the tests: timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from resnet_tutorial.models import create_model
from resnet_tutorial.train import throughput

SETTINGS = {
    "eager NCHW fp32": dict(channels_last=False, amp=False),
    "channels_last fp32": dict(channels_last=True, amp=False),
    "channels_last + bf16 autocast": dict(channels_last=True, amp="bf16"),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="resnet20")
    p.add_argument("--size", type=int, default=28, help="image side in pixels")
    p.add_argument("--channels", type=int, default=None, help="input channels (default: the model's first conv)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=4, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()

    torch.manual_seed(0)
    model = create_model(args.model, num_classes=10)
    channels = args.channels or next(m.in_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    size = (channels, args.size, args.size)
    rates: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for _ in range(args.rounds):
        for name, kw in SETTINGS.items():
            m = create_model(args.model, num_classes=10)
            rates[name].append(throughput(m, size, args.batch_size, steps=args.steps, device=args.device, **kw))
    print(f"{args.model}, input {size}, batch {args.batch_size}, {torch.get_num_threads()} torch thread(s), "
          f"median of {args.rounds} rounds x {args.steps} steps (training images/s):")
    base = statistics.median(rates["eager NCHW fp32"])
    for name, r in rates.items():
        med = statistics.median(r)
        print(f"  {name:32s} {med:8.0f} img/s   x{med / base:.2f}")


if __name__ == "__main__":
    main()
