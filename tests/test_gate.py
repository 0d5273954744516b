"""The compare gate (gate.py) and `mnistbench-report compare --fail-on`: verdicts over synthetic runs.

Every run below is DERIVED, NOT MEASURED: copies of one fixture record (fixtures/records.py)
with epoch times and accuracies drawn from a seeded generator, so the statistics meet known
shifts and known noise; only the verdicts and the exit codes are under test.
"""

import random

import pytest
from fixtures.records import CPU, CPU_NAME, FASHION_SGD, R18_SGD, derived, one, raw_benchmarks

from mnistbench.cases.registry import ConfigError
from mnistbench.cli import main
from mnistbench.results import gate
from mnistbench.results.load import load
from mnistbench.results.store import ResultsLog

EPOCHS = 3
MACHINE = {"cpu_model": CPU_NAME, "cpu_count": 2, "node": "vm", "gpus": []}
OTHER_MACHINE = {**MACHINE, "cpu_model": "AMD EPYC 9654 96-Core Processor", "node": "other"}


@pytest.fixture(scope="module")
def template():
    """One smoke training record as the suite wrote it (extra_info), without what loading adds."""
    raw = [b["extra_info"] for b in raw_benchmarks(CPU)]
    return one(raw, **R18_SGD, seed=0)


def runs(template, *, seconds=10.0, cv=0.01, acc=92.0, acc_std=0.1, seeds=5, draw=0, machine=MACHINE, **fields):
    """DERIVED: `seeds` runs of one configuration, EPOCHS epochs each, times ~ N(seconds, cv x seconds)."""
    rng = random.Random(draw)
    made = []
    for seed in range(seeds):
        epochs = [rng.gauss(seconds, cv * seconds) for _ in range(EPOCHS)]
        made.append(derived(template, seed=seed, epochs=EPOCHS, epoch_time_s=epochs, train_time_s=sum(epochs),
                            test_acc_pct=round(rng.gauss(acc, acc_std), 2), machine=machine, **fields))
    return made


def only(verdicts: list[gate.Verdict]) -> gate.Verdict:
    (verdict,) = verdicts
    return verdict


def check(verdict: gate.Verdict, metric: str) -> gate.Check:
    (found,) = [c for c in verdict.checks if c.metric == metric]
    return found


# ---------------------------------------------------------------- verdicts


def test_a_real_15_percent_slowdown_with_low_noise_fails(template):
    base, new = runs(template, draw=1), runs(template, seconds=11.5, draw=2)
    verdicts = gate.verdicts(base, new, ["time:+10%", "acc:-0.5pt"])
    verdict = only(verdicts)
    assert verdict.verdict == gate.REGRESSION and gate.failed(verdicts)
    time = check(verdict, "time")
    assert time.change == pytest.approx(0.15, abs=0.02) and time.p < 1e-6
    assert time.ci[0] > 0.10 and (time.base.n, time.new.n) == (5 * EPOCHS, 5 * EPOCHS)
    assert check(verdict, "acc").verdict != gate.REGRESSION
    assert gate.summary(verdicts).startswith("FAIL: 1 regression")


def test_the_same_shift_inside_the_runs_noise_passes(template):
    base, new = runs(template, cv=0.25, draw=1), runs(template, seconds=11.5, cv=0.25, draw=2)
    verdicts = gate.verdicts(base, new, ["time:+10%"])
    time = check(only(verdicts), "time")
    assert time.verdict == gate.NOISY and "CI wider" in time.why
    assert not gate.failed(verdicts)


def test_the_same_shift_inside_the_measured_noise_passes(template):
    base, new = runs(template, draw=1), runs(template, seconds=11.5, draw=2)
    noise = runs(template, cv=0.08, draw=3)  # the same case run again and again: CV about 8%
    verdicts = gate.verdicts(base, new, ["time:+10%"], noise=noise)
    time = check(only(verdicts), "time")
    cv = gate.noise_levels(noise)[next(iter(gate.noise_levels(noise)))]
    assert time.noise_cv == pytest.approx(cv) and time.threshold == pytest.approx(3 * cv) and time.threshold > 0.15
    assert time.verdict == gate.UNCHANGED and time.p < 0.05  # significant, but within 3 x the noise
    assert not gate.failed(verdicts)
    quiet = runs(template, cv=0.01, draw=3)  # a quiet noise file leaves the threshold as given
    assert check(only(gate.verdicts(base, new, ["time:+10%"], noise=quiet)), "time").threshold == 0.10


