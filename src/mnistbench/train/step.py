"""One training step, and what a step needs around it.

`TrainStep` is the step itself (graph-safe: no host reads; graph.GraphStep captures it);
`EpochStats` accumulates loss, accuracy, updates and the first
non-finite step on the device; `snapshot`/`restore` undo warm-up steps in place;
`PeakMemory` measures a case's own peak. None of them holds the Trainer, so a finished
case's tensors are freed as soon as the Trainer is.
"""

from __future__ import annotations

import resource

import torch
from torch import nn

from mnistbench.train.plan import AMP_DTYPES, Plan

WARMUP_STEPS = 3  # full-batch steps before the timed run (on the graph path: before capture)



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


class PeakMemory:
    """A case's own peak memory. On a GPU: the most allocated since the case began, less
    what was allocated when it began (anything earlier cases left behind, recorded as the
    baseline). On a CPU: the process's peak RSS, which cannot be reset per case."""

    def __init__(self, device: torch.device):
        self.device = device
        self.baseline = 0
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            self.baseline = torch.cuda.memory_allocated(device)

    def fields(self) -> dict:
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device)
            return {"peak_mem_mb": (peak - self.baseline) / 2**20, "mem_baseline_mb": self.baseline / 2**20,
                    "peak_mem_source": "cuda_max_allocated"}
        return {"peak_mem_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "peak_mem_source": "process_max_rss"}


class EpochStats:
    """Loss, accuracy, the first non-finite step and applied updates, on the device: no host sync."""

    def __init__(self, device: torch.device):
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        self.step = torch.zeros((), dtype=torch.int64, device=device)
        self.updates = torch.zeros((), dtype=torch.int64, device=device)  # counted only under GradScaler
        self.first_bad = torch.full((), -1, dtype=torch.int64, device=device)

    def reset(self) -> None:
        for t in (self.loss_sum, self.correct, self.step, self.updates):
            t.zero_()
        self.first_bad.fill_(-1)

    def update(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        self.step += 1
        self.loss_sum += loss.detach().double() * y.numel()
        self.correct += (logits.detach().argmax(1) == y).sum()
        fresh_bad = (self.first_bad < 0) & ~torch.isfinite(loss.detach())
        self.first_bad.copy_(torch.where(fresh_bad, self.step, self.first_bad))

    def count_update(self, optimizer, args, kwargs) -> None:
        """An optimizer step post-hook. GradScaler skips `step()` of an unfused optimizer when
        gradients overflowed, and hands a fused one `found_inf` (set while it steps) instead."""
        found_inf = getattr(optimizer, "found_inf", None)
        self.updates += 1 if found_inf is None else (found_inf == 0)


class TrainStep:
    """One optimizer step on one batch: forward, loss, backward, optimizer, statistics.

    Graph-safe (no host reads). It holds what a step touches and nothing that holds it, so
    a GraphStep keeping it never ties a finished case's tensors into a reference cycle.
    """

    def __init__(self, model: nn.Module, optimizer, scaler, stats: EpochStats, plan: Plan, device: torch.device):
        self.model, self.optimizer, self.scaler, self.stats = model, optimizer, scaler, stats
        self.criterion = nn.CrossEntropyLoss()
        self.memory = torch.channels_last if plan.channels_last else torch.contiguous_format
        self.dtype = AMP_DTYPES[plan.amp_dtype]
        self.device_type = device.type
        # autocast's weight-cast cache must not outlive a graph capture (CUDA graphs + AMP docs)
        self.autocast_cache = not plan.cuda_graph

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        xb = xb.contiguous(memory_format=self.memory)
        with torch.autocast(self.device_type, dtype=self.dtype, enabled=self.dtype is not None,
                            cache_enabled=self.autocast_cache):
            logits = self.model(xb)
            loss = self.criterion(logits, yb)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.stats.update(loss, logits, yb)
        return loss
