"""What the study is made of: the models and datasets it knows, its splits, and the one validator.

Models and datasets are registries: adding one is one `register_model` / `register_dataset`
call (see README, "Extending"), and every grid whose axis lists the registry picks it up.
Every name and number a user can get wrong is checked by `check_choice` / `check_positive`,
so all usage errors read alike: "Invalid split 'random'. Valid values: pooled, official."
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


class ConfigError(ValueError):
    """A case or option names a value the suite does not know; the message lists the valid ones."""


# ---------------------------------------------------------------- registries


@dataclass(frozen=True)
class ModelSpec:
    name: str  # the torchvision builder's name (or any name, with `build`)
    short: str  # in case ids: 'r18'
    title: str  # in tables and plots: 'ResNet-18'
    cpu_images_per_s: float  # training images/s on a 2-core x86 CPU, 28 px, batch 16: the cost model
    build: Callable | None = None  # build(num_classes) -> a ResNet-shaped nn.Module; None: torchvision's


@dataclass(frozen=True)
class IdxFile:
    stem: str  # file name without .gz
    md5: str  # of the uncompressed bytes
    size: int  # uncompressed bytes
    magic: int  # IDX magic: 2051 images, 2049 labels
    count: int  # items


@dataclass(frozen=True)
class DatasetSpec:
    name: str  # torchvision's class and folder name: <data dir>/<name>/raw/
    short: str  # in case ids
    files: tuple[IdxFile, IdxFile, IdxFile, IdxFile]  # train images, train labels, test images, test labels
    target_val_acc_pct: float  # time-to-accuracy target on the validation split (MLPerf style)

    @property
    def official_train(self) -> int:
        return self.files[0].count

    @property
    def total(self) -> int:
        return self.files[0].count + self.files[2].count


MODELS: dict[str, ModelSpec] = {}
DATASETS: dict[str, DatasetSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    MODELS[spec.name] = spec
    return spec


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    DATASETS[spec.name] = spec
    return spec


for _name, _short, _title, _rate in (("resnet18", "r18", "ResNet-18", 180.0),
                                     ("resnet34", "r34", "ResNet-34", 95.0),
                                     ("resnet50", "r50", "ResNet-50", 60.0)):
    register_model(ModelSpec(_name, _short, _title, _rate))


def _idx(train_x: str, train_y: str, test_x: str, test_y: str):
    return (IdxFile("train-images-idx3-ubyte", train_x, 47040016, 2051, 60000),
            IdxFile("train-labels-idx1-ubyte", train_y, 60008, 2049, 60000),
            IdxFile("t10k-images-idx3-ubyte", test_x, 7840016, 2051, 10000),
            IdxFile("t10k-labels-idx1-ubyte", test_y, 10008, 2049, 10000))


register_dataset(DatasetSpec("MNIST", "mnist", _idx(
    "6bbc9ace898e44ae57da46a324031adb", "a25bea736e30d166cdddb491f175f624",
    "2646ac647ad5339dbf082846283269ea", "27ae3e4e09519cfbb04c329615203637"), 99.0))
register_dataset(DatasetSpec("FashionMNIST", "fashion", _idx(
    "f4a8712d7a061bf5bd6d2ca38dc4d50a", "9018921c3c673c538a1fc5bad174d6f9",
    "8181f5470baa50b63fa0f6fddb340f0a", "15d484375f8d13e6eb1aabb0c3f46965"), 90.0))


# ---------------------------------------------------------------- splits

SPLITS = ("pooled", "official")
POOLED_FRACTIONS = (0.7, 0.1, 0.2)  # train / val / test of all images, every write-up's split
OFFICIAL_VAL_FRACTION = 0.1  # of the official train file, held out as val


def split_sizes(dataset: str, split: str) -> tuple[int, int, int]:
    """(train, val, test) images of a split: the one definition data, grids and floors use."""
    spec = DATASETS[dataset]
    if split == "pooled":
        train, val = (round(spec.total * f) for f in POOLED_FRACTIONS[:2])
        return train, val, spec.total - train - val
    train = round(spec.official_train * (1 - OFFICIAL_VAL_FRACTION))
    return train, spec.official_train - train, spec.total - spec.official_train


# ---------------------------------------------------------------- the one validator


def check_choice(field: str, value, choices) -> None:
    if value not in choices:
        raise ConfigError(f"Invalid {field} {value!r}. Valid values: {', '.join(str(c) for c in choices)}.")


def check_positive(field: str, value, *, integer: bool = False, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not math.isfinite(value) or value <= 0:
        kind = "a whole number" if integer else "a number"
        raise ConfigError(f"Invalid {field} {value!r}: must be {kind} greater than 0.")


