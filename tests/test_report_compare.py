"""`mnistbench-report compare A B`: two runs joined case by case (record.JOINS["compare"])."""

import csv

import pytest
from fixtures.records import (
    CPU,
    CPU_NAME,
    FASHION_SGD,
    GPU,
    GPU_NAME,
    MNIST_POLY,
    R18_SGD,
    derived,
    every,
    one,
)

from mnistbench.cli import main
from mnistbench.report.compare import SPEEDUP_HEADER, compare_rows, compare_table
from mnistbench.report.group import speedup_pairs
from mnistbench.results.load import load
from mnistbench.results.record import JOINS, label


def test_compare_joins_by_config_and_lists_one_sided_cases(cpu, gpu):
    rows = compare_rows(cpu, gpu)
    present = {r["case"]: r["present"] for r in rows}
    fashion_adam = one(gpu, dataset="FashionMNIST", optimizer="adam")
    assert present[label(one(cpu, **FASHION_SGD), JOINS["compare"])] == "A only"
    assert present[label(fashion_adam, JOINS["compare"])] == "B only"
    assert sorted(present.values()).count("both") == 3
    # CPU as A and GPU as B: the time ratio is the Q2 speedup
    pairs, _ = speedup_pairs(cpu + gpu)
    both = {r["case"]: r for r in rows if r["present"] == "both"}
    assert len(pairs) == len(both)
    for c, g in pairs:
        row = both[label(c, JOINS["compare"])]
        assert row["A"]["time_s"].mean / row["B"]["time_s"].mean == pytest.approx(
            c["train_time_s"].mean / g["train_time_s"].mean)


def test_a_slower_b_reads_as_a_speedup_below_one_under_a_header_that_says_so(cpu, gpu):
    """GPU as A and CPU as B: B is slower, so B's speedup is under 1, and the header names the direction."""
    table = compare_table([r for r in compare_rows(gpu, cpu) if r["present"] == "both"])
    speedups = [row[SPEEDUP_HEADER] for row in table.as_dicts()]
    assert speedups and all(s.value < 1 for s in speedups)
    assert SPEEDUP_HEADER == "B's speedup (time A / time B)"


def test_a_case_is_labelled_by_its_fields_without_what_the_join_leaves_out(cpu, gpu):
    labels = {r["case"] for r in compare_rows(cpu, gpu)}
    assert labels == {label(rec, JOINS["compare"]) for rec in cpu + gpu if rec["kind"] != "flops"}
    # seed and device are left out: the CPU's seed 0 and the GPU's seed 2 are one case
    cpu_seed0, gpu_seed2 = one(cpu, **R18_SGD, seed=0), one(gpu, **R18_SGD, seed=2)
    assert label(cpu_seed0, JOINS["compare"]) == label(gpu_seed2, JOINS["compare"])
    assert "smoke-mnist-r18-bs16-sgd-lr1e-3-ep1-classic-dataloader-n2000" in labels


def test_compare_joins_whatever_num_workers_a_side_used(cpu):
    workers = [derived(rec, num_workers=2) for rec in cpu]
    assert {r["present"] for r in compare_rows(cpu, workers)} == {"both"}


def test_compare_times_svms_by_their_fit(cpu):
    poly = one(every(cpu, **MNIST_POLY), seed=0)
    row = one(compare_rows(cpu, cpu), case=label(poly, JOINS["compare"]))
    fits = [r["fit_time_ms"] / 1000 for r in every(cpu, **MNIST_POLY)]
    assert row["A"]["time_s"].mean == pytest.approx(sum(fits) / len(fits))


def test_compare_command_prints_and_writes(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", str(CPU), str(GPU), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    fashion_adam = label(one(load([GPU]), dataset="FashionMNIST", optimizer="adam"), JOINS["compare"])
    for expected in ("derived-gpu-fixture", CPU_NAME, GPU_NAME, "12.00×", "20.00× (n=1/1)", "**Only in A**",
                     "**Only in B**", fashion_adam):
        assert expected in printed, expected
    assert (out / "compare.md").read_text().strip() == printed.strip()
    with open(out / "compare.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert sorted(r["present"] for r in table) == ["A only"] * 4 + ["B only"] + ["both"] * 3
    assert {SPEEDUP_HEADER, "time A (s) mean", "time A (s) std", "time A (s) n"} <= set(table[0])
