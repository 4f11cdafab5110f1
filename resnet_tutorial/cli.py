"""Command line: ``python -m resnet_tutorial {data,train,trace,degradation,why,add-vs-cat,pretrain}`` (or ``resnet-tutorial``).

* ``data [--quiet]``: locate, verify or fetch FashionMNIST and say where it is;
* ``train --model resnet20 --epochs 5 [--subset N]``: train with a progress bar,
  print the test accuracy on the full 10,000-image test set, save a checkpoint;
* ``trace resnet18 --input 1,3,224,224``: the layer-by-layer shape table;
* ``degradation --depths 8 20 56 --epochs E --subset N --out results/degradation.csv``:
  the plain-vs-residual experiment of lesson 08;
* ``why --weights results/degradation_full --out results/lesson10``: lessons 10 and 11's cached
  measurements (lesions, path gradients, loss landscapes, training without BN);
* ``add-vs-cat``: lesson 05's cached add-vs-cat runs;
* ``pretrain``: lesson 09's pretrained net (ResNet-20 on five FashionMNIST classes, recipe ``transfer-pretrain``).

The caches go where :func:`resnet_tutorial.results.output_path` says (``$RESNET_TUTORIAL_RESULTS``,
else the working tree's ``results/``, else ``~/.cache/resnet-tutorial/results``) unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Sequence

from . import results
from .device import AMP_CHOICES
from .recipes import RECIPES as _ALL_RECIPES


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--input must look like 1,3,224,224, got {text!r}") from None
    if len(shape) < 2 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"--input must be a batch shape like 1,3,224,224, got {text!r}")
    return shape


def cmd_data(args: argparse.Namespace) -> int:
    from .data import DataIntegrityError, ensure_fashion_mnist

    try:
        root = ensure_fashion_mnist(args.root, download=not args.no_download)
    except (FileNotFoundError, DataIntegrityError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"FashionMNIST is ready (checksums verified): {root / 'FashionMNIST' / 'raw'}")
        print(f"pass root={str(root)!r} to torchvision.datasets.FashionMNIST, or just use resnet_tutorial.data")
    return 0


def train_from_args(args: argparse.Namespace):
    """Run ``train`` as parsed from the command line and return the trained model.

    The options are the chosen recipe (``--recipe``) with every option given
    replacing its field; :func:`resnet_tutorial.recipes.fit_recipe` trains.
    The same code runs in one process and under ``torchrun`` (then every
    process calls it; only rank 0 prints and writes the checkpoint).
    """
    import time

    from .distributed import convert_sync_batchnorm, init_from_env, params_checksum
    from .recipes import build_model, fit_recipe, resolve_amp

    start = time.perf_counter()
    ctx = init_from_env(args.device)
    say = print if ctx.is_main else (lambda *a, **k: None)
    recipe = recipe_from_args(args)  # (resolves --recipe auto)
    model = build_model(recipe)
    if args.sync_bn and ctx.distributed:
        model = convert_sync_batchnorm(model, ctx.device)
    checkpoint = Path(args.checkpoint) if args.checkpoint else Path("checkpoints") / f"{args.model}.pt"
    n_train = 60_000 if recipe.per_class is None else 10 * recipe.per_class
    procs = f" x {ctx.world_size} processes" if ctx.distributed else ""
    say(f"training {args.model}{'' if args.width == 1 else f' (width x{args.width})'} on {n_train} "
        f"FashionMNIST images for {recipe.epochs} epoch(s) on {ctx.device}{procs} "
        f"({recipe.optimizer}, lr {recipe.lr:g}, batch {recipe.batch_size}, {recipe.schedule}, "
        f"augment {'on' if recipe.augment else 'off'}, label smoothing {recipe.label_smoothing:g}, "
        f"amp {resolve_amp(recipe.amp, ctx.device)}"
        f"{'' if args.stem_stride == 1 else f', stem stride {args.stem_stride}'}; "
        f"recipe {args.recipe}, {_recipe_reason(args.recipe)})")
    run = fit_recipe(
        recipe, model, device=ctx.device, checkpoint=checkpoint, resume=args.resume,
        progress=not args.no_progress, test_each_epoch=args.eval_every_epoch,
        on_epoch_end=(lambda row: say(_epoch_line(row, time.perf_counter() - start))),
    )
    result = run.evaluate()  # with test-time flips if asked for (the per-epoch tests go without)
    last = run.history.iloc[-1]
    elapsed = time.perf_counter() - start
    say(f"train loss {last['train_loss']:.4f}, train accuracy {last['train_acc']:.4f} "
        f"({last['seconds']:.0f} s for the last epoch)")
    say(f"test accuracy: {result['acc']:.4f} on {len(run.test_loader.images)} test images "
        f"(test loss {result['loss']:.4f}; chance is 0.10{'; with test-time flips' if recipe.tta else ''})")
    if ctx.distributed:
        import torch.distributed as dist

        sums = [None] * ctx.world_size
        dist.all_gather_object(sums, params_checksum(model))
        if len(set(sums)) != 1:
            raise RuntimeError(f"the {ctx.world_size} processes ended with different weights: checksums {sums}")
        say(f"weights identical on all {ctx.world_size} processes (checksum {sums[0]:.6g})")
    say(f"checkpoint saved to {checkpoint}")
    say(f"test_acc={result['acc']:.4f} elapsed_s={elapsed:.1f}")
    return model


def recipe_from_args(args: argparse.Namespace):
    """The recipe ``args.recipe`` with the options of the command line in its fields.

    The parser's defaults are the recipe's own values, so an option not given
    changes nothing. ``--lr`` / ``--weight-decay`` not given keep the recipe's
    values for its optimizer; with another ``--optimizer`` they default to the
    measured values for that one (:data:`DEFAULT_ADAMW_LR`, fit's weight decay).
    """
    from .recipes import get
    from .train import DEFAULT_WEIGHT_DECAY

    if args.recipe == "auto":  # parsed without main(): the machine's choice
        args.recipe = recipe_for(args.device or "auto")
    base = get(args.recipe)
    same_opt = args.optimizer == base.optimizer
    lr = args.lr if args.lr is not None else base.lr if same_opt else DEFAULT_LRS[args.optimizer]
    wd = (args.weight_decay if args.weight_decay is not None
          else base.weight_decay if same_opt else DEFAULT_WEIGHT_DECAY[args.optimizer])
    model_kwargs = {k: v for k, v in base.model_kwargs.items() if k not in ("width", "stem_stride")}
    if args.width != 1:
        model_kwargs["width"] = args.width
    if args.stem_stride != 1:
        model_kwargs["stem_stride"] = args.stem_stride
    return base.replace(
        model=args.model, model_kwargs=model_kwargs, epochs=args.epochs, batch_size=args.batch_size,
        optimizer=args.optimizer, lr=lr, weight_decay=wd, nesterov=args.optimizer == "sgd",
        schedule=args.schedule, label_smoothing=args.label_smoothing, augment=args.augment, pad=args.pad,
        resize=args.resize, amp=args.amp, channels_last=args.channels_last, tta=args.tta,
        per_class=args.subset, test_per_class=args.test_subset, seed=args.seed,
    )


def _epoch_line(row: dict, elapsed: float) -> str:
    test = f", test accuracy {row['test_acc']:.4f}" if row["test_acc"] == row["test_acc"] else ""
    return (f"epoch {row['epoch']:>3}: train loss {row['train_loss']:.4f}, train accuracy "
            f"{row['train_acc']:.4f}{test}, elapsed {elapsed:.1f} s")


def cmd_train(args: argparse.Namespace) -> int:
    from .distributed import shutdown

    try:
        train_from_args(args)
    finally:
        shutdown()
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    import pandas as pd
    import torch

    from .diagnostics import trace_shapes
    from .models import create_model

    model = create_model(args.model).eval()
    table = trace_shapes(model, torch.zeros(args.input))
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 200):
        print(table.to_string(index=False))
    return 0


def cmd_degradation(args: argparse.Namespace) -> int:
    from .degradation import run_degradation

    command = " ".join(shlex.quote(a) for a in ["python", "-m", "resnet_tutorial", *args.argv])
    args.out = args.out or str(results.output_path("degradation_full.csv" if args.full else "degradation.csv"))
    # the full-scale run of lessons 08 / 10 (all images, the train command's recipe) or the small one;
    # every option given replaces the recipe's field
    recipe = "degradation-full" if args.full else "degradation-small"
    given = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "schedule": args.schedule,
             "label_smoothing": args.label_smoothing, "augment": args.augment, "nesterov": args.nesterov,
             "amp": args.amp, "seed": args.seed}
    overrides = {k: v for k, v in given.items() if v is not None}
    if args.subset is not None:
        overrides["per_class"] = args.subset
    if args.test_subset is not None:
        overrides["test_per_class"] = args.test_subset
    table = run_degradation(
        depths=args.depths, recipe=recipe, device=args.device, progress=not args.no_progress, out=args.out,
        command=command, weights_dir=args.weights_dir, log=print, kinds=args.kinds, **overrides,
    )
    last = table[table["epoch"] == table["epoch"].max()]
    print(last[["model", "train_error", "test_error"]].to_string(index=False))
    if args.out:
        print(f"saved to {args.out} (+ {Path(args.out).with_suffix('.json')})")
    return 0


def cmd_why(args: argparse.Namespace) -> int:
    import torch

    from .lessons import l10_shattered_gradients as l10
    from .lessons import l11_paths_and_landscapes as l11

    if args.threads:
        torch.set_num_threads(args.threads)
    command = " ".join(shlex.quote(a) for a in ["python", "-m", "resnet_tutorial", *args.argv])
    out = args.out or results.output_path("lesson10")
    meta: dict = {}
    trained = [p for p in args.parts if p != "nobn"]
    if trained:  # lesson 11: lesions, path gradients, landscapes of the trained nets
        meta = l11.build_cache(weights=args.weights, out=out, depths=args.depths, parts=trained,
                               force=args.force, log=print, command=command)
    if "nobn" in args.parts:  # lesson 10: short runs without BatchNorm
        meta = l10.build_cache(out=out, force=args.force, log=print, command=command)
    total = sum(p["seconds"] for p in meta["parts"].values())
    print(f"saved to {out} ({', '.join(meta['parts'])}; {total / 60:.1f} min of computing in all)")
    return 0


def cmd_add_vs_cat(args: argparse.Namespace) -> int:
    from .lessons.l05_add_vs_concat import cache_add_cat_runs

    out = args.out or results.output_path("add_vs_cat.csv")
    command = " ".join(shlex.quote(a) for a in ["python", "-m", "resnet_tutorial", *args.argv])
    table = cache_add_cat_runs(args.depth, args.epochs, args.per_class, args.test_per_class, args.seeds, out,
                               command=command)
    last = table[table["epoch"] == table["epoch"].max()]
    print(last.groupby("merge")["test_acc"].describe()[["mean", "min", "max"]])
    print(f"saved to {out} (+ {results.meta_path(out)})")
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    from .lessons.l09_torchvision_resnet import PRETRAINED, pretrain

    out = args.out or results.output_path(PRETRAINED)
    overrides = {k: v for k, v in (("epochs", args.epochs), ("per_class", args.per_class), ("seed", args.seed))
                 if v is not None}
    _, record = pretrain(out=out, progress=not args.no_progress, device=args.device, **overrides)
    print(f"test accuracy on {', '.join(record['class_names'])}: {record['test_acc']:.2%} "
          f"({record['seconds']:.0f} s); saved to {out}")
    return 0


# The default recipes of `train`, chosen by measurement (benchmarks/time_to_accuracy.py,
# benchmarks/README.md): the fastest way found to >= 93 % test accuracy on 2 CPU cores. They are
# data in resnet_tutorial/recipes.py (RECIPES["bf16"], RECIPES["fp32"]); which one runs depends on
# the CPU (`--recipe auto`, printed at start; recipes.pick("train")):
#
# "bf16", for CPUs that compute bf16 natively (AVX512-BF16/AMX) and for GPUs. Measured
# (12-epoch runs, 1 thread each, two at a time): no augmentation 93.95 %, random crops
# (4-pixel border) + flips 93.56 %; test-time flips helped only the augmented model
# (+0.05 points) and cost the other 0.3 points. Short schedules underfit: augmentation waits.
# Flips only + test-time flips (10 epochs): 93.86 %, but 647 s instead of 562 s.
#
# "fp32", for CPUs without native bf16 (most laptops: AVX2 only). There one epoch of the bf16
# recipe takes 188-268 s in fp32, so 10 epochs need 30-45 min. A first convolution with
# stride 2 (14 x 14 feature maps from the start: a quarter of the arithmetic) trains 3.7x
# more images/s on AVX2 (2 threads: 2005 vs 549 images/s) and still reaches 93.19 % in 10
# epochs (14 epochs: also 93.19 %; ResNet-32 with the same stem: 1.8x slower per epoch).
#
# `--recipe lesson` is lesson 07's full mode: the fp32 recipe's net, bf16 where native, 20,000 images, 5 epochs.
RECIPES = {name: r for name, r in _ALL_RECIPES.items() if r.task == "train"}
#: What ``--recipe`` accepts: the train recipes and lesson 07's (the same on a smaller budget).
TRAIN_CHOICES = {name: r for name, r in _ALL_RECIPES.items() if r.task in ("train", "lesson")}
#: The recipe of CPUs with native bf16 (and of GPUs); ``recipe_for`` picks per machine.
RECIPE = RECIPES["bf16"]
#: The measured peak learning rates: the train recipes' for SGD, the short-budget recipe's for AdamW
#: (the defaults of ``--lr`` when ``--optimizer`` is not the recipe's own).
DEFAULT_SGD_LR = RECIPE.lr
DEFAULT_ADAMW_LR = _ALL_RECIPES["short"].lr
DEFAULT_LRS = {"sgd": DEFAULT_SGD_LR, "adamw": DEFAULT_ADAMW_LR}


def recipe_for(device: str | None = "auto") -> str:
    """The recipe name ``--recipe auto`` picks: ``"bf16"`` on GPUs and on CPUs that compute bf16
    natively, ``"fp32"`` on other CPUs (where the bf16 recipe is 3-4x slower)."""
    from .recipes import pick

    return pick("train", device).name


def _recipe_reason(name: str) -> str:
    from .device import native_bf16

    where = "this CPU computes bf16 natively" if native_bf16() else "this CPU has no native bf16"
    others = [r.name for r in TRAIN_CHOICES.values() if r.task == TRAIN_CHOICES[name].task and r.name != name]
    return f"{where}; --recipe {' or '.join(others) or 'auto'} for the other" if others else where


def _chosen_recipe(argv: Sequence[str]) -> str:
    """Pre-parse ``--recipe`` and ``--device`` of a ``train`` command line (the recipe sets the defaults)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--recipe", choices=["auto", *TRAIN_CHOICES], default="auto")
    pre.add_argument("--device", default="auto")
    known, _ = pre.parse_known_args(list(argv)[1:])
    return recipe_for(known.device) if known.recipe == "auto" else known.recipe


def build_parser(recipe: str = "bf16") -> argparse.ArgumentParser:
    """The command line; ``recipe`` (a key of ``TRAIN_CHOICES``) sets the defaults of ``train``."""
    p = argparse.ArgumentParser(prog="resnet-tutorial", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("data", help="locate, verify or fetch FashionMNIST")
    d.add_argument("--quiet", action="store_true", help="print nothing when the data is fine")
    d.add_argument("--root", default=None, help="data directory (default: $RESNET_TUTORIAL_DATA or ~/.cache)")
    d.add_argument("--no-download", action="store_true", help="never try torchvision's download")
    d.set_defaults(func=cmd_data)

    _add_train_parser(sub, TRAIN_CHOICES[recipe])

    r = sub.add_parser("trace", help="print the layer-by-layer output shapes of a model")
    r.add_argument("model")
    r.add_argument("--input", type=_shape, default=(1, 3, 224, 224), help="batch shape, e.g. 1,3,224,224")
    r.set_defaults(func=cmd_trace)

    _add_degradation_parser(sub)
    _add_why_parser(sub)
    _add_add_vs_cat_parser(sub)
    _add_pretrain_parser(sub)
    return p


def _add_train_parser(sub, recipe) -> None:
    t = sub.add_parser(
        "train", help="train a model on FashionMNIST",
        description="Train on FashionMNIST. The defaults are the recipe chosen by --recipe, measured with "
        "benchmarks/time_to_accuracy.py (resnet_tutorial/recipes.py holds them as data). Under torchrun every "
        "process runs this command; --batch-size is the global batch, split over the processes.",
    )
    # the default is the recipe this parser was built for (main() builds it for the --recipe it pre-parsed)
    t.add_argument("--recipe", choices=["auto", *TRAIN_CHOICES], default=recipe.name,
                   help="the defaults below: 'bf16' (GPUs, CPUs with native bf16) or 'fp32' (other CPUs: "
                   "first conv with stride 2); auto picks by machine and prints its choice; 'lesson': lesson 07's "
                   "budget (the fp32 recipe's net, bf16 where native, 20,000 images, 5 epochs)")
    t.add_argument("--model", default=recipe.model, help="a name from resnet_tutorial.models.list_models()")
    t.add_argument("--width", type=_positive_int, default=recipe.model_kwargs.get("width", 1),
                   help="channel multiplier of the CIFAR-style ResNets (resnet20, ...)")
    t.add_argument("--stem-stride", type=int, choices=[1, 2], default=recipe.model_kwargs.get("stem_stride", 1),
                   help="2: the CIFAR-style ResNet's first conv halves the image (about 1/4 of the work)")
    t.add_argument("--epochs", type=_positive_int, default=recipe.epochs)
    t.add_argument("--subset", type=_positive_int, default=recipe.per_class, metavar="N",
                   help=f"train on N images per class (default: {recipe.per_class or 'all 6000'})")
    t.add_argument("--test-subset", type=_positive_int, default=recipe.test_per_class, metavar="N",
                   help=f"test on N images per class (default: {recipe.test_per_class or 'all 1000'})")
    t.add_argument("--batch-size", type=_positive_int, default=recipe.batch_size,
                   help="global batch size (split over torchrun's processes)")
    t.add_argument("--optimizer", choices=["sgd", "adamw"], default=recipe.optimizer,
                   help="sgd uses Nesterov momentum 0.9")
    t.add_argument("--lr", type=float, default=None,
                   help=f"peak learning rate (default: {DEFAULT_SGD_LR:g} for sgd, {DEFAULT_ADAMW_LR:g} for adamw)")
    t.add_argument("--weight-decay", type=float, default=None, help="default: 5e-4 (sgd), 0.05 (adamw)")
    t.add_argument("--schedule", choices=["onecycle", "cosine", "none"], default=recipe.schedule)
    t.add_argument("--label-smoothing", type=float, default=recipe.label_smoothing)
    t.add_argument("--resize", type=_positive_int, default=recipe.resize,
                   help="resize images (e.g. 224 for post 000's model)")
    aug = t.add_mutually_exclusive_group()
    aug.add_argument("--augment", dest="augment", action="store_true", default=recipe.augment,
                     help="random crops (from a --pad border) and horizontal flips")
    aug.add_argument("--no-augment", dest="augment", action="store_false")
    t.add_argument("--pad", type=int, default=recipe.pad, help="border in pixels for random crops")
    tta = t.add_mutually_exclusive_group()
    tta.add_argument("--tta", dest="tta", action="store_true", default=recipe.tta,
                     help="test-time augmentation: average the predictions of each image and its mirror image")
    tta.add_argument("--no-tta", dest="tta", action="store_false")
    t.add_argument("--eval-every-epoch", action=argparse.BooleanOptionalAction, default=True,
                   help="print the test accuracy after every epoch (costs one test pass per epoch)")
    t.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    t.add_argument("--amp", choices=AMP_CHOICES, default=recipe.amp,
                   help="fast (default: bf16 on CPUs with native bf16, off on other CPUs, auto on GPUs), auto "
                   "(bf16/fp16 on CUDA, off elsewhere), off, bf16, fp16")
    t.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=recipe.channels_last,
                   help="NHWC memory layout (faster convolutions on CPUs and tensor cores)")
    t.add_argument("--sync-bn", action="store_true",
                   help="under torchrun: BatchNorm statistics over the global batch (SyncBatchNorm)")
    t.add_argument("--checkpoint", default=None, help="default: checkpoints/<model>.pt")
    t.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    t.add_argument("--seed", type=int, default=recipe.seed)
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=cmd_train)


