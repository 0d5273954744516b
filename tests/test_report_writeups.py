"""The "Against the write-ups" section from small fixtures: each verdict, the command, the gate on the report.

Records are fixture records DERIVED by hand (tests/fixtures/records.py): tested on the whole test
split, so they qualify as measurements of a published cell; only the matching and the rules are
under test. The cells are made here, so the tests do not move when the data file grows.
"""

import shlex
from pathlib import Path

import pytest
from fixtures.records import GPU_NAME, MNIST_POLY, R18_SGD, derived, every

from mnistbench.report.group import summaries
from mnistbench.report.writeups import (
    CANNOT,
    EXPLAINED,
    NOT_MEASURED,
    NOT_REPRODUCED,
    OTHER_HARDWARE,
    REPRODUCED,
    UNEXPLAINED,
    cell_row,
    command,
    matches,
    summary_lines,
    writeups_blocks,
    writeups_table,
)
from mnistbench.results.published import Cell, cells
from mnistbench.results.stats import stat

ROOT = Path(__file__).resolve().parents[1]
POLY = dict(kind="svm", dataset="MNIST", kernel="poly", degree=2, C=10.0)
VERDICT, COMMAND = 10, 12


def cell(metric="test_acc", value=0.0, unit="%", name="000-001", **config) -> Cell:
    return Cell(cell=name, source=f"{name[:3]}_fixture.txt", table="T", row="r", metric=metric,
                published=f"{value:g}", value=value, unit=unit, **config)


def whole(records):
    """DERIVED: the records as if tested on the whole test split."""
    return [derived(r, eval_limit=None) for r in records]


@pytest.fixture
def poly(cpu):
    return whole(every(cpu, **MNIST_POLY))


def test_a_cell_inside_the_spread_is_reproduced(poly):
    mean = stat(r["test_acc_pct"] for r in poly).mean
    row = cell_row(cell(value=round(mean + 0.2, 2), **POLY), summaries(poly))
    assert row[VERDICT] == REPRODUCED and row[7] == 3 and row[11] == 1
    assert row[9] == pytest.approx(mean - round(mean + 0.2, 2))


def test_a_cell_outside_the_spread_is_not_reproduced(poly):
    mean = stat(r["test_acc_pct"] for r in poly).mean
    assert cell_row(cell(value=mean + 5, **POLY), summaries(poly))[VERDICT] == NOT_REPRODUCED


def test_a_cell_not_reproduced_carries_the_runs_explanation_or_the_word_unexplained(poly):
    mean = stat(r["test_acc_pct"] for r in poly).mean
    explained = cell_row(cell(value=mean + 5, name="000-043", **POLY), summaries(poly))
    assert explained[VERDICT] == NOT_REPRODUCED and "pixel scaling" in explained[COMMAND]
    other = cell_row(cell(value=mean + 5, name="001-001", **POLY), summaries(poly))
    assert other[COMMAND].endswith("; unexplained")


def test_unknown_fields_match_anything_and_the_nearest_configuration_is_shown(cpu):
    runs = whole(every(cpu, kind="svm", dataset="MNIST"))  # poly d2 (3 seeds) and rbf
    row = cell_row(cell(value=99.0, kind="svm", dataset="MNIST"), summaries(runs))
    assert row[11] == 2 and row[VERDICT] in (REPRODUCED, NOT_REPRODUCED)


def test_runs_on_part_of_the_test_split_or_another_configuration_do_not_match(cpu, poly):
    assert not any(matches(cell(**POLY), r) for r in every(cpu, **MNIST_POLY))  # smoke: eval_limit 2000
    assert not any(matches(cell(**{**POLY, "C": 5.0}), r) for r in poly)
    assert not any(matches(cell(**POLY, train_limit=10000), r) for r in poly)  # they trained on 2000


def test_a_cell_with_no_matching_run_is_not_measured_yet_with_its_command(poly):
    row = cell_row(cell(value=90.0, **{**POLY, "C": 100.0}), summaries(poly))
    assert row[VERDICT] == NOT_MEASURED
    assert row[COMMAND] == ('pytest benchmarks -m "q1b and cpu" -k "q1b-mnist-poly-d2-C100-seed0" '
                            "--mb-axis dataset=MNIST --mb-axis kernel=poly --mb-axis C=100 --mb-axis degree=2")


def test_amp_on_matches_only_a_16_bit_run(cpu):
    runs = whole(every(cpu, **R18_SGD))
    on = cell(value=90.0, kind="train", dataset="MNIST", model="resnet18", amp="on")
    assert not any(matches(on, r) for r in runs)
    assert all(matches(on, derived(r, amp_dtype="bf16")) for r in runs)


