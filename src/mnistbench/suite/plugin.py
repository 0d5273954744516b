"""pytest wiring for mnistbench: the grid as parameters, fixtures, progress, machine info.

Loaded by the `pytest11` entry point (so `pytest benchmarks` works from any directory)
and by the repository's one-line conftest.py. Benchmark modules (or their classes) declare
`PRESET` and `KIND`; `pytest_generate_tests` turns the preset's cases of that kind into
parameters (id and marks from the case), so the grid lives in `mnistbench.cases.grids` alone.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from mnistbench.cases import grids
from mnistbench.cases.case import Case, TrainCase
from mnistbench.cases.registry import DATASETS, ConfigError
from mnistbench.results.record import config_key, make_record, ok
from mnistbench.suite import estimate, guard, machine, options
from mnistbench.suite.selection import case_of, refuse_xdist, select_shard, set_cublas_workspace, shard_of

RESULTS_LOG = pytest.StashKey["ResultsLog"]()
GATE_LINE = pytest.StashKey[str]()
REPORT_LINE = pytest.StashKey[str]()  # where --mb-report wrote the report, or why it could not
CONTEXT_LOST = pytest.StashKey[str]()  # the case whose error killed the CUDA context, and its message
SELECTED = pytest.StashKey[list]()  # the case ids this session selected, in order
CALIBRATION = pytest.StashKey["estimate.Calibration"]()  # this machine's factor per kind of case
CONTEXT_LOST_EXIT = 75  # sysexits' EX_TEMPFAIL: stopped by a dead CUDA context; --mb-resume carries on
DEFAULT_FAIL_ON = ("time:+10%", "acc:-0.5pt")

MARKERS = {
    "cpu": "runs on the CPU",
    "gpu": "runs on a CUDA GPU (skipped where CUDA is absent)",
    "slow": "estimated over 15 s on a 2-core CPU, or a measurement rather than a check (throughput)",
    "smoke": "the small end-to-end set (subsets, 1 epoch)",
    "q1a": "study question 1(a): ResNet hyperparameter grid",
    "q1b": "study question 1(b): SVM grid",
    "q2": "study question 2: CPU vs GPU",
    "flops": "fvcore FLOP counts per model and input size",
    "throughput": "images/s, fast path against the classic loop",
    "mb_repeat(k)": "the k-th run of the same case under --mb-repeat (set by mnistbench, not by hand)",
}


def pytest_addoption(parser):
    options.add_options(parser)


def pytest_configure(config):
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    limit, split = options.get(config, "train-limit"), options.get(config, "split")
    smallest = min(c.n_train for c in (TrainCase(dataset=d, split=split) for d in DATASETS))
    if limit is not None and limit > smallest:
        raise pytest.UsageError(f"--mb-train-limit {limit} is larger than the {split} train split "
                                f"({smallest} images); use at most {smallest}.")
    if options.get(config, "results") and options.get(config, "resume"):
        raise pytest.UsageError("--mb-resume FILE appends to FILE; give --mb-results or --mb-resume, not both.")
    guard.check_paths(config)
    refuse_xdist(config)


# ---------------------------------------------------------------- the grid as parameters


def _params(case: Case, measurement: bool, repeats: int) -> list:
    """A measurement-only module (MEASUREMENT = True: figures, no check worth a CI minute) is slow too.
    With --mb-repeat K the same case runs K times; the mark, not the id, tells run_case which time."""
    names = case.marks + (["slow"] if measurement and "slow" not in case.marks else [])
    marks = [getattr(pytest.mark, m) for m in names]  # an expect="oom" case xfails itself, on an oom record only
    if repeats == 1:
        return [pytest.param(case, id=case.id, marks=marks)]
    return [pytest.param(case, id=f"{case.id}-repeat{k}", marks=[*marks, pytest.mark.mb_repeat(k)])
            for k in range(repeats)]


def _declared(metafunc, name: str):
    """A benchmark's PRESET, KIND or MEASUREMENT: its class's, else its module's."""
    return getattr(metafunc.cls, name, None) or getattr(metafunc.module, name, None)


