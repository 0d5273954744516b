"""MNIST and Fashion-MNIST: find, verify, decode once, split, and feed the two loaders.

The raw files live under `<data_dir>/<Name>/raw/` exactly as torchvision lays them out,
gzipped or not, so a root torchvision downloaded into works as is, and so does a
read-only copy on a machine with no internet. The uncompressed bytes are checked
against the canonical MD5s once; the decoded uint8 tensors then go to a cache whose
key is the source files' size and mtime, so later sessions skip both the gunzip and
the hash. Nothing is ever written into the data directory except by a download.

Usage: mnistbench data --data-dir DIR [--download]
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

from mnistbench.cases.registry import DATASETS, SPLITS, check_choice, split_sizes

DATA_DIR_ENV = "MNISTBENCH_DATA_DIR"
CACHE_DIR_ENV = "MNISTBENCH_CACHE_DIR"
OFFLINE_ENV = "MNISTBENCH_OFFLINE"
CACHE_FORMAT = 1

LABELS_MAGIC = 2049
DOWNLOAD_TIMEOUT_S = 30


class DataError(RuntimeError):
    """The data cannot be used; the message names the file and says what to do."""


def _fix_hint(root: Path) -> str:
    return (
        f"To fix: run `mnistbench data --data-dir {root} --download` on a machine "
        "with internet (or delete the bad file so it is fetched again), or point the data dir "
        f"(pytest --mb-data-dir, or ${DATA_DIR_ENV}) at a folder holding <Name>/raw/*-ubyte[.gz] files."
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
    for path, spec in zip(sources, DATASETS[name].files, strict=True):
        stem, md5, size, magic, count = spec.stem, spec.md5, spec.size, spec.magic, spec.count
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
    sources = [_source(root, name, f.stem) for f in DATASETS[name].files]
    if None in sources:
        missing = [f.stem for f, s in zip(DATASETS[name].files, sources, strict=True) if s is None]
        if not download:
            raise DataError(
                f"{name}: {', '.join(missing)} not found under {root / name / 'raw'} "
                "(as <file> or <file>.gz) and downloading is off. " + _fix_hint(root)
            )
        _download(name, root)
        sources = [_source(root, name, f.stem) for f in DATASETS[name].files]
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

    def limited(self, train_limit: int | None, eval_limit: int | None, seed: int,
                train_seed: int | None = None) -> Split:
        """A stratified subset; mean/std stay those of the full training split.

        `train_seed` draws the training images apart from the evaluation images (default: `seed`),
        so a deterministic learner's repeats can measure the draw on one fixed test set."""
        train_seed = seed if train_seed is None else train_seed
        x_tr, y_tr = _subset(self.x_train, self.y_train, train_limit, train_seed, "train")
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
    n_train, n_val, _ = split_sizes(raw.name, split)
    if split == "pooled":
        train, rest = _stratified(labels, n_train, split_seed)
        val_pos, test_pos = _stratified(labels[rest], n_val, split_seed)
        val, test = rest[val_pos], rest[test_pos]
    else:
        official = DATASETS[raw.name].official_train
        train, val = _stratified(labels[:official], n_train, split_seed)
        test = np.arange(official, len(labels))
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


_MADE: dict[tuple, Split] = {}  # splits made in this process, by their source files' signature and split


class SplitCache:
    """Decoded datasets and their splits, built on first use and kept for a session.

    A dataset that failed to load fails again at once with the same message, so a grid
    over a broken dataset costs one decode attempt, not one per case. A split made from
    the same, unchanged source files earlier in the process is reused (the suite's own
    tests run many pytest sessions in one process); a changed file makes a new one.
    """

    def __init__(self, data_dir=None, cache_dir=None, download: bool | None = None):
        self.data_dir, self.cache_dir, self.download = data_dir, cache_dir, download
        self._raw: dict[str, RawData] = {}
        self._splits: dict[tuple, Split] = {}
        self._errors: dict[str, str] = {}

    def get(self, case) -> Split:
        """The split a case trains on (its dataset, split and split seed), limits not applied."""
        if case.dataset in self._errors:
            raise DataError(self._errors[case.dataset])
        key = (case.dataset, case.split, case.split_seed)
        made = _MADE.get(self._made_key(case))
        if key not in self._splits and made is not None:
            self._splits[key] = made
        if key not in self._splits:
            if case.dataset not in self._raw:
                try:
                    self._raw[case.dataset] = load_raw(case.dataset, self.data_dir, self.cache_dir, self.download)
                except DataError as exc:
                    self._errors[case.dataset] = str(exc)
                    raise
            self._splits[key] = make_split(self._raw[case.dataset], case.split, case.split_seed)
            if (made_key := self._made_key(case)) is not None:
                _MADE[made_key] = self._splits[key]
        return self._splits[key]

    def _made_key(self, case) -> tuple | None:
        """The source files' paths, sizes and mtimes with the split; None while a file is missing."""
        root = default_data_dir(self.data_dir)
        sources = [_source(root, case.dataset, f.stem) for f in DATASETS[case.dataset].files]
        if None in sources:
            return None
        return json.dumps(_signature(sources)), case.split, case.split_seed


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
        prog="mnistbench data",
        description="Verify (and, with --download, fetch) the datasets so later runs work offline.",
    )
    parser.add_argument("--data-dir", help=f"root holding <Name>/raw (default: ${DATA_DIR_ENV} or ./data)")
    parser.add_argument("--cache-dir", help=f"decoded-tensor cache (default: ${CACHE_DIR_ENV} or ~/.cache/mnistbench)")
    parser.add_argument("--download", action="store_true",
                        help="fetch missing files (needs internet) (default: verify only)")
    parser.add_argument("--dataset", action="append", choices=list(DATASETS),
                        help="a dataset to check; repeatable (default: every registered one)")
    args = parser.parse_args(argv)
    status = 0
    for name in args.dataset or DATASETS:
        try:
            print(describe(name, args.data_dir, args.cache_dir, args.download))
        except DataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
    return status
