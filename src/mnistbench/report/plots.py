"""The report's PNG plots: validation curves, accuracy against time, CPU/GPU times, SVM accuracy against C.

Each function takes summarised rows and returns a Plot; a plot whose data is absent says
why instead. matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

from typing import NamedTuple

from mnistbench.cases.registry import MODELS
from mnistbench.report.group import best, column_label, device_name, model_title, present, row_order, sort_rows, varying
from mnistbench.report.tables_train import SPEEDUP_LEAD, hardware_varies, speedup_columns
from mnistbench.results.stats import stat

MARKERS = "os^Dv<>ph"  # one per registered model, in registration order
PATH_COLOURS = {"fast": "tab:blue", "classic": "tab:red"}


class Plot(NamedTuple):
    name: str  # its PNG's file stem
    caption: str
    figure: object | None  # matplotlib Figure, or None when its data is absent
    missing: str = ""  # why it was skipped


def _figure(ncols: int, width: float = 6.0, height: float = 4.5):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), dpi=110, layout="constrained")
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def _marker(model: str) -> str:
    names = list(MODELS)
    return MARKERS[names.index(model) % len(MARKERS)] if model in names else "o"


def _log_scale(axis, set_scale) -> None:
    """Log scale with ticks written 0.5, 1, 10 rather than 10^0: readable without a second look."""
    from matplotlib.ticker import FuncFormatter

    set_scale("log")
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


# ---------------------------------------------------------------- validation curves


def val_curve_plot(rows: list[dict]) -> Plot:
    caption = ("Validation accuracy per epoch, best configuration of each model per dataset "
               "(mean ± std over seeds)")
    rows = [r for r in rows if any(len(run.get("epoch_val_acc_pct") or ()) > 1 for run in r["runs"])]
    if not rows:
        return Plot("val-acc-per-epoch", caption, None,
                    "no training run recorded two epochs or more: a curve needs two points")
    from matplotlib.ticker import MaxNLocator

    datasets = present(rows, "dataset")
    fig, axes = _figure(len(datasets))
    for ax, dataset in zip(axes, datasets, strict=True):
        winners = best([r for r in rows if r["dataset"] == dataset], ["model"])
        epochs = max(_val_curve(ax, row) for row in winners)
        ax.set(title=dataset, xlabel="epoch", ylabel="validation accuracy (%)", xlim=(0.5, epochs + 0.5))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return Plot("val-acc-per-epoch", caption, fig)


def _val_curve(ax, row: dict) -> int:
    """One configuration's mean curve with its spread over seeds; returns how many epochs it spans."""
    curves = [r["epoch_val_acc_pct"] for r in row["runs"] if r.get("epoch_val_acc_pct")]
    per_epoch = [stat(c[i] for c in curves if i < len(c)) for i in range(max(map(len, curves)))]
    label = (f"{model_title(row['model'])} {row['optimizer']} lr {row['lr']:g} bs {row['batch_size']}, "
             f"{device_name(row['device'])} (n={row['n']})")
    ax.errorbar(range(1, len(per_epoch) + 1), [s.mean for s in per_epoch],
                yerr=[s.std or 0 for s in per_epoch], marker=_marker(row["model"]), capsize=3, label=label)
    return len(per_epoch)


# ---------------------------------------------------------------- accuracy against time


def acc_time_plot(rows: list[dict]) -> Plot:
    """The headline figure: every training configuration's test accuracy against its training time;
    marker: model, colour: path, filled: CPU, hollow: GPU, size: training images."""
    caption = ("Test accuracy against training time, every training configuration (mean ± std over seeds); "
               "marker: model, colour: path, filled CPU / hollow GPU, marker size: training images")
    rows = [r for r in rows if r["test_acc_pct"] and r["train_time_s"]]
    if not rows:
        return Plot("acc-vs-time", caption, None, "no training runs")
    datasets = present(rows, "dataset")
    sizes = present(rows, "n_train")
    fig, axes = _figure(len(datasets))
    for ax, dataset in zip(axes, datasets, strict=True):
        _acc_time_points(ax, [r for r in rows if r["dataset"] == dataset], sizes)
        ax.set(title=dataset, xlabel="training time (s)", ylabel="test accuracy (%)")
        ax.grid(alpha=0.3)
    axes[-1].legend(handles=_acc_time_legend(rows, sizes), fontsize=8, loc="best")
    return Plot("acc-vs-time", caption, fig)


def _size(n_train, sizes: list) -> float:
    return 5 + 4 * sizes.index(n_train)


def _acc_time_points(ax, rows: list[dict], sizes: list) -> None:
    for r in rows:
        acc, time = r["test_acc_pct"], r["train_time_s"]
        colour = PATH_COLOURS.get(r.get("path"), "grey")
        ax.errorbar(time.mean, acc.mean, xerr=time.std or 0, yerr=acc.std or 0, marker=_marker(r["model"]),
                    color=colour, markerfacecolor=colour if r["device"] == "cpu" else "white",
                    markersize=_size(r["n_train"], sizes), capsize=3, linestyle="none")
    times = [r["train_time_s"].mean for r in rows]
    if times and max(times) > 10 * min(times):
        _log_scale(ax.xaxis, ax.set_xscale)
        ax.set_xlabel("training time (s, log scale)")


