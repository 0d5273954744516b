"""The cost model: a case's seconds, start to record, on the reference CPU.

One model serves three readers that must agree on every machine: the slow marker, the
balance of shards, and (times the machine's own factor, measured by suite.estimate) the
estimate printed before a run. The reference is a 2-core x86 Xeon with AVX-512; its
constants were fitted to runs recorded there (reports/runs/). A case costs its timed work
plus the work the suite does around it that is not timed but is waited for: validation
after every epoch and the test pass (training), predicting the test, validation and
train-accuracy images (SVM), and a fixed cost of model building and warm-up.
"""

from __future__ import annotations

CASE_OVERHEAD_S = 1.0  # model build, optimizer, warm-up steps, the record: measured 0.5-1.5 s per case
SVM_OVERHEAD_S = 0.2  # features and the record: an SVM case builds no model
EVAL_SPEEDUP = 8.0  # images/s of an evaluation pass over those of training (no backward, batch 1,000)
SVM_FIT_S_PER_N2 = 1.3e-7  # SVC fit seconds per training image squared (SMO; the grid's mean over C)
SVM_KERNEL_S = 2.15e-7  # seconds per (training image x predicted image): the kernel rows of predict
# A smaller C leaves more support vectors: a longer fit and longer kernel rows to predict with. The
# factor a*C**-b on both, fitted to the case seconds at each C over their grid's mean in four 24-case
# runs at 10,000 images (reports/runs/q1b-n10000-{raw-mnist,raw-fashion}-draws12, -std-fashion-draws12,
# -std-mnist-draw0): C 0.1 1.29-1.71 (mean 1.45), C 1 0.75-0.96 (0.87), C 10 0.54-0.78 (0.70).
SVM_C_SCALE = 0.955
SVM_C_EXPONENT = 0.16
# Standardised pixels leave more support vectors again: case seconds scaled over raw, same machine and
# configuration, Fashion-MNIST draws 1-2 at 10,000 images: 2.05 (geometric mean of 23 pairs, 1.27-2.85).
# 1.6 is what brings both 24-case standardised grids within 30% (MNIST then -7%, Fashion-MNIST +20%):
# MNIST's polynomial fits grow more with degree than Fashion-MNIST's.
SVM_SCALED_FACTOR = 1.6
SVM_TRAIN_ACC_SAMPLE = 5000  # training images an SVM's train accuracy is measured on, at most


def train_s(epochs: int, n_train: int, n_val: int, n_test: int, pixels: float, images_per_s: float) -> float:
    """Training at the model's reference rate, validation every epoch, one test pass."""
    timed = epochs * n_train * pixels / images_per_s
    evaluated = (epochs * n_val + n_test) * pixels / (EVAL_SPEEDUP * images_per_s)
    return CASE_OVERHEAD_S + timed + evaluated


def svm_s(n_train: int, n_val: int, n_test: int, C: float = 1.0, scaled: bool = False) -> float:
    """The fit, quadratic in the training images; the predictions, linear in both sides; both
    scaled by C's factor (1 over the study's grid of C = 0.1, 1, 10, on the mean) and by
    standardising's."""
    predicted = n_val + n_test + min(SVM_TRAIN_ACC_SAMPLE, n_train)
    work = SVM_FIT_S_PER_N2 * n_train**2 + SVM_KERNEL_S * n_train * predicted
    return SVM_OVERHEAD_S + svm_c_factor(C) * (SVM_SCALED_FACTOR if scaled else 1.0) * work


def svm_c_factor(C: float) -> float:
    return SVM_C_SCALE * C ** -SVM_C_EXPONENT
