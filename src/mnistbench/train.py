"""Train one TrainCase and say where the time went.

`Trainer` splits a run into the parts a benchmark must keep apart: setup (model,
optimizer, data to the device, warm-up and, on a GPU, CUDA-graph capture), `train_epoch`
(the only timed part; it synchronises the device before returning), and `after_epoch` /
`finish` (validation and test, timed apart). `train(case, split)` runs them in order for
code that does not need pytest-benchmark; the benchmarks drive the same methods through
`benchmark.pedantic`, one round per epoch.

Two paths compute the same thing (same batches per epoch, same optimizer steps, same
epochs, optimizer and learning rate) at different speeds:
- classic: the write-ups' loop. torch DataLoader over per-sample PIL transforms, eager,
  fp16 autocast + GradScaler on CUDA, fp32 on CPU.
- fast: the split held on the device as uint8 and batched by shuffled index; on CUDA
  also bf16 autocast, channels_last, fused optimizers and the whole step (batch gather,
  normalise, forward, backward, optimizer, loss/accuracy accumulation) captured in one
  CUDA graph, so a batch-16 step is one launch instead of hundreds. `plan_for` says what
  each path does on each device; the plan is recorded with every result.
"""

from __future__ import annotations

import math
import os
import resource
import statistics
import time
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from mnistbench import flops
from mnistbench.config import TrainCase
from mnistbench.data import Split, TensorBatches, classic_loader, to_input
from mnistbench.models import build_model
from mnistbench.record import cpu_model

WARMUP_STEPS = 3
DIVERGENCE_CHECK_EVERY = 500  # steps between host reads of the loss on a GPU
_DTYPES = {"off": None, "fp16": torch.float16, "bf16": torch.bfloat16}

# What the fast path does on a CPU, kept only where it won in measurement on a 2-core
# AVX-512 machine (reports/cpu-fast-path/results.md): the device-resident loader and the
# fused optimizer (Adam's step over 11M parameters is a third of a batch-16 step).
# channels_last, bf16 autocast and torch.compile lost or broke even there.
CPU_FAST = {"channels_last": False, "amp": "off", "fused_optimizer": True}


@dataclass(frozen=True)
class Plan:
    """What a case's path means on its device: recorded in every result."""

    path: str
    loader: str  # dataloader | tensor
    amp_dtype: str  # off | fp16 | bf16
    channels_last: bool
    fused_optimizer: bool
    cuda_graph: bool  # the full-batch step is one captured graph; a partial last batch runs eagerly
    eval_batch: int


def plan_for(case: TrainCase, device: torch.device) -> Plan:
    cuda = device.type == "cuda"
    if case.path == "classic":
        amp = case.amp if case.amp != "auto" else ("fp16" if cuda else "off")
        return Plan("classic", case.resolved_loader, amp, False, False, False, 1024)
    loader = case.resolved_loader
    if cuda:
        amp = case.amp if case.amp != "auto" else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
        # GradScaler reads the scale on the host every step, so fp16 steps cannot be captured
        graph = loader == "tensor" and amp != "fp16"
        return Plan("fast", loader, amp, True, True, graph, 4096)
    amp = case.amp if case.amp != "auto" else CPU_FAST["amp"]
    return Plan("fast", loader, amp, CPU_FAST["channels_last"], CPU_FAST["fused_optimizer"], False, 1024)


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
    images_per_s_median: float = 0.0  # over the median epoch: the steady-state rate
    mfu_pct: float | None = None  # 6 x fvcore MACs x images/s over the GPU's bf16 dense peak
    setup_time_s: float = 0.0  # model build, data to device, warm-up, capture: not in train_time_s
    warmup_time_s: float = 0.0  # the part of setup spent warming up (and capturing a graph)
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
    plan_loader: str = ""
    amp_dtype: str = "off"
    channels_last: bool = False
    fused_optimizer: bool = False
    cuda_graph: bool = False
    partial_batch: str = "none"  # none | eager (the last, smaller batch ran outside the graph)
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
    return cpu_model()


def resolve_device(case: TrainCase) -> torch.device:
    if case.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "This case needs a CUDA GPU and none is visible to torch "
            f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}). "
            "Run the cpu cases instead (-m cpu)."
        )
    return torch.device(case.device)


