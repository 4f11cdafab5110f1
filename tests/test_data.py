"""FashionMNIST lookup, checksums, subsets and the two loaders."""

import gzip
import json
from pathlib import Path

import pytest
import torch

from resnet_tutorial import data

DEBIAN = data.DEBIAN_DIR
needs_debian = pytest.mark.skipif(
    not (DEBIAN / "train-labels-idx1-ubyte.gz").is_file(), reason="dataset-fashion-mnist not installed"
)


def _fake_debian(tmp_path: Path) -> Path:
    """A copy of the Debian directory (symlinks, so nothing big is copied)."""
    fake = tmp_path / "debian"
    fake.mkdir()
    for name in data.RAW_FILES:
        (fake / f"{name}.gz").symlink_to(DEBIAN / f"{name}.gz")
    return fake


@needs_debian
def test_truncated_archive_names_file_and_checksums(tmp_path, monkeypatch):
    fake = _fake_debian(tmp_path)
    bad = fake / "train-labels-idx1-ubyte.gz"
    payload = bad.read_bytes()
    bad.unlink()
    bad.write_bytes(payload[: len(payload) // 2])
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "root"))
    with pytest.raises(data.DataIntegrityError) as err:
        data.ensure_fashion_mnist(download=False, debian_dir=fake)
    msg = str(err.value)
    assert "train-labels-idx1-ubyte.gz" in msg and "expected 25c81989df183df01b3e8a0aad5dffbe" in msg
    assert "got" in msg
    # nothing half-written is left where a later load would trust it
    assert not (tmp_path / "root" / "FashionMNIST" / "raw" / "train-labels-idx1-ubyte").exists()


@needs_debian
def test_wrong_content_is_a_checksum_mismatch(tmp_path):
    fake = _fake_debian(tmp_path)
    bad = fake / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(bad.read_bytes()))
    raw[100] = (raw[100] + 1) % 10  # one label changed: the same size, a different data set
    bad.unlink()
    bad.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(data.DataIntegrityError, match="expected 15d484375f8d13e6eb1aabb0c3f46965"):
        data.ensure_fashion_mnist(tmp_path / "root", download=False, debian_dir=fake)


@needs_debian
def test_unpacks_verifies_and_detects_a_truncated_unpacked_file(tmp_path):
    fake = _fake_debian(tmp_path)
    root = data.ensure_fashion_mnist(tmp_path / "root", download=False, debian_dir=fake)
    raw = root / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir() if not p.name.startswith(".")) == sorted(data.RAW_FILES)
    assert (raw / ".verified.json").is_file()
    # second call: fast path (stamp), same answer
    assert data.ensure_fashion_mnist(root, download=False, debian_dir=tmp_path / "none") == root
    f = raw / "t10k-labels-idx1-ubyte"
    f.write_bytes(f.read_bytes()[:-10])
    with pytest.raises(data.DataIntegrityError, match="t10k-labels-idx1-ubyte has 9998 bytes, expected 10008"):
        data.ensure_fashion_mnist(root, download=False)


@needs_debian
def test_a_stamp_that_is_valid_json_but_not_a_stamp_is_rewritten(tmp_path):
    root = data.ensure_fashion_mnist(tmp_path / "root", download=False, debian_dir=_fake_debian(tmp_path))
    stamp = root / "FashionMNIST" / "raw" / ".verified.json"
    for foreign in ("null", "[1, 2]", '"text"'):
        stamp.write_text(foreign)  # an interrupted or foreign write
        assert data.ensure_fashion_mnist(root, download=False) == root  # checked by MD5 again, not a crash
        assert sorted(json.loads(stamp.read_text())) == sorted(data.RAW_FILES)


def test_missing_everywhere_is_one_error_naming_every_fix(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "empty"))
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")
    with pytest.raises(FileNotFoundError) as err:
        data.ensure_fashion_mnist(download=False)
    msg = str(err.value)
    assert data.DATA_ENV in msg and "apt-get install dataset-fashion-mnist" in msg and "online" in msg


