"""Twin tables (record.TWINS): throughput and accuracy per path, SVM backends, and their speedup's basis.

Every twin record below is DERIVED, NOT MEASURED (fixtures/records.py): only the joins and
the arithmetic are under test.
"""

import statistics

import pytest
from fixtures.records import (
    CPU_NAME,
    GPU_NAME,
    MNIST_POLY,
    R18_SGD,
    derived,
    every,
    fast_records,
    one,
    sklearnex_records,
    throughput_records,
)

from mnistbench.report.group import TWIN, Table, summaries
from mnistbench.report.markdown import format_cell, lift_constants
from mnistbench.report.sections import path_blocks, report_blocks
from mnistbench.report.tables_svm import svm_table
from mnistbench.report.tables_twins import (
    backend_pairs,
    backend_table,
    path_accuracy_table,
    path_pairs,
    throughput_pairs,
    throughput_table,
)
from mnistbench.results.measures import accuracies_agree, unit_time_s
from mnistbench.results.record import TWINS, ok, twin_fields
from mnistbench.results.stats import Signed, Stat, ratio, stat


def tables(blocks: list) -> dict[str, Table]:
    """The blocks' tables by name."""
    return {b.name: b for b in blocks if isinstance(b, Table)}


# ---------------------------------------------------------------- the speedup's basis


def single_seed_twins(cpu: list[dict], twin) -> tuple[dict, dict]:
    """A baseline run and its compared twin, one seed each; the compared one records its ratio."""
    if twin.field == "path":
        base = derived(one(cpu, **R18_SGD, seed=0), preset="throughput", path="classic",
                       images_per_s_median=181.0)
        other = derived(base, path="fast", images_per_s_median=297.0)
    else:
        base = one(cpu, **MNIST_POLY, seed=0)
        other = derived(base, backend="sklearnex", fit_time_ms=97.0, predict_time_ms=211.0)
    other.update(twin_fields(base, other, twin))
    return base, other


TWIN_TABLES = {"path": lambda records: throughput_table(throughput_pairs(records)),
               "backend": lambda records: backend_table(backend_pairs(records)[0])}


@pytest.mark.parametrize("twin", TWINS, ids=lambda twin: twin.field)
def test_a_single_seed_twin_speedup_equals_the_recorded_ratio(cpu, twin):
    base, other = single_seed_twins(cpu, twin)
    (row,) = TWIN_TABLES[twin.field]([base, other]).as_dicts()
    (speedup,) = [value for header, value in row.items() if header.startswith("speedup (")]
    assert speedup.value == pytest.approx(other[twin.ratio], rel=1e-12)
    assert speedup.value == pytest.approx(unit_time_s(base) / unit_time_s(other), rel=1e-12)
    assert row["recorded speedup"].mean == other[twin.ratio]


# ---------------------------------------------------------------- throughput


def test_throughput_table_joins_paths_by_config_and_computes_the_speedup(cpu):
    table = throughput_table(throughput_pairs(throughput_records(cpu)))
    assert table.headers[:4] == ["model", "batch", "device", "hardware"]
    assert "classic MFU (%)" in table.headers and "train limit" not in table.headers
    rows = {(r["model"], r["batch"], r["device"]): r for r in table.as_dicts()}
    assert list(rows) == [("resnet18", 16, "cpu"), ("resnet18", 16, "cuda"), ("resnet18", 128, "cuda"),
                          ("resnet50", 16, "cpu")]
    cpu_row = rows["resnet18", 16, "cpu"]
    assert cpu_row["classic images/s"] == stat([180.0, 190.0], ",.0f")
    seconds = [one(cpu, **R18_SGD, seed=0)["n_train"] / ips for ips in (180.0, 190.0, 300.0, 310.0)]
    speedup = cpu_row["speedup (fast/classic)"]
    assert speedup.value == pytest.approx(ratio(stat(seconds[:2]), stat(seconds[2:])).value)
    assert (speedup.n_a, speedup.n_b) == (2, 2)
    assert cpu_row["recorded speedup"].mean == pytest.approx((300 / 180 + 310 / 190) / 2)
    assert cpu_row["fast MFU (%)"] is None and cpu_row["fused optimizer"] is True
    gpu_row = rows["resnet18", 128, "cuda"]
    assert gpu_row["hardware"] == GPU_NAME and gpu_row["speedup (fast/classic)"].value == pytest.approx(5.0)
    assert format_cell(gpu_row["speedup (fast/classic)"]).startswith("5.00× ± ")
    assert (gpu_row["classic amp"], gpu_row["fast amp"], gpu_row["CUDA graph"]) == ("fp16", "bf16", True)
    alone = rows["resnet50", 16, "cpu"]
    assert alone["classic images/s"].mean == 60.0 and alone["fast images/s"] is None
    assert alone["speedup (fast/classic)"] is None


