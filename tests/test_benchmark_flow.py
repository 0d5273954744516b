"""pytest-benchmark's own history flow works on our suite: first run, second run, empty selection."""

from test_suite import run_suite

FLOPS = ("-m", "smoke and flops", "-k", "flops-r18")


def test_autosave_then_compare_then_compare_fail(pytester, data_dir):
    # fresh interpreters: pytest-benchmark's messages come from its own session, as a user sees them
    first = run_suite(pytester, data_dir, *FLOPS, "--benchmark-compare", "--benchmark-autosave", fresh=True)
    first.assert_outcomes(passed=1)
    assert "Can't compare. No benchmark files" in first.stdout.str() + first.stderr.str()
    saved = list((pytester.path / ".benchmarks").rglob("0001_*.json"))
    assert len(saved) == 1

    second = run_suite(pytester, data_dir, *FLOPS, "--benchmark-compare", "--benchmark-compare-fail=mean:10000%")
    second.assert_outcomes(passed=1)
    second.stdout.fnmatch_lines(["*benchmark: 2 tests*", "*0001_*"])  # the saved one and the new, side by side


def test_empty_selection_says_nothing_was_saved(pytester, data_dir):
    run = run_suite(pytester, data_dir, *FLOPS, "-k", "no-such-case", "--benchmark-autosave", fresh=True)
    assert run.ret == 5  # pytest's "no tests ran", not an internal error
    assert "Not saving anything, no benchmarks have been run!" in run.stdout.str() + run.stderr.str()


def test_repeats_and_the_gate_against_a_saved_baseline(pytester, data_dir, monkeypatch):
    """--mb-repeat gives the gate samples; a baseline three times faster makes this run a regression.
    The fits really run, but record fixed times (30, 31, 29 ms): what the gate makes of the samples is
    under test here, not this machine's noise (a 50 ms fit can take 160 ms once)."""
    import json

    from mnistbench.train.svm import SVMRun

    real_fit, times = SVMRun.fit, iter([30.0, 31.0, 29.0] * 2)

    def fit(self):
        real_fit(self)
        self.result.fit_time_ms = next(times)

    monkeypatch.setattr(SVMRun, "fit", fit)
    pick = ("-m", "smoke and cpu", "-k", "smoke-mnist-poly", "--mb-repeat", "3", "--mb-axis", "train_limit=600")
    first = run_suite(pytester, data_dir, *pick, "--mb-results=first.jsonl")
    first.assert_outcomes(passed=3)
    header, *records = [json.loads(line) for line in (pytester.path / "first.jsonl").read_text().splitlines()]
    assert sorted(r["repeat"] for r in records) == [0, 1, 2]
    faster = [{**r, "fit_time_ms": r["fit_time_ms"] / 3} for r in records]
    (pytester.path / "base.jsonl").write_text("\n".join(json.dumps(r) for r in [header, *faster]) + "\n")

    second = run_suite(pytester, data_dir, *pick, "--mb-results=second.jsonl", "--mb-compare=base.jsonl",
                       "--mb-fail-on=time:+10%")
    assert second.ret == 1
    second.stdout.fnmatch_lines(["mnistbench gate against base.jsonl: FAIL: 1 regression*"])
