"""Evaluation of trained runs: cached real-image Inception features, per-run metrics, the tidy table."""
