"""The report's first section: the data its summary tables are built from, and the plots it skips."""

from fixtures.records import derived, every, one

from mnistbench.report.group import summaries
from mnistbench.report.markdown import format_cell
from mnistbench.report.plots import svm_plot, val_curve_plot
from mnistbench.report.summary import summary_blocks, svm_summary, training_summary
from mnistbench.results.record import ok
from mnistbench.results.stats import Stat


def mnist_r18(records: list[dict]) -> list[dict]:
    return [dict(r) for r in ok(records, "train") if r["dataset"] == "MNIST" and r["model"] == "resnet18"]


def test_the_summary_chooses_by_validation_and_reports_test_accuracy(cpu):
    """sgd made the test-best, adam the validation-best: the summary's row is adam's, with adam's test accuracy."""
    records = mnist_r18(cpu)
    for rec in records:
        high_test = rec["optimizer"] == "sgd"
        rec.update(test_acc_pct=95.0 if high_test else 90.0, val_acc_pct=88.0 if high_test else 93.0)
    (row,) = training_summary(records).as_dicts()
    assert "adam" in row["chosen configuration"] and row["chosen among"] == 2
    assert row["val acc (%)"].mean == 93.0 and row["test acc (%)"].mean == 90.0


def test_summary_times_are_seconds_per_epoch_per_device_with_the_gpu_speedup(cpu, gpu):
    (row,) = every(training_summary(mnist_r18(cpu) + mnist_r18(gpu)).as_dicts(), model="ResNet-18")
    chosen = [r for r in mnist_r18(cpu) if r["optimizer"] in row["chosen configuration"]]
    per_epoch = [r["train_time_s"] / r["epochs"] for r in chosen]
    assert row["CPU s/epoch"].mean == sum(per_epoch) / len(per_epoch)
    assert row["GPU speedup"].value == row["CPU s/epoch"].mean / row["GPU s/epoch"].mean


def test_runs_of_different_training_sizes_are_different_rows(cpu):
    records = mnist_r18(cpu)
    bigger = [derived(r, n_train=4000, train_limit=4000, val_acc_pct=50.0) for r in records]
    sizes = [row["train images"] for row in training_summary(records + bigger).as_dicts()]
    assert sorted(sizes) == [2000, 4000]


def test_the_best_svm_is_chosen_per_dataset_and_kernel_and_its_fit_is_in_seconds(cpu):
    svm = [derived(r, val_acc_pct=r["test_acc_pct"]) for r in ok(cpu, "svm")]  # the fixture predates val
    poly = one(svm_summary(svm).as_dicts(), dataset="MNIST", kernel="poly")
    fits = [r["fit_time_ms"] for r in svm if r["dataset"] == "MNIST" and r["kernel"] == "poly"]
    assert poly["fit (s)"].mean == sum(fits) / len(fits) / 1000


def test_a_selection_without_svms_says_so_in_one_line(cpu):
    blocks = summary_blocks(ok(cpu, "train"))
    assert "No SVM runs in the inputs." in blocks


def test_a_spread_sets_the_precision_of_its_cell():
    assert format_cell(Stat(6.6, 7.11, 3, ",.2f")) == "6.6 ± 7.1 (n=3)"
    assert format_cell(Stat(68.9, 0.344, 3, ".2f")) == "68.90 ± 0.34 (n=3)"
    assert format_cell(Stat(175.2, 31.0, 3, ",.2f")) == "175 ± 31 (n=3)"


def test_a_one_point_series_makes_no_plot(cpu):
    """One epoch per run is no curve, one C per SVM line no line: both plots say why instead."""
    curves = val_curve_plot(summaries(ok(cpu, "train")))
    assert curves.figure is None and "two epochs" in curves.missing
    svm = svm_plot(summaries(every(ok(cpu, "svm"), C=10.0)))
    assert svm.figure is None and "two values of C" in svm.missing
