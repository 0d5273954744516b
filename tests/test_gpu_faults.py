"""What the GPU path does when the GPU fails it, shown on a CPU: the out-of-memory case, a failed
capture, a dead CUDA context, NVML on the right device, MIG, cuDNN's autotuner, cuBLAS workspaces,
and energy. Through tests/cuda_shim.py's stand-in for CUDA graphs and a stand-in NVML."""

import math
import os
import sys
import types

import pytest
import torch
from cuda_shim import SECONDARY, STICKY, Bench, CudaShim
from test_machine import FakeNvml
from test_suite import run_suite

from mnistbench.cases import grids
from mnistbench.cases.case import TrainCase
from mnistbench.cases.floors import Floor
from mnistbench.report.sections import report_blocks
from mnistbench.results.store import ResultsLog, read_results
from mnistbench.scale import launch
from mnistbench.suite import bench, machine, plugin, selection
from mnistbench.train import energy, flops, graph
from mnistbench.train import trainer as train
from mnistbench.train.errors import classify
from mnistbench.train.plan import plan_for, set_deterministic, set_math_modes
from mnistbench.train.trainer import Trainer

SMALL = dict(train_limit=40, eval_limit=32, batch_size=16, model="tiny")  # control flow: a tiny net
TINY = dict(train_limit=112, eval_limit=64, batch_size=32, model="tiny")


pytestmark = pytest.mark.usefixtures("tiny_model")  # the loop on conftest.TinyNet, not ResNet-18


# ---------------------------------------------------------------- 1. the out-of-memory case


def _failing(monkeypatch, error: Exception) -> None:
    def fail(self):
        raise error

    monkeypatch.setattr(Trainer, "train_epoch", fail)