def test_mean_std_and_classes_match_the_training_split():
    images, labels = data.load_tensors(train=True)
    assert images.shape == (60000, 28, 28) and images.dtype == torch.uint8 and labels.dtype == torch.int64
    x = images.double() / 255
    assert abs(x.mean().item() - data.MEAN) < 5e-4
    assert abs(x.std().item() - data.STD) < 5e-4
    assert len(data.CLASSES) == 10 and torch.bincount(labels).tolist() == [6000] * 10
    test_images, test_labels = data.load_tensors(train=False)
    assert test_images.shape == (10000, 28, 28) and torch.bincount(test_labels).tolist() == [1000] * 10


def test_stratified_indices_counts_determinism_and_errors():
    labels = torch.tensor([0] * 5 + [1] * 3 + [2] * 7)
    idx = data.stratified_indices(labels, 3, seed=1)
    assert torch.bincount(labels[idx]).tolist() == [3, 3, 3]
    assert idx.unique().numel() == 9 and torch.equal(idx, idx.sort().values)
    assert torch.equal(idx, data.stratified_indices(labels, 3, seed=1))
    picks = {tuple(data.stratified_indices(labels, 2, seed=s).tolist()) for s in range(6)}
    assert len(picks) > 1  # the seed matters
    with pytest.raises(ValueError, match="per_class <= 3"):
        data.stratified_indices(labels, 4)
    with pytest.raises(ValueError, match="positive"):
        data.stratified_indices(labels, 0)


def test_fast_loaders_shapes_dtypes_normalization():
    train, test = data.fast_loaders(batch_size=64, per_class=20, test_per_class=10, device="cpu")
    assert len(train) == 4 and len(train.images) == 200 and len(test.images) == 100
    xs, ys = zip(*train)
    x, y = torch.cat(xs), torch.cat(ys)
    assert x.shape == (200, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.bincount(y).tolist() == [20] * 10
    assert abs(x.min().item() - (0 - data.MEAN) / data.STD) < 1e-5
    assert abs(x.max().item() - (1 - data.MEAN) / data.STD) < 1e-5
    # seeded shuffle: a new epoch reorders, the same epoch repeats
    train.set_epoch(3)
    a = next(iter(train))[1]
    train.set_epoch(3)
    assert torch.equal(a, next(iter(train))[1])
    assert not torch.equal(a, next(iter(train))[1])
    big, _ = data.fast_loaders(batch_size=8, per_class=1, resize=40, in_channels=3, device="cpu")
    assert next(iter(big))[0].shape == (8, 3, 40, 40)


def test_augmentation_crops_and_flips_on_device():
    images, labels = data.load_tensors(train=True)
    loader = data.TensorLoader(images[:256], labels[:256], batch_size=256, augment=True, seed=0)
    plain = data.TensorLoader(images[:256], labels[:256], batch_size=256)
    xa, xp = next(iter(loader))[0], next(iter(plain))[0]
    assert xa.shape == xp.shape
    same = (xa == xp).flatten(1).all(1)
    assert 0 < same.sum() < 64  # most images moved or flipped, few (no shift and no flip) did not
    assert torch.isclose(xa.min(), xp.min())  # padding is background (black), not a new value


def test_torchvision_and_tensor_loaders_agree():
    tv_train, _ = data.torchvision_loaders(batch_size=1000, per_class=30, test_per_class=5)
    fast_train, _ = data.fast_loaders(batch_size=1000, per_class=30, test_per_class=5, device="cpu")
    tv_x, tv_y = zip(*[tv_train.dataset[i] for i in range(len(tv_train.dataset))])
    tv_x, tv_y = torch.stack(tv_x), torch.tensor(tv_y)
    fast_x = fast_train.transform(fast_train.images)
    assert torch.equal(tv_y, fast_train.labels)
    assert torch.allclose(tv_x, fast_x, atol=1e-5)
    # with an upscale both use bilinear interpolation
    tv96, _ = data.torchvision_loaders(batch_size=10, resize=96, per_class=1, test_per_class=1)
    fast96, _ = data.fast_loaders(batch_size=10, resize=96, per_class=1, test_per_class=1, device="cpu")
    a = torch.stack([tv96.dataset[i][0] for i in range(10)])
    b = fast96.transform(fast96.images)
    assert a.shape == b.shape == (10, 1, 96, 96)
    assert (a - b).abs().max() < 1e-4


def test_bad_arguments_say_what_to_change():
    images, labels = data.load_tensors(train=False)
    with pytest.raises(ValueError, match="uint8"):
        data.TensorLoader(images.float(), labels)
    with pytest.raises(ValueError, match="in_channels"):
        data.TensorLoader(images, labels, in_channels=2)
    with pytest.raises(ValueError, match="resize"):
        data.TensorLoader(images, labels, resize=0)


# --- small, exact facts (no full-data hashing): paths, normalization, subsets, loader arithmetic ---
def test_data_root_order_argument_env_default(monkeypatch, tmp_path):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    assert data.data_root() == Path("~/.cache/resnet-tutorial/data").expanduser()
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "env"))
    assert data.data_root() == tmp_path / "env"
    assert data.data_root(tmp_path / "arg") == tmp_path / "arg"  # an argument wins over the variable
    monkeypatch.setenv(data.DATA_ENV, "")
    assert data.data_root() == Path("~/.cache/resnet-tutorial/data").expanduser()  # empty = unset


