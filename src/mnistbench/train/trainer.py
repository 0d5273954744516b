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

The graph path's pieces (capture, the check against eager) are graph.py's; the Trainer, which owns
the plan and the record, decides which epoch runs and falls back when a capture fails.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time

import torch
from torch import nn

from mnistbench.cases.case import TrainCase
from mnistbench.data import Split
from mnistbench.train import flops, graph
from mnistbench.train.batches import TensorBatches, classic_loader, to_input
from mnistbench.train.energy import EnergyMeter
from mnistbench.train.models import build_model
from mnistbench.train.plan import (
    AMP_DTYPES,
    Plan,
    backend_settings,
    device_name,
    make_optimizer,
    plan_for,
    resolve_device,
    set_math_modes,
    sync,
)
from mnistbench.train.result import TrainResult
from mnistbench.train.step import WARMUP_STEPS, EpochStats, PeakMemory, TrainStep, restore, snapshot

DIVERGENCE_CHECK_EVERY = 500  # steps between host reads of the first non-finite loss where a read stalls the device


class Diverged(RuntimeError):
    """The loss went NaN or infinite; training stopped where it happened."""

    def __init__(self, epoch: int, step: int, loss: float, partial: TrainResult):
        self.epoch, self.step, self.loss, self.partial = epoch, step, loss, partial
        super().__init__(
            f"diverged at epoch {epoch}, step {step} (loss={loss}). Lower the learning rate "
            "or use amp=off/bf16; the partial record is kept."
        )


class Trainer:
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
        no_graph = graph.unavailable() if self.plan.cuda_graph else None
        if no_graph:
            self.plan = dataclasses.replace(self.plan, cuda_graph=False)
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
            **self.split.sizes, **self._gpu_fields(),
        )
        self.energy = EnergyMeter(self.device)
        self.result.energy_source, self.result.cuda_graph_fallback = self.energy.source, no_graph
        self.graph_step = None
        cold = self._cold_state()
        self.result.warmup_time_s = self._warm_up(cold)
        if check_graph and self.graph_step is not None:
            fields = graph.check_against_eager(self.graph_step, self.train_step, self.model,
                                               lambda: self._restore(cold), check_graph, case.seed)
            for name, value in fields.items():
                setattr(self.result, name, value)
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

    def _warm_up(self, cold: tuple[dict, dict]) -> float:
        """Steps on the real model in every shape an epoch meets (full batches, the partial
        last batch, and on the graph path the capture and a first replay), then every weight,
        buffer, optimizer moment and the GradScaler put back in place: the timed run starts
        exactly where a cold one would, and meets nothing for the first time."""
        t0 = time.perf_counter()
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

    def _capture(self) -> None:
        """The graph path's warm-up; when capture or the first replay fails, the eager fast path."""
        captured = graph.capture(self.batches, self.train_step)
        if isinstance(captured, str):
            self._fall_back(captured)
        else:
            self.graph_step = captured

    def _fall_back(self, reason: str) -> None:
        """After a failed capture: the eager fast path, from a clean optimizer and GradScaler."""
        self.plan = dataclasses.replace(self.plan, cuda_graph=False)
        self.result.cuda_graph, self.result.cuda_graph_fallback = False, reason
        for name in ("grad_scale", "found_inf"):  # left on the optimizer by a step cut short
            if hasattr(self.optimizer, name):
                delattr(self.optimizer, name)
        self.optimizer.zero_grad(set_to_none=True)  # grads may point into the failed graph's pool
        self.train_step.scaler = self._new_scaler()  # its bookkeeping may be mid-step
        self.train_step.autocast_cache = True

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

    def train_epoch(self) -> None:
        """One pass over the training split: the timed region. Raises Diverged on a NaN loss."""
        self.stats.reset()
        mark = self.energy.start()  # outside the timed region, as is its stop
        epoch, t0 = self.result.epochs_done + 1, time.perf_counter()
        if self.graph_step is not None:
            self._graph_epoch(epoch, t0)
        else:
            self._eager_epoch(epoch, t0)
        sync(self.device)
        elapsed = time.perf_counter() - t0
        self._add_energy(self.energy.stop(mark))
        self._end_epoch(epoch, t0, elapsed)

    def _add_energy(self, joules: float | None) -> None:
        if joules is not None:
            self.result.energy_j = (self.result.energy_j or 0.0) + joules

    def _eager_epoch(self, epoch: int, t0: float) -> None:
        """Every batch through the eager step. On a CPU the loss is read each step, which costs
        nothing there; on a GPU a read would stall the queue, so the device keeps count instead."""
        for step, (xb, yb) in enumerate(self.batches, start=1):
            loss = self.train_step(xb.to(self.device, non_blocking=True), yb.to(self.device, non_blocking=True))
            self.result.steps += 1
            if self.sync_free:
                self._check_on_device(epoch, step, t0)
            elif not math.isfinite(loss.item()):
                self._diverged(epoch, step, loss.item(), t0)

    def _graph_epoch(self, epoch: int, t0: float) -> None:
        """Full batches by graph replay; the partial last batch, the same computation, eagerly."""
        full = self.case.batch_size
        for step, index in enumerate(self.batches.orders(full), start=1):
            if len(index) == full:
                self.graph_step(index)
            else:
                self.result.partial_batch = "eager"
                self.train_step(*self.batches.gather(index))
            self.result.steps += 1
            self._check_on_device(epoch, step, t0)

    def _check_on_device(self, epoch: int, step: int, t0: float) -> None:
        """Every DIVERGENCE_CHECK_EVERY steps, one host read of the first non-finite step the device saw."""
        if step % DIVERGENCE_CHECK_EVERY == 0 and self.stats.first_bad.item() >= 0:
            self._diverged(epoch, int(self.stats.first_bad), math.nan, t0)

    def _end_epoch(self, epoch: int, t0: float, elapsed: float) -> None:
        r, stats, seen = self.result, self.stats, len(self.split.y_train)
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
        """The figures made from the epochs. FLOPs are counted here, on the CPU, not at setup: a case
        that fails first (the one built to run out of GPU memory) never traces its huge input."""
        r = self.result
        counts = flops.count(self.case.model, self.case.stem, self.case.image_size)
        r.gmacs_fvcore, r.params_m = counts["gmacs_fvcore"], counts["params_m"]
        if r.energy_j is not None and r.epochs_done:
            r.energy_j_per_image = r.energy_j / (len(self.split.y_train) * r.epochs_done)
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
        if graph.Process.leaked_mb:
            r.cuda_graph_leaked_mb = graph.Process.leaked_mb

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