def test_the_oom_case_passes_only_when_its_record_says_oom(mnist, tmp_path, monkeypatch):
    log, oom_case, real = ResultsLog(tmp_path / "r.jsonl"), TrainCase(**TINY, expect="oom"), Trainer.train_epoch
    _failing(monkeypatch, torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 151.00 GiB"))
    with pytest.raises(pytest.xfail.Exception, match="ran out of memory, as built to"):
        bench.run_train(Bench(), oom_case, mnist, log)
    _failing(monkeypatch, RuntimeError("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED. unable to find an engine"))
    with pytest.raises(pytest.fail.Exception, match="CUDNN_STATUS_NOT_SUPPORTED"):  # an error is no expected oom
        bench.run_train(Bench(), oom_case, mnist, log)
    monkeypatch.setattr(Trainer, "train_epoch", real)
    with pytest.raises(pytest.fail.Exception, match="built to run out of GPU memory, but it finished"):
        bench.run_train(Bench(), oom_case, mnist, log)
    assert [r["status"] for r in read_results(log.path)] == ["oom", "error", "error"]


def test_the_plugin_no_longer_marks_the_oom_case_xfail_whatever_happens():
    (param,) = plugin._params(TrainCase(expect="oom", device="cuda"), measurement=False, repeats=1)
    assert not [m for m in param.marks if m.name == "xfail"]


@pytest.mark.parametrize("words", ["CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`",
                                   "cuDNN error: CUDNN_STATUS_ALLOC_FAILED", "CUDA error: out of memory"])
def test_cudnn_and_cublas_allocation_failures_are_oom_with_their_words_kept(mnist, tmp_path, monkeypatch, words):
    assert classify(RuntimeError(words)) == ("oom", False)
    _failing(monkeypatch, RuntimeError(words))
    log = ResultsLog(tmp_path / "r.jsonl")
    with pytest.raises(pytest.fail.Exception, match="CUDA out of memory: tiny at batch 32"):
        bench.run_train(Bench(), TrainCase(**TINY), mnist, log)
    (rec,) = read_results(log.path)
    assert rec["status"] == "oom" and words in rec["message"]


@pytest.mark.parametrize("gib", [16, 80, 141])
def test_the_oom_case_is_sized_so_that_its_first_batch_alone_exceeds_the_gpu(gib):
    total = gib * 2**30
    size = grids.oom_image_size(total)
    assert grids.OOM_BATCH * size**2 * 4 > total >= grids.OOM_BATCH * (size - 64) ** 2 * 4
    (case,) = [c for c in grids.gpu_smoke(grids.GridOptions(gpu_memory_bytes=total)) if c.expect == "oom"]
    assert (case.image_size, case.batch_size, case.model) == (size, grids.OOM_BATCH, "resnet50")


# ---------------------------------------------------------------- 2. a failed capture


def _host_read_in_the_step(monkeypatch) -> None:
    """A .item() inside the captured step: CUDA invalidates the capture, capture_end then fails."""
    update = train.EpochStats.update
    monkeypatch.setattr(train.EpochStats, "update", lambda self, loss, *a: (loss.item(), update(self, loss, *a)))


def test_a_failed_capture_records_its_root_cause_and_puts_the_stream_back(mnist, shim, monkeypatch):
    _host_read_in_the_step(monkeypatch)
    with pytest.warns(RuntimeWarning, match="CUDA graph capture failed"):
        trainer = Trainer(TrainCase(**SMALL), mnist)
    reason = trainer.result.cuda_graph_fallback
    assert reason.startswith("RuntimeError: CUDA error: operation not permitted when stream is capturing")
    assert reason.endswith(f"(then at capture end: {graph.SECONDARY})") and SECONDARY not in reason
    assert torch.cuda.current_stream() is shim.default  # not left on the invalidated capture's stream
    trainer.train_epoch()  # the eager fast path runs on


def test_after_one_failed_capture_no_later_case_of_the_process_captures(mnist, shim, monkeypatch):
    real_update = train.EpochStats.update
    _host_read_in_the_step(monkeypatch)
    with pytest.warns(RuntimeWarning):
        Trainer(TrainCase(**SMALL), mnist)
    monkeypatch.setattr(train.EpochStats, "update", real_update)  # a later case whose step would capture fine
    assert graph.Process.off is not None
    later = Trainer(TrainCase(**SMALL), mnist)
    assert later.graph_step is None and not later.result.cuda_graph
    assert later.result.cuda_graph_fallback.startswith("capture off in this process since an earlier capture failed")


def test_a_warm_up_error_is_the_case_error_not_a_capture_fallback(mnist, shim, monkeypatch):
    real = train.TrainStep.__call__

    def step(self, xb, yb):
        if shim.stream.name.startswith("side"):
            raise ValueError("a bug in the step")
        return real(self, xb, yb)

    monkeypatch.setattr(train.TrainStep, "__call__", step)
    with pytest.raises(ValueError, match="a bug in the step"):
        Trainer(TrainCase(**SMALL), mnist)
    assert graph.Process.off is None


def test_the_graph_path_runs_only_on_a_torch_with_the_end_capture_fix(mnist, shim, monkeypatch):
    monkeypatch.setattr(graph, "GRAPH_MIN_TORCH", (2, 12))  # the real gate, which the shim lifts
    monkeypatch.setattr(torch, "__version__", "2.11.0+cu128")
    trainer = Trainer(TrainCase(**SMALL), mnist)
    assert trainer.graph_step is None and not trainer.result.cuda_graph
    assert "lacks the fix for a failed cudaStreamEndCapture (pytorch#180395" in trainer.result.cuda_graph_fallback
    assert not [e for e in shim.log if e[0] == "capture_begin"]


def test_one_side_stream_serves_every_capture_of_the_process(mnist, shim):
    Trainer(TrainCase(**SMALL), mnist)
    Trainer(TrainCase(**SMALL, optimizer="adam"), mnist)
    assert [e for e in shim.log if e[0] == "new_stream"] == [("new_stream", "side0")]
    assert len([e for e in shim.log if e[0] == "capture_begin"]) == 2


def test_free_memory_also_clears_cublas_workspaces(monkeypatch):
    cleared = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: cleared.append("cache"))
    monkeypatch.setattr(torch._C, "_cuda_clearCublasWorkspaces", lambda: cleared.append("cublas"), raising=False)
    bench.free_memory()
    bench.free_memory(cuda=False)  # after a sticky error no CUDA call may run
    assert cleared == ["cache", "cublas"]


# ---------------------------------------------------------------- 3. a dead CUDA context


def test_a_sticky_replay_error_is_no_fallback_but_a_lost_context(mnist, monkeypatch, tmp_path):
    shim = CudaShim(monkeypatch, fail_replay="sticky")
    shim.graph_plan(monkeypatch)
    log = ResultsLog(tmp_path / "r.jsonl")
    with pytest.raises(bench.ContextLost, match="illegal memory access"):
        bench.run_train(Bench(), TrainCase(**SMALL), mnist, log)
    (rec,) = read_results(log.path)
    assert rec["status"] == "error" and STICKY in rec["message"]


