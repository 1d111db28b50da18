"""The quality gates, one row per model of a study: precision above PRECISION_GATE, LPIPS diversity at
least COLLAPSE_DIVERSITY of the real images' (no collapse), and an adversarial family's score at or below
the plain VAE's at its dataset and resolution, on the measure that decides sample-quality verdicts
(facegen.metrics.verdict_metric: FID_inf, since FID at this n is biased by a model-specific amount).
The evaluation summary writes them (gates.csv); the report, the findings and `facegen bench quality`
read them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from facegen.metrics import headline, verdict_metric

PRECISION_GATE = 0.1
COLUMNS = headline()
QUALITY = verdict_metric().name  # what the adversarial families are compared with the VAE on

# A run's samples have collapsed when their LPIPS diversity is below this share of the real images'.
COLLAPSE_DIVERSITY = 0.5


def gates(table: pd.DataFrame) -> pd.DataFrame:
    """Adds the gate columns to one row per run (the floor row included, which passes by definition)."""
    table = table.copy()
    table["precision_ok"] = table["precision"] > PRECISION_GATE
    real = table["family"] == "real"
    table["diversity_ok"] = real | (table["lpips_diversity"] >= COLLAPSE_DIVERSITY * table["lpips_diversity_real"])
    vae = table.loc[table["arch"] == "vae", QUALITY]
    vae_score = float(vae.mean()) if len(vae) else float("nan")
    adversarial = table["family"] == "gan"
    table["quality_vs_vae"] = np.where(adversarial & np.isfinite(vae_score), table[QUALITY] - vae_score, np.nan)
    return table


def gate_table(evaluation: pd.DataFrame) -> pd.DataFrame:
    """The gates over a study's tidy evaluation table (facegen.evaluation.summary.tidy), applied to each
    model's means over its seeds: one row per dataset, resolution and model, each adversarial model's FID_inf
    against the plain VAE of its own dataset and resolution, and whether it passes every gate. The means are
    not tested against each other (the findings test the central comparison over seeds)."""
    runs = evaluation[evaluation["family"] != "real"]
    if runs.empty:
        return pd.DataFrame(columns=["dataset", "resolution", "model", "passes"])
    keys = ["dataset", "resolution", "model", "arch", "family"]
    wide = runs.pivot_table(index=keys + ["seed"], columns="metric", values="value").reset_index()
    for column in COLUMNS:
        if column not in wide:
            wide[column] = np.nan
    means = wide.groupby(keys, sort=True)[list(COLUMNS)].mean()
    means["n_seeds"] = wide.groupby(keys, sort=True)["seed"].nunique()
    out = pd.concat([gates(g) for _, g in means.reset_index().groupby(["dataset", "resolution"], sort=True)], ignore_index=True)
    out["diversity_share"] = out["lpips_diversity"] / out["lpips_diversity_real"]
    out["quality_ok"] = ~(out["quality_vs_vae"] > 0)  # no VAE to compare with (or not adversarial): not failed
    out["passes"] = out["precision_ok"] & out["diversity_ok"] & out["quality_ok"]
    return out
