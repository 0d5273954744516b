"""Train one TrainCase and say where the time went.

`Trainer` splits a run into the parts a benchmark must keep apart: setup (model,
optimizer, data to the device, a warm-up on a throwaway copy), `train_epoch` (the only
timed part; it synchronises the device before returning), and `after_epoch` /
`finish` (validation and test, timed apart). `train(case, split)` runs them in order
for code that does not need pytest-benchmark; the benchmarks drive the same methods
through `benchmark.pedantic` with one round per epoch.
"""

from __future__ import annotations

import copy
import math
import platform
import resource
import time
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from mnistbench import flops
from mnistbench.config import TrainCase
from mnistbench.data import Split, TensorBatches, classic_loader, to_input
from mnistbench.models import build_model

EVAL_BATCH = 1024
WARMUP_STEPS = 2
_AUTOCAST = {"off": None, "fp16": torch.float16, "bf16": torch.bfloat16}


class Diverged(RuntimeError):
    """The loss went NaN or infinite; training stopped where it happened."""

    def __init__(self, epoch: int, step: int, loss: float, partial: TrainResult):
        self.epoch, self.step, self.loss, self.partial = epoch, step, loss, partial
        super().__init__(
            f"diverged at epoch {epoch}, step {step} (loss={loss}). Lower the learning rate "
            "or use amp=off/bf16; the partial record is kept."
        )


@dataclass
class TrainResult:
    """What one run produced. Units are in the names; lists have one entry per finished epoch."""

    train_time_s: float = 0.0  # sum of timed epochs (device synchronised), nothing else
    images_per_s: float = 0.0  # training images processed / train_time_s
    setup_time_s: float = 0.0  # model build, data to device, warm-up: not in train_time_s
    warmup_time_s: float = 0.0  # the part of setup spent in warm-up steps
    eval_time_s: float = 0.0  # every validation and the test pass: not in train_time_s
    test_acc_pct: float = math.nan
    val_acc_pct: float = math.nan  # after the last epoch
    train_acc_pct: float = math.nan  # running accuracy over the last epoch
    train_loss: float = math.nan  # mean loss over the last epoch
    epoch_time_s: list[float] = field(default_factory=list)
    epoch_train_loss: list[float] = field(default_factory=list)
    epoch_train_acc_pct: list[float] = field(default_factory=list)
    epoch_val_acc_pct: list[float] = field(default_factory=list)
    epochs_done: int = 0
    steps: int = 0  # optimizer steps taken
    epochs_to_target: int | None = None  # first epoch whose val accuracy met the case's target
    time_to_target_s: float | None = None  # train_time_s up to that epoch
    peak_mem_mb: float = 0.0
    peak_mem_source: str = ""  # cuda_max_allocated | process_max_rss (whole process, not per run)
    amp_dtype: str = "off"
    n_train: int = 0
    n_val: int = 0
    n_test: int = 0
    gmacs_fvcore: float = 0.0  # per image at the case's input size (forward pass)
    params_m: float = 0.0
    device_name: str = ""
    torch_version: str = torch.__version__

    def as_fields(self) -> dict:
        return asdict(self)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def resolve_device(case: TrainCase) -> torch.device:
    if case.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "This case needs a CUDA GPU and none is visible to torch "
            f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}). "
            "Run the cpu cases instead (-m cpu)."
        )
    return torch.device(case.device)


def make_optimizer(case: TrainCase, params) -> torch.optim.Optimizer:
    if case.optimizer == "sgd":
        return torch.optim.SGD(params, lr=case.lr, momentum=0.9)
    return torch.optim.Adam(params, lr=case.lr)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def evaluate(model: nn.Module, x_u8, y, split: Split, case: TrainCase, device) -> float:
    """Accuracy in % over uint8 images, in large batches; never part of the timed region."""
    model.eval()
    dtype = _AUTOCAST[case.amp_dtype]
    correct = torch.zeros((), dtype=torch.int64, device=device)
    for start in range(0, len(y), EVAL_BATCH):
        xb = to_input(x_u8[start : start + EVAL_BATCH].to(device), split, case.image_size)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(xb)
        correct += (logits.argmax(1) == y[start : start + EVAL_BATCH].to(device)).sum()
    model.train()
    return 100.0 * correct.item() / max(len(y), 1)


