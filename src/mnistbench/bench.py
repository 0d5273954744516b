"""How one case runs under pytest-benchmark, and where its record goes.

Training is timed with `benchmark.pedantic`, one round per epoch: validation runs as the
round's teardown, so the rounds hold nothing but training, and pytest-benchmark's
`stats.total` is the training time. The record (case + result + status) goes to
`extra_info` and, line by line as each case ends, to the results file, so a killed
session keeps every finished case.
"""

from __future__ import annotations

import pytest
import torch

from mnistbench import flops
from mnistbench.floors import floor_for
from mnistbench.record import config_key, make_record
from mnistbench.results import ResultsLog
from mnistbench.svm import BackendMissing, SVMRun
from mnistbench.train import Diverged, Trainer


def _no_profiling(benchmark) -> None:
    if getattr(benchmark, "cprofile", False):
        raise pytest.UsageError(
            "--benchmark-cprofile re-runs the target, which would train an extra epoch; "
            "profile with `python -m cProfile` on mnistbench.train instead."
        )


def _time_rounds(benchmark, target, teardown, rounds: int) -> None:
    """pedantic with a teardown per round; with --benchmark-disable pytest-benchmark would run
    the target only once, so the epochs are looped here instead."""
    if benchmark.disabled:
        for _ in range(rounds):
            target()
            teardown()
        return
    benchmark.pedantic(target, teardown=teardown, rounds=rounds, iterations=1)


def _oom_message(case, exc) -> str:
    free, total = torch.cuda.mem_get_info() if torch.cuda.is_available() else (0, 0)
    return (
        f"CUDA out of memory: {case.model} at batch {case.batch_size}, {case.image_size}px; "
        f"{free / 2**30:.1f} of {total / 2**30:.1f} GiB free after the failure "
        f"({str(exc).splitlines()[0]}). Use a smaller batch size or image size."
    )


def run_train(benchmark, case, split, log: ResultsLog | None = None, baselines: dict | None = None) -> dict:
    _no_profiling(benchmark)
    trainer = None
    try:
        trainer = Trainer(case, split)
        _time_rounds(benchmark, trainer.train_epoch, trainer.after_epoch, case.epochs)
        result = trainer.finish()
    except Diverged as exc:
        _finish(benchmark, log, make_record(case, exc.partial, "diverged", str(exc)))
        pytest.fail(f"{case.id}: {exc}", pytrace=False)
    except torch.OutOfMemoryError as exc:
        partial = trainer.result if trainer else None
        message = _oom_message(case, exc)
        del trainer
        torch.cuda.empty_cache()
        _finish(benchmark, log, make_record(case, partial, "oom", message))
        pytest.fail(f"{case.id}: {message}", pytrace=False)
    return _judge(benchmark, log, case, result, result.n_train, baselines)


def run_svm(benchmark, case, split, log: ResultsLog | None = None, baselines: dict | None = None) -> dict:
    _no_profiling(benchmark)
    try:
        run = SVMRun(case, split)
    except BackendMissing as exc:
        pytest.skip(str(exc))
    _time_rounds(benchmark, run.fit, lambda: None, 1)
    result = run.finish()
    return _judge(benchmark, log, case, result, result.n_train, baselines)


def run_flops(benchmark, case, log: ResultsLog | None = None) -> dict:
    args = (case.model, case.stem, case.image_size, case.channels, case.num_classes)
    counts = benchmark.pedantic(flops.count.__wrapped__, args=args, rounds=1, iterations=1)
    rec = make_record(case, counts)
    _finish(benchmark, log, rec)
    return rec


# field, baseline value, compared value, name of the recorded ratio (baseline time / this time)
COMPARED = (("path", "classic", "fast", "speedup_vs_classic"),
            ("backend", "sklearn", "sklearnex", "speedup_vs_sklearn"))


def _cost_s(rec: dict) -> float:
    """Seconds per unit of work: median epoch for training, fit + predict for an SVM."""
    if rec["kind"] == "svm":
        return (rec["fit_time_ms"] + rec["predict_time_ms"]) / 1000
    return rec["n_train"] / rec["images_per_s_median"]


def compare_to_baseline(rec: dict, baselines: dict) -> None:
    """Remember a baseline record; give its twin (same config, other path/backend) the ratio."""
    for field, base, other, name in COMPARED:
        if field not in rec:
            continue
        key = config_key(rec, ignore=(field, "loader", "amp"))
        if rec[field] == base:
            baselines[key] = rec
        elif rec[field] == other and key in baselines:
            ref = baselines[key]
            rec[name] = _cost_s(ref) / _cost_s(rec)
            rec[f"acc_delta_vs_{base}_pts"] = rec["test_acc_pct"] - ref["test_acc_pct"]


def _judge(benchmark, log, case, result, n_train: int, baselines: dict | None = None) -> dict:
    floor = floor_for(case, n_train)
    ok = result.test_acc_pct >= floor.pct
    message = "" if ok else (
        f"test accuracy {result.test_acc_pct:.2f}% is below the floor {floor.pct}% "
        f"({floor.source})"
    )
    rec = make_record(case, result, "ok" if ok else "below_floor", message,
                      floor_pct=floor.pct, floor_source=floor.source)
    if baselines is not None and ok:
        compare_to_baseline(rec, baselines)
    _finish(benchmark, log, rec)
    if not ok:
        pytest.fail(f"{case.id}: {message}", pytrace=False)
    return rec


def _finish(benchmark, log, rec: dict) -> None:
    benchmark.extra_info.update(rec)
    if log is not None:
        log.append(rec)
