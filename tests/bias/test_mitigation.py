"""The mitigation table: each baseline beside its balanced twin, read from the result files, with each
seed's fairer model read from the paired interval of their unbiased fd_uniform (Choi et al. 2020), never
from fd_train."""

import json

import numpy as np
import pandas as pd
import pytest

from facegen.bias import mitigation, stats
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


CONFUSION = [[90, 10], [10, 90]]


def write_results(tmp_path, counts: dict, fd_train: dict):
    """The result files the table reads; each twin's generated group counts stand behind its fd values."""
    bias = tmp_path / "results" / "bias"
    runs = {"vae": "synthetic/16/vae/0", "vae_bal": "synthetic/16/vae_bal/0"}
    write_csv(tmp_path / "results" / "evaluation" / "metrics.csv", pd.DataFrame(
        [{"run": runs["vae"], "metric": "fid", "value": 100.0}, {"run": runs["vae_bal"], "metric": "fid", "value": 110.0}]))
    write_csv(bias / "reconstruction_disparity.csv", pd.DataFrame(
        [{"run": r, "metric": "mse", "attribute": "group", "disparity_ratio": d} for r, d in ((runs["vae"], 1.5), (runs["vae_bal"], 1.2))]))
    confusion = stats.row_shares(np.array(CONFUSION))
    rows = []
    for m, c in counts.items():
        fd = stats.fairness_discrepancy(stats.correct_for_confusion(np.array(c) / sum(c), confusion))
        rows.append({"run": runs[m], "target": "group", "fd_uniform": fd, "fd_uniform_ci_low": fd - 0.05, "fd_uniform_ci_high": fd + 0.05,
                     "fd2_uniform_unbiased": float(stats.squared_distance_unbiased(np.array(c), confusion)),
                     "chi2_uniform_p": stats.uniformity_test(np.array(c), confusion)[1],
                     "predicted_counts": json.dumps(c), "confusion_counts": json.dumps(CONFUSION),
                     "fd_train": fd_train[m], "fd_train_ci_low": fd_train[m] - 0.01, "fd_train_ci_high": fd_train[m] + 0.01,
                     "fid_balanced_real": {"vae": 130.0, "vae_bal": 120.0}[m]})
    write_csv(bias / "generation_summary.csv", pd.DataFrame(rows))


@pytest.mark.parametrize("counts, reading", [
    ({"vae": [160, 40], "vae_bal": [100, 100]}, "balanced"),
    ({"vae": [100, 100], "vae_bal": [160, 40]}, "baseline"),
    ({"vae": [110, 90], "vae_bal": [106, 94]}, "no clear difference"),
])
def test_a_seeds_fairer_twin_follows_fd_uniform_even_against_fd_train(tmp_path, counts, reading):
    cfg = config(tmp_path)
    # fd_train says the opposite of fd_uniform in every case: a twin pushed to uniform drifts from the training mix.
    fd_train = {"vae": 0.1 if reading == "balanced" else 0.4, "vae_bal": 0.4 if reading == "balanced" else 0.1}
    write_results(tmp_path, counts, fd_train)
    (row,) = mitigation.run(cfg, tmp_path / "results" / "bias" / "mitigation.csv").to_dict("records")
    assert row["fairer"] == reading
    assert row["fd2_difference_ci_low"] <= row["fd2_difference"] <= row["fd2_difference_ci_high"]
    assert row["fd2_difference"] == pytest.approx(row["fd2_uniform_unbiased_balanced"] - row["fd2_uniform_unbiased_baseline"])
    assert (row["fid_baseline"], row["fid_balanced"]) == (100.0, 110.0)
    assert (row["fid_balanced_real_baseline"], row["fid_balanced_real_balanced"]) == (130.0, 120.0)
    assert (row["mse_disparity_baseline"], row["mse_disparity_balanced"]) == (1.5, 1.2)
    assert row["fd_train_balanced"] == fd_train["vae_bal"]
    assert row["balance_column"] == "group" and row["balance_mode"] == "resample"


def test_missing_result_files_give_na_not_a_reading(tmp_path):
    (row,) = mitigation.run(config(tmp_path), tmp_path / "mitigation.csv").to_dict("records")
    assert row["fairer"] == "no interval" and row["fid_baseline"] != row["fid_baseline"]  # NaN
