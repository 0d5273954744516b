"""Throughput: images/s of the fast path against the classic loop, same steps, same run.

For each model x batch size x device, the classic case (the write-ups' DataLoader loop)
runs first and the fast case records `speedup_vs_classic` (median-round images/s ratio)
and, on GPUs with a known peak, `mfu_pct`. Each round is a fixed number of optimizer
steps (20 on a CPU, 300 on a GPU), 3 rounds per case, warm-up and capture excluded.
"""

PRESET, KIND = "throughput", "train"
MEASUREMENT = True  # figures to record, not a check: marked slow, so `pytest -m "not slow"` leaves it out


def test_throughput(case, run_case):
    run_case(case)
