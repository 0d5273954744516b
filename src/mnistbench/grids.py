"""The study's grids as data: every preset is an itertools.product, pruned by one predicate.

Nothing else in the suite knows which cases exist. Command-line options reach the grid
as one frozen GridOptions, so `--epochs 5,10` or `--pin-memory both` widens an axis
without any test module changing.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from mnistbench.config import (
    DATASETS,
    PRESETS,
    FlopsCase,
    SVMCase,
    TrainCase,
    check_choice,
)

# Targets for time-to-accuracy on the validation split (MLPerf style: a fixed bar per task).
TARGET_VAL_ACC_PCT = {"MNIST": 99.0, "FashionMNIST": 90.0}

# Training images per second on a 2-core x86 CPU (measured, resnet at 28x28, batch 16,
# tensor loader); the slow marker is an estimate from these, not a timer.
CPU_IMAGES_PER_S = {"resnet18": 180.0, "resnet34": 95.0, "resnet50": 60.0}
SLOW_AFTER_S = 60.0
SPLIT_TRAIN = {"pooled": 49000, "official": 54000}


@dataclass(frozen=True)
class GridOptions:
    """What the command line may change about a preset; None keeps the preset's own value."""

    epochs: tuple[int, ...] | None = None
    pin_memory: tuple[bool, ...] = (True,)
    image_sizes: tuple[int, ...] = (28,)
    train_limit: int | None = None
    seeds: int = 1
    split: str = "pooled"
    path: str = "fast"
    loader: str = "auto"
    amp: str = "auto"
    devices: tuple[str, ...] = ("cpu", "cuda")
    svm_backends: tuple[str, ...] = ("sklearn",)
    deterministic: bool = False


def redundant(case) -> bool:
    """Combinations that would only repeat another case."""
    if isinstance(case, SVMCase):
        return case.kernel == "rbf" and case.degree != 3
    if isinstance(case, TrainCase) and not case.pin_memory:
        # pin_memory only changes a DataLoader feeding a GPU
        return case.device == "cpu" or case.resolved_loader != "dataloader"
    return False


def _train_grid(preset, datasets, models, batches, optimizers, lrs, epochs, opts, devices):
    axes = itertools.product(
        datasets, models, batches, optimizers, lrs, epochs, opts.pin_memory, opts.image_sizes,
        devices, range(opts.seeds),
    )
    for dataset, model, bs, opt, lr, ep, pin, size, device, seed in axes:
        yield TrainCase(
            preset=preset, dataset=dataset, model=model, batch_size=bs, optimizer=opt, lr=lr,
            epochs=ep, pin_memory=pin, image_size=size, device=device, seed=seed,
            split=opts.split, path=opts.path, loader=opts.loader, amp=opts.amp, train_limit=opts.train_limit,
            target_val_acc_pct=TARGET_VAL_ACC_PCT[dataset], deterministic=opts.deterministic,
        )


def q1a(opts: GridOptions):
    yield from _train_grid(
        "q1a", DATASETS, ("resnet18", "resnet50"), (16, 32), ("sgd", "adam"), (1e-3, 1e-4),
        opts.epochs or (10,), opts, opts.devices,
    )


def q2(opts: GridOptions):
    yield from _train_grid(
        "q2", ("FashionMNIST",), ("resnet18", "resnet34", "resnet50"), (16,), ("sgd", "adam"),
        (1e-3,), opts.epochs or (1,), opts, opts.devices,
    )


def q1b(opts: GridOptions):
    # SVC is deterministic: --seeds would only repeat the same fit, so SVM cases run once
    # the backend axis is innermost, sklearn first, so sklearnex cases can cite their baseline
    axes = itertools.product(DATASETS, ("poly", "rbf"), (2, 3, 4), (0.1, 1.0, 10.0), opts.svm_backends)
    for dataset, kernel, degree, c, backend in axes:
        yield SVMCase(
            preset="q1b", dataset=dataset, kernel=kernel, degree=degree, C=c, backend=backend,
            train_limit=opts.train_limit, split=opts.split,
        )


