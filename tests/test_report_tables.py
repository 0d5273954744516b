"""Cells, the Q1(a) and Q2 tables, FLOPs and failed runs; columns every row shares said once above a table."""

import csv
import random
import statistics

import pytest
from fixtures.records import (
    CPU,
    CPU_NAME,
    FASHION_SGD,
    GPU_NAME,
    R18_SGD,
    derived,
    every,
    one,
    raw_benchmarks,
)

from mnistbench.report.group import Table, device_name, speedup_pairs, summaries
from mnistbench.report.markdown import format_cell, lift_constants, render_markdown, write_csv
from mnistbench.report.provenance import failed_table
from mnistbench.report.sections import CHOSEN, chosen, q2_blocks, report_blocks
from mnistbench.report.tables_svm import best_svm_table
from mnistbench.report.tables_train import (
    best_train_table,
    flops_table,
    model_table,
    speedup_table,
    target_score,
    time_to_target_table,
)
from mnistbench.results.record import JOINS, label, ok
from mnistbench.results.stats import Stat, stat


def mnist_model_table(records: list[dict]):
    rows = every(summaries(ok(records, "train")), dataset="MNIST")
    return model_table(rows, "t", "MNIST", ["batch_size", "optimizer", "lr"], ["preset", "dataset"])


# ---------------------------------------------------------------- cells


def test_seeds_make_one_cell_with_mean_std_and_n(cpu):
    infos = [b["extra_info"] for b in raw_benchmarks(CPU)]
    accs = [info["test_acc_pct"] for info in every(infos, **R18_SGD)]
    assert len(accs) == 3
    row = one(summaries(ok(cpu, "train")), **R18_SGD)
    assert row["n"] == 3
    assert row["test_acc_pct"] == Stat(statistics.fmean(accs), statistics.stdev(accs), 3, ".2f")
    assert format_cell(row["test_acc_pct"]) == "92.23 ± 0.46 (n=3)"


def test_a_single_run_shows_n1_and_no_spread(cpu):
    row = one(summaries(ok(cpu, "train")), **FASHION_SGD)
    assert format_cell(row["test_acc_pct"]) == "68.90 (n=1)"
    assert stat([3.0]).std is None and "±" not in format_cell(stat([3.0]))
    assert stat([None, float("nan")]) is None and format_cell(None) == "—"


def test_failed_runs_are_listed_and_left_out_of_means(cpu):
    bad = one(cpu, **R18_SGD, seed=2)
    bad.update(status="diverged", message="loss became nan in epoch 1", test_acc_pct=float("nan"))
    row = one(summaries(ok(cpu, "train")), **R18_SGD)
    assert row["n"] == 2 and format_cell(row["test_acc_pct"]) == "92.10 ± 0.57 (n=2)"
    table = failed_table(cpu)
    assert table.as_dicts() == [{"case_id": bad["case_id"], "device": "cpu", "status": "diverged",
                                 "message": "loss became nan in epoch 1", "file": CPU.name}]
    assert table in report_blocks(cpu)


# ---------------------------------------------------------------- Q1(a) and the rule for shared columns


def test_q1a_table_is_one_row_per_config_and_a_column_per_model(cpu):
    """Where every configuration ran every model: the write-ups' shape."""
    r18 = every(ok(cpu, "train"), dataset="MNIST", model="resnet18", train_limit=2000)
    r50 = [derived(r, model="resnet50", test_acc_pct=r["test_acc_pct"] - 5) for r in r18]  # DERIVED
    table = mnist_model_table(r18 + r50)
    assert table.headers == ["batch", "optimizer", "lr", "ResNet-18 acc (%)", "ResNet-50 acc (%)",
                             "ResNet-18 time (s)", "ResNet-50 time (s)"]
    rows = {r["optimizer"]: r for r in table.as_dicts()}
    assert list(rows) == ["sgd", "adam"]
    assert format_cell(rows["sgd"]["ResNet-18 acc (%)"]) == "92.23 ± 0.46 (n=3)"
    assert format_cell(rows["sgd"]["ResNet-50 acc (%)"]) == "87.23 ± 0.46 (n=3)"
    assert table.title.endswith(f"on CPU ({CPU_NAME})") and not table.note


