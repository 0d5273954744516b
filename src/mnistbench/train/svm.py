"""Support vector machines on flattened pixels: Q1(b) of the study.

Pixels are scaled to [0, 1] (the write-ups' ToTensor), optionally standardised. Fit and
predict are timed apart; train accuracy is measured on at most TRAIN_ACC_SAMPLE images,
since predicting the whole training split of a kernel SVM costs more than fitting it.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import torch

from mnistbench.cases import cost
from mnistbench.cases.case import SVMCase
from mnistbench.data import Split
from mnistbench.train.energy import EnergyMeter

TRAIN_ACC_SAMPLE = cost.SVM_TRAIN_ACC_SAMPLE

# Features are float64 for every backend. scikit-learn (libsvm) converts its input to float64
# whatever it is given; oneDAL (sklearnex) computes in the input's precision. Fed float32, on
# Fashion-MNIST (rbf, C=10, full split) sklearnex scored 89.11% against scikit-learn's 90.15%,
# 1.16% of test predictions differing; fed float64 it made exactly scikit-learn's predictions
# (reports/svm-backends/results.md). Same data, same precision: the same problem.
FEATURE_DTYPE = np.float64


class BackendMissing(RuntimeError):
    """The requested SVM backend is not installed."""


@dataclass
class SVMResult:
    fit_time_ms: float = 0.0
    predict_time_ms: float = 0.0  # test set only
    test_acc_pct: float = float("nan")
    val_acc_pct: float = float("nan")  # on the validation split: what a best configuration is chosen by
    train_acc_pct: float = float("nan")  # on train_acc_n training images
    train_acc_n: int = 0
    n_support: int = 0
    n_train: int = 0
    n_val: int = 0
    n_test: int = 0
    backend_version: str = ""
    energy_j: float | None = None  # over the fit (energy_source: RAPL's CPU package counters); None where unreadable
    energy_j_per_image: float | None = None  # energy_j / training images
    energy_source: str | None = None
    features_dtype: str = np.dtype(FEATURE_DTYPE).name  # float32 in records before both backends got float64
    stopped_at_max_iter: bool = False  # the solver hit the case's max_iter before converging (a result, not an error)

    def as_fields(self) -> dict:
        return asdict(self)


def svc_class(backend: str):
    if backend == "sklearnex":
        try:
            from sklearnex.svm import SVC
        except ImportError:
            raise BackendMissing(
                "SVM backend 'sklearnex' needs scikit-learn-intelex: "
                "pip install 'mnistbench[fast-svm]' (or scikit-learn-intelex)."
            ) from None
        from importlib.metadata import version

        return SVC, version("scikit-learn-intelex")
    import sklearn
    from sklearn.svm import SVC

    return SVC, sklearn.__version__


def features(x_u8) -> np.ndarray:
    return x_u8.reshape(len(x_u8), -1).numpy().astype(FEATURE_DTYPE) / 255.0


class SVMRun:
    """Data and estimator prepared up front, so that `fit` is the only thing timed."""

    def __init__(self, case: SVMCase, split: Split):
        self.case = case
        part = split.limited(case.train_limit, case.eval_limit, case.split_seed, train_seed=case.draw_seed)
        self.x_train, self.y_train = features(part.x_train), part.y_train.numpy()
        self.x_test, self.y_test = features(part.x_test), part.y_test.numpy()
        self.x_val, self.y_val = features(part.x_val), part.y_val.numpy()
        if case.scale:
            from sklearn.preprocessing import StandardScaler

            scaler = StandardScaler().fit(self.x_train)
            self.x_train, self.x_test = scaler.transform(self.x_train), scaler.transform(self.x_test)
            self.x_val = scaler.transform(self.x_val)
        svc, version = svc_class(case.backend)
        self.model = svc(kernel=case.kernel, C=case.C, degree=case.degree, gamma=case.gamma,
                         max_iter=case.max_iter, random_state=case.seed)
        self.energy = EnergyMeter(torch.device("cpu"))
        self.result = SVMResult(n_train=len(self.y_train), n_val=len(self.y_val), n_test=len(self.y_test),
                                backend_version=version, energy_source=self.energy.source)

    def fit(self) -> None:
        from sklearn.exceptions import ConvergenceWarning

        mark = self.energy.start()
        with warnings.catch_warnings(record=True) as caught:
            # a capped solver warns; the suite's warnings-as-errors must not turn a capped fit into a failure
            warnings.simplefilter("always", ConvergenceWarning)
            t0 = time.perf_counter()
            self.model.fit(self.x_train, self.y_train)
            self.result.fit_time_ms = 1000 * (time.perf_counter() - t0)
        self.result.stopped_at_max_iter = any(issubclass(w.category, ConvergenceWarning) for w in caught)
        for w in caught:
            if not issubclass(w.category, ConvergenceWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        joules = self.energy.stop(mark)
        if joules is not None:
            self.result.energy_j, self.result.energy_j_per_image = joules, joules / len(self.y_train)

    def finish(self) -> SVMResult:
        r = self.result
        t0 = time.perf_counter()
        predicted = self.model.predict(self.x_test)
        r.predict_time_ms = 1000 * (time.perf_counter() - t0)
        r.test_acc_pct = 100.0 * float(np.mean(predicted == self.y_test))
        r.val_acc_pct = 100.0 * float(np.mean(self.model.predict(self.x_val) == self.y_val))
        sample = min(TRAIN_ACC_SAMPLE, len(self.y_train))
        r.train_acc_n = sample
        r.train_acc_pct = 100.0 * float(np.mean(self.model.predict(self.x_train[:sample]) == self.y_train[:sample]))
        r.n_support = int(np.sum(self.model.n_support_))
        return r


def fit_svm(case: SVMCase, split: Split) -> SVMResult:
    run = SVMRun(case, split)
    run.fit()
    return run.finish()
