"""mnistbench.report on fixtures cut from a real run (reports/runs/smoke-cpu-3seeds.*).

fixtures/smoke-cpu.json and fixtures/smoke-cpu.jsonl are benchmarks and lines copied
unchanged from that 2-core CPU run. fixtures/smoke-gpu-derived.json is DERIVED, NOT
MEASURED: some of the same train benchmarks with device, device name, machine GPUs and
times changed (fixtures/derive_fixtures.py; speedups 12x and 20x by construction), so the
CPU/GPU join has a counterpart to meet. Its machine's node says "derived-gpu-fixture".

The fixtures predate the fast path: their train records have no `path` and are read as
classic. The fast-path, throughput and sklearnex records below are DERIVED, NOT MEASURED:
copies of fixture records with path, backend, timings and accuracies set by hand (`derived`),
so the joins have twins to meet; only the joins and the arithmetic are under test.
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
    Signed,
    Stat,
    Table,
    backend_pairs,
    backend_table,
    best_train_table,
    compare_rows,
    failed_table,
    flops_table,
    format_cell,
    inputs_table,
    load,
    main,
    model_table,
    ok,
    path_accuracy_table,
    path_pairs,
    provenance_blocks,
    ratio,
    render_markdown,
    report_blocks,
    speedup_pairs,
    spread_verdict,
    stat,
    summaries,
    svm_table,
    throughput_pairs,
    throughput_table,
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


def derived(rec: dict, **changes) -> dict:
    """DERIVED, NOT MEASURED: a copy of a fixture record with fields set by hand."""
    out = copy.deepcopy(rec)
    out.pop("backfilled", None)
    out.update(changes)
    return out


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


# ---------------------------------------------------------------- fast path, throughput, SVM backends


def test_records_without_path_are_read_as_classic_and_say_so_once(cpu):
    train = [r for r in cpu if r["kind"] == "train"]
    assert {(r["path"], r["deterministic"]) for r in train} == {("classic", False)}
    assert all("path" not in b["extra_info"] for b in raw_benchmarks(CPU))
    assert all("backfilled" not in r for r in cpu if r["kind"] != "train")
    text = render_markdown(provenance_blocks(cpu))
    assert text.count("predate the case field `path`") == 1
    assert "6 of 6 train record(s) predate the case field `path` and are read as path = 'classic'" in text


FAST_CPU_PLAN = dict(plan_loader="tensor", amp_dtype="off", channels_last=False, fused_optimizer=True,
                     cuda_graph=False)
FAST_GPU_PLAN = dict(plan_loader="tensor", amp_dtype="bf16", channels_last=True, fused_optimizer=True,
                     cuda_graph=True)
GPU_NAME = "NVIDIA H100 80GB HBM3"
# (device, batch, classic images/s per seed, fast images/s per seed): made up
THROUGHPUT = [("cpu", 16, [180.0, 190.0], [300.0, 310.0]), ("cuda", 16, [900.0, 1000.0], [2600.0, 2800.0]),
              ("cuda", 128, [4000.0, 4200.0], [20000.0, 21000.0])]


def throughput_records(cpu: list[dict]) -> list[dict]:
    """DERIVED, NOT MEASURED: throughput twins made from one smoke record, plus a classic-only case."""
    base = row_of(cpu, R18_SGD + "-seed0")
    recs = []
    for device, bs, classic_ips, fast_ips in THROUGHPUT:
        gpu = {"device_name": GPU_NAME} if device == "cuda" else {}
        for seed in (0, 1):
            common = dict(preset="throughput", device=device, batch_size=bs, seed=seed, epochs=3, **gpu)
            recs.append(derived(base, **common, path="classic", loader="auto", images_per_s_median=classic_ips[seed],
                                amp_dtype="fp16" if gpu else "off", mfu_pct=1.0 if gpu else None))
            recs.append(derived(base, **common, path="fast", loader="auto", images_per_s_median=fast_ips[seed],
                                speedup_vs_classic=fast_ips[seed] / classic_ips[seed], mfu_pct=5.0 if gpu else None,
                                **(FAST_GPU_PLAN if gpu else FAST_CPU_PLAN)))
    recs.append(derived(base, preset="throughput", model="resnet50", epochs=3, path="classic",
                        images_per_s_median=60.0))
    random.Random(1).shuffle(recs)
    return recs


def test_throughput_table_joins_paths_by_config_and_computes_the_speedup(cpu):
    table = throughput_table(throughput_pairs(throughput_records(cpu)))
    assert table.headers[:4] == ["model", "batch", "device", "hardware"]
    assert "classic MFU (%)" in table.headers and "train limit" not in table.headers
    rows = {tuple(r[:3]): dict(zip(table.headers, r, strict=True)) for r in table.rows}
    assert list(rows) == [("resnet18", 16, "cpu"), ("resnet18", 16, "cuda"), ("resnet18", 128, "cuda"),
                          ("resnet50", 16, "cpu")]
    cpu_row = rows["resnet18", 16, "cpu"]
    assert cpu_row["classic images/s"] == stat([180.0, 190.0], ",.0f")
    speedup = cpu_row["speedup (fast/classic)"]
    assert speedup.value == pytest.approx(305 / 185) and (speedup.n_a, speedup.n_b) == (2, 2)
    assert cpu_row["recorded speedup"].mean == pytest.approx((300 / 180 + 310 / 190) / 2)
    assert cpu_row["fast MFU (%)"] is None and cpu_row["fused optimizer"] is True
    gpu_row = rows["resnet18", 128, "cuda"]
    assert gpu_row["hardware"] == GPU_NAME and gpu_row["speedup (fast/classic)"].value == pytest.approx(5.0)
    assert (gpu_row["classic amp"], gpu_row["fast amp"], gpu_row["CUDA graph"]) == ("fp16", "bf16", True)
    alone = rows["resnet50", 16, "cpu"]
    assert alone["classic images/s"].mean == 60.0 and alone["fast images/s"] is None
    assert alone["speedup (fast/classic)"] is None
    assert re.search(r"\| resnet18 +\| 128 +\| cuda .*\| 5\.00× ± [\d.]+ \(n=2/2\)", render_markdown([table]))


def test_throughput_records_stay_out_of_every_other_table(cpu):
    blocks = report_blocks(cpu + throughput_records(cpu))
    names = [b.name for b in blocks if isinstance(b, Table)]
    assert "throughput" in names
    # cpu and cuda twins of resnet18 bs16 would otherwise make a CPU/GPU speedup and a devices table
    assert "q2-speedup" not in names and not any("throughput" in n for n in names if n != "throughput")
    flops = next(b for b in blocks if isinstance(b, Table) and b.name == "flops")
    assert flops.rows[0][-1] == "1 flops, 5 train"
    text = render_markdown(blocks)
    assert "preset(s) throughput" not in text and "no accuracy comparison to show" in text


def fast_records(cpu: list[dict]) -> list[dict]:
    """DERIVED, NOT MEASURED: fast-path twins of the three MNIST sgd seeds and of the single Fashion run."""
    made = [derived(row_of(cpu, f"{R18_SGD}-seed{seed}"), path="fast", loader="auto", test_acc_pct=acc,
                    **FAST_CPU_PLAN) for seed, acc in enumerate([92.0, 92.6, 91.9])]
    fashion = row_of(cpu, "smoke-fashion-r18-bs16-sgd")
    return made + [derived(fashion, path="fast", loader="auto", test_acc_pct=70.5, **FAST_CPU_PLAN)]


def test_fast_vs_classic_accuracy_within_the_seed_spread(cpu):
    pairs, alone = path_pairs(cpu + fast_records(cpu))
    assert len(pairs) == 2 and all(c["path"] == "classic" and f["path"] == "fast" for c, f in pairs)
    assert sorted(r["optimizer"] for r in alone) == ["adam", "sgd"]  # mnist adam and the resnet50 run
    table = path_accuracy_table(pairs)
    assert table.headers == ["dataset", "model", "batch", "optimizer", "lr", "classic acc (%)", "fast acc (%)",
                             "Δ acc (fast−classic, pts)", "seed spread"]
    assert table.title.endswith("on CPU (Intel(R) Xeon(R) Processor)")
    mnist, fashion = table.rows
    assert mnist[:2] == ["MNIST", "resnet18"] and mnist[-1] == "within spread"
    assert mnist[5] == stat([91.7, 92.5, 92.5]) and mnist[6] == stat([92.0, 92.6, 91.9])
    assert mnist[7].value == pytest.approx(statistics.fmean([92.0, 92.6, 91.9]) - statistics.fmean([91.7, 92.5, 92.5]))
    assert fashion[0] == "FashionMNIST" and fashion[7] == Signed(pytest.approx(1.6)) and fashion[-1] == "n too small"
    text = render_markdown(report_blocks(cpu + fast_records(cpu)))
    assert re.search(r"\| MNIST +\| resnet18 .*\| 92\.23 ± 0\.46 \(n=3\) +\| 92\.17 ± 0\.38 \(n=3\) +\| -0\.07 +\| "
                     r"within spread", text)
    # the smoke tables now show the path column, since it varies there
    assert re.search(r"\| batch +\| optimizer +\| lr +\| path +\| loader +\|", text)


def test_spread_verdict():
    classic = Stat(92.0, 0.5, 3)
    assert spread_verdict(classic, Stat(92.9, 0.3, 3)) == "within spread"
    assert spread_verdict(classic, Stat(93.1, 0.3, 3)) == "outside spread"
    assert spread_verdict(classic, Stat(91.0, 0.6, 2)) == "within spread"  # the larger std counts
    assert spread_verdict(classic, Stat(92.0, None, 1)) == "n too small"
    assert spread_verdict(None, classic) is None


def sklearnex_records(cpu: list[dict]) -> list[dict]:
    """DERIVED, NOT MEASURED: sklearnex twins of the MNIST poly runs, 4x faster fit, 2x faster predict."""
    made = []
    for rec in [r for r in cpu if r["case_id"].startswith("smoke-mnist-poly")]:
        fast = derived(rec, backend="sklearnex", backend_version="derived", fit_time_ms=rec["fit_time_ms"] / 4,
                       predict_time_ms=rec["predict_time_ms"] / 2, test_acc_pct=rec["test_acc_pct"] - 0.1)
        fast["speedup_vs_sklearn"] = ((rec["fit_time_ms"] + rec["predict_time_ms"])
                                      / (fast["fit_time_ms"] + fast["predict_time_ms"]))
        made.append(fast)
    return made


def test_svm_backends_are_joined_by_config(cpu):
    records = cpu + sklearnex_records(cpu)
    rows = summaries(ok(records, "svm"))
    assert "backend" in svm_table(rows, "t", "t").headers
    assert "backend" not in svm_table(summaries(ok(cpu, "svm")), "t", "t").headers
    pairs, alone = backend_pairs(records)
    assert len(pairs) == 1 and len(alone) == 2
    table = backend_table(pairs)
    row = dict(zip(table.headers, table.rows[0], strict=True))
    assert [row[h] for h in ("dataset", "kernel", "degree", "C")] == ["MNIST", "poly", 2, 10.0]
    base = [r for r in cpu if r["case_id"].startswith("smoke-mnist-poly")]
    sklearn_ms = stat([r["fit_time_ms"] + r["predict_time_ms"] for r in base])
    intelex_ms = stat([r["fit_time_ms"] / 4 + r["predict_time_ms"] / 2 for r in base])
    assert row["sklearn fit+predict (ms)"].mean == pytest.approx(sklearn_ms.mean)
    assert row["speedup (sklearn/sklearnex)"].value == pytest.approx(ratio(sklearn_ms, intelex_ms).value)
    assert row["recorded speedup"].n == 3 and row["sklearnex version"] == "derived"
    assert row["Δ acc (sklearnex−sklearn, pts)"].value == pytest.approx(-0.1)
    assert "svm-backends" in [b.name for b in report_blocks(records) if isinstance(b, Table)]


def test_best_table_shows_time_to_target_only_when_recorded(cpu):
    rows = summaries(ok(cpu, "train"))
    assert "epochs to target" not in best_train_table(rows, ["dataset"], "b", "b").headers
    for rec in [r for r in cpu if r["case_id"].startswith(R18_SGD)]:
        rec.update(target_val_acc_pct=90.0, epochs_to_target=1, time_to_target_s=rec["train_time_s"])
    table = best_train_table(summaries(ok(cpu, "train")), ["dataset"], "b", "b")
    assert table.headers[-3:] == ["val acc (%)", "epochs to target", "time to target (s)"]
    mnist = dict(zip(table.headers, table.rows[0], strict=True))
    assert mnist["val target (%)"] == 90.0 and mnist["epochs to target"] == Stat(1.0, 0.0, 3, ".1f")


def test_results_lines_are_dated_by_recorded_at():
    lines = load([JSONL])
    assert inputs_table(lines).rows[0][2] == "not recorded"
    for minute, rec in enumerate(lines):
        rec["recorded_at"] = f"2026-11-23T17:0{minute}:00+00:00"
    assert inputs_table(lines).rows[0][2] == "2026-11-23 17:00:00 to 2026-11-23 17:04:00 UTC"
