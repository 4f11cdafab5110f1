#!/usr/bin/env python
"""Render every kind of architecture diagram to PNG, to look at them all at once.

    python scripts/diagram_gallery.py                 # -> build/gallery/*.png
    python scripts/diagram_gallery.py --out DIR --only network

Each figure is drawn from a real module (this package's blocks and models,
torchvision's), the way the lessons draw them; the script prints the time
each took. Look at every PNG after changing ``resnet_tutorial.diagrams``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torchvision  # noqa: E402
from torch import nn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from resnet_tutorial import blocks as B  # noqa: E402
from resnet_tutorial import diagrams as D  # noqa: E402
from resnet_tutorial.models import create_model, make_deep_net  # noqa: E402


def _tv_resnet50_adapted() -> nn.Module:
    """Lesson 09's model: torchvision resnet50, 1-channel stride-1 stem, no max pool, 10-class head."""
    net = torchvision.models.resnet50(weights=None)
    old = net.conv1
    net.conv1 = nn.Conv2d(1, old.out_channels, old.kernel_size, 1, old.padding, bias=False)
    net.maxpool = nn.Identity()
    net.fc = nn.Linear(net.fc.in_features, 10)
    return net


def _projection(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


def figures() -> dict[str, Callable[[], plt.Figure]]:
    tv = torchvision.models
    f: dict[str, Callable[[], plt.Figure]] = {
        # one block
        "block_post000_residual": lambda: D.draw_block(B.Residual(64, 128, use_1x1conv=True, strides=2),
                                                       input_shape=(64, 56, 56)),
        "block_post002_basic": lambda: D.draw_block(B.PostBasicBlock(64, 128, 2), input_shape=(64, 56, 56)),
        "block_post001_convblock": lambda: D.draw_block(B.ConvBlock(256, 128, 2), input_shape=(256, 56, 56)),
        "block_post001_identityblock": lambda: D.draw_block(B.IdentityBlock(256), input_shape=(256, 56, 56)),
        "block_basic_downsample": lambda: D.draw_block(B.BasicBlock(64, 128, 2, _projection(64, 128, 2)),
                                                       input_shape=(64, 56, 56)),
        "block_bottleneck": lambda: D.draw_block(B.Bottleneck(256, 64), input_shape=(256, 56, 56)),
        "block_cat_merge": lambda: D.draw_block(B.ResidualBlock(16, 32, 2, shortcut="projection", merge="cat"),
                                                input_shape=(16, 28, 28)),
        "block_preact": lambda: D.draw_block(B.ResidualBlock(16, 32, 2, shortcut="zeropad", preact=True),
                                             input_shape=(16, 28, 28)),
        "block_nobn_gelu": lambda: D.draw_block(B.ResidualBlock(16, 16, bn=False, activation="gelu"),
                                                input_shape=(16, 28, 28)),
        "block_no_shapes": lambda: D.draw_block(B.ResidualBlock(16, 32, 2, shortcut="projection")),
        "block_torchvision_basic": lambda: D.draw_block(tv.resnet18().layer2[0], input_shape=(64, 56, 56)),
        "block_torchvision_bottleneck": lambda: D.draw_block(tv.resnet50().layer2[0], input_shape=(256, 56, 56)),
        # side by side
        "blocks_plain_vs_residual": lambda: D.draw_blocks(
            [B.ResidualBlock(64, 64, shortcut="none"), B.ResidualBlock(64, 64)],
            titles=["plain block", "residual block"], input_shape=(64, 56, 56)),
        "blocks_shortcut_kinds": lambda: D.draw_blocks(
            [B.ResidualBlock(16, 16), B.ResidualBlock(16, 32, 2, shortcut="zeropad"),
             B.ResidualBlock(16, 32, 2, shortcut="projection")],
            titles=["identity", "zero-padding (option A)", "projection (option B)"],
            input_shape=[(16, 28, 28), (16, 28, 28), (16, 28, 28)]),
        "blocks_basic_vs_bottleneck": lambda: D.draw_blocks(
            [B.BasicBlock(64, 64), B.Bottleneck(256, 64)], titles=["basic block", "bottleneck block"],
            input_shape=[(64, 56, 56), (256, 56, 56)]),
        "blocks_basic_vs_bottleneck_compact": lambda: D.draw_blocks(
            [B.BasicBlock(64, 64), B.Bottleneck(256, 64)], titles=["basic block", "bottleneck block"],
            input_shape=[(64, 56, 56), (256, 56, 56)], compact=True),
        "block_preact_compact": lambda: D.draw_block(B.ResidualBlock(16, 32, 2, shortcut="projection", preact=True),
                                                     input_shape=(16, 28, 28), compact=True),
        # networks
        "network_resnet18": lambda: D.draw_network(create_model("resnet18"), input_shape=(3, 224, 224)),
        "network_resnet50": lambda: D.draw_network(create_model("resnet50"), input_shape=(3, 224, 224)),
        "network_torchvision_resnet18": lambda: D.draw_network(tv.resnet18(), input_shape=(3, 224, 224)),
        "network_torchvision_resnet50_adapted": lambda: D.draw_network(
            _tv_resnet50_adapted(), input_shape=(1, 28, 28),
            highlight={"conv1": "1 channel in, stride 1", "maxpool": "removed", "fc": "new head: 10 classes"}),
        "network_resnet20": lambda: D.draw_network(create_model("resnet20"), input_shape=(1, 28, 28)),
        "network_plain20": lambda: D.draw_network(create_model("plain20"), input_shape=(1, 28, 28)),
        "network_resnet56": lambda: D.draw_network(create_model("resnet56"), input_shape=(1, 28, 28)),
        "network_plain56": lambda: D.draw_network(create_model("plain56"), input_shape=(1, 28, 28)),
        "network_resnet20_projection_cat": lambda: D.draw_network(
            create_model("resnet20", shortcut="projection", merge="cat"), input_shape=(1, 28, 28)),
        "network_post_resnet18": lambda: D.draw_network(create_model("post_resnet18"), input_shape=(3, 224, 224)),
        "network_post_fashion_resnet18": lambda: D.draw_network(create_model("post_fashion_resnet18"),
                                                                input_shape=(1, 224, 224)),
        "network_simple_resnet": lambda: D.draw_network(create_model("simple_resnet"), input_shape=(3, 224, 224)),
        "network_deep_mlp": lambda: D.draw_network(make_deep_net("mlp", 20), input_shape=(1, 28, 28)),
        "network_deep_cnn_residual": lambda: D.draw_network(make_deep_net("cnn", 20, bn=True, shortcut=True),
                                                            input_shape=(1, 28, 28)),
        "network_sequential_stack": lambda: D.draw_network(
            nn.Sequential(nn.Flatten(), *[m for _ in range(10) for m in (nn.Linear(64, 64), nn.Tanh())],
                          nn.Linear(64, 10)), input_shape=(64,)),
        "network_resnet18_no_shapes": lambda: D.draw_network(create_model("resnet18")),
        # Veit et al.
        "unrolled_3": lambda: D.draw_unrolled(3),
        "unrolled_4_lesion_2": lambda: D.draw_unrolled(4, lesion=2),
        # add vs cat
        "merge_add_vs_cat": lambda: D.draw_merge(("add", "cat"), (64, 64), size=(28, 28)),
        "merge_cat_inception": lambda: D.draw_merge("cat", (64, 128, 32, 32)),
        "inception_paper": lambda: D.draw_inception_cell(),
        "inception_torchvision": lambda: D.draw_inception_cell(
            tv.googlenet(weights=None, aux_logits=False, init_weights=False).inception3a,
            input_shape=(192, 28, 28), title="torchvision googlenet().inception3a"),
        "dense_block": lambda: D.draw_dense_block(in_channels=64, growth=32, n_layers=4),
        "dense_block_torchvision": lambda: D.draw_dense_block(
            tv.densenet121(weights=None).features.denseblock1, input_shape=(64, 56, 56)),
    }
    return f


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "gallery")
    parser.add_argument("--only", default="", help="render only names containing this text")
    parser.add_argument("--dpi", type=int, default=100)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, make in figures().items():
        if args.only not in name:
            continue
        t0 = time.perf_counter()
        fig = make()
        drawn = time.perf_counter() - t0
        fig.savefig(args.out / f"{name}.png", dpi=args.dpi, facecolor="white")
        w, h = fig.get_size_inches()
        plt.close(fig)
        print(f"{name + '.png':45s} {w:5.1f} x {h:4.1f} in   drawn in {drawn:5.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
