"""mnistbench launch: arguments, placement, the Slurm submission, and a tiny grid in two local
shards against the same grid in one process."""

import importlib.util
import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from mnistbench.results.record import config_key
from mnistbench.results.runfolder import RunFolder
from mnistbench.scale import launch

ROOT = Path(__file__).resolve().parents[1]
needs_submitit = pytest.mark.skipif(importlib.util.find_spec("submitit") is None,
                                    reason="submitit is not installed: pip install -e '.[scale]'")
# a short training case, an SVM and a FLOP count: a few seconds of work on one core
PICK = "(mnist-r18 and sgd) or flops-r18 or mnist-poly"


def grid(data_dir, pick: str = PICK) -> list[str]:
    return [str(ROOT / "benchmarks"), f"--rootdir={ROOT}", "-p", "no:cacheprovider", f"--mb-data-dir={data_dir}",
            "--mb-offline", "-m", "smoke and cpu", "-k", pick, "--mb-axis", "train_limit=320",
            "--mb-axis", "eval_limit=200"]


@pytest.mark.parametrize("argv, expected", [
    (["--", "benchmarks", "--mb-shard", "0/2"], "--mb-shard in the pytest arguments: launch gives each shard"),
    (["--", "benchmarks", "--benchmark-json=x.json"], "--benchmark-json=x.json in the pytest arguments"),
    (["--", "benchmarks", "-n", "2"], "-n in the pytest arguments"),
    (["--", "benchmarks", "-n4"], "-n4 in the pytest arguments"),
    (["--shards", "2"], "give the pytest selection after --"),
    (["--executor", "slurm", "--", "benchmarks"], "--executor slurm needs --shards N"),
    (["--shards", "0", "--", "benchmarks"], "expected a whole number greater than 0, got '0'"),
])
def test_arguments_launch_cannot_honour_are_usage_errors(argv, expected, capsys):
    with pytest.raises(SystemExit) as stopped:
        launch.parse_args(argv)
    assert stopped.value.code == 2
    assert expected in capsys.readouterr().err


def test_arguments_before_and_after_the_separator():
    args = launch.parse_args(["--shards", "3", "--slurm-arg=--qos=high", "--", "benchmarks", "-m", "cpu"])
    assert (args.shards, args.slurm_arg, args.pytest_args) == (3, [("qos", "high")], ["benchmarks", "-m", "cpu"])


def test_cpu_sets_are_disjoint_whole_physical_cores():
    cores = launch.physical_cores()
    everything = launch.cpu_sets(1)
    assert sorted(everything[0]) == sorted(cpu for core in cores for cpu in core)
    if len(cores) >= 2:
        first, second = launch.cpu_sets(2, cores_per_shard=1)
        assert set(first).isdisjoint(second)
        assert first in cores and second in cores  # a whole core each, hyperthread siblings included
    with pytest.raises(launch.PlacementError, match=r"need \d+ cores; this process may use \d+: ask for fewer"):
        launch.cpu_sets(len(cores) + 1)