def test_a_model_that_did_not_run_every_configuration_gets_rows_not_holes(cpu):
    table = mnist_model_table(cpu)  # resnet50 ran only with sgd, on 1,000 images
    assert table.headers == ["model", "batch", "optimizer", "lr", "train limit", "test acc (%)", "train time (s)"]
    assert all(None not in row for row in table.rows)
    rows = {(r["model"], r["optimizer"], r["train limit"]): r for r in table.as_dicts()}
    assert list(rows) == [("resnet18", "sgd", 2000), ("resnet18", "adam", 2000), ("resnet50", "sgd", 1000)]
    assert format_cell(rows["resnet50", "sgd", 1000]["test acc (%)"]) == "39.60 (n=1)"
    assert table.note.startswith("Not every one of the 3 configurations ran every model")
    assert table.note in render_markdown([table]).splitlines()


def test_the_report_gives_each_training_size_its_own_table(cpu):
    blocks = report_blocks(cpu)
    titles = [b.title for b in blocks if isinstance(b, Table) and b.name.startswith("smoke-mnist")]
    assert titles == [f"Preset smoke: MNIST, 1,000 training images, on CPU ({CPU_NAME})",
                      f"Preset smoke: MNIST, 2,000 training images, on CPU ({CPU_NAME})"]


def test_a_best_of_table_says_how_it_chose_under_its_title(cpu):
    table = chosen(best_train_table(summaries(ok(cpu, "train")), ["dataset"], "b", "Best"))
    assert table.note == CHOSEN and table.title == "Best"
    assert render_markdown([table]).splitlines()[:3] == ["**Best**", "", CHOSEN]


def test_columns_every_row_shares_are_said_once_above_the_table(cpu):
    shared, shown = lift_constants(mnist_model_table(cpu))
    assert shared == [("batch", 16), ("lr", 0.001)]
    assert shown.headers[:3] == ["model", "optimizer", "train limit"]
    text = render_markdown([mnist_model_table(cpu)])
    assert "All rows: batch 16, lr 0.001" in text.splitlines()


def test_best_table_keeps_what_identifies_a_row_and_what_varies(cpu, gpu):
    rows = summaries(ok(cpu + gpu, "train"))
    shared, shown = lift_constants(best_train_table(rows, ["dataset", "model"], "b", "b"))
    assert shown.headers == ["dataset", "model", "optimizer", "train limit", "val acc (%), chosen by", "test acc (%)",
                             "train time (s)"]
    # said once above it, except what is at the suite's default (stem, image size, pin_memory, amp, split)
    assert dict(shared) == {"batch": 16, "lr": 0.001, "epochs": 1, "path": "classic", "loader": "dataloader",
                            "device": "cuda", "hardware": GPU_NAME}
    # one dataset: the column that identifies the row stays, though every row shares it
    _, one_dataset = lift_constants(best_train_table(every(rows, dataset="MNIST"), ["dataset"], "b", "b"))
    assert one_dataset.as_dicts()[0]["dataset"] == "MNIST"


