"""One shard of a launched run: where it runs (its cores, its GPU) and the pytest it starts.

submitit pickles a `Shard`, runs it where the shard runs (a local process pinned to its
own physical cores, or a Slurm array task), and on a timeout or preemption calls its
`checkpoint`: its pytest is stopped so that it writes what finished, and the shard starts
again, resuming from its results file. Its pytest loads this module (`-p
mnistbench.scale.shard`) to list the cases it selected, for launch's progress lines.
"""

from __future__ import annotations

import ctypes
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from mnistbench.results.runfolder import RunFolder
from mnistbench.scale.placement import allowed_cpus

CASES_ENV = "MNISTBENCH_SHARD_CASES"  # where the shard's pytest lists the cases it selected
INTERRUPT_GRACE_S = 60  # a shard's pytest stopped by a timeout signal has this long to write its JSON
PR_SET_PDEATHSIG = 1  # linux/prctl.h: the signal a process gets when its parent dies


# ---------------------------------------------------------------- one shard


_pytest: subprocess.Popen | None = None  # the shard's pytest, for checkpoint() to stop


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`: one pytest process writing into the run folder `run`.

    submitit pickles it, runs it where the shard runs, and on a timeout or preemption calls
    `checkpoint` and starts it again; it then resumes from its results file.
    """

    index: int
    count: int
    run: str  # the run folder, absolute
    pytest_args: tuple[str, ...]
    cwd: str  # where launch was started: pytest arguments are relative to it
    cpus: tuple[int, ...] | None = None  # local: the CPUs it is pinned to; Slurm: the job's allocation
    gpu: str | None = None  # local: its CUDA_VISIBLE_DEVICES ('' on a CPU shard); Slurm: what Slurm gives

    @property
    def folder(self) -> RunFolder:
        return RunFolder(Path(self.run))

    def command(self, resume: bool) -> list[str]:
        results = "--mb-resume" if resume else "--mb-results"
        return [sys.executable, "-m", "pytest", "-p", "mnistbench.scale.shard", *self.pytest_args,
                "--mb-shard", f"{self.index}/{self.count}", f"--benchmark-json={self.folder.json(self.index)}",
                results, str(self.folder.results(self.index))]

    def __call__(self) -> int:
        """Runs the shard's pytest to its end; returns pytest's exit status."""
        global _pytest
        folder = self.folder
        if self.cpus and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, self.cpus)
        usable = len(allowed_cpus())
        if "SLURM_CPUS_PER_TASK" in os.environ:  # what Slurm allots, where it does not bind tasks to CPUs
            usable = min(usable, int(os.environ["SLURM_CPUS_PER_TASK"]))
        threads = str(usable)  # torch takes its thread count from OMP_NUM_THREADS
        env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
               CASES_ENV: str(folder.cases(self.index))}
        if self.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.gpu
        folder.keep_attempt(self.index)  # pytest-benchmark would overwrite an earlier attempt's JSON
        resume = folder.results(self.index).exists()
        print(f"mnistbench launch: shard {self.index}/{self.count}, {threads} thread(s), "
              f"{'resuming' if resume else 'starting'}: {shlex.join(self.command(resume))}", flush=True)
        _pytest = subprocess.Popen(self.command(resume), cwd=self.cwd, env=env, preexec_fn=_pytest_signals)
        try:
            return _pytest.wait()
        finally:
            _stop_pytest()

    def checkpoint(self, *args, **kwargs):
        """submitit, on a timeout or preemption: stop pytest so it writes its JSON, then start again."""
        from submitit.helpers import DelayedSubmission

        _stop_pytest()
        return DelayedSubmission(self)


def _pytest_signals() -> None:
    """In the shard's pytest before it starts. Slurm signals every process of a job before its
    time limit, but that signal is for submitit (checkpoint, requeue), which then stops pytest
    with SIGINT; a launch started in the background would pass SIGINT on ignored; and should the
    shard process be killed (a cancelled local launch), its pytest gets SIGINT too, not orphaned."""
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGINT)


def _stop_pytest() -> None:
    """SIGINT: pytest ends the session as after Ctrl-C, and pytest-benchmark writes what finished.

    Called from submitit's signal handler, which may interrupt Popen.wait() while it holds
    its lock: so this reaps the process with os.waitpid, never through Popen.
    """
    if _pytest is None or _pytest.returncode is not None:
        return
    os.kill(_pytest.pid, signal.SIGINT)
    deadline = time.monotonic() + INTERRUPT_GRACE_S
    while (reaped := os.waitpid(_pytest.pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    if reaped[0] == 0:
        os.kill(_pytest.pid, signal.SIGKILL)
        reaped = os.waitpid(_pytest.pid, 0)
    _pytest.returncode = os.waitstatus_to_exitcode(reaped[1])


# Hooks for each shard's pytest, which loads this module with `-p mnistbench.scale.shard`


def pytest_collection_finish(session) -> None:
    """The cases this shard selected, for launch's progress lines."""
    path = os.environ.get(CASES_ENV)
    if path:
        Path(path).write_text("".join(f"{item.nodeid}\n" for item in session.items), encoding="utf-8")
