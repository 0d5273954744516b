"""The fast-GPU control flow on a CPU, through tests/cuda_shim.py's stand-in for CUDA graphs.

What a CPU can show: the graph path computes bitwise what the eager step computes, warm-up
and capture leave a cold start, the calls come in the order PyTorch's CUDA-graph rules
require, the first timed epoch meets no new shape, failures fall back, --check-graph
measures, and a finished case frees its tensors. What it cannot: CUDA itself (kernels,
streams, memory pools); the README lists what only a GPU run shows.
"""

import gc
import math
import weakref

import pytest
import torch
from cuda_shim import Bench, CudaShim, ShapeLog

from mnistbench.cases.case import TrainCase
from mnistbench.cases.floors import Floor
from mnistbench.results.store import ResultsLog, read_results
from mnistbench.suite import bench
from mnistbench.train import graph
from mnistbench.train import trainer as train
from mnistbench.train.models import build_model
from mnistbench.train.trainer import Diverged, Trainer

# 40 images in batches of 16: two full batches through the graph and a partial one of 8
SMALL = dict(train_limit=40, eval_limit=32, batch_size=16, model="tiny")  # control flow: a tiny net


pytestmark = pytest.mark.usefixtures("tiny_model")  # the loop on conftest.TinyNet, not ResNet-18


@pytest.fixture
def scaler_without_fp16(monkeypatch):
    """amp fp16 with autocast left off: GradScaler (scale, inf check, skipped updates, scale
    update) runs as under fp16, without fp16 convolutions, which are very slow on a CPU."""
    monkeypatch.setitem(train.AMP_DTYPES, "fp16", None)


def _set_scale(trainer: Trainer, scale: float) -> None:
    state = trainer.train_step.scaler.state_dict()
    trainer.train_step.scaler.load_state_dict({**state, "scale": scale})


def _run(case, split, epochs=2, scale=None) -> Trainer:
    trainer = Trainer(case, split)
    if scale is not None:
        _set_scale(trainer, scale)
    for _ in range(epochs):
        trainer.train_epoch()
        trainer.after_epoch()
    return trainer


