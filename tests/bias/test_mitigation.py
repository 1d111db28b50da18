"""The mitigation table: each baseline beside its balanced twin, read from the result files, with the
fairer twin decided by fd_uniform's intervals (Choi et al. 2020), never by fd_train."""

import pandas as pd
import pytest

from facegen.bias import mitigation
from facegen.config import load
from facegen.io import write_csv


def config(tmp_path):
    return load({
        "results_dir": str(tmp_path / "results"),
        "data": {"resolutions": [16], "datasets": {"synthetic": {"kind": "synthetic", "n": 60, "size": 64,
                                                                 "group_weights": [0.8, 0.2], "group_noise": [0, 0]}}},
        "models": {"vae": {"arch": "vae"}, "vae_bal": {"arch": "vae", "training": {"balance_column": "group"}}},
        "experiments": [{"datasets": ["synthetic"], "resolutions": [16], "models": ["vae", "vae_bal"], "seeds": [0]}],
        "bias": {"mitigation": [{"baseline": "vae", "balanced": "vae_bal"}]},
    })


def write_results(tmp_path, fd: dict, fd_train: dict):
    bias = tmp_path / "results" / "bias"
    runs = {"vae": "synthetic/16/vae/0", "vae_bal": "synthetic/16/vae_bal/0"}
    write_csv(tmp_path / "results" / "evaluation" / "metrics.csv", pd.DataFrame(
        [{"run": runs["vae"], "metric": "fid", "value": 100.0}, {"run": runs["vae_bal"], "metric": "fid", "value": 110.0}]))
    write_csv(bias / "reconstruction_disparity.csv", pd.DataFrame(
        [{"run": r, "metric": "mse", "attribute": "group", "disparity_ratio": d} for r, d in ((runs["vae"], 1.5), (runs["vae_bal"], 1.2))]))
    write_csv(bias / "generation_summary.csv", pd.DataFrame([
        {"run": runs[m], "target": "group", "fd_uniform": fd[m][0], "fd_uniform_ci_low": fd[m][1], "fd_uniform_ci_high": fd[m][2],
         "fd_train": fd_train[m], "fd_train_ci_low": fd_train[m] - 0.01, "fd_train_ci_high": fd_train[m] + 0.01,
         "fid_balanced_real": {"vae": 130.0, "vae_bal": 120.0}[m]} for m in runs]))


@pytest.mark.parametrize("fd, reading", [
    ({"vae": (0.60, 0.55, 0.65), "vae_bal": (0.10, 0.05, 0.15)}, "balanced"),
    ({"vae": (0.10, 0.05, 0.15), "vae_bal": (0.60, 0.55, 0.65)}, "baseline"),
    ({"vae": (0.40, 0.30, 0.50), "vae_bal": (0.35, 0.25, 0.45)}, "no clear difference"),
])
def test_the_fairer_twin_follows_fd_uniform_even_against_fd_train(tmp_path, fd, reading):
    cfg = config(tmp_path)
    # fd_train says the opposite of fd_uniform in every case: a twin pushed to uniform drifts from the training mix.
    fd_train = {"vae": fd["vae_bal"][0], "vae_bal": fd["vae"][0]}
    write_results(tmp_path, fd, fd_train)
    (row,) = mitigation.run(cfg, tmp_path / "results" / "bias" / "mitigation.csv").to_dict("records")
    assert row["fairer"] == reading
    assert (row["fid_baseline"], row["fid_balanced"]) == (100.0, 110.0)
    assert (row["fid_balanced_real_baseline"], row["fid_balanced_real_balanced"]) == (130.0, 120.0)
    assert (row["mse_disparity_baseline"], row["mse_disparity_balanced"]) == (1.5, 1.2)
    assert row["fd_uniform_balanced"] == fd["vae_bal"][0] and row["fd_train_balanced"] == fd_train["vae_bal"]
    assert row["balance_column"] == "group" and row["balance_mode"] == "resample"


def test_missing_result_files_give_na_not_a_reading(tmp_path):
    (row,) = mitigation.run(config(tmp_path), tmp_path / "mitigation.csv").to_dict("records")
    assert row["fairer"] == "no interval" and row["fid_baseline"] != row["fid_baseline"]  # NaN
