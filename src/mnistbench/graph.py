"""The CUDA-graph path of a Trainer: capture, a safe fallback, and the check against eager.

On the fast path on a GPU the whole training step is captured once and replayed per batch
(step.GraphStep). A capture or first replay that fails falls back to the eager fast path
and says why (`cuda_graph_fallback`), because GPU code that can rarely be run must degrade
safely. `--mb-check-graph K` runs K steps through the graph and K eagerly from the same
start and records how far the weights drift apart. tests/cuda_shim.py stands in for the
CUDA-graph API so all of this runs on a CPU in the tests.
"""

from __future__ import annotations

import dataclasses
import warnings

import torch

from mnistbench.plan import sync
from mnistbench.step import GraphStep

CHECK_GRAPH_RTOL = 1e-3  # graph vs eager weights after K steps: max |difference| / max |weight|, per tensor

_FALLBACKS_WARNED: set[str] = set()  # graph-capture failures already warned about in this process


class GraphPath:
    """Trainer's graph methods; they use the trainer's model, optimizer, batches and result."""

    def _capture(self) -> None:
        """The graph path's warm-up; when capture or the first replay fails, the eager fast path."""
        graph_step = GraphStep(self.batches, self.train_step)
        try:
            graph_step.capture()
        except torch.cuda.OutOfMemoryError:
            raise  # the case does not fit: recorded as oom, not hidden behind a fallback
        except Exception as exc:  # noqa: BLE001 - any capture failure: run eagerly, say why
            self._fall_back(exc)
            return
        self.graph_step = graph_step

    def _fall_back(self, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
        self.plan = dataclasses.replace(self.plan, cuda_graph=False)
        self.result.cuda_graph, self.result.cuda_graph_fallback = False, reason
        for name in ("grad_scale", "found_inf"):  # left on the optimizer by a step cut short
            if hasattr(self.optimizer, name):
                delattr(self.optimizer, name)
        self.optimizer.zero_grad(set_to_none=True)  # grads may point into the failed graph's pool
        self.train_step.scaler = self._new_scaler()  # its bookkeeping may be mid-step
        self.train_step.autocast_cache = True
        if reason not in _FALLBACKS_WARNED:
            _FALLBACKS_WARNED.add(reason)
            warnings.warn(f"CUDA graph capture failed ({reason}); running the eager fast path instead "
                          "(recorded as cuda_graph_fallback)", RuntimeWarning, stacklevel=2)

    def _check_graph(self, steps: int) -> None:
        """`steps` full batches through the graph, then the same batches eagerly, from the same
        start; and eagerly once more, to measure what the device's own run-to-run noise is
        (kernels that add with atomics). The weights must agree within CHECK_GRAPH_RTOL or twice
        that noise. Undone afterwards, like the warm-up."""
        cold = self._cold_state()
        n, size = len(self.split.y_train), self.case.batch_size
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.case.seed + 1)).to(self.device)
        batches = [order[(torch.arange(size, device=self.device) + i * size) % n] for i in range(steps)]

        def run(graph: bool) -> list[torch.Tensor]:
            self._restore(cold)
            for index in batches:
                if graph:
                    self.graph_step(index)
                else:
                    self.train_step(*self.batches.gather(index))
            sync(self.device)
            return [p.detach().clone() for p in self.model.parameters()]

        graph_w, eager_w, again_w = run(True), run(False), run(False)
        self._restore(cold)
        r = self.result
        r.graph_check_steps = steps
        r.graph_check_max_abs = max((g - e).abs().max().item() for g, e in zip(graph_w, eager_w, strict=True))
        r.graph_check_max_rel = _max_rel(graph_w, eager_w)
        r.graph_check_eager_rel = _max_rel(again_w, eager_w)
        r.graph_check_tol_rel = max(CHECK_GRAPH_RTOL, 2 * r.graph_check_eager_rel)
        r.graph_check_pass = r.graph_check_max_rel <= r.graph_check_tol_rel


def _max_rel(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """Largest per-tensor max|a - b| / max|b|: a difference measured against the tensor's own scale."""
    return max(((x - y).abs().max() / y.abs().max().clamp_min(1e-12)).item() for x, y in zip(a, b, strict=True))
