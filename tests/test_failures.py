"""Nothing lost, clear errors: diverged runs, out-of-memory, a killed grid and --resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mnistbench import bench
from mnistbench.config import TrainCase
from mnistbench.floors import Floor
from mnistbench.results import ResultsLog, finished_keys, read_results
from mnistbench.train import Trainer

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(train_limit=320, eval_limit=200, batch_size=32)


class Bench:
    """Just enough of pytest-benchmark's fixture for bench.run_* outside a benchmark session."""

    disabled, cprofile = True, False

    def __init__(self):
        self.extra_info = {}


def test_diverged_run_is_recorded_and_fails_with_epoch_and_step(mnist, tmp_path):
    log = ResultsLog(tmp_path / "r.jsonl")
    case = TrainCase(**TINY, optimizer="sgd", lr=1e6)
    with pytest.raises(pytest.fail.Exception, match=r"diverged at epoch 1, step \d+ \(loss=(nan|inf)\)"):
        bench.run_train(Bench(), case, mnist, log)
    (rec,) = read_results(log.path)
    assert rec["status"] == "diverged" and rec["case_id"] == case.id
    assert rec["steps"] >= 1 and "Lower the learning rate" in rec["message"]


def test_out_of_memory_is_recorded_with_model_and_batch_and_the_next_case_runs(mnist, tmp_path, monkeypatch):
    log = ResultsLog(tmp_path / "r.jsonl")
    real = Trainer.train_epoch

    def oom(self):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(Trainer, "train_epoch", oom)
    big = TrainCase(**{**TINY, "batch_size": 64}, model="resnet50")
    with pytest.raises(pytest.fail.Exception, match="CUDA out of memory: resnet50 at batch 64, 28px"):
        bench.run_train(Bench(), big, mnist, log)
    monkeypatch.setattr(Trainer, "train_epoch", real)
    bench.run_train(Bench(), TrainCase(train_limit=1000, eval_limit=500), mnist, log)
    first, second = read_results(log.path)
    assert first["status"] == "oom" and "GiB free" in first["message"] and first["batch_size"] == 64
    assert second["status"] == "ok"


def test_below_floor_is_recorded_then_fails(mnist, tmp_path, monkeypatch):
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
    with pytest.warns(UserWarning, match=r"skipped unreadable line\(s\) \[2\]"):
        assert len(read_results(log.path)) == 2


def test_foreign_results_file_names_itself(tmp_path):
    path = tmp_path / "other.jsonl"
    path.write_text('{"hello": 1}\n')
    with pytest.raises(ValueError, match="other.jsonl: line 1 is not an mnistbench result record"):
        read_results(path)


def _count(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_killed_grid_keeps_finished_cases_and_resume_runs_the_rest(data_dir, tmp_path):
    results = tmp_path / "results.jsonl"
    picked = "smoke-mnist-r18-bs16-sgd or flops"
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "benchmarks" / "test_smoke.py"), f"--rootdir={ROOT}",
           "-p", "no:cacheprovider", f"--data-dir={data_dir}", "--offline", "-q", "-k", picked]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([*cmd, f"--results={results}"], cwd=tmp_path, env=env,
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
    resumed = subprocess.run([*cmd, f"--resume={results}", "-rs"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-2000:]
    assert f"already recorded ok in {results}" in resumed.stdout
    assert f"{4 - len(kept)} passed, {len(kept)} skipped" in resumed.stdout
    final = read_results(results)
    assert len(final) == 4 and len({r["case_id"] for r in final}) == 4
    assert done <= finished_keys(results)
    json.dumps(final)  # every line is a complete record
