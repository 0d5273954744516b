"""What one training run produced: the flat result a record is made of, units in the names."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


@dataclass
class TrainResult:
    """What one run produced. Units are in the names; lists have one entry per finished epoch.
    Library versions and the machine are recorded once per session (suite/machine.py), not here."""

    train_time_s: float = 0.0  # sum of timed epochs (device synchronised), nothing else
    images_per_s: float = 0.0  # training images processed / train_time_s
    images_per_s_median: float = 0.0  # over the median epoch: the steady-state rate
    mfu_pct: float | None = None  # 6 x fvcore MACs x images/s over the GPU's 16-bit dense peak
    mfu_peak_tflops: float | None = None  # that peak (flops.GPU_PEAKS)
    mfu_peak_source: str | None = None  # the datasheet it comes from
    setup_time_s: float = 0.0  # model build, data to device, warm-up, capture, graph check: not in train_time_s
    warmup_time_s: float = 0.0  # the part of setup spent warming up (and capturing a graph)
    warmup_steps: int = 0  # optimizer steps run in warm-up, then undone (graph replays included)
    eval_time_s: float = 0.0  # every validation and the test pass: not in train_time_s
    energy_j: float | None = None  # over the timed epochs (energy_source); None where the hardware does not say
    energy_j_per_image: float | None = None  # energy_j / training images processed
    energy_source: str | None = None  # NVML's GPU counter or RAPL's CPU package counters
    test_acc_pct: float = math.nan
    val_acc_pct: float = math.nan  # after the last epoch
    train_acc_pct: float = math.nan  # running accuracy over the last epoch
    train_loss: float = math.nan  # mean loss over the last epoch
    epoch_time_s: list[float] = field(default_factory=list)
    epoch_train_loss: list[float] = field(default_factory=list)
    epoch_train_acc_pct: list[float] = field(default_factory=list)
    epoch_val_acc_pct: list[float] = field(default_factory=list)
    epochs_done: int = 0
    steps: int = 0  # training steps run (batches); a GradScaler-skipped update counts here too
    skipped_steps: int = 0  # steps whose update GradScaler skipped (fp16 gradients overflowed)
    epochs_to_target: int | None = None  # first epoch whose val accuracy met the case's target
    time_to_target_s: float | None = None  # train_time_s up to that epoch
    peak_mem_mb: float = 0.0  # on a GPU: this case's peak above mem_baseline_mb
    mem_baseline_mb: float | None = None  # GPU memory allocated when the case began (left by others)
    peak_mem_source: str = ""  # cuda_max_allocated | process_max_rss (whole process, not per run)
    plan_loader: str = ""
    amp_dtype: str = "off"
    channels_last: bool = False
    fused_optimizer: bool = False
    cuda_graph: bool = False  # the graph actually ran (false after a fallback)
    cuda_graph_fallback: str | None = None  # why the graph did not run (a failed capture, an old torch); eager ran
    cuda_graph_leaked_mb: float | None = None  # held by a failed capture's pool in this process (in mem_baseline_mb)
    partial_batch: str = "none"  # none | eager (the last, smaller batch ran outside the graph)
    graph_check_steps: int = 0  # --check-graph K: steps run both ways from the same start
    graph_check_max_abs: float | None = None  # largest |graph - eager| over all weights after them
    graph_check_max_rel: float | None = None  # largest per-tensor max|graph - eager| / max|eager|
    graph_check_eager_rel: float | None = None  # the same between two eager runs: the device's own noise
    graph_check_tol_rel: float | None = None  # max(CHECK_GRAPH_RTOL, 2 x eager noise)
    graph_check_pass: bool | None = None  # max_rel <= tol_rel; a failed check fails the case
    n_train: int = 0
    n_val: int = 0
    n_test: int = 0
    gmacs_fvcore: float = 0.0  # per image at the case's input size (forward pass)
    params_m: float = 0.0
    device_name: str = ""
    device_index: int | None = None  # the CUDA device (torch's numbering); None on a CPU
    compute_capability: str | None = None
    # math modes in force for the case on a GPU (plan.backend_settings); None on a CPU
    tf32_matmul: bool | None = None
    tf32_cudnn: bool | None = None
    float32_matmul_precision: str | None = None
    cudnn_benchmark: bool | None = None
    cudnn_deterministic: bool | None = None

    def as_fields(self) -> dict:
        return asdict(self)
