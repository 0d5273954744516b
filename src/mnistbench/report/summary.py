"""The report's first section: the study's answer in three tables.

Per dataset, model and training size, the configuration with the best mean validation accuracy
(group.best: never the test accuracy it then reports), its test accuracy over seeds, its seconds
per epoch on each device that ran it and the GPU speedup where both did; the best SVM per dataset,
kernel and training size, chosen the same way; fvcore's count per model at the sizes run. Runs of
different training sizes are different rows, never one column.
"""

from __future__ import annotations

from mnistbench.report.group import (
    THROUGHPUT,
    Table,
    best,
    device_name,
    model_title,
    not_throughput,
    summaries,
    unit_time_stat,
)
from mnistbench.report.plots import acc_time_plot
from mnistbench.report.tables_svm import seconds
from mnistbench.report.tables_train import flops_table
from mnistbench.results.record import JOINS, config_key, ok
from mnistbench.results.stats import ratio

TRAIN_KEY = ["dataset", "model", "n_train"]
SVM_KEY = ["dataset", "kernel", "n_train"]
LEAD = ("Chosen by validation accuracy, reported by test accuracy (mean ± sample std over seeds, n runs); "
        "times are seconds of training per epoch (SVM: per fit), on the hardware each row names.")


def summary_blocks(records: list[dict]) -> list:
    train = [r for r in ok(records, "train") if r.get("preset") != THROUGHPUT]
    blocks: list = ["## Summary", LEAD]
    tables = [training_summary(train), svm_summary(ok(records, "svm")), flops_table(not_throughput(records))]
    missing = {"training-summary": "No ResNet training runs in the inputs.",
               "svm-summary": "No SVM runs in the inputs.", "flops": "No FLOP counts in the inputs."}
    for table in tables:
        blocks.append(table if table.rows else missing[table.name])
    return blocks + [acc_time_plot(summaries(train))]


def training_summary(records: list[dict]) -> Table:
    rows = summaries(records)
    body = []
    for chosen in best(rows, TRAIN_KEY):
        per_device = _per_device(rows, chosen)
        cpu, gpu = per_device.get("cpu"), per_device.get("cuda")
        body.append([chosen["dataset"], model_title(chosen["model"]), chosen["n_train"], chosen["epochs"],
                     _configuration(chosen), _among(rows, chosen, TRAIN_KEY, "devices"), chosen["val_acc_pct"],
                     chosen["test_acc_pct"], _time(cpu), _time(gpu), ratio(_time(cpu), _time(gpu)),
                     " / ".join(f"{device_name(d)}: {r['hardware']}" for d, r in per_device.items())])
    headers = ["dataset", "model", "train images", "epochs", "chosen configuration", "chosen among",
               "val acc (%)", "test acc (%)", "CPU s/epoch", "GPU s/epoch", "GPU speedup", "hardware"]
    return Table("training-summary", "Best ResNet per dataset, model and training size", headers, body)


def _per_device(rows: list[dict], chosen: dict) -> dict[str, dict]:
    """The chosen configuration's row on each device (the first hardware of each, as the tables list them)."""
    key = config_key(chosen, JOINS["devices"])
    found: dict[str, dict] = {}
    for row in rows:
        if config_key(row, JOINS["devices"]) == key:
            found.setdefault(row["device"], row)
    return found


def _configuration(row: dict) -> str:
    return (f"batch {row['batch_size']}, {row['optimizer']}, lr {row['lr']:g}, {row['path']} path"
            + ("" if row.get("stem", "imagenet") == "imagenet" else f", {row['stem']} stem")
            + ("" if row.get("image_size", 28) == 28 else f", {row['image_size']} px"))


def _among(rows: list[dict], chosen: dict, key: list[str], join: str) -> int:
    """How many configurations (record.JOINS[join]) of the same key the choice was made among."""
    return len({config_key(r, JOINS[join]) for r in rows
                if all(r.get(c) == chosen.get(c) for c in key) and r.get("val_acc_pct")})


def _time(row: dict | None):
    return unit_time_stat(row) if row else None


def svm_summary(records: list[dict]) -> Table:
    rows = summaries(records)
    body = []
    for chosen in best(rows, SVM_KEY):
        degree = f", degree {chosen['degree']}" if chosen["kernel"] == "poly" else ""
        scaling = ", standardised" if chosen.get("scale") else ""
        body.append([chosen["dataset"], chosen["kernel"], chosen["n_train"],
                     f"C {chosen['C']:g}{degree}, gamma {chosen['gamma']}{scaling}",
                     _among(rows, chosen, SVM_KEY, "seeds"),
                     chosen["val_acc_pct"], chosen["test_acc_pct"], seconds(chosen["fit_time_ms"]),
                     chosen["hardware"]])
    headers = ["dataset", "kernel", "train images", "chosen configuration", "chosen among", "val acc (%)",
               "test acc (%)", "fit (s)", "hardware"]
    return Table("svm-summary", "Best SVM per dataset, kernel and training size", headers, body)
