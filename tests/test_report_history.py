"""`mnistbench-report history DIR`: a trend per configuration over a pytest-benchmark storage folder.

The storage folder below is DERIVED, NOT MEASURED: three sessions made from the CPU fixture's
benchmarks (fixtures/records.py) with dates, commits, times and accuracies set by hand, laid
out as --benchmark-autosave lays them out (.benchmarks/<machine>/NNNN_<commit>_<date>.json).
"""

import copy
import json

import pytest
from fixtures.records import CPU, CPU_NAME, R18_SGD, every

from mnistbench.cli import main
from mnistbench.report.group import Table
from mnistbench.report.history import history_blocks, trend_table
from mnistbench.results.load import load
from mnistbench.results.record import JOINS, label

# (file, session date, the suite's commit or None, pytest-benchmark's commit id, time factor, accuracy shift)
SESSIONS = [
    ("0002_b2.json", "2026-11-25T08:00:00+00:00", "b2b2b2b+dirty", "b2b2b2b2b2", 1.2, -1.0),
    ("0001_a1.json", "2026-11-24T08:00:00+00:00", None, "a1a1a1a1a1", 1.0, 0.0),
    ("0003_c3.json", "2026-11-26T08:00:00+00:00", "c3c3c3c", "c3c3c3c3c3", 0.9, 0.5),
]


@pytest.fixture
def storage(tmp_path):
    """A .benchmarks folder of three sessions of the same smoke run, saved out of order."""
    doc = json.loads(CPU.read_text())
    folder = tmp_path / ".benchmarks" / "Linux-CPython-3.11-64bit"
    folder.mkdir(parents=True)
    for name, when, commit, commit_id, factor, shift in SESSIONS:
        session = copy.deepcopy(doc)
        session.update(datetime=when, commit_info={"id": commit_id, "dirty": False, "project": "main"})
        if commit is None:
            session["machine_info"]["mnistbench"].pop("git_commit", None)
        else:
            session["machine_info"]["mnistbench"]["git_commit"] = commit
        for bench in session["benchmarks"]:
            info = bench["extra_info"]
            for field in ("train_time_s", "fit_time_ms"):
                if field in info:
                    info[field] *= factor
            if "test_acc_pct" in info:
                info["test_acc_pct"] += shift
        (folder / name).write_text(json.dumps(session))
    return tmp_path / ".benchmarks"


def tables(blocks: list) -> dict[str, Table]:
    return {b.title: b for b in blocks if isinstance(b, Table)}


def test_a_configuration_trends_by_date_with_its_commit(storage):
    records = load([storage])
    r18 = every(records, **R18_SGD)
    table = tables(history_blocks(records))[f"{label(r18[0], JOINS['seeds'])} on {CPU_NAME}"]
    rows = table.as_dicts()
    assert [r["run date (UTC)"] for r in rows] == ["2026-11-24 08:00", "2026-11-25 08:00", "2026-11-26 08:00"]
    # the suite's commit where recorded, else pytest-benchmark's commit_info
    assert [r["commit"] for r in rows] == ["a1a1a1a", "b2b2b2b+dirty", "c3c3c3c"]
    assert [r["file"] for r in rows] == ["0001_a1.json", "0002_b2.json", "0003_c3.json"]
    assert rows[0]["time / first run"] is None and rows[0]["Δ acc vs first run (pts)"] is None
    assert rows[1]["time / first run"].value == pytest.approx(1.2)
    assert rows[2]["time / first run"].value == pytest.approx(0.9)
    assert rows[1]["Δ acc vs first run (pts)"].value == pytest.approx(-1.0)
    assert rows[2]["acc (%)"].n == 3 and rows[2]["time (s)"].n == 3


def test_every_configuration_gets_a_table_and_flops_none(storage):
    records = load([storage])
    titles = list(tables(history_blocks(records)))
    configs = {label(r, JOINS["seeds"]) for r in records if r["kind"] != "flops"}
    assert len(titles) == 1 + len(configs)  # the input files, then one per configuration
    assert not any("flops" in t for t in titles)


def test_a_trend_of_one_run_has_nothing_to_compare_against(storage):
    (run,) = every(load([storage / "Linux-CPython-3.11-64bit" / "0001_a1.json"]), **R18_SGD, seed=0)
    (row,) = trend_table([run]).as_dicts()
    assert row["time / first run"] is None and row["time (s)"].n == 1


def test_history_command_prints_and_writes(storage, tmp_path, capsys):
    out = tmp_path / "hist"
    assert main(["history", str(storage), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("# mnistbench history") and "b2b2b2b+dirty" in printed and "1.20×" in printed
    assert (out / "history.md").read_text().strip() == printed.strip()
    csvs = sorted(p.name for p in out.glob("history-*.csv"))
    assert len(csvs) == len(set(csvs)) == printed.count("](history-")
    assert main(["history", str(tmp_path / "missing")]) == 2
