"""A CPU stand-in for the CUDA-graph API that mnistbench.train uses, so the whole fast-GPU
control flow runs in the unit tests: warm-up on a side stream, grads set to None, capture,
a first replay, the in-place restore, one index copy and replay per step, the eager
partial batch, the statistics and the divergence check.

`torch.cuda.graph` records every aten op the body dispatches (a TorchDispatchMode), with
the very tensors each one read and wrote, and then undoes what the body did, since a real
capture runs nothing: tensors that existed before get their values back, and tensors the
capture allocated are filled with NaN (graph memory holds nothing meaningful until a
replay writes it). `CUDAGraph.replay()` runs the recorded ops again on the same tensors
and writes each result into the captured output, so the body's Python (branches,
autograd, the optimizer's and GradScaler's bookkeeping) runs once, at capture, as with a
real graph. A host read while capturing (`.item()`, `bool(t)`, `nonzero`) raises, as CUDA
does. Streams only log what was asked of them.

This proves our logic, not CUDA: kernels, stream ordering and memory pools are not emulated.
`ShapeLog` lists the shapes the kernels a GPU warms up for meet; `Bench` stands in for
pytest-benchmark's fixture.
"""

from __future__ import annotations

import contextlib
import dataclasses

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from mnistbench.train import graph as graph_path
from mnistbench.train import trainer as train

aten = torch.ops.aten
# Ops that need a value on the host: CUDA refuses them while a stream is capturing.
HOST_READS = {aten._local_scalar_dense.default, aten.is_nonzero.default, aten.nonzero.default,
              aten.masked_select.default, aten.equal.default}


def _tensors(tree) -> list[torch.Tensor]:
    return [t for t in tree_flatten(tree)[0] if isinstance(t, torch.Tensor)]


