"""The write-ups' published numbers (results/published.csv) held against the seed files they came from."""

from pathlib import Path

import pytest

from mnistbench.cases.case import AMPS, DEVICES, KERNELS, OPTIMIZERS, FlopsCase, SVMCase, TrainCase
from mnistbench.cases.registry import DATASETS, SPLITS
from mnistbench.results.published import AMP_ON, METRICS, SECONDS_PER, cells

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
# cells per write-up: every number of its result tables, once (the report's closing note lists what is left out)
COUNTS = {"000": 107, "001": 30, "002": 64, "003": 45, "004": 52}
CASES = {"train": TrainCase, "svm": SVMCase, "flops": FlopsCase}
needs_seeds = pytest.mark.skipif(not SEEDS.is_dir(), reason=f"the seed write-ups are not beside the checkout "
                                                              f"({SEEDS} is absent)")


def seed_text(name: str) -> str:
    return (SEEDS / name).read_text(encoding="utf-8", errors="replace")


@needs_seeds
def test_every_published_value_occurs_in_its_seed_file_as_written():
    texts = {name: seed_text(name) for name in {c.source for c in cells()}}
    missing = [f"{c.cell}: {c.published!r}" for c in cells() if c.published not in texts[c.source]]
    assert not missing


@needs_seeds
def test_every_seed_file_has_cells_and_none_other_is_cited():
    assert {c.source for c in cells()} == {p.name for p in SEEDS.glob("*.txt")}


def test_each_write_up_has_its_pinned_count_of_cells():
    counted = {seed: sum(c.seed == seed for c in cells()) for seed in COUNTS}
    assert counted == COUNTS and len(cells()) == sum(COUNTS.values())


def test_cells_are_unique_and_values_are_the_printed_numbers():
    assert len({c.cell for c in cells()}) == len(cells())
    assert len({(c.source, c.table, c.row, c.metric) for c in cells()}) == len(cells())
    for c in cells():
        assert c.value == float(c.published.replace(",", "")), c.cell


def test_metrics_and_units_are_known():
    units = {"%"} | set(SECONDS_PER) | {"x", "G"}
    for c in cells():
        assert c.metric in METRICS and c.unit in units, c.cell
        assert (c.unit == "%") == (c.metric.endswith("acc")), c.cell
        assert c.kind == "flops" if c.metric == "gflops" else c.kind in ("train", "svm"), c.cell


def test_every_stated_value_is_a_valid_case_field_value():
    for c in cells():
        stated = c.stated()
        assert c.dataset in (None, *DATASETS) and c.split in (None, *SPLITS), c.cell
        assert c.optimizer in (None, *OPTIMIZERS) and c.kernel in (None, *KERNELS), c.cell
        assert c.device in (None, *DEVICES) and c.amp in (None, AMP_ON, *AMPS), c.cell
        assert set(stated) <= set(CASES[c.kind].field_names()), c.cell
        if c.unexpressible:
            continue
        case = c.case()  # the case constructor validates every value
        assert isinstance(case, CASES[c.kind])
        for name, value in stated.items():
            assert name == "amp" or getattr(case, name) == value, (c.cell, name)


def test_only_resnet32_cells_cannot_be_expressed():
    cannot = [c for c in cells() if c.unexpressible]
    assert {c.model for c in cannot} == {"resnet32"} and len(cannot) == 9
    assert all("no torchvision model" in c.unexpressible for c in cannot)


def test_settings_the_text_states_are_part_of_the_cells():
    by_seed = {seed: [c for c in cells() if c.seed == seed] for seed in COUNTS}
    assert all(c.scale for c in by_seed["001"] if c.kind == "svm")  # StandardScaler
    svm4 = [c for c in by_seed["004"] if c.kind == "svm"]
    assert svm4 and all(c.max_iter == 1000 and c.train_limit == 10000 and c.gamma == "scale" for c in svm4)
    assert {c.image_size for c in by_seed["004"] if c.kind == "train"} == {64, 224}
    assert all(c.epochs == 10 and c.pin_memory for c in by_seed["000"] if c.table.startswith("Q1(a)"))
    assert {c.epochs for c in cells() if c.epochs} == {1, 2, 3, 4, 5, 10}
    # nothing is guessed: no write-up states a train subset for its ResNets, nor C for 003's SVMs
    assert all(c.train_limit is None for c in cells() if c.kind == "train")
    assert all(c.C is None and c.degree is None for c in by_seed["003"] if c.kind == "svm")