class Trainer:
    """One case's model, optimizer and data, prepared so that only training is timed."""

    def __init__(self, case: TrainCase, split: Split):
        t0 = time.perf_counter()
        self.case = case
        self.device = resolve_device(case)
        self.split = split.limited(case.train_limit, case.eval_limit, case.split_seed)
        torch.manual_seed(case.seed)
        self.model = build_model(case.model, case.stem).to(self.device)
        self.optimizer = make_optimizer(case, self.model.parameters())
        self.criterion = nn.CrossEntropyLoss()
        self.dtype = _AUTOCAST[case.amp_dtype]
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=case.amp_dtype == "fp16")
        if case.loader == "tensor":
            self.batches = TensorBatches(self.split, case, self.device)
        else:
            self.batches = classic_loader(self.split, case)
        counts = flops.count(case.model, case.stem, case.image_size)
        self.result = TrainResult(
            amp_dtype=case.amp_dtype,
            device_name=device_name(self.device),
            **self.split.sizes,
            **counts,
        )
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self.result.warmup_time_s = self._warm_up()
        self.result.setup_time_s = time.perf_counter() - t0

    def _warm_up(self) -> float:
        """A few steps on a throwaway copy: allocator, kernels and autotuning, not the real model."""
        t0 = time.perf_counter()
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            model = copy.deepcopy(self.model)
            optimizer = make_optimizer(self.case, model.parameters())
            n = min(self.case.batch_size, len(self.split.y_train))
            xb = to_input(self.split.x_train[:n].to(self.device), self.split, self.case.image_size)
            yb = self.split.y_train[:n].to(self.device)
            for _ in range(WARMUP_STEPS):
                self._step(model, optimizer, xb, yb)
            del model, optimizer
        sync(self.device)
        return time.perf_counter() - t0

    def _step(self, model, optimizer, xb, yb) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            logits = model(xb)
            loss = self.criterion(logits, yb)
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()
        return loss.detach(), logits.detach()

    def train_epoch(self) -> None:
        """One pass over the training split: the timed region. Raises Diverged on a NaN loss."""
        r, device = self.result, self.device
        epoch = r.epochs_done + 1
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        seen = 0
        for step, (xb, yb) in enumerate(self.batches, start=1):
            xb = xb.to(device, non_blocking=True)
            yb = yb.to(device, non_blocking=True)
            loss, logits = self._step(self.model, self.optimizer, xb, yb)
            # On the CPU reading the loss costs nothing; on a GPU it would stall the queue.
            if device.type == "cpu" and not math.isfinite(loss.item()):
                self._diverged(epoch, step, loss.item(), t0)
            loss_sum += loss.double() * len(yb)
            correct += (logits.argmax(1) == yb).sum()
            seen += len(yb)
            r.steps += 1
        sync(device)
        elapsed = time.perf_counter() - t0
        mean_loss = loss_sum.item() / max(seen, 1)
        if not math.isfinite(mean_loss):
            self._diverged(epoch, r.steps, mean_loss, t0)
        r.epochs_done = epoch
        r.epoch_time_s.append(elapsed)
        r.train_time_s += elapsed
        r.epoch_train_loss.append(mean_loss)
        r.epoch_train_acc_pct.append(100.0 * correct.item() / max(seen, 1))

    def _diverged(self, epoch: int, step: int, loss: float, t0: float) -> None:
        sync(self.device)
        self.result.train_time_s += time.perf_counter() - t0
        self._finish_record()
        raise Diverged(epoch, step, loss, self.result)

    def after_epoch(self) -> None:
        """Validation after the epoch just trained (untimed); records time-to-accuracy."""
        r = self.result
        if len(r.epoch_val_acc_pct) >= r.epochs_done:
            return
        t0 = time.perf_counter()
        acc = evaluate(self.model, self.split.x_val, self.split.y_val, self.split, self.case, self.device)
        r.eval_time_s += time.perf_counter() - t0
        r.epoch_val_acc_pct.append(acc)
        target = self.case.target_val_acc_pct
        if target is not None and r.epochs_to_target is None and acc >= target:
            r.epochs_to_target = r.epochs_done
            r.time_to_target_s = r.train_time_s

    def _finish_record(self) -> None:
        r = self.result
        images = r.steps and len(self.split.y_train) * r.epochs_done
        r.images_per_s = images / r.train_time_s if r.train_time_s > 0 else 0.0
        for name in ("epoch_train_loss", "epoch_train_acc_pct", "epoch_val_acc_pct"):
            values = getattr(r, name)
            if values:
                setattr(r, name.replace("epoch_", "", 1), values[-1])
        if self.device.type == "cuda":
            r.peak_mem_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
            r.peak_mem_source = "cuda_max_allocated"
        else:
            r.peak_mem_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            r.peak_mem_source = "process_max_rss"

    def finish(self) -> TrainResult:
        """Validate the last epoch if not yet done, test once, and complete the record."""
        self.after_epoch()
        t0 = time.perf_counter()
        self.result.test_acc_pct = evaluate(
            self.model, self.split.x_test, self.split.y_test, self.split, self.case, self.device
        )
        self.result.eval_time_s += time.perf_counter() - t0
        self._finish_record()
        return self.result


def train(case: TrainCase, split: Split) -> TrainResult:
    """Every epoch, then the test; the same steps the benchmarks time through pytest-benchmark."""
    trainer = Trainer(case, split)
    for _ in range(case.epochs):
        trainer.train_epoch()
        trainer.after_epoch()
    return trainer.finish()
