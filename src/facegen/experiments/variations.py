"""Stochastic variations of one face (the variations report): k decodes of z ~ q(z|x) per input, and,
for posteriors too narrow to vary, k decodes of the encoded input with pixel noise added; beside them
the deterministic (z = mu) reconstruction, and other test faces as the yardstick of a changed identity.

Diversity is the mean pairwise LPIPS among an input's variations; identity preservation is the mean
Inception pool3 distance from each variation to its input (lower keeps the face), and the share of
inputs whose variations lie nearest (in the same features, on average) to their own input, against the
chance rate 1/n_inputs.
The 'other faces' row is the yardstick: the posterior variations' mean distance to the other inputs,
and the inputs' own pairwise LPIPS."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import torch

from facegen.experiments.common import load_runs, out_paths, tile
from facegen.experiments.figures import panels
from facegen.io import write_csv
from facegen.metrics import inception
from facegen.metrics import lpips as lpips_metric
from facegen.tensors import to_tensor, to_uint8


def mean_pairwise_lpips(lp, images: np.ndarray) -> float:
    i, j = map(np.array, zip(*itertools.combinations(range(len(images)), 2)))
    return float(lpips_metric.distances(lp, images[i], images[j]).mean())


def identified(distances: np.ndarray) -> float:
    """Share of inputs whose variations lie nearest, on average, to that input among all inputs:
    ``distances`` is (input i, variation, input j). One trial per input, as an input's variations are
    correlated draws."""
    nearest = distances.mean(axis=1).argmin(axis=-1)
    return float((nearest == np.arange(len(distances))).mean())


@torch.no_grad()
def variations(model, x: torch.Tensor, k: int, mode: str, noise: float, gen: torch.Generator) -> torch.Tensor:
    """(N, k, 3, H, W): 'posterior' decodes k draws of z ~ q(z|x); 'input_noise' decodes mu(x + noise)."""
    out = []
    for _ in range(k):
        if mode == "posterior":
            mu, logvar = model.encode(x)
            z = mu + torch.randn(mu.shape, generator=gen) * (0.5 * logvar).exp()
        else:
            noisy = (x + noise * torch.randn(x.shape, generator=gen)).clamp(0, 1)
            z = model.encode(noisy)[0]
        out.append(model.decode(z).float().clamp(0, 1))
    return torch.stack(out, 1)


def run(config: dict, out_dir) -> pd.DataFrame:
    ex = config["latent_experiments"]
    cfg, seed = ex["variations"], ex["seed"]
    lp = lpips_metric.LPIPS()
    net = inception.extractor(mode=config["evaluation"]["inception_mode"])
    rows, figure = [], []
    for item in load_runs(config):
        if not item.is_vae:
            figure.append((item.key, []))
            continue
        x_np = item.images[item.rows("test", cfg["n_inputs"], seed)]
        x = to_tensor(x_np)
        feats_in = inception.features(x_np, net, desc=f"inception {item.key} inputs")
        panel = []
        with torch.no_grad():
            det = to_uint8(item.model.reconstruct(x, deterministic=True).float().clamp(0, 1))
        det_all = np.linalg.norm(inception.features(det, net, desc=f"inception {item.key} deterministic")[:, None, None]
                                 - feats_in[None, None], axis=-1)
        rows.append({"run": item.key, "mode": "deterministic", "n_inputs": len(x_np), "k": 1, "input_noise": 0.0,
                     "diversity_lpips": 0.0, "identity_inception_distance": float(np.diagonal(det_all[:, 0]).mean()),
                     "identified": identified(det_all), "pixel_std": 0.0})
        for mode in ("posterior", "input_noise"):
            gen = torch.Generator().manual_seed(seed)
            var = variations(item.model, x, cfg["k"], mode, cfg["input_noise"], gen)
            imgs = to_uint8(var.flatten(0, 1)).reshape(len(x_np), cfg["k"], *x_np.shape[1:])
            feats = inception.features(imgs.reshape(-1, *x_np.shape[1:]), net, desc=f"inception {item.key} {mode}")
            # (input i, variation k, input j): each variation's distance to every input
            dist_all = np.linalg.norm(feats.reshape(len(x_np), cfg["k"], 1, -1) - feats_in[None, None], axis=-1)
            dist = dist_all[np.arange(len(x_np)), :, np.arange(len(x_np))]
            if mode == "posterior":
                others = dist_all[~np.eye(len(x_np), dtype=bool)[:, None, :].repeat(cfg["k"], 1)]
            rows.append({"run": item.key, "mode": mode, "n_inputs": len(x_np), "k": cfg["k"],
                         "input_noise": cfg["input_noise"] if mode == "input_noise" else 0.0,
                         "diversity_lpips": float(np.mean([mean_pairwise_lpips(lp, v) for v in imgs])),
                         "identity_inception_distance": float(dist.mean()), "identified": identified(dist_all),
                         "pixel_std": float(imgs.astype(float).std(axis=1).mean() / 255)})
            strip = np.concatenate([x_np[:, None], imgs], axis=1).reshape(-1, *x_np.shape[1:])
            panel.append((f"{mode}: input, then {cfg['k']} variations", tile(strip, cfg["k"] + 1)))
        # The yardstick of a changed identity: the posterior variations' distance to the other inputs, and the
        # inputs' own pairwise LPIPS and pixel spread.
        rows.append({"run": item.key, "mode": "other faces", "n_inputs": len(x_np), "k": cfg["k"], "input_noise": 0.0,
                     "diversity_lpips": mean_pairwise_lpips(lp, x_np) if len(x_np) > 1 else float("nan"),
                     "identity_inception_distance": float(others.mean()) if others.size else float("nan"),
                     "identified": 1 / len(x_np), "pixel_std": float(x_np.astype(float).std(axis=0).mean() / 255)})
        figure.append((item.key, panel))
    paths = out_paths(out_dir)
    panels(figure, paths["figure"], width=4.5)
    table = pd.DataFrame(rows, columns=["run", "mode", "n_inputs", "k", "input_noise", "diversity_lpips",
                                        "identity_inception_distance", "identified", "pixel_std"])
    write_csv(paths["table"], table)
    return table