def test_normalize_by_hand():
    images = torch.tensor([[[0, 255], [51, 102]]], dtype=torch.uint8)  # [1, 2, 2]
    x = data.normalize(images)
    assert x.shape == (1, 1, 2, 2) and x.dtype == torch.float32
    expected = (torch.tensor([[0.0, 1.0], [0.2, 0.4]]) - 0.2860) / 0.3530
    torch.testing.assert_close(x[0, 0], expected)
    torch.testing.assert_close(data.normalize(images.unsqueeze(1), mean=0.5, std=0.5)[0, 0],
                               torch.tensor([[-1.0, 1.0], [-0.6, -0.2]]))
    with pytest.raises(ValueError, match=r"normalize expects uint8 pixels 0\.\.255, got torch.float32"):
        data.normalize(images.float())


def test_fashion_batch_is_a_seeded_draw_from_the_training_split():
    images, labels = data.load_tensors(train=True)
    x, y = data.fashion_batch(5, seed=3)
    idx = torch.randperm(60000, generator=torch.Generator().manual_seed(3))[:5]
    torch.testing.assert_close(x, data.normalize(images[idx]))
    assert torch.equal(y, labels[idx]) and x.dtype == torch.float32 and y.dtype == torch.int64
    x[:] = 0  # a copy: the cached batch is not changed by the caller
    assert not torch.equal(data.fashion_batch(5, seed=3)[0], x)
    assert data.fashion_batch(2)[0].shape == (2, 1, 28, 28)
    # the defaults: 128 images drawn with seed 0
    x, y = data.fashion_batch()
    idx = torch.randperm(60000, generator=torch.Generator().manual_seed(0))[:128]
    assert x.shape == (128, 1, 28, 28) and torch.equal(y, labels[idx])
    with pytest.raises(ValueError, match=r"fashion_batch: n must be at least 2 \(BatchNorm needs a batch\), got 1"):
        data.fashion_batch(1)


def test_stratified_subset_defaults_to_seed_0_of_the_split_asked_for():
    images, labels = data.load_tensors(train=True)
    x, y = data.stratified_subset(True, 2)
    idx = data.stratified_indices(labels, 2, seed=0)
    assert torch.equal(y, labels[idx]) and torch.equal(x, data.normalize(images[idx]))


def test_stratified_subset_and_indices_by_hand():
    labels = torch.tensor([2, 0, 1, 0, 2, 1, 0])
    idx = data.stratified_indices(labels, 1, seed=4)
    g = torch.Generator().manual_seed(4)
    expected = [int(torch.nonzero(labels == c).reshape(-1)[torch.randperm(n, generator=g)[0]])
                for c, n in ((0, 3), (1, 2), (2, 2))]
    assert idx.tolist() == sorted(expected)
    assert data.stratified_indices(labels, 2).tolist() == data.stratified_indices(labels, 2, seed=0).tolist()
    assert data.stratified_indices(labels.tolist(), 2, seed=1).tolist() == data.stratified_indices(labels, 2, seed=1).tolist()
    with pytest.raises(ValueError, match=r"per_class=3 is more than class 1 has \(2 images\); use per_class <= 2"):
        data.stratified_indices(labels, 3)
    with pytest.raises(ValueError, match=r"per_class must be a positive integer, got 1.5"):
        data.stratified_indices(labels, 1.5)
    x, y = data.stratified_subset(train=False, per_class=2, seed=5)
    images, all_labels = data.load_tensors(train=False)
    sel = data.stratified_indices(all_labels, 2, seed=5)
    torch.testing.assert_close(x, data.normalize(images[sel]))
    assert torch.equal(y, all_labels[sel]) and torch.bincount(y).tolist() == [2] * 10


