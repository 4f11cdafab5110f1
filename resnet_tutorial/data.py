"""FashionMNIST that works offline, checked byte for byte, and two ways to load it.

Where the data comes from, in this order:

1. a data directory: ``$RESNET_TUTORIAL_DATA`` or ``~/.cache/resnet-tutorial/data``
   (torchvision's layout: ``<root>/FashionMNIST/raw/<four unzipped files>``);
2. the Debian/Ubuntu package ``dataset-fashion-mnist``, whose four ``.gz`` files
   in ``/usr/share/datasets/fashion-mnist`` are verified and unpacked into 1.;
3. torchvision's own download (machines that are online).

Every file is checked against known MD5 checksums, so a truncated or corrupted
copy stops with an error naming the file instead of silently training on
garbage. Debian recompressed the archives (a different gzip header), so their
``.gz`` checksums differ from torchvision's; what must match is the *content*,
which is checked after unpacking against the well-known checksums of the
unzipped files.

Two loaders:

* :func:`torchvision_loaders`: the standard ``DataLoader`` with ``ToTensor`` /
  ``Resize`` / ``Normalize``, as in the blog posts;
* :func:`fast_loaders` / :class:`TensorLoader`: the whole split lives on the
  device as one uint8 tensor and each batch is converted, resized, normalized
  and augmented there. Same numbers, far less Python per batch.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F

from .device import get_device
from .results import atomic_path, write_json

DATA_ENV = "RESNET_TUTORIAL_DATA"
DEFAULT_ROOT = Path("~/.cache/resnet-tutorial/data")
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

#: The ten FashionMNIST classes, index = label.
CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

#: Pixel mean and standard deviation of the 60,000 training images, on the
#: [0, 1] scale of ``ToTensor`` (``tests/test_data.py`` recomputes them).
MEAN: float = 0.2860
STD: float = 0.3530

# MD5 of the *unzipped* files and their sizes in bytes (16- or 8-byte IDX header + data).
RAW_FILES: dict[str, tuple[str, int]] = {
    "train-images-idx3-ubyte": ("f4a8712d7a061bf5bd6d2ca38dc4d50a", 16 + 60000 * 28 * 28),
    "train-labels-idx1-ubyte": ("9018921c3c673c538a1fc5bad174d6f9", 8 + 60000),
    "t10k-images-idx3-ubyte": ("8181f5470baa50b63fa0f6fddb340f0a", 16 + 10000 * 28 * 28),
    "t10k-labels-idx1-ubyte": ("15d484375f8d13e6eb1aabb0c3f46965", 8 + 10000),
}
_STAMP = ".verified.json"


class DataIntegrityError(ValueError):
    """A data file exists but its content is not the real FashionMNIST file."""


def _gz_checksums() -> dict[str, str]:
    """torchvision's MD5 checksums of the original ``.gz`` archives."""
    from torchvision import datasets

    return {name: md5 for name, md5 in datasets.FashionMNIST.resources}


