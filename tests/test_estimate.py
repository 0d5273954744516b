"""The estimate before a run: calibrated on this machine (earlier runs, else a probe), kept in each record."""

import json

import pytest

from mnistbench.cases import cost, grids
from mnistbench.cases.case import SVMCase, TrainCase
from mnistbench.suite import estimate


@pytest.fixture
def probes(monkeypatch):
    """Probes that report a machine twice as slow as the reference, and count their calls."""
    calls = []

    def probe(kind):
        def run():
            calls.append(kind)
            return 2 * estimate.PROBE_REFERENCE_S[kind]
        return run

    monkeypatch.setattr(estimate, "PROBES", {kind: probe(kind) for kind in estimate.KINDS})
    return calls


def long_selection():
    return grids.build("q1b", grids.GridOptions(train_limit=10_000)) + grids.build("q2", grids.GridOptions(
        devices=("cpu",), train_limit=2000))


def test_a_long_selection_is_calibrated_by_a_probe_per_kind(tmp_path, probes):
    cases = long_selection()
    cal = estimate.calibrate(cases, tmp_path)
    assert sorted(probes) == ["svm", "train"] and cal.factors == {"train": 2.0, "svm": 2.0}
    assert all(cal.predicted_s(c) == pytest.approx(2 * c.estimated_cpu_s()) for c in cases)
    line, = estimate.estimate_lines(cases, cuda=False, calibration=cal)
    probe = 2 * estimate.PROBE_REFERENCE_S["train"]
    assert f"on this CPU (calibrated by train: a {probe:.1f} s probe on this CPU (2.00x the reference)" in line


def test_a_selection_under_twenty_reference_seconds_is_not_probed(tmp_path, probes):
    cases = [TrainCase(train_limit=400, eval_limit=200)]
    cal = estimate.calibrate(cases, tmp_path)
    assert probes == [] and cal.predicted_s(cases[0]) == cases[0].estimated_cpu_s()
    assert "uncalibrated" in estimate.estimate_lines(cases, cuda=False, calibration=cal)[0]


def test_earlier_cases_on_this_cpu_replace_the_probe(tmp_path, probes):
    """Their measured over their reference seconds; another CPU's cases and torn lines count for nothing."""
    records = [{"status": "ok", "kind": "svm", "reference_s": 40.0, "case_wall_s": 60.0, "device": "cpu"}] * 3
    estimate.remember(tmp_path, records)
    with open(tmp_path / estimate.CACHE_FILE, "a") as f:
        f.write(json.dumps({"signature": "another CPU", "kind": "svm", "reference_s": 1, "measured_s": 99}) + "\n")
        f.write('{"signature": "torn\n')
    cal = estimate.calibrate(long_selection(), tmp_path)
    assert cal.factors["svm"] == pytest.approx(1.5) and "3 earlier svm case(s) on this CPU" in cal.source("svm")
    assert probes == ["train"]  # no earlier training case here: that kind is still probed


def test_a_short_session_calibrates_nothing_later(tmp_path):
    estimate.remember(tmp_path, [{"status": "ok", "kind": "train", "reference_s": 5.0, "case_wall_s": 9.0}])
    assert not (tmp_path / estimate.CACHE_FILE).exists()


def test_the_cost_model_counts_evaluation_and_predictions_not_training_alone():
    short, long_eval = TrainCase(train_limit=1000, eval_limit=100), TrainCase(train_limit=1000, eval_limit=5000)
    assert long_eval.estimated_cpu_s() > short.estimated_cpu_s()
    few, many = SVMCase(train_limit=5000, eval_limit=100), SVMCase(train_limit=5000, eval_limit=5000)
    assert many.estimated_cpu_s() > few.estimated_cpu_s()


def test_a_smaller_C_is_estimated_dearer_and_the_grid_of_C_keeps_its_mean():
    """Fewer support vectors at a larger C: a selection of one C is not priced at the grid's mean."""
    by_c = {c: SVMCase(train_limit=10_000, C=c).estimated_cpu_s() - cost.SVM_OVERHEAD_S for c in (0.1, 1.0, 10.0)}
    assert by_c[0.1] > by_c[1.0] > by_c[10.0]
    assert sum(by_c.values()) / 3 == pytest.approx(by_c[1.0] / cost.svm_c_factor(1.0), rel=0.01)
    assert by_c[0.1] / by_c[10.0] == pytest.approx(1.45 / 0.70, rel=0.05)  # the measured ratio (cost.py)


def test_standardised_pixels_are_estimated_dearer_than_raw_ones():
    raw, scaled = SVMCase(train_limit=10_000), SVMCase(train_limit=10_000, scale=True)
    assert (scaled.estimated_cpu_s() - cost.SVM_OVERHEAD_S) == pytest.approx(
        cost.SVM_SCALED_FACTOR * (raw.estimated_cpu_s() - cost.SVM_OVERHEAD_S))


def test_records_of_gpu_and_flops_cases_hold_no_cpu_estimate():
    cal = estimate.Calibration({"train": 2.0}, {"train": "probe"})
    assert estimate.case_fields(TrainCase(device="cuda"), cal) == {}
    fields = estimate.case_fields(TrainCase(train_limit=1000), cal)
    assert fields["predicted_s"] == pytest.approx(2 * fields["reference_s"], rel=1e-3)
