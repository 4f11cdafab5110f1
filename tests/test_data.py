"""FashionMNIST lookup, checksums, subsets and the two loaders."""

import gzip
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
