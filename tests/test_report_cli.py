"""The mnistbench-report command end to end: files written, exit codes, and the two documents held
against golden copies.

Golden files: tests/fixtures/golden/report.md and compare.md are the documents this command
makes from the fixtures. When a change to them is intended, rewrite them with

    MNISTBENCH_UPDATE_GOLDEN=1 pytest tests/test_report_cli.py

and review `git diff tests/fixtures/golden/` like any other change. The inputs are named
relative to tests/, so the documents do not depend on where the checkout lives; every date
in them comes from the fixtures.
"""

import csv
import os
import subprocess
import sys
from pathlib import Path

from fixtures.records import CPU, CPU_NAME, GOLDEN, GPU, GPU_NAME, JSONL

from mnistbench.cli import main
from mnistbench.report.group import Table
from mnistbench.report.plots import Plot
from mnistbench.report.sections import report_blocks
from mnistbench.results.load import load

TESTS = Path(__file__).parent
UPDATE_GOLDEN = os.environ.get("MNISTBENCH_UPDATE_GOLDEN") == "1"
REPORT_INPUTS = [str(p.relative_to(TESTS)) for p in (CPU, GPU, JSONL)]
COMPARE_INPUTS = [str(p.relative_to(TESTS)) for p in (CPU, GPU)]


def matches_golden(name: str, text: str) -> bool:
    """Whether `text` is the golden copy; with MNISTBENCH_UPDATE_GOLDEN=1 it becomes the golden copy."""
    path = GOLDEN / name
    if UPDATE_GOLDEN:
        path.write_text(text, encoding="utf-8")
    return path.read_text(encoding="utf-8") == text


def test_report_md_is_the_golden_copy(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(TESTS)
    assert main(["report", *REPORT_INPUTS, "--out", str(tmp_path)]) == 0
    assert "repeat runs already read from" in capsys.readouterr().err
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert matches_golden("report.md", text), "report.md changed: see how to update the golden copy above"


def test_compare_md_is_the_golden_copy(tmp_path, monkeypatch):
    monkeypatch.chdir(TESTS)
    assert main(["compare", *COMPARE_INPUTS, "--out", str(tmp_path)]) == 0
    text = (tmp_path / "compare.md").read_text(encoding="utf-8")
    assert matches_golden("compare.md", text), "compare.md changed: see how to update the golden copy above"


def test_main_writes_report_csvs_and_pngs(tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(CPU), str(GPU), "--out", str(out)]) == 0
    md = out / "report.md"
    assert capsys.readouterr().out.strip() == str(md)
    text = md.read_text()
    # the answer first, the study's tables next, where the numbers come from last
    assert text.index("## Summary") < text.index("## Q1(a)") < text.index("## Where these numbers come from")
    where_from = text[text.index("## Where these numbers come from"):]
    for expected in (str(CPU), str(GPU), "2026-11-23 16:32:05", CPU_NAME, GPU_NAME, "2.15.0+cu132", "pooled"):
        assert expected in where_from, expected
    blocks = report_blocks(load([CPU, GPU]))
    pngs = {f"{b.name}.png" for b in blocks if isinstance(b, Plot)}
    drawn = {f"{b.name}.png" for b in blocks if isinstance(b, Plot) and b.figure is not None}
    # one epoch per run and one C per SVM line: those two plots would be columns of dots, so are skipped
    assert pngs == {"val-acc-per-epoch.png", "acc-vs-time.png", "cpu-vs-gpu.png", "svm-acc-vs-c.png"}
    assert drawn == {"acc-vs-time.png", "cpu-vs-gpu.png"}
    assert {p.name for p in out.glob("*.png")} == drawn
    assert all((out / name).read_bytes()[:4] == b"\x89PNG" and f"]({name})" in text for name in drawn)
    for name in (b.name for b in blocks if isinstance(b, Table)):
        assert (out / f"{name}.csv").exists() and f"[{name}.csv]({name}.csv)" in text, name
    with open(out / "q2-speedup.csv", newline="") as fh:
        header = next(csv.reader(fh))
    assert {"speedup (CPU/GPU)", "speedup (CPU/GPU) std", "CPU time (s) mean", "GPU time (s) n"} \
        <= set(header)


def test_report_says_which_plot_it_skipped(tmp_path):
    out = tmp_path / "cpu-only"
    assert main(["report", str(CPU), "--out", str(out)]) == 0
    lines = (out / "report.md").read_text().splitlines()
    assert ("_Plot skipped (Training time on CPU and GPU per configuration, speedup written beside each "
            "pair): no configuration ran on both CPU and GPU._") in lines
    assert not (out / "cpu-vs-gpu.png").exists()


def test_an_unwritable_output_folder_is_exit_status_1(tmp_path, capsys):
    (tmp_path / "taken").write_text("a file where the folder should go")
    assert main(["report", str(CPU), "--out", str(tmp_path / "taken")]) == 1
    assert capsys.readouterr().err.startswith("error: cannot write the output:")


def test_no_files_is_a_usage_error():
    assert main(["report"]) == 2


def test_python_dash_m_runs_the_command(tmp_path):
    run = subprocess.run([sys.executable, "-m", "mnistbench", "compare", str(CPU), str(GPU)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("# mnistbench compare: A against B")


def test_pytest_benchmark_compare_loads_our_json(tmp_path):
    # `python -m pytest_benchmark.cli` has no __main__ guard and exits 0 doing nothing: call main() itself
    command = ("import sys; from pytest_benchmark.cli import main; sys.argv[0] = 'pytest-benchmark'; "
               "sys.exit(main())")
    run = subprocess.run([sys.executable, "-c", command, "compare", str(CPU), str(GPU)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "test_train[smoke-mnist-r18-bs16-sgd-lr1e-3-ep1-pin-n2000-seed0-cpu]" in run.stdout