def make_optimizer(case: TrainCase, params, fused: bool = False) -> torch.optim.Optimizer:
    """Fused: one kernel over all parameters; on CUDA also capturable (step count on the device)."""
    extra = {"fused": True} if fused else {}
    if case.optimizer == "sgd":
        return torch.optim.SGD(params, lr=case.lr, momentum=0.9, **extra)
    if fused and case.device == "cuda":
        extra["capturable"] = True
    return torch.optim.Adam(params, lr=case.lr, **extra)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def set_deterministic(on: bool) -> None:
    """Set for every case, on or off, so one case's choice never leaks into the next.

    On a GPU, runs differ without it because cuDNN picks algorithms per shape and some
    backward kernels (index_put, scatter) add with atomics in a varying order; with it,
    cuBLAS needs a fixed workspace (CUBLAS_WORKSPACE_CONFIG), set here before first use.
    """
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = on


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def restore(model: nn.Module, optimizer: torch.optim.Optimizer, saved: dict[str, torch.Tensor]) -> None:
    """Undo warm-up steps in place (a captured graph keeps pointing at the same tensors).

    Zeroed SGD momentum and Adam moments/step are exactly a fresh optimizer's first step:
    SGD's first buffer is the gradient itself (0.9 * 0 + g), Adam starts from zeros.
    """
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            tensor.copy_(saved[name])
        for state in optimizer.state.values():
            for value in state.values():
                if torch.is_tensor(value):
                    value.zero_()


class EpochStats:
    """Loss, accuracy and the first non-finite step, accumulated on the device: no host sync."""

    def __init__(self, device: torch.device):
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        self.step = torch.zeros((), dtype=torch.int64, device=device)
        self.first_bad = torch.full((), -1, dtype=torch.int64, device=device)

    def reset(self) -> None:
        for t in (self.loss_sum, self.correct, self.step):
            t.zero_()
        self.first_bad.fill_(-1)

    def update(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        self.step += 1
        self.loss_sum += loss.detach().double() * y.numel()
        self.correct += (logits.detach().argmax(1) == y).sum()
        fresh_bad = (self.first_bad < 0) & ~torch.isfinite(loss.detach())
        self.first_bad.copy_(torch.where(fresh_bad, self.step, self.first_bad))


@torch.inference_mode()
def evaluate(model: nn.Module, x_u8, y, split: Split, case: TrainCase, plan: Plan, device) -> float:
    """Accuracy in % over uint8 images, in large batches; never part of the timed region."""
    model.eval()
    dtype = _DTYPES[plan.amp_dtype]
    memory = torch.channels_last if plan.channels_last else torch.contiguous_format
    correct = torch.zeros((), dtype=torch.int64, device=device)
    for start in range(0, len(y), plan.eval_batch):
        xb = to_input(x_u8[start : start + plan.eval_batch].to(device), split, case.image_size)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(xb.contiguous(memory_format=memory))
        correct += (logits.argmax(1) == y[start : start + plan.eval_batch].to(device)).sum()
    model.train()
    return 100.0 * correct.item() / max(len(y), 1)


class GraphStep:
    """The full-batch training step captured once as a CUDA graph and replayed per batch.

    Captured: gather the batch from the device-resident split by index, normalise (and
    resize), forward, loss, backward, optimizer step, and the epoch statistics. Per step the
    host only copies the next index slice into the static index tensor and replays.
    """

    def __init__(self, trainer: Trainer):
        self.t = trainer
        self.index = trainer.batches.order_buffer()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):  # allocations, cuDNN/cuBLAS handles, optimizer state
                self._body()
        torch.cuda.current_stream().wait_stream(side)
        trainer.optimizer.zero_grad(set_to_none=True)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self._body()

    def _body(self) -> None:
        t = self.t
        xb, yb = t.batches.gather(self.index)
        t.step_on(xb, yb)

    def __call__(self, index: torch.Tensor) -> None:
        self.index.copy_(index, non_blocking=True)
        self.graph.replay()


