"""mnistbench.report on fixtures cut from a real run (reports/runs/smoke-cpu-3seeds.*).

fixtures/smoke-cpu.json and fixtures/smoke-cpu.jsonl are benchmarks and lines copied
unchanged from that 2-core CPU run. fixtures/smoke-gpu-derived.json is DERIVED, NOT
MEASURED: some of the same train benchmarks with device, device name, machine GPUs and
times changed (fixtures/derive_fixtures.py; speedups 12x and 20x by construction), so the
CPU/GPU join has a counterpart to meet. Its machine's node says "derived-gpu-fixture".
"""

import copy
import csv
import json
import random
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from mnistbench.report import (
    ReportInputError,
    Stat,
    compare_rows,
    failed_table,
    flops_table,
    format_cell,
    load,
    main,
    model_table,
    ok,
    render_markdown,
    report_blocks,
    speedup_pairs,
    stat,
    summaries,
)

FIXTURES = Path(__file__).parent / "fixtures"
CPU = FIXTURES / "smoke-cpu.json"
GPU = FIXTURES / "smoke-gpu-derived.json"
JSONL = FIXTURES / "smoke-cpu.jsonl"
R18_SGD = "smoke-mnist-r18-bs16-sgd-lr1e-3-ep1-pin-n2000"


@pytest.fixture(scope="module")
def cpu_records():
    return load([CPU])


@pytest.fixture(scope="module")
def gpu_records():
    return load([GPU])


@pytest.fixture
def cpu(cpu_records):
    return copy.deepcopy(cpu_records)


@pytest.fixture
def gpu(gpu_records):
    return copy.deepcopy(gpu_records)


def raw_benchmarks(path: Path) -> list[dict]:
    return json.loads(path.read_text())["benchmarks"]


def row_of(rows: list[dict], case_prefix: str) -> dict:
    (row,) = [r for r in rows if r["case_id"].startswith(case_prefix)]
    return row


# ---------------------------------------------------------------- load


def test_load_attaches_machine_run_date_and_source(cpu):
    assert len(cpu) == len(raw_benchmarks(CPU)) == 13
    assert sorted({r["kind"] for r in cpu}) == ["flops", "svm", "train"]
    rec = cpu[0]
    assert rec["machine"]["cpu_model"] == "Intel(R) Xeon(R) Processor"
    assert rec["machine"]["gpus"] == []
    assert rec["run_datetime"].startswith("2026-11-23")
    assert rec["source"] == str(CPU)
    assert rec["bench_total_s"] == pytest.approx(rec["train_time_s"], rel=0.05)


def test_load_reads_results_lines_and_benchmark_folders(tmp_path):
    lines = load([JSONL])
    assert len(lines) == 5 and all(r["machine"]["cpu_model"] for r in lines)
    saved = tmp_path / ".benchmarks" / "Linux-CPython-3.11-64bit"
    saved.mkdir(parents=True)
    (saved / "0001_smoke.json").write_text(CPU.read_text())
    assert len(load([tmp_path / ".benchmarks"])) == 13


def test_the_same_run_read_twice_is_counted_once():
    with pytest.warns(UserWarning, match=r"smoke-cpu\.jsonl: 4 record\(s\) repeat runs already read from"):
        records = load([CPU, JSONL])
    # the four timed lines are the JSON's runs; the flops line has no timing to tell runs apart
    assert len(records) == 13 + 1


def test_torn_results_line_is_skipped_with_a_warning(tmp_path):
    torn = tmp_path / "killed.jsonl"
    text = JSONL.read_text()
    torn.write_text(text + text.splitlines()[0][:200])
    with pytest.warns(UserWarning, match="skipped unreadable line"):
        records = load([torn])
    assert len(records) == 5


def test_foreign_benchmarks_in_our_file_are_skipped_with_a_warning(tmp_path):
    doc = json.loads(CPU.read_text())
    foreign = copy.deepcopy(doc["benchmarks"][0])
    foreign["extra_info"] = {}
    doc["benchmarks"] += [foreign, {**foreign, "extra_info": {"schema": "someone.else/1"}}]
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match=r"mixed\.json: skipped 2 of 15 benchmark\(s\) without an mnistbench"):
        assert len(load([path])) == 13


