import pytest

from mnistbench.config import ConfigError, SVMCase, TrainCase


@pytest.mark.parametrize(
    ("field", "value", "names"),
    [
        ("dataset", "CIFAR10", "MNIST, FashionMNIST"),
        ("model", "resnet101", "resnet18, resnet34, resnet50"),
        ("optimizer", "rmsprop", "sgd, adam"),
        ("split", "random", "pooled, official"),
        ("preset", "q3", "q1a, q1b, q2, smoke"),
        ("amp", "fp8", "auto, off, fp16, bf16"),
    ],
)
def test_unknown_names_list_the_valid_ones(field, value, names):
    with pytest.raises(ConfigError, match=f"Invalid {field} '{value}'. Valid values: {names}."):
        TrainCase(**{field: value})


@pytest.mark.parametrize(("field", "value"), [("lr", 0), ("lr", -1e-3), ("batch_size", 0),
                                              ("epochs", 0), ("train_limit", 0), ("lr", float("nan"))])
def test_non_positive_numbers_are_refused(field, value):
    with pytest.raises(ConfigError, match=f"Invalid {field}"):
        TrainCase(**{field: value})


def test_svm_kernel_and_gamma_are_checked():
    with pytest.raises(ConfigError, match="Valid values: poly, rbf"):
        SVMCase(kernel="linear")
    with pytest.raises(ConfigError, match="gamma"):
        SVMCase(gamma="auto")
    assert SVMCase(gamma=0.01).id.endswith("g0.01-seed0")


def test_id_names_what_differs():
    case = TrainCase(preset="q1a", dataset="FashionMNIST", model="resnet50", batch_size=32,
                     optimizer="adam", lr=1e-4, epochs=10, device="cuda")
    assert case.id == "q1a-fashion-r50-bs32-adam-lr1e-4-ep10-pin-seed0-gpu"
    assert case.replace(image_size=64, stem="small").id.startswith("q1a-fashion-r50-bs32-adam-lr1e-4-ep10-small-px64")


def test_loader_follows_the_path_unless_named():
    assert TrainCase(path="classic").resolved_loader == "dataloader"
    assert TrainCase(path="fast").resolved_loader == "tensor"
    assert TrainCase(path="fast", loader="dataloader").resolved_loader == "dataloader"
    assert TrainCase(path="classic").id.endswith("-pin-classic-seed0-cpu")
