"""Interpolation: the conv-VAE report's 4-corner matrix, and pairwise linear and spherical paths,
with smoothness measured as a perceptual path length: the mean LPIPS between neighbouring frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from facegen.experiments.common import decode, encode_mean, load_runs, out_paths, tile
from facegen.experiments.figures import panels
from facegen.io import write_csv
from facegen.metrics import lpips as lpips_metric
from facegen.tensors import to_uint8


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    t = t.view(-1, *([1] * z0.dim()))
    return (1 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation along the great circle through z0 and z1 (linear when they are parallel)."""
    t = t.view(-1, *([1] * z0.dim()))
    a, b = z0.flatten(), z1.flatten()
    cos = torch.clamp(torch.dot(a, b) / (a.norm() * b.norm()), -1, 1)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-6:
        return lerp(z0, z1, t.flatten())
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def corner_matrix(corners: torch.Tensor, side: int) -> torch.Tensor:
    """(side*side, D) bilinear blend of 4 corner latents (top-left, top-right, bottom-left, bottom-right)."""
    u = torch.linspace(0, 1, side)
    top = lerp(corners[0], corners[1], u)
    bottom = lerp(corners[2], corners[3], u)
    return torch.stack([lerp(top[j], bottom[j], u) for j in range(side)], 1).reshape(side * side, -1)


def path_length(lp, frames: np.ndarray) -> float:
    return float(lpips_metric.distances(lp, frames[:-1], frames[1:]).mean())


def endpoints(item, n: int, seed: int) -> tuple[torch.Tensor, str]:
    """2n latents: encoded real test faces for VAEs, prior draws for GANs."""
    if item.is_vae:
        rows = item.rows("test", 2 * n, seed)
        if len(rows) >= 2:
            return encode_mean(item.model, item.images[rows]), "encoded test faces"
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(2 * n, item.model.latent_dim, generator=gen), "prior samples"


def run(config: dict, out_dir) -> pd.DataFrame:
    ex = config["latent_experiments"]
    cfg, seed = ex["interpolation"], ex["seed"]
    lp = lpips_metric.LPIPS()
    t = torch.linspace(0, 1, cfg["steps"])
    rows, figure = [], []
    for item in load_runs(config):
        if not hasattr(item.model, "latent_dim") or item.model.conditional:
            figure.append((item.key, []))
            continue
        z, source = endpoints(item, max(cfg["pairs"], 2), seed)
        pairs = len(z) // 2
        z = z.reshape(pairs, 2, -1)
        panel = [(f"4-corner matrix ({source})", tile(to_uint8(decode(item.model, corner_matrix(z[:2].reshape(4, -1), cfg["corners"]))), cfg["corners"]))]
        for name, fn in (("linear", lerp), ("spherical", slerp)):
            lengths = []
            strips = []
            for p in range(pairs):
                frames = to_uint8(decode(item.model, fn(z[p, 0], z[p, 1], t)))
                lengths.append(path_length(lp, frames))
                if p < 3:
                    strips.append(frames)
            rows.append({"run": item.key, "path": name, "source": source, "pairs": pairs, "steps": cfg["steps"],
                         "ppl_lpips_mean": float(np.mean(lengths)), "ppl_lpips_std": float(np.std(lengths))})
            panel.append((f"{name} paths", tile(np.concatenate(strips), cfg["steps"])))
        figure.append((item.key, panel))
    paths = out_paths(out_dir)
    panels(figure, paths["figure"], width=4.0)
    table = pd.DataFrame(rows, columns=["run", "path", "source", "pairs", "steps", "ppl_lpips_mean", "ppl_lpips_std"])
    write_csv(paths["table"], table)
    return table
