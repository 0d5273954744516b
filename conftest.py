pytest_plugins = ["mnistbench.suite.plugin"]  # also a pytest11 entry point; here for PYTHONPATH=src runs
