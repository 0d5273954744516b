"""The estimate printed before a run, calibrated on the machine at hand, and kept to be checked.

The cost model (cases.cost) gives a case's seconds on the reference CPU. This machine's factor
(its seconds per reference second, one per kind of case) is measured before the estimate is
printed, never assumed: from earlier cases on this same CPU when the cache holds enough of them
(their measured over their reference seconds), else from a probe of a few seconds (a few
ResNet-18 steps, an SVC fit and predict on random pixels) against the same probe's time on the
reference CPU. Every case's record then holds the estimate and the measured seconds
(`predicted_s`, `case_wall_s`, `estimate_source`), so the report can say how good it was, and
each finished session adds its cases to the cache that calibrates the next one.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from mnistbench.cases.case import Case

PROBE_AFTER_S = 20.0  # a selection under 20 reference seconds is not worth a probe: the reference stands
EARLIER_MIN_CASES = 3  # earlier cases of a kind on this CPU that replace the probe
EARLIER_KEEP = 200  # the newest cases per kind the factor is taken over
MIN_CASE_S = 1.5  # shorter cases (test fixtures) say little about the machine and are not kept
# Probe seconds on the reference CPU (cases.cost), derived where they were measured: the probe's time in a
# session over the factor that session's cases gave (2026-12-02, a 2-core AMD EPYC: train 0.28 s, the median
# of three fresh processes' probes, over 0.405, the factor of the 15 training cases of the README's main job
# at 2,000 images; svm 0.68 s over 0.45, from 48 SVC cases at 10,000 images), so that a probe on the
# reference machine itself reads 1.0.
PROBE_REFERENCE_S = {"train": 0.69, "svm": 1.5}
PROBE_TRAIN_STEPS, PROBE_WARMUP_STEPS, PROBE_BATCH, PROBE_BLOCKS = 8, 3, 16, 3
PROBE_SVM_FIT, PROBE_SVM_PREDICT = 800, 3000
KINDS = ("train", "svm")
CACHE_FILE = "estimates.jsonl"


@dataclass(frozen=True)
class Calibration:
    """This machine's seconds per reference second, per kind of case, and where each came from."""

    factors: dict[str, float] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def predicted_s(self, case: Case) -> float:
        return case.estimated_cpu_s() * self.factors.get(case.kind, 1.0)

    def source(self, kind: str) -> str:
        return self.sources.get(kind, "the cost model's reference CPU, uncalibrated")


def signature() -> str:
    """What makes two machines time alike: the CPU's name, the cores we may use, torch's threads."""
    import torch

    from mnistbench.train.plan import cpu_model

    return f"{cpu_model()} | {len(os.sched_getaffinity(0))} cores | {torch.get_num_threads()} threads"


def calibrate(cases: list[Case], cache_dir: Path) -> Calibration:
    """A factor for each kind the CPU cases hold: earlier runs here first, else a probe when the
    selection as a whole is long enough to be worth one (four smoke SVMs alone are not, but an
    uncalibrated kind beside a calibrated one spoils the sum)."""
    cpu = [c for c in cases if c.device_marker == "cpu" and c.kind in KINDS]
    earlier = _earlier(cache_dir / CACHE_FILE, signature())
    factors, sources = {}, {}
    worth_a_probe = sum(c.estimated_cpu_s() for c in cpu) >= PROBE_AFTER_S
    for kind in KINDS:
        if not any(c.kind == kind for c in cpu):
            continue
        if kind in earlier:
            factors[kind], sources[kind] = earlier[kind]
        elif worth_a_probe:
            seconds = PROBES[kind]()
            factors[kind] = seconds / PROBE_REFERENCE_S[kind]
            sources[kind] = f"a {seconds:.1f} s probe on this CPU ({factors[kind]:.2f}x the reference)"
    return Calibration(factors, sources)


