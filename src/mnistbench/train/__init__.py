"""Training and fitting: models, input pipelines, the per-device plan, the step (eager and graph),
the trainer, SVMs and FLOP counts. Reads cases and data; knows nothing of pytest or records."""
