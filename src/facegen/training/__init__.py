"""Training engine, run orchestration and model cards."""
