"""Fixtures for the unit tests: small slices of the real datasets, decoded once per session."""

import fvcore.nn  # noqa: F401
import pytest
import scipy.stats  # noqa: F401
import sklearn.model_selection  # noqa: F401
import sklearn.svm  # noqa: F401
import torch
import torchvision.datasets  # noqa: F401
from fixtures.records import CPU, GPU

import mnistbench.results.gate  # noqa: F401
import mnistbench.suite.bench  # noqa: F401
from mnistbench.cases.case import TrainCase
from mnistbench.cases.registry import MODELS, ModelSpec
from mnistbench.results.load import load

# The unused imports above are what a suite run imports on demand, imported here before any
# pytester fixture exists: pytester drops the modules an in-process run (`runpytest_inprocess`)
# imported, and numpy's and scipy's compiled modules cannot be loaded twice in one process.


class TinyNet(torch.nn.Module):
    """ResNet-shaped (conv1, bn1, maxpool, fc) with nothing between stem and head: for the tests of the
    training loop's control flow (graph capture, warm-up, fallbacks), where ResNet-18's 11M parameters
    only cost time. build_model gives it the suite's 1-channel, 64-filter stem as it does a ResNet."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1, self.relu = torch.nn.BatchNorm2d(64), torch.nn.ReLU()
        self.maxpool = torch.nn.MaxPool2d(3, 2, 1)
        self.fc = torch.nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.fc(x.mean(dim=(2, 3)))


TINY_MODEL = ModelSpec("tiny", "tiny", "Tiny", cpu_images_per_s=5000.0, build=TinyNet)


@pytest.fixture
def tiny_model(monkeypatch):
    """The TinyNet registered as model "tiny" for one test only (the registry is global)."""
    monkeypatch.setitem(MODELS, "tiny", TINY_MODEL)
    return "tiny"


@pytest.fixture
def shim(monkeypatch):
    """The CPU stand-in for CUDA graphs (tests/cuda_shim.py), with the plan that captures the step."""
    from cuda_shim import CudaShim

    from mnistbench.train import graph

    shim = CudaShim(monkeypatch)
    shim.graph_plan(monkeypatch)
    monkeypatch.setattr(graph, "_FALLBACKS_WARNED", set())
    return shim


def pytest_configure(config):
    """pytester for the tests that run the suite through pytest itself; benchmark runs never load it."""
    config.pluginmanager.import_plugin("pytester")


@pytest.fixture(scope="session")
def mnist(splits):
    return splits.get(TrainCase(dataset="MNIST"))


@pytest.fixture(scope="session")
def fashion(splits):
    return splits.get(TrainCase(dataset="FashionMNIST"))


@pytest.fixture
def cpu():
    """Records of the CPU smoke fixture, loaded fresh for each test (tests change them)."""
    return load([CPU])


@pytest.fixture
def gpu():
    """Records of the derived GPU fixture (see tests/fixtures/records.py)."""
    return load([GPU])
