"""Q1(b): SVC on flattened pixels, poly (degree 2/3/4) and rbf, C in {0.1, 1, 10}.

The fit alone is timed; predict time, train/test accuracy and support vectors are recorded.
The full train split takes minutes per case on 2 cores: --mb-train-limit 10000 is the
write-ups' shortcut.
"""

PRESET, KIND = "q1b", "svm"


def test_q1b(case, run_case):
    run_case(case)
