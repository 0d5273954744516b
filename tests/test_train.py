"""Training on small real slices: it learns, it is reproducible, its clock is honest, and it
lets go of what it held. The CUDA-graph path is tested in test_graph.py."""

import math
import weakref

import pytest
import torch

from mnistbench.cases.case import TrainCase
from mnistbench.cases.registry import ConfigError
from mnistbench.train import trainer as train_module
from mnistbench.train.models import build_model
from mnistbench.train.plan import make_optimizer, plan_for, set_deterministic, set_math_modes
from mnistbench.train.step import PeakMemory
from mnistbench.train.trainer import Diverged, Trainer, train

TINY = dict(train_limit=112, eval_limit=64, batch_size=32)  # 3 full batches and a partial one of 16


def test_same_case_and_seed_is_bitwise_identical_on_cpu(mnist):
    case = TrainCase(train_limit=128, eval_limit=64, batch_size=32, path="fast", epochs=2)
    a, b = train(case, mnist), train(case, mnist)
    assert a.epoch_train_loss == b.epoch_train_loss
    assert a.epoch_val_acc_pct == b.epoch_val_acc_pct and a.test_acc_pct == b.test_acc_pct
    assert train(case.replace(seed=1, epochs=1), mnist).epoch_train_loss[0] != a.epoch_train_loss[0]


def test_classic_path_is_reproducible_too(mnist):
    case = TrainCase(train_limit=128, eval_limit=64, batch_size=32, path="classic")
    assert train(case, mnist).epoch_train_loss == train(case, mnist).epoch_train_loss


def test_the_classic_path_learns_the_digits(mnist):
    """The fast path's twin of this case is a smoke benchmark, held to its measured floor."""
    result = train(TrainCase(train_limit=600, eval_limit=500, path="classic"), mnist)
    # chance is 10%; measured on a 2-core Xeon, seeds 0-2: 79.4, 78.8, 72.4%; margin 12 pts
    assert result.test_acc_pct > 60
    assert result.n_train == 600 and result.steps == math.ceil(600 / 16)


def test_resnet50_learns_through_the_fast_path(mnist):
    """The smoke ResNet-50 case is a measurement (marked slow, cases.case.SLOW_AFTER_S); this is its check:
    Bottleneck blocks with the 1-channel stem learn 64 images. Measured: loss 2.99 -> 1.84 and training
    accuracy 15.6% -> 43.8% over three epochs (seed 0, 2-core Xeon); asserted with margin."""
    r = train(TrainCase(model="resnet50", train_limit=64, eval_limit=32, epochs=3, optimizer="adam"), mnist)
    assert r.epoch_train_loss[-1] < 0.8 * r.epoch_train_loss[0]
    assert r.epoch_train_acc_pct[-1] > 25.0  # 2.5x chance


def test_record_keeps_the_time_apart(mnist):
    case = TrainCase(**TINY, epochs=2, target_val_acc_pct=1.0)
    r = train(case, mnist)
    assert len(r.epoch_time_s) == len(r.epoch_val_acc_pct) == 2 == r.epochs_done
    assert r.train_time_s == pytest.approx(sum(r.epoch_time_s))
    assert r.eval_time_s > 0 and r.setup_time_s >= r.warmup_time_s > 0
    assert r.images_per_s == pytest.approx(2 * 112 / r.train_time_s)
    assert r.epochs_to_target == 1 and r.time_to_target_s == pytest.approx(r.epoch_time_s[0])
    assert r.gmacs_fvcore == pytest.approx(0.033, rel=0.02) and r.peak_mem_mb > 0
    assert (r.plan_loader, r.amp_dtype, r.cuda_graph, r.partial_batch) == ("tensor", "off", False, "none")
    # versions are stored once per session (machine.py); a CPU record has no GPU fields
    assert "torch_version" not in r.as_fields()
    assert (r.device_index, r.tf32_cudnn, r.mfu_pct, r.mem_baseline_mb) == (None, None, None, None)
    assert r.warmup_steps == 3 + 1  # full batches, then the partial last one (112 = 3 x 32 + 16)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_warm_up_leaves_the_run_exactly_as_a_cold_one(mnist, optimizer):
    """Warm-up steps on the real model, then restore: same weights, and the same next steps
    as a model and optimizer that never warmed up (zeroed moments == fresh state)."""
    case = TrainCase(**TINY, optimizer=optimizer, path="fast")
    torch.manual_seed(case.seed)
    cold = build_model(case.model, case.stem)
    trainer = Trainer(case, mnist)
    for name, tensor in trainer.model.state_dict().items():
        assert torch.equal(tensor, cold.state_dict()[name]), name
    cold_opt = make_optimizer(case, cold.parameters(), trainer.plan.fused_optimizer)
    xb, yb = trainer.batches.gather(torch.arange(32))
    for _ in range(2):
        trainer.train_step(xb, yb)
        cold_opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(cold(xb), yb).backward()
        cold_opt.step()
    for (name, a), b in zip(trainer.model.state_dict().items(), cold.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_plan_per_path_and_device(monkeypatch):
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    classic = plan_for(TrainCase(path="classic"), cpu)
    assert (classic.loader, classic.amp_dtype, classic.cuda_graph) == ("dataloader", "off", False)
    assert plan_for(TrainCase(path="classic", device="cuda"), gpu).amp_dtype == "fp16"
    fast_cpu = plan_for(TrainCase(path="fast"), cpu)
    assert fast_cpu.loader == "tensor" and not fast_cpu.cuda_graph
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    fast_gpu = plan_for(TrainCase(path="fast", device="cuda"), gpu)
    assert fast_gpu.cuda_graph and fast_gpu.channels_last and fast_gpu.fused_optimizer
    assert fast_gpu.amp_dtype == "bf16"
    # fp16 is captured too: GradScaler gives the fused optimizer its scale and inf flag on the device
    assert plan_for(TrainCase(path="fast", device="cuda", amp="fp16"), gpu).cuda_graph
    assert not plan_for(TrainCase(path="fast", device="cuda", loader="dataloader"), gpu).cuda_graph


def test_bf16_only_where_the_gpu_has_it_natively(monkeypatch):
    """V100/T4 report bf16 support through emulation; the fast path takes fp16 there."""
    gpu, case = torch.device("cuda"), TrainCase(path="fast", device="cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert plan_for(case, gpu).amp_dtype == "fp16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)  # a torch without the argument
    for capability, amp in (((7, 0), "fp16"), ((8, 0), "bf16")):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None, c=capability: c)
        assert plan_for(case, gpu).amp_dtype == amp


