"""The suite's command-line options: one group, one prefix, a validator each, defaults in the help.

Every option starts with `--mb-` because the plugin is installed as a pytest11 entry point
and so loads into every pytest session of the environment: unprefixed names such as
`--path` or `--seeds` would collide with other projects' options. Each value is checked
when pytest parses it, before any data loads, through config's one validator, so a bad
value is a usage error worded like every other: "Invalid split 'random'. Valid values: ...".
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from mnistbench.cases import case as cfg
from mnistbench.cases import grids
from mnistbench.cases.registry import SPLITS, ConfigError, check_choice, check_positive

PREFIX = "--mb-"
PIN = {"on": (True,), "off": (False,), "both": (True, False)}


def _checked(parse: Callable) -> Callable:
    """A parser whose ConfigError becomes argparse's usage error."""

    def run(text: str):
        try:
            return parse(text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    run.__name__ = parse.__name__
    return run


def _whole(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"Invalid {name} {text!r}: expected whole numbers, e.g. 10 or 5,10.") from None


def ints(name: str) -> Callable:
    def parse(text: str) -> tuple[int, ...]:
        values = tuple(_whole(name, v) for v in text.split(","))
        for v in values:
            check_positive(name, v, integer=True)
        return values

    return _checked(parse)


def one_int(name: str) -> Callable:
    def parse(text: str) -> int:
        check_positive(name, value := _whole(name, text), integer=True)
        return value

    return _checked(parse)


def choices(name: str, valid) -> Callable:
    def parse(text: str) -> tuple[str, ...]:
        values = tuple(v.strip() for v in text.split(","))
        for v in values:
            check_choice(name, v, valid)
        return values

    return _checked(parse)


def choice(name: str, valid) -> Callable:
    def parse(text: str) -> str:
        check_choice(name, text, valid)
        return text

    return _checked(parse)


@_checked
def axis(text: str) -> tuple[str, tuple]:
    """NAME=V1,V2 for any case field: the values are typed by the field (TrainCase, else SVMCase)."""
    name, sep, values = text.partition("=")
    if not sep or not values:
        raise argparse.ArgumentTypeError(f"Invalid axis {text!r}: expected NAME=VALUE[,VALUE...], e.g. lr=1e-3,1e-2.")
    owner = next((c for c in cfg.CASE_TYPES.values() if name in c.field_names()), cfg.TrainCase)
    return name, tuple(owner.parse_field(name, v) for v in values.split(","))


@_checked
def shard(text: str) -> tuple[int, int]:
    """I/N: this process runs shard I (0-based) of N."""
    index, sep, count = text.partition("/")
    if not (sep and index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise ConfigError(f"Invalid shard {text!r}: expected I/N with 0 <= I < N, e.g. 0/4.")
    return int(index), int(count)


@_checked
def fail_on(text: str):
    from mnistbench.results.gate import Threshold

    return Threshold.parse(text)


def shard_from_env(env) -> tuple[int, int] | None:
    """A scheduler's array index: Slurm job arrays, or Kubernetes indexed jobs with MNISTBENCH_SHARDS."""
    if "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
        first = int(env.get("SLURM_ARRAY_TASK_MIN", 0))
        return int(env["SLURM_ARRAY_TASK_ID"]) - first, int(env["SLURM_ARRAY_TASK_COUNT"])
    if "JOB_COMPLETION_INDEX" in env and "MNISTBENCH_SHARDS" in env:
        return int(env["JOB_COMPLETION_INDEX"]), int(env["MNISTBENCH_SHARDS"])
    return None


OPTIONS = (
    # name, argparse keywords (help ends with the default)
    ("data-dir", dict(metavar="DIR", help="dataset root holding <Name>/raw/ (default: $MNISTBENCH_DATA_DIR, "
                                          "else ./data)")),
    ("cache-dir", dict(metavar="DIR", help="decoded-tensor cache (default: $MNISTBENCH_CACHE_DIR, "
                                           "else ~/.cache/mnistbench)")),
    ("offline", dict(action="store_true", help="never download missing data (default: download when "
                                                "missing, unless $MNISTBENCH_OFFLINE is set)")),
    ("preset", dict(type=choices("preset", grids.PRESETS), metavar="NAMES",
                    help=f"comma-separated presets to collect: {', '.join(grids.PRESETS)} (default: all)")),
    ("epochs", dict(type=ints("epochs"), metavar="N[,N...]",
                    help="epochs for q1a and q2; a list makes it an axis (default: q1a 10, q2 1)")),
    ("pin-memory", dict(type=choice("pin-memory", tuple(PIN)), default="on",
                        help="DataLoader pin_memory: on, off or both (an axis) (default: on)")),
    ("image-size", dict(type=ints("image-size"), metavar="PX[,PX...]",
                        help="input size for q1a and q2, resized on the device; a list is an axis (default: 28)")),
    ("train-limit", dict(type=one_int("train-limit"), metavar="N",
                         help="train q1a, q1b and q2 on N images of the train split, stratified (default: all)")),
    ("seeds", dict(type=one_int("seeds"), default=1, metavar="N",
                   help="repeat every case with seeds 0..N-1 (default: 1)")),
    ("split", dict(type=choice("split", SPLITS), default="pooled",
                   help="pooled (70/10/20 of all images) or official (60k/10k) (default: pooled)")),
    ("path", dict(type=choice("path", cfg.PATHS), default="fast",
                  help="fast (data on the device; on a GPU also bf16, channels_last, fused optimizer, CUDA graph) "
                       "or classic (the write-ups' DataLoader loop) (default: fast)")),
    ("loader", dict(type=choice("loader", cfg.LOADERS), default="auto",
                    help="auto (the path's), dataloader (per-sample transforms) or tensor (default: auto)")),
    ("amp", dict(type=choice("amp", cfg.AMPS), default="auto",
                 help="autocast: auto (the path's choice), off, fp16 or bf16 (default: auto)")),
    ("deterministic", dict(action="store_true", help="torch.use_deterministic_algorithms for training cases: "
                                                      "bitwise repeatable on a GPU, slower (default: off)")),
    ("stop-at-target", dict(action="store_true",
                            help="end each training case at the first epoch whose validation accuracy meets its "
                                 "dataset's target (MLPerf's time to train); the report scores 5+ seeds as MLPerf "
                                 "does (default: run every epoch)")),
    ("repeat", dict(type=one_int("repeat"), default=1, metavar="K",
                    help="run every case K times (same seed): each record's `repeat` says which, and the report "
                         "and the compare gate read the spread as the measurement's noise (default: 1)")),
    ("svm-backend", dict(type=choices("svm-backend", cfg.SVM_BACKENDS), default=("sklearn",), metavar="NAMES",
                         help="SVM backends for q1b: sklearn, sklearnex; a list is an axis (default: sklearn)")),
    ("axis", dict(type=axis, action="append", default=[], metavar="NAME=V[,V...]",
                  help="set any case field as an axis in every preset that has it, e.g. lr=1e-3,1e-2; "
                       "repeatable (default: the presets' own values)")),
    ("check-graph", dict(type=one_int("check-graph"), default=0, metavar="K",
                         help="on a GPU, run K steps with and without the CUDA graph from the same start and "
                              "record how far the weights drift apart (default: off)")),
    ("shard", dict(type=shard, metavar="I/N",
                   help="run only shard I (0-based) of N, balanced by the grid's cost estimate; one process per "
                        "GPU or CPU set (default: $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT, or "
                        "$JOB_COMPLETION_INDEX/$MNISTBENCH_SHARDS, else all cases)")),
    ("strict-machine", dict(action="store_true",
                            help="stop before the first case when the machine check warns (another busy process "
                                 "on our cores, a powersave governor, another process on the GPU) (default: warn)")),
    ("compare", dict(metavar="BASE", help="after the run, judge it against BASE (JSON, results file or folder) "
                                          "with the gate of `mnistbench compare` (default: off)")),
    ("fail-on", dict(type=fail_on, action="append", default=[], metavar="METRIC:CHANGE",
                     help="with --mb-compare: time:+10%% or acc:-0.5pt; repeatable; the session fails on a "
                          "significant change past it (default: time:+10%% and acc:-0.5pt)")),
    ("noise", dict(metavar="DIR", help="with --mb-compare: earlier runs of the same cases whose spread widens "
                                       "each time threshold to 3x the measured noise (default: none)")),
    ("results", dict(metavar="FILE", help="append one JSON line per finished case "
                                          "(default: reports/results-<timestamp>.jsonl)")),
    ("resume", dict(metavar="FILE", help="skip cases recorded ok in FILE and append the rest to it (default: off)")),
    ("report", dict(metavar="DIR", help="when the session ends, write the report of its results file into DIR: "
                                        "the same as `mnistbench report RESULTS --out DIR` (default: off)")),
)


def add_options(parser) -> None:
    group = parser.getgroup("mnistbench", "mnistbench: which cases, on which data")
    for name, kwargs in OPTIONS:
        group.addoption(PREFIX + name, dest="mb_" + name.replace("-", "_"), **kwargs)


def get(config, name: str):
    return config.getoption("mb_" + name.replace("-", "_"))


def grid_options(config) -> grids.GridOptions:
    return grids.GridOptions(
        epochs=get(config, "epochs"),
        pin_memory=PIN[get(config, "pin-memory")],
        image_sizes=get(config, "image-size") or (28,),
        train_limit=get(config, "train-limit"),
        seeds=get(config, "seeds"),
        split=get(config, "split"),
        path=get(config, "path"),
        loader=get(config, "loader"),
        amp=get(config, "amp"),
        svm_backends=get(config, "svm-backend"),
        deterministic=get(config, "deterministic"),
        stop_at_target=get(config, "stop-at-target"),
        axes=tuple(get(config, "axis")),
        gpu_memory_bytes=gpu_memory_bytes(),
    )


def gpu_memory_bytes() -> int | None:
    """The first visible GPU's total memory, or None without CUDA (torch imported only here)."""
    import torch

    return torch.cuda.get_device_properties(0).total_memory if torch.cuda.is_available() else None
