"""The latent-space and restoration experiments: one subsection per experiment with its table, a
few statements computed from that table, and its figure."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from facegen.experiments import NAMES
from facegen.reference import VARIATIONS_REPORT_POSTPROCESS as QUOTED_POSTPROCESS

NAME = "experiments"
TITLE = "Latent-space and restoration experiments"

DESCRIPTIONS = {
    "grids": "Prior samples of every model, and test faces beside their deterministic (z = mu) reconstructions.",
    "variations": "Stochastic variations of test faces: k decodes of z ~ q(z|x) ('posterior'), and of the encoded input "
                  "with pixel noise ('input_noise'), beside the deterministic z = mu reconstruction. Diversity is the mean "
                  "pairwise LPIPS among one face's variations; identity is the mean Inception pool3 distance from each variation "
                  "to its input. The 'other faces' row is the yardstick: the same measures between different test faces.",
    "interpolation": "The 4-corner interpolation matrix and linear and spherical paths between pairs of latents "
                     "(encoded test faces for VAEs, prior draws for GANs). Smoothness is the perceptual path length: "
                     "the mean LPIPS between neighbouring frames.",
    "attributes": "Attribute vectors mean(z | attr) - mean(z | not attr) over training faces, added at strength alpha to "
                  "test faces. A CNN attribute classifier trained at the study resolution measures P(attr) of the "
                  "decoded faces; leakage is the mean absolute change of the other attributes' probabilities from alpha = 0.",
    "latent_map": "PCA and t-SNE of test-set posterior means, coloured by attribute. The probe accuracy is a 5-fold "
                  "cross-validated logistic regression of each attribute on the latents, beside the majority-class rate.",
    "restoration": "Test faces corrupted by Gaussian noise or masked blocks, restored by VAE reconstruction (masks: also "
                   "iterated with the known pixels clamped) and by classical scikit-image baselines. PSNR in dB and SSIM "
                   "against the clean faces.",
    "postprocess": "The variations report's pipeline applied cumulatively: saturation/contrast, dark-channel dehazing, "
                   "bilateral smoothing, unsharp masking. MSE and SSIM of reconstructions against the original faces, "
                   "sharpness (Laplacian variance), and Inception FID of generated samples after each step.",
}


def paths(config: dict) -> dict[str, dict[str, Path]]:
    from facegen.paths import experiment_outputs

    return {n: experiment_outputs(config, n) for n in NAMES}


def _has_runs(config: dict) -> bool:
    from facegen.experiments.selection import selected_runs

    return bool(selected_runs(config))


def inputs(config: dict) -> list[Path]:
    return [p for d in paths(config).values() for p in d.values()] if _has_runs(config) else []


# Column headers a reader can parse; any other column shows its name with spaces.
HEADERS = {
    "n_samples": "samples", "sample_sharpness": "sample sharpness (Laplacian var.)", "n_reconstructions": "reconstructions",
    "recon_mse": "recon. MSE", "recon_ssim": "recon. SSIM", "recon_sharpness": "recon. sharpness (Laplacian var.)",
    "sample_fid": "sample FID (Inception)", "step_index": "step no.", "n_test": "test faces", "p_attribute": "P(attribute)",
    "ppl_lpips_mean": "path length (LPIPS), mean", "ppl_lpips_std": "path length (LPIPS), sd", "n": "images",
    "probe_accuracy": "probe accuracy", "majority_rate": "majority rate", "pca_var_pc1": "variance on PC1",
    "pca_var_pc2": "variance on PC2", "psnr": "PSNR (dB)", "ssim": "SSIM", "n_inputs": "inputs", "k": "variations per input",
    "input_noise": "input noise sd", "diversity_lpips": "diversity (LPIPS)", "identity_inception_distance": "identity distance (Inception)",
    "pixel_std": "pixel sd", "identified": "matched to own input (other faces: chance)",
}


def header(column: str) -> str:
    if column.startswith("p_") and column not in HEADERS:
        return f"P({column[2:]})"
    return HEADERS.get(column, column.replace("_", " "))


def fmt(value) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    return str(value)


def _statements(name: str, table: pd.DataFrame) -> list[str]:
    out = []
    if table.empty:
        return ["No selected run supports this experiment."]
    if name == "restoration":
        for (corr, sev), grp in table[table["method"] != "none (corrupted)"].groupby(["corruption", "severity"], sort=False):
            best = grp.loc[grp["psnr"].idxmax()]
            out.append(f"{corr} {fmt(sev)}: best PSNR {best['psnr']:.2f} dB by {best['method']} ({best['run']}).")
    elif name == "attributes":
        for (run, attr), grp in table.groupby(["run", "attribute"], sort=False):
            if grp["alpha"].isna().all():
                out.append(f"{run}, {attr}: {grp['note'].iloc[0]}.")
                continue
            lo, hi = grp.loc[grp["alpha"].idxmin()], grp.loc[grp["alpha"].idxmax()]
            out.append(f"{run}, {attr}: P({attr}) {lo['p_attribute']:.3f} at alpha {fmt(lo['alpha'])} -> "
                       f"{hi['p_attribute']:.3f} at alpha {fmt(hi['alpha'])}; largest leakage {grp['leakage'].max():.3f}.")
    elif name == "postprocess" and "recon_mse" in table:
        for run, grp in table.dropna(subset=["recon_mse"]).groupby("run", sort=False):
            out.append(f"{run}: reconstruction MSE {grp['recon_mse'].iloc[0]:.4f} -> {grp['recon_mse'].iloc[-1]:.4f} through the "
                       f"pipeline (the variations report quotes {QUOTED_POSTPROCESS['mse_before']} -> {QUOTED_POSTPROCESS['mse_after']}).")
    elif name == "variations":
        for run, grp in table.groupby("run", sort=False):
            cells = "; ".join(f"{r['mode']}: diversity {r['diversity_lpips']:.4f}, identity distance {r['identity_inception_distance']:.2f}"
                              for _, r in grp.iterrows())
            out.append(f"{run}: {cells}.")
    return out


def context(config: dict, results: Path) -> dict:
    if not _has_runs(config):
        return {"experiments": []}
    items = []
    for name, p in paths(config).items():
        table = pd.read_csv(p["table"])
        items.append({"name": name, "title": name.replace("_", " ").capitalize(), "description": DESCRIPTIONS[name],
                      "columns": [header(c) for c in table.columns], "rows": [[fmt(v) for v in r] for r in table.itertuples(index=False)],
                      "statements": _statements(name, table), "figure": str(p["figure"].resolve())})
    return {"experiments": items}
