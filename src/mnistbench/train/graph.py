"""The CUDA-graph path: the full-batch step captured once and replayed, a safe fallback, the check.

On the fast path on a GPU the whole training step is captured once and replayed per batch
(GraphStep). A capture or first replay that fails leaves the case on the eager fast path and
says why (`cuda_graph_fallback`), because GPU code that can rarely be run must degrade
safely: `capture` returns the graph or the reason, and the Trainer, which owns the plan and
the record, falls back. `check_against_eager` runs K steps through the graph and K eagerly
from the same start and measures how far the weights drift apart (`--mb-check-graph K`).
tests/cuda_shim.py stands in for the CUDA-graph API so all of this runs on a CPU in the tests.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import nn

from mnistbench.train.batches import TensorBatches
from mnistbench.train.plan import sync
from mnistbench.train.step import WARMUP_STEPS, TrainStep

CHECK_GRAPH_RTOL = 1e-3  # graph vs eager weights after K steps: max |difference| / max |weight|, per tensor

_FALLBACKS_WARNED: set[str] = set()  # graph-capture failures already warned about in this process


class GraphStep:
    """The full-batch training step captured once as a CUDA graph and replayed per batch.

    Captured: gather the batch from the device-resident split by index, normalise (and
    resize), forward, loss, backward, optimizer step (GradScaler's too under fp16), and the
    epoch statistics. Per step the host only copies the next index slice into the static
    index tensor and replays.
    """

    def __init__(self, batches: TensorBatches, step: TrainStep):
        self.batches, self.step = batches, step
        self.index = batches.order_buffer()
        self.graph = None

    def _body(self) -> None:
        self.step(*self.batches.gather(self.index))

    def capture(self) -> None:
        """PyTorch's CUDA-graph rules, in order: warm up on a side stream, set grads to None so
        backward allocates them from the graph's pool, capture, then replay once (the first
        replay uploads the graph: paid here, not in epoch 1)."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):  # allocations, cuDNN/cuBLAS handles, optimizer and scaler state
                self._body()
        torch.cuda.current_stream().wait_stream(side)
        self.step.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._body()
        graph.replay()
        self.graph = graph

    def __call__(self, index: torch.Tensor) -> None:
        self.index.copy_(index, non_blocking=True)
        self.graph.replay()


def capture(batches: TensorBatches, step: TrainStep) -> GraphStep | str:
    """The step captured and replayed once, or why that failed (then the case runs eagerly).
    Running out of memory is not a capture failure: the case does not fit, and is recorded so."""
    graph_step = GraphStep(batches, step)
    try:
        graph_step.capture()
    except torch.cuda.OutOfMemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - any capture failure: run eagerly, say why
        reason = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
        if reason not in _FALLBACKS_WARNED:
            _FALLBACKS_WARNED.add(reason)
            warnings.warn(f"CUDA graph capture failed ({reason}); running the eager fast path instead "
                          "(recorded as cuda_graph_fallback)", RuntimeWarning, stacklevel=2)
        return reason
    return graph_step


def check_against_eager(graph_step: GraphStep, step: TrainStep, model: nn.Module, reset: Callable[[], None],
                        steps: int, seed: int) -> dict:
    """`steps` full batches through the graph, then the same batches eagerly, from the same start
    (`reset` puts the model back there); and eagerly once more, to measure the device's own
    run-to-run noise (kernels that add with atomics). The weights must agree within
    CHECK_GRAPH_RTOL or twice that noise. Returns the graph_check_* fields of the record."""
    batches = graph_step.batches
    n, size, device = len(batches.y), len(graph_step.index), batches.x.device
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 1)).to(device)
    indices = [order[(torch.arange(size, device=device) + i * size) % n] for i in range(steps)]

    def run(graph: bool) -> list[torch.Tensor]:
        reset()
        for index in indices:
            if graph:
                graph_step(index)
            else:
                step(*batches.gather(index))
        sync(device)
        return [p.detach().clone() for p in model.parameters()]

    graph_w, eager_w, again_w = run(True), run(False), run(False)
    reset()
    max_rel, eager_rel = _max_rel(graph_w, eager_w), _max_rel(again_w, eager_w)
    tol_rel = max(CHECK_GRAPH_RTOL, 2 * eager_rel)
    return {"graph_check_steps": steps,
            "graph_check_max_abs": max((g - e).abs().max().item() for g, e in zip(graph_w, eager_w, strict=True)),
            "graph_check_max_rel": max_rel, "graph_check_eager_rel": eager_rel, "graph_check_tol_rel": tol_rel,
            "graph_check_pass": max_rel <= tol_rel}


def _max_rel(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """Largest per-tensor max|a - b| / max|b|: a difference measured against the tensor's own scale."""
    return max(((x - y).abs().max() / y.abs().max().clamp_min(1e-12)).item() for x, y in zip(a, b, strict=True))