def _toy(n: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1).expand(n, 4, 4).contiguous()  # image i is all i
    return images, torch.arange(n) % 3


def test_tensor_loader_batches_in_order_with_exact_values():
    images, labels = _toy(10)
    loader = data.TensorLoader(images, labels, batch_size=4, mean=0.0, std=1.0 / 255)  # x = pixel value
    batches = list(loader)
    assert len(loader) == 3 == len(batches) and loader.num_samples == 10 and len(loader.dataset) == 10
    assert [b[0].shape for b in batches] == [(4, 1, 4, 4), (4, 1, 4, 4), (2, 1, 4, 4)]
    assert torch.cat([b[0][:, 0, 0, 0] for b in batches]).round().long().tolist() == list(range(10))
    assert torch.cat([b[1] for b in batches]).tolist() == (torch.arange(10) % 3).tolist()
    dropping = data.TensorLoader(images, labels, batch_size=4, drop_last=True)
    assert len(dropping) == 2 and sum(len(b[1]) for b in dropping) == 8
    three = data.TensorLoader(images, labels, batch_size=10, in_channels=3)
    x3 = next(iter(three))[0]
    assert x3.shape == (10, 3, 4, 4) and torch.equal(x3[:, 0], x3[:, 2]) and x3.is_contiguous()
    assert loader.device == torch.device("cpu") and loader.labels.dtype == torch.int64


def test_tensor_loader_shuffle_follows_seed_and_epoch():
    images, labels = _toy(10)
    loader = data.TensorLoader(images, labels, batch_size=10, shuffle=True, seed=2, mean=0.0, std=1.0 / 255)
    first = next(iter(loader))[0][:, 0, 0, 0].round().long()
    g = torch.Generator().manual_seed(2 * 1_000_003 + 0)
    assert first.tolist() == torch.randperm(10, generator=g).tolist()
    assert loader.epoch == 1  # iter() advanced the epoch
    second = next(iter(loader))[0][:, 0, 0, 0].round().long()
    g = torch.Generator().manual_seed(2 * 1_000_003 + 1)
    assert second.tolist() == torch.randperm(10, generator=g).tolist()
    loader.set_epoch(0)
    assert next(iter(loader))[0][:, 0, 0, 0].round().long().tolist() == first.tolist()


def test_tensor_loader_shards_for_several_processes():
    images, labels = _toy(10)
    evals = [data.TensorLoader(images, labels, batch_size=3, num_replicas=3, rank=r, mean=0.0, std=1.0 / 255)
             for r in range(3)]
    seen = [torch.cat([b[0][:, 0, 0, 0] for b in e]).round().long().tolist() for e in evals]
    assert seen == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]  # every image once, no padding
    assert [e.num_samples for e in evals] == [4, 3, 3] and [len(e) for e in evals] == [2, 1, 1]
    trains = [data.TensorLoader(images, labels, batch_size=2, shuffle=True, num_replicas=3, rank=r, seed=1)
              for r in range(3)]
    assert [t.num_samples for t in trains] == [4, 4, 4] and [len(t) for t in trains] == [2, 2, 2]  # padded to 12
    from torch.utils.data import DistributedSampler

    for r, t in enumerate(trains):
        t.set_epoch(2)
        expected = DistributedSampler(range(10), num_replicas=3, rank=r, shuffle=True, seed=1)
        expected.set_epoch(2)
        got = torch.cat([b[1] for b in t]).tolist()
        assert got == [int(labels[i]) for i in expected]
    with pytest.raises(ValueError, match=r"need num_replicas >= 1 and 0 <= rank < num_replicas, got rank 3 of 3"):
        data.TensorLoader(images, labels, num_replicas=3, rank=3)
    with pytest.raises(ValueError, match=r"got rank -1 of 2"):
        data.TensorLoader(images, labels, num_replicas=2, rank=-1)
    with pytest.raises(ValueError, match=r"got rank 0 of 0"):
        data.TensorLoader(images, labels, num_replicas=0, rank=0)


