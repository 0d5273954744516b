import importlib.util

import pytest

from mnistbench.cases.case import SVMCase
from mnistbench.train.svm import SVMRun, fit_svm


@pytest.mark.parametrize(("kernel", "floor"), [("rbf", 85), ("poly", 80)])
def test_svm_on_a_thousand_digits(mnist, kernel, floor):
    r = fit_svm(SVMCase(kernel=kernel, degree=2, C=10, train_limit=1000, eval_limit=1000), mnist)
    # measured: about 90% (rbf) and 87% (poly) on this slice; chance is 10%
    assert r.test_acc_pct > floor
    assert r.n_train == 1000 and r.n_test == 1000 and 0 < r.n_support <= 1000
    assert r.fit_time_ms > 0 and r.predict_time_ms > 0 and r.train_acc_pct >= r.test_acc_pct


def test_standard_scaler_is_optional(mnist):
    r = fit_svm(SVMCase(kernel="rbf", scale=True, train_limit=500, eval_limit=500), mnist)
    assert r.test_acc_pct > 50


def test_features_are_float64_for_every_backend_and_the_record_says_so(mnist):
    run = SVMRun(SVMCase(kernel="rbf", train_limit=300, eval_limit=300), mnist)
    assert run.x_train.dtype == run.x_test.dtype == "float64"  # oneDAL computes in what it is given
    assert run.result.features_dtype == "float64"


@pytest.mark.skipif(importlib.util.find_spec("sklearnex") is None,
                    reason="scikit-learn-intelex is not installed: pip install -e '.[fast-svm]'")
def test_sklearnex_predicts_what_scikit_learn_predicts(fashion):
    """The same problem in the same precision: the same support vectors, the same answers."""
    case = SVMCase(kernel="rbf", C=10, train_limit=3000, eval_limit=1000)
    runs = [SVMRun(case, fashion), SVMRun(case.replace(backend="sklearnex"), fashion)]
    for run in runs:
        run.fit()
    base, fast = runs
    assert fast.model.n_support_.sum() == base.model.n_support_.sum()
    assert (fast.model.predict(fast.x_test) == base.model.predict(base.x_test)).all()


def test_max_iter_reaches_the_svc_and_a_capped_fit_says_so(mnist):
    run = SVMRun(SVMCase(kernel="poly", degree=4, C=0.1, max_iter=5, train_limit=300, eval_limit=300), mnist)
    assert run.model.max_iter == 5
    run.fit()
    assert run.finish().stopped_at_max_iter  # a warning the suite's warnings-as-errors would have failed on


def test_max_iter_defaults_to_no_limit_and_keeps_todays_ids():
    case = SVMCase(kernel="rbf", C=10.0)
    assert case.max_iter == -1 and "max_iter" not in case.id
    assert SVMCase(kernel="rbf", C=10.0, max_iter=1000).id == "q1b-mnist-rbf-C10-max_iter-1000-seed0"


def test_svm_seeds_draw_other_training_images_on_one_test_set(mnist):
    """SVC is deterministic: its spread over seeds is the spread over which images were drawn."""
    runs = [SVMRun(SVMCase(kernel="rbf", train_limit=300, eval_limit=300, seed=s), mnist) for s in (0, 0, 1)]
    first, again, other = runs
    assert (first.x_train == again.x_train).all()
    assert not (first.x_train == other.x_train).all()
    assert (first.x_test == other.x_test).all() and (first.x_val == other.x_val).all()