def _add_degradation_parser(sub) -> None:
    g = sub.add_parser(
        "degradation", help="plain vs residual networks at growing depth (lessons 08 and 10)",
        description="Train plain and residual 6n+2 networks on FashionMNIST and cache their curves. "
        "The defaults are the recipe 'degradation-small' of resnet_tutorial/recipes.py (the cached "
        "results/degradation.csv); --full is 'degradation-full', the full-scale run: all 60,000 training and "
        "10,000 test images with the train command's recipe (SGD Nesterov, one-cycle lr 0.2, label smoothing "
        "0.1, no augmentation). Every option given replaces the recipe's value. With --weights-dir the run is resumable (rerun the same command after an interruption) "
        "and keeps every trained net.",
    )
    g.add_argument("--depths", type=int, nargs="+", default=[8, 20, 56])
    g.add_argument("--kinds", nargs="+", choices=["plain", "resnet"], default=["plain", "resnet"])
    g.add_argument("--full", action="store_true",
                   help="the recipe 'degradation-full': all images, the train command's optimization")
    g.add_argument("--epochs", type=_positive_int, default=None, help="default: 15 (12 with --full)")
    g.add_argument("--subset", type=_positive_int, default=None, metavar="N",
                   help="training images per class (default: 1200; all with --full)")
    g.add_argument("--test-subset", type=_positive_int, default=None, metavar="N",
                   help="test images per class (default: 300; all with --full)")
    g.add_argument("--batch-size", type=_positive_int, default=None, help="default: 128")
    g.add_argument("--lr", type=float, default=None, help="peak learning rate (default 0.1; 0.2 with --full)")
    g.add_argument("--schedule", choices=["cosine", "onecycle"], default=None,
                   help="default: cosine (onecycle with --full)")
    g.add_argument("--label-smoothing", type=float, default=None, help="default: 0 (0.1 with --full)")
    g.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random crops (4-pixel border) and flips (default: on; off with --full)")
    g.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None,
                   help="default: off (on with --full)")
    g.add_argument("--amp", choices=AMP_CHOICES, default=None,
                   help="default: fast (bf16 on CPUs with native bf16, off on other CPUs, auto on GPUs)")
    g.add_argument("--seed", type=int, default=None, help="default: 0")
    g.add_argument("--device", default=None)
    g.add_argument("--out", default=None, help="the table (default: degradation.csv in the results folder, "
                   "see resnet_tutorial.results)")
    g.add_argument("--weights-dir", default=None,
                   help="keep each trained net here (<model>.pt) and resume from per-epoch checkpoints")
    g.add_argument("--no-progress", action="store_true")
    g.set_defaults(func=cmd_degradation)