def test_augmentation_is_a_shifted_crop_or_its_mirror():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(1, 256, (64, 6, 6), generator=g, dtype=torch.uint8)  # no zero pixel inside
    loader = data.TensorLoader(images, torch.zeros(64, dtype=torch.long), batch_size=64, augment=True, pad=2,
                               mean=0.0, std=1.0)
    out = loader.transform(images, torch.Generator().manual_seed(9))[:, 0]
    g = torch.Generator().manual_seed(9)  # the draws, in the loader's order: dy, dx, flip
    dy, dx = torch.randint(0, 5, (64,), generator=g), torch.randint(0, 5, (64,), generator=g)
    flip = torch.rand(64, generator=g) < 0.5
    padded = torch.nn.functional.pad(images.float() / 255, (2, 2, 2, 2))
    for i in range(64):
        crop = padded[i, dy[i]:dy[i] + 6, dx[i]:dx[i] + 6]
        torch.testing.assert_close(out[i], crop.flip(1) if flip[i] else crop)
    assert 0 < int(flip.sum()) < 64 and len(set(dy.tolist())) == 5  # both kinds and every shift occur


def test_tensor_loader_and_fast_loaders_reject_bad_arguments():
    images, labels = _toy(4)
    with pytest.raises(ValueError, match=r"images must be uint8 \[N, H, W\], got torch.uint8 \(4, 16\)"):
        data.TensorLoader(images.view(4, 16), labels)
    with pytest.raises(ValueError, match=r"^4 images but 3 labels$"):
        data.TensorLoader(images, labels[:3])
    with pytest.raises(ValueError, match=r"batch_size must be >= 1, got 0"):
        data.TensorLoader(images, labels, batch_size=0)
    assert len(data.TensorLoader(images, labels, batch_size=1)) == 4
    with pytest.raises(ValueError, match=r"in_channels must be 1 \(FashionMNIST\) or 3"):
        data.TensorLoader(images, labels, in_channels=2)
    with pytest.raises(ValueError, match=r"resize must be a positive image side in pixels \(e.g. 96 or 224\), got 2.5"):
        data.TensorLoader(images, labels, resize=2.5)
    assert data.TensorLoader(images, labels, resize=1).resize == 1
    with pytest.raises(ValueError, match=r"pad must be >= 0 pixels, got -1"):
        data.fast_loaders(pad=-1)


def test_fast_loaders_settings_reach_both_loaders():
    train, test = data.fast_loaders(batch_size=16, per_class=3, test_per_class=2, device="cpu", augment=True,
                                    pad=2, seed=4, drop_last=True)
    assert (train.batch_size, test.batch_size) == (16, 512)  # evaluation batches: at least 512
    assert (train.shuffle, test.shuffle, train.augment, test.augment) == (True, False, True, False)
    assert (train.drop_last, test.drop_last, train.pad, train.seed) == (True, False, 2, 4)
    assert len(train.images) == 30 and len(test.images) == 20
    _, big = data.fast_loaders(batch_size=600, per_class=1, test_per_class=1, device="cpu", test_batch_size=7)
    assert big.batch_size == 7
    _, default = data.fast_loaders(batch_size=600, per_class=1, test_per_class=1, device="cpu")
    assert default.batch_size == 600
    a, b = data.fast_loaders(batch_size=4, per_class=2, test_per_class=2, device="cpu", num_replicas=2, rank=1)
    assert (a.num_replicas, a.rank, b.num_replicas, b.rank) == (2, 1, 2, 1)
    assert a.num_samples == 10 and b.num_samples == 10