def test_local_shards_get_a_gpu_each_and_never_more_shards_than_gpus(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-aaaa,GPU-bbbb")
    run = RunFolder(tmp_path)
    shards = launch.place_shards(launch.parse_args(["--", "benchmarks"]), run, tmp_path)
    assert [s.gpu for s in shards] == ["GPU-aaaa", "GPU-bbbb"]
    assert set(shards[0].cpus).isdisjoint(shards[1].cpus or ()) or len(launch.physical_cores()) < 2
    with pytest.raises(launch.LaunchError, match="--shards 3 with 2 GPU"):
        launch.place_shards(launch.parse_args(["--shards", "3", "--", "benchmarks"]), run, tmp_path)


def test_a_shard_resumes_from_its_results_file_and_keeps_its_earlier_json(tmp_path):
    run = RunFolder(tmp_path)
    shard = launch.Shard(1, 2, str(tmp_path), ("benchmarks", "-m", "cpu"), str(tmp_path))
    assert shard.command(resume=False)[-5:] == ["--mb-shard", "1/2", f"--benchmark-json={run.json(1)}",
                                                "--mb-results", str(run.results(1))]
    assert shard.command(resume=True)[-2:] == ["--mb-resume", str(run.results(1))]
    for attempt in ("first", "second"):
        run.json(1).write_text(attempt)
        run.keep_attempt(1)
    assert [p.read_text() for p in run.attempts(1)] == ["first", "second"]
    assert not run.json(1).exists()


@needs_submitit
def test_the_slurm_submission_carries_every_option(tmp_path, monkeypatch):
    """What sbatch is given, built where Slurm is absent (submitit only looks for srun on PATH)."""
    from submitit.slurm.slurm import _make_sbatch_string

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    args = launch.parse_args(["--executor", "slurm", "--shards", "2", "--partition", "gpu", "--gpus-per-task", "1",
                              "--cpus-per-task", "8", "--time", "90", "--array-parallelism", "1",
                              "--slurm-arg", "qos=high", "--", "benchmarks", "-m", "gpu"])
    run = RunFolder(tmp_path / "run")
    executor = launch.make_executor(args, run)
    script = _make_sbatch_string(command="python -m submitit.core._submit", folder=run.logs, map_count=2,
                                 **executor.parameters)
    for line in ("--array=0-1%1", "--partition=gpu", "--gpus-per-task=1", "--cpus-per-task=8", "--time=90",
                 "--qos=high", "--signal=USR2@90", "--job-name=mnistbench"):
        assert f"#SBATCH {line}\n" in script, line
    shards = launch.place_shards(args, run, tmp_path)
    assert [(s.index, s.count, s.cpus, s.gpu) for s in shards] == [(0, 2, None, None), (1, 2, None, None)]


def same_results(a: dict, b: dict) -> bool:
    """The same case and the same learned numbers, bit for bit: every accuracy and loss, FLOPs."""
    fields = {f for f in a if "acc" in f or "loss" in f} | {"gmacs_fvcore", "params_m", "n_support"}
    return config_key(a) == config_key(b) and all(a.get(f) == b.get(f) for f in fields)


@pytest.mark.slow  # end to end through real processes (~25 s): CI runs it in its scale-out step, with Slurm's
@needs_submitit
@pytest.mark.skipif(len(launch.physical_cores()) < 2, reason="two local shards need two physical cores")
def test_two_local_shards_merged_equal_the_same_grid_in_one_process(tmp_path, data_dir, monkeypatch, capsys,
                                                                     pytester):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # CPU shards, even on a GPU machine
    run = RunFolder(tmp_path / "run")
    status = launch.main(["--shards", "2", "--cores-per-shard", "1", "--out", str(run.path), "--poll", "0.5",
                          "--", *grid(data_dir)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "merged 3 benchmark(s) from 2 shard(s)" in out
    for index in (0, 1):
        assert f"shard {index}/2 [cpus " in out and "cases, 0 failed, finished" in out

    # the same grid in one pytest session (this process), with the one thread each shard had:
    # torch's CPU kernels split their sums by thread count, so only equal counts give equal bits
    one, threads = tmp_path / "one.json", torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single_run = pytester.runpytest_inprocess(*grid(data_dir), f"--benchmark-json={one}",
                                                  f"--mb-results={tmp_path / 'one.jsonl'}", "-q")
    finally:
        torch.set_num_threads(threads)
    assert single_run.ret == 0, single_run.stdout.str()[-2000:]

    merged = [b["extra_info"] for b in json.loads(run.merged.read_text())["benchmarks"]]
    single = [b["extra_info"] for b in json.loads(one.read_text())["benchmarks"]]
    assert len(merged) == len(single) == 3
    by_key = {config_key(r): r for r in single}
    for rec in merged:
        assert same_results(rec, by_key[config_key(rec)]), rec["case_id"]
    assert {r["shard"] for r in merged} == {0, 1} and {r["shards"] for r in merged} == {2}
    for rec in merged:  # each shard on its own core with one thread
        assert (rec["machine"]["cpu_affinity"], rec["machine"]["torch_threads"]) == (1, 1)
    placement = json.loads(run.manifest.read_text())["placement"]
    assert set(placement[0]["cpus"]).isdisjoint(placement[1]["cpus"])


@pytest.mark.slow
@needs_submitit
def test_a_preempted_shard_resumes_and_runs_no_case_twice(tmp_path, data_dir, monkeypatch):
    """What Slurm does before a time limit (SIGUSR2 to the job), here to a local shard: pytest stops
    and writes its JSON, submitit starts the shard again, and it resumes from its results file."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    two_trainings = "(mnist-r18 and sgd) or (fashion-r18 and sgd)"  # a few seconds each
    args = launch.parse_args(["--shards", "1", "--", *grid(data_dir, two_trainings)])
    run = RunFolder(tmp_path / "run")
    shards = launch.place_shards(args, run, tmp_path)
    executor = launch.make_executor(args, run)
    launch._check_manifest(run, shards, args)
    (job,) = launch.submit(executor, shards)
    deadline = time.monotonic() + 300
    while not run.records(0) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(run.records(0)) == 1, "the first case finished, the second has started"
    # SIGUSR2 to the shard's process, as Slurm sends it before a time limit (submitit's local
    # job._interrupt() signals the controller above it, which does not pass it on)
    (shard_pid,) = Path(f"/proc/{job.job_id}/task/{job.job_id}/children").read_text().split()
    os.kill(int(shard_pid), signal.SIGUSR2)

    outcomes = launch.wait([job], shards, run, slurm=False, poll_s=0.5, say=lambda line: None)
    assert outcomes[0].ok and launch.finish(run, shards, [job], outcomes, say=lambda line: None) == 0
    (first,) = run.attempts(0)  # the stopped attempt's JSON, kept
    assert len(json.loads(first.read_text())["benchmarks"]) == 1
    assert len(run.records(0)) == 2  # every case recorded once: the resumed attempt skipped the first
    assert len(json.loads(run.merged.read_text())["benchmarks"]) == 2