def _add_why_parser(sub) -> None:
    w = sub.add_parser(
        "why", help="lessons 10 and 11's cached measurements (runs without BN; lesions, paths, landscapes)",
        description="Lesion studies, gradients by path length and loss landscapes of the trained plain and "
        "residual nets of the full degradation run, and short runs without BatchNorm. Each part is written "
        "to --out as soon as it is done; rerunning skips the parts already there with the same settings.",
    )
    w.add_argument("--weights", default=None,
                   help="directory with {plain,resnet}{depth}.pt from `degradation --full --weights-dir` "
                   "(default: degradation_full found along the results search path)")
    w.add_argument("--out", default=None, help="default: lesson10 in the results folder")
    w.add_argument("--depths", type=int, nargs="+", default=[20, 56])
    w.add_argument("--parts", nargs="+", choices=["lesion", "paths", "landscape", "nobn"],
                   default=["lesion", "paths", "landscape", "nobn"])
    w.add_argument("--force", action="store_true", help="recompute parts that are already cached")
    w.add_argument("--threads", type=_positive_int, default=None, help="torch threads (default: torch's choice)")
    w.set_defaults(func=cmd_why)


def _add_add_vs_cat_parser(sub) -> None:
    a = sub.add_parser(
        "add-vs-cat", help="lesson 05's cached runs: add versus concatenate over several seeds",
        description="Train the add and the cat variant of a residual net on a FashionMNIST subset for several "
        "seeds and cache the per-epoch curves (+ a JSON with the settings) for lesson 05.",
    )
    a.add_argument("--depth", type=_positive_int, default=14)
    a.add_argument("--epochs", type=_positive_int, default=5)
    a.add_argument("--per-class", type=_positive_int, default=600, help="training images per class")
    a.add_argument("--test-per-class", type=_positive_int, default=200, help="test images per class")
    a.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    a.add_argument("--out", default=None, help="default: add_vs_cat.csv in the results folder")
    a.set_defaults(func=cmd_add_vs_cat)