SMOKE_TRAIN_LIMIT = 2000
SMOKE_EVAL_LIMIT = 1000


def smoke(opts: GridOptions):
    """Small but real: every model family, optimizer, dataset and kernel once, in about a minute."""
    seeds = range(opts.seeds)
    common = dict(preset="smoke", epochs=1, path=opts.path, loader=opts.loader, split=opts.split,
                  train_limit=SMOKE_TRAIN_LIMIT, eval_limit=SMOKE_EVAL_LIMIT)
    for dataset, opt, seed in itertools.product(DATASETS, ("sgd", "adam"), seeds):
        yield TrainCase(dataset=dataset, model="resnet18", optimizer=opt, seed=seed, **common)
    for seed in seeds:
        yield TrainCase(**{**common, "train_limit": 1000}, dataset="MNIST", model="resnet50",
                        optimizer="sgd", seed=seed)
    for dataset, kernel in itertools.product(DATASETS, ("poly", "rbf")):
        yield SVMCase(preset="smoke", dataset=dataset, kernel=kernel, C=10.0,
                      degree=2 if kernel == "poly" else 3,
                      train_limit=SMOKE_TRAIN_LIMIT, eval_limit=2 * SMOKE_EVAL_LIMIT, split=opts.split)
    for model in ("resnet18", "resnet34", "resnet50"):
        yield FlopsCase(model=model)


# Throughput: a few timed rounds of a fixed number of steps, classic then fast for each
# configuration (so the fast case can cite its baseline). Steps per round per device.
THROUGHPUT_STEPS = {"cpu": 20, "cuda": 300}
THROUGHPUT_ROUNDS = 3
THROUGHPUT_CONFIGS = {
    "cpu": (("resnet18", 16), ("resnet18", 64), ("resnet50", 16)),
    "cuda": (("resnet18", 16), ("resnet18", 32), ("resnet18", 128), ("resnet50", 16), ("resnet50", 128)),
}


def throughput(opts: GridOptions):
    for device in opts.devices:
        for (model, bs), seed, path in itertools.product(
            THROUGHPUT_CONFIGS[device], range(opts.seeds), ("classic", "fast")
        ):
            yield TrainCase(
                preset="throughput", dataset="MNIST", model=model, batch_size=bs, optimizer="adam",
                lr=1e-3, epochs=THROUGHPUT_ROUNDS, device=device, seed=seed, path=path,
                train_limit=THROUGHPUT_STEPS[device] * bs, eval_limit=500, amp=opts.amp,
            )


_BUILDERS = {"q1a": q1a, "q1b": q1b, "q2": q2, "smoke": smoke, "throughput": throughput}


def build(preset: str, opts: GridOptions = GridOptions()) -> list:
    """Every case of one preset, in a stable order, without duplicates."""
    check_choice("preset", preset, PRESETS)
    seen, cases = set(), []
    for case in _BUILDERS[preset](opts):
        if not redundant(case) and case not in seen:
            seen.add(case)
            cases.append(case)
    return cases


def estimated_cpu_s(case) -> float:
    """Rough seconds on a 2-core CPU: what decides the slow marker."""
    if isinstance(case, FlopsCase):
        return 1.0
    n = case.train_limit or SPLIT_TRAIN[case.split]
    if isinstance(case, SVMCase):
        return 10.0 * (n / 5000) ** 2  # SMO is roughly quadratic in samples
    pixels = (case.image_size / 28) ** 2 * (14 if case.stem == "small" else 1)
    return case.epochs * n * pixels / CPU_IMAGES_PER_S[case.model]


def is_slow(case) -> bool:
    return estimated_cpu_s(case) > SLOW_AFTER_S


def marker_names(case) -> list[str]:
    names = [case.preset, case.device_marker]
    if case.kind == "flops":
        names.append("flops")
    if is_slow(case):
        names.append("slow")
    return names
