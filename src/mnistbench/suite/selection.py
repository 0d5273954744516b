"""Which cases one pytest process runs: its shard, never under pytest-xdist, and what the selection
needs set before CUDA starts. Used by the plugin's hooks; no hook lives here."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from mnistbench.cases import grids
from mnistbench.cases.case import Case
from mnistbench.suite import options


def case_of(item) -> Case | None:
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get("case") if callspec else None
    return case if isinstance(case, Case) else None


def shard_of(config) -> tuple[int, int] | None:
    return options.get(config, "shard") or options.shard_from_env(os.environ)


def _xdist_on(config) -> bool:
    return bool(getattr(config.option, "numprocesses", None)) or getattr(config.option, "dist", "no") != "no"


def select_shard(config, items: list) -> list:
    """The items of this process's shard; the others are reported deselected."""
    index, count = shard_of(config)
    costs = {item.nodeid: (case.estimated_cpu_s() if (case := case_of(item)) else 1.0) for item in items}
    assigned = grids.assign_shards(costs, count)
    mine = [item for item in items if assigned[item.nodeid] == index]
    config.hook.pytest_deselected(items=[item for item in items if assigned[item.nodeid] != index])
    return mine


def refuse_xdist(config) -> None:
    """Checked in the controlling process, before workers start: a worker can only crash. The
    controller collects nothing, so the benchmark modules are found as their source declares them."""
    if not _xdist_on(config) or "PYTEST_XDIST_WORKER" in os.environ:
        return
    for arg in config.args:
        path = Path(arg.split("::")[0])
        files = [path] if path.is_file() else sorted(path.rglob("test_*.py")) if path.is_dir() else []
        if any(declares_preset(f) for f in files):
            raise pytest.UsageError(
                "mnistbench: benchmark cases cannot run under pytest-xdist (-n/--dist): pytest-benchmark turns "
                "itself off under xdist, and workers sharing cores corrupt each other's timings. Run one "
                "process per GPU or CPU set instead: --mb-shard I/N under any scheduler, or mnistbench launch.")


def declares_preset(path: Path) -> bool:
    """Whether a test module assigns PRESET at its top level or in a class: a benchmark module."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, SyntaxError):
        return False
    bodies = [tree.body] + [node.body for node in tree.body if isinstance(node, ast.ClassDef)]
    return any(isinstance(target, ast.Name) and target.id == "PRESET"
               for body in bodies for node in body if isinstance(node, ast.Assign)
               for target in (t for t in node.targets for t in (t.elts if isinstance(t, ast.Tuple) else [t])))


def set_cublas_workspace(cases: list[Case], cuda: bool) -> None:
    """Deterministic cuBLAS needs a fixed workspace, read when cuBLAS makes its first handle: set once,
    before any case initialises CUDA, when the selection holds a deterministic GPU case."""
    if any(getattr(c, "deterministic", False) and c.device_marker == "gpu" for c in cases) and cuda:
        from mnistbench.train.plan import CUBLAS_WORKSPACE

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