def _add_pretrain_parser(sub) -> None:
    t = sub.add_parser(
        "pretrain", help="lesson 09's pretrained net: ResNet-20 on five FashionMNIST classes",
        description="Train the recipe 'transfer-pretrain' (ResNet-20, stride-2 stem, on T-shirt/top, Trouser, "
        "Pullover, Dress and Coat) and save it as a checkpoint that checkpoints.load_model rebuilds; lesson 09 "
        "transfers it to the other five classes. Options replace the recipe's values.",
    )
    t.add_argument("--epochs", type=_positive_int, default=None, help="default: the recipe's (3)")
    t.add_argument("--per-class", type=_positive_int, default=None, help="training images per class (default: all)")
    t.add_argument("--seed", type=int, default=None, help="default: 0")
    t.add_argument("--device", default=None)
    t.add_argument("--out", default=None, help="default: transfer_resnet20.pt in the results folder")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=cmd_pretrain)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m resnet_tutorial`` and the ``resnet-tutorial`` script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    recipe = _chosen_recipe(argv) if argv[:1] == ["train"] else "bf16"
    args = build_parser(recipe).parse_args(argv)
    args.recipe = recipe
    args.argv = argv
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `... | head`: the reader left, which is not an error
        sys.stdout = open(os.devnull, "w")
        return 0


if __name__ == "__main__":
    sys.exit(main())
