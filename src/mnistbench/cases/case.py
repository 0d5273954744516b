"""What one benchmark case is: frozen dataclasses passed whole from the grid to the result.

A case is checked at construction time, so a typo fails before any data loads
(torchvision's references fail the same way on an unknown optimizer). It knows its own
pytest id, marks and cost estimate; nothing else builds them, and nothing parses an id
back: records hold the fields.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import ClassVar

from mnistbench.cases import cost
from mnistbench.cases.registry import DATASETS, MODELS, SPLITS, ConfigError, check_choice, check_positive, split_sizes

STEMS = ("imagenet", "small")
OPTIMIZERS = ("sgd", "adam")
AMPS = ("auto", "off", "fp16", "bf16")
DEVICES = ("cpu", "cuda")
LOADERS = ("auto", "dataloader", "tensor")
PATHS = ("classic", "fast")
KERNELS = ("poly", "rbf")
SVM_BACKENDS = ("sklearn", "sklearnex")
EXPECTS = ("ok", "oom")
# estimated seconds on a 2-core CPU above which a case is marked slow: out of `pytest -m "not slow"`, a
# measurement for a full run rather than a check for CI (the smoke ResNet-50 case, ~17 s, is the first over it;
# tests/test_train.py checks that ResNet-50 learns through the same pipeline in a third of the time)
SLOW_AFTER_S = 15.0


def lr_tag(lr: float) -> str:
    """1e-3 -> '1e-3': ids stay short and sort the same on every platform."""
    mantissa, exponent = f"{lr:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


# ---------------------------------------------------------------- cases


class Case:
    """What every kind of case shares: id from labelled parts, marks, replace, field parsing."""

    kind: ClassVar[str]

    def id_parts(self) -> list[tuple[str, str]]:
        """(field, text) pairs, in id order; a field at its default usually says nothing."""
        raise NotImplementedError

    def _generic_parts(self, known: set[str]) -> list[tuple[str, str]]:
        """Fields no id rule names (a newly added axis) appear as name-value when not default."""
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name not in known and value != f.default:
                parts.append((f.name, f"{f.name}-{value}"))
        return parts

    @property
    def id(self) -> str:
        return "-".join(text for _, text in self.id_parts())

    def label(self, leave_out: tuple[str, ...] = ()) -> str:
        """The id without the parts of the fields a join leaves out: a row label, never parsed."""
        return "-".join(text for name, text in self.id_parts() if name not in leave_out)

    @property
    def device_marker(self) -> str:
        return "gpu" if getattr(self, "device", "cpu") == "cuda" else "cpu"

    @property
    def n_train(self) -> int:
        """Training images a case that learns from a split uses (its limit, else the whole split)."""
        return self.train_limit or split_sizes(self.dataset, self.split)[0]

    @property
    def n_eval(self) -> tuple[int, int]:
        """Validation and test images (each limited to eval_limit, else the whole split's)."""
        _, n_val, n_test = split_sizes(self.dataset, self.split)
        limit = self.eval_limit or max(n_val, n_test)
        return min(limit, n_val), min(limit, n_test)

    def estimated_cpu_s(self) -> float:
        """Rough seconds on a 2-core CPU: what decides the slow marker and the session estimate."""
        raise NotImplementedError

    @property
    def marks(self) -> list[str]:
        names = [self.preset, self.device_marker]
        if self.kind == "flops":
            names.append("flops")
        if self.estimated_cpu_s() > SLOW_AFTER_S:
            names.append("slow")
        return names

    def replace(self, **changes) -> Case:
        return dataclasses.replace(self, **changes)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def parse_field(cls, name: str, text: str):
        """A command-line value for one field, typed by the field's annotation."""
        hints = typing.get_type_hints(cls)
        if name not in hints or name.startswith("_"):
            raise ConfigError(f"Invalid {cls.kind} field {name!r}. Valid values: {', '.join(cls.field_names())}.")
        kind = hints[name]
        text = text.strip()
        if text.lower() == "none" and type(None) in typing.get_args(kind):
            return None
        for convert in (bool, int, float, str):
            if convert is kind or convert in typing.get_args(kind):
                if convert is float and str in typing.get_args(kind):
                    return _number_or_text(text)  # gamma: 'scale' or a number
                return _convert(convert, name, text)
        return text


def _number_or_text(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def _convert(convert, name: str, text: str):
    if convert is bool:
        if text.lower() not in ("true", "false", "1", "0", "on", "off"):
            raise ConfigError(f"Invalid {name} {text!r}. Valid values: true, false.")
        return text.lower() in ("true", "1", "on")
    try:
        return convert(text)
    except ValueError:
        raise ConfigError(f"Invalid {name} {text!r}: expected {convert.__name__}.") from None


@dataclass(frozen=True)
class TrainCase(Case):
    """One ResNet training run, as the study's Q1(a)/Q2 tables describe one row."""

    kind: ClassVar[str] = "train"

    preset: str = "smoke"  # the grid preset it came from; also its pytest marker
    dataset: str = "MNIST"  # a registered dataset (cases.registry.DATASETS)
    model: str = "resnet18"  # a registered model (cases.registry.MODELS), random init
    stem: str = "imagenet"  # imagenet: 7x7/2 conv + max-pool (the write-ups) | small: 3x3/1, no pool
    image_size: int = 28  # pixels per side fed to the model; batches are resized on the device
    batch_size: int = 16  # images per optimizer step
    optimizer: str = "sgd"  # sgd (momentum 0.9) | adam
    lr: float = 1e-3  # learning rate, constant
    epochs: int = 1  # passes over the training split
    pin_memory: bool = True  # DataLoader pin_memory (only the dataloader loader uses it)
    num_workers: int = 0  # DataLoader worker processes
    amp: str = "auto"  # auto: the path's choice (see train.plan.plan_for) | off | fp16 | bf16
    device: str = "cpu"  # cpu | cuda
    seed: int = 0  # model init, shuffling and augmentation
    split: str = "pooled"  # pooled: 70/10/20 of all 70,000 | official: 60k(-10% val)/10k
    split_seed: int = 0  # seed of the split itself, kept apart so seeds vary only training
    path: str = "fast"  # fast: everything that wins on the device | classic: the write-ups' loop
    loader: str = "auto"  # auto: the path's | dataloader: DataLoader, per-sample transforms | tensor
    train_limit: int | None = None  # use only this many training images (stratified), None = all
    eval_limit: int | None = None  # use only this many val and test images each, None = all
    target_val_acc_pct: float | None = None  # time-to-accuracy target on the validation split
    stop_at_target: bool = False  # end the case at the first epoch whose validation meets the target
    deterministic: bool = False  # torch.use_deterministic_algorithms: bitwise repeatable on a GPU too, slower
    expect: str = "ok"  # ok | oom: a case built to run out of GPU memory passes only when its record says oom

    def __post_init__(self) -> None:
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("model", self.model, MODELS)
        check_choice("expect", self.expect, EXPECTS)
        for name, valid in (("stem", STEMS), ("optimizer", OPTIMIZERS), ("amp", AMPS), ("device", DEVICES),
                            ("split", SPLITS), ("path", PATHS), ("loader", LOADERS)):
            check_choice(name, getattr(self, name), valid)
        for name in ("image_size", "batch_size", "epochs"):
            check_positive(name, getattr(self, name), integer=True)
        check_positive("lr", self.lr)
        check_positive("train_limit", self.train_limit, integer=True, allow_none=True)
        check_positive("eval_limit", self.eval_limit, integer=True, allow_none=True)
        if self.image_size < 28 and self.stem == "imagenet":
            raise ConfigError("image_size below 28 leaves nothing for the imagenet stem to pool.")
        if self.num_workers < 0:
            raise ConfigError(f"Invalid num_workers {self.num_workers}: must be 0 or more.")
        if self.stop_at_target and self.target_val_acc_pct is None:
            raise ConfigError("stop_at_target needs a target: set target_val_acc_pct (the grids use the "
                              "dataset's target).")

    @property
    def resolved_loader(self) -> str:
        if self.loader != "auto":
            return self.loader
        return "dataloader" if self.path == "classic" else "tensor"

    def id_parts(self) -> list[tuple[str, str]]:
        optional = [
            ("stem", self.stem, self.stem != "imagenet"),
            ("image_size", f"px{self.image_size}", self.image_size != 28),
            ("pin_memory", "pin" if self.pin_memory else "nopin", True),
            ("path", self.path, self.path != "fast"),
            ("loader", self.loader, self.loader != "auto"),
            ("amp", f"amp-{self.amp}", self.amp != "auto"),
            ("split", self.split, self.split != "pooled"),
            ("train_limit", f"n{self.train_limit}", bool(self.train_limit)),
            ("deterministic", "det", self.deterministic),
            ("stop_at_target", "stop", self.stop_at_target),
        ]
        parts = [("preset", self.preset), ("dataset", DATASETS[self.dataset].short),
                 ("model", MODELS[self.model].short), ("batch_size", f"bs{self.batch_size}"),
                 ("optimizer", self.optimizer), ("lr", f"lr{lr_tag(self.lr)}"), ("epochs", f"ep{self.epochs}")]
        parts += [(name, text) for name, text, shown in optional if shown]
        quiet = {"num_workers", "eval_limit", "split_seed", "target_val_acc_pct", "seed", "device"}
        parts += self._generic_parts({name for name, _ in parts} | {n for n, _, _ in optional} | quiet)
        return parts + [("seed", f"seed{self.seed}"), ("device", self.device_marker)]

    def estimated_cpu_s(self) -> float:
        pixels = (self.image_size / 28) ** 2 * (14 if self.stem == "small" else 1)
        n_val, n_test = self.n_eval
        return cost.train_s(self.epochs, self.n_train, n_val, n_test, pixels, MODELS[self.model].cpu_images_per_s)


@dataclass(frozen=True)
class SVMCase(Case):
    """One scikit-learn SVC fit on flattened 784-d pixels, as a row of the Q1(b) tables."""

    kind: ClassVar[str] = "svm"

    preset: str = "q1b"
    dataset: str = "MNIST"  # a registered dataset
    kernel: str = "rbf"  # poly | rbf
    C: float = 1.0  # SVC regularisation
    degree: int = 3  # poly kernel degree (ignored by rbf, kept at 3 then)
    gamma: str | float = "scale"  # 'scale' or a positive number
    max_iter: int = -1  # SVC's solver iteration cap; -1 is libsvm's "no limit" (one write-up capped it at 1000)
    train_limit: int | None = None  # training images (stratified subset), None = the whole split
    eval_limit: int | None = None  # test images, None = the whole split
    scale: bool = False  # StandardScaler before the SVC (pixels are /255 either way)
    backend: str = "sklearn"  # sklearn | sklearnex (scikit-learn-intelex)
    seed: int = 0  # SVC random_state, and the draw of a training subset (SVC itself is deterministic)
    split: str = "pooled"
    split_seed: int = 0
    device: str = "cpu"  # SVMs run on the CPU; kept so every record names its device

    def __post_init__(self) -> None:
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("kernel", self.kernel, KERNELS)
        check_choice("backend", self.backend, SVM_BACKENDS)
        check_choice("split", self.split, SPLITS)
        check_choice("device", self.device, ("cpu",))
        check_positive("C", self.C)
        check_positive("degree", self.degree, integer=True)
        if self.max_iter != -1:
            check_positive("max_iter (-1 = no limit)", self.max_iter, integer=True)
        if self.gamma != "scale":
            check_positive("gamma ('scale' or a number)", self.gamma)
        check_positive("train_limit", self.train_limit, integer=True, allow_none=True)
        check_positive("eval_limit", self.eval_limit, integer=True, allow_none=True)

    def id_parts(self) -> list[tuple[str, str]]:
        optional = [
            ("degree", f"d{self.degree}", self.kernel == "poly"),
            ("C", f"C{self.C:g}", True),
            ("gamma", f"g{self.gamma}" if self.gamma == "scale" else f"g{self.gamma:g}", self.gamma != "scale"),
            ("scale", "std", self.scale),
            ("backend", self.backend, self.backend != "sklearn"),
            ("split", self.split, self.split != "pooled"),
            ("train_limit", f"n{self.train_limit}", bool(self.train_limit)),
        ]
        parts = [("preset", self.preset), ("dataset", DATASETS[self.dataset].short), ("kernel", self.kernel)]
        parts += [(name, text) for name, text, shown in optional if shown]
        quiet = {"eval_limit", "split_seed", "device", "seed"}
        parts += self._generic_parts({name for name, _ in parts} | {n for n, _, _ in optional} | quiet)
        return parts + [("seed", f"seed{self.seed}")]

    @property
    def draw_seed(self) -> int:
        """Which training images a subset holds. SVC is deterministic, so the spread of an SVM
        configuration is the spread over draws: seed 0 is the split seed's own draw (the suite's
        draw before seeds drew subsets), seed k shifts it. The test set stays one draw."""
        return self.split_seed + self.seed

    def estimated_cpu_s(self) -> float:
        return cost.svm_s(self.n_train, *self.n_eval, C=self.C, scaled=self.scale)


@dataclass(frozen=True)
class FlopsCase(Case):
    """One fvcore count: a model at an input size (no data, no training)."""

    kind: ClassVar[str] = "flops"

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
        check_positive("image_size", self.image_size, integer=True)

    def id_parts(self) -> list[tuple[str, str]]:
        stem = "" if self.stem == "imagenet" else f"-{self.stem}"
        return [("kind", "flops"), ("model", f"{MODELS[self.model].short}{stem}"),
                ("image_size", f"{self.channels}x{self.image_size}")]

    def estimated_cpu_s(self) -> float:
        return 1.0


CASE_TYPES: dict[str, type[Case]] = {cls.kind: cls for cls in (TrainCase, SVMCase, FlopsCase)}
