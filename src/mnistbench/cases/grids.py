"""The study's grids as data: every preset is named axes, multiplied out, pruned by one predicate.

Nothing else in the suite knows which cases exist. A preset reads as its axes
(`batch_size=(16, 32), optimizer=("sgd", "adam")`); command-line options reach the grid
as one frozen GridOptions, so `--mb-epochs 5,10`, `--mb-pin-memory both` or `--mb-axis
lr=1e-2,1e-3` widen an axis without any test module changing.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from mnistbench.cases.case import Case, FlopsCase, SVMCase, TrainCase
from mnistbench.cases.registry import DATASETS, MODELS, check_choice


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
    stop_at_target: bool = False  # every training case but throughput's ends when it reaches its target
    gpu_memory_bytes: int | None = None  # the GPU's total memory, which sizes the out-of-memory case
    axes: tuple[tuple[str, tuple], ...] = field(default=())  # --axis NAME=V1,V2: replaces or adds an axis


def product(cls: type[Case], axes: dict[str, tuple], opts: GridOptions | None = None, **fixed) -> Iterator[Case]:
    """Every combination of named axes as cases of `cls`; `--axis` overrides apply to fields `cls` has."""
    if opts is not None:
        axes = {**axes, **{k: v for k, v in opts.axes if k in cls.field_names()}}
        fixed = {k: v for k, v in fixed.items() if k not in axes}
    names = list(axes)
    for values in itertools.product(*axes.values()):
        yield cls(**fixed, **dict(zip(names, values, strict=True)))


def redundant(case: Case) -> bool:
    """Combinations that would only repeat another case."""
    if isinstance(case, SVMCase):
        # SVC is deterministic: on the whole split another seed would only repeat the same fit
        return (case.kernel == "rbf" and case.degree != 3) or (case.train_limit is None and case.seed != 0)
    if isinstance(case, TrainCase) and not case.pin_memory:
        # pin_memory only changes a DataLoader feeding a GPU
        return case.device == "cpu" or case.resolved_loader != "dataloader"
    return False


def _with_target(case: Case, opts: GridOptions) -> Case:
    """The study's training cases carry their dataset's time-to-accuracy target, and so does every
    case told to stop at it. Throughput cases time a few steps: no target means anything there."""
    if not isinstance(case, TrainCase) or case.preset == "throughput":
        return case
    stop = opts.stop_at_target or case.stop_at_target
    if case.target_val_acc_pct is None and (stop or case.preset in ("q1a", "q2")):
        case = case.replace(target_val_acc_pct=DATASETS[case.dataset].target_val_acc_pct)
    return case.replace(stop_at_target=stop)


def _run_axes(opts: GridOptions, **axes) -> dict[str, tuple]:
    """The axes every study training preset shares with the command line."""
    return {**axes, "pin_memory": opts.pin_memory, "image_size": opts.image_sizes, "device": opts.devices,
            "seed": tuple(range(opts.seeds))}


def _run_fixed(opts: GridOptions) -> dict:
    return dict(split=opts.split, path=opts.path, loader=opts.loader, amp=opts.amp,
                train_limit=opts.train_limit, deterministic=opts.deterministic)


def q1a(opts: GridOptions) -> Iterator[Case]:
    axes = _run_axes(opts, dataset=tuple(DATASETS), model=("resnet18", "resnet50"), batch_size=(16, 32),
                     optimizer=("sgd", "adam"), lr=(1e-3, 1e-4), epochs=opts.epochs or (10,))
    yield from product(TrainCase, axes, opts, preset="q1a", **_run_fixed(opts))


def q2(opts: GridOptions) -> Iterator[Case]:
    axes = _run_axes(opts, dataset=("FashionMNIST",), model=("resnet18", "resnet34", "resnet50"),
                     batch_size=(16,), optimizer=("sgd", "adam"), lr=(1e-3,), epochs=opts.epochs or (1,))
    yield from product(TrainCase, axes, opts, preset="q2", **_run_fixed(opts))


def q1b(opts: GridOptions) -> Iterator[Case]:
    # On a subset each seed draws other images (SVMCase.draw_seed), whether the subset comes from
    # --mb-train-limit or --mb-axis train_limit=N; on the whole split `redundant` keeps seed 0 only. The
    # backend axis is innermost, sklearn first, so sklearnex cases can cite their baseline
    axes = dict(dataset=tuple(DATASETS), kernel=("poly", "rbf"), degree=(2, 3, 4), C=(0.1, 1.0, 10.0),
                seed=tuple(range(opts.seeds)), backend=opts.svm_backends)
    yield from product(SVMCase, axes, opts, preset="q1b", train_limit=opts.train_limit, split=opts.split)


SMOKE_TRAIN_LIMIT = 500  # images per smoke ResNet-18 case: 2.5 s of training on a 2-core Xeon, ~5 s on an EPYC
SMOKE_R50_TRAIN_LIMIT = 1000  # the smoke ResNet-50 case (a measurement, marked slow): fewer learn next to nothing
SMOKE_SVM_LIMIT = 2000  # images per smoke SVM fit: under a second
SMOKE_EVAL_LIMIT = 1000  # val and test images each


def smoke(opts: GridOptions) -> Iterator[Case]:
    """Small but real: every model family, optimizer, dataset and kernel once, in about a minute."""
    run = dict(preset="smoke", epochs=1, path=opts.path, loader=opts.loader, split=opts.split,
               eval_limit=SMOKE_EVAL_LIMIT)
    seeds, devices = tuple(range(opts.seeds)), opts.devices
    yield from product(TrainCase, dict(dataset=tuple(DATASETS), optimizer=("sgd", "adam"), seed=seeds,
                                       device=devices), opts, model="resnet18", train_limit=SMOKE_TRAIN_LIMIT, **run)
    yield from product(TrainCase, dict(seed=seeds, device=devices), opts, dataset="MNIST", model="resnet50",
                       optimizer="sgd", train_limit=SMOKE_R50_TRAIN_LIMIT, **run)
    yield from gpu_smoke(opts)
    for dataset, (kernel, degree) in itertools.product(DATASETS, (("poly", 2), ("rbf", 3))):
        yield from product(SVMCase, dict(dataset=(dataset,)), opts, preset="smoke", kernel=kernel, C=10.0,
                           degree=degree, train_limit=SMOKE_SVM_LIMIT, eval_limit=2 * SMOKE_EVAL_LIMIT,
                           split=opts.split)
    yield from product(FlopsCase, dict(model=tuple(MODELS)))


def gpu_smoke(opts: GridOptions) -> Iterator[Case]:
    """GPU-only smoke cases: every GPU code path once, a few minutes on one modern GPU.

    A q1a case shortened to 2 epochs on the full split (the graph with a partial batch,
    bf16), classic fp16 + GradScaler, fast fp16, deterministic, and a deliberately huge
    case that must run out of memory (and be recorded as such).
    """
    if "cuda" not in opts.devices:
        return
    base = TrainCase(preset="smoke", dataset="MNIST", model="resnet18", optimizer="adam", device="cuda",
                     split=opts.split, eval_limit=SMOKE_EVAL_LIMIT)
    yield base.replace(epochs=2, target_val_acc_pct=DATASETS["MNIST"].target_val_acc_pct)
    yield base.replace(path="classic", train_limit=SMOKE_TRAIN_LIMIT)
    yield base.replace(amp="fp16", train_limit=SMOKE_TRAIN_LIMIT)
    yield base.replace(deterministic=True, train_limit=SMOKE_TRAIN_LIMIT)
    total = opts.gpu_memory_bytes or LARGEST_GPU_BYTES
    yield base.replace(model="resnet50", batch_size=OOM_BATCH, image_size=oom_image_size(total), train_limit=2048,
                       expect="oom")


OOM_BATCH = 1024
LARGEST_GPU_BYTES = 141 * 2**30  # an H200's memory: the OOM case's size where no GPU is visible to measure


def oom_image_size(total_bytes: int, batch: int = OOM_BATCH) -> int:
    """The smallest input size (a multiple of 64) at which one resized batch alone, float32, needs more
    than the GPU's total memory: the case's first large allocation fails at once, before any kernel
    touches a tensor of 2^31 elements or more (where 32-bit indexing bugs kill the CUDA context)."""
    side = math.isqrt(total_bytes // (4 * batch)) + 1
    return -(-side // 64) * 64


# Throughput: a few timed rounds of a fixed number of steps, classic then fast for each
# configuration (so the fast case can cite its baseline). Steps per round per device.
THROUGHPUT_STEPS = {"cpu": 20, "cuda": 300}
THROUGHPUT_ROUNDS = 3
THROUGHPUT_CONFIGS = {
    "cpu": (("resnet18", 16), ("resnet18", 64), ("resnet50", 16)),
    "cuda": (("resnet18", 16), ("resnet18", 32), ("resnet18", 128), ("resnet50", 16), ("resnet50", 128)),
}


def throughput(opts: GridOptions) -> Iterator[Case]:
    for device in opts.devices:
        for (model, bs), seed, path in itertools.product(
            THROUGHPUT_CONFIGS[device], range(opts.seeds), ("classic", "fast")
        ):
            yield TrainCase(
                preset="throughput", dataset="MNIST", model=model, batch_size=bs, optimizer="adam",
                lr=1e-3, epochs=THROUGHPUT_ROUNDS, device=device, seed=seed, path=path,
                train_limit=THROUGHPUT_STEPS[device] * bs, eval_limit=500, amp=opts.amp,
            )


PRESETS: dict[str, Callable[[GridOptions], Iterator[Case]]] = {
    "q1a": q1a, "q1b": q1b, "q2": q2, "smoke": smoke, "throughput": throughput,
}


def build(preset: str, opts: GridOptions = GridOptions()) -> list[Case]:
    """Every case of one preset, in a stable order, without duplicates."""
    check_choice("preset", preset, PRESETS)
    seen, cases = set(), []
    for case in (_with_target(case, opts) for case in PRESETS[preset](opts)):
        if not redundant(case) and case not in seen:
            seen.add(case)
            cases.append(case)
    return cases


def build_all(opts: GridOptions = GridOptions()) -> list[Case]:
    return [case for preset in PRESETS for case in build(preset, opts)]


def about(seconds: float) -> str:
    """A rough duration for people: the estimate before a run, the time left in a case."""
    if seconds < 60:
        return "under a minute"
    if seconds < 5400:
        return f"about {seconds / 60:.0f} min"
    return f"about {seconds / 3600:.1f} h"


def assign_shards(costs: dict[str, float], shards: int) -> dict[str, int]:
    """Each key onto one of `shards`, longest first onto the least-loaded shard.

    Deterministic on every machine: keys are sorted before the (stable) sort by cost, and
    ties between equally loaded shards go to the lowest index.
    """
    loads = [0.0] * shards
    assigned = {}
    for key in sorted(sorted(costs), key=lambda k: -costs[k]):
        target = min(range(shards), key=lambda i: (loads[i], i))
        assigned[key] = target
        loads[target] += costs[key]
    return assigned
