"""Run `train` exactly as the command line does, then save this process's weights.

    torchrun --nproc_per_node=2 tests/helpers/ddp_probe.py OUT_DIR [train options...]

Used by tests/test_distributed.py to compare the weights every process ends
with (the command line itself writes only rank 0's checkpoint).
"""

import sys
from pathlib import Path

import torch

from resnet_tutorial import cli, distributed

out = Path(sys.argv[1])
args = cli.build_parser().parse_args(["train", *sys.argv[2:]])
model = cli.train_from_args(args)
rank = distributed.rank()
torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, out / f"rank{rank}.pt")
distributed.shutdown()
