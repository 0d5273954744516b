"""`mnistbench gpu-check`: on a new GPU machine, check it, run the GPU smoke set and throughput, report.

    mnistbench gpu-check [--out reports/gpu] [--data-dir DIR] [--cache-dir DIR] [--check-graph K] [--dry-run]

First the environment, one line per problem: a CUDA device visible to torch, the versions
the suite pins, both datasets present and verified (never downloaded here: the node may be
offline), fvcore importable. Then two pytest runs of the selection shipped in the package
(suite/gpu_cases.py, so an installed copy needs no checkout):

    the smoke preset's GPU cases with --mb-check-graph 20   (every GPU code path, graph vs eager)
    the throughput preset's GPU cases                       (fast path against the classic loop)
    mnistbench report <their results files> --out <folder>

each run writing its pytest-benchmark JSON and its results lines into
reports/gpu/<gpu name>/ (say reports/gpu/nvidia-h100-80gb-hbm3/), where the report goes
too; then a short summary. Exit status: 0 everything passed; 1 a run or the report failed
(whatever was written stays); 2 this machine cannot run it (no CUDA, data or a package
missing): nothing was run.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mnistbench.suite import gpu_cases

RUNS = (
    # name, the class of gpu_cases.py it runs, also compare graph and eager steps
    ("smoke", "TestGpuSmoke", True),
    ("throughput", "TestGpuThroughput", False),
)


class NotReady(RuntimeError):
    """This machine cannot run the GPU check; the message says what is missing and what to do."""


@dataclass(frozen=True)
class Options:
    out: Path  # reports/gpu: the GPU's folder goes below it
    data_dir: str | None
    cache_dir: str | None
    check_graph: int  # steps run with and without the CUDA graph per smoke case


def slug(name: str) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'nvidia-h100-80gb-hbm3': a folder name."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "gpu"


def commands(folder: Path, options: Options, python: str = sys.executable) -> list[list[str]]:
    """The pytest runs and the report, as argument lists (run from any folder)."""
    data = [f"--mb-data-dir={options.data_dir}"] if options.data_dir else []
    data += [f"--mb-cache-dir={options.cache_dir}"] if options.cache_dir else []
    runs = []
    for name, selection, check in RUNS:
        runs.append([python, "-m", "pytest", f"{gpu_cases.__file__}::{selection}", "-m", "gpu",
                     "-p", "mnistbench.suite.plugin", "-p", "no:cacheprovider", "--mb-offline", *data,
                     *([f"--mb-check-graph={options.check_graph}"] if check else []),
                     f"--benchmark-json={folder / f'{name}.json'}", f"--mb-results={folder / f'{name}.jsonl'}"])
    report = [python, "-m", "mnistbench", "report", *(str(folder / f"{name}.jsonl") for name, _, _ in RUNS),
              "--out", str(folder)]
    return [*runs, report]


def check_environment(options: Options) -> tuple[str, list[str]]:
    """The GPU's name and one line per fact worth printing; raises NotReady with one line."""
    try:
        import torch
    except ImportError:
        raise NotReady("torch is not installed: pip install -e . (offline: see README, 'The GPU check')") from None
    if not torch.cuda.is_available():
        raise NotReady(
            f"no CUDA device visible to torch {torch.__version__} (built for CUDA {torch.version.cuda or 'none'}): "
            "run this on a GPU machine with a CUDA build of torch (nvidia-smi should list the GPU)")
    _check_pins()
    if importlib.util.find_spec("fvcore") is None:
        raise NotReady("fvcore is not importable: pip install fvcore (it counts the FLOPs the smoke set checks)")
    _check_data(options)
    from mnistbench.suite.machine import gpu_facts, versions

    gpu = gpu_facts()[0]
    v = versions()
    facts = [f"GPU 0: {gpu['name']}, compute capability {gpu['compute_capability']}, {gpu['memory_gib']} GiB"
             + (f", driver {gpu['driver_version']}" if "driver_version" in gpu else ""),
             f"torch {v['torch_version']} (CUDA {v['cuda_version']}, cuDNN {torch.backends.cudnn.version()}), "
             f"torchvision {v['torchvision_version']}, pytest-benchmark "
             f"{importlib.metadata.version('pytest-benchmark')}"]
    return gpu["name"], facts


