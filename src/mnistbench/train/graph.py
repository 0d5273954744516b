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
from packaging.version import Version
from torch import nn

from mnistbench.train.batches import TensorBatches
from mnistbench.train.errors import context_lost
from mnistbench.train.plan import sync
from mnistbench.train.step import WARMUP_STEPS, TrainStep

CHECK_GRAPH_RTOL = 1e-3  # graph vs eager weights after K steps: max |difference| / max |weight|, per tensor

_FALLBACKS_WARNED: set[str] = set()  # graph-capture failures already warned about in this process
GRAPH_MIN_TORCH = (2, 12)  # the first release whose allocator survives a failed cudaStreamEndCapture (#180395)
SECONDARY = "operation failed due to a previous error during capture"  # capture_end's words for "see before"


class Process:
    """What one capture leaves for every later one in this process. After a failed capture the thread
    may be left on the capture stream and the graph's private pool is never freed (pytorch#190308),
    so capturing stops for the rest of the process; every warm-up shares one side stream, since
    each new (cuBLAS handle, stream) pair keeps a workspace that empty_cache does not free."""

    side_stream = None
    off: str | None = None  # why capturing stopped, after the first failure
    leaked_mb: float = 0.0  # memory a failed capture left allocated in its pool


def side_stream():
    if Process.side_stream is None:
        Process.side_stream = torch.cuda.Stream()
    return Process.side_stream


def unavailable() -> str | None:
    """Why the graph path may not run in this process, or None: too old a torch, or an earlier failure."""
    if Version(torch.__version__).release[:2] < GRAPH_MIN_TORCH:
        return (f"torch {torch.__version__} lacks the fix for a failed cudaStreamEndCapture (pytorch#180395, "
                f"torch {'.'.join(map(str, GRAPH_MIN_TORCH))}): eager fast path")
    if Process.off is not None:
        return f"capture off in this process since an earlier capture failed ({Process.off})"
    return None


class CaptureFailed(RuntimeError):
    """The capture or its first replay failed; the message is the root cause."""


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
        replay uploads the graph: paid here, not in epoch 1). A warm-up step that fails is the
        case's error, not the capture's: it raises as it is."""
        side = side_stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):  # allocations, cuDNN/cuBLAS handles, optimizer and scaler state
                self._body()
        torch.cuda.current_stream().wait_stream(side)
        self.step.optimizer.zero_grad(set_to_none=True)
        graph, before = torch.cuda.CUDAGraph(), torch.cuda.current_stream()
        try:
            with torch.cuda.graph(graph):
                self._body()
            graph.replay()
        except torch.cuda.OutOfMemoryError:
            torch.cuda.set_stream(before)
            raise
        except Exception as exc:
            torch.cuda.set_stream(before)  # graph.__exit__ raised before it put the stream back
            raise CaptureFailed(root_cause(exc)) from exc
        self.graph = graph

    def __call__(self, index: torch.Tensor) -> None:
        self.index.copy_(index, non_blocking=True)
        self.graph.replay()


def root_cause(exc: BaseException) -> str:
    """The first error of a failed capture: capture_end's secondary error names nothing, the one that
    invalidated the capture sits in its context."""
    first = exc
    while SECONDARY in str(first) and first.__context__ is not None:
        first = first.__context__
    text = f"{type(first).__name__}: {(str(first).splitlines() or [''])[0]}"
    return text if first is exc else f"{text} (then at capture end: {SECONDARY})"


def capture(batches: TensorBatches, step: TrainStep) -> GraphStep | str:
    """The step captured and replayed once, or why that failed (then the case runs eagerly, and no
    later case of this process captures). Running out of memory, a warm-up error and an error that
    kills the CUDA context are not capture failures: they are the case's, raised as they are."""
    graph_step = GraphStep(batches, step)
    allocated = _allocated_mb()
    try:
        graph_step.capture()
    except CaptureFailed as exc:
        if any(context_lost(error) for error in _chain(exc.__cause__)):
            raise exc.__cause__ from None  # no fallback can run on a dead context
        reason = str(exc)
        Process.off = reason
        Process.leaked_mb += max(0.0, _allocated_mb() - allocated)
        if reason not in _FALLBACKS_WARNED:
            _FALLBACKS_WARNED.add(reason)
            warnings.warn(f"CUDA graph capture failed ({reason}); running the eager fast path instead "
                          "(recorded as cuda_graph_fallback)", RuntimeWarning, stacklevel=2)
        return reason
    return graph_step


def _chain(exc: BaseException | None):
    while exc is not None:
        yield exc
        exc = exc.__context__


def _allocated_mb() -> float:
    return torch.cuda.memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0


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
