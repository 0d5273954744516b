"""Train one TrainCase and say where the time went.

`Trainer` splits a run into the parts a benchmark must keep apart: setup (model,
optimizer, data to the device, warm-up and, on a GPU, CUDA-graph capture), `train_epoch`
(the only timed part; it synchronises the device before returning), and `after_epoch` /
`finish` (validation and test, timed apart). `train(case, split)` runs them in order for
code that does not need pytest-benchmark; the benchmarks drive the same methods through
`benchmark.pedantic`, one round per epoch. `close()` (or `with Trainer(...)`) lets go of
every tensor the case holds, so the next case starts from nothing of this one.

Two paths compute the same thing (same batches per epoch, same optimizer steps, same
epochs, optimizer and learning rate) at different speeds:
- classic: the write-ups' loop. torch DataLoader over per-sample PIL transforms, eager,
  fp16 autocast + GradScaler on CUDA, fp32 on CPU.
- fast: the split held on the device as uint8 and batched by shuffled index; on CUDA
  also bf16 autocast (fp16 + GradScaler where bf16 is only emulated), channels_last,
  fused optimizers and the whole step (batch gather, normalise, forward, backward,
  optimizer, loss/accuracy accumulation) captured in one CUDA graph, so a batch-16 step
  is one launch instead of hundreds. `plan_for` says what each path does on each device;
  the plan is recorded with every result.

The graph path (capture, fallback, the check against eager) is graph.py's, mixed in here.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from mnistbench import flops
from mnistbench.batches import TensorBatches, classic_loader, to_input
from mnistbench.config import TrainCase
from mnistbench.data import Split
from mnistbench.graph import GraphPath
from mnistbench.machine import backend_settings
from mnistbench.models import build_model
from mnistbench.plan import (
    AMP_DTYPES,
    Plan,
    device_name,
    make_optimizer,
    plan_for,
    resolve_device,
    set_math_modes,
    sync,
)
from mnistbench.step import WARMUP_STEPS, EpochStats, PeakMemory, TrainStep, restore, snapshot

DIVERGENCE_CHECK_EVERY = 500  # steps between host reads of the first non-finite loss where a read stalls the device


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
    """What one run produced. Units are in the names; lists have one entry per finished epoch.
    Library versions and the machine are recorded once per session (machine.py), not here."""

    train_time_s: float = 0.0  # sum of timed epochs (device synchronised), nothing else
    images_per_s: float = 0.0  # training images processed / train_time_s
    images_per_s_median: float = 0.0  # over the median epoch: the steady-state rate
    mfu_pct: float | None = None  # 6 x fvcore MACs x images/s over the GPU's 16-bit dense peak
    mfu_peak_tflops: float | None = None  # that peak (flops.GPU_PEAKS)
    mfu_peak_source: str | None = None  # the datasheet it comes from
    setup_time_s: float = 0.0  # model build, data to device, warm-up, capture, graph check: not in train_time_s
    warmup_time_s: float = 0.0  # the part of setup spent warming up (and capturing a graph)
    warmup_steps: int = 0  # optimizer steps run in warm-up, then undone (graph replays included)
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
    steps: int = 0  # training steps run (batches); a GradScaler-skipped update counts here too
    skipped_steps: int = 0  # steps whose update GradScaler skipped (fp16 gradients overflowed)
    epochs_to_target: int | None = None  # first epoch whose val accuracy met the case's target
    time_to_target_s: float | None = None  # train_time_s up to that epoch
    peak_mem_mb: float = 0.0  # on a GPU: this case's peak above mem_baseline_mb
    mem_baseline_mb: float | None = None  # GPU memory allocated when the case began (left by others)
    peak_mem_source: str = ""  # cuda_max_allocated | process_max_rss (whole process, not per run)
    plan_loader: str = ""
    amp_dtype: str = "off"
    channels_last: bool = False
    fused_optimizer: bool = False
    cuda_graph: bool = False  # the graph actually ran (false after a fallback)
    cuda_graph_fallback: str | None = None  # why capture or its first replay failed; the eager fast path ran
    partial_batch: str = "none"  # none | eager (the last, smaller batch ran outside the graph)
    graph_check_steps: int = 0  # --check-graph K: steps run both ways from the same start
    graph_check_max_abs: float | None = None  # largest |graph - eager| over all weights after them
    graph_check_max_rel: float | None = None  # largest per-tensor max|graph - eager| / max|eager|
    graph_check_eager_rel: float | None = None  # the same between two eager runs: the device's own noise
    graph_check_tol_rel: float | None = None  # max(CHECK_GRAPH_RTOL, 2 x eager noise)
    graph_check_pass: bool | None = None  # max_rel <= tol_rel; a failed check fails the case
    n_train: int = 0
    n_val: int = 0
    n_test: int = 0
    gmacs_fvcore: float = 0.0  # per image at the case's input size (forward pass)
    params_m: float = 0.0
    device_name: str = ""
    device_index: int | None = None  # the CUDA device (torch's numbering); None on a CPU
    compute_capability: str | None = None
    # math modes in force for the case on a GPU (machine.backend_settings); None on a CPU
    tf32_matmul: bool | None = None
    tf32_cudnn: bool | None = None
    float32_matmul_precision: str | None = None
    cudnn_benchmark: bool | None = None
    cudnn_deterministic: bool | None = None

    def as_fields(self) -> dict:
        return asdict(self)



class Trainer(GraphPath):
    """One case's model, optimizer and data, prepared so that only training is timed.

    `check_graph=K` runs K steps through the CUDA graph and K eagerly from the same start
    before the timed run, and records how far the weights drift apart (graph_check_*).
    """

    def __init__(self, case: TrainCase, split: Split, check_graph: int = 0):
        t0 = time.perf_counter()
        self.case = case
        self.device = resolve_device(case)
        self.peak_memory = PeakMemory(self.device)  # before anything of this case is allocated
        self.plan = plan_for(case, self.device)
        self.split = split.limited(case.train_limit, case.eval_limit, case.split_seed)
        set_math_modes(case, self.plan, self.device)
        memory_format = torch.channels_last if self.plan.channels_last else torch.contiguous_format
        torch.manual_seed(case.seed)
        self.model = build_model(case.model, case.stem).to(self.device, memory_format=memory_format)
        self.optimizer = make_optimizer(case, self.model.parameters(), self.plan.fused_optimizer)
        self.stats = EpochStats(self.device)
        self.train_step = TrainStep(self.model, self.optimizer, self._new_scaler(), self.stats, self.plan, self.device)
        if self.train_step.scaler.is_enabled():
            self.optimizer.register_step_post_hook(self.stats.count_update)
        if self.plan.loader == "tensor":
            self.batches = TensorBatches(self.split, case, self.device)
        else:
            self.batches = classic_loader(self.split, case)
        self.result = TrainResult(
            plan_loader=self.plan.loader, amp_dtype=self.plan.amp_dtype,
            channels_last=self.plan.channels_last, fused_optimizer=self.plan.fused_optimizer,
            cuda_graph=self.plan.cuda_graph, device_name=device_name(self.device),
            **self.split.sizes, **flops.count(case.model, case.stem, case.image_size), **self._gpu_fields(),
        )
        self.graph_step = None
        self.result.warmup_time_s = self._warm_up()
        if check_graph and self.graph_step is not None:
            self._check_graph(check_graph)
        self.result.setup_time_s = time.perf_counter() - t0

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Let go of every tensor the case holds: the graph and its memory pool, the model, the
        optimizer, the data on the device. The result stays."""
        self.graph_step = self.train_step = self.batches = self.stats = None
        self.model = self.optimizer = self.split = None

    def _new_scaler(self) -> torch.amp.GradScaler:
        return torch.amp.GradScaler(self.device.type, enabled=self.plan.amp_dtype == "fp16")

    def _gpu_fields(self) -> dict:
        if self.device.type != "cuda":
            return {}
        index = self.device.index if self.device.index is not None else torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(index)
        fields = {"device_index": index, "compute_capability": f"{major}.{minor}"}
        known = {f.name for f in dataclasses.fields(TrainResult)}
        return fields | {k: v for k, v in backend_settings().items() if k in known}

    @property
    def sync_free(self) -> bool:
        """No host read inside an epoch but one every DIVERGENCE_CHECK_EVERY steps: on a GPU,
        and wherever the graph runs (the CPU tests' stand-in included)."""
        return self.device.type == "cuda" or self.graph_step is not None

    # ------------------------------------------------------------ warm-up

    def _warm_up(self) -> float:
        """Steps on the real model in every shape an epoch meets (full batches, the partial
        last batch, and on the graph path the capture and a first replay), then every weight,
        buffer, optimizer moment and the GradScaler put back in place: the timed run starts
        exactly where a cold one would, and meets nothing for the first time."""
        t0 = time.perf_counter()
        cold = self._cold_state()
        n, full = len(self.split.y_train), min(self.case.batch_size, len(self.split.y_train))
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            if self.plan.cuda_graph:
                self._capture()
            if self.graph_step is None:
                for _ in range(WARMUP_STEPS):
                    self.train_step(*self._warmup_batch(full))
            self.result.warmup_steps = WARMUP_STEPS + (self.graph_step is not None)
            if n > full and n % full:  # the partial last batch runs eagerly on every path
                self.train_step(*self._warmup_batch(n % full))
                self.result.warmup_steps += 1
        self._restore(cold)
        return time.perf_counter() - t0

    def _warmup_batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`size` training images in the form a timed step gets them, without touching the
        shuffle (the timed epochs draw the same batches as a cold run)."""
        if isinstance(self.batches, TensorBatches):
            return self.batches.gather(torch.arange(size, device=self.device))
        x = to_input(self.split.x_train[:size], self.split, self.case.image_size)
        return x.to(self.device, non_blocking=True), self.split.y_train[:size].to(self.device, non_blocking=True)

    def _cold_state(self) -> tuple[dict, dict]:
        return snapshot(self.model), self.train_step.scaler.state_dict()

    def _restore(self, cold: tuple[dict, dict]) -> None:
        """Back to `cold` in place: weights, buffers, zeroed optimizer state, GradScaler, statistics."""
        sync(self.device)
        weights, scaler = cold
        restore(self.model, self.optimizer, weights)
        self.train_step.scaler.load_state_dict(scaler)  # fills its scale tensor in place when it has one
        self.stats.reset()
        sync(self.device)

    # ------------------------------------------------------------ the timed epoch

    def step_on(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """One eager optimizer step; graph-safe (no host reads). Returns the loss tensor."""
        return self.train_step(xb, yb)

    def _batches(self):
        """(index slice, None) for the graph path; (x, y) otherwise."""
        if self.graph_step is None:
            yield from self.batches
            return
        for index in self.batches.orders(self.case.batch_size):
            yield index, None

    def train_epoch(self) -> None:
        """One pass over the training split: the timed region. Raises Diverged on a NaN loss."""
        r, device, stats = self.result, self.device, self.stats
        epoch = r.epochs_done + 1
        t0 = time.perf_counter()
        stats.reset()
        full, sync_free = self.case.batch_size, self.sync_free
        for step, (xb, yb) in enumerate(self._batches(), start=1):
            loss = None
            if yb is None and len(xb) == full:
                self.graph_step(xb)
            elif yb is None:  # the partial last batch: same computation, outside the graph
                r.partial_batch = "eager"
                loss = self.train_step(*self.batches.gather(xb))
            else:
                loss = self.train_step(xb.to(device, non_blocking=True), yb.to(device, non_blocking=True))
            r.steps += 1
            # On the CPU reading the loss costs nothing; on a GPU it would stall the queue.
            if not sync_free and not math.isfinite(loss.item()):
                self._diverged(epoch, step, loss.item(), t0)
            if sync_free and step % DIVERGENCE_CHECK_EVERY == 0 and stats.first_bad.item() >= 0:
                self._diverged(epoch, int(stats.first_bad), math.nan, t0)
        sync(device)
        elapsed = time.perf_counter() - t0
        seen = len(self.split.y_train)
        if stats.first_bad.item() >= 0:
            self._diverged(epoch, int(stats.first_bad), stats.loss_sum.item() / seen, t0, elapsed)
        self._count_skipped()
        r.epochs_done = epoch
        r.epoch_time_s.append(elapsed)
        r.train_time_s += elapsed
        r.epoch_train_loss.append(stats.loss_sum.item() / seen)
        r.epoch_train_acc_pct.append(100.0 * stats.correct.item() / seen)

    def _count_skipped(self) -> None:
        if self.train_step.scaler.is_enabled():
            self.result.skipped_steps += int(self.stats.step) - int(self.stats.updates)

    def _diverged(self, epoch: int, step: int, loss: float, t0: float, elapsed: float | None = None) -> None:
        sync(self.device)
        self.result.train_time_s += elapsed if elapsed is not None else time.perf_counter() - t0
        self._count_skipped()
        self._finish_record()
        raise Diverged(epoch, step, loss, self.result)

    # ------------------------------------------------------------ evaluation and the record

    def after_epoch(self) -> None:
        """Validation after the epoch just trained (untimed); records time-to-accuracy."""
        r = self.result
        if len(r.epoch_val_acc_pct) >= r.epochs_done:
            return
        t0 = time.perf_counter()
        acc = evaluate(self.model, self.split.x_val, self.split.y_val, self.split, self.case, self.plan, self.device)
        r.eval_time_s += time.perf_counter() - t0
        r.epoch_val_acc_pct.append(acc)
        target = self.case.target_val_acc_pct
        if target is not None and r.epochs_to_target is None and acc >= target:
            r.epochs_to_target = r.epochs_done
            r.time_to_target_s = r.train_time_s

    @property
    def stopped(self) -> bool:
        """Told to stop at its target and there before its last epoch: no more epochs to run."""
        r = self.result
        return self.case.stop_at_target and r.epochs_to_target is not None and r.epochs_done < self.case.epochs

    def _finish_record(self) -> None:
        r = self.result
        images = len(self.split.y_train) * r.epochs_done
        r.images_per_s = images / r.train_time_s if r.train_time_s > 0 else 0.0
        if r.epoch_time_s:
            r.images_per_s_median = len(self.split.y_train) / statistics.median(r.epoch_time_s)
            peak = flops.peak_for(self.device.type, r.device_name)
            r.mfu_pct = flops.mfu_pct(r.gmacs_fvcore, r.images_per_s_median, peak)
            if peak is not None:
                r.mfu_peak_tflops, r.mfu_peak_source = peak.tflops, peak.source
        for name in ("epoch_train_loss", "epoch_train_acc_pct", "epoch_val_acc_pct"):
            values = getattr(r, name)
            if values:
                setattr(r, name.replace("epoch_", "", 1), values[-1])
        for name, value in self.peak_memory.fields().items():
            setattr(r, name, value)

    def finish(self) -> TrainResult:
        """Validate the last epoch if not yet done, test once, and complete the record."""
        self.after_epoch()
        t0 = time.perf_counter()
        self.result.test_acc_pct = evaluate(
            self.model, self.split.x_test, self.split.y_test, self.split, self.case, self.plan, self.device
        )
        self.result.eval_time_s += time.perf_counter() - t0
        self._finish_record()
        return self.result


@torch.inference_mode()
def evaluate(model: nn.Module, x_u8, y, split: Split, case: TrainCase, plan: Plan, device) -> float:
    """Accuracy in % over uint8 images, in large batches; never part of the timed region."""
    model.eval()
    dtype = AMP_DTYPES[plan.amp_dtype]
    memory = torch.channels_last if plan.channels_last else torch.contiguous_format
    correct = torch.zeros((), dtype=torch.int64, device=device)
    for start in range(0, len(y), plan.eval_batch):
        xb = to_input(x_u8[start : start + plan.eval_batch].to(device), split, case.image_size)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(xb.contiguous(memory_format=memory))
        correct += (logits.argmax(1) == y[start : start + plan.eval_batch].to(device)).sum()
    model.train()
    return 100.0 * correct.item() / max(len(y), 1)


def train(case: TrainCase, split: Split, check_graph: int = 0) -> TrainResult:
    """Every epoch, then the test; the same steps the benchmarks time through pytest-benchmark."""
    with Trainer(case, split, check_graph=check_graph) as trainer:
        for _ in range(case.epochs):
            trainer.train_epoch()
            trainer.after_epoch()
            if trainer.stopped:
                break
        return trainer.finish()