def pytest_generate_tests(metafunc):
    preset = _declared(metafunc, "PRESET")
    if "case" not in metafunc.fixturenames or preset is None:
        return
    kind = _declared(metafunc, "KIND")
    try:
        cases = grids.build(preset, options.grid_options(metafunc.config))
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    measurement = bool(_declared(metafunc, "MEASUREMENT"))
    repeats = options.get(metafunc.config, "repeat")
    metafunc.parametrize("case", [p for c in cases if c.kind == kind for p in _params(c, measurement, repeats)])


@pytest.hookimpl(trylast=True)  # after -m/-k deselection: shards split what is actually selected
def pytest_collection_modifyitems(config, items):
    presets, resume = options.get(config, "preset"), options.get(config, "resume")
    earlier = guard.earlier_records(config)
    done = {config_key(r) for r in ok(earlier)} if resume else set()
    keep, dropped = [], []
    for item in items:
        case = case_of(item)
        if case is not None and presets and case.preset not in presets:
            dropped.append(item)
            continue
        keep.append(item)
        if case is None:
            continue
        if case.device_marker == "gpu" and not _cuda():
            item.add_marker(pytest.mark.skip(reason=_no_cuda_reason()))
        if done and config_key(make_record(case)) in done:
            item.add_marker(pytest.mark.skip(reason=f"already recorded ok in {resume}"))
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    if shard_of(config):
        keep = select_shard(config, keep)
    items[:] = keep
    cases = [c for c in map(case_of, keep) if c is not None]
    config.stash[SELECTED] = [c.id for c in cases]
    set_cublas_workspace(cases, _cuda())  # before the machine facts are read: they record it
    if cases and not config.getoption("collectonly"):
        config.stash[RESULTS_LOG] = guard.open_results(config, machine.session_facts())


def _cache_dir(config) -> Path:
    from mnistbench.data import default_cache_dir

    return default_cache_dir(options.get(config, "cache-dir"))


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _no_cuda_reason() -> str:
    import torch

    return (f"gpu case: no CUDA device visible to torch {torch.__version__} "
            f"(built for CUDA {torch.version.cuda or 'none'}); run it on a GPU machine")


def pytest_report_collectionfinish(config, start_path, items):
    """Before a long run: how many cases per device, and about how long on this CPU."""
    cases = [c for c in map(case_of, items) if c is not None]
    calibration = config.stash[CALIBRATION] = estimate.calibrate(cases, _cache_dir(config))
    lines = config.stash.get(guard.NOTES, []) + estimate.estimate_lines(cases, _cuda(), calibration)
    shard = shard_of(config)
    if shard:
        lines.insert(0, f"mnistbench: shard {shard[0]}/{shard[1]}")
    if cases and not config.getoption("collectonly"):
        lines += _check_machine(config)
    return lines


def _check_machine(config) -> list[str]:
    """Sample the machine once before the first case; the state goes into the session's machine facts."""
    state = machine.machine_state()
    machine.session_facts()["machine_state"] = state
    if not state["warnings"]:
        return ["mnistbench: machine check: no other busy process on our cores, nothing else on the GPU"]
    block = [f"mnistbench: machine check, {len(state['warnings'])} warning(s); timings may not be comparable:"]
    block += [f"  - {w}" for w in state["warnings"]]
    if options.get(config, "strict-machine"):
        pytest.exit("\n".join(block + ["--mb-strict-machine: stopped before the first case."]), returncode=4)
    return block


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def data_dir(pytestconfig) -> Path:
    from mnistbench.data import default_data_dir

    return default_data_dir(options.get(pytestconfig, "data-dir"))


class Splits:
    """The session's SplitCache, where a data error fails the case with its message alone."""

    def __init__(self, cache):
        self.cache = cache

    def get(self, case):
        from mnistbench.data import DataError

        try:
            return self.cache.get(case)
        except DataError as exc:
            pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def splits(pytestconfig, data_dir) -> Splits:
    from mnistbench.data import SplitCache, offline_by_default

    offline = options.get(pytestconfig, "offline") or offline_by_default()
    return Splits(SplitCache(data_dir, options.get(pytestconfig, "cache-dir"), not offline))


