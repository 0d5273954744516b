"""Nothing lost, clear errors: diverged runs, out-of-memory and other failures, warnings,
a killed grid and --resume, and the GPU check on a machine without a GPU."""

import json
import os
import signal
import subprocess
import sys
import time
import warnings
import weakref
from pathlib import Path

import pytest
import torch
from cuda_shim import Bench

from mnistbench.cases.case import TrainCase
from mnistbench.cases.floors import Floor
from mnistbench.results.store import ResultsLog, finished_keys, read_results
from mnistbench.suite import bench, gpu_cases, gpu_check
from mnistbench.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
# the failure paths, on conftest.TinyNet (the tiny_model fixture): what fails is the loop around it
TINY = dict(train_limit=112, eval_limit=64, batch_size=32, model="tiny")


def test_diverged_run_is_recorded_and_fails_with_epoch_and_step(mnist, tmp_path):
    log = ResultsLog(tmp_path / "r.jsonl")
    case = TrainCase(**{**TINY, "model": "resnet18"}, optimizer="sgd", lr=1e6)  # BN keeps a tiny net finite
    with pytest.raises(pytest.fail.Exception, match=r"diverged at epoch 1, step \d+ \(loss=(nan|inf)\)"):
        bench.run_train(Bench(), case, mnist, log)
    (rec,) = read_results(log.path)
    assert rec["status"] == "diverged" and rec["case_id"] == case.id
    assert rec["steps"] >= 1 and "Lower the learning rate" in rec["message"]


def test_out_of_memory_is_recorded_with_model_and_batch_and_the_next_case_runs(mnist, tmp_path, monkeypatch,
                                                                               tiny_model):
    log, real_epoch, real_available = ResultsLog(tmp_path / "r.jsonl"), Trainer.train_epoch, torch.cuda.is_available
    model, alive_when_measured = [], []

    def oom(self):
        model.append(weakref.ref(self.model))
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    def mem_get_info(device=None):  # free memory is measured once the failed case's tensors are gone
        alive_when_measured.append(model[0]() is not None)
        return 70 * 2**30, 80 * 2**30

    monkeypatch.setattr(Trainer, "train_epoch", oom)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", mem_get_info)
    big = TrainCase(**{**TINY, "batch_size": 64})
    with pytest.raises(pytest.fail.Exception, match="CUDA out of memory: tiny at batch 64, 28px; 70.0 of 80.0"):
        bench.run_train(Bench(), big, mnist, log)
    assert alive_when_measured == [False]
    monkeypatch.setattr(Trainer, "train_epoch", real_epoch)
    monkeypatch.setattr(torch.cuda, "is_available", real_available)
    monkeypatch.setattr(bench, "floor_for", lambda case, n: Floor(0.0, "no floor: the next case only has to run"))
    bench.run_train(Bench(), TrainCase(**TINY), mnist, log)
    first, second = read_results(log.path)
    assert first["status"] == "oom" and "GiB free" in first["message"] and first["batch_size"] == 64
    assert second["status"] == "ok"


@pytest.mark.parametrize("error", [
    RuntimeError("cuDNN error: CUDNN_STATUS_EXECUTION_FAILED\nmore lines of CUDA detail"),
    KeyError("a bug"),
])
def test_any_other_failure_is_recorded_as_error_then_fails_and_the_next_case_runs(mnist, tmp_path, monkeypatch,
                                                                                   error, tiny_model):
    log, real_epoch = ResultsLog(tmp_path / "r.jsonl"), Trainer.train_epoch

    def fail(self):
        raise error

    monkeypatch.setattr(Trainer, "train_epoch", fail)
    with pytest.raises(pytest.fail.Exception, match=type(error).__name__):
        bench.run_train(Bench(), TrainCase(**TINY), mnist, log)
    monkeypatch.setattr(Trainer, "train_epoch", real_epoch)
    monkeypatch.setattr(bench, "floor_for", lambda case, n: Floor(0.0, "no floor"))
    bench.run_train(Bench(), TrainCase(**TINY), mnist, log)
    first, second = read_results(log.path)
    assert first["status"] == "error" and second["status"] == "ok"
    assert first["message"] == f"{type(error).__name__}: {str(error).splitlines()[0]}"
    assert first["n_train"] == TINY["train_limit"]  # the partial result: what was set up before it failed


def test_a_warning_during_a_case_is_recorded_not_raised(mnist, tmp_path, monkeypatch, tiny_model):
    """tests/ run with filterwarnings = error; a benchmark case records the warning and passes."""
    log = ResultsLog(tmp_path / "r.jsonl")
    real = Trainer.after_epoch

    def after_epoch(self):
        warnings.warn("a torch warning nobody has seen yet", UserWarning, stacklevel=1)
        real(self)

    monkeypatch.setattr(Trainer, "after_epoch", after_epoch)
    monkeypatch.setattr(bench, "floor_for", lambda case, n: Floor(0.0, "no floor"))
    rec = bench.run_train(Bench(), TrainCase(**TINY, epochs=2), mnist, log)
    assert rec["status"] == "ok" and len(rec["warnings"]) == 1
    assert rec["warnings"][0].startswith("UserWarning: a torch warning nobody has seen yet (test_failures.py:")
    assert read_results(log.path)[0]["warnings"] == rec["warnings"]
    with pytest.raises(UserWarning):  # outside a case, warnings are errors again
        warnings.warn("after the case", UserWarning, stacklevel=1)