def test_augmentation_keeps_its_index_tensors_on_the_images_device():
    """On a GPU the crop offsets and flips must live on the GPU; the meta device (shapes only, on every
    machine) shows it without one: a CPU index tensor mixed with meta images raises."""
    loader = data.TensorLoader(torch.zeros(4, 8, 8, dtype=torch.uint8), torch.zeros(4, dtype=torch.int64),
                               batch_size=2, augment=True, pad=2)
    out = loader._augment(torch.empty(3, 1, 8, 8, device="meta"), torch.Generator().manual_seed(0))
    assert out.shape == (3, 1, 8, 8) and out.device.type == "meta"


# ------------------------------------------------------------------ written against mutmut's survivors (data)
def _spy_roots(monkeypatch) -> list:
    """Record the root every data read is asked for (then read the real files)."""
    roots = []
    real_load, real_ds = data.load_tensors, data.fashion_mnist
    monkeypatch.setattr(data, "load_tensors", lambda train=True, root=None: roots.append(root) or real_load(train))
    monkeypatch.setattr(data, "fashion_mnist",
                        lambda train=True, transform=None, root=None: roots.append(root) or real_ds(train, transform))
    return roots


@needs_debian
def test_both_loaders_read_every_file_from_the_root_they_are_given(monkeypatch, tmp_path):
    roots = _spy_roots(monkeypatch)
    data.fast_loaders(per_class=1, test_per_class=1, device="cpu", root=tmp_path)
    data.torchvision_loaders(per_class=1, test_per_class=1, root=tmp_path)
    # 2 splits x (the images + the subset's labels) per loader function; fashion_mnist's own inner
    # read (of the resolved directory) is not one of the calls being checked
    assert roots.count(tmp_path) == 8 and None not in roots


@needs_debian
def test_torchvision_loaders_defaults_splits_and_shuffling():
    from torch.utils.data import RandomSampler, SequentialSampler

    train, test = data.torchvision_loaders()
    assert (len(train.dataset), len(test.dataset)) == (60_000, 10_000)  # the two splits, not one twice
    assert (train.batch_size, test.batch_size, train.num_workers) == (256, 256, 0)
    assert isinstance(train.sampler, RandomSampler) and isinstance(test.sampler, SequentialSampler)
    with pytest.raises(ValueError, match="resize"):
        data.torchvision_loaders(resize=0)


@needs_debian
def test_torchvision_resize_smooths_when_it_shrinks():
    import torch.nn.functional as F

    train, _ = data.torchvision_loaders(resize=14, per_class=1, seed=0)
    x, _ = train.dataset[0]
    images, _ = data.load_tensors(True)
    raw = images[data.stratified_indices(data.load_tensors(True)[1], 1, 0)[0]].float().div(255)[None, None]
    expected = F.interpolate(raw, size=(14, 14), mode="bilinear", antialias=True, align_corners=False)
    torch.testing.assert_close(x, ((expected - data.MEAN) / data.STD)[0], atol=1e-5, rtol=0)


@needs_debian
def test_fast_loaders_defaults_and_a_zero_pad():
    train, test = data.fast_loaders(per_class=1, test_per_class=1, device="cpu")
    assert (train.batch_size, test.batch_size, train.pad) == (256, 512, 4)
    crop_free = data.fast_loaders(per_class=1, test_per_class=1, device="cpu", augment=True, pad=0)[0]
    assert crop_free.pad == 0  # flips only: allowed
    seeded = data.fast_loaders(per_class=1, test_per_class=1, device="cpu", seed=1)[0]
    x, y = data.stratified_subset(True, 1, seed=1)  # the seed picks the subset too
    assert torch.equal(seeded.labels, y) and torch.equal(seeded.transform(seeded.images), x)


def test_tensor_loader_orders_differ_epoch_by_epoch_and_transform_is_seeded():
    images = torch.arange(12 * 4, dtype=torch.uint8).view(12, 2, 2)
    loader = data.TensorLoader(images, torch.arange(12), batch_size=12, shuffle=True, augment=True, pad=1, seed=3)
    orders = [tuple(y.tolist()) for _, y in loader] + [tuple(y.tolist()) for _, y in loader] + \
             [tuple(y.tolist()) for _, y in loader]
    assert loader.epoch == 3 and len(set(orders)) == 3  # a new shuffle every epoch
    assert torch.equal(loader.transform(images), loader.transform(images))  # without g: the epoch's own stream
    two = [data.TensorLoader(images, torch.arange(12), batch_size=12, num_replicas=2, rank=r) for r in (0, 1)]
    assert [next(iter(t))[1].tolist() for t in two] == [list(range(0, 12, 2)), list(range(1, 12, 2))]


