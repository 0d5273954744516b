"""mnistbench launch: a selection of the suite as N shards, one pytest process per GPU or CPU set.

    mnistbench launch [--executor local|slurm] [--shards N] [--out RUN] [...] -- PYTEST ARGS

pytest-xdist cannot run these benchmarks (pytest-benchmark turns itself off under it)
and processes sharing cores slow each other 10-50x, so a shard is a whole pytest process
on a GPU or a set of physical cores of its own: shard i of N runs `pytest PYTEST ARGS
--mb-shard i/N` and the plugin keeps its share of the cases (balanced by the grid's cost
estimate). submitit starts the shards: as local processes (one per visible GPU, else one
per disjoint set of physical cores) or as one Slurm job array. Every shard writes into
RUN (results.runfolder.RunFolder) and resumes from its own results file when it starts again (a Slurm
requeue, a timeout, the same command run again), so a finished case never runs twice.
launch prints a line per shard as it progresses, merges the shards into RUN/merged.json
and exits 1 naming each failed shard and its log.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from mnistbench.results.record import SCHEMA, config_key
from mnistbench.results.runfolder import RunFolder, RunFolderError
from mnistbench.scale.merge import MergeError, merge_run, write_json
from mnistbench.scale.placement import PlacementError, cpu_sets, physical_cores, visible_gpus
from mnistbench.scale.shard import Shard
from mnistbench.suite.plugin import CONTEXT_LOST_EXIT

EXECUTORS = ("local", "slurm")


class LaunchError(ValueError):
    """A launch that cannot start: the message says what to change."""


# pytest options launch sets for each shard, or that cannot share its processes
OWN_OPTIONS = ("--mb-shard", "--benchmark-json", "--mb-results", "--mb-resume", "--numprocesses", "--dist", "-n")
LOCAL_NO_LIMIT_MIN = 60 * 24 * 30  # submitit's local executor kills a job after its time limit: 30 days
SLURM_DEFAULT_MIN = 60
RESULT_GRACE_S = 15  # a shard's result file may show up this late on a shared file system


# ---------------------------------------------------------------- the launch


def parse_args(argv: list[str]) -> argparse.Namespace:
    ours, pytest_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(
        prog="mnistbench launch",
        usage="mnistbench launch [options] -- PYTEST ARGS",
        description="Run a selection of the suite as N shards, one pytest process per GPU or CPU set, through "
                    "submitit; wait, merge the shards into RUN/merged.json, exit 1 if a shard failed. "
                    "Running the same command again resumes: finished cases are skipped.",
        epilog="example: mnistbench launch --shards 2 -- benchmarks -m 'smoke and cpu'")
    parser.add_argument("--executor", choices=EXECUTORS, default="local",
                        help="local: processes on this machine; slurm: one job array (default: local)")
    parser.add_argument("--shards", type=_positive, metavar="N",
                        help="number of shards (default, local: one per visible GPU, else one per physical "
                             "core; slurm: required)")
    parser.add_argument("--cores-per-shard", type=_positive, metavar="K",
                        help="local: physical cores pinned to each shard (default: all usable cores, shared "
                             "out equally)")
    parser.add_argument("--out", type=Path, metavar="RUN",
                        help="run folder for the shards' JSON, results, logs and merged.json "
                             "(default: reports/run-<timestamp>)")
    parser.add_argument("--time", type=_positive, metavar="MIN",
                        help=f"time limit per shard in minutes; a shard that reaches it is requeued and resumes "
                             f"(default: slurm {SLURM_DEFAULT_MIN}, local none)")
    parser.add_argument("--poll", type=float, default=10.0, metavar="S",
                        help="seconds between progress checks (default: 10)")
    slurm = parser.add_argument_group("slurm", "with --executor slurm")
    slurm.add_argument("--partition", help="partition to submit to (default: the cluster's default)")
    slurm.add_argument("--gpus-per-task", type=_positive, metavar="G", help="GPUs per shard (default: none)")
    slurm.add_argument("--cpus-per-task", type=_positive, metavar="C", help="CPUs per shard (default: Slurm's, 1)")
    slurm.add_argument("--array-parallelism", type=_positive, metavar="K",
                       help="at most K shards running at once (default: all)")
    slurm.add_argument("--slurm-arg", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                       help="any other sbatch option, e.g. --slurm-arg qos=high --slurm-arg mem=16G; repeatable "
                            "(default: none)")
    args = parser.parse_args(ours)
    args.pytest_args = pytest_args
    if not pytest_args:
        parser.error("give the pytest selection after --, e.g. mnistbench launch -- benchmarks -m 'smoke and cpu'")
    taken = [a for a in pytest_args for opt in OWN_OPTIONS if a == opt or a.startswith(opt + "=")
             or (opt == "-n" and a.startswith("-n") and not a.startswith("--"))]
    if taken:
        parser.error(f"{taken[0]} in the pytest arguments: launch gives each shard its own --mb-shard, "
                     "--benchmark-json and --mb-results/--mb-resume in the run folder, and one process per "
                     "shard (no -n/--dist)")
    if args.executor == "slurm" and args.shards is None:
        parser.error("--executor slurm needs --shards N (the size of the job array)")
    return args


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number greater than 0, got {text!r}")
    return int(text)


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (an sbatch option without its dashes), got {text!r}")
    return key.lstrip("-"), value


def place_shards(args, run: RunFolder, cwd: Path) -> list[Shard]:
    """The shards and where each runs: local ones get their GPU and pinned cores, Slurm ones what Slurm gives."""
    common = dict(run=str(run.path), pytest_args=tuple(args.pytest_args), cwd=str(cwd))
    if args.executor == "slurm":
        return [Shard(i, args.shards, **common) for i in range(args.shards)]
    gpus = visible_gpus()
    count = args.shards or len(gpus) or len(physical_cores())
    if gpus and count > len(gpus):
        raise LaunchError(f"--shards {count} with {len(gpus)} GPU(s) visible: one shard per GPU, since shards "
                          "sharing a GPU time each other; for CPU shards hide the GPUs (CUDA_VISIBLE_DEVICES=)")
    sets = cpu_sets(count, args.cores_per_shard)
    return [Shard(i, count, cpus=sets[i], gpu=gpus[i] if gpus else "", **common) for i in range(count)]


def _check_manifest(run: RunFolder, shards: list[Shard], args) -> bool:
    """Write the manifest; an earlier one must describe the same shards (else a case could run twice)."""
    resuming = run.manifest.exists()
    if resuming:
        old = run.read_manifest()
        if old.get("shards") != len(shards) or old.get("pytest_args") != list(args.pytest_args):
            raise LaunchError(f"{run.path} holds a run of {old.get('shards')} shard(s) of "
                              f"`pytest {shlex.join(old.get('pytest_args', []))}`: resume it with the same "
                              "--shards and pytest arguments, or give another --out")
    run.path.mkdir(parents=True, exist_ok=True)
    manifest = {"shards": len(shards), "executor": args.executor, "pytest_args": list(args.pytest_args),
                "cwd": shards[0].cwd, "started": _now(),
                "placement": [{"index": s.index, "cpus": s.cpus, "gpu": s.gpu} for s in shards]}
    run.manifest.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return resuming


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def make_executor(args, run: RunFolder):
    try:
        import submitit
    except ImportError:
        raise LaunchError("mnistbench launch starts its shards through submitit: "
                          "pip install 'mnistbench[scale]' (or pip install 'submitit>=1.5')") from None
    if args.executor == "local":
        executor = submitit.LocalExecutor(folder=run.logs)
        executor.update_parameters(timeout_min=args.time or LOCAL_NO_LIMIT_MIN)
        return executor
    try:
        executor = submitit.SlurmExecutor(folder=run.logs)
    except RuntimeError:
        raise LaunchError("--executor slurm: no srun on PATH; run launch where Slurm's commands are "
                          "(a login node)") from None
    params = dict(job_name="mnistbench", time=args.time or SLURM_DEFAULT_MIN, ntasks_per_node=1,
                  partition=args.partition, gpus_per_task=args.gpus_per_task, cpus_per_task=args.cpus_per_task,
                  array_parallelism=args.array_parallelism, additional_parameters=dict(args.slurm_arg) or None)
    executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
    return executor


def submit(executor, shards: list[Shard]) -> list:
    """All shards at once: one job array on Slurm, one process each locally."""
    with executor.batch():
        jobs = [executor.submit(shard) for shard in shards]
    return jobs


# ---------------------------------------------------------------- waiting, progress, outcome


@dataclass(frozen=True)
class Outcome:
    ok: bool
    why: str  # 'finished', 'pytest exit 1 (tests failed)', or what submitit reported
    resumable: bool = False  # its pytest stopped on a dead CUDA context: a fresh process carries on


def _queue_states(jobs: list) -> dict[str, str] | None:
    """Slurm's state per array task still in the queue; None when squeue cannot answer."""
    ids = sorted({job.job_id.split("_")[0] for job in jobs})
    try:
        out = subprocess.run(["squeue", "-h", "-r", "-o", "%i %T", "-j", ",".join(ids)], capture_output=True,
                             text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return dict(line.split(None, 1) for line in out.splitlines() if line.strip())


def _state(job, queue: dict[str, str] | None) -> str | None:
    """None once the job has ended, else a word for the progress line."""
    if job.paths.result_pickle.exists():
        return None
    if queue is None:  # a local process
        return None if job.done() else "running"
    return queue[job.job_id].lower() if job.job_id in queue else None


def outcome(job) -> Outcome:
    """From the job's result file; without one it died outside pytest (job.result() would wait
    for a state that Slurm without accounting never reports)."""
    deadline = time.monotonic() + RESULT_GRACE_S
    while not job.paths.result_pickle.exists():
        if time.monotonic() > deadline:
            return Outcome(False, "ended without a result (cancelled, or killed for its time or memory?)")
        time.sleep(1)
    try:
        status = job.result()
    except Exception as exc:  # noqa: BLE001 - submitit's FailedJobError / UncompletedJobError: the job died
        return Outcome(False, str(exc).strip().splitlines()[0])
    if status in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        return Outcome(True, "finished")
    if status == CONTEXT_LOST_EXIT:
        return Outcome(False, f"pytest exit {status} (the CUDA context died; finished cases kept)", resumable=True)
    name = pytest.ExitCode(status).name.lower().replace("_", " ") if status in set(pytest.ExitCode) else "?"
    return Outcome(False, f"pytest exit {status} ({name})")


def wait(jobs: list, shards: list[Shard], run: RunFolder, slurm: bool, poll_s: float, say=print) -> list[Outcome]:
    """Poll until every shard has ended; a line for each shard whose progress changed."""
    lines: dict[int, str] = {}
    outcomes: dict[int, Outcome] = {}
    while len(outcomes) < len(jobs):
        queue = _queue_states(jobs) if slurm else None
        if slurm and queue is None:
            queue = {job.job_id: "unknown" for job in jobs}  # squeue did not answer: ask again next time
        for shard, job in zip(shards, jobs, strict=True):
            if shard.index in outcomes:
                continue
            state = _state(job, queue)
            if state is None:
                outcomes[shard.index] = outcome(job)
                state = outcomes[shard.index].why
            line = (f"shard {shard.index}/{shard.count} [{_where(shard, job)}]: "
                    f"{run.progress(shard.index).text()}, {state}")
            if lines.get(shard.index) != line:
                lines[shard.index] = line
                say(line)
        if len(outcomes) < len(jobs):
            time.sleep(poll_s)
    return [outcomes[s.index] for s in shards]


def _where(shard: Shard, job) -> str:
    if shard.cpus is None:
        return f"slurm job {job.job_id}"
    return f"cpus {','.join(map(str, shard.cpus))}" + (f", gpu {shard.gpu}" if shard.gpu else "")


def finish(run: RunFolder, shards: list[Shard], jobs: list, outcomes: list[Outcome], say=print) -> int:
    """Merge, then name every failed shard with its log; 0 only when every shard and the merge succeeded."""
    status = 0
    try:
        merged = merge_run(run)
    except (MergeError, RunFolderError) as exc:
        say(f"error: cannot merge the shards: {exc}")
        status = 1
    else:
        write_json(merged, run.merged)
        say(f"merged {len(merged['benchmarks'])} benchmark(s) from {len(shards)} shard(s) into {run.merged}")
        _say_unmerged(run, shards, merged, say)
    for shard, job, result in zip(shards, jobs, outcomes, strict=True):
        if not result.ok:
            say(f"shard {shard.index}/{shard.count} failed: {result.why}; log: {job.paths.stdout} "
                f"(stderr: {job.paths.stderr})")
            status = 1
    return status


def _say_unmerged(run: RunFolder, shards: list[Shard], merged: dict, say) -> None:
    """Records in the results files that merged.json lacks: the report on the run folder has them."""
    in_json = {config_key(b["extra_info"]) for b in merged["benchmarks"]
               if (b.get("extra_info") or {}).get("schema") == SCHEMA}
    latest = {config_key(rec): rec["status"] for s in shards for rec in run.records(s.index)}
    failed = sum(status != "ok" for key, status in latest.items() if key not in in_json)
    stopped = sum(status == "ok" for key, status in latest.items() if key not in in_json)
    if failed or stopped:
        say(f"note: merged.json lacks {failed} failed case(s) (pytest-benchmark leaves failed tests out) and "
            f"{stopped} case(s) of attempts stopped before pytest ended; `mnistbench report {run.path}` "
            "reads them all from the shards' results files")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    cwd = Path.cwd()
    out = args.out or Path("reports") / f"run-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    run = RunFolder(out.resolve())
    try:
        shards = place_shards(args, run, cwd)
        executor = make_executor(args, run)
        resuming = _check_manifest(run, shards, args)
    except (LaunchError, PlacementError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"mnistbench launch: {len(shards)} shard(s) of `pytest {shlex.join(args.pytest_args)}` through "
          f"submitit ({args.executor}) into {run.path}" + (", resuming (finished cases skip)" if resuming else ""))
    try:
        jobs = submit(executor, shards)
    except Exception as exc:  # noqa: BLE001 - submitit's FailedJobError carries sbatch's own message
        print(f"error: the shards could not be submitted: {str(exc).strip()}", file=sys.stderr)
        return 2
    try:
        outcomes = wait(jobs, shards, run, args.executor == "slurm", args.poll)
        jobs, outcomes = resume_lost(executor, jobs, shards, outcomes,
                                     lambda more, some: wait(more, some, run, args.executor == "slurm", args.poll))
    except KeyboardInterrupt:
        for job in jobs:
            job.cancel(check=False)
        print(f"\ncancelled; run the same command again to resume from {run.path}")
        return 130
    return finish(run, shards, jobs, outcomes)


def resume_lost(executor, jobs: list, shards: list[Shard], outcomes: list[Outcome], wait_for, say=print):
    """Shards whose pytest stopped on a dead CUDA context start once more, in a fresh process with a
    fresh context, resuming from their results files; a second such stop is reported as a failure."""
    again = [i for i, result in enumerate(outcomes) if result.resumable]
    if not again:
        return jobs, outcomes
    say(f"resuming {len(again)} shard(s) stopped by a dead CUDA context, once: "
        + ", ".join(f"{shards[i].index}/{shards[i].count}" for i in again))
    retried = submit(executor, [shards[i] for i in again])
    results = wait_for(retried, [shards[i] for i in again])
    jobs, outcomes = list(jobs), list(outcomes)
    for i, job, result in zip(again, retried, results, strict=True):
        jobs[i], outcomes[i] = job, result
    return jobs, outcomes