def test_a_one_point_accuracy_drop_fails(template):
    base, new = runs(template, draw=1), runs(template, acc=91.0, draw=2)
    verdicts = gate.verdicts(base, new, ["time:+10%", "acc:-0.5pt"])
    verdict = only(verdicts)
    assert check(verdict, "acc").verdict == gate.REGRESSION and check(verdict, "acc").change == pytest.approx(
        -1.0, abs=0.15)
    assert check(verdict, "time").verdict == gate.UNCHANGED
    assert verdict.verdict == gate.REGRESSION and gate.failed(verdicts)


def test_a_speedup_is_an_improvement_not_a_failure(template):
    verdicts = gate.verdicts(runs(template, draw=1), runs(template, seconds=8.0, draw=2), ["time:+10%"])
    assert only(verdicts).verdict == gate.IMPROVEMENT and not gate.failed(verdicts)
    assert only(verdicts).speed.value == pytest.approx(10 / 8, rel=0.02)


def test_a_single_run_is_too_noisy_to_judge(template):
    base = runs(template, seeds=1, draw=1)
    new = [derived(r, epoch_time_s=[r["train_time_s"] * 2]) for r in runs(template, seeds=1, draw=2)]
    verdicts = gate.verdicts(base, new, ["time:+10%", "acc:-0.5pt"])
    assert [c.verdict for c in only(verdicts).checks] == [gate.NOISY, gate.NOISY]
    assert "n < 2" in check(only(verdicts), "acc").why and not gate.failed(verdicts)


def test_one_sided_cases_are_listed(template):
    fashion = derived(template, **FASHION_SGD)
    base = runs(template, draw=1) + runs(fashion, draw=3)
    new = runs(template, draw=2) + runs(template, draw=4, lr=0.01)
    new.append(derived(runs(fashion, seeds=1, draw=5)[0], status="diverged"))
    verdicts = gate.verdicts(base, new, ["time:+10%"])
    by = {v.verdict: v for v in verdicts}
    assert sorted(by) == sorted([gate.UNCHANGED, gate.BASE_ONLY, gate.NEW_ONLY])
    assert "fashion" in by[gate.BASE_ONLY].case and "status diverged" in by[gate.BASE_ONLY].why
    assert "lr1e-2" in by[gate.NEW_ONLY].case and not gate.failed(verdicts)
    assert gate.summary(verdicts) == "PASS: 1 check within the threshold; 1 case only in base; 1 case only in new"


def test_other_hardware_is_a_speed_comparison_unless_across_machines(template):
    base, new = runs(template, draw=1), runs(template, seconds=11.5, draw=2, machine=OTHER_MACHINE)
    verdict = only(gate.verdicts(base, new, ["time:+10%"]))
    assert verdict.verdict == gate.OTHER_HARDWARE and verdict.checks == ()
    assert verdict.hardware == (CPU_NAME, OTHER_MACHINE["cpu_model"])
    assert verdict.speed.value == pytest.approx(1 / 1.15, rel=0.02) and verdict.speed.std is not None
    judged = gate.verdicts(base, new, ["time:+10%"], across_machines=True)
    assert only(judged).verdict == gate.REGRESSION and gate.failed(judged)


def test_thresholds_parse_and_refuse_loudly():
    assert gate.Threshold.parse("time:+10%") == gate.Threshold("time", 0.10)
    assert gate.Threshold.parse("time:10%") == gate.Threshold("time", 0.10)
    assert gate.Threshold.parse("acc:-0.5pt") == gate.Threshold("acc", 0.5)
    assert gate.Threshold.parse("acc:1pts") == gate.Threshold("acc", 1.0)
    assert str(gate.Threshold.parse("acc:-0.5pt")) == "acc:-0.5pt" and str(gate.Threshold("time", 0.1)) == "time:+10%"
    for bad in ("time:-10%", "time:+10pt", "acc:+1pt", "speed:+10%", "time:+0%", "time"):
        with pytest.raises(ConfigError, match="Valid forms"):
            gate.Threshold.parse(bad)
    with pytest.raises(ConfigError, match="twice"):
        gate.verdicts([], [], ["time:+10%", "time:+5%"])
    with pytest.raises(ConfigError, match="alpha"):
        gate.verdicts([], [], ["time:+10%"], alpha=5)