def test_times_on_other_hardware_get_no_verdict(cpu, gpu):
    runs = whole(every(gpu, **R18_SGD))
    spec = dict(kind="train", dataset="MNIST", model="resnet18", device="cuda")
    elsewhere = cell_row(cell("train_time", 1.0, "s", hardware="NVIDIA A30", **spec), summaries(runs))
    unnamed = cell_row(cell("train_time", 1.0, "s", hardware="NVIDIA CUDA-enabled GPU", **spec), summaries(runs))
    assert elsewhere[VERDICT] == unnamed[VERDICT] == OTHER_HARDWARE and elsewhere[9] is not None
    same = cell_row(cell("train_time", 1.0, "s", hardware=GPU_NAME, **spec), summaries(runs))
    assert same[VERDICT] in (REPRODUCED, NOT_REPRODUCED) and GPU_NAME in same[8]


def test_a_speedup_pairs_cpu_and_gpu_runs_and_gets_no_verdict_on_other_hardware(cpu, gpu):
    runs = whole(every(cpu, **R18_SGD) + every(gpu, **R18_SGD))
    row = cell_row(cell("speedup", 10.0, "x", kind="train", dataset="MNIST", model="resnet18", optimizer="sgd",
                        hardware="Dual Intel Xeon Gold 6326 / NVIDIA A30"), summaries(runs))
    assert row[VERDICT] == OTHER_HARDWARE and row[6].mean > 1 and " / " in row[8]
    alone = cell_row(cell("speedup", 10.0, "x", kind="train", dataset="MNIST", model="resnet50"), summaries(runs))
    assert alone[VERDICT] == NOT_MEASURED and "--mb-axis model=resnet50" in alone[COMMAND]


def test_flops_cells_are_explained_by_one_of_our_counts_or_unexplained():
    def count(model, stem, image_size, channels):  # made up: 0.5 GMACs at 1x64x64 with the imagenet stem
        return {"gmacs_fvcore": 0.5 if (stem, image_size, channels) == ("imagenet", 64, 1) else 7.0}

    twice = cell_row(cell("gflops", 1.0, "G", kind="flops", model="resnet18"), [], count)
    assert twice[VERDICT] == EXPLAINED and "2 × fvcore MACs, imagenet stem, 1x64x64" in twice[COMMAND]
    stated = cell_row(cell("gflops", 1.0, "G", kind="flops", model="resnet18", image_size=224), [], count)
    assert stated[VERDICT] == UNEXPLAINED  # only the stated size is tried


def test_resnet32_cannot_be_expressed():
    (row,) = [cell_row(c, []) for c in cells() if c.model == "resnet32"][:1]
    assert row[VERDICT] == CANNOT and "no torchvision model" in row[COMMAND]


def test_the_section_is_left_out_when_no_run_measures_a_cell_and_summarises_each_write_up(cpu, poly):
    assert writeups_blocks(cpu) == []  # the golden report's inputs: smoke runs on part of the test split
    mean = stat(r["test_acc_pct"] for r in poly).mean
    published = [cell(value=mean, **POLY), cell(value=mean + 9, name="000-002", **POLY),
                 cell(value=50.0, name="001-001", **{**POLY, "C": 5.0})]
    blocks = writeups_blocks(poly, published)
    assert blocks[0] == "## Against the write-ups" and "reproduced" in blocks[1]
    assert blocks[2].splitlines() == [
        "- Write-up 000: 1 of 2 judged cells reproduced (2 cells: 1 not reproduced).",
        "- Write-up 001: 0 of 0 judged cells reproduced (1 cells: 1 not measured yet)."]
    assert summary_lines(writeups_table(poly, published)) == blocks[2].splitlines()


def collected(pytester, line: str, data_dir) -> list[str]:
    args = shlex.split(line)
    assert args[:2] == ["pytest", "benchmarks"]
    run = pytester.runpytest_inprocess(str(ROOT / "benchmarks"), f"--rootdir={ROOT}", "-p", "no:cacheprovider",
                                       f"--mb-data-dir={data_dir}", "--mb-offline", *args[2:], "--collect-only",
                                       "-q")
    return [t.split("[", 1)[1].rstrip("]") for t in run.outlines if "::" in t]


def test_each_command_collects_exactly_its_configuration(pytester, data_dir):
    picked = {c.cell: c for c in cells()}
    for name in ("004-025", "002-039", "001-006", "004-011"):  # 10k-subset svm, C=5, StandardScaler + gamma, 64 px
        line = command(picked[name])
        ids = shlex.split(line)[5].split(" or ")
        assert collected(pytester, line, data_dir) == ids and len(ids) == 1, (name, line)
        case = picked[name].case()
        assert all(getattr(case, k) == v for k, v in picked[name].stated().items() if k != "amp")


def test_c_5_and_100_are_an_axis(pytester, data_dir):
    ids = collected(pytester, 'pytest benchmarks -m "q1b and cpu" -k "mnist-rbf" --mb-axis C=5,100', data_dir)
    assert ids == ["q1b-mnist-rbf-C5-seed0", "q1b-mnist-rbf-C100-seed0"]
