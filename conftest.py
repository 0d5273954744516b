pytest_plugins = ["mnistbench.plugin"]  # also a pytest11 entry point; here for PYTHONPATH=src runs
