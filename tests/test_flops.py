"""fvcore counts against published figures: fvcore counts a multiply-add as one flop."""

import pytest

from mnistbench import flops


@pytest.mark.parametrize(("model", "gmacs"), [("resnet18", 1.81), ("resnet50", 4.09)])
def test_matches_torchvision_docs_at_224(model, gmacs):
    # torchvision documents GFLOPS at 3x224x224 with 1000 classes, counted as fvcore does
    got = flops.count(model, image_size=224, channels=3, num_classes=1000)
    assert got["gmacs_fvcore"] == pytest.approx(gmacs, rel=0.01)


@pytest.mark.parametrize(("model", "gmacs", "params_m"),
                         [("resnet18", 0.033, 11.18), ("resnet34", 0.070, 21.28), ("resnet50", 0.078, 23.52)])
def test_matches_the_write_ups_at_28(model, gmacs, params_m):
    got = flops.count(model)
    assert got["gmacs_fvcore"] == pytest.approx(gmacs, rel=0.02)
    assert got["params_m"] == pytest.approx(params_m, rel=0.01)


def test_input_size_and_stem_change_the_count():
    base = flops.count("resnet18")["gmacs_fvcore"]
    assert flops.count("resnet18", image_size=64)["gmacs_fvcore"] > 4 * base
    assert flops.count("resnet18", stem="small")["gmacs_fvcore"] > 10 * base
