"""How good the estimate was: each run's predicted seconds beside its measured ones.

Records since 2026-12-02 hold `predicted_s` (the cost model times this machine's factor, as printed
before the run), `case_wall_s` (the case, start to record) and `estimate_source`. Summed per input file
and preset, since the printed estimate is of a whole selection; a case's own error says less.
"""

from __future__ import annotations

from mnistbench.report.group import Table

TOLERANCE = 0.30  # the estimate's target: within ±30% of the measured time of a selection


def estimate_table(records: list[dict]) -> Table:
    by_run: dict[tuple, list[dict]] = {}
    for rec in records:
        if rec.get("predicted_s") and rec.get("case_wall_s"):
            by_run.setdefault((rec["source"], rec.get("preset"), rec["kind"]), []).append(rec)
    body = []
    for (source, preset, kind), recs in by_run.items():
        predicted, measured = sum(r["predicted_s"] for r in recs), sum(r["case_wall_s"] for r in recs)
        error = predicted / measured - 1
        sources = " / ".join(sorted({r["estimate_source"] for r in recs}))
        body.append([source, preset, kind, len(recs), round(predicted, 1), round(measured, 1), f"{error:+.0%}",
                     "yes" if abs(error) <= TOLERANCE else "no", sources])
    headers = ["file", "preset", "kind", "cases", "predicted (s)", "measured (s)", "error",
               f"within ±{TOLERANCE:.0%}", "calibrated by"]
    return Table("estimates", "Estimated against measured seconds, per run and preset (case start to record)",
                 headers, body)