@pytest.fixture(scope="session")
def baselines() -> dict:
    """Baseline records (classic path, sklearn backend) by twin key, so the twin that runs
    after it records its ratio (record.TWINS)."""
    return {}


@pytest.fixture(scope="session")
def results_log(pytestconfig):
    """Opened (and locked) at the end of collection, before the first case: see guard.open_results."""
    if RESULTS_LOG not in pytestconfig.stash:  # a case reached some other way than collection
        pytestconfig.stash[RESULTS_LOG] = guard.open_results(pytestconfig, machine.session_facts())
    return pytestconfig.stash[RESULTS_LOG]


@pytest.fixture(scope="session")
def run_stamp(pytestconfig) -> dict:
    """Where a record ran, stamped on each one: which shard, which node, which visible GPU(s)."""
    shard = shard_of(pytestconfig)
    stamp = {"node": platform.node(), "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    if shard:
        stamp.update(shard=shard[0], shards=shard[1])
    return stamp


@pytest.fixture(scope="session")
def progress(pytestconfig):
    """One line per epoch on the terminal, past output capture; silent under -q."""
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    if reporter is None or pytestconfig.get_verbosity() < 0:
        return None

    def say(line: str) -> None:
        if capture is None:
            reporter.write_line(line)
            return
        with capture.global_and_fixture_disabled():
            reporter.ensure_newline()
            reporter.write_line(line)

    return say


@pytest.fixture(scope="session")
def case_watch():
    """The machine check at each case's start and end (the session's own check runs before the first)."""
    return machine.CaseWatch()


@pytest.fixture
def run_case(request, pytestconfig, benchmark, splits, results_log, baselines, progress, run_stamp, case_watch):
    """Runs one case of any kind under pytest-benchmark and returns its record; the stamp goes into
    extra_info first, and bench writes extra_info whole to the results file."""
    from mnistbench.suite import bench

    repeat = request.node.get_closest_marker("mb_repeat")

    def run(case: Case) -> dict:
        benchmark.extra_info.update(run_stamp)
        benchmark.extra_info.update(estimate.case_fields(case, pytestconfig.stash.get(CALIBRATION, None)))
        benchmark.mb_started = time.perf_counter()  # bench records the case's wall time from here
        if repeat is not None:
            benchmark.extra_info["repeat"] = repeat.args[0]
        if case.kind == "flops":
            return bench.run_flops(benchmark, case, results_log)
        if case.kind == "svm":
            return bench.run_svm(benchmark, case, splits.get(case), results_log, baselines, watch=case_watch)
        try:
            return bench.run_train(benchmark, case, splits.get(case), results_log, baselines, watch=case_watch,
                                   check_graph=options.get(pytestconfig, "check-graph"), progress=progress)
        except bench.ContextLost as lost:  # recorded; nothing more can run on this GPU in this process
            pytestconfig.stash[CONTEXT_LOST] = str(lost)
            request.session.shouldstop = "the CUDA context died"
            pytest.fail(str(lost), pytrace=False)

    return run


# ---------------------------------------------------------------- machine info


@pytest.hookimpl(wrapper=True)
def pytest_benchmark_generate_json(benchmarks):
    """A run stopped mid-case (Ctrl-C, a Slurm time limit) leaves a benchmark without a single
    round, on which pytest-benchmark fails writing its JSON: dropped, so the finished cases are saved."""
    benchmarks[:] = [bench for bench in benchmarks if bench]  # a benchmark is falsy until a round ends
    return (yield)


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["mnistbench"] = machine.session_facts()


def pytest_sessionfinish(session, exitstatus):
    """--mb-compare BASE: the gate's verdict on this session's records; a regression fails the session.
    A session stopped by a dead CUDA context exits CONTEXT_LOST_EXIT, which `mnistbench launch` resumes.
    What loading the inputs warns about is printed in the summary, never raised."""
    config = session.config
    log = config.stash.get(RESULTS_LOG, None)
    if log is not None:
        estimate.remember(_cache_dir(config), log.records)
    _write_report(config, log)
    if CONTEXT_LOST in config.stash:
        session.exitstatus = CONTEXT_LOST_EXIT
        return
    base, log = options.get(config, "compare"), config.stash.get(RESULTS_LOG, None)
    if not base or log is None or not log.records:
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line, status = _gate(config, log, base)
    config.stash[GATE_LINE] = "\n".join([f"mnistbench gate: {w.message}" for w in caught] + [line])
    if status is not None:
        session.exitstatus = status


def _gate(config, log, base: str) -> tuple[str, pytest.ExitCode | None]:
    from mnistbench.results import gate
    from mnistbench.results.load import ReportInputError, load

    try:
        noise = load([options.get(config, "noise")]) if options.get(config, "noise") else None
        new = [{**rec, "machine": log.machine, "source": str(log.path)} for rec in log.records]
        verdicts = gate.verdicts(load([base]), new, options.get(config, "fail-on") or DEFAULT_FAIL_ON, noise=noise)
    except ReportInputError as exc:
        return f"mnistbench gate: cannot compare: {exc}", pytest.ExitCode.USAGE_ERROR
    failed = pytest.ExitCode.TESTS_FAILED if gate.failed(verdicts) else None
    return f"mnistbench gate against {base}: {gate.summary(verdicts)}", failed


def pytest_terminal_summary(terminalreporter, config):
    """Warnings recorded in cases (they never fail a benchmark case), where the records went, and after a
    dead CUDA context the cases not run and how to resume them."""
    log = config.stash.get(RESULTS_LOG, None)
    if log is None or not log.records:
        return
    if CONTEXT_LOST in config.stash:
        _say_context_lost(terminalreporter, config, log)
    warned = [r for r in log.records if r.get("warnings")]
    if warned:
        terminalreporter.section("mnistbench: warnings recorded in cases")
        for rec in warned:
            for text in rec["warnings"]:
                terminalreporter.write_line(f"{rec['case_id']}: {text}")
    terminalreporter.write_line(f"mnistbench: {len(log.records)} record(s) in {log.path}")
    if REPORT_LINE in config.stash:
        terminalreporter.write_line(config.stash[REPORT_LINE])
    stopped = [r["case_id"] for r in log.records if r.get("status") == "interrupted"]
    if stopped:
        terminalreporter.write_line(f"mnistbench: interrupted in {', '.join(stopped)}, recorded with its finished "
                                    f"epochs; --mb-resume {log.path} runs it again and every case not yet ok")
    if GATE_LINE in config.stash:
        terminalreporter.write_line(config.stash[GATE_LINE] + " (details: mnistbench compare BASE "
                                    f"{log.path} --fail-on ...)")


def _write_report(config, log) -> None:
    """--mb-report DIR: the results file's report, by the report command itself in a process of its own
    (the pytest side never imports the report), so the main job is one command. Its failure is a line,
    not a failed session: every record is in the results file, to report on again."""
    out = options.get(config, "report")
    if not out or log is None or not log.records:
        return
    done = subprocess.run([sys.executable, "-m", "mnistbench", "report", str(log.path), "--out", out],
                          capture_output=True, text=True, check=False)
    why = (done.stderr.strip().splitlines() or ["no message"])[-1]
    config.stash[REPORT_LINE] = (f"mnistbench: report in {Path(out) / 'report.md'}" if done.returncode == 0 else
                                 f"mnistbench: the report could not be written ({why}); run `mnistbench report "
                                 f"{log.path} --out {out}`")


def _say_context_lost(terminalreporter, config, log) -> None:
    recorded = {rec["case_id"] for rec in log.records}
    left = [case_id for case_id in config.stash.get(SELECTED, []) if case_id not in recorded]
    terminalreporter.section("mnistbench: the CUDA context died; the session stopped")
    terminalreporter.write_line(config.stash[CONTEXT_LOST])
    terminalreporter.write_line(f"{len(left)} case(s) not run: " + (", ".join(left) or "none"))
    terminalreporter.write_line(f"Every finished case is in {log.path}. Resume with the same command and "
                                f"--mb-resume {log.path} (mnistbench launch resumes such a shard once by itself).")
