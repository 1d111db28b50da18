"""Summaries of all training runs: a tidy table, loss curves, and the HVAE-paper replication figures."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from facegen.io import save_figure, write_csv, write_json  # noqa: E402
from facegen.records import read_card, read_history  # noqa: E402
from facegen.reference import HVAE_PAPER  # noqa: E402
from facegen.training.collapse import discriminator_won, final_d_fake  # noqa: E402

CURVE_KEYS = ("recon", "kl", "loss", "g_loss", "d_loss")


def epochs_to_convergence(values: pd.Series, share: float = 0.95) -> int | None:
    """First epoch (1-based) that reaches ``share`` of the run's total decrease; None if it never fell."""
    v = values.to_numpy(float)
    if len(v) == 0 or not np.isfinite(v).all():
        return None
    drop = v[0] - v.min()
    if drop <= 0:
        return None
    return int(np.argmax(v <= v[0] - share * drop)) + 1


def run_row(run_dir: Path) -> dict:
    card, hist = read_card(run_dir), read_history(run_dir)
    spec = card["spec"]
    key = "recon" if "recon" in hist else None
    row = {"run": card["run"], "dataset": spec["dataset"], "resolution": spec["resolution"], "model": spec["model"],
           "seed": spec["seed"], "arch": card["arch"], "n_parameters": card["n_parameters"],
           "n_train_images": card["n_train_images"], "train_gflop_per_image": card["train_flops_per_image"] / 1e9,
           "epochs": len(hist), "train_minutes": card["train_seconds"] / 60, "img_per_s": card["img_per_s"],
           "precision": (card.get("precision") or {}).get("mode", "fp32"),
           "compile": (card.get("compile") or {}).get("mode", "off"),
           "convergence_metric": key or "n/a (adversarial losses only)",
           "epochs_to_convergence": epochs_to_convergence(hist[key]) if key else None,
           "d_collapse_epochs": int(hist["d_collapse"].sum()) if "d_collapse" in hist else 0}
    row["d_fake_final"] = final_d_fake(hist)
    row["d_won"] = discriminator_won(row["d_fake_final"])
    for k in (*CURVE_KEYS, "approx_fid"):
        if k in hist:
            row[f"final_{k}"] = float(hist[k].iloc[-1])
    return row


def _hyperparameter(card: dict, name: str):
    """A run's hyperparameter: its config value, else its model's default (older cards carry no params)."""
    given = card["spec"].get("params", {})
    if name in given:
        return given[name]
    import inspect

    from facegen.models import model_class  # only here: the summary's other work needs no torch

    return inspect.signature(model_class(card["arch"]).__init__).parameters[name].default


def replication(runs: list[Path]) -> dict:
    # No "which model beat the paper's pixel approximate FID": that formula is not a distance (a mean face
    # scores below a perfect generator, facegen.metrics.pixel_fid), so the report compares the replica on
    # reconstruction MSE and Inception FID and gives the formula's reference scores on our data instead.
    out = {"paper": HVAE_PAPER, "fc_hvae": None}
    for run_dir in runs:
        card = read_card(run_dir)
        spec, hist = card["spec"], read_history(run_dir)
        if spec["resolution"] != 32 or spec["dataset"] == "synthetic":
            continue
        if card["arch"] == "fc_hvae" and out["fc_hvae"] is None:
            out["fc_hvae"] = {"run": card["run"], "epochs": len(hist), "n_train_images": card["n_train_images"],
                              "recon_mse": float(hist["recon"].iloc[-1]), "kl": float(hist["kl"].iloc[-1]),
                              "approx_fid": float(hist["approx_fid"].iloc[-1]) if "approx_fid" in hist else None,
                              "cpu_hours": card["train_seconds"] / 3600,
                              **{k: _hyperparameter(card, k) for k in ("beta", "recon_reduction")}}
    return out


def curves_figure(runs: list[Path]):
    n = max(len(runs), 1)
    cols = min(4, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_axis_off()
    for ax, run_dir in zip(axes.flat, runs):
        hist = read_history(run_dir)
        for k in CURVE_KEYS:
            if k in hist and np.isfinite(hist[k]).all():
                ax.plot(hist["epoch"], hist[k], label=k)
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_title(read_card(run_dir)["run"], fontsize=8)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def summarize_training(run_dirs: list[str | Path], table: str | Path, figure: str | Path, replication_path: str | Path) -> pd.DataFrame:
    runs = sorted(Path(r) for r in run_dirs)  # one order whichever orchestrator lists them
    frame = pd.DataFrame([run_row(r) for r in runs])
    write_csv(table, frame)
    fig = curves_figure(runs)
    save_figure(figure, fig)
    plt.close(fig)
    write_json(replication_path, replication(runs))
    return frame