def test_below_floor_is_recorded_then_fails(mnist, tmp_path, monkeypatch, tiny_model):
    log = ResultsLog(tmp_path / "r.jsonl")
    monkeypatch.setattr(bench, "floor_for", lambda case, n: Floor(99.9, "test floor"))
    with pytest.raises(pytest.fail.Exception, match=r"below the floor 99.9% \(test floor\)"):
        bench.run_train(Bench(), TrainCase(**TINY), mnist, log)
    assert read_results(log.path)[0]["status"] == "below_floor"


def test_torn_last_line_is_skipped_with_a_warning_and_appending_goes_on(tmp_path):
    log = ResultsLog(tmp_path / "r.jsonl")
    rec = {"schema": "mnistbench.result/1", "kind": "flops", "status": "ok", "model": "resnet18"}
    log.append(rec)
    with open(log.path, "a") as fh:
        fh.write('{"schema": "mnistbench.result/1", "kind": "fl')  # killed mid-write
    log.append(rec)
    with pytest.warns(UserWarning, match=r"skipped unreadable line\(s\) \[3\]"):  # after the header and one record
        assert len(read_results(log.path)) == 2


def test_foreign_results_file_names_itself(tmp_path):
    path = tmp_path / "other.jsonl"
    path.write_text('{"hello": 1}\n')
    with pytest.raises(ValueError, match="other.jsonl: line 1 is not an mnistbench result record"):
        read_results(path)


def _count(path: Path) -> int:
    """Finished records, not lines: the session header is a line too."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a line caught mid-write is not a record yet
        return len(read_results(path)) if path.exists() else 0


def test_killed_grid_keeps_finished_cases_and_resume_runs_the_rest(data_dir, tmp_path, pytester):
    results = tmp_path / "results.jsonl"
    picked = "smoke-mnist-r18-bs16-sgd or flops"
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "benchmarks" / "test_smoke.py"), f"--rootdir={ROOT}",
           "-p", "no:cacheprovider", f"--mb-data-dir={data_dir}", "--mb-offline", "-q", "-m", "cpu", "-k", picked,
           "--mb-axis", "train_limit=400", "--mb-axis", "eval_limit=200"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([*cmd, f"--mb-results={results}"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while _count(results) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = read_results(results)
    assert 1 <= len(kept) < 4, "the kill should land after the first of four cases"
    assert all(r["status"] == "ok" for r in kept)

    done = finished_keys(results)
    resumed = pytester.runpytest_inprocess(*cmd[3:], f"--mb-resume={results}", "-rs")  # the same arguments
    assert resumed.ret == 0, resumed.stdout.str()[-2000:]
    assert f"already recorded ok in {results}" in resumed.stdout.str()
    resumed.assert_outcomes(passed=4 - len(kept), skipped=len(kept))
    final = read_results(results)
    assert len(final) == 4 and len({r["case_id"] for r in final}) == 4
    assert done <= finished_keys(results)
    json.dumps(final)  # every line is a complete record


def test_gpu_check_on_a_machine_without_cuda_says_so_and_runs_nothing(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("nothing may run"))
    assert gpu_check.main(["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no CUDA device visible to torch") and "run this on a GPU machine" in err
    assert len(err.splitlines()) == 1 and not any(tmp_path.iterdir())


def test_gpu_check_runs_the_packaged_gpu_smoke_set_and_throughput_then_the_report(tmp_path):
    folder = tmp_path / "gpu" / gpu_check.slug("NVIDIA H100 80GB HBM3")
    assert folder.name == "nvidia-h100-80gb-hbm3"
    options = gpu_check.Options(tmp_path / "gpu", "/data", None, 20)
    smoke, throughput, report = gpu_check.commands(folder, options, python="py")
    assert smoke == ["py", "-m", "pytest", f"{gpu_cases.__file__}::TestGpuSmoke", "-m", "gpu",
                     "-p", "mnistbench.suite.plugin", "-p", "no:cacheprovider", "--mb-offline",
                     "--mb-data-dir=/data", "--mb-check-graph=20", f"--benchmark-json={folder / 'smoke.json'}",
                     f"--mb-results={folder / 'smoke.jsonl'}"]
    assert throughput[3].endswith("::TestGpuThroughput") and not any("check-graph" in a for a in throughput)
    assert f"--mb-results={folder / 'throughput.jsonl'}" in throughput
    assert report == ["py", "-m", "mnistbench", "report", str(folder / "smoke.jsonl"),
                      str(folder / "throughput.jsonl"), "--out", str(folder)]


def test_the_gpu_check_selection_is_collected_from_the_installed_package_outside_a_checkout(pytester, data_dir):
    """What `mnistbench gpu-check` runs needs no benchmarks/ folder: the selection ships in the package."""
    result = pytester.runpytest_inprocess(f"{gpu_cases.__file__}::TestGpuSmoke", "-m", "gpu", "--collect-only",
                                          "-q", f"--mb-data-dir={data_dir}", "-p", "no:cacheprovider")
    ids = [line for line in result.stdout.lines if "::test_gpu_smoke[" in line]
    assert result.ret == 0 and len(ids) == 10, result.stdout.str()[-2000:]  # every GPU case of the smoke preset
    assert any("expect-oom" in line for line in ids)  # the case built to run out of memory among them