def _storage(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def _written(func, args, kwargs) -> list[torch.Tensor]:
    """The arguments an op writes in place, from its schema (Tensor(a!))."""
    out = []
    for i, arg in enumerate(func._schema.arguments):
        if arg.alias_info is not None and arg.alias_info.is_write:
            out += _tensors(args[i] if i < len(args) else kwargs.get(arg.name))
    return out


def _garbage(t: torch.Tensor) -> None:
    if t.dtype.is_floating_point or t.dtype.is_complex:
        t.fill_(float("nan"))
    elif t.dtype == torch.bool:
        t.fill_(True)
    else:
        t.fill_(torch.iinfo(t.dtype).max // 3)


class _Capture(TorchDispatchMode):
    def __init__(self, shim: CudaShim):
        super().__init__()
        self.shim = shim
        self.ops: list[tuple] = []
        self.saved: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # pre-capture values of written tensors
        self.born: set[int] = set()  # storages the capture allocated

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in HOST_READS:
            raise RuntimeError(f"CUDA error: operation not permitted when stream is capturing ({func})")
        if func.namespace == "profiler":
            return func(*args, **kwargs)
        if self._autocast_caching():
            raise RuntimeError("autocast's weight cache is on while capturing: the graph would keep stale casts")
        for t in _written(func, args, kwargs):
            if _storage(t) not in self.born and id(t) not in self.saved:
                self.saved[id(t)] = (t, t.clone())
        out = func(*args, **kwargs)
        inputs = {_storage(t) for t in _tensors((args, kwargs))}
        self.born.update(_storage(t) for t in _tensors(out) if _storage(t) not in inputs)
        self.ops.append((func, args, kwargs, out))
        self.shim.captured_ops.append(str(func))
        return out

    @staticmethod
    def _autocast_caching() -> bool:
        on = any(torch.is_autocast_enabled(d) for d in ("cpu", "cuda"))
        return on and torch.is_autocast_cache_enabled()

    def undo(self) -> None:
        """What a capture leaves: no effect on existing tensors, nothing meaningful in new ones."""
        with torch.no_grad():
            for *_, out in self.ops:
                for t in _tensors(out):
                    if _storage(t) in self.born and t.numel():
                        _garbage(t)
            for t, value in reversed(self.saved.values()):
                t.copy_(value)


class FakeGraph:
    def __init__(self, shim: CudaShim):
        self.shim, self.ops = shim, None

    def replay(self) -> None:
        if self.ops is None:
            raise RuntimeError("CUDA graph replayed before a capture ended")
        self.shim.log.append(("replay",))
        self.shim.replays += 1
        if self.shim.dead:
            raise RuntimeError(STICKY)
        if self.shim.fail_replay == "sticky":  # CUDA keeps it: every later CUDA call fails too
            self.shim.dead = True
            raise RuntimeError(STICKY)
        if self.shim.fail_replay:
            raise RuntimeError("CUDA error: invalid argument (shim)")
        with torch.no_grad():
            for func, args, kwargs, out in self.ops:
                fresh = func(*args, **kwargs)
                for old, new in zip(_tensors(out), _tensors(fresh), strict=True):
                    if _storage(old) != _storage(new):
                        old.copy_(new)


@dataclasses.dataclass(eq=False)
class FakeStream:
    shim: CudaShim
    name: str

    def wait_stream(self, other: FakeStream) -> None:
        self.shim.log.append(("wait_stream", self.name, other.name))


class _Trace(TorchDispatchMode):
    """Outside captures: which stream each op ran on, and copies into tensors (the index)."""

    def __init__(self, shim: CudaShim):
        super().__init__()
        self.shim = shim

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is aten.copy_.default:
            self.shim.log.append(("copy_into", _storage(args[0])))
        elif func in (aten._fused_adam_.default, aten._fused_sgd_.default):
            self.shim.log.append(("optimizer_step", self.shim.stream.name, self.shim.capturing))
        return out


STICKY = "CUDA error: an illegal memory access was encountered (shim)"
SECONDARY = "CUDA error: operation failed due to a previous error during capture (shim)"


class CudaShim:
    """Installs the stand-ins with pytest's monkeypatch; `log` holds what was asked, in order.

    `fail_capture`: capture_begin refuses. `fail_replay`: the first replay fails, "sticky" with an error
    CUDA keeps (every later synchronize and replay fails too). An error inside the captured body
    invalidates the capture as CUDA does: capture_end then raises a secondary error, with the first
    one as its context, and, as in torch's graph.__exit__, the thread is left on the capture stream.
    """

    def __init__(self, monkeypatch, fail_capture: bool = False, fail_replay: bool | str = False):
        self.log: list[tuple] = []
        self.captured_ops: list[str] = []
        self.replays = 0
        self.capturing = False
        self.dead = False
        self.fail_capture, self.fail_replay = fail_capture, fail_replay
        self.default = FakeStream(self, "default")
        self.stream = self.default
        cuda = torch.cuda
        monkeypatch.setattr(cuda, "CUDAGraph", lambda: FakeGraph(self))
        monkeypatch.setattr(cuda, "graph", self._graph)
        monkeypatch.setattr(cuda, "Stream", self._new_stream)
        monkeypatch.setattr(cuda, "stream", self._use_stream)
        monkeypatch.setattr(cuda, "current_stream", lambda device=None: self.stream)
        monkeypatch.setattr(cuda, "set_stream", self._set_stream)
        monkeypatch.setattr(cuda, "synchronize", self._synchronize)
        for name, value in (("off", None), ("leaked_mb", 0.0), ("side_stream", None)):  # a fresh process
            monkeypatch.setattr(graph_path.Process, name, value)
        # the stand-in has no allocator for a failed end of capture to break: any torch may capture here
        monkeypatch.setattr(graph_path, "GRAPH_MIN_TORCH", (0, 0))
        real_zero_grad = torch.optim.Optimizer.zero_grad

        def zero_grad(optimizer, set_to_none: bool = True):
            self.log.append(("zero_grad", set_to_none))
            return real_zero_grad(optimizer, set_to_none)

        monkeypatch.setattr(torch.optim.Optimizer, "zero_grad", zero_grad)

    def _synchronize(self, device=None) -> None:
        self.log.append(("synchronize",))
        if self.dead:
            raise RuntimeError(STICKY)

    def _set_stream(self, stream: FakeStream) -> None:
        self.log.append(("set_stream", stream.name))
        self.stream = stream

    def _new_stream(self, *args, **kwargs) -> FakeStream:
        stream = FakeStream(self, f"side{sum(1 for e in self.log if e[0] == 'new_stream')}")
        self.log.append(("new_stream", stream.name))
        return stream

    @contextlib.contextmanager
    def _use_stream(self, stream: FakeStream):
        previous, self.stream = self.stream, stream
        self.log.append(("enter_stream", stream.name))
        try:
            yield
        finally:
            self.log.append(("exit_stream", stream.name))
            self.stream = previous

    @contextlib.contextmanager
    def _graph(self, graph: FakeGraph, pool=None, stream=None, capture_error_mode: str = "global", **kwargs):
        self.log.append(("capture_begin", self.stream.name))
        if self.fail_capture:
            raise RuntimeError("CUDA error: operation not supported when stream is capturing (shim)")
        capture = _Capture(self)
        self.capturing, self.stream = True, FakeStream(self, "capture")  # the graph's own capture stream
        try:
            with capture:
                yield
        except Exception:
            self.capturing = False
            capture.undo()
            self.log.append(("capture_end", "invalidated"))
            raise RuntimeError(SECONDARY)  # noqa: B904 - as capture_end does: the first error is only its context
        self.capturing = False
        capture.undo()
        self.stream = self.default
        graph.ops = capture.ops
        self.log.append(("capture_end", len(capture.ops)))

    @contextlib.contextmanager
    def trace(self):
        """Log optimizer steps (with their stream) and copies while the block runs."""
        with _Trace(self):
            yield

    def graph_plan(self, monkeypatch, **changes) -> None:
        """Make train.plan_for give CPU cases the fast-GPU plan's CUDA graph (and any other changes)."""
        real = train.plan_for
        monkeypatch.setattr(train, "plan_for",
                            lambda case, device: dataclasses.replace(real(case, device), cuda_graph=True, **changes))


class ShapeLog(TorchDispatchMode):
    """(op, input shapes and dtypes) of the ops where a GPU pays for a first use: cuDNN
    algorithm selection and kernel loading for convolutions, batch norm and pooling, cuBLAS
    for matmuls, and the loss."""

    KERNELS = ("convolution", "batch_norm", "pool", "mm", "softmax", "nll_loss")

    def __init__(self):
        super().__init__()
        self.seen: set[tuple] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name
        if any(k in name for k in self.KERNELS):
            self.seen.add((name, tuple((tuple(t.shape), t.dtype) for t in _tensors((args, kwargs)))))
        return func(*args, **(kwargs or {}))


class Bench:
    """Just enough of pytest-benchmark's fixture for bench.run_* outside a benchmark session."""

    disabled, cprofile = True, False

    def __init__(self):
        self.extra_info = {}