def _md5(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data directory: ``root``, else ``$RESNET_TUTORIAL_DATA``, else the default cache."""
    if root is None:
        root = os.environ.get(DATA_ENV) or DEFAULT_ROOT
    return Path(root).expanduser()


def _raw_dir(root: Path) -> Path:
    return root / "FashionMNIST" / "raw"


def _verify_raw(raw: Path) -> None:
    """Check the four unzipped files: sizes always, MD5 once (cached in a stamp file).

    The stamp records each file's size and modification time after a full MD5
    check, so repeated loads cost four ``stat`` calls instead of hashing 55 MB.
    """
    stamp_path = raw / _STAMP
    try:
        stamp = json.loads(stamp_path.read_text())
    except (OSError, ValueError):
        stamp = {}
    if not isinstance(stamp, dict):  # valid JSON but not ours (an interrupted or foreign write): hash again
        stamp = {}
    new_stamp = {}
    for name, (md5, size) in RAW_FILES.items():
        path = raw / name
        st = path.stat()
        if st.st_size != size:
            raise DataIntegrityError(
                f"{path} has {st.st_size} bytes, expected {size} (truncated or not FashionMNIST). "
                f"Delete it and run `python -m resnet_tutorial data` to unpack or download it again."
            )
        key = [st.st_size, st.st_mtime_ns]
        if stamp.get(name) != key:
            got = _md5(path)
            if got != md5:
                raise DataIntegrityError(
                    f"{path}: MD5 checksum mismatch (expected {md5}, got {got}). The file is "
                    f"corrupted; delete it and run `python -m resnet_tutorial data` again."
                )
        new_stamp[name] = key
    if new_stamp != stamp:
        try:
            write_json(stamp_path, new_stamp)
        except OSError:
            pass  # a read-only data directory still works, it is just hashed each time


def _unpack_gz(src: Path, dest: Path, gz_md5: str, raw_md5: str) -> None:
    """Unzip ``src`` to ``dest`` atomically, accepting it only if a checksum matches.

    The archive passes if its own MD5 is torchvision's, or if the unzipped bytes
    have the original content's MD5 (Debian's recompressed archives).
    """
    got_gz = _md5(src)
    h = hashlib.md5()
    with atomic_path(dest) as tmp:  # moved into place only when a checksum matched
        try:
            with open(tmp, "wb") as out, gzip.open(src, "rb") as f:
                while block := f.read(1 << 20):
                    h.update(block)
                    out.write(block)
        except (EOFError, OSError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
            raise DataIntegrityError(
                f"{src} is truncated or corrupted ({type(e).__name__}: {e}); checksum mismatch: "
                f"archive MD5 expected {gz_md5}, got {got_gz}. Reinstall it "
                f"(`apt-get install --reinstall dataset-fashion-mnist`) or point {DATA_ENV} at a good copy."
            ) from e
        got_raw = h.hexdigest()
        if got_gz != gz_md5 and got_raw != raw_md5:
            raise DataIntegrityError(
                f"{src}: checksum mismatch. Archive MD5 expected {gz_md5} (torchvision), got "
                f"{got_gz}; unzipped content MD5 expected {raw_md5}, got {got_raw}. Reinstall it "
                f"(`apt-get install --reinstall dataset-fashion-mnist`) or point "
                f"{DATA_ENV} at a good copy."
            )


def _raw_complete(raw: Path) -> bool:
    return all((raw / name).is_file() for name in RAW_FILES)


def ensure_fashion_mnist(
    root: str | os.PathLike | None = None,
    download: bool = True,
    debian_dir: str | os.PathLike | None = None,
) -> Path:
    """Make sure verified FashionMNIST files exist and return the root to give torchvision.

    Looks in the data directory, then unpacks the Debian package's archives,
    then (``download=True``) lets torchvision download. Raises
    :class:`FileNotFoundError` naming every fix when nothing works and
    :class:`DataIntegrityError` (a ``ValueError``) for a corrupted file.

    Lessons: 00, 07.
    """
    root = data_root(root)
    raw = _raw_dir(root)
    if _raw_complete(raw):
        _verify_raw(raw)
        return root

    debian = Path(debian_dir) if debian_dir is not None else DEBIAN_DIR
    gz_md5 = _gz_checksums()
    if all((debian / f"{name}.gz").is_file() for name in RAW_FILES):
        raw.mkdir(parents=True, exist_ok=True)
        for name, (raw_md5, _) in RAW_FILES.items():
            if not (raw / name).is_file():
                _unpack_gz(debian / f"{name}.gz", raw / name, gz_md5[f"{name}.gz"], raw_md5)
        _verify_raw(raw)
        return root

    reason = "download=False"
    if download:
        try:
            from torchvision import datasets

            for train in (True, False):
                datasets.FashionMNIST(str(root), train=train, download=True)
            _verify_raw(raw)
            return root
        except DataIntegrityError:
            raise
        except Exception as e:  # no network, proxy, server down...
            reason = f"download failed: {type(e).__name__}: {e}"

    raise FileNotFoundError(
        "FashionMNIST not found. Looked in:\n"
        f"  1. the data directory {raw} (set {DATA_ENV}=/path/to/dir that holds FashionMNIST/raw/)\n"
        f"  2. the Debian package files in {debian} "
        "(install them: `sudo apt-get install dataset-fashion-mnist`)\n"
        f"  3. torchvision's download ({reason}; go online and run "
        "`python -m resnet_tutorial data`)\n"
        "Any one of the three fixes is enough."
    )


def fashion_mnist(train: bool = True, transform=None, root: str | os.PathLike | None = None):
    """torchvision's ``FashionMNIST`` dataset on the verified files (never downloads twice)."""
    from torchvision import datasets

    path = ensure_fashion_mnist(root)
    return datasets.FashionMNIST(str(path), train=train, transform=transform, download=False)