def _earlier(path: Path, sig: str) -> dict[str, tuple[float, str]]:
    """Per kind, (factor, source) from the newest cases this CPU recorded, where there are enough."""
    if not path.is_file():
        return {}
    seen: dict[str, list[tuple[float, float]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a torn line of a killed session: the others still calibrate
        if entry.get("signature") == sig and entry.get("kind") in KINDS:
            seen.setdefault(entry["kind"], []).append((entry["reference_s"], entry["measured_s"]))
    found = {}
    for kind, pairs in seen.items():
        pairs = pairs[-EARLIER_KEEP:]
        if len(pairs) >= EARLIER_MIN_CASES:
            factor = sum(m for _, m in pairs) / sum(r for r, _ in pairs)
            found[kind] = (factor, f"{len(pairs)} earlier {kind} case(s) on this CPU ({factor:.2f}x the reference)")
    return found


def remember(cache_dir: Path, records: list[dict]) -> None:
    """Add the session's finished CPU cases to the cache the next estimate is calibrated from. Only a
    session long enough to have been worth a probe counts: a test's tiny cases time mostly overhead."""
    kept = [r for r in records if r.get("status") == "ok" and r.get("kind") in KINDS and r.get("reference_s")
            and r.get("case_wall_s", 0) >= MIN_CASE_S]
    if sum(r["reference_s"] for r in kept) < PROBE_AFTER_S:
        return
    sig = signature()
    lines = [json.dumps({"signature": sig, "kind": r["kind"], "reference_s": r["reference_s"],
                         "measured_s": r["case_wall_s"]}) for r in kept]
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / CACHE_FILE, "a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def case_fields(case: Case, calibration: Calibration | None) -> dict:
    """What a record holds of its estimate: the reference seconds, this machine's, and their source."""
    if case.device_marker != "cpu" or case.kind not in KINDS:
        return {}
    cal = calibration or Calibration()
    return {"reference_s": round(case.estimated_cpu_s(), 3), "predicted_s": round(cal.predicted_s(case), 3),
            "estimate_source": cal.source(case.kind)}


# ---------------------------------------------------------------- probes


def _probe_train() -> float:
    """Seconds of PROBE_TRAIN_STEPS ResNet-18 steps at batch 16, 28 px, after a warm-up: the
    reference case's own work, on random pixels. The median of PROBE_BLOCKS blocks: one block read
    0.4 to 0.6 s on one machine from one process to the next."""
    import torch

    from mnistbench.train.models import build_model

    torch.manual_seed(0)
    net = build_model("resnet18")
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    x, y = torch.randn(PROBE_BATCH, 1, 28, 28), torch.randint(0, 10, (PROBE_BATCH,))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()

    for _ in range(PROBE_WARMUP_STEPS):
        step()
    blocks = []
    for _ in range(PROBE_BLOCKS):
        t0 = time.perf_counter()
        for _ in range(PROBE_TRAIN_STEPS):
            step()
        blocks.append(time.perf_counter() - t0)
    return statistics.median(blocks)


def _probe_svm() -> float:
    """Seconds of an SVC fit on PROBE_SVM_FIT random 784-pixel images and a predict of PROBE_SVM_PREDICT:
    libsvm's kernel rows, single-threaded, as in every SVM case."""
    import numpy as np
    from sklearn.svm import SVC

    rng = np.random.default_rng(0)
    x = rng.random((PROBE_SVM_FIT + PROBE_SVM_PREDICT, 784))
    y = rng.integers(0, 10, PROBE_SVM_FIT + PROBE_SVM_PREDICT)
    t0 = time.perf_counter()
    model = SVC(kernel="rbf").fit(x[:PROBE_SVM_FIT], y[:PROBE_SVM_FIT])
    model.predict(x[PROBE_SVM_FIT:])
    return time.perf_counter() - t0


PROBES = {"train": _probe_train, "svm": _probe_svm}


def estimate_lines(cases: list[Case], cuda: bool, calibration: Calibration | None) -> list[str]:
    """One line per device: cases selected and, for the CPU, the calibrated estimate and its source."""
    from mnistbench.cases.grids import about

    lines = []
    cpu = [c for c in cases if c.device_marker == "cpu"]
    gpu = [c for c in cases if c.device_marker == "gpu"]
    if cpu:
        cal = calibration or Calibration()
        seconds = sum(cal.predicted_s(c) for c in cpu)
        kinds = sorted({c.kind for c in cpu} & set(KINDS), key=KINDS.index)
        how = "; ".join(f"{kind}: {cal.source(kind)}" for kind in kinds) or "the cost model's reference CPU"
        line = f"mnistbench: {len(cpu)} cpu case(s), {about(seconds)} on this CPU (calibrated by {how})"
        if seconds > 900:
            line += "; for minutes, not hours: -m smoke, or --mb-train-limit N"
        lines.append(line)
    if gpu:
        where = "on this GPU" if cuda else "skipped here: no CUDA device"
        lines.append(f"mnistbench: {len(gpu)} gpu case(s), {where} (no GPU cost model: -m 'smoke and gpu' "
                     "takes a few minutes on one modern GPU)")
    return lines
