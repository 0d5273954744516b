"""Training on small real slices: it learns, it is reproducible, and its clock is honest."""

import math

import pytest
import torch

from mnistbench.config import TrainCase
from mnistbench.train import Diverged, Trainer, train

TINY = dict(train_limit=400, eval_limit=200, batch_size=32)


def test_same_case_and_seed_is_bitwise_identical_on_cpu(mnist):
    case = TrainCase(**TINY, loader="tensor", epochs=2)
    a, b = train(case, mnist), train(case, mnist)
    assert a.epoch_train_loss == b.epoch_train_loss
    assert a.epoch_val_acc_pct == b.epoch_val_acc_pct and a.test_acc_pct == b.test_acc_pct
    assert train(case.replace(seed=1), mnist).epoch_train_loss != a.epoch_train_loss


def test_dataloader_path_is_reproducible_too(mnist):
    case = TrainCase(**TINY, loader="dataloader")
    assert train(case, mnist).epoch_train_loss == train(case, mnist).epoch_train_loss


@pytest.mark.parametrize("loader", ["dataloader", "tensor"])
def test_both_loaders_learn_the_digits(mnist, loader):
    result = train(TrainCase(train_limit=1000, eval_limit=500, loader=loader), mnist)
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


def test_warm_up_does_not_touch_the_model(mnist):
    case = TrainCase(**TINY)
    torch.manual_seed(case.seed)
    from mnistbench.models import build_model

    fresh = build_model(case.model, case.stem).state_dict()
    trainer = Trainer(case, mnist)
    for name, tensor in trainer.model.state_dict().items():
        assert torch.equal(tensor, fresh[name]), name


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
