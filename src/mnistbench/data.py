"""MNIST and Fashion-MNIST: find, verify, decode once, split, and feed the two loaders.

The raw files live under `<data_dir>/<Name>/raw/` exactly as torchvision lays them out,
gzipped or not, so a root torchvision downloaded into works as is, and so does a
read-only copy on a machine with no internet. The uncompressed bytes are checked
against the canonical MD5s once; the decoded uint8 tensors then go to a cache whose
key is the source files' size and mtime, so later sessions skip both the gunzip and
the hash. Nothing is ever written into the data directory except by a download.

Usage: python -m mnistbench.data --data-dir DIR [--download]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mnistbench.config import DATASETS, SPLITS, check_choice

DATA_DIR_ENV = "MNISTBENCH_DATA_DIR"
CACHE_DIR_ENV = "MNISTBENCH_CACHE_DIR"
OFFLINE_ENV = "MNISTBENCH_OFFLINE"
CACHE_FORMAT = 1

# (file stem, MD5 of the uncompressed file, uncompressed bytes, IDX magic, item count)
_FILES = {
    "MNIST": (
        ("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb", 47040016, 2051, 60000),
        ("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624", 60008, 2049, 60000),
        ("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea", 7840016, 2051, 10000),
        ("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637", 10008, 2049, 10000),
    ),
    "FashionMNIST": (
        ("train-images-idx3-ubyte", "f4a8712d7a061bf5bd6d2ca38dc4d50a", 47040016, 2051, 60000),
        ("train-labels-idx1-ubyte", "9018921c3c673c538a1fc5bad174d6f9", 60008, 2049, 60000),
        ("t10k-images-idx3-ubyte", "8181f5470baa50b63fa0f6fddb340f0a", 7840016, 2051, 10000),
        ("t10k-labels-idx1-ubyte", "15d484375f8d13e6eb1aabb0c3f46965", 10008, 2049, 10000),
    ),
}
OFFICIAL_TRAIN = 60000
LABELS_MAGIC = 2049
POOLED_FRACTIONS = (0.7, 0.1, 0.2)
DOWNLOAD_TIMEOUT_S = 30


class DataError(RuntimeError):
    """The data cannot be used; the message names the file and says what to do."""


def _fix_hint(root: Path) -> str:
    return (
        f"To fix: run `python -m mnistbench.data --data-dir {root} --download` on a machine "
        "with internet (or delete the bad file so it is fetched again), or point --data-dir "
        f"(or ${DATA_DIR_ENV}) at a folder holding <Name>/raw/*-ubyte[.gz] files."
    )


def default_data_dir(option: str | os.PathLike | None = None) -> Path:
    """--data-dir, else $MNISTBENCH_DATA_DIR, else ./data."""
    return Path(option or os.environ.get(DATA_DIR_ENV) or "data").expanduser()


def default_cache_dir(option: str | os.PathLike | None = None) -> Path:
    base = option or os.environ.get(CACHE_DIR_ENV)
    if base:
        return Path(base).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "mnistbench"


def offline_by_default() -> bool:
    return os.environ.get(OFFLINE_ENV, "") not in ("", "0", "false", "no")


# ---------------------------------------------------------------- raw files


def _source(root: Path, name: str, stem: str) -> Path | None:
    raw = root / name / "raw"
    for candidate in (raw / stem, raw / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_bytes(path: Path, root: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(
            f"{path}: cannot be read as {'gzip' if path.suffix == '.gz' else 'a file'} "
            f"({exc.__class__.__name__}: {exc}); it is probably truncated or corrupt. "
            + _fix_hint(root)
        ) from None


def parse_idx(blob: bytes, path: Path, magic: int, count: int, root: Path) -> np.ndarray:
    """Decode an IDX file with the checks torchvision's reader makes as asserts."""
    found = int.from_bytes(blob[:4], "big") if len(blob) >= 4 else None
    if found != magic:
        raise DataError(
            f"{path}: IDX magic number is {found}, expected {magic} "
            f"({'labels' if magic == LABELS_MAGIC else 'images'}). The file is not what its name says. "
            + _fix_hint(root)
        )
    ndim = magic & 0xFF
    dims = [int.from_bytes(blob[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    header = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if dims[0] != count or len(blob) - header != expected:
        raise DataError(
            f"{path}: header says {dims[0]} items of shape {dims[1:]} ({expected} bytes) and "
            f"{len(blob) - header} bytes follow; expected {count} items. The file is truncated "
            "or its images and labels disagree. " + _fix_hint(root)
        )
    return np.frombuffer(blob, dtype=np.uint8, offset=header).reshape(dims)


def _signature(paths: list[Path]) -> list[list]:
    return [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in paths]


def _download(name: str, root: Path) -> None:
    """torchvision's own downloader, bounded so an offline machine fails fast, not hangs."""
    import torchvision.datasets as tvd

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        getattr(tvd, name)(str(root), train=True, download=True)
        getattr(tvd, name)(str(root), train=False, download=True)
    except Exception as exc:  # noqa: BLE001 - any failure here means the same thing to a user
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise DataError(
            f"{name}: files missing under {root / name / 'raw'} and the download failed "
            f"({exc.__class__.__name__}: {first_line}). " + _fix_hint(root)
        ) from None
    finally:
        socket.setdefaulttimeout(previous)


def _decode(name: str, root: Path, sources: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """Structure first (the more specific message), then the canonical MD5."""
    arrays = []
    for path, (stem, md5, size, magic, count) in zip(sources, _FILES[name], strict=True):
        blob = _read_bytes(path, root)
        array = parse_idx(blob, path, magic, count, root)
        if magic == LABELS_MAGIC and array.max() > 9:
            raise DataError(f"{path}: label {int(array.max())} outside 0-9. " + _fix_hint(root))
        digest = hashlib.md5(blob).hexdigest()
        if digest != md5:
            raise DataError(
                f"{path}: MD5 of the uncompressed bytes is {digest} ({len(blob)} bytes), "
                f"expected {md5} ({size} bytes). The file is corrupt or not the canonical "
                f"{name} {stem}. " + _fix_hint(root)
            )
        arrays.append(array)
    train_x, train_y, test_x, test_y = arrays
    images = torch.from_numpy(np.concatenate([train_x, test_x]))
    labels = torch.from_numpy(np.concatenate([train_y, test_y]).astype(np.int64))
    return images, labels


@dataclass(frozen=True)
class RawData:
    """All 70,000 images of one dataset: the 60,000 official train first, then the 10,000 test."""

    name: str
    images: torch.Tensor  # uint8 [70000, 28, 28]
    labels: torch.Tensor  # int64 [70000]
    source: str  # the folder the files came from


def load_raw(
    name: str,
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    download: bool | None = None,
) -> RawData:
    """Verified, decoded images of one dataset, from the cache when the sources are unchanged."""
    check_choice("dataset", name, DATASETS)
    root = default_data_dir(data_dir)
    download = not offline_by_default() if download is None else download
    sources = [_source(root, name, f[0]) for f in _FILES[name]]
    if None in sources:
        missing = [f[0] for f, s in zip(_FILES[name], sources, strict=True) if s is None]
        if not download:
            raise DataError(
                f"{name}: {', '.join(missing)} not found under {root / name / 'raw'} "
                "(as <file> or <file>.gz) and downloading is off. " + _fix_hint(root)
            )
        _download(name, root)
        sources = [_source(root, name, f[0]) for f in _FILES[name]]
    signature = _signature(sources)
    cache = default_cache_dir(cache_dir) / f"{name}.pt"
    if cache.is_file():
        try:
            saved = torch.load(cache, weights_only=True)
        except Exception:  # noqa: BLE001 - an unreadable cache is rebuilt, never trusted
            saved = {}
        if saved.get("format") == CACHE_FORMAT and saved.get("signature") == json.dumps(signature):
            return RawData(name, saved["images"], saved["labels"], str(root))
    images, labels = _decode(name, root, sources)
    _write_cache(cache, images, labels, signature)
    return RawData(name, images, labels, str(root))


def _write_cache(cache: Path, images, labels, signature) -> None:
    """Atomic: a killed run leaves the old cache or none, never a half-written one."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".tmp{os.getpid()}")
        blob = {"format": CACHE_FORMAT, "signature": json.dumps(signature)}
        torch.save({**blob, "images": images, "labels": labels}, tmp)
        os.replace(tmp, cache)
    except OSError:
        pass  # a read-only cache only costs the next session a re-decode


# ---------------------------------------------------------------- splits


@dataclass(frozen=True)
class Split:
    """One dataset cut into train/val/test, as uint8 images and int64 labels on the CPU."""

    dataset: str
    split: str  # pooled | official
    split_seed: int
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    mean: float  # of the training pixels scaled to [0, 1]
    std: float

    @property
    def sizes(self) -> dict[str, int]:
        return {"n_train": len(self.y_train), "n_val": len(self.y_val), "n_test": len(self.y_test)}

    def limited(self, train_limit: int | None, eval_limit: int | None, seed: int) -> Split:
        """A stratified subset; mean/std stay those of the full training split."""
        x_tr, y_tr = _subset(self.x_train, self.y_train, train_limit, seed, "train")
        x_va, y_va = _subset(self.x_val, self.y_val, eval_limit, seed, "val")
        x_te, y_te = _subset(self.x_test, self.y_test, eval_limit, seed, "test")
        return Split(
            self.dataset, self.split, self.split_seed, x_tr, y_tr, x_va, y_va, x_te, y_te,
            self.mean, self.std,
        )


def _stratified(labels: np.ndarray, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    return train_test_split(index, train_size=size, stratify=labels, random_state=seed)


def _subset(x, y, limit, seed, part):
    if limit is None or limit == len(y):
        return x, y
    if limit > len(y):
        raise DataError(
            f"A limit of {limit} {part} images is larger than the {part} split ({len(y)} images). "
            f"Use at most {len(y)}, or leave the limit out to use all of it."
        )
    keep, _ = _stratified(y.numpy(), limit, seed)
    keep = torch.from_numpy(np.sort(keep))
    return x[keep], y[keep]


def make_split(raw: RawData, split: str = "pooled", split_seed: int = 0) -> Split:
    """pooled: 70/10/20 of all 70,000 (every write-up); official: 60k (10% of it val) / 10k."""
    check_choice("split", split, SPLITS)
    labels = raw.labels.numpy()
    if split == "pooled":
        n_train = round(len(labels) * POOLED_FRACTIONS[0])
        train, rest = _stratified(labels, n_train, split_seed)
        n_val = round(len(labels) * POOLED_FRACTIONS[1])
        val_pos, test_pos = _stratified(labels[rest], n_val, split_seed)
        val, test = rest[val_pos], rest[test_pos]
    else:
        official = labels[:OFFICIAL_TRAIN]
        train, val = _stratified(official, round(OFFICIAL_TRAIN * 0.9), split_seed)
        test = np.arange(OFFICIAL_TRAIN, len(labels))
    parts = [torch.from_numpy(np.sort(p)) for p in (train, val, test)]
    x_train = raw.images[parts[0]]
    pixels = x_train.to(torch.float64) / 255.0
    return Split(
        raw.name, split, split_seed,
        x_train, raw.labels[parts[0]],
        raw.images[parts[1]], raw.labels[parts[1]],
        raw.images[parts[2]], raw.labels[parts[2]],
        float(pixels.mean()), float(pixels.std()),
    )


# ---------------------------------------------------------------- inputs and loaders


def to_input(x_u8: torch.Tensor, split: Split, image_size: int) -> torch.Tensor:
    """uint8 [B, 28, 28] -> normalised float [B, 1, S, S] on x's device: the per-batch path."""
    x = x_u8.unsqueeze(1).to(torch.float32).div_(255.0)
    x = x.sub_(split.mean).div_(split.std)
    if image_size != x.shape[-1]:
        x = torch.nn.functional.interpolate(
            x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False
        )
    return x


class ClassicDataset(torch.utils.data.Dataset):
    """What torchvision.datasets.MNIST does per sample: a PIL image, then transforms."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        from PIL import Image

        img = Image.fromarray(self.images[index].numpy(), mode="L")
        return self.transform(img), int(self.labels[index])


def classic_loader(split: Split, case) -> torch.utils.data.DataLoader:
    """The write-ups' input pipeline: DataLoader, ToTensor, Normalize (Resize if asked)."""
    from torchvision import transforms

    steps = [transforms.ToTensor(), transforms.Normalize((split.mean,), (split.std,))]
    if case.image_size != 28:
        steps.insert(0, transforms.Resize(case.image_size, antialias=True))
    dataset = ClassicDataset(split.x_train, split.y_train, transforms.Compose(steps))
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=case.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(case.seed),
        num_workers=case.num_workers,
        pin_memory=case.pin_memory and case.device == "cuda",
        persistent_workers=case.num_workers > 0,
    )


class TensorBatches:
    """The whole training split on the device as uint8, batched by shuffled index slices.

    Same batches per epoch as the DataLoader (ceil(n / batch), the last one partial), with
    no per-sample Python: one randperm per epoch, one gather + normalise per batch.
    """

    def __init__(self, split: Split, case, device: torch.device):
        self.split, self.case = split, case
        self.x = split.x_train.to(device)
        self.y = split.y_train.to(device)
        self.generator = torch.Generator().manual_seed(case.seed)

    def __len__(self) -> int:
        return -(-len(self.y) // self.case.batch_size)

    def orders(self, batch_size: int):
        """This epoch's shuffled index slices, on the device."""
        order = torch.randperm(len(self.y), generator=self.generator).to(self.x.device)
        for start in range(0, len(order), batch_size):
            yield order[start : start + batch_size]

    def order_buffer(self) -> torch.Tensor:
        """A full batch of valid indices, for capturing a step before any epoch ran."""
        return torch.arange(self.case.batch_size, device=self.x.device) % len(self.y)

    def gather(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return to_input(self.x[index], self.split, self.case.image_size), self.y[index]

    def __iter__(self):
        for index in self.orders(self.case.batch_size):
            yield self.gather(index)


# ---------------------------------------------------------------- command line


def describe(name: str, data_dir=None, cache_dir=None, download=None) -> str:
    raw = load_raw(name, data_dir, cache_dir, download)
    counts = torch.bincount(raw.labels, minlength=10).tolist()
    return (
        f"{name}: OK, {len(raw.labels)} images {tuple(raw.images.shape[1:])} from "
        f"{Path(raw.source) / name / 'raw'}, MD5s verified; per class {counts}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mnistbench.data",
        description="Verify (and, with --download, fetch) the datasets so later runs work offline.",
    )
    parser.add_argument("--data-dir", help=f"root holding <Name>/raw (default: ${DATA_DIR_ENV} or ./data)")
    parser.add_argument("--cache-dir", help=f"decoded-tensor cache (default: ${CACHE_DIR_ENV} or ~/.cache/mnistbench)")
    parser.add_argument("--download", action="store_true", help="fetch missing files (needs internet)")
    parser.add_argument("--dataset", action="append", choices=DATASETS, help="default: both")
    args = parser.parse_args(argv)
    status = 0
    for name in args.dataset or DATASETS:
        try:
            print(describe(name, args.data_dir, args.cache_dir, args.download))
        except DataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