@needs_debian
def test_a_file_changed_after_its_stamp_is_hashed_again_and_caught(tmp_path):
    root = data.ensure_fashion_mnist(tmp_path / "root", download=False, debian_dir=_fake_debian(tmp_path))
    f = root / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    raw = bytearray(f.read_bytes())
    raw[-1] ^= 0xFF  # same size, other content, a newer modification time than the stamp's
    f.write_bytes(bytes(raw))
    with pytest.raises(data.DataIntegrityError, match="t10k-labels-idx1-ubyte: MD5 checksum mismatch"):
        data.ensure_fashion_mnist(root, download=False)


def test_tensor_loader_defaults_label_dtype_and_two_shuffling_processes():
    images = torch.zeros(8, 4, 4, dtype=torch.uint8)
    loader = data.TensorLoader(images, torch.arange(8, dtype=torch.int32))
    assert (loader.batch_size, loader.pad, loader.seed, loader.device.type) == (256, 4, 0, "cpu")
    assert loader.labels.dtype == torch.int64  # what cross_entropy needs, whatever came in
    pair = [data.TensorLoader(images, torch.arange(8), batch_size=8, shuffle=True, num_replicas=2, rank=r)
            for r in (0, 1)]
    seen = [set(next(iter(p))[1].tolist()) for p in pair]
    assert len(seen[0]) == len(seen[1]) == 4 and not seen[0] & seen[1]  # two halves of one shuffle


# ------------------------------------------------------------------ second round against the survivors (data)
def _md5_of(payload: bytes) -> str:
    import hashlib

    return hashlib.md5(payload).hexdigest()


def _idx(magic: int, shape: tuple, values: list) -> bytes:
    """An IDX file as FashionMNIST stores it: a big-endian int32 magic and sizes, then uint8 values."""
    import struct

    return struct.pack(f">{1 + len(shape)}i", magic, *shape) + bytes(values)


def _tiny_fashion_mnist(tmp_path: Path, monkeypatch) -> Path:
    """A 3 + 2 image FashionMNIST (4x4 pixels) under tmp_path, with RAW_FILES patched to its checksums.

    The Debian directory and torchvision's download are switched off, so a read from any other
    directory fails instead of finding (or fetching) the real data set.
    """
    from torchvision import datasets

    files = {
        "train-images-idx3-ubyte": _idx(2051, (3, 4, 4), list(range(48))),
        "train-labels-idx1-ubyte": _idx(2049, (3,), [7, 8, 9]),
        "t10k-images-idx3-ubyte": _idx(2051, (2, 4, 4), list(range(100, 132))),
        "t10k-labels-idx1-ubyte": _idx(2049, (2,), [1, 2]),
    }
    raw = tmp_path / "tiny" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name, payload in files.items():
        (raw / name).write_bytes(payload)
    monkeypatch.setattr(data, "RAW_FILES", {n: (_md5_of(p), len(p)) for n, p in files.items()})
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")

    def no_download(self):
        raise AssertionError("tests never download")

    monkeypatch.setattr(datasets.FashionMNIST, "download", no_download)
    return tmp_path / "tiny"


def test_fashion_mnist_and_load_tensors_read_the_root_they_are_given(tmp_path, monkeypatch):
    root = _tiny_fashion_mnist(tmp_path, monkeypatch)
    ds = data.fashion_mnist(root=root)  # default: the training split, never a download
    assert len(ds) == 3 and ds.targets.tolist() == [7, 8, 9]
    images, labels = data.load_tensors(root=root)  # default: the training split
    assert torch.equal(images, torch.arange(48, dtype=torch.uint8).view(3, 4, 4))
    assert labels.tolist() == [7, 8, 9] and labels.dtype == torch.int64
    test_images, test_labels = data.load_tensors(False, root)
    assert test_images[1, 3, 3].item() == 131 and test_labels.tolist() == [1, 2]


