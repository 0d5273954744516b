"""How one case runs under pytest-benchmark, and where its record goes.

Training is timed with `benchmark.pedantic`, one round per epoch: validation (and the
progress line) runs as the round's teardown, so the rounds hold nothing but training, and
pytest-benchmark's `stats.total` is the training time. The record (case + result + status)
goes to `extra_info` and, line by line as each case ends, to the results file, so a killed
session keeps every finished case.

Every case ends with a record, whatever happens to it: ok, below_floor, diverged, oom, or
error (a cuDNN or cuBLAS failure, torch.AcceleratorError, a failed --check-graph, a bug);
then a case that is not ok fails, and the grid goes on. A Ctrl-C or SIGTERM is recorded as
`interrupted` with the epochs that finished, then stops the session; a record that cannot
be written (the disk is full) stops it at once, with one message naming the file. Warnings raised during a case go
into its record (`warnings`) instead of failing it: one new torch warning on an untested
GPU must not cost a grid. Between training cases the trainer lets go of its tensors and
the allocator's cache is emptied, so no case's memory or CUDA graph counts against the next.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
import warnings
from dataclasses import dataclass

import pytest
import torch

from mnistbench.cases.floors import floor_for
from mnistbench.cases.grids import about
from mnistbench.results import interrupts
from mnistbench.results.record import make_record, twin_fields, twin_key, twin_of
from mnistbench.results.store import ResultsFileError, ResultsLog
from mnistbench.suite.machine import gpu_state
from mnistbench.train import flops
from mnistbench.train.errors import classify
from mnistbench.train.result import TrainResult
from mnistbench.train.svm import BackendMissing, SVMRun
from mnistbench.train.trainer import Diverged, Trainer


def _no_profiling(benchmark) -> None:
    if getattr(benchmark, "cprofile", False):
        raise pytest.UsageError(
            "--benchmark-cprofile re-runs the target, which would train an extra epoch; "
            "profile with `python -m cProfile` on mnistbench.train.trainer.train instead."
        )


class ReachedTarget(Exception):
    """Raised by an epoch's teardown to end the timed rounds early (--mb-stop-at-target)."""


def _time_rounds(benchmark, target, teardown, rounds: int) -> None:
    """pedantic with a teardown per round; with --benchmark-disable pytest-benchmark would run
    the target only once, so the epochs are looped here instead. A teardown may end the rounds
    with ReachedTarget: pedantic has no other way out, and the rounds already timed stay."""
    try:
        if benchmark.disabled:
            for _ in range(rounds):
                target()
                teardown()
        else:
            benchmark.pedantic(target, teardown=teardown, rounds=rounds, iterations=1)
    except ReachedTarget:
        benchmark.has_error = False  # pytest-benchmark leaves out a benchmark whose pedantic raised


@contextlib.contextmanager
def recorded_warnings():
    """Collects the warnings raised inside as text. Filters that turn warnings into errors (the
    test suite's `filterwarnings = error`) record them instead; filters that ignore one still do."""
    texts: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        active = list(warnings.filters)
        warnings.resetwarnings()
        for action, message, category, module, lineno in reversed(active):
            warnings.filterwarnings("always" if action == "error" else action, _pattern(message), category,
                                    _pattern(module), lineno)
        try:
            yield texts
        finally:
            described = (f"{w.category.__name__}: {w.message} ({os.path.basename(w.filename)}:{w.lineno})"
                         for w in caught)
            texts.extend(dict.fromkeys(described))


def _pattern(regex) -> str:
    """A filter's message or module as filterwarnings takes it (compiled, plain text, or None)."""
    return getattr(regex, "pattern", regex) or ""


def free_memory(cuda: bool = True) -> None:
    """Collect what a finished case left (a CUDA graph and its pool among it), give the allocator's
    cached blocks back and clear cuBLAS's workspaces (kept per handle and stream, which empty_cache
    does not free), so the next case starts from nothing of this one. `cuda=False` after a sticky
    CUDA error, when any CUDA call would fail."""
    gc.collect()
    if cuda and torch.cuda.is_available():
        torch.cuda.empty_cache()
        clear = getattr(torch._C, "_cuda_clearCublasWorkspaces", None)
        if clear is not None:
            clear()


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0]


def _oom_message(case, what: str) -> str:
    free, total = torch.cuda.mem_get_info() if torch.cuda.is_available() else (0, 0)
    return (
        f"CUDA out of memory: {case.model} at batch {case.batch_size}, {case.image_size}px; "
        f"{free / 2**30:.1f} of {total / 2**30:.1f} GiB free once the case's memory was released "
        f"({what}). Use a smaller batch size or image size."
    )


