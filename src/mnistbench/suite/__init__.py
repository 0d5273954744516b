"""The pytest side: the plugin (a pytest11 entry point), its options, one case under
pytest-benchmark, the machine facts, and the GPU check's run of the suite."""