def test_a_dead_cuda_context_stops_the_session_and_resume_runs_the_rest(pytester, data_dir, monkeypatch):
    real = Trainer.train_epoch

    def dies_once(self):
        monkeypatch.setattr(Trainer, "train_epoch", real)
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(Trainer, "train_epoch", dies_once)
    monkeypatch.setattr(bench, "floor_for", lambda case, n: Floor(0.0, "no floor: 64 images learn little"))
    pick = ("-m", "smoke and cpu", "-k", "(mnist-r18 and sgd) or flops-r18", "--mb-axis", "train_limit=64",
            "--mb-axis", "eval_limit=32", "--benchmark-json=run.json")
    stopped = run_suite(pytester, data_dir, *pick, "--mb-results=r.jsonl")
    assert stopped.ret == plugin.CONTEXT_LOST_EXIT
    stopped.stdout.fnmatch_lines(["*the CUDA context died; the session stopped*", "*illegal memory access*",
                                  "*1 case(s) not run: flops-r18-1x28*",
                                  "*--mb-resume*r.jsonl*"])
    assert (pytester.path / "run.json").exists()
    (rec,) = read_results(pytester.path / "r.jsonl")
    assert rec["status"] == "error"
    resumed = run_suite(pytester, data_dir, *pick, "--mb-resume=r.jsonl")
    assert resumed.ret == 0
    resumed.assert_outcomes(passed=2)  # the case that died runs again, with the one never run


def test_launch_resumes_a_shard_stopped_by_a_dead_context_once(tmp_path):
    lost = launch.Outcome(False, "pytest exit 75", resumable=True)
    shards = [launch.Shard(i, 2, str(tmp_path), ("benchmarks",), str(tmp_path)) for i in (0, 1)]
    submitted = []

    class Executor:
        def batch(self):
            return __import__("contextlib").nullcontext()

        def submit(self, shard):
            submitted.append(shard.index)
            return f"job-{shard.index}-again"

    jobs, outcomes = launch.resume_lost(Executor(), ["job-0", "job-1"], shards,
                                        [launch.Outcome(True, "finished"), lost],
                                        lambda more, some: [lost] * len(more), say=lambda line: None)
    assert submitted == [1] and jobs == ["job-0", "job-1-again"]
    assert [o.resumable for o in outcomes] == [False, True]  # once: a second stop is the shard's failure


# ---------------------------------------------------------------- 4-6. NVML, the machine check, MIG


class UuidNvml(FakeNvml):
    """Four GPUs on the node; torch sees only the one NVML numbers 3, on PCI domain 1."""

    def __init__(self):
        super().__init__(events=0)
        self.asked = []

    def nvmlDeviceGetHandleByUUID(self, uuid):
        self.asked.append(uuid)
        if uuid != b"GPU-5d1e0c3a-0000-4000-8000-00000000003":
            raise RuntimeError("NVML_ERROR_NOT_FOUND")
        return "gpu3"

    def nvmlDeviceGetHandleByPciBusId(self, bus_id):
        self.asked.append(bus_id)
        if bus_id != b"00000001:1b:02.0":
            raise RuntimeError("NVML_ERROR_NOT_FOUND")
        return "gpu3"

    def nvmlDeviceGetHandleByIndex(self, index):
        raise AssertionError("NVML's index is not torch's under CUDA_VISIBLE_DEVICES")

    def nvmlDeviceGetClockInfo(self, handle, which):
        assert handle == "gpu3"
        return super().nvmlDeviceGetClockInfo(handle, which)

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        assert handle == "gpu3"
        unseen = 4_000_000  # no such PID here: this process, under its host PID (a container)
        return [types.SimpleNamespace(pid=unseen, usedGpuMemory=2**30),
                types.SimpleNamespace(pid=1, usedGpuMemory=3 * 2**30)]

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        self.energy = getattr(self, "energy", 1_000_000) + 2500
        return self.energy


@pytest.fixture
def gpu3(monkeypatch):
    fake = UuidNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    props = types.SimpleNamespace(uuid="5d1e0c3a-0000-4000-8000-00000000003", pci_bus_id=0x1B, pci_device_id=2,
                                  pci_domain_id=1)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: props)
    return fake, props


def test_nvml_finds_the_gpu_by_uuid_never_by_index(gpu3):
    fake, _ = gpu3
    assert machine.gpu_state(0)["sm_clock_mhz"] == 1410
    assert fake.asked[0] == b"GPU-5d1e0c3a-0000-4000-8000-00000000003"


def test_nvml_falls_back_to_the_full_pci_bus_id_with_its_domain(gpu3):
    fake, props = gpu3
    props.uuid = ""
    assert machine.gpu_state(0)["temperature_c"] == 84
    assert fake.asked == [b"00000001:1b:02.0"]


def test_the_machine_check_sees_only_our_gpus_and_not_our_own_host_pid(gpu3, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)  # this process holds a context
    assert machine._gpu_processes() == [{"gpu": 0, "pid": 1, "used_mib": 3072}]
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)  # no context yet: both are others'
    assert [p["pid"] for p in machine._gpu_processes()] == [4_000_000, 1]


def test_a_mig_slice_gets_no_peak_and_so_no_mfu():
    assert flops.gpu_peak("NVIDIA H100 80GB HBM3 MIG 1g.10gb") is None
    assert flops.gpu_peak("NVIDIA H100 80GB HBM3").tflops == 989.0


# ---------------------------------------------------------------- 7, 9. cuDNN's autotuner, cuBLAS's workspace