def test_throughput_records_stay_out_of_every_other_table(cpu):
    blocks = report_blocks(cpu + throughput_records(cpu))
    names = list(tables(blocks))
    assert "throughput" in names
    # cpu and cuda twins of resnet18 bs16 would otherwise make a CPU/GPU speedup and a devices table
    assert "q2-speedup" not in names and not any("throughput" in n for n in names if n != "throughput")
    assert one(tables(blocks)["flops"].as_dicts(), model="ResNet-18")["records"] == "1 flops, 5 train"
    notes = [b for b in blocks if isinstance(b, str)]
    assert not any("preset(s) throughput" in note for note in notes)
    assert any("no accuracy comparison to show" in note for note in notes)


# ---------------------------------------------------------------- accuracy per path


def test_fast_vs_classic_accuracy_by_the_one_agreement_rule(cpu):
    pairs, alone = path_pairs(cpu + fast_records(cpu))
    assert len(pairs) == 2 and all(c["path"] == "classic" and f["path"] == "fast" for c, f in pairs)
    assert sorted(r["optimizer"] for r in alone) == ["adam", "sgd"]  # mnist adam and the resnet50 run
    table = path_accuracy_table(pairs)
    assert table.headers == ["dataset", "model", "batch", "optimizer", "lr", "classic acc (%)",
                             "fast acc (%)", "Δ acc (fast−classic, pts)", "accuracies"]
    assert table.title.endswith(f"on CPU ({CPU_NAME})")
    mnist, fashion = table.as_dicts()
    assert (mnist["dataset"], mnist["model"]) == ("MNIST", "resnet18")
    assert mnist["accuracies"] == "agree: |Δ| 0.07 ≤ 1.00 pts"
    assert mnist["classic acc (%)"] == stat([91.7, 92.5, 92.5])
    assert mnist["fast acc (%)"] == stat([92.0, 92.6, 91.9])
    assert mnist["Δ acc (fast−classic, pts)"].value == pytest.approx(
        statistics.fmean([92.0, 92.6, 91.9]) - statistics.fmean([91.7, 92.5, 92.5]))
    assert format_cell(mnist["Δ acc (fast−classic, pts)"]) == "-0.07"
    assert fashion["dataset"] == "FashionMNIST"
    assert fashion["Δ acc (fast−classic, pts)"] == Signed(pytest.approx(1.6))
    assert fashion["accuracies"].startswith("not comparable: accuracies differ by 1.60 pts")  # one run each
    assert dict(lift_constants(table)[0]) == {"batch": 16, "optimizer": "sgd", "lr": 0.001}


def test_the_smoke_tables_show_the_path_once_it_varies(cpu):
    blocks = report_blocks(cpu + fast_records(cpu))
    for name in ("smoke-mnist-n2000", "smoke-fashionmnist-n2000"):
        assert {"path", "loader"} <= set(tables(blocks)[name].headers), name
    assert "path-accuracy" in tables(path_blocks(cpu + fast_records(cpu)))


# ---------------------------------------------------------------- SVM backends


def test_svm_backends_are_joined_by_config(cpu):
    records = cpu + sklearnex_records(cpu)
    assert "backend" in svm_table(summaries(ok(records, "svm")), "t", "t").headers
    assert "backend" not in svm_table(summaries(ok(cpu, "svm")), "t", "t").headers
    pairs, alone = backend_pairs(records)
    assert len(pairs) == 1 and len(alone) == 2
    (row,) = backend_table(pairs).as_dicts()
    assert [row[h] for h in ("dataset", "kernel", "degree", "C")] == ["MNIST", "poly", 2, 10.0]
    base = every(cpu, **MNIST_POLY)
    sklearn_ms = stat([r["fit_time_ms"] for r in base])  # the fit alone: measures.unit_time_s
    intelex_ms = stat([r["fit_time_ms"] / 4 for r in base])
    assert row["sklearn fit (ms)"].mean == pytest.approx(sklearn_ms.mean)
    assert row["speedup (sklearn/sklearnex)"].value == pytest.approx(ratio(sklearn_ms, intelex_ms).value)
    assert row["recorded speedup"].n == 3 and row["sklearnex version"] == "derived"
    assert row["Δ acc (sklearnex−sklearn, pts)"].value == pytest.approx(-0.1)
    assert "svm-backends" in tables(report_blocks(records))


