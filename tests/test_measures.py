"""One definition of each measure (results/measures.py), and every reader of it agreeing on the same
records: the twin ratio a run records, the report's speedup, its time column, and the gate's samples."""

import statistics

import pytest
from fixtures.records import MNIST_POLY, R18_SGD, derived, every, one

from mnistbench.report.group import summaries, twin_speedup
from mnistbench.results import gate, measures
from mnistbench.results.record import TWINS, twin_fields


def test_an_svm_is_timed_by_its_fit_alone_a_resnet_by_its_epochs(cpu):
    svm, train = one(cpu, **MNIST_POLY, seed=0), one(cpu, **R18_SGD, seed=0)
    assert measures.run_time_s(svm) == svm["fit_time_ms"] / 1000  # predict is evaluation, never in a time
    assert measures.time_samples(svm) == [svm["fit_time_ms"] / 1000]
    assert measures.run_time_s(train) == train["train_time_s"]
    assert measures.time_samples(train) == train["epoch_time_s"]
    assert measures.unit_time_s(train) == statistics.median(train["epoch_time_s"])


def test_a_run_that_predates_epoch_times_has_its_training_time_as_one_sample(cpu):
    old = {k: v for k, v in one(cpu, **R18_SGD, seed=0).items() if k != "epoch_time_s"}
    assert measures.time_samples(old) == [old["train_time_s"]]


@pytest.mark.parametrize("twin", TWINS, ids=lambda twin: twin.field)
def test_the_recorded_ratio_the_report_and_the_gate_read_the_same_seconds(cpu, twin):
    base = one(cpu, **(R18_SGD if twin.field == "path" else MNIST_POLY), seed=0)
    if twin.field == "path":  # the fast twin, twice as slow: every epoch and the total
        other = derived(base, path="fast", loader="auto", epoch_time_s=[t * 2 for t in base["epoch_time_s"]],
                        train_time_s=base["train_time_s"] * 2)
    else:
        other = derived(base, backend="sklearnex", fit_time_ms=base["fit_time_ms"] * 2)
    recorded = twin_fields(base, other, twin)[twin.ratio]
    assert recorded == pytest.approx(0.5)
    (base_row,), (other_row,) = summaries([base]), summaries([other])
    assert twin_speedup(base_row, other_row).value == pytest.approx(recorded)  # the report's speedup
    assert other_row["time_s"].mean == pytest.approx(2 * base_row["time_s"].mean)  # the report's time column
    assert gate.SAMPLES["time"] is measures.time_samples  # the gate's samples are the same seconds


def test_every_twin_table_and_the_path_accuracy_table_use_one_agreement_rule(cpu):
    from mnistbench.report import tables_twins

    assert tables_twins.accuracies_agree is measures.accuracies_agree
    assert measures.AGREEMENT_RULE in tables_twins.TOLERANCE
    assert every(cpu, **R18_SGD)  # the fixture the rule is exercised on in test_report_twins