def _check_pins() -> None:
    """Every installed dependency at least the version the suite pins (pyproject's dependencies)."""
    from packaging.requirements import Requirement

    try:
        required = importlib.metadata.requires("mnistbench") or []
    except importlib.metadata.PackageNotFoundError:
        raise NotReady("mnistbench is not installed: pip install -e . in the checkout") from None
    for line in required:
        req = Requirement(line)
        if req.marker is not None:  # extras (dev, fast-svm) are optional
            continue
        try:
            have = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            raise NotReady(f"{req.name} is not installed (the suite needs {req}): pip install -e .") from None
        if not req.specifier.contains(have, prereleases=True):
            raise NotReady(f"{req.name} {have} is installed; the suite needs {req}: pip install -e . --upgrade")


def _check_data(options: Options) -> None:
    from mnistbench.cases.registry import DATASETS
    from mnistbench.data import DataError, load_raw

    for name in DATASETS:
        try:
            load_raw(name, options.data_dir, options.cache_dir, download=False)
        except DataError as exc:
            raise NotReady(str(exc)) from None


def summary(folder: Path) -> list[str]:
    """What the results files say: counts by status, failures, speedups, graph checks."""
    from mnistbench.results.store import read_results

    lines = []
    for name, _, _ in RUNS:
        path = folder / f"{name}.jsonl"
        records = read_results(path) if path.exists() else []
        counts: dict[str, int] = {}
        for rec in records:
            counts[rec["status"]] = counts.get(rec["status"], 0) + 1
        lines.append(f"{name}: {len(records)} cases, " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
        for rec in records:
            notes = []
            if rec["status"] != "ok":
                notes.append(f"{rec['status']}: {rec['message']}")
            if "speedup_vs_classic" in rec:
                notes.append(f"{rec['speedup_vs_classic']:.1f}x the classic loop")
            if rec.get("graph_check_max_rel") is not None:
                notes.append(f"graph vs eager max rel diff {rec['graph_check_max_rel']:.1e}")
            if rec.get("cuda_graph_fallback"):
                notes.append(f"graph fallback: {rec['cuda_graph_fallback']}")
            if rec.get("warnings"):
                notes.append(f"{len(rec['warnings'])} warning(s)")
            if notes:
                lines.append(f"  {rec['case_id']}: " + "; ".join(notes))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mnistbench gpu-check",
        description="Check a GPU machine, run the GPU smoke set (with --mb-check-graph) and the throughput "
                    "cases, and write their JSON, results lines and report into OUT/<gpu name>/.")
    parser.add_argument("--out", type=Path, default=Path("reports") / "gpu", metavar="DIR",
                        help="parent folder of the GPU's folder (default: reports/gpu)")
    parser.add_argument("--data-dir", metavar="DIR", help="dataset root (default: $MNISTBENCH_DATA_DIR, else ./data)")
    parser.add_argument("--cache-dir", metavar="DIR", help="decoded-tensor cache (default: $MNISTBENCH_CACHE_DIR, "
                                                           "else ~/.cache/mnistbench)")
    parser.add_argument("--check-graph", type=int, default=20, metavar="K",
                        help="steps run with and without the CUDA graph per smoke case (default: 20)")
    parser.add_argument("--dry-run", action="store_true",
                        help="check and print the commands, run nothing (default: run them)")
    args = parser.parse_args(argv)
    options = Options(args.out, args.data_dir, args.cache_dir, args.check_graph)
    try:
        gpu, facts = check_environment(options)
    except NotReady as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    folder = options.out / slug(gpu)
    print(*facts, f"writing into {folder}", sep="\n")
    steps = commands(folder, options)
    if args.dry_run:
        print(*(shlex.join(step) for step in steps), sep="\n")
        return 0
    folder.mkdir(parents=True, exist_ok=True)
    for name, _, _ in RUNS:  # a fresh run: the results files are appended to otherwise
        for suffix in (".json", ".jsonl"):
            (folder / f"{name}{suffix}").unlink(missing_ok=True)
    failed = False
    for step in steps:
        print(f"$ {shlex.join(step)}", flush=True)
        failed |= subprocess.run(step, check=False).returncode != 0
    print(*summary(folder), sep="\n")
    print(f"{'FAILED' if failed else 'passed'}: JSON, results and report in {folder}")
    return 1 if failed else 0