@lru_cache(maxsize=4)
def _load_tensors_cached(train: bool, root: str) -> tuple[torch.Tensor, torch.Tensor]:
    ds = fashion_mnist(train=train, root=root)
    return ds.data, ds.targets.to(torch.int64)


def load_tensors(train: bool = True, root: str | os.PathLike | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A whole split as tensors: images ``uint8 [N, 28, 28]`` and labels ``int64 [N]``.

    Cached per process (treat the tensors as read-only).

    Lessons: 00, 02, 07.
    """
    return _load_tensors_cached(bool(train), str(ensure_fashion_mnist(root)))


def stratified_indices(labels: Sequence[int] | torch.Tensor, per_class: int, seed: int = 0) -> torch.Tensor:
    """Exactly ``per_class`` random indices of each class (seeded), sorted ascending.

    Balanced subsets keep the class mix of small experiments equal to the full
    data set's. Raises ``ValueError`` when ``per_class`` is < 1 or larger than
    the smallest class.
    """
    labels = torch.as_tensor(labels).reshape(-1)
    if int(per_class) != per_class or per_class < 1:
        raise ValueError(f"per_class must be a positive integer, got {per_class!r}")
    classes, counts = torch.unique(labels, return_counts=True)
    if per_class > int(counts.min()):
        small = int(classes[counts.argmin()])
        raise ValueError(
            f"per_class={per_class} is more than class {small} has ({int(counts.min())} images); "
            f"use per_class <= {int(counts.min())}"
        )
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for c in classes:
        idx = torch.nonzero(labels == c).reshape(-1)
        chosen.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    return torch.sort(torch.cat(chosen)).values


def _subset_indices(train: bool, per_class: int | None, seed: int, root) -> torch.Tensor | None:
    if per_class is None:
        return None
    _, labels = load_tensors(train, root)
    return stratified_indices(labels, per_class, seed)


def _check_resize(resize: int | None) -> None:
    if resize is not None and (int(resize) != resize or resize < 1):
        raise ValueError(f"resize must be a positive image side in pixels (e.g. 96 or 224), got {resize!r}")


def normalize(images: torch.Tensor, mean: float = MEAN, std: float = STD) -> torch.Tensor:
    """uint8 images ``[N, H, W]`` (or ``[N, 1, H, W]``) → float ``[N, 1, H, W]``, ``(x / 255 - mean) / std``.

    The one normalization of the package: the loaders, the fixed batches and
    the lessons' subsets all go through it, so "normalized" means one thing.
    """
    if images.dtype != torch.uint8:
        raise ValueError(f"normalize expects uint8 pixels 0..255, got {images.dtype}")
    x = images.float().div(255.0)
    x = x.unsqueeze(1) if x.dim() == 3 else x
    return (x - mean) / std


def stratified_subset(train: bool, per_class: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` normalized images of every class (``[10·per_class, 1, 28, 28]``, labels), seeded.

    Lessons: 11.
    """
    images, labels = load_tensors(train=train)
    idx = stratified_indices(labels, per_class, seed=seed)
    return normalize(images[idx]), labels[idx].clone()


@lru_cache(maxsize=4)
def _fashion_batch_cached(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = load_tensors(train=True)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(labels), generator=g)[:n]
    return normalize(images[idx]), labels[idx].clone()


def fashion_batch(n: int = 128, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed, normalized FashionMNIST training batch ``([n, 1, 28, 28] float32, [n] int64)`` (cached).

    The images the gradient measurements of lessons 01-03 and 05 send through a
    net: drawn at random (``seed``) from the 60,000 training images.

    Lessons: 01, 02, 04.
    """
    if n < 2:
        raise ValueError(f"fashion_batch: n must be at least 2 (BatchNorm needs a batch), got {n}")
    x, y = _fashion_batch_cached(int(n), int(seed))
    return x.clone(), y.clone()


def torchvision_loaders(
    batch_size: int = 256,
    resize: int | None = None,
    per_class: int | None = None,
    test_per_class: int | None = None,
    seed: int = 0,
    num_workers: int = 0,
    root: str | os.PathLike | None = None,
):
    """The standard ``(train_loader, test_loader)``: ``ToTensor`` → ``Resize`` → ``Normalize``.

    The way the posts (and d2l) load FashionMNIST: a ``Dataset`` of PIL images
    and a ``DataLoader`` that shuffles the training split. ``per_class`` /
    ``test_per_class`` take a balanced, seeded subset of that many images per class.

    Lessons: 07.
    """
    from torch.utils.data import DataLoader, Subset
    from torchvision import transforms as T

    _check_resize(resize)
    steps = [T.ToTensor()]
    if resize is not None:
        steps.append(T.Resize(resize, antialias=True))
    steps.append(T.Normalize((MEAN,), (STD,)))
    tf = T.Compose(steps)
    loaders = []
    for train, pc in ((True, per_class), (False, test_per_class)):
        ds = fashion_mnist(train=train, transform=tf, root=root)
        idx = _subset_indices(train, pc, seed, root)
        if idx is not None:
            ds = Subset(ds, idx.tolist())
        loaders.append(DataLoader(ds, batch_size=batch_size, shuffle=train, num_workers=num_workers))
    return tuple(loaders)


class TensorLoader:
    """Batches from one resident uint8 tensor, processed on the target device.

    Per batch: uint8 → float in [0, 1], optional bilinear resize, optional
    augmentation (random crop from a zero-padded image + horizontal flip),
    normalize with ``MEAN``/``STD``, repeat to ``in_channels``. Shuffling and
    augmentation are seeded by ``(seed, epoch)``; the epoch advances on each
    ``iter()`` and :meth:`set_epoch` pins it (``fit`` uses that to resume exactly).

    Several processes (``num_replicas > 1``, this one being ``rank``): a
    shuffling loader takes its indices from :class:`torch.utils.data.DistributedSampler`
    (one permutation per epoch shared by all processes, each taking an equal
    share, padded by repetition, so that every process runs the same number of
    steps); a non-shuffling loader (evaluation) takes every ``num_replicas``-th
    image from ``rank`` on, with no padding, so summed metrics count each image once.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int = 256,
        shuffle: bool = False,
        device: torch.device | str | None = None,
        resize: int | None = None,
        augment: bool = False,
        pad: int = 4,
        seed: int = 0,
        in_channels: int = 1,
        drop_last: bool = False,
        mean: float = MEAN,
        std: float = STD,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if not (num_replicas >= 1 and 0 <= rank < num_replicas):
            raise ValueError(f"need num_replicas >= 1 and 0 <= rank < num_replicas, got rank {rank} of {num_replicas}")
        if images.dtype != torch.uint8 or images.dim() != 3:
            raise ValueError(f"images must be uint8 [N, H, W], got {images.dtype} {tuple(images.shape)}")
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 (FashionMNIST) or 3 (ImageNet-style models), got {in_channels}")
        _check_resize(resize)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.images = images.to(self.device)
        self.labels = labels.to(torch.int64).to(self.device)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.resize = resize
        self.augment = augment
        self.pad = pad
        self.seed = seed
        self.in_channels = in_channels
        self.drop_last = drop_last
        self.mean, self.std = mean, std
        self.epoch = 0
        self.dataset = self.images  # so that len(loader.dataset) works as for a DataLoader
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.sampler = None
        if self.num_replicas > 1 and shuffle:
            from torch.utils.data import DistributedSampler

            self.sampler = DistributedSampler(
                range(len(self.images)), num_replicas=self.num_replicas, rank=self.rank, shuffle=True, seed=seed
            )

    @property
    def num_samples(self) -> int:
        """Images this process sees per epoch (all of them in a single process)."""
        if self.sampler is not None:
            return self.sampler.num_samples
        return len(range(self.rank, len(self.images), self.num_replicas))

    def __len__(self) -> int:
        n = self.num_samples
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Use the shuffle/augmentation of ``epoch`` on the next iteration."""
        self.epoch = int(epoch)

    def _generator(self) -> torch.Generator:
        # each process augments its shard with its own random numbers
        return torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch + 7_919 * self.rank)

    def _indices(self, g: torch.Generator) -> torch.Tensor | None:
        """This epoch's image order for this process (``None``: all images in order)."""
        if self.sampler is not None:
            self.sampler.set_epoch(self.epoch)
            return torch.tensor(list(self.sampler), dtype=torch.int64)
        if self.shuffle:
            return torch.randperm(len(self.images), generator=g)
        if self.num_replicas > 1:
            return torch.arange(self.rank, len(self.images), self.num_replicas)
        return None

    def transform(self, x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        """uint8 ``[B, H, W]`` → normalized float ``[B, C, H', W']`` on the device."""
        x = x.float().div_(255).unsqueeze(1)
        if self.augment:
            x = self._augment(x, g if g is not None else self._generator())
        if self.resize is not None:
            x = F.interpolate(x, size=(self.resize, self.resize), mode="bilinear", align_corners=False)
        x = (x - self.mean) / self.std
        if self.in_channels == 3:
            x = x.expand(-1, 3, -1, -1).contiguous()
        return x

    def _augment(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        b, _, h, w = x.shape
        p = self.pad
        dy = torch.randint(0, 2 * p + 1, (b,), generator=g).to(x.device)
        dx = torch.randint(0, 2 * p + 1, (b,), generator=g).to(x.device)
        flip = (torch.rand(b, generator=g) < 0.5).to(x.device)
        padded = F.pad(x[:, 0], (p, p, p, p))  # zero = black background
        rows = dy[:, None] + torch.arange(h, device=x.device)  # [B, H]
        cols = dx[:, None] + torch.arange(w, device=x.device)  # [B, W]
        cols = torch.where(flip[:, None], cols.flip(1), cols)
        out = padded[torch.arange(b, device=x.device)[:, None, None], rows[:, :, None], cols[:, None, :]]
        return out.unsqueeze(1)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        g = self._generator()
        n = self.num_samples
        order = self._indices(g)
        order = order.to(self.device) if order is not None else None
        self.epoch += 1
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            sl = slice(start, min(start + self.batch_size, n))
            idx = order[sl] if order is not None else None
            x = self.images[idx] if idx is not None else self.images[sl]
            y = self.labels[idx] if idx is not None else self.labels[sl]
            yield self.transform(x, g), y


def fast_loaders(
    batch_size: int = 256,
    per_class: int | None = None,
    test_per_class: int | None = None,
    resize: int | None = None,
    device: torch.device | str | None = None,
    augment: bool = False,
    seed: int = 0,
    in_channels: int = 1,
    root: str | os.PathLike | None = None,
    test_batch_size: int | None = None,
    pad: int = 4,
    num_replicas: int = 1,
    rank: int = 0,
    drop_last: bool = False,
) -> tuple[TensorLoader, TensorLoader]:
    """``(train_loader, test_loader)`` as :class:`TensorLoader`s on ``device``.

    The training loader shuffles (and augments if asked: random crops from a
    ``pad``-pixel zero border, horizontal flips); the test loader never does.
    ``in_channels=3`` repeats the gray channel for 3-channel models. With
    ``num_replicas > 1`` both loaders give process ``rank`` its shard (see
    :class:`TensorLoader`); ``batch_size`` is then per process. ``drop_last``
    leaves out the training loader's last, smaller batch (its noisier loss shows
    as a spike in per-step loss curves).

    Lessons: 01, 07.
    """
    if pad < 0:
        raise ValueError(f"pad must be >= 0 pixels, got {pad}")
    if device is None:
        device = get_device()
    loaders = []
    for train, pc in ((True, per_class), (False, test_per_class)):
        images, labels = load_tensors(train, root)
        idx = _subset_indices(train, pc, seed, root)
        if idx is not None:
            images, labels = images[idx], labels[idx]
        loaders.append(
            TensorLoader(
                images,
                labels,
                batch_size=batch_size if train else (test_batch_size or max(batch_size, 512)),
                shuffle=train,
                device=device,
                resize=resize,
                augment=augment and train,
                seed=seed,
                in_channels=in_channels,
                pad=pad,
                num_replicas=num_replicas,
                rank=rank,
                drop_last=drop_last and train,
            )
        )
    return loaders[0], loaders[1]
