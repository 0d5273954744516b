import pytest
import torch

from mnistbench.train.models import build_model


@pytest.mark.parametrize("model", ["resnet18", "resnet34", "resnet50"])
@pytest.mark.parametrize(("stem", "size"), [("imagenet", 28), ("imagenet", 64), ("small", 28)])
def test_one_channel_in_ten_classes_out(model, stem, size):
    net = build_model(model, stem).eval()
    assert net.conv1.in_channels == 1
    with torch.no_grad():
        assert net(torch.randn(2, 1, size, size)).shape == (2, 10)


def test_random_init_depends_on_the_seed_only():
    torch.manual_seed(1)
    a = build_model("resnet18").conv1.weight
    torch.manual_seed(1)
    b = build_model("resnet18").conv1.weight
    assert torch.equal(a, b)