def test_classic_fp16_records_the_updates_grad_scaler_skipped(mnist, monkeypatch):
    """A scale of 2^127 overflows the first steps; each halves the scale and updates nothing.
    (autocast is left off: GradScaler's bookkeeping is the same, fp16 convolutions on a CPU slow.)"""
    monkeypatch.setitem(train_module.AMP_DTYPES, "fp16", None)
    trainer = Trainer(TrainCase(**{**TINY, "train_limit": 400}, path="classic", amp="fp16", optimizer="adam"), mnist)
    scaler = trainer.train_step.scaler
    scaler.load_state_dict({**scaler.state_dict(), "scale": 2.0**127})
    trainer.train_epoch()
    r = trainer.result
    assert r.steps == math.ceil(400 / 32) and 0 < r.skipped_steps < r.steps
    assert scaler.get_scale() == 2.0**127 * 0.5**r.skipped_steps
    # Adam counts only the updates it made
    assert int(next(iter(trainer.optimizer.state.values()))["step"]) == r.steps - r.skipped_steps


def test_close_lets_go_of_the_model_optimizer_and_data(mnist, tiny_model):
    with Trainer(TrainCase(**TINY, model=tiny_model), mnist) as trainer:
        refs = [weakref.ref(x) for x in (trainer.model, trainer.optimizer, trainer.batches.x)]
        result = trainer.result
    assert all(ref() is None for ref in refs) and trainer.result is result


def test_gpu_peak_memory_counts_from_the_case_own_baseline(monkeypatch):
    """What earlier cases left allocated is recorded apart, not added to this case's peak."""
    allocated = {"now": 3 * 2**30, "peak": 5 * 2**30}
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats",
                        lambda device=None: allocated.update(peak=allocated["now"]))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: allocated["now"])
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: allocated["peak"])
    meter = PeakMemory(torch.device("cuda"))
    allocated["peak"] = allocated["now"] + 512 * 2**20  # the case allocates 512 MiB more at most
    assert meter.fields() == {"peak_mem_mb": 512.0, "mem_baseline_mb": 3072.0, "peak_mem_source": "cuda_max_allocated"}


def test_fp32_cases_run_without_tf32_and_autocast_cases_keep_cudnn_tf32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    gpu = torch.device("cuda")
    try:
        for amp, cudnn in (("off", False), ("bf16", True)):
            case = TrainCase(device="cuda", amp=amp)
            set_math_modes(case, plan_for(case, gpu), gpu)
            assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (False, cudnn)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
        set_deterministic(False)


def test_nan_loss_stops_with_the_epoch_and_step(mnist):
    case = TrainCase(**TINY, optimizer="sgd", lr=1e6)
    with pytest.raises(Diverged, match=r"diverged at epoch 1, step \d+ \(loss=(nan|inf)\)") as err:
        train(case, mnist)
    assert err.value.partial.steps >= 1 and err.value.step <= 13


def test_gpu_case_without_cuda_says_so(mnist):
    if torch.cuda.is_available():
        pytest.skip("CUDA is present")
    with pytest.raises(RuntimeError, match="needs a CUDA GPU and none is visible"):
        Trainer(TrainCase(**TINY, device="cuda"), mnist)


def test_deterministic_switch_is_set_per_case_and_never_leaks(mnist, tiny_model):
    Trainer(TrainCase(**TINY, deterministic=True, model=tiny_model), mnist)
    assert torch.are_deterministic_algorithms_enabled()
    Trainer(TrainCase(**TINY, model=tiny_model), mnist)
    assert not torch.are_deterministic_algorithms_enabled()


def test_stop_at_target_ends_the_run_at_the_first_epoch_that_meets_it(mnist):
    case = TrainCase(**TINY, epochs=3, target_val_acc_pct=1.0, stop_at_target=True)
    r = train(case, mnist)
    assert (r.epochs_done, r.epochs_to_target, len(r.epoch_time_s)) == (1, 1, 1)
    assert r.time_to_target_s == r.train_time_s and r.test_acc_pct > 0
    with pytest.raises(ConfigError, match="stop_at_target needs a target"):
        TrainCase(stop_at_target=True)
