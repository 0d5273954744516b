"""Fixtures for the unit tests: small slices of the real datasets, decoded once per session."""

import fvcore.nn  # noqa: F401
import pytest
import scipy.stats  # noqa: F401
import sklearn.model_selection  # noqa: F401
import sklearn.svm  # noqa: F401
import torchvision.datasets  # noqa: F401
from fixtures.records import CPU, GPU

import mnistbench.results.gate  # noqa: F401
import mnistbench.suite.bench  # noqa: F401
from mnistbench.cases.case import TrainCase
from mnistbench.results.load import load

# The unused imports above are what a suite run imports on demand, imported here before any
# pytester fixture exists: pytester drops the modules an in-process run (`runpytest_inprocess`)
# imported, and numpy's and scipy's compiled modules cannot be loaded twice in one process.


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