def test_the_csv_keeps_every_column(cpu, tmp_path):
    table = mnist_model_table(cpu)
    write_csv(table, tmp_path / "t.csv")
    with open(tmp_path / "t.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {row["batch"] for row in rows} == {"16"} and {row["lr"] for row in rows} == {"0.001"}
    assert {"test acc (%) mean", "test acc (%) std", "test acc (%) n"} <= set(rows[0])


def test_best_table_shows_time_to_target_only_when_recorded(cpu):
    untimed = best_train_table(summaries(ok(cpu, "train")), ["dataset"], "b", "b")
    assert "epochs to target" not in untimed.headers
    for rec in every(cpu, **R18_SGD):
        rec.update(target_val_acc_pct=90.0, epochs_to_target=1, time_to_target_s=rec["train_time_s"])
    table = best_train_table(summaries(ok(cpu, "train")), ["dataset"], "b", "b")
    assert table.headers[-3:] == ["train time (s)", "epochs to target", "time to target (s)"]
    mnist = one(table.as_dicts(), dataset="MNIST")
    assert mnist["val target (%)"] == 90.0 and mnist["epochs to target"] == Stat(1.0, 0.0, 3, ".1f")


def test_the_best_configuration_is_chosen_by_validation_and_reported_by_test_accuracy(cpu):
    """The fixture's two MNIST ResNet-18 configurations, made to disagree: sgd best on test, adam on val."""
    records = [dict(r) for r in ok(cpu, "train") if r["dataset"] == "MNIST" and r["model"] == "resnet18"]
    for rec in records:
        high_test = rec["optimizer"] == "sgd"
        rec.update(test_acc_pct=95.0 if high_test else 90.0, val_acc_pct=88.0 if high_test else 93.0)
    (row,) = best_train_table(summaries(records), ["dataset"], "b", "b").as_dicts()
    assert row["optimizer"] == "adam"  # the validation-best, not the test-best
    assert row["val acc (%), chosen by"].mean == 93.0 and row["test acc (%)"].mean == 90.0


def test_no_best_is_chosen_among_runs_without_a_validation_accuracy(cpu):
    svm = [{k: v for k, v in r.items() if k != "val_acc_pct"} for r in ok(cpu, "svm")]
    assert best_train_table(summaries(svm), ["dataset"], "b", "b").rows == []
    assert chosen(best_svm_table(summaries(svm), "b", "Preset smoke: best")).startswith(
        "Preset smoke: best: none chosen, since no run recorded a validation accuracy")


def seeds_reaching_target(seconds: list[float | None]) -> list[dict]:
    """One run per seed; None: a seed that never reached the target."""
    return [{"kind": "train", "status": "ok", "seed": seed, "target_val_acc_pct": 99.0, "time_to_target_s": t,
             "epochs_to_target": None if t is None else 2} for seed, t in enumerate(seconds)]


@pytest.mark.parametrize("seconds, score, verdict", [
    ([10, 11, 12, 13, 30], 12.0, "valid"),  # the fastest and the slowest dropped
    ([10, 11, 12, 13, None], 12.0, "valid"),  # one seed short of the target counts as the slowest
    ([10, 11, 12, None, None], None, "invalid: 2 seeds did not reach the target"),
    ([10, 11, 12], None, "no score: 3 seed(s), MLPerf needs 5"),
])
def test_time_to_target_is_scored_as_mlperf_does(seconds, score, verdict):
    result = target_score(seeds_reaching_target(seconds))
    assert (result.seconds, result.verdict) == (score, verdict)
    assert result.converged == sum(t is not None for t in seconds)


def test_a_seed_that_failed_counts_as_one_that_never_reached_the_target():
    runs = seeds_reaching_target([10, 11, 12, 13, 14])
    runs[0]["status"] = "below_floor"
    assert target_score(runs) == (13.0, 4, 5, "valid")  # 11 and the failed seed dropped


def test_time_to_target_table_has_a_row_per_configuration_over_its_seeds(cpu):
    for rec in every(cpu, **R18_SGD):
        rec.update(target_val_acc_pct=90.0, epochs_to_target=1, time_to_target_s=rec["train_time_s"])
    (row,) = time_to_target_table(cpu).as_dicts()
    assert (row["val target (%)"], row["reached"]) == (90.0, "3/3")
    assert row["verdict"] == "no score: 3 seed(s), MLPerf needs 5"
    assert row["time to target (s)"].n == 3 and row["MLPerf score (s)"] is None
    assert not time_to_target_table([r for r in cpu if "target_val_acc_pct" not in r]).rows


def test_a_model_this_install_does_not_register_still_renders(cpu):
    """A record from a newer or extended suite keeps its own name, sorted after the registered models."""
    alien = derived(one(cpu, **R18_SGD, seed=0), model="vit_tiny", case_id="smoke-mnist-vit_tiny-seed0-cpu")
    records = [*cpu, alien]
    table = mnist_model_table(records)
    assert [row[0] for row in table.rows] == ["resnet18", "resnet18", "resnet50", "vit_tiny"]
    assert one(flops_table(records).as_dicts(), model="vit_tiny")["records"] == "1 train"
    assert "vit_tiny" in render_markdown(report_blocks(records))
    assert label(alien, JOINS["compare"]) == alien["case_id"]  # no case to rebuild: the recorded id, as is


# ---------------------------------------------------------------- Q2: CPU against GPU


def test_speedup_joins_cpu_and_gpu_by_config_not_order(cpu, gpu):
    for rec in gpu:  # names and order must not matter, nor pin_memory
        rec.update(bench_name=f"renamed-{random.random()}", pin_memory=False)
    random.Random(0).shuffle(gpu)
    pairs, alone = speedup_pairs(gpu + cpu)
    assert len(pairs) == 3
    cpu_row, gpu_row = next((c, g) for c, g in pairs if every([c], **R18_SGD))
    assert gpu_row["device"] == "cuda" and gpu_row["n"] == cpu_row["n"] == 3
    assert cpu_row["train_time_s"].mean / gpu_row["train_time_s"].mean == pytest.approx(12.0)
    assert sorted((r["dataset"], r["optimizer"], r["device"]) for r in alone) == [
        ("FashionMNIST", "adam", "cuda"), ("FashionMNIST", "sgd", "cpu")]


def test_speedup_table_is_the_ratio_of_mean_training_times(cpu, gpu):
    pairs, _ = speedup_pairs(cpu + gpu)
    rows = {(r["model"], r["optimizer"]): r for r in speedup_table(pairs).as_dicts()}
    assert list(rows) == [("resnet18", "sgd"), ("resnet18", "adam"), ("resnet50", "sgd")]
    assert format_cell(rows["resnet50", "sgd"]["speedup (CPU/GPU)"]) == "20.00× (n=1/1)"
    assert format_cell(rows["resnet18", "sgd"]["speedup (CPU/GPU)"]) == "12.00× ± 1.47 (n=3/3)"


def test_configurations_on_one_device_are_named_by_their_fields(cpu, gpu):
    (note,) = [b for b in q2_blocks(cpu + gpu) if isinstance(b, str) and "on one device only" in b]
    _, alone = speedup_pairs(cpu + gpu)
    names = sorted(f"{label(r, JOINS['devices'])} ({device_name(r['device'])})" for r in alone)
    assert note == f"2 configuration(s) ran on one device only: {', '.join(names)}."
    assert "smoke-fashion-r18-bs16-sgd-lr1e-3-ep1-classic-dataloader-n2000 (CPU)" in names


def test_flops_table_from_flop_cases_and_training_runs(cpu):
    rows = {r["model"]: r for r in flops_table(cpu).as_dicts()}
    assert list(rows) == ["ResNet-18", "ResNet-50"]
    r18 = rows["ResNet-18"]
    assert (r18["stem"], r18["image size (px)"], r18["channels"]) == ("imagenet", 28, 1)
    assert r18["GMACs/image (fvcore, forward)"] == pytest.approx(0.033097, abs=1e-6)
    assert r18["params (M)"] == pytest.approx(11.1754, abs=1e-4)
    assert r18["records"] == "1 flops, 5 train"

    def gmacs(records):
        return [r["GMACs/image (fvcore, forward)"] for r in flops_table(records).as_dicts()]

    assert gmacs(every(cpu, kind="flops")) == gmacs(every(cpu, kind="train")) == gmacs(cpu)