def test_cudnn_autotuning_is_on_for_the_fast_gpu_path_only():
    gpu, saved = torch.device("cuda"), torch.backends.cudnn.benchmark
    try:
        for fields, on in ((dict(), True), (dict(path="classic"), False), (dict(deterministic=True), False)):
            case = TrainCase(device="cuda", **fields)
            set_math_modes(case, plan_for(case, gpu), gpu)
            assert torch.backends.cudnn.benchmark is on, fields
        cpu = TrainCase()
        set_math_modes(cpu, plan_for(cpu, torch.device("cpu")), torch.device("cpu"))
        assert torch.backends.cudnn.benchmark is False
    finally:
        torch.backends.cudnn.benchmark = saved
        set_deterministic(False)


def test_cublas_workspace_is_set_before_cuda_starts_only_for_a_deterministic_gpu_selection(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    selection.set_cublas_workspace([TrainCase(device="cuda")], cuda=True)
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    selection.set_cublas_workspace([TrainCase(device="cuda", deterministic=True)], cuda=True)
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    set_deterministic(True)  # too late once CUDA has started: cuBLAS read it already
    set_deterministic(False)
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    assert "cublas_workspace_config" in machine.session_facts()


# ---------------------------------------------------------------- energy


def _rapl(root, counters: list[int]):
    """A powercap tree: one package whose counter reads `counters` in turn, and a core zone to ignore."""
    package = root / "intel-rapl:0"
    (package / "intel-rapl:0:0").mkdir(parents=True)
    (package / "name").write_text("package-0\n")
    (package / "max_energy_range_uj").write_text("262143328850\n")
    readings = iter(counters)

    def read_uj(zone):
        return next(readings)

    return read_uj


def test_cpu_energy_comes_from_the_rapl_package_counter_across_its_wraparound(tmp_path, monkeypatch):
    monkeypatch.setattr(energy.Zone, "read_uj", _rapl(tmp_path, [5, 262143328000, 1_000_850]))
    monkeypatch.setattr(energy, "POWERCAP", tmp_path)
    meter = energy.EnergyMeter(torch.device("cpu"))
    assert meter.source.startswith("RAPL package-0 (the whole CPU package")
    assert meter.stop(meter.start()) == pytest.approx((262143328850 - 262143328000 + 1 + 1_000_850) / 1e6)


def test_a_training_case_records_energy_where_the_cpu_reports_it_and_none_where_not(mnist, tmp_path, monkeypatch):
    assert Trainer(TrainCase(**TINY), mnist).result.energy_source is None  # no powercap here: absent
    counter = iter(range(0, 10**9, 3_000_000))
    monkeypatch.setattr(energy.Zone, "read_uj", lambda zone: next(counter))
    _rapl(tmp_path, [])
    monkeypatch.setattr(energy, "POWERCAP", tmp_path)
    r = train.train(TrainCase(**TINY, epochs=2), mnist)
    assert r.energy_j == pytest.approx(2 * 3.0) and r.energy_source.startswith("RAPL")
    assert r.energy_j_per_image == pytest.approx(r.energy_j / (2 * TINY["train_limit"]))


def test_gpu_energy_is_the_nvml_total_energy_counter_of_our_own_gpu(gpu3, monkeypatch):
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: "NVIDIA H200")
    meter = energy.EnergyMeter(torch.device("cuda"))
    assert meter.source == "NVML total energy counter of GPU 0 (NVIDIA H200)"
    assert meter.stop(meter.start()) == pytest.approx(2.5)  # millijoules, 2500 apart


def test_the_report_shows_energy_where_recorded(cpu):
    assert "## Energy" not in report_blocks(cpu)
    measured = [dict(r, energy_j=12.5, energy_j_per_image=0.0125, energy_source="RAPL package-0") for r in cpu]
    blocks = report_blocks(measured)
    (table,) = [b for b in blocks if getattr(b, "name", "") == "energy"]
    assert table.rows and all(row[3].mean == 12.5 for row in table.rows)
    assert math.isclose(table.rows[0][4].mean, 0.0125)


def test_a_failed_capture_leaves_its_pool_counted_in_every_later_record(mnist, shim, monkeypatch):
    allocated = iter([100.0, 164.0])  # MiB before the capture, and after it failed
    monkeypatch.setattr(graph, "_allocated_mb", lambda: next(allocated))
    _host_read_in_the_step(monkeypatch)
    with pytest.warns(RuntimeWarning):
        first = train.train(TrainCase(**SMALL), mnist)
    assert graph.Process.leaked_mb == 64.0 and first.cuda_graph_leaked_mb == 64.0
    later = train.train(TrainCase(**SMALL, optimizer="adam"), mnist)  # no capture: the pool is still held
    assert later.cuda_graph_leaked_mb == 64.0