def progress_line(case, result, elapsed_s: float, stopped: bool = False) -> str:
    """One line after an epoch's validation: where the case is and how long it has left."""
    done, total = result.epochs_done, case.epochs
    left = 0 if stopped else elapsed_s / done * (total - done)
    rate = result.n_train / result.epoch_time_s[-1] if result.epoch_time_s[-1] > 0 else 0.0
    ending = f"{about(left)} left" if left else f"target {case.target_val_acc_pct}% reached" if stopped else "done"
    return (f"{case.id}: epoch {done}/{total}, train loss {result.epoch_train_loss[-1]:.4f}, "
            f"val {result.epoch_val_acc_pct[-1]:.2f}%, {rate:,.0f} images/s, {ending}")


def _epoch_teardown(trainer: Trainer, case, progress):
    """Validation, then the progress line: outside the timed round."""
    started = time.perf_counter()

    def teardown() -> None:
        trainer.after_epoch()
        if progress is not None:
            progress(progress_line(case, trainer.result, time.perf_counter() - started, trainer.stopped))
        if trainer.stopped:
            raise ReachedTarget

    return teardown


class ContextLost(Exception):
    """A case's error left the CUDA context unusable: recorded; the session must stop, and can resume."""


@dataclass(frozen=True)
class Failure:
    """How a case that did not finish training ended: what its record says instead of a result."""

    status: str  # diverged | oom | error | interrupted
    message: str
    partial: TrainResult | None  # what was measured before it ended
    context_lost: bool = False  # a sticky CUDA error: nothing more can run in this process


def _train(benchmark, case, split, check_graph: int, progress) -> TrainResult | Failure:
    """The finished result, or how the case failed. The trainer is closed either way, and nothing
    returned holds the exception (whose traceback would keep every tensor of the failed step alive)."""
    trainer = None
    try:
        trainer = Trainer(case, split, check_graph=check_graph)
        _time_rounds(benchmark, trainer.train_epoch, _epoch_teardown(trainer, case, progress), case.epochs)
        return trainer.finish()
    except Diverged as exc:
        return Failure("diverged", str(exc), exc.partial)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM (interrupts.handler): recorded, then raised again
        done = trainer.result.epochs_done if trainer else 0
        return Failure("interrupted", f"stopped by {str(exc) or 'Ctrl-C'} after {done} of {case.epochs} epoch(s)",
                       trainer.result if trainer else None)
    except Exception as exc:  # noqa: BLE001 - cuDNN/cuBLAS failures, AcceleratorError, bugs: recorded, then failed
        status, lost = classify(exc)
        message = _first_line(exc) if status == "oom" else f"{type(exc).__name__}: {_first_line(exc)}"
        return Failure(status, message, trainer.result if trainer else None, lost)
    finally:
        if trainer is not None:
            trainer.close()


def run_train(benchmark, case, split, log: ResultsLog | None = None, baselines: dict | None = None, *,
              check_graph: int = 0, progress=None, watch=None) -> dict:
    """Train one case under pytest-benchmark and record it. `check_graph`: K steps with and
    without the CUDA graph first (0 = off); `progress(line)`: called after each epoch's validation;
    `watch`: the machine check, recorded at the case's start and end (machine.CaseWatch). A case built
    to run out of memory (expect="oom") passes, as an expected failure, only when its record says oom;
    a case whose error killed the CUDA context raises ContextLost once recorded."""
    _no_profiling(benchmark)
    before, start = _gpu_state(case), watch.start() if watch else None
    with recorded_warnings() as caught:
        outcome = _train(benchmark, case, split, check_graph, progress)
    lost = isinstance(outcome, Failure) and outcome.context_lost
    with interrupts.held():  # the case's record is made and written whole, even under Ctrl-C or SIGTERM
        free_memory(cuda=not lost)  # after the except clauses: only now is the failed step's memory unreferenced
        extra = {"gpu_before": before, "gpu_after": _gpu_state(case)} if before else {}
        extra.update(_watched(start, watch))
        if not isinstance(outcome, Failure) and case.expect != "oom":
            return _judge(benchmark, log, case, outcome, baselines, caught, extra)
        if isinstance(outcome, Failure):
            status, partial = outcome.status, outcome.partial
            message = _oom_message(case, outcome.message) if status == "oom" else outcome.message
        else:
            status, partial = "error", outcome
            message = "built to run out of GPU memory, but it finished: the case is too small for this GPU"
        _finish(benchmark, log, make_record(case, partial, status, message, warnings=caught, **extra))
    _fail(case, status, message, lost)


def _watched(start: dict | None, watch) -> dict:
    return {"machine_start": start, "machine_end": watch.end()} if watch else {}