# ---------------------------------------------------------------- fair comparisons only


def test_accuracies_agree_within_a_point_or_two_seed_stds():
    names = ("sklearn", "sklearnex")
    assert accuracies_agree(Stat(90.15, None, 1), Stat(89.20, None, 1), names) == (True, "agree: |Δ| 0.95 ≤ 1.00 pts")
    assert accuracies_agree(Stat(90.15, None, 1), Stat(89.11, None, 1), names) == (
        False, "not comparable: accuracies differ by 1.04 pts (sklearn 90.15, sklearnex 89.11; tolerance 1.00)")
    assert accuracies_agree(Stat(84.0, 4.3, 3), Stat(87.2, 1.3, 3), names).comparable  # 3.2 ≤ 2 × 4.3
    assert not accuracies_agree(Stat(84.0, 0.6, 3), Stat(87.2, 1.3, 3), names).comparable  # 3.2 > 2 × 1.3
    assert not accuracies_agree(Stat(84.0, 0.6, 3), None, names).comparable


def test_a_backend_speedup_is_shown_only_where_the_accuracies_agree(cpu):
    near = sklearnex_records(cpu)  # 0.1 points less accurate
    far = [dict(r, test_acc_pct=r["test_acc_pct"] - 1.04) for r in near]
    (fair,) = backend_table(backend_pairs(cpu + near)[0]).as_dicts()
    (unfair,) = backend_table(backend_pairs(cpu + far)[0]).as_dicts()
    assert fair["speedup (sklearn/sklearnex)"].value > 1 and fair["accuracies"].startswith("agree")
    assert unfair["speedup (sklearn/sklearnex)"] is None and unfair["recorded speedup"] is None
    assert unfair["accuracies"].startswith("not comparable: accuracies differ by 1.14 pts (sklearn 92.65, ")
    # both sides' times stay, so the reader sees what was measured
    assert unfair["sklearn fit (ms)"] == fair["sklearn fit (ms)"]
    assert unfair["sklearnex fit (ms)"] == fair["sklearnex fit (ms)"]
    assert "|Δ| ≤ max(1 pt, 2 × the larger seed std)" in backend_table(backend_pairs(cpu + far)[0]).note


def test_a_path_speedup_is_shown_only_where_the_accuracies_agree(cpu):
    records = throughput_records(cpu)
    rows = {(r["model"], r["batch"], r["device"]): r for r in throughput_table(throughput_pairs(records)).as_dicts()}
    assert rows["resnet18", 16, "cpu"]["accuracies"] == "agree: |Δ| 0.00 ≤ 1.00 pts"
    worse = [dict(r, test_acc_pct=r["test_acc_pct"] - 3.0) if r["path"] == "fast" and r["device"] == "cpu" else r
             for r in records]
    rows = {(r["model"], r["batch"], r["device"]): r for r in throughput_table(throughput_pairs(worse)).as_dicts()}
    cpu_row = rows["resnet18", 16, "cpu"]
    assert cpu_row["speedup (fast/classic)"] is None and cpu_row["recorded speedup"] is None
    assert cpu_row["accuracies"].startswith("not comparable: accuracies differ by 3.00 pts (classic ")
    assert cpu_row["classic images/s"].mean == 185.0 and cpu_row["fast images/s"].mean == 305.0
    assert rows["resnet18", 16, "cuda"]["speedup (fast/classic)"].value > 1  # the GPU rows still agree
    assert rows["resnet50", 16, "cpu"]["accuracies"] is None  # no fast run to compare with


def test_every_twin_rule_is_one_the_report_reads():
    assert sorted(TWIN) == sorted(twin.field for twin in TWINS)
