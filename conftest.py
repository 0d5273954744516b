"""pytest wiring for mnistbench: options, the grid as parameters, data fixtures, machine info.

Benchmark modules declare `PRESET` and `KIND`; `pytest_generate_tests` turns the preset's
cases of that kind into parameters (id and marks from the case), so the grid lives in
`mnistbench.grids` alone. Every option is checked when pytest parses it, before any
data loads, and a bad value is a usage error that names the valid ones.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
from pathlib import Path

import pytest

from mnistbench import config as cfg
from mnistbench import grids
from mnistbench.config import ConfigError
from mnistbench.record import config_key, make_record
from mnistbench.results import ResultsFileError, finished_keys

pytest_plugins = ["pytester"]

RESULTS_DIR = Path(__file__).parent / "reports"


# ---------------------------------------------------------------- option parsers


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected whole numbers, e.g. 10 or 5,10") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: every value must be 1 or more")
    return values


def _positive_int(text: str) -> int:
    (value,) = _ints(text) if "," not in text else (None,)
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r}: expected one whole number")
    return value


def _choices(valid):
    def parse(text: str) -> tuple[str, ...]:
        values = tuple(v.strip() for v in text.split(","))
        for v in values:
            if v not in valid:
                raise argparse.ArgumentTypeError(f"{v!r} is not one of: {', '.join(valid)}")
        return values

    return parse


def _one_of(valid):
    def parse(text: str) -> str:
        if text not in valid:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of: {', '.join(valid)}")
        return text

    return parse


PIN = {"on": (True,), "off": (False,), "both": (True, False)}


def pytest_addoption(parser):
    group = parser.getgroup("mnistbench", "mnistbench: which cases, on which data")
    add = group.addoption
    add("--data-dir", metavar="DIR", help="dataset root holding <Name>/raw/ "
        "(default: $MNISTBENCH_DATA_DIR, else ./data)")
    add("--cache-dir", metavar="DIR", help="decoded-tensor cache "
        "(default: $MNISTBENCH_CACHE_DIR, else ~/.cache/mnistbench)")
    add("--offline", action="store_true", help="never download missing data "
        "(default: download when missing, unless $MNISTBENCH_OFFLINE is set)")
    add("--preset", type=_choices(cfg.PRESETS), metavar="NAMES",
        help=f"comma-separated presets to collect: {', '.join(cfg.PRESETS)} (default: all)")
    add("--epochs", type=_ints, metavar="N[,N...]",
        help="epochs for q1a and q2; a list makes it an axis (default: q1a 10, q2 1)")
    add("--pin-memory", type=_one_of(tuple(PIN)), default="on",
        help="DataLoader pin_memory: on, off or both (an axis) (default: on)")
    add("--image-size", type=_ints, metavar="PX[,PX...]",
        help="input size for q1a and q2, resized on the device; a list is an axis (default: 28)")
    add("--train-limit", type=_positive_int, metavar="N",
        help="train q1a, q1b and q2 on N images of the train split, stratified (default: all)")
    add("--seeds", type=_positive_int, default=1, metavar="N",
        help="repeat every case with seeds 0..N-1 (default: 1)")
    add("--split", type=_one_of(cfg.SPLITS), default="pooled",
        help="pooled (70/10/20 of all 70,000) or official (60k/10k) (default: pooled)")
    add("--path", type=_one_of(cfg.PATHS), default="fast",
        help="fast (data on the device, and on a GPU bf16, channels_last, fused optimizer, CUDA graph) "
        "or classic (the write-ups' DataLoader loop) (default: fast)")
    add("--loader", type=_one_of(cfg.LOADERS), default="auto",
        help="auto (the path's), dataloader (torch DataLoader, per-sample transforms) or tensor (default: auto)")
    add("--amp", type=_one_of(cfg.AMPS), default="auto",
        help="autocast: auto (fp16 on cuda, off on cpu), off, fp16 or bf16 (default: auto)")
    add("--deterministic", action="store_true",
        help="torch.use_deterministic_algorithms for q1a/q2: bitwise repeatable on a GPU, slower (default: off)")
    add("--svm-backend", type=_choices(cfg.SVM_BACKENDS), default=("sklearn",), metavar="NAMES",
        help="SVM backends for q1b: sklearn, sklearnex (scikit-learn-intelex); a list is an axis (default: sklearn)")
    add("--results", metavar="FILE", help="append one JSON line per finished case "
        "(default: reports/results-<timestamp>.jsonl)")
    add("--resume", metavar="FILE", help="skip cases recorded ok in FILE and append the rest to it")


def grid_options(config) -> grids.GridOptions:
    opt = config.getoption
    return grids.GridOptions(
        epochs=opt("--epochs"),
        pin_memory=PIN[opt("--pin-memory")],
        image_sizes=opt("--image-size") or (28,),
        train_limit=opt("--train-limit"),
        seeds=opt("--seeds"),
        split=opt("--split"),
        path=opt("--path"),
        loader=opt("--loader"),
        amp=opt("--amp"),
        svm_backends=opt("--svm-backend"),
        deterministic=opt("--deterministic"),
    )


def pytest_configure(config):
    limit = config.getoption("--train-limit")
    split = config.getoption("--split")
    if limit is not None and limit > grids.SPLIT_TRAIN[split]:
        raise pytest.UsageError(
            f"--train-limit {limit} is larger than the {split} train split "
            f"({grids.SPLIT_TRAIN[split]} images); use at most {grids.SPLIT_TRAIN[split]}."
        )
    if config.getoption("--results") and config.getoption("--resume"):
        raise pytest.UsageError("--resume FILE appends to FILE; give --results or --resume, not both.")


# ---------------------------------------------------------------- the grid as parameters


def pytest_generate_tests(metafunc):
    if "case" not in metafunc.fixturenames:
        return
    preset = metafunc.module.PRESET
    kind = getattr(metafunc.cls, "KIND", None) or metafunc.module.KIND
    try:
        cases = [c for c in grids.build(preset, grid_options(metafunc.config)) if c.kind == kind]
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    params = [
        pytest.param(c, id=c.id, marks=[getattr(pytest.mark, m) for m in grids.marker_names(c)])
        for c in cases
    ]
    metafunc.parametrize("case", params)


def pytest_collection_modifyitems(config, items):
    import torch

    presets = config.getoption("--preset")
    resume = config.getoption("--resume")
    done = set()
    if resume:
        try:
            done = finished_keys(resume)
        except ResultsFileError as exc:
            raise pytest.UsageError(str(exc)) from None
    keep, dropped = [], []
    no_cuda = pytest.mark.skip(reason=(
        f"gpu case: no CUDA device visible to torch {torch.__version__} "
        f"(built for CUDA {torch.version.cuda or 'none'}); run it on a GPU machine"))
    for item in items:
        case = getattr(item, "callspec", None) and item.callspec.params.get("case")
        if case is None:
            keep.append(item)
            continue
        if presets and case.preset not in presets:
            dropped.append(item)
            continue
        if case.device == "cuda" and not torch.cuda.is_available():
            item.add_marker(no_cuda)
        if done and config_key(make_record(case)) in done:
            item.add_marker(pytest.mark.skip(reason=f"already recorded ok in {resume}"))
        keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


# ---------------------------------------------------------------- fixtures


class Splits:
    """Decoded datasets and their splits, built on first use and kept for the session."""

    def __init__(self, data_dir, cache_dir, download):
        self.data_dir, self.cache_dir, self.download = data_dir, cache_dir, download
        self._raw, self._splits, self._errors = {}, {}, {}

    def get(self, case):
        from mnistbench.data import DataError, load_raw, make_split

        if case.dataset in self._errors:
            pytest.fail(self._errors[case.dataset], pytrace=False)
        key = (case.dataset, case.split, case.split_seed)
        if key not in self._splits:
            try:
                if case.dataset not in self._raw:
                    self._raw[case.dataset] = load_raw(
                        case.dataset, self.data_dir, self.cache_dir, self.download)
            except DataError as exc:
                self._errors[case.dataset] = str(exc)
                pytest.fail(str(exc), pytrace=False)
            self._splits[key] = make_split(self._raw[case.dataset], case.split, case.split_seed)
        return self._splits[key]


@pytest.fixture(scope="session")
def data_dir(pytestconfig) -> Path:
    from mnistbench.data import default_data_dir

    return default_data_dir(pytestconfig.getoption("--data-dir"))


@pytest.fixture(scope="session")
def splits(pytestconfig, data_dir) -> Splits:
    from mnistbench.data import offline_by_default

    offline = pytestconfig.getoption("--offline") or offline_by_default()
    return Splits(data_dir, pytestconfig.getoption("--cache-dir"), not offline)


@pytest.fixture(scope="session")
def baselines():
    """Records of baseline cases (classic path, sklearn backend) by configuration, so the
    fast or sklearnex twin that runs after it can record its speedup."""
    return {}


@pytest.fixture(scope="session")
def results_log(pytestconfig):
    from mnistbench.results import ResultsLog

    path = pytestconfig.getoption("--resume") or pytestconfig.getoption("--results")
    if not path:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = RESULTS_DIR / f"results-{stamp}.jsonl"
    return ResultsLog(path, machine=machine_facts())


# ---------------------------------------------------------------- machine info


def machine_facts() -> dict:
    import torch

    from mnistbench.record import cpu_model, versions

    facts = {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "node": platform.node(),
        **versions(),
        "cudnn_version": str(torch.backends.cudnn.version() or "") if torch.cuda.is_available() else "",
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "git_commit": _git_commit(),
    }
    return facts


def _git_commit() -> str:
    """The suite's own revision, '+dirty' when the tree has uncommitted changes."""
    import subprocess

    def git(*args):
        return subprocess.run(["git", *args], cwd=Path(__file__).parent, capture_output=True,
                              text=True, timeout=10).stdout.strip()

    try:
        sha = git("rev-parse", "--short", "HEAD")
        return sha + ("+dirty" if sha and git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return ""


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["mnistbench"] = machine_facts()