def _fail(case, status: str, message: str, lost: bool = False):
    """A case that is not ok fails: an interrupted one stops the session, as the interrupt would have; one
    that killed the CUDA context stops it too (ContextLost); the case built to run out of memory xfails."""
    if status == "interrupted":
        raise KeyboardInterrupt(message)
    if lost:
        raise ContextLost(f"{case.id}: {message}")
    if case.expect == "oom" and status == "oom":
        pytest.xfail(f"{case.id}: ran out of memory, as built to: {message}")
    pytest.fail(f"{case.id}: {message}", pytrace=False)


def _gpu_state(case) -> dict:
    """NVML's clocks, temperature, power and clock events for the case's GPU; {} on a CPU or without NVML."""
    if case.device != "cuda" or not torch.cuda.is_available():
        return {}
    return gpu_state(torch.cuda.current_device())


def run_svm(benchmark, case, split, log: ResultsLog | None = None, baselines: dict | None = None, *,
            watch=None) -> dict:
    _no_profiling(benchmark)
    start = watch.start() if watch else None
    with recorded_warnings() as caught:
        try:
            run = SVMRun(case, split)
        except BackendMissing as exc:
            pytest.skip(str(exc))
        try:
            _time_rounds(benchmark, run.fit, lambda: None, 1)
            result, status = run.finish(), "ok"
        except KeyboardInterrupt as exc:  # recorded, then raised again
            result, status, message = None, "interrupted", f"stopped by {str(exc) or 'Ctrl-C'} during the fit"
        except Exception as exc:  # noqa: BLE001 - recorded, then the case fails
            result, status, message = None, "error", f"{type(exc).__name__}: {_first_line(exc)}"
    with interrupts.held():
        extra = _watched(start, watch)
        if result is not None:
            return _judge(benchmark, log, case, result, baselines, caught, extra)
        _finish(benchmark, log, make_record(case, None, status, message, warnings=caught, **extra))
    _fail(case, status, message)


def run_flops(benchmark, case, log: ResultsLog | None = None) -> dict:
    args = (case.model, case.stem, case.image_size, case.channels, case.num_classes)
    with recorded_warnings() as caught:
        counts = benchmark.pedantic(flops.count.__wrapped__, args=args, rounds=1, iterations=1)
    rec = make_record(case, counts, warnings=caught)
    _finish(benchmark, log, rec)
    return rec


def compare_to_baseline(rec: dict, baselines: dict) -> None:
    """Remember a baseline record; give its twin (record.TWINS: same configuration and seed,
    the other path or backend) the ratio and accuracy difference."""
    twin = twin_of(rec)
    if twin is None:
        return
    key = twin_key(rec, twin)
    if rec[twin.field] == twin.base:
        baselines[key] = rec
    elif key in baselines:
        rec.update(twin_fields(baselines[key], rec, twin))


def _verdict(case, result, floor) -> tuple[str, str]:
    if getattr(result, "graph_check_pass", None) is False:
        return "error", (
            f"the CUDA graph and the eager step disagree after {result.graph_check_steps} steps from the "
            f"same start: max relative weight difference {result.graph_check_max_rel:.2e} > "
            f"{result.graph_check_tol_rel:.2e} (--mb-check-graph)"
        )
    if result.test_acc_pct < floor.pct:
        return "below_floor", (f"test accuracy {result.test_acc_pct:.2f}% is below the floor {floor.pct}% "
                               f"({floor.source})")
    return "ok", ""


def _judge(benchmark, log, case, result, baselines: dict | None, caught: list[str], extra=None) -> dict:
    floor = floor_for(case, result.n_train)
    status, message = _verdict(case, result, floor)
    rec = make_record(case, result, status, message, floor_pct=floor.pct, floor_source=floor.source,
                      warnings=caught, **(extra or {}))
    if baselines is not None and status == "ok":
        compare_to_baseline(rec, baselines)
    _finish(benchmark, log, rec)
    if status != "ok":
        pytest.fail(f"{case.id}: {message}", pytrace=False)
    return rec


def _finish(benchmark, log, rec: dict) -> None:
    """The record into extra_info, and extra_info whole into the results file: what the plugin
    stamped there first (shard, node, repeat) lands in both. A record that cannot be written
    (the disk is full) stops the session: every later case would be lost the same way. The case's wall
    time runs from where the plugin started its clock (before its data) to here."""
    started = getattr(benchmark, "mb_started", None)
    if started is not None:
        rec = {**rec, "case_wall_s": round(time.perf_counter() - started, 3)}
    benchmark.extra_info.update(rec)
    if log is None:
        return
    try:
        log.append(dict(benchmark.extra_info))
    except ResultsFileError as exc:
        pytest.exit(f"mnistbench: {exc}", returncode=pytest.ExitCode.INTERRUPTED)
