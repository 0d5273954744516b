"""Why does sklearnex's SVC score lower than scikit-learn's on Fashion-MNIST (rbf, C=10)?

Fits the q1b case on the full pooled split with each VARIANT: scikit-learn and sklearnex as the
suite runs them (float64 features, scikit-learn's default tol 1e-3), then with float32 features
(what the suite fed both before) and one more setting changed at a time. Prints one
Markdown row per variant (test accuracy, support vectors, fit time, agreement of its test
predictions with scikit-learn's) and keeps each variant's predictions in OUT/<variant>.npy,
so a later run can compare without refitting scikit-learn (about 6 minutes on 2 cores).

Run: python reports/svm-backends/measure.py [DATASET] [VARIANT ...] > out.md
"""

import sys
import time
from pathlib import Path

import numpy as np

from mnistbench.cases.case import SVMCase
from mnistbench.data import load_raw, make_split
from mnistbench.train.svm import SVMRun

OUT = Path(__file__).with_name("predictions")
VARIANTS = {  # name: (backend, SVC parameters set over the suite's own, float32 features?)
    "sklearn": ("sklearn", {}, False),
    "sklearnex": ("sklearnex", {}, False),
    "sklearnex-f32": ("sklearnex", {}, True),  # what the suite fed both backends before
    "sklearnex-f32-tol1e-4": ("sklearnex", {"tol": 1e-4}, True),
    "sklearnex-f32-noshrink": ("sklearnex", {"shrinking": False}, True),
    "sklearn-f32": ("sklearn", {}, True),
}


def fit(dataset: str, name: str, split) -> tuple[dict, np.ndarray]:
    backend, params, f32 = VARIANTS[name]
    run = SVMRun(SVMCase(preset="q1b", dataset=dataset, kernel="rbf", C=10.0, backend=backend), split)
    if f32:
        run.x_train, run.x_test = run.x_train.astype(np.float32), run.x_test.astype(np.float32)
    run.model.set_params(**params)
    t0 = time.perf_counter()
    run.model.fit(run.x_train, run.y_train)
    fit_s = time.perf_counter() - t0
    predicted = run.model.predict(run.x_test)
    row = dict(variant=name, acc=100 * float(np.mean(predicted == run.y_test)),
               n_support=int(np.sum(run.model.n_support_)), fit_s=fit_s, n_train=len(run.y_train),
               n_test=len(run.y_test), params=run.model.get_params())
    return row, predicted


def main(argv: list[str]) -> None:
    dataset = argv[0] if argv else "FashionMNIST"
    names = argv[1:] or list(VARIANTS)
    split = make_split(load_raw(dataset))
    OUT.mkdir(exist_ok=True)
    print(f"{dataset}, rbf, C=10, gamma='scale', full pooled split\n")
    print("| variant | test acc % | support vectors | fit s | same prediction as sklearn | features, SVC settings |")
    print("|---|---|---|---|---|---|")
    for name in names:
        row, predicted = fit(dataset, name, split)
        np.save(OUT / f"{dataset}-{name}.npy", predicted)
        base = OUT / f"{dataset}-sklearn.npy"
        agree = f"{100 * float(np.mean(np.load(base) == predicted)):.2f}%" if base.exists() else "?"
        p = row["params"]
        dtype = "float32" if VARIANTS[name][2] else "float64"
        settings = f"{dtype}, tol {p['tol']:g}, shrinking {p['shrinking']}, cache {p['cache_size']} MB"
        print(f"| {name} | {row['acc']:.2f} | {row['n_support']} | {row['fit_s']:.1f} | {agree} | {settings} |",
              flush=True)
    print(f"\n{row['n_train']} training and {row['n_test']} test images")


if __name__ == "__main__":
    main(sys.argv[1:])