def _acc_time_legend(rows: list[dict], sizes: list) -> list:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], color="grey", marker=_marker(m), linestyle="none", label=model_title(m))
               for m in present(rows, "model")]
    handles += [Patch(color=PATH_COLOURS.get(p, "grey"), label=f"{p} path") for p in present(rows, "path")]
    handles += [Line2D([], [], color="grey", marker="o", markersize=_size(n, sizes), linestyle="none",
                       label=f"{n:,} training images") for n in sizes]
    if len({r["device"] for r in rows}) > 1:
        handles += [Line2D([], [], color="grey", marker="o", linestyle="none", label="filled: CPU"),
                    Line2D([], [], color="grey", marker="o", markerfacecolor="white", linestyle="none",
                           label="hollow: GPU")]
    return handles


# ---------------------------------------------------------------- CPU against GPU


def speedup_plot(pairs: list[tuple[dict, dict]]) -> Plot:
    caption = "Training time on CPU and GPU per configuration, speedup written beside each pair"
    pairs = [(c, g) for c, g in pairs if c["train_time_s"] and g["train_time_s"]]
    if not pairs:
        return Plot("cpu-vs-gpu", caption, None, "no configuration ran on both CPU and GPU")
    columns = speedup_columns(pairs)
    detail = [c for c in columns if c not in SPEEDUP_LEAD] + (["hardware"] if hardware_varies(pairs) else [])
    datasets = present([c for c, _ in pairs], "dataset")
    most = max(sum(c["dataset"] == d for c, _ in pairs) for d in datasets)
    fig, axes = _figure(len(datasets), width=6.5, height=0.55 * most + 1.6)
    for ax, dataset in zip(axes, datasets, strict=True):
        mine = sorted([p for p in pairs if p[0]["dataset"] == dataset],
                      key=row_order(columns, lambda pair: pair[0]))
        _speedup_bars(ax, mine, detail)
        ax.set_title(dataset)
    axes[0].legend(loc="lower right")
    return Plot("cpu-vs-gpu", caption, fig)


def _speedup_bars(ax, pairs: list[tuple[dict, dict]], detail: list[str]) -> None:
    ys = range(len(pairs))
    cpu = [c["train_time_s"].mean for c, _ in pairs]
    gpu = [g["train_time_s"].mean for _, g in pairs]
    ax.barh([y - 0.2 for y in ys], cpu, height=0.4, label="CPU", color="tab:gray")
    ax.barh([y + 0.2 for y in ys], gpu, height=0.4, label="GPU", color="tab:green")
    for y, c, g in zip(ys, cpu, gpu, strict=True):
        ax.text(max(c, g) * 1.15, y, f"{c / g:.1f}×", va="center", fontsize=10, fontweight="bold")
    _log_scale(ax.xaxis, ax.set_xscale)
    ax.set_xlim(right=max(cpu + gpu) * 6)
    ax.set_yticks(list(ys), [_pair_label(c, g, detail) for c, g in pairs], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("training time (s, log scale)")
    ax.grid(axis="x", alpha=0.3)


def _pair_label(cpu: dict, gpu: dict, detail: list[str]) -> str:
    text = f"{model_title(cpu['model'])} {cpu['optimizer']} lr {cpu['lr']:g} bs {cpu['batch_size']}"
    extra = [f"{cpu['hardware']} vs {gpu['hardware']}" if c == "hardware"
             else f"{column_label(c)} {cpu.get(c)}" for c in detail]
    return text + ("\n" + ", ".join(extra) if extra else "")


# ---------------------------------------------------------------- SVMs


def svm_plot(rows: list[dict]) -> Plot:
    caption = "SVM test accuracy against C, one line per kernel (mean ± std over seeds)"
    rows = [r for r in rows if r["test_acc_pct"]]
    if not rows:
        return Plot("svm-acc-vs-c", caption, None, "no SVM runs")
    detail = varying(rows, ["gamma", "n_train", "scale", "backend", "preset", "hardware"])
    lines = {dataset: {name: line for name, line in _svm_lines([r for r in rows if r["dataset"] == dataset],
                                                                 detail).items() if len(line) > 1}
             for dataset in present(rows, "dataset")}
    datasets = [d for d, mine in lines.items() if mine]
    if not datasets:
        return Plot("svm-acc-vs-c", caption, None, "no SVM configuration ran at two values of C or more")
    fig, axes = _figure(len(datasets))
    for ax, dataset in zip(axes, datasets, strict=True):
        for name, line in lines[dataset].items():
            ax.errorbar([r["C"] for r in line], [r["test_acc_pct"].mean for r in line],
                        yerr=[r["test_acc_pct"].std or 0 for r in line], marker="o", capsize=3, label=name)
        _log_scale(ax.xaxis, ax.set_xscale)
        ax.set(title=dataset, xlabel="C (SVC regularisation, log scale)", ylabel="test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return Plot("svm-acc-vs-c", caption, fig)


def _svm_lines(rows: list[dict], detail: list[str]) -> dict[str, list[dict]]:
    """Rows by line name: the kernel (and degree), plus whatever else varies."""
    lines: dict[str, list[dict]] = {}
    for r in sort_rows(rows, ["kernel", "degree", "C"]):
        name = r["kernel"] + (f" degree {r['degree']}" if r["kernel"] == "poly" else "")
        name += "".join(f", {column_label(c)} {r.get(c)}" for c in detail)
        lines.setdefault(name, []).append(r)
    return lines
