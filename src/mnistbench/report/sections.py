"""The report's sections, in order: Markdown text, tables and plots; write_report puts them on disk."""

from __future__ import annotations

from pathlib import Path

from mnistbench.report.group import (
    THROUGHPUT,
    TWIN,
    device_name,
    group,
    not_throughput,
    sort_rows,
    speedup_pairs,
    summaries,
    varying,
)
from mnistbench.report.markdown import render_markdown
from mnistbench.report.plots import speedup_plot, svm_plot, val_curve_plot
from mnistbench.report.provenance import (
    data_table,
    failed_table,
    gpu_state_notes,
    inputs_table,
    machine_change_notes,
    machines_table,
    schema_notes,
)
from mnistbench.report.summary import summary_blocks
from mnistbench.report.tables_energy import energy_table
from mnistbench.report.tables_estimate import TOLERANCE, estimate_table
from mnistbench.report.tables_svm import best_svm_table, svm_table
from mnistbench.report.tables_train import (
    best_train_table,
    flops_table,
    model_table,
    speedup_table,
    time_to_target_table,
)
from mnistbench.report.tables_twins import (
    backend_pairs,
    backend_table,
    path_accuracy_table,
    path_pairs,
    throughput_pairs,
    throughput_table,
)
from mnistbench.report.writeups import writeups_blocks
from mnistbench.results.measures import AGREEMENT_RULE
from mnistbench.results.record import JOINS, label, ok

Q1A_PRESETS = ("q1a", "smoke")
AGREEMENT_NOTE = (f"Joined the same way (throughput runs left out). The accuracies agree when {AGREEMENT_RULE}, "
                  "the rule every twin table uses.")
CELLS = ("Every cell is the mean over seeds ± the sample standard deviation, with n, the number of runs; "
         "a single run shows its value and (n=1). Runs on different hardware are never averaged together.")


def write_report(records: list[dict], out: Path) -> Path:
    """report.md with a CSV per table and a PNG per plot beside it; returns the Markdown's path."""
    out.mkdir(parents=True, exist_ok=True)
    text = render_markdown(report_blocks(records), out)
    path = out / "report.md"
    path.write_text(text, encoding="utf-8")
    return path


def report_blocks(records: list[dict]) -> list:
    """What the report says, in order: Markdown text, tables and plots; nothing touches the disk here."""
    blocks: list = ["# mnistbench report"]
    blocks += summary_blocks(records)
    blocks += q1a_blocks(records) + q1b_blocks(records) + q2_blocks(records) + path_blocks(records)
    blocks += target_blocks(records) + energy_blocks(records) + flops_blocks(records)
    blocks += writeups_blocks(records) + estimate_blocks(records)
    blocks += failed_blocks(records) + provenance_blocks(records)
    untabulated = sorted({r.get("preset") for r in records if r["kind"] == "train"}
                         - {*Q1A_PRESETS, "q2", THROUGHPUT}, key=str)
    if untabulated:
        blocks.append(f"Training records of preset(s) {', '.join(map(str, untabulated))} are counted above "
                      "but not tabulated by this report.")
    return blocks


def provenance_blocks(records: list[dict]) -> list:
    notes = [CELLS, *schema_notes(records), *gpu_state_notes(records), *machine_change_notes(records)]
    return ["## Where these numbers come from", inputs_table(records), machines_table(records),
            data_table(records), "\n\n".join(f"- {n}" for n in notes)]


def estimate_blocks(records: list[dict]) -> list:
    """Only where some run recorded its estimate (CPU runs since 2026-12-02)."""
    table = estimate_table(records)
    if not table.rows:
        return []
    return ["## How good the estimate was", "The estimate printed before each run (the cost model times this "
            "machine's measured factor) against the seconds the cases took, start to record; the target is "
            f"±{TOLERANCE:.0%}.", table]


def failed_blocks(records: list[dict]) -> list:
    failed = failed_table(records)
    all_ok = f"All {len(records)} records have status ok."
    return ["## Runs that did not finish ok", failed if failed.rows else all_ok]


def q1a_blocks(records: list[dict]) -> list:
    blocks: list = ["## Q1(a): ResNets over the hyperparameter grid"]
    chosen = [r for r in ok(records, "train") if r.get("preset") in Q1A_PRESETS]
    if not chosen:
        return blocks + ["No Q1(a) or smoke training runs in the inputs."]
    rows = summaries(chosen)
    for preset in Q1A_PRESETS:
        blocks += _preset_tables([r for r in rows if r.get("preset") == preset], preset)
    return blocks + [val_curve_plot(rows)]


SIZE_KEY = ("dataset", "train_limit")  # one Q1(a) table per dataset and training size


def _preset_tables(rows: list[dict], preset: str) -> list:
    """Per dataset and training size, one row per configuration (runs of different sizes never share a
    column); then the best per dataset, and per dataset and model."""
    tables = []
    for mine in group(sort_rows(rows, SIZE_KEY), key=lambda r: (r["dataset"], r.get("train_limit"))):
        dataset, size = mine[0]["dataset"], mine[0].get("train_limit")
        tables.append(model_table(mine, f"{preset}-{dataset.lower()}{_size_stem(size)}",
                                  f"Preset {preset}: {dataset}, {train_size(size)}",
                                  ["batch_size", "optimizer", "lr"], ["preset", *SIZE_KEY]))
    if rows:
        tables += [chosen(best_train_table(rows, ["dataset"], f"{preset}-best",
                                           f"Preset {preset}: best configuration per dataset")),
                   chosen(best_train_table(rows, ["dataset", "model"], f"{preset}-best-per-model",
                                           f"Preset {preset}: best configuration per dataset and model"))]
    return tables


