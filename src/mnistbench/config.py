"""What one benchmark case is: frozen dataclasses passed whole from the grid to the result.

Every name and number a user can get wrong is checked here, at construction time, so
a typo fails before any data loads (torchvision's references fail the same way on an
unknown optimizer). A case knows its own pytest id and marks; nothing else builds them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

DATASETS = ("MNIST", "FashionMNIST")
MODELS = ("resnet18", "resnet34", "resnet50")
STEMS = ("imagenet", "small")
OPTIMIZERS = ("sgd", "adam")
AMPS = ("auto", "off", "fp16", "bf16")
DEVICES = ("cpu", "cuda")
SPLITS = ("pooled", "official")
LOADERS = ("auto", "dataloader", "tensor")
PATHS = ("classic", "fast")
KERNELS = ("poly", "rbf")
SVM_BACKENDS = ("sklearn", "sklearnex")
PRESETS = ("q1a", "q1b", "q2", "smoke", "throughput")

SHORT_DATASET = {"MNIST": "mnist", "FashionMNIST": "fashion"}

# Short names in case ids, so an id stays readable in pytest's output.
SHORT_MODEL = {"resnet18": "r18", "resnet34": "r34", "resnet50": "r50"}


class ConfigError(ValueError):
    """A case or option names a value the suite does not know; the message lists the valid ones."""


def check_choice(field: str, value, choices) -> None:
    if value not in choices:
        valid = ", ".join(str(c) for c in choices)
        raise ConfigError(f"Invalid {field} {value!r}. Valid values: {valid}.")


def check_positive(field: str, value, *, integer: bool = False, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not math.isfinite(value) or value <= 0:
        kind = "a whole number" if integer else "a number"
        raise ConfigError(f"Invalid {field} {value!r}: must be {kind} greater than 0.")


def lr_tag(lr: float) -> str:
    """1e-3 -> '1e-3': ids stay short and sort the same on every platform."""
    mantissa, exponent = f"{lr:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


@dataclass(frozen=True)
class TrainCase:
    """One ResNet training run, as the study's Q1(a)/Q2 tables describe one row."""

    preset: str = "smoke"  # the study question it belongs to; also its pytest marker
    dataset: str = "MNIST"  # MNIST | FashionMNIST
    model: str = "resnet18"  # torchvision resnet18 | resnet34 | resnet50, random init
    stem: str = "imagenet"  # imagenet: 7x7/2 conv + max-pool (the write-ups); small: 3x3/1, no pool
    image_size: int = 28  # pixels per side fed to the model; batches are resized on the device
    batch_size: int = 16  # images per optimizer step
    optimizer: str = "sgd"  # sgd (momentum 0.9) | adam
    lr: float = 1e-3  # learning rate, constant
    epochs: int = 1  # passes over the training split
    pin_memory: bool = True  # DataLoader pin_memory (only the dataloader loader uses it)
    num_workers: int = 0  # DataLoader worker processes
    amp: str = "auto"  # auto: the path's choice (see train.plan_for) | off | fp16 | bf16
    device: str = "cpu"  # cpu | cuda
    seed: int = 0  # model init, shuffling and augmentation
    split: str = "pooled"  # pooled: 70/10/20 of all 70,000 | official: 60k(-10% val)/10k
    split_seed: int = 0  # seed of the split itself, kept apart so seeds vary only training
    path: str = "fast"  # fast: everything that wins on the device | classic: the write-ups' loop
    loader: str = "auto"  # auto: the path's | dataloader: DataLoader, per-sample transforms | tensor
    train_limit: int | None = None  # use only this many training images (stratified), None = all
    eval_limit: int | None = None  # use only this many val and test images each, None = all
    target_val_acc_pct: float | None = None  # time-to-accuracy target on the validation split
    deterministic: bool = False  # torch.use_deterministic_algorithms: bitwise repeatable on a GPU too, slower

    def __post_init__(self) -> None:
        check_choice("preset", self.preset, PRESETS)
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("model", self.model, MODELS)
        check_choice("stem", self.stem, STEMS)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("amp", self.amp, AMPS)
        check_choice("device", self.device, DEVICES)
        check_choice("split", self.split, SPLITS)
        check_choice("path", self.path, PATHS)
        check_choice("loader", self.loader, LOADERS)
        for name in ("image_size", "batch_size", "epochs"):
            check_positive(name, getattr(self, name), integer=True)
        check_positive("lr", self.lr)
        check_positive("train_limit", self.train_limit, integer=True, allow_none=True)
        check_positive("eval_limit", self.eval_limit, integer=True, allow_none=True)
        if self.image_size < 28 and self.stem == "imagenet":
            raise ConfigError("image_size below 28 leaves nothing for the imagenet stem to pool.")
        if self.num_workers < 0:
            raise ConfigError(f"Invalid num_workers {self.num_workers}: must be 0 or more.")

    @property
    def kind(self) -> str:
        return "train"

    @property
    def resolved_loader(self) -> str:
        if self.loader != "auto":
            return self.loader
        return "dataloader" if self.path == "classic" else "tensor"

    @property
    def id(self) -> str:
        parts = [
            self.preset,
            SHORT_DATASET[self.dataset],
            SHORT_MODEL[self.model],
            f"bs{self.batch_size}",
            self.optimizer,
            f"lr{lr_tag(self.lr)}",
            f"ep{self.epochs}",
        ]
        if self.stem != "imagenet":
            parts.append(self.stem)
        if self.image_size != 28:
            parts.append(f"px{self.image_size}")
        parts.append("pin" if self.pin_memory else "nopin")
        if self.path != "fast":
            parts.append(self.path)
        if self.loader != "auto":
            parts.append(self.loader)
        if self.amp != "auto":
            parts.append(f"amp-{self.amp}")
        if self.split != "pooled":
            parts.append(self.split)
        if self.train_limit:
            parts.append(f"n{self.train_limit}")
        if self.deterministic:
            parts.append("det")
        parts += [f"seed{self.seed}", "gpu" if self.device == "cuda" else "cpu"]
        return "-".join(parts)

    @property
    def device_marker(self) -> str:
        return "gpu" if self.device == "cuda" else "cpu"

    def replace(self, **changes) -> TrainCase:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class SVMCase:
    """One scikit-learn SVC fit on flattened 784-d pixels, as a row of the Q1(b) tables."""

    preset: str = "q1b"
    dataset: str = "MNIST"  # MNIST | FashionMNIST
    kernel: str = "rbf"  # poly | rbf
    C: float = 1.0  # SVC regularisation
    degree: int = 3  # poly kernel degree (ignored by rbf, kept at 3 then)
    gamma: str | float = "scale"  # 'scale' or a positive number
    train_limit: int | None = None  # training images (stratified subset), None = the whole split
    eval_limit: int | None = None  # test images, None = the whole split
    scale: bool = False  # StandardScaler before the SVC (pixels are /255 either way)
    backend: str = "sklearn"  # sklearn | sklearnex (scikit-learn-intelex)
    seed: int = 0  # SVC random_state; SVC is deterministic, so seeds repeat the same fit
    split: str = "pooled"
    split_seed: int = 0
    device: str = "cpu"  # SVMs run on the CPU; kept so every record names its device

    def __post_init__(self) -> None:
        check_choice("preset", self.preset, PRESETS)
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("kernel", self.kernel, KERNELS)
        check_choice("backend", self.backend, SVM_BACKENDS)
        check_choice("split", self.split, SPLITS)
        check_choice("device", self.device, ("cpu",))
        check_positive("C", self.C)
        check_positive("degree", self.degree, integer=True)
        if self.gamma != "scale":
            check_positive("gamma ('scale' or a number)", self.gamma)
        check_positive("train_limit", self.train_limit, integer=True, allow_none=True)
        check_positive("eval_limit", self.eval_limit, integer=True, allow_none=True)

    @property
    def kind(self) -> str:
        return "svm"

    @property
    def id(self) -> str:
        parts = [self.preset, SHORT_DATASET[self.dataset], self.kernel]
        if self.kernel == "poly":
            parts.append(f"d{self.degree}")
        parts.append(f"C{self.C:g}")
        if self.gamma != "scale":
            parts.append(f"g{self.gamma:g}")
        if self.scale:
            parts.append("std")
        if self.backend != "sklearn":
            parts.append(self.backend)
        if self.split != "pooled":
            parts.append(self.split)
        if self.train_limit:
            parts.append(f"n{self.train_limit}")
        parts.append(f"seed{self.seed}")
        return "-".join(parts)

    @property
    def device_marker(self) -> str:
        return "cpu"

    def replace(self, **changes) -> SVMCase:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class FlopsCase:
    """One fvcore count: a model at an input size (no data, no training)."""

    model: str = "resnet18"
    stem: str = "imagenet"
    image_size: int = 28
    channels: int = 1  # 1 for the study; 3 to compare with torchvision's documented figures
    num_classes: int = 10
    preset: str = "smoke"
    device: str = "cpu"  # counting runs on the CPU; kept so every record names its device

    def __post_init__(self) -> None:
        check_choice("model", self.model, MODELS)
        check_choice("stem", self.stem, STEMS)
        check_choice("preset", self.preset, PRESETS)
        check_positive("image_size", self.image_size, integer=True)

    @property
    def kind(self) -> str:
        return "flops"

    @property
    def id(self) -> str:
        stem = "" if self.stem == "imagenet" else f"-{self.stem}"
        return f"flops-{SHORT_MODEL[self.model]}{stem}-{self.channels}x{self.image_size}"

    @property
    def device_marker(self) -> str:
        return "cpu"
