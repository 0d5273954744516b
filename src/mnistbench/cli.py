"""The one command: `mnistbench SUBCOMMAND ...` (also `python -m mnistbench ...`).

The benchmarks themselves run under pytest (`pytest benchmarks ...`); this command is
everything around them: the report, comparing and tracking runs, merging and launching
shards, preparing the data, checking a GPU machine. Each subcommand lives beside the code
it drives and is imported only when it runs, so `mnistbench --help` answers at once and
this module, the top of the package's layers, reaches the report only through the table
below.
"""

from __future__ import annotations

import importlib
import sys
from typing import NamedTuple


class Subcommand(NamedTuple):
    target: str  # "module:function"; the function takes the arguments after the subcommand's name
    summary: str


SUBCOMMANDS = {
    "report": Subcommand("mnistbench.report.commands:report_main",
                         "tables (Markdown + CSV) and plots (PNG) from runs' JSON or results files"),
    "compare": Subcommand("mnistbench.report.commands:compare_main",
                          "two runs case by case; with --fail-on, a verdict and an exit status (the gate)"),
    "history": Subcommand("mnistbench.report.commands:history_main",
                          "each configuration's time and accuracy run after run, from saved runs"),
    "merge": Subcommand("mnistbench.scale.merge:main", "shards' pytest-benchmark JSON into one file"),
    "launch": Subcommand("mnistbench.scale.launch:main",
                         "a selection as shards: one pytest per GPU or CPU set, locally or as a Slurm array"),
    "data": Subcommand("mnistbench.data:main", "verify (and with --download fetch) the datasets"),
    "gpu-check": Subcommand("mnistbench.suite.gpu_check:main",
                            "check a GPU machine, run the GPU smoke set and throughput, write their report"),
}

FIRST_STEPS = """\
mnistbench: ResNets and SVMs on MNIST and Fashion-MNIST as a pytest-benchmark suite.

Start here, in a checkout (pip install -e .):
  pytest benchmarks -m "smoke and cpu" --mb-seeds 3 --mb-axis train_limit=10000 --mb-report reports/mine
      the main job and its report: minutes on a 2-core CPU (it prints its estimate first)
  pytest -m "not slow"
      the test command
"""


def usage() -> str:
    width = max(map(len, SUBCOMMANDS))
    lines = [f"  {name:<{width}}  {sub.summary}" for name, sub in SUBCOMMANDS.items()]
    return (FIRST_STEPS + "\nusage: mnistbench SUBCOMMAND [ARGS]   (mnistbench SUBCOMMAND --help for its options)\n"
            "\nsubcommands:\n" + "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage(), end="")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"mnistbench: unknown subcommand {name!r}. Valid values: {', '.join(SUBCOMMANDS)}.\n\n{usage()}",
              end="", file=sys.stderr)
        return 2
    module, _, function = SUBCOMMANDS[name].target.partition(":")
    try:
        return getattr(importlib.import_module(module), function)(rest)
    except SystemExit as exc:  # argparse's --help and usage errors
        return exc.code if isinstance(exc.code, int) else 2
