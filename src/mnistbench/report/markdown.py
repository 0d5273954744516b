"""Render: tables and plots to Markdown (tabulate), CSV and PNG.

In Markdown, a configuration column with one value in every row (Table.liftable) is said
once above the table ("All rows: ..."), unless that value is the suite's default
(group.QUIET_DEFAULTS); the CSV keeps every column, and numbers stay
numbers there: a Stat becomes mean, std and n columns, a Ratio its value, std and both n.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from tabulate import tabulate

from mnistbench.report.group import QUIET_DEFAULTS, Table
from mnistbench.report.plots import Plot
from mnistbench.results.stats import Ratio, Signed, Stat


def render_markdown(blocks: list, out: Path | None = None) -> str:
    """Markdown of the blocks; with `out`, each table's CSV and plot's PNG are written there and linked."""
    parts = []
    for block in blocks:
        if isinstance(block, Table):
            parts.append(_table_markdown(block, out))
        elif isinstance(block, Plot):
            parts.append(_plot_markdown(block, out))
        else:
            parts.append(block)
    return "\n\n".join(parts) + "\n"


def _table_markdown(table: Table, out: Path | None) -> str:
    shared, narrow = lift_constants(table)
    text = f"**{table.title}**\n\n"
    if table.note:
        text += f"{table.note}\n\n"
    if shared:
        said = ", ".join(f"{header} {format_cell(value)}" for header, value in shared)
        text += f"All rows: {said}\n\n"
    text += markdown_table(narrow)
    if out is not None:
        write_csv(table, out / f"{table.name}.csv")
        text += f"\n\n[{table.name}.csv]({table.name}.csv)"
    return text


def lift_constants(table: Table) -> tuple[list[tuple[str, object]], Table]:
    """(header, value) of each liftable column that has one value in every row, and the table without them.

    A column empty in every row, or at the suite's default in every row, leaves the table and says
    nothing: it has nothing to say.
    """
    if not table.rows:
        return [], table
    first = table.rows[0]
    constant = [i for i, header in enumerate(table.headers)
                if header in table.liftable and all(row[i] == first[i] for row in table.rows)]
    shared = [(table.headers[i], first[i]) for i in constant
              if first[i] is not None and not _quiet(table.headers[i], first[i])]
    keep = [i for i in range(len(table.headers)) if i not in constant]
    narrow = table._replace(headers=[table.headers[i] for i in keep],
                            rows=[[r[i] for i in keep] for r in table.rows])
    return shared, narrow


def _quiet(header: str, value) -> bool:
    return header in QUIET_DEFAULTS and value == QUIET_DEFAULTS[header]


def _plot_markdown(plot: Plot, out: Path | None) -> str:
    if plot.figure is None:
        return f"_Plot skipped ({plot.caption}): {plot.missing}._"
    if out is None:
        return f"_Plot not written ({plot.caption}): no output folder._"
    plot.figure.savefig(out / f"{plot.name}.png")
    return f"![{plot.caption}]({plot.name}.png)\n\n_{plot.caption}._"


def markdown_table(table: Table) -> str:
    rows = [[format_cell(v) for v in row] for row in table.rows]
    return tabulate(rows, headers=table.headers, tablefmt="pipe", disable_numparse=True)


def format_cell(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, Stat):
        if value.std is None:
            return f"{value.mean:{value.fmt}} (n={value.n})"
        fmt = spread_format(value)
        return f"{value.mean:{fmt}} ± {value.std:{fmt}} (n={value.n})"
    if isinstance(value, Ratio):
        spread = "" if value.std is None else f" ± {value.std:.2f}"
        return f"{value.value:.2f}×{spread} (n={value.n_a}/{value.n_b})"
    if isinstance(value, Signed):
        return f"{value.value:+.2f}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def spread_format(value: Stat) -> str:
    """The Stat's format with as many decimals as its spread has two significant digits (at most the
    format's own): 6.6 ± 7.1, 68.90 ± 0.34, never 6.60 ± 7.11, whose last digit is noise."""
    kept = int(value.fmt[-2]) if value.fmt[-2:-1].isdigit() and value.fmt.endswith("f") else None
    if kept is None or not value.std:
        return value.fmt
    decimals = max(0, min(kept, 1 - math.floor(math.log10(value.std))))
    return value.fmt[:-2] + f"{decimals}f"


def write_csv(table: Table, path: Path) -> None:
    """Every column; a Stat column becomes mean, std and n columns, a Ratio one value, std, n A and n B."""
    kinds = [_column_kind(table.rows, i) for i in range(len(table.headers))]
    headers = []
    for header, kind in zip(table.headers, kinds, strict=True):
        headers += {"stat": [f"{header} mean", f"{header} std", f"{header} n"],
                    "ratio": [header, f"{header} std", f"{header} n A", f"{header} n B"]}.get(kind, [header])
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(headers)
        for row in table.rows:
            cells = zip(row, kinds, strict=True)
            writer.writerow([x for value, kind in cells for x in _csv_values(value, kind)])


def _column_kind(rows: list[list], index: int) -> str:
    values = [row[index] for row in rows if row[index] is not None]
    if any(isinstance(v, Stat) for v in values):
        return "stat"
    if any(isinstance(v, Ratio) for v in values):
        return "ratio"
    return "plain"


def _csv_values(value, kind: str) -> list:
    if value is None:
        return [""] * {"stat": 3, "ratio": 4}.get(kind, 1)
    if isinstance(value, Stat):
        return ["" if v is None else v for v in value[:3]]
    if isinstance(value, Ratio):
        return ["" if v is None else v for v in value]
    if isinstance(value, Signed):
        return [value.value]
    return [f"{value:.10g}" if isinstance(value, float) else value]
