"""Accuracy floors: one table keyed by what accuracy depends on, each row with its source.

A floor fails a run that learned much less than a measured run of the same
configuration did. Each row says which run set it and the margin taken under it;
the most specific matching row wins. A configuration no one has measured gets the
last row, chance plus a margin: it still fails a model that learned nothing (about
10%), and the record's `floor_source` says it is unmeasured so the report can show it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnistbench.cases.grids import SMOKE_R50_TRAIN_LIMIT, SMOKE_SVM_LIMIT, SMOKE_TRAIN_LIMIT
from mnistbench.cases.registry import DATASETS, SPLITS, split_sizes


@dataclass(frozen=True)
class Floor:
    pct: float
    source: str


@dataclass(frozen=True)
class Row:
    """A floor for the runs whose fields match `where`: case fields plus `n_train`, the images
    actually used. A value matches itself; a (lo, hi) tuple matches that inclusive range; a
    field not named matches anything. The row naming the most fields wins."""

    kind: str  # train | svm
    where: dict
    floor: Floor

    def matches(self, kind: str, fields: dict) -> bool:
        return kind == self.kind and all(_matches(want, fields.get(name)) for name, want in self.where.items())

    @property
    def specificity(self) -> int:
        return len(self.where)


def _matches(want, value) -> bool:
    if isinstance(want, tuple):
        return value is not None and want[0] <= value <= want[1]
    return want == value


def _full_range() -> tuple[int, int]:
    """Training images of a whole split, over every registered dataset and split."""
    sizes = [split_sizes(d, s)[0] for d in DATASETS for s in SPLITS]
    return min(sizes), max(sizes)


FULL = _full_range()
SMOKE = (SMOKE_TRAIN_LIMIT, SMOKE_TRAIN_LIMIT)
SMOKE_R50 = (SMOKE_R50_TRAIN_LIMIT, SMOKE_R50_TRAIN_LIMIT)
N1000 = (1000, 1000)  # the smoke ResNet-18 cases' size from 2026-11-29 to 2026-12-01
SMOKE_SVM = (SMOKE_SVM_LIMIT, SMOKE_SVM_LIMIT)
RETIRED_SMOKE = (2000, 2000)  # the smoke training cases' size until 2026-11-29: no grid builds it now
STANDARD_INPUT = dict(stem="imagenet", image_size=28)  # every measured training row ran at this input


def train(floor: Floor, **where) -> Row:
    return Row("train", {**STANDARD_INPUT, **where}, floor)


def svm(floor: Floor, **where) -> Row:
    return Row("svm", where, floor)


TABLE: tuple[Row, ...] = (
    # --- LIVE: the smoke preset as built today (grids.SMOKE_TRAIN_LIMIT, SMOKE_SVM_LIMIT)
    #     measured in this repository: 3 seeds of each smoke case on each path on a 2-core CPU
    #     (reports/runs/smoke500-cpu-{fast,classic}-3seeds.jsonl, Xeon, 2026-12-01);
    #     floor = lowest run minus the margin
    train(dataset="MNIST", model="resnet18", optimizer="sgd", lr=1e-3, epochs=(1, 1), n_train=SMOKE,
        floor=Floor(58.0, "smoke, 3 seeds x 2 paths on CPU: "
                    "fast 65.1-71.8%, classic 66.6-72.3%; margin >= 7.1 pts")),
    train(dataset="MNIST", model="resnet18", optimizer="adam", lr=1e-3, epochs=(1, 1), n_train=SMOKE,
        floor=Floor(36.0, "smoke, 3 seeds x 2 paths on CPU: "
                    "fast 43.1-62.9%, classic 50.7-65.1%; margin >= 7.1 pts")),
    train(dataset="FashionMNIST", model="resnet18", optimizer="sgd", lr=1e-3, epochs=(1, 1), n_train=SMOKE,
        floor=Floor(47.0, "smoke, 3 seeds x 2 paths on CPU: "
                    "fast 53.8-63.6%, classic 59.6-62.7%; margin >= 6.8 pts")),
    train(dataset="FashionMNIST", model="resnet18", optimizer="adam", lr=1e-3, epochs=(1, 1), n_train=SMOKE,
        floor=Floor(40.0, "smoke, 3 seeds x 2 paths on CPU: "
                    "fast 47.2-55.5%, classic 49.6-59.1%; margin >= 7.2 pts")),
    # --- RETIRED: the ResNet-18 smoke cases at 1,000 images, their size from 2026-11-29 to 2026-12-01
    #     (reports/runs/smoke1000-cpu-{fast,classic}-3seeds.jsonl): kept for `--mb-axis train_limit=1000`
    train(dataset="MNIST", model="resnet18", optimizer="sgd", lr=1e-3, epochs=(1, 1), n_train=N1000,
        floor=Floor(76.0, "smoke, 3 seeds x 2 paths on CPU: "
                    "fast 85.7-87.7%, classic 82.2-87.2%; margin >= 6.2 pts")),
    train(dataset="MNIST", model="resnet18", optimizer="adam", lr=1e-3, epochs=(1, 1), n_train=N1000,
        floor=Floor(62.0, "smoke, 3 seeds x 2 paths on CPU: "
                    "fast 69.4-85.2%, classic 78.8-86.6%; margin >= 7.4 pts")),
    train(dataset="FashionMNIST", model="resnet18", optimizer="sgd", lr=1e-3, epochs=(1, 1), n_train=N1000,
        floor=Floor(61.0, "smoke, 3 seeds x 2 paths on CPU: "
                    "fast 70.6-72.4%, classic 67.1-71.2%; margin >= 6.1 pts")),
    train(dataset="FashionMNIST", model="resnet18", optimizer="adam", lr=1e-3, epochs=(1, 1), n_train=N1000,
        floor=Floor(53.0, "smoke, 3 seeds x 2 paths on CPU: "
                    "fast 59.5-69.1%, classic 61.5-72.5%; margin >= 6.5 pts")),
    # --- LIVE: the smoke ResNet-50 case (grids.SMOKE_R50_TRAIN_LIMIT)
    train(dataset="MNIST", model="resnet50", optimizer="sgd", lr=1e-3, epochs=(1, 1), n_train=SMOKE_R50,
        floor=Floor(25.0, "smoke, 3 seeds x 2 paths on CPU (smoke-cpu-*-3seeds.jsonl): "
                    "fast 38.9-44.3%, classic 32.2-39.6%; margin >= 7 pts, 2.5x chance")),
    # --- RETIRED: the ResNet-18 smoke cases at 2,000 images, their size until 2026-11-29
    #     (reports/runs/smoke-cpu-{fast,classic}-3seeds.jsonl). No grid builds this size any more;
    #     the rows stay for `--mb-axis train_limit=2000` and for re-checking the records of that size.
    train(dataset="MNIST", model="resnet18", optimizer="sgd", lr=1e-3, epochs=(1, 1), n_train=RETIRED_SMOKE,
        floor=Floor(85.0, "smoke, 3 seeds x 2 paths on CPU: "
                    "fast 91.2-91.8%, classic 91.7-92.5%; margin >= 6 pts")),
    train(dataset="MNIST", model="resnet18", optimizer="adam", lr=1e-3, epochs=(1, 1), n_train=RETIRED_SMOKE,
        floor=Floor(72.0, "smoke, 3 seeds x 2 paths on CPU: "
                    "fast 86.2-88.6%, classic 79.0-86.7%; margin >= 7 pts")),
    train(dataset="FashionMNIST", model="resnet18", optimizer="sgd", lr=1e-3, epochs=(1, 1), n_train=RETIRED_SMOKE,
        floor=Floor(63.0, "smoke, 3 seeds x 2 paths on CPU: "
                    "fast 72.7-73.7%, classic 68.9-72.3%; margin >= 5.9 pts")),
    train(dataset="FashionMNIST", model="resnet18", optimizer="adam", lr=1e-3, epochs=(1, 1), n_train=RETIRED_SMOKE,
        floor=Floor(60.0, "smoke, 3 seeds x 2 paths on CPU: "
                    "fast 66.4-75.2%, classic 72.8-74.9%; margin >= 6.4 pts")),
    # SVC is deterministic: the margin covers library and platform differences only
    svm(dataset="MNIST", kernel="poly", degree=2, C=10.0, n_train=SMOKE_SVM,
        floor=Floor(89.0, "smoke on CPU: 92.65%; margin 3.65 pts")),
    svm(dataset="MNIST", kernel="rbf", C=10.0, n_train=SMOKE_SVM,
        floor=Floor(90.0, "smoke on CPU: 93.75%; margin 3.75 pts")),
    svm(dataset="FashionMNIST", kernel="poly", degree=2, C=10.0, n_train=SMOKE_SVM,
        floor=Floor(78.0, "smoke on CPU: 81.4%; margin 3.4 pts")),
    svm(dataset="FashionMNIST", kernel="rbf", C=10.0, n_train=SMOKE_SVM,
        floor=Floor(80.0, "smoke on CPU: 83.7%; margin 3.7 pts")),
    # --- full split (49,000 images), one run each, reports/runs/q2-cpu-r18-* and q1b-rbf-C10-full
    train(dataset="FashionMNIST", model="resnet18", optimizer="adam", lr=1e-3, epochs=(1, 1), n_train=FULL,
        floor=Floor(80.0, "full split, 1 epoch on CPU: fast 86.24%, classic 86.61%; margin 6.2 pts")),
    train(dataset="FashionMNIST", model="resnet18", optimizer="sgd", lr=1e-3, epochs=(1, 1), n_train=FULL,
        floor=Floor(80.0, "full split, 1 epoch on CPU: fast 86.71%; margin 6.7 pts")),
    svm(dataset="MNIST", kernel="rbf", C=10.0, n_train=FULL,
        floor=Floor(96.0, "full split on CPU: sklearn 98.39%, sklearnex 98.39% (98.30% on float32); margin 2.3 pts")),
    svm(dataset="FashionMNIST", kernel="rbf", C=10.0, n_train=FULL,
        floor=Floor(87.0, "full split on CPU: sklearn 90.15%, sklearnex 89.11%; margin 2.1 pts")),
    # --- from the write-ups' full-data grids (their lowest cell for the setting, minus a margin)
    train(dataset="MNIST", epochs=(2, 100), n_train=FULL,
        floor=Floor(97.0, "write-ups' 2-10 epoch grids: lowest 97.9% (seed 002); margin 0.9 pts")),
    train(dataset="FashionMNIST", epochs=(2, 100), n_train=FULL,
        floor=Floor(85.0, "write-ups' 2-10 epoch grids: lowest 86.0% (seed 001); margin 1 pt")),
    train(dataset="MNIST", epochs=(1, 1), n_train=FULL,
        floor=Floor(90.0, "no write-up ran MNIST for 1 epoch; 1-epoch Fashion runs reach 76-89%")),
    train(dataset="FashionMNIST", epochs=(1, 1), n_train=FULL,
        floor=Floor(70.0, "write-ups' 1-epoch Q2 runs: lowest 76.5% (seed 004); margin 6.5 pts")),
    svm(dataset="MNIST", kernel="rbf", n_train=FULL,
        floor=Floor(88.0, "seed 000 full-data rbf: 91.0-96.1% by C; margin 3 pts under C=0.1")),
    svm(dataset="FashionMNIST", kernel="rbf", n_train=FULL,
        floor=Floor(79.0, "seed 000 full-data rbf: 81.8-87.9% by C; margin 2.8 pts under C=0.1")),
    # --- nothing measured: chance (10%) plus a margin
        Row("train", {}, Floor(20.0, "unmeasured configuration: chance + 10 pts")),
        Row("svm", {}, Floor(20.0, "unmeasured configuration: chance + 10 pts")),
)


def floor_for(case, n_train: int) -> Floor:
    """The floor of the most specific row that matches; n_train is the images actually used."""
    fields = {**{name: getattr(case, name) for name in case.field_names()}, "n_train": n_train}
    rows = [r for r in TABLE if r.matches(case.kind, fields)]
    return max(rows, key=lambda r: r.specificity).floor