class Trainer:
    """One case's model, optimizer and data, prepared so that only training is timed."""

    def __init__(self, case: TrainCase, split: Split):
        t0 = time.perf_counter()
        self.case = case
        self.device = resolve_device(case)
        self.plan = plan_for(case, self.device)
        self.split = split.limited(case.train_limit, case.eval_limit, case.split_seed)
        set_deterministic(case.deterministic)
        self.memory = torch.channels_last if self.plan.channels_last else torch.contiguous_format
        torch.manual_seed(case.seed)
        self.model = build_model(case.model, case.stem).to(self.device, memory_format=self.memory)
        self.optimizer = make_optimizer(case, self.model.parameters(), self.plan.fused_optimizer)
        self.criterion = nn.CrossEntropyLoss()
        self.dtype = _DTYPES[self.plan.amp_dtype]
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.plan.amp_dtype == "fp16")
        self.stats = EpochStats(self.device)
        if self.plan.loader == "tensor":
            self.batches = TensorBatches(self.split, case, self.device)
        else:
            self.batches = classic_loader(self.split, case)
        self.result = TrainResult(
            plan_loader=self.plan.loader, amp_dtype=self.plan.amp_dtype,
            channels_last=self.plan.channels_last, fused_optimizer=self.plan.fused_optimizer,
            cuda_graph=self.plan.cuda_graph, device_name=device_name(self.device),
            **self.split.sizes, **flops.count(case.model, case.stem, case.image_size),
        )
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self.graph_step = None
        self.result.warmup_time_s = self._warm_up()
        self.result.setup_time_s = time.perf_counter() - t0

    def _warm_up(self) -> float:
        """Steps on the real model (and the graph capture), then every weight, buffer and
        optimizer moment put back: the timed run starts exactly where a cold one would."""
        t0 = time.perf_counter()
        saved = snapshot(self.model)
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            if self.plan.cuda_graph:
                self.graph_step = GraphStep(self)
            else:
                n = min(self.case.batch_size, len(self.split.y_train))
                xb = to_input(self.split.x_train[:n].to(self.device), self.split, self.case.image_size)
                yb = self.split.y_train[:n].to(self.device)
                for _ in range(WARMUP_STEPS):
                    self.step_on(xb, yb)
        sync(self.device)
        restore(self.model, self.optimizer, saved)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.scaler.is_enabled())
        self.stats.reset()
        sync(self.device)
        return time.perf_counter() - t0

    def step_on(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """One optimizer step; graph-safe (no host reads). Returns the loss tensor."""
        xb = xb.contiguous(memory_format=self.memory)
        # autocast's weight-cast cache must not outlive a graph capture (CUDA graphs + AMP docs)
        autocast = torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None,
                                  cache_enabled=not self.plan.cuda_graph)
        with autocast:
            logits = self.model(xb)
            loss = self.criterion(logits, yb)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.stats.update(loss, logits, yb)
        return loss

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
        full = self.case.batch_size
        for step, (xb, yb) in enumerate(self._batches(), start=1):
            if yb is None and len(xb) == full:
                self.graph_step(xb)
            elif yb is None:  # the partial last batch: same computation, outside the graph
                r.partial_batch = "eager"
                self.step_on(*self.batches.gather(xb))
            else:
                loss = self.step_on(xb.to(device, non_blocking=True), yb.to(device, non_blocking=True))
                # On the CPU reading the loss costs nothing; on a GPU it would stall the queue.
                if device.type == "cpu" and not math.isfinite(loss.item()):
                    self._diverged(epoch, step, loss.item(), t0)
            if device.type == "cuda" and step % DIVERGENCE_CHECK_EVERY == 0 and stats.first_bad.item() >= 0:
                self._diverged(epoch, int(stats.first_bad), math.nan, t0)
            r.steps += 1
        sync(device)
        elapsed = time.perf_counter() - t0
        seen = len(self.split.y_train)
        if stats.first_bad.item() >= 0:
            self._diverged(epoch, int(stats.first_bad), stats.loss_sum.item() / seen, t0, elapsed)
        r.epochs_done = epoch
        r.epoch_time_s.append(elapsed)
        r.train_time_s += elapsed
        r.epoch_train_loss.append(stats.loss_sum.item() / seen)
        r.epoch_train_acc_pct.append(100.0 * stats.correct.item() / seen)

    def _diverged(self, epoch: int, step: int, loss: float, t0: float, elapsed: float | None = None) -> None:
        sync(self.device)
        self.result.train_time_s += elapsed if elapsed is not None else time.perf_counter() - t0
        self._finish_record()
        raise Diverged(epoch, step, loss, self.result)

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

    def _finish_record(self) -> None:
        r = self.result
        images = len(self.split.y_train) * r.epochs_done
        r.images_per_s = images / r.train_time_s if r.train_time_s > 0 else 0.0
        if r.epoch_time_s:
            r.images_per_s_median = len(self.split.y_train) / statistics.median(r.epoch_time_s)
            r.mfu_pct = flops.mfu_pct(r.gmacs_fvcore, r.images_per_s_median, r.device_name)
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
            self.model, self.split.x_test, self.split.y_test, self.split, self.case, self.plan, self.device
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