def test_welch_without_spread_is_exact():
    assert gate.welch([92.65, 92.65], [92.65, 92.65], 0.05) == (1.0, (0.0, 0.0))
    p, ci = gate.welch([92.65, 92.65], [91.65, 91.65], 0.05)
    assert p == 0.0 and ci == pytest.approx((-1.0, -1.0))


# ---------------------------------------------------------------- the command


def write_run(path, records, machine=MACHINE):
    """A results file as --mb-results writes it: the session's machine once, then a line per record."""
    log = ResultsLog(path, machine=machine)
    for rec in records:
        log.append({k: v for k, v in rec.items() if k != "machine"})
    return str(path)


def test_compare_exit_codes(template, tmp_path, capsys):
    base = write_run(tmp_path / "base.jsonl", runs(template, draw=1))
    same = write_run(tmp_path / "same.jsonl", runs(template, draw=2))
    slow = write_run(tmp_path / "slow.jsonl", runs(template, seconds=11.5, draw=2))
    gpu = write_run(tmp_path / "other.jsonl", runs(template, seconds=11.5, draw=2), OTHER_MACHINE)
    gate_on = ["--fail-on", "time:+10%", "--fail-on", "acc:-0.5pt"]
    assert main(["compare", base, same, *gate_on]) == 0
    assert "## Gate: PASS" in capsys.readouterr().out
    assert main(["compare", base, slow, *gate_on]) == 1
    out, err = capsys.readouterr()
    assert "## Gate: FAIL: 1 regression" in out and "**Regressions: past the threshold and significant**" in out
    assert err.strip().endswith("gate: FAIL: 1 regression; 1 check within the threshold")
    assert main(["compare", base, slow]) == 0  # no thresholds, no gate
    assert "## Gate" not in capsys.readouterr().out
    assert main(["compare", base, gpu, *gate_on]) == 0
    assert "**Different hardware: a speed comparison, not a verdict" in capsys.readouterr().out
    assert main(["compare", base, gpu, *gate_on, "--across-machines"]) == 1
    assert main(["compare", base, slow, "--fail-on", "time:-10%"]) == 2
    assert "Invalid threshold 'time:-10%'" in capsys.readouterr().err
    assert main(["compare", base, slow, "--across-machines"]) == 2


def test_compare_with_a_noise_file_shows_the_noise_and_widens_the_threshold(template, tmp_path, capsys):
    base = write_run(tmp_path / "base.jsonl", runs(template, draw=1))
    slow = write_run(tmp_path / "slow.jsonl", runs(template, seconds=11.5, draw=2))
    noise = write_run(tmp_path / "noise.jsonl", runs(template, cv=0.08, draw=3))
    out = tmp_path / "cmp"
    assert main(["compare", base, slow, "--fail-on", "time:+10%", "--noise", noise, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "time noise (CV %)" in printed and "(3 × noise)" in printed and "Time noise: the coefficient" in printed
    rows = (out / "gate.csv").read_text().splitlines()
    assert rows[0].startswith("case,kind,verdict,metric,A (base) mean,A (base) std,A (base) n")
    assert len(rows) == 2 and ",unchanged,time," in rows[1]
    compare_csv = (out / "compare.csv").read_text().splitlines()[0]
    assert "time noise (CV %)" in compare_csv


def test_the_verdicts_survive_the_round_trip_through_a_results_file(template, tmp_path):
    base, new = runs(template, draw=1), runs(template, seconds=11.5, draw=2)
    loaded = load([write_run(tmp_path / "b.jsonl", base)]), load([write_run(tmp_path / "n.jsonl", new)])
    assert gate.verdicts(*loaded, ["time:+10%"]) == gate.verdicts(base, new, ["time:+10%"])