def test_a_verified_directory_is_not_hashed_again(tmp_path, monkeypatch):
    root = _tiny_fashion_mnist(tmp_path, monkeypatch)
    hashed = []
    real_md5 = data._md5
    monkeypatch.setattr(data, "_md5", lambda path, *a: hashed.append(path.name) or real_md5(path, *a))
    assert data.ensure_fashion_mnist(root, download=False) == root
    assert sorted(hashed) == sorted(data.RAW_FILES)  # first look: every file hashed once
    raw = root / "FashionMNIST" / "raw"
    stamp = json.loads((raw / ".verified.json").read_text())
    assert stamp == {n: [(raw / n).stat().st_size, (raw / n).stat().st_mtime_ns] for n in data.RAW_FILES}
    hashed.clear()
    assert data.ensure_fashion_mnist(root, download=False) == root
    assert hashed == []  # unchanged sizes and times: the stamp is trusted


def test_unpack_gz_accepts_torchvisions_archive_by_its_own_checksum(tmp_path):
    src = tmp_path / "x.gz"
    src.write_bytes(gzip.compress(b"original archive"))
    dest = tmp_path / "x"
    data._unpack_gz(src, dest, _md5_of(src.read_bytes()), "0" * 32)  # the archive's MD5 is enough
    assert dest.read_bytes() == b"original archive"
    debian = tmp_path / "y.gz"
    debian.write_bytes(gzip.compress(b"recompressed", mtime=1))
    data._unpack_gz(debian, tmp_path / "y", "0" * 32, _md5_of(b"recompressed"))  # or the content's MD5
    assert (tmp_path / "y").read_bytes() == b"recompressed"


def test_unpack_gz_with_no_matching_checksum_names_both_and_writes_nothing(tmp_path):
    src = tmp_path / "x.gz"
    src.write_bytes(gzip.compress(b"something else"))
    gz_md5, raw_md5 = _md5_of(src.read_bytes()), _md5_of(b"something else")
    with pytest.raises(data.DataIntegrityError,
                       match=rf"x.gz: checksum mismatch. Archive MD5 expected a{31 * 'b'} \(torchvision\), "
                             rf"got {gz_md5}; unzipped content MD5 expected c{31 * 'd'}, got {raw_md5}"):
        data._unpack_gz(src, tmp_path / "x", "a" + 31 * "b", "c" + 31 * "d")
    assert not (tmp_path / "x").exists()


def test_unpack_gz_of_a_cut_archive_names_the_error_and_its_md5(tmp_path):
    src = tmp_path / "x.gz"
    src.write_bytes(gzip.compress(bytes(range(256)) * 64)[:100])
    got = _md5_of(src.read_bytes())
    with pytest.raises(data.DataIntegrityError, match=rf"truncated or corrupted \(EOFError: .*got {got}"):
        data._unpack_gz(src, tmp_path / "x", "a" * 32, "b" * 32)
    assert not (tmp_path / "x").exists()


def test_tensor_loader_keeps_images_and_labels_on_its_device():
    # the meta device (shapes only) exists on every machine, so no GPU is needed to see the move
    loader = data.TensorLoader(torch.zeros(4, 2, 2, dtype=torch.uint8), torch.zeros(4, dtype=torch.int32),
                               device="meta")
    assert (loader.device.type, loader.images.device.type, loader.labels.device.type) == ("meta",) * 3
    assert loader.labels.dtype == torch.int64


def test_fast_loaders_use_the_given_device_or_get_device(monkeypatch):
    train, test = data.fast_loaders(per_class=1, test_per_class=1, device="meta")
    assert (train.images.device.type, test.images.device.type) == ("meta", "meta")
    monkeypatch.setattr(data, "get_device", lambda: torch.device("meta"))  # as if an accelerator were found
    train, test = data.fast_loaders(per_class=1, test_per_class=1)
    assert (train.device.type, test.labels.device.type) == ("meta", "meta")


def test_torchvision_loaders_pass_num_workers_on():
    train, test = data.torchvision_loaders(per_class=1, test_per_class=1, num_workers=2)
    assert (train.num_workers, test.num_workers) == (2, 2)
