"""`mnistbench report`, `mnistbench compare` and `mnistbench history`: the report's commands.

Exit status 0 when the output was written (and compare's gate, when asked for, passed), 1 when
the gate found a regression or the output folder cannot be written, 2 for an input that is
not the suite's output (or a usage error). Warnings (skipped lines, runs read twice) go to
stderr after the run.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from mnistbench.cases.registry import ConfigError
from mnistbench.report.compare import compare_blocks, run_gate, write_compare
from mnistbench.report.history import history_blocks, write_history
from mnistbench.report.markdown import render_markdown
from mnistbench.report.sections import write_report
from mnistbench.results import gate, paths
from mnistbench.results.load import ReportInputError, load


def guarded(command):
    """A command whose bad inputs and unwritable outputs are one line on stderr and an exit status."""

    def run(argv: list[str]) -> int:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                return command(argv)
            except ReportInputError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            except OSError as exc:  # the output folder, not the inputs: those are ReportInputError
                print(f"error: cannot write the output: {exc}", file=sys.stderr)
                return 1
            finally:
                for w in caught:
                    print(f"warning: {w.message}", file=sys.stderr)

    run.__doc__ = command.__doc__
    return run


def _check_out(out: Path | None) -> None:
    """The output folder, checked before any input is read: an unwritable one is one line, at once."""
    why = out and paths.folder_to_write(out)
    if why:
        raise OSError(f"--out {out}: {why}")


@guarded
def report_main(argv: list[str]) -> int:
    """Tables (Markdown + CSV) and plots (PNG) from runs."""
    parser = argparse.ArgumentParser(
        prog="mnistbench report",
        description="Tables (Markdown + CSV) and plots (PNG) from mnistbench runs. To compare two runs case by "
                    "case: mnistbench compare A B; a trend over saved runs: mnistbench history DIR.")
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="pytest-benchmark JSON (--benchmark-json), results lines (.jsonl), a run folder "
                             "of `mnistbench launch` (all its shards) or a folder of JSON such as .benchmarks/")
    parser.add_argument("--out", type=Path, default=Path("reports/report"), metavar="DIR",
                        help="folder for report.md, its CSVs and PNGs (default: reports/report)")
    args = parser.parse_args(argv)
    _check_out(args.out)
    print(write_report(load(args.files), args.out))
    return 0


@guarded
def compare_main(argv: list[str]) -> int:
    """Two runs case by case; with --fail-on, the gate."""
    parser = argparse.ArgumentParser(
        prog="mnistbench compare",
        description="Join the cases of A and B by configuration (device, seed, pin_memory, num_workers left "
                    "out) and show time and accuracy side by side; A = CPU run, B = GPU run gives the GPU "
                    "speedup. With --fail-on, A is the baseline and B the new run, and the exit status is 1 "
                    "when a case got worse past a threshold with p < alpha (Welch's t-test).")
    parser.add_argument("a", metavar="A", help="JSON, .jsonl or .benchmarks folder (the baseline)")
    parser.add_argument("b", metavar="B", help="JSON, .jsonl or .benchmarks folder (the new run)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="also write compare.md, compare.csv (and gate.csv with --fail-on) here "
                             "(default: print only)")
    parser.add_argument("--fail-on", type=_threshold, action="append", default=[], metavar="METRIC:LIMIT",
                        help="gate: time:+N%% (N percent slower) or acc:-Npt (N points less accurate); "
                             "once per metric (default: no gate, exit 0)")
    parser.add_argument("--alpha", type=_alpha, default=gate.DEFAULT_ALPHA,
                        help=f"gate: significance level of the t-test (default: {gate.DEFAULT_ALPHA})")
    parser.add_argument("--noise", metavar="PATH",
                        help="repeated runs of the same cases, a file or a folder (best: several separate sessions, "
                             "such as .benchmarks/): their time CV goes beside each time, and a time threshold "
                             "becomes max(threshold, 3 x CV) (default: none)")
    parser.add_argument("--across-machines", action="store_true",
                        help="gate: judge cases that ran on different hardware too (default: speed only)")
    args = parser.parse_args(argv)
    if (args.alpha != gate.DEFAULT_ALPHA or args.across_machines) and not args.fail_on:
        parser.error("--alpha and --across-machines set the gate: give --fail-on too")
    _check_out(args.out)
    a, b = load([args.a]), load([args.b])
    noise = load([args.noise]) if args.noise else None
    gated = run_gate(a, b, args.fail_on, args.alpha, noise, args.across_machines) if args.fail_on else None
    if args.out:
        path, text = write_compare(a, b, args.out, noise=noise, gated=gated)
        print(text)
        print(f"wrote {path} and {path.with_suffix('.csv')}", file=sys.stderr)
    else:
        print(render_markdown(compare_blocks(a, b, noise=noise, gated=gated)))
    if gated:
        print(f"gate: {gate.summary(gated.verdicts)}", file=sys.stderr)
    return 1 if gated and gate.failed(gated.verdicts) else 0


def _threshold(text: str) -> gate.Threshold:
    try:
        return gate.Threshold.parse(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"Invalid alpha {text!r}: expected a probability between 0 and 1, "
                                         "e.g. 0.05.")
    return value


@guarded
def history_main(argv: list[str]) -> int:
    """A trend per configuration over saved runs."""
    parser = argparse.ArgumentParser(
        prog="mnistbench history",
        description="A trend table per configuration: time and accuracy run after run, by run date and commit, "
                    "from a folder of saved runs (.benchmarks/ from --benchmark-autosave) or any report inputs.")
    parser.add_argument("files", nargs="+", metavar="DIR",
                        help="pytest-benchmark storage folder (.benchmarks/), JSON or .jsonl files")
    parser.add_argument("--out", type=Path, metavar="DIR", help="also write history.md and a CSV per table here "
                                                                  "(default: print only)")
    args = parser.parse_args(argv)
    _check_out(args.out)
    records = load(args.files)
    if args.out:
        path, text = write_history(records, args.out)
        print(text)
        print(f"wrote {path}", file=sys.stderr)
    else:
        print(render_markdown(history_blocks(records)))
    return 0