def train_size(limit: int | None) -> str:
    return "the whole training split" if limit is None else f"{limit:,} training images"


def _size_stem(limit: int | None) -> str:
    """The CSV name's size part: none for the whole split, so a full-size table keeps its old name."""
    return "" if limit is None else f"-n{limit}"


CHOSEN = "Chosen by validation accuracy, reported by test accuracy."


def chosen(table):
    """A best-of table under the note saying how it chose, or one line where no run recorded the
    validation accuracy a choice is made by."""
    if table.rows:
        return table._replace(note=CHOSEN)
    return (f"{table.title}: none chosen, since no run recorded a validation accuracy "
            "(SVM runs before 2026-12-01 did not); choosing by the test accuracy then reported would be "
            "biased. Rerun them to choose.")


def q1b_blocks(records: list[dict]) -> list:
    blocks: list = ["## Q1(b): SVMs"]
    rows = summaries(ok(records, "svm"))
    if not rows:
        return blocks + ["No SVM runs in the inputs."]
    for preset in sorted({r.get("preset") for r in rows}, key=str):
        mine = [r for r in rows if r.get("preset") == preset]
        blocks += [svm_table(mine, f"svm-{preset}", f"Preset {preset}: SVC per dataset, kernel and "
                             "hyperparameters (fit = training time)"),
                   chosen(best_svm_table(mine, f"svm-{preset}-best", f"Preset {preset}: best per dataset and kernel"))]
    pairs, _ = backend_pairs(records)
    twin = TWIN["backend"]
    if pairs:
        blocks.append(backend_table(pairs))
    elif varying(rows, [twin.field]):
        blocks.append(f"No SVM configuration ran with both {twin.base} and {twin.other}, so there is no "
                      "backend comparison to show.")
    return blocks + [svm_plot(rows)]


def q2_blocks(records: list[dict]) -> list:
    blocks: list = ["## Q2: CPU vs GPU"]
    records = not_throughput(records)
    rows = summaries(ok(records, "train"))
    for preset in sorted({r.get("preset") for r in rows}, key=str):
        mine = [r for r in rows if r.get("preset") == preset]
        if preset == "q2" or len({r["device"] for r in mine}) > 1:
            title = f"Preset {preset}: per device, test accuracy and training time"
            lead = ["device", "batch_size", "optimizer", "lr"]
            blocks.append(model_table(mine, f"devices-{preset}", title, lead, ["preset"]))
    pairs, alone = speedup_pairs(records)
    blocks.append(speedup_table(pairs) if pairs else
                  "No configuration ran on both CPU and GPU, so there is no speedup to show.")
    if alone and pairs:
        names = sorted(f"{label(r, JOINS['devices'])} ({device_name(r['device'])})" for r in alone)
        blocks.append(f"{len(alone)} configuration(s) ran on one device only: {', '.join(names)}.")
    return blocks + [speedup_plot(pairs)]


def path_blocks(records: list[dict]) -> list:
    """Throughput per path (the throughput preset) and test accuracy per path (every other preset)."""
    pairs = throughput_pairs(records)
    accuracy, _ = path_pairs(records)
    blocks: list = ["## Fast path and classic path"]
    blocks += [throughput_table(pairs), _throughput_note()] if pairs else [
        "No throughput runs in the inputs (`pytest benchmarks -m throughput`)."]
    blocks += [path_accuracy_table(accuracy), AGREEMENT_NOTE] if accuracy else [
        "No configuration outside the throughput preset ran on both paths, so there is no accuracy "
        "comparison to show."]
    return blocks


def _throughput_note() -> str:
    twin = TWIN["path"]
    left_out = ", ".join(twin.leave_out)
    return ("Images/s is the median round's, averaged over seeds. The speedup is the ratio of the mean "
            "seconds per epoch (training images over median-round images/s: the basis of the recorded "
            f"ratio), joined by configuration with {left_out} and seed left out, on the same "
            f"hardware; recorded speedup is the mean of the per-seed `{twin.ratio}` written during the run, "
            "as a check: with one seed per path the two are equal. "
            "MFU is 6 × fvcore MACs × images/s over the GPU's bf16 dense peak.")


def target_blocks(records: list[dict]) -> list:
    table = time_to_target_table(records)
    if not table.rows:
        return []
    return ["## Time to target", "A run's time to target is its training time up to the first epoch whose "
            "validation accuracy met the target (`--mb-stop-at-target` ends the run there).", table]


def energy_blocks(records: list[dict]) -> list:
    """Only where some run recorded its energy (NVML on a GPU, RAPL on a CPU); never an estimate."""
    table = energy_table(records)
    if not table.rows:
        return []
    return ["## Energy", "Joules over the timed region only, from the counter each row names: NVML's counts the "
            "GPU board, RAPL's the whole CPU package (other processes included).", table]


def flops_blocks(records: list[dict]) -> list:
    table = flops_table(not_throughput(records))
    return ["## FLOPs and parameters", table if table.rows else "No FLOP counts in the inputs."]