def _benchmark_doc(**changes) -> str:
    doc = json.loads(CPU.read_text())
    doc["benchmarks"] = doc["benchmarks"][:2]
    for i, change in changes.get("extra", {}).items():
        doc["benchmarks"][i]["extra_info"] = change(doc["benchmarks"][i]["extra_info"])
    return json.dumps(doc)


MALFORMED = {
    "not-json.json": ("{'benchmarks': [", "not JSON"),
    "foreign.json": (json.dumps({"results": [1, 2]}), "no 'benchmarks' list.*top-level keys: results"),
    "a-list.json": ("[1, 2]", "no 'benchmarks' list.*JSON list"),
    "empty.json": ("", "empty file"),
    "blank.jsonl": ("\n\n", "empty file"),
    "no-benchmarks.json": (json.dumps({"machine_info": {}, "benchmarks": []}), "with no benchmarks"),
    "no-extra-info.json": (_benchmark_doc(extra={0: lambda e: {}, 1: lambda e: {}}),
                           r"none of its 2 benchmark\(s\) has an mnistbench record in extra_info"),
    "other-version.json": (_benchmark_doc(extra={1: lambda e: {**e, "schema": "mnistbench.result/2"}}),
                           r"schema 'mnistbench.result/2'.*reads 'mnistbench.result/1'"),
    "lacks-kind.json": (_benchmark_doc(extra={0: lambda e: {k: v for k, v in e.items() if k != "kind"}}),
                        "lacks kind"),
    "lacks-model.json": (_benchmark_doc(extra={0: lambda e: {k: v for k, v in e.items() if k != "model"}}),
                         r"lacks case field\(s\) model"),
    "foreign.jsonl": ('{"a": 1}\n', "not an mnistbench result record"),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_input_is_one_error_naming_the_file(name, tmp_path, capsys):
    text, expected = MALFORMED[name]
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ReportInputError, match=expected) as caught:
        load([path])
    assert name in str(caught.value)

    assert main([str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}") and "Traceback" not in err


def test_missing_path_and_empty_folder_are_errors(tmp_path):
    with pytest.raises(ReportInputError, match="no such file or folder"):
        load([tmp_path / "nowhere.json"])
    with pytest.raises(ReportInputError, match=r"folder holds no \*\.json files"):
        load([tmp_path])


# ---------------------------------------------------------------- group


def test_seeds_make_one_cell_with_mean_std_and_n(cpu):
    accs = [b["extra_info"]["test_acc_pct"] for b in raw_benchmarks(CPU) if b["param"].startswith(R18_SGD)]
    assert len(accs) == 3
    row = row_of(summaries(ok(cpu, "train")), R18_SGD)
    assert row["n"] == 3
    assert row["test_acc_pct"] == Stat(statistics.fmean(accs), statistics.stdev(accs), 3, ".2f")
    assert format_cell(row["test_acc_pct"]) == "92.23 ± 0.46 (n=3)"


def test_a_single_run_shows_n1_and_no_spread(cpu):
    row = row_of(summaries(ok(cpu, "train")), "smoke-fashion-r18-bs16-sgd")
    assert format_cell(row["test_acc_pct"]) == "68.90 (n=1)"
    assert stat([3.0]).std is None and "±" not in format_cell(stat([3.0]))
    assert stat([None, float("nan")]) is None and format_cell(None) == "—"


def test_q1a_table_is_one_row_per_config_and_a_column_per_model(cpu):
    rows = [r for r in summaries(ok(cpu, "train")) if r["dataset"] == "MNIST"]
    table = model_table(rows, "t", "MNIST", ["batch_size", "optimizer", "lr"], ["preset", "dataset"])
    # train_limit varies (resnet50 ran on 1000 images), epochs and pin_memory do not
    assert table.headers == ["batch", "optimizer", "lr", "train limit", "ResNet-18 acc (%)", "ResNet-50 acc (%)",
                             "ResNet-18 time (s)", "ResNet-50 time (s)"]
    text = render_markdown([table])
    assert re.search(r"\| 16 +\| sgd +\| 0\.001 +\| 2000 +\| 92\.23 ± 0\.46 \(n=3\) +\| — ", text)
    assert re.search(r"\| 16 +\| sgd +\| 0\.001 +\| 1000 +\| — +\| 39\.60 \(n=1\) ", text)
    assert "on CPU (Intel(R) Xeon(R) Processor)" in table.title


def test_failed_runs_are_listed_and_left_out_of_means(cpu):
    bad = row_of(cpu, R18_SGD + "-seed2")
    bad.update(status="diverged", message="loss became nan in epoch 1", test_acc_pct=float("nan"))
    assert row_of(summaries(ok(cpu, "train")), R18_SGD)["n"] == 2
    table = failed_table(cpu)
    assert table.rows == [[bad["case_id"], "cpu", "diverged", "loss became nan in epoch 1", CPU.name]]
    text = render_markdown(report_blocks(cpu))
    assert "Runs whose status is not ok" in text and "92.10 ± 0.57 (n=2)" in text


# ---------------------------------------------------------------- CPU vs GPU, FLOPs


def test_speedup_joins_cpu_and_gpu_by_config_not_order(cpu, gpu):
    for rec in gpu:  # names and order must not matter, nor pin_memory
        rec.update(bench_name=f"renamed-{random.random()}", pin_memory=False)
    random.Random(0).shuffle(gpu)
    pairs, alone = speedup_pairs(gpu + cpu)
    assert len(pairs) == 3
    cpu_row, gpu_row = next((c, g) for c, g in pairs if c["case_id"].startswith(R18_SGD))
    assert gpu_row["device"] == "cuda" and gpu_row["n"] == cpu_row["n"] == 3
    assert cpu_row["train_time_s"].mean / gpu_row["train_time_s"].mean == pytest.approx(12.0)
    assert sorted((r["dataset"], r["optimizer"], r["device"]) for r in alone) == [
        ("FashionMNIST", "adam", "cuda"), ("FashionMNIST", "sgd", "cpu")]


def test_report_speedup_table(cpu, gpu):
    text = render_markdown(report_blocks(cpu + gpu))
    assert re.search(r"\| MNIST +\| resnet50 .*\| 20\.00× \(n=1/1\)", text)
    assert re.search(r"\| MNIST +\| resnet18 .*\| sgd .*\| 12\.00× ± [\d.]+ \(n=3/3\)", text)
    assert "2 configuration(s) ran on one device only" in text


def test_flops_table_from_flop_cases_and_training_runs(cpu):
    table = flops_table(cpu)
    assert [r[:4] for r in table.rows] == [["ResNet-18", "imagenet", 28, 1], ["ResNet-50", "imagenet", 28, 1]]
    r18 = table.rows[0]
    assert r18[4] == pytest.approx(0.033097, abs=1e-6) and r18[5] == pytest.approx(11.1754, abs=1e-4)
    assert r18[-1] == "1 flops, 5 train"
    only_flops = flops_table([r for r in cpu if r["kind"] == "flops"])
    only_train = flops_table([r for r in cpu if r["kind"] == "train"])
    assert [r[4] for r in only_flops.rows] == [r[4] for r in only_train.rows] == [r[4] for r in table.rows]


# ---------------------------------------------------------------- compare


def test_compare_joins_by_config_and_lists_one_sided_cases(cpu, gpu):
    rows = compare_rows(cpu, gpu)
    present = {r["case"]: r["present"] for r in rows}
    assert present["smoke-mnist-r18-bs16-sgd-lr1e-3-ep1-n2000"] == "both"
    assert present["smoke-fashion-r18-bs16-sgd-lr1e-3-ep1-n2000"] == "A only"
    assert present["smoke-fashion-r18-bs16-adam-lr1e-3-ep1-n2000"] == "B only"
    assert sorted(present.values()).count("both") == 3
    # CPU as A and GPU as B: the time ratio is the Q2 speedup
    pairs, _ = speedup_pairs(cpu + gpu)
    both = {r["case"]: r for r in rows if r["present"] == "both"}
    for c, g in pairs:
        row = both[re.sub(r"-pin|-seed\d+|-cpu", "", c["case_id"])]
        assert row["A"]["time_s"].mean / row["B"]["time_s"].mean == pytest.approx(
            c["train_time_s"].mean / g["train_time_s"].mean)


def test_compare_times_svms_by_their_fit(cpu):
    svm = next(r for r in compare_rows(cpu, cpu) if r["case"] == "smoke-mnist-rbf-C10-n2000")
    fit_ms = row_of([r for r in cpu if r["kind"] == "svm"], "smoke-mnist-rbf")["fit_time_ms"]
    assert svm["A"]["time_s"].mean == pytest.approx(fit_ms / 1000)


def test_compare_command_prints_and_writes(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", str(CPU), str(GPU), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for expected in ("derived-gpu-fixture", "Intel(R) Xeon(R) Processor", "NVIDIA H100 80GB HBM3", "12.00×",
                     "20.00× (n=1/1)", "Only in A", "Only in B", "smoke-fashion-r18-bs16-adam-lr1e-3-ep1-n2000"):
        assert expected in printed, expected
    assert (out / "compare.md").read_text().strip() == printed.strip()
    with open(out / "compare.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert sorted(r["present"] for r in table) == ["A only"] * 4 + ["B only"] + ["both"] * 3
    assert {"time A/B", "time A (s) mean", "time A (s) std", "time A (s) n"} <= set(table[0])


# ---------------------------------------------------------------- the report command


def test_main_writes_report_csvs_and_pngs(tmp_path, capsys):
    out = tmp_path / "report"
    assert main([str(CPU), str(GPU), "--out", str(out)]) == 0
    md = out / "report.md"
    assert capsys.readouterr().out.strip() == str(md)
    text = md.read_text()
    # where it came from, before any result
    head = text[: text.index("## Q1(a)")]
    for expected in (str(CPU), str(GPU), "2026-11-23 16:32:05", "Intel(R) Xeon(R) Processor",
                     "NVIDIA H100 80GB HBM3", "2.15.0+cu132", "pooled", "| train  | smoke    |"):
        assert expected in head, expected
    links = re.findall(r"\]\(([^)]+)\)", text)
    pngs = {name for name in links if name.endswith(".png")}
    assert pngs == {"val-acc-per-epoch.png", "acc-vs-time.png", "cpu-vs-gpu.png", "svm-acc-vs-c.png"}
    for name in links:
        assert (out / name).exists(), name
    assert all((out / name).read_bytes()[:4] == b"\x89PNG" for name in pngs)
    with open(out / "q2-speedup.csv", newline="") as fh:
        header = next(csv.reader(fh))
    assert {"speedup (CPU/GPU)", "speedup (CPU/GPU) std", "CPU time (s) mean", "GPU time (s) n"} <= set(header)


def test_report_says_which_plot_it_skipped(tmp_path, capsys):
    out = tmp_path / "cpu-only"
    assert main([str(CPU), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "_Plot skipped (Training time on CPU and GPU" in text and "no configuration ran on both" in text
    assert not (out / "cpu-vs-gpu.png").exists()


def test_no_files_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2


def test_pytest_benchmark_compare_loads_our_json(tmp_path):
    # `python -m pytest_benchmark.cli` has no __main__ guard and exits 0 doing nothing: call main() itself
    command = "import sys; from pytest_benchmark.cli import main; sys.argv[0] = 'pytest-benchmark'; sys.exit(main())"
    run = subprocess.run([sys.executable, "-c", command, "compare", str(CPU), str(GPU)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "test_train[smoke-mnist-r18-bs16-sgd-lr1e-3-ep1-pin-n2000-seed0-cpu]" in run.stdout