def _assert_same_state(a: Trainer, b: Trainer) -> None:
    for (name, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        sa, sb = a.optimizer.state[p], b.optimizer.state[q]
        assert sa.keys() == sb.keys()
        for key in sa:
            assert torch.equal(torch.as_tensor(sa[key]), torch.as_tensor(sb[key])), key
    fields = ("epoch_train_loss", "epoch_train_acc_pct", "epoch_val_acc_pct", "steps", "skipped_steps")
    assert [getattr(a.result, f) for f in fields] == [getattr(b.result, f) for f in fields]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_graph_path_equals_the_eager_step_bitwise(mnist, monkeypatch, optimizer):
    case = TrainCase(**SMALL, optimizer=optimizer)
    eager = _run(case, mnist)
    shim = CudaShim(monkeypatch)
    shim.graph_plan(monkeypatch)
    graph = _run(case, mnist)
    assert graph.result.cuda_graph and not eager.result.cuda_graph
    assert shim.replays == 1 + 2 * 2  # the warm-up replay, then two full batches per epoch
    assert graph.result.partial_batch == "eager"
    _assert_same_state(graph, eager)


def test_graph_path_under_autocast_equals_the_eager_step_bitwise(mnist, monkeypatch):
    """Autocast stays on under capture (bf16, which a CPU runs fast), with its weight-cast cache off:
    the shim refuses a capture with the cache on, as a graph would keep stale casts."""
    case = TrainCase(**SMALL, optimizer="adam", amp="bf16")
    eager = _run(case, mnist)
    CudaShim(monkeypatch).graph_plan(monkeypatch)
    graph = _run(case, mnist)
    assert graph.result.cuda_graph and graph.result.amp_dtype == "bf16" and graph.result.cuda_graph_fallback is None
    _assert_same_state(graph, eager)


def test_graph_path_with_grad_scaler_skips_the_same_updates(mnist, monkeypatch, scaler_without_fp16):
    """fp16 is captured too (GradScaler hands the fused optimizer found_inf on the device); a
    scale of 2^127 overflows the first steps, which both paths must skip alike (ResNet-18: the tiny net's
    gradients are too small to overflow even there)."""
    case = TrainCase(**{**SMALL, "model": "resnet18"}, optimizer="adam", amp="fp16")
    eager = _run(case, mnist, scale=2.0**127)
    CudaShim(monkeypatch).graph_plan(monkeypatch)
    graph = _run(case, mnist, scale=2.0**127)
    assert graph.result.cuda_graph and graph.result.skipped_steps > 0
    assert graph.train_step.scaler.get_scale() == eager.train_step.scaler.get_scale()
    assert graph.train_step.scaler.get_scale() == 2.0**127 * 0.5**graph.result.skipped_steps
    _assert_same_state(graph, eager)


def test_warm_up_capture_and_restore_leave_a_cold_start(mnist, shim, scaler_without_fp16):
    case = TrainCase(**SMALL, optimizer="adam", amp="fp16")
    trainer = Trainer(case, mnist)
    torch.manual_seed(case.seed)
    cold = build_model(case.model, case.stem)
    for (name, a), b in zip(trainer.model.state_dict().items(), cold.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    for state in trainer.optimizer.state.values():  # moments and step count: a fresh optimizer's zeros
        assert all(not torch.is_tensor(v) or not v.any() for v in state.values())
    stats = trainer.stats
    assert [int(t) for t in (stats.step, stats.updates, stats.correct, stats.first_bad)] == [0, 0, 0, -1]
    assert float(stats.loss_sum) == 0.0
    assert trainer.train_step.scaler.get_scale() == torch.amp.GradScaler("cpu").get_scale()
    assert trainer.result.warmup_steps == train.WARMUP_STEPS + 2  # + the first replay + the partial batch


def test_calls_come_in_the_order_the_cuda_graph_rules_require(mnist, shim):
    with shim.trace():
        trainer = Trainer(TrainCase(**SMALL, optimizer="adam"), mnist)
        setup = len(shim.log)
        trainer.train_epoch()
    log = shim.log
    at = {event: log.index(event) for event in
          [("new_stream", "side0"), ("wait_stream", "side0", "default"), ("enter_stream", "side0"),
           ("exit_stream", "side0"), ("wait_stream", "default", "side0"), ("capture_begin", "default")]}
    # warm-up on a side stream that first waits for the current one, which then waits for it
    assert sorted(at.values()) == list(at.values())
    steps = [e for e in log if e[0] == "optimizer_step"]
    assert steps[: train.WARMUP_STEPS] == [("optimizer_step", "side0", False)] * train.WARMUP_STEPS
    # grads set to None right before capture, so backward allocates them from the graph's pool
    begin = at[("capture_begin", "default")]
    assert log[begin - 1] == ("zero_grad", True)
    end = next(i for i, e in enumerate(log) if e[0] == "capture_end")
    # captured on the graph's own stream, as torch.cuda.graph does
    assert [e for e in log[begin:end] if e[0] == "optimizer_step"] == [("optimizer_step", "capture", True)]
    # one replay before the timed run; then every replay gets a fresh index copied in before it
    assert [e for e in log[:setup] if e[0] == "replay"] == [("replay",)]
    index = trainer.graph_step.index.untyped_storage().data_ptr()
    replays = [i for i, e in enumerate(log) if e[0] == "replay" and i > setup]
    assert len(replays) == 2
    for previous, i in zip([setup, *replays], replays, strict=False):
        assert ("copy_into", index) in log[previous:i]
    # the captured step reads nothing on the host (the shim raises on .item() while capturing)
    assert "aten._local_scalar_dense.default" not in shim.captured_ops


@pytest.mark.parametrize("path", ["graph", "classic", "fast-eager"])
def test_first_timed_epoch_meets_no_new_shape(mnist, monkeypatch, path):
    """cuDNN/cuBLAS first-use costs (algorithm choice, kernel loading) belong in the warm-up:
    the partial last batch's shape and the first replay included."""
    if path == "graph":
        CudaShim(monkeypatch).graph_plan(monkeypatch)
    case = TrainCase(**SMALL, path="classic" if path == "classic" else "fast")
    setup, epoch = ShapeLog(), ShapeLog()
    with setup:
        trainer = Trainer(case, mnist)
    with epoch:
        trainer.train_epoch()
    assert epoch.seen and epoch.seen <= setup.seen, sorted(epoch.seen - setup.seen)


def test_capture_failure_falls_back_to_the_eager_fast_path(mnist, monkeypatch):
    case = TrainCase(**SMALL, optimizer="adam")
    eager = _run(case, mnist)
    shim = CudaShim(monkeypatch, fail_capture=True)
    shim.graph_plan(monkeypatch)
    monkeypatch.setattr(graph, "_FALLBACKS_WARNED", set())
    with pytest.warns(RuntimeWarning, match="CUDA graph capture failed .*operation not supported"):
        fallen = _run(case, mnist)
    assert not fallen.result.cuda_graph and "operation not supported" in fallen.result.cuda_graph_fallback
    _assert_same_state(fallen, eager)
    Trainer(case, mnist)  # the same failure again: recorded, not warned again (warnings are errors here)


@pytest.mark.parametrize("failure", ["host read in the captured step", "first replay"])
def test_other_graph_failures_fall_back_too(mnist, monkeypatch, failure):
    shim = CudaShim(monkeypatch, fail_replay=failure == "first replay")
    shim.graph_plan(monkeypatch)
    monkeypatch.setattr(graph, "_FALLBACKS_WARNED", set())
    if failure.startswith("host read"):
        update = train.EpochStats.update
        monkeypatch.setattr(train.EpochStats, "update", lambda self, loss, *a: (loss.item(), update(self, loss, *a)))
    with pytest.warns(RuntimeWarning, match="CUDA graph capture failed"):
        trainer = Trainer(TrainCase(**SMALL), mnist)
    assert trainer.result.cuda_graph_fallback.startswith("RuntimeError: CUDA error")
    trainer.train_epoch()
    assert trainer.result.steps == 3 and trainer.graph_step is None


def test_check_graph_agrees_on_a_cpu_and_leaves_the_timed_run_unchanged(mnist, shim):
    case = TrainCase(**SMALL, optimizer="adam")
    checked = Trainer(case, mnist, check_graph=5)
    r = checked.result
    assert (r.graph_check_steps, r.graph_check_max_abs, r.graph_check_max_rel, r.graph_check_pass) == (5, 0, 0, True)
    assert r.graph_check_tol_rel == graph.CHECK_GRAPH_RTOL
    plain = Trainer(case, mnist)
    for trainer in (checked, plain):
        trainer.train_epoch()
    _assert_same_state(checked, plain)


def test_check_graph_catches_a_graph_that_reads_a_stale_batch(mnist, shim, monkeypatch, tmp_path):
    monkeypatch.setattr(graph.GraphStep, "__call__", lambda self, index: self.graph.replay())  # no index copy
    log = ResultsLog(tmp_path / "r.jsonl")
    with pytest.raises(pytest.fail.Exception, match="CUDA graph and the eager step disagree after 5 steps"):
        bench.run_train(Bench(), TrainCase(**SMALL, optimizer="adam"), mnist, log, check_graph=5)
    (rec,) = read_results(log.path)
    assert rec["status"] == "error" and rec["graph_check_pass"] is False
    assert rec["graph_check_max_rel"] > rec["graph_check_tol_rel"]


def test_graph_path_stops_a_diverged_run_at_its_check_with_every_step_counted(mnist, monkeypatch):
    case = TrainCase(train_limit=160, eval_limit=100, batch_size=16, optimizer="sgd", lr=1e6, model="tiny")
    with pytest.raises(Diverged) as eager:  # the eager CPU path reads every loss
        train.train(case, mnist)
    CudaShim(monkeypatch).graph_plan(monkeypatch)
    monkeypatch.setattr(train, "DIVERGENCE_CHECK_EVERY", 2)
    with pytest.raises(Diverged, match=r"diverged at epoch 1, step \d+") as graph:
        Trainer(case, mnist).train_epoch()
    # the same first bad step, found on the device by the first check after it (every 2nd
    # step here), which stops the epoch of 10 steps there with every step taken counted
    assert graph.value.step == eager.value.step < 9
    assert graph.value.partial.steps == 2 * math.ceil(graph.value.step / 2)


def test_a_finished_graph_case_frees_its_tensors_without_a_garbage_collection(mnist, shim, tmp_path):
    held = []
    real = Trainer.__init__

    def spy(self, *args, **kwargs):
        real(self, *args, **kwargs)
        held.append((weakref.ref(self.model), weakref.ref(self.graph_step)))

    gc.collect()
    gc.disable()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(Trainer, "__init__", spy)
            mp.setattr(bench, "floor_for", lambda case, n: Floor(0.0, "no floor: 40 images"))
            bench.run_train(Bench(), TrainCase(**SMALL), mnist, ResultsLog(tmp_path / "r.jsonl"))
            trainer = Trainer(TrainCase(**SMALL), mnist)
            del trainer  # no reference cycle: plain reference counting frees it
        assert all(model() is None and graph() is None for model, graph in held)
    finally:
        gc.enable()
