"""Fixtures for the unit tests: small slices of the real datasets, decoded once per session."""

import pytest
from fixtures.records import CPU, GPU

from mnistbench.config import TrainCase
from mnistbench.report.load import load


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
