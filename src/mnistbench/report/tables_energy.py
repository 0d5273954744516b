"""Energy per configuration, where the hardware reported it: the other half of "at what cost"."""

from __future__ import annotations

from collections.abc import Iterable

from mnistbench.report.group import Table, device_name, sort_rows, summaries
from mnistbench.results.record import JOINS, label, ok
from mnistbench.results.stats import is_number, stat

HEADERS = ["case", "device", "hardware", "energy (J)", "energy per training image (J)", "source"]


def energy_table(records: Iterable[dict]) -> Table:
    """Runs that recorded energy_j, a row per configuration and hardware, mean over seeds; none are
    estimated: a run whose hardware does not report energy is simply not here."""
    measured = [r for r in ok(records) if is_number(r.get("energy_j"))]
    body = []
    for row in sort_rows(summaries(measured), ["kind", "case_id"]):
        runs = row["runs"]
        body.append([label(row, JOINS["seeds"]), device_name(row["device"]), row["hardware"],
                     stat((r["energy_j"] for r in runs), ",.1f"),
                     stat((r.get("energy_j_per_image") for r in runs), ".4f"),
                     " / ".join(dict.fromkeys(str(r.get("energy_source")) for r in runs))])
    return Table("energy", "Energy of the timed region (training epochs, the SVC fit), as the hardware "
                 "reports it", HEADERS, body, ("device", "hardware", "source"))
