"""Training on small real slices: it learns, it is reproducible, and its clock is honest."""

import math

import pytest
import torch

from mnistbench.config import TrainCase
from mnistbench.models import build_model
from mnistbench.train import Diverged, Trainer, make_optimizer, plan_for, train

TINY = dict(train_limit=400, eval_limit=200, batch_size=32)


def test_same_case_and_seed_is_bitwise_identical_on_cpu(mnist):
    case = TrainCase(**TINY, path="fast", epochs=2)
    a, b = train(case, mnist), train(case, mnist)
    assert a.epoch_train_loss == b.epoch_train_loss
    assert a.epoch_val_acc_pct == b.epoch_val_acc_pct and a.test_acc_pct == b.test_acc_pct
    assert train(case.replace(seed=1), mnist).epoch_train_loss != a.epoch_train_loss


def test_classic_path_is_reproducible_too(mnist):
    case = TrainCase(**TINY, path="classic")
    assert train(case, mnist).epoch_train_loss == train(case, mnist).epoch_train_loss


@pytest.mark.parametrize("path", ["classic", "fast"])
def test_both_paths_learn_the_digits(mnist, path):
    result = train(TrainCase(train_limit=1000, eval_limit=500, path=path), mnist)
    # chance is 10%; measured 1000-image runs reach 75-90%
    assert result.test_acc_pct > 60
    assert result.n_train == 1000 and result.steps == math.ceil(1000 / 16)


def test_record_keeps_the_time_apart(mnist):
    case = TrainCase(**TINY, epochs=2, target_val_acc_pct=1.0)
    r = train(case, mnist)
    assert len(r.epoch_time_s) == len(r.epoch_val_acc_pct) == 2 == r.epochs_done
    assert r.train_time_s == pytest.approx(sum(r.epoch_time_s))
    assert r.eval_time_s > 0 and r.setup_time_s >= r.warmup_time_s > 0
    assert r.images_per_s == pytest.approx(2 * 400 / r.train_time_s)
    assert r.epochs_to_target == 1 and r.time_to_target_s == pytest.approx(r.epoch_time_s[0])
    assert r.gmacs_fvcore == pytest.approx(0.033, rel=0.02) and r.peak_mem_mb > 0
    assert (r.plan_loader, r.amp_dtype, r.cuda_graph, r.partial_batch) == ("tensor", "off", False, "none")


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
        trainer.step_on(xb, yb)
        cold_opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(cold(xb), yb).backward()
        cold_opt.step()
    for (name, a), b in zip(trainer.model.state_dict().items(), cold.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_plan_per_path_and_device():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    classic = plan_for(TrainCase(path="classic"), cpu)
    assert (classic.loader, classic.amp_dtype, classic.cuda_graph) == ("dataloader", "off", False)
    assert plan_for(TrainCase(path="classic", device="cuda"), gpu).amp_dtype == "fp16"
    fast_cpu = plan_for(TrainCase(path="fast"), cpu)
    assert fast_cpu.loader == "tensor" and not fast_cpu.cuda_graph
    if torch.cuda.is_available():
        fast_gpu = plan_for(TrainCase(path="fast", device="cuda"), gpu)
        assert fast_gpu.cuda_graph and fast_gpu.channels_last and fast_gpu.fused_optimizer
        # fp16 needs GradScaler, whose host reads cannot be captured
        assert not plan_for(TrainCase(path="fast", device="cuda", amp="fp16"), gpu).cuda_graph


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


def test_deterministic_switch_is_set_per_case_and_never_leaks(mnist):
    Trainer(TrainCase(**TINY, deterministic=True), mnist)
    assert torch.are_deterministic_algorithms_enabled()
    Trainer(TrainCase(**TINY), mnist)
    assert not torch.are_deterministic_algorithms_enabled()
