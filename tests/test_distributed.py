"""Multi-process training: sharded loaders, synchronized BatchNorm, and `torchrun -m resnet_tutorial train`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn as nn

from resnet_tutorial import data, distributed

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")


def _batches_labels(loader: data.TensorLoader) -> list[torch.Tensor]:
    return [y for _, y in loader]


def _numbered(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    # labels are the image numbers, so a batch says exactly which images it holds
    return torch.zeros(n, 28, 28, dtype=torch.uint8), torch.arange(n)


def test_training_shards_are_disjoint_equal_sized_and_cover_the_epoch():
    images, labels = _numbered(200)
    shards = [data.TensorLoader(images, labels, batch_size=16, shuffle=True, seed=3, num_replicas=2, rank=r)
              for r in range(2)]
    seen = [torch.cat(_batches_labels(s)) for s in shards]
    assert len(shards[0]) == len(shards[1]) == 7  # 100 images each in batches of 16: same step count
    assert len(seen[0]) == len(seen[1]) == 100
    assert set(seen[0].tolist()).isdisjoint(seen[1].tolist())
    assert sorted(torch.cat(seen).tolist()) == list(range(200))
    # the next epoch is another permutation, still a partition
    again = [torch.cat(_batches_labels(s)) for s in shards]
    assert not torch.equal(again[0], seen[0])
    assert sorted(torch.cat(again).tolist()) == list(range(200))


def test_uneven_training_shards_are_padded_to_the_same_length():
    images, labels = _numbered(101)
    shards = [data.TensorLoader(images, labels, batch_size=10, shuffle=True, num_replicas=2, rank=r)
              for r in range(2)]
    seen = [torch.cat(_batches_labels(s)) for s in shards]
    assert len(seen[0]) == len(seen[1]) == 51  # DistributedSampler repeats one image
    assert set(torch.cat(seen).tolist()) == set(range(101))


def test_evaluation_shards_count_every_image_once():
    images, labels = _numbered(101)
    shards = [data.TensorLoader(images, labels, batch_size=8, num_replicas=2, rank=r) for r in range(2)]
    seen = [torch.cat(_batches_labels(s)) for s in shards]
    assert sorted(torch.cat(seen).tolist()) == list(range(101))
    assert [len(s) for s in seen] == [51, 50]


def test_single_process_loader_is_unchanged_by_the_sharding_code():
    images, labels = _numbered(64)
    a = data.TensorLoader(images, labels, batch_size=16, shuffle=True, seed=5)
    g = torch.Generator().manual_seed(5 * 1_000_003)
    assert torch.equal(torch.cat(_batches_labels(a)), torch.randperm(64, generator=g))


def test_bad_rank_is_a_clear_error():
    images, labels = _numbered(10)
    with pytest.raises(ValueError, match="rank"):
        data.TensorLoader(images, labels, num_replicas=2, rank=2)


def test_helpers_are_no_ops_in_one_process():
    assert not distributed.is_distributed()
    assert distributed.rank() == 0 and distributed.world_size() == 1
    assert distributed.all_reduce_sum(1.5, 2) == [1.5, 2.0]
    bn = nn.BatchNorm2d(3)
    bn.running_mean.fill_(2.0)
    distributed.average_buffers(bn)
    assert torch.all(bn.running_mean == 2.0)
    ctx = distributed.init_from_env("cpu")
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.distributed) == (0, 1, True, False)


def test_convert_sync_batchnorm_keeps_weights_and_state_dict_keys():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Sequential(nn.BatchNorm2d(4)))
    model[1].weight.data.uniform_()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    converted = distributed.convert_sync_batchnorm(model, "cpu")
    assert sum(isinstance(m, distributed.CPUSyncBatchNorm) for m in converted.modules()) == 2
    after = converted.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    x = torch.randn(4, 1, 8, 8)
    # in one process it is plain BatchNorm
    torch.manual_seed(1)
    ref = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Sequential(nn.BatchNorm2d(4)))
    ref.load_state_dict(before)
    assert torch.allclose(converted(x), ref(x))


def _sync_bn_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        x = torch.randn(8, 3, 5, 5) * 3 + 1  # the global batch; this process takes its half
        w = torch.randn(8, 3, 5, 5)
        bn = distributed.CPUSyncBatchNorm(3)
        with torch.no_grad():
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-1, 1)
        part = x[rank * 4:(rank + 1) * 4].clone().requires_grad_(True)
        y = bn(part)
        (y * w[rank * 4:(rank + 1) * 4]).sum().backward()
        torch.save({"y": y.detach(), "dx": part.grad, "dgamma": bn.weight.grad, "dbeta": bn.bias.grad,
                    "running_mean": bn.running_mean, "running_var": bn.running_var},
                   os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        from resnet_tutorial.distributed import shutdown

        shutdown()  # barrier + gc + destroy: a bare destroy let gloo abort one process now and then (SIGABRT)


def test_cpu_sync_batchnorm_equals_batchnorm_over_the_global_batch(tmp_path):
    mp.spawn(_sync_bn_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    got = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    torch.manual_seed(0)
    x = (torch.randn(8, 3, 5, 5) * 3 + 1).requires_grad_(True)
    w = torch.randn(8, 3, 5, 5)
    ref = nn.BatchNorm2d(3)
    with torch.no_grad():
        ref.weight.uniform_(0.5, 1.5)
        ref.bias.uniform_(-1, 1)
    y = ref(x)
    (y * w).sum().backward()
    assert torch.allclose(torch.cat([g["y"] for g in got]), y, atol=1e-5)
    assert torch.allclose(torch.cat([g["dx"] for g in got]), x.grad, atol=1e-5)
    # DDP would average these per-process parameter gradients; their sum is the global one
    assert torch.allclose(got[0]["dgamma"] + got[1]["dgamma"], ref.weight.grad, atol=1e-4)
    assert torch.allclose(got[0]["dbeta"] + got[1]["dbeta"], ref.bias.grad, atol=1e-4)
    for g in got:
        assert torch.allclose(g["running_mean"], ref.running_mean, atol=1e-6)
        assert torch.allclose(g["running_var"], ref.running_var, atol=1e-5)


TRAIN_ARGS = ["--subset", "12", "--test-subset", "5", "--epochs", "2", "--batch-size", "40", "--lr", "0.05",
              "--device", "cpu", "--no-progress"]


def _torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    if TORCHRUN is None:
        pytest.skip("torchrun is not on PATH (it comes with torch)")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([TORCHRUN, "--standalone", "--nproc_per_node=2", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _rank_logs(log_dir: Path, rank: int, stream: str) -> str:
    # torchrun --log-dir D --redirects 3 writes D/<run id>/attempt_0/<rank>/{stdout,stderr}.log
    files = list(log_dir.glob(f"**/attempt_*/{rank}/{stream}.log"))
    assert len(files) == 1, f"expected one {stream} log for rank {rank} under {log_dir}, found {files}"
    return files[0].read_text()


@pytest.mark.slow
def test_torchrun_cli_trains_on_two_processes_with_one_checkpoint(tmp_path):
    ckpt_dir, logs = tmp_path / "ckpt", tmp_path / "logs"
    args = [a for a in TRAIN_ARGS if a != "--no-progress"]  # progress bars on: rank 0 alone may draw them
    proc = _torchrun(["--log-dir", str(logs), "--redirects", "3", "-m", "resnet_tutorial", "train", *args,
                      "--checkpoint", str(ckpt_dir / "r20.pt")], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out0, err0 = _rank_logs(logs, 0, "stdout"), _rank_logs(logs, 0, "stderr")
    out1, err1 = _rank_logs(logs, 1, "stdout"), _rank_logs(logs, 1, "stderr")
    # rank 0 prints, draws the progress bars and saves; rank 1 trains silently
    assert out0.count("test accuracy:") == 1 and out0.count("epoch   2:") == 1
    assert "x 2 processes" in out0 and "weights identical on all 2 processes" in out0
    assert "epochs" in err0  # tqdm's epoch bar
    assert out1 == "" and "epochs" not in err1 and "Traceback" not in err1
    assert [p.name for p in ckpt_dir.iterdir()] == ["r20.pt"]  # one file, no leftovers from other ranks
    state = torch.load(ckpt_dir / "r20.pt", weights_only=True)
    assert state["epoch"] == 2 and len(state["history"]) == 2
    # the metrics are sums over both processes: all 120 training and 50 test images
    assert "on 120 FashionMNIST images" in out0 and "on 50 test images" in out0


@pytest.mark.slow
def test_both_ranks_end_with_identical_weights_with_sync_bn(tmp_path):
    ckpt = tmp_path / "ckpt" / "m.pt"
    proc = _torchrun([str(ROOT / "tests" / "helpers" / "ddp_probe.py"), str(tmp_path), *TRAIN_ARGS,
                      "--sync-bn", "--checkpoint", str(ckpt)], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    saved = torch.load(ckpt, weights_only=True)["model"]
    assert ranks[0].keys() == ranks[1].keys() == saved.keys()
    for k in ranks[0]:
        assert torch.equal(ranks[0][k], ranks[1][k]), k
        assert torch.equal(ranks[0][k], saved[k]), k
    # training moved the weights away from the seeded initialization
    from resnet_tutorial.models import create_model

    torch.manual_seed(0)
    init = create_model("resnet20", num_classes=10).state_dict()
    assert not torch.equal(init["conv1.weight"], saved["conv1.weight"])
    assert [p.name for p in ckpt.parent.iterdir()] == ["m.pt"]
