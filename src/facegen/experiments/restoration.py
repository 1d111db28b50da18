"""Restoration (the conv-VAE report): Gaussian noise and masked regions removed by VAE reconstruction
(inpainting optionally iterated with the known pixels clamped), against classical scikit-image
baselines: mean filter, bilateral and non-local means for noise, biharmonic inpainting for masks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy.ndimage import uniform_filter
from skimage.restoration import denoise_bilateral, denoise_nl_means, inpaint_biharmonic

from facegen.experiments.common import load_runs, out_paths, tile
from facegen.experiments.figures import panels
from facegen.io import write_csv
from facegen.metrics.pixel_quality import reconstruction_errors


def add_noise(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """x in [0, 1] plus N(0, sigma^2) per pixel, clipped back to [0, 1]."""
    return np.clip(x + rng.normal(0, sigma, x.shape), 0, 1)


def center_mask(size: int, fraction: float) -> np.ndarray:
    """(size, size) bool, True where pixels are missing: a centred square of ``fraction`` of the area."""
    side = int(round(size * np.sqrt(fraction)))
    mask = np.zeros((size, size), bool)
    start = (size - side) // 2
    mask[start:start + side, start:start + side] = True
    return mask


def random_squares_mask(size: int, n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` squares, each ``fraction`` of the area, at random (possibly overlapping) positions."""
    side = max(1, int(round(size * np.sqrt(fraction))))
    mask = np.zeros((size, size), bool)
    for r, c in rng.integers(0, size - side + 1, (n, 2)):
        mask[r:r + side, c:c + side] = True
    return mask


@torch.no_grad()
def vae_restore(model, x: np.ndarray, mask: np.ndarray | None = None, iterations: int = 0) -> np.ndarray:
    """Deterministic reconstruction of corrupted images (N, H, W, 3) in [0, 1]; with a mask, the known
    pixels are clamped and the reconstruction is fed back ``iterations`` more times."""
    def recon(a):
        t = torch.from_numpy(a).permute(0, 3, 1, 2).float()
        return model.reconstruct(t, None, deterministic=True).float().clamp(0, 1).permute(0, 2, 3, 1).numpy().astype(np.float64)

    if mask is None:
        return recon(x)
    known = ~mask[None, :, :, None]
    current = np.where(known, x, 0.5)
    out = recon(current)
    for _ in range(iterations):
        current = np.where(known, x, out)
        out = recon(current)
    return np.where(known, x, out) if iterations else out


def denoisers(sigma: float) -> dict:
    return {
        "mean filter 3x3": lambda im: uniform_filter(im, size=(3, 3, 1), mode="reflect"),
        "bilateral": lambda im: denoise_bilateral(im, sigma_color=max(sigma, 1e-3), sigma_spatial=1, mode="reflect",
                                                channel_axis=-1),
        "non-local means": lambda im: denoise_nl_means(im, h=0.8 * sigma, sigma=sigma, patch_size=3, patch_distance=4,
                                                       fast_mode=True, channel_axis=-1),
    }


def _score(rows, key, corruption, severity, method, clean, restored):
    err = reconstruction_errors(clean, np.clip(restored, 0, 1))
    rows.append({"run": key, "corruption": corruption, "severity": severity, "method": method, "n": len(clean),
                 "psnr": float(err["psnr"].mean()), "ssim": float(err["ssim"].mean())})


def run(config: dict, out_dir) -> pd.DataFrame:
    ex = config["latent_experiments"]
    cfg, seed = ex["restoration"], ex["seed"]
    rows, figure, classical_done = [], [], set()
    for item in load_runs(config):
        if not item.is_vae:
            continue
        clean = item.images[item.rows("test", cfg["n_test"], seed)].astype(np.float64) / 255
        size = clean.shape[1]
        ds_key = f"classical/{item.run['dataset']}/{item.run['resolution']}"
        do_classical = ds_key not in classical_done
        classical_done.add(ds_key)
        examples = [("clean", clean[0])]
        for sigma in cfg["noise"]:
            noisy = add_noise(clean, sigma, np.random.default_rng(seed))
            _score(rows, item.key, "noise", sigma, "none (corrupted)", clean, noisy)
            restored = vae_restore(item.model, noisy)
            _score(rows, item.key, "noise", sigma, "VAE reconstruction", clean, restored)
            if do_classical:
                for name, fn in denoisers(sigma).items():
                    _score(rows, ds_key, "noise", sigma, name, clean, np.stack([fn(im) for im in noisy]))
            if sigma == cfg["noise"][len(cfg["noise"]) // 2]:
                examples += [(f"noise {sigma}", noisy[0]), ("VAE", restored[0])]
        masks = {"centre block": center_mask(size, cfg["center_fraction"]),
                 "random squares": random_squares_mask(size, cfg["random_squares"], cfg["square_fraction"], np.random.default_rng(seed))}
        for name, mask in masks.items():
            masked = np.where(mask[None, :, :, None], 0.0, clean)
            severity = float(mask.mean())
            _score(rows, item.key, name, severity, "none (corrupted)", clean, masked)
            once = vae_restore(item.model, masked, mask, 0)
            _score(rows, item.key, name, severity, "VAE reconstruction", clean, once)
            iterated = vae_restore(item.model, masked, mask, cfg["inpaint_iterations"])
            _score(rows, item.key, name, severity, f"VAE, {cfg['inpaint_iterations']} clamped iterations", clean, iterated)
            if do_classical:
                _score(rows, ds_key, name, severity, "biharmonic inpainting", clean,
                       np.stack([inpaint_biharmonic(im, mask, channel_axis=-1) for im in masked]))
            if name == "centre block":
                examples += [("centre masked", masked[0]), ("VAE clamped", iterated[0]),
                             ("biharmonic", inpaint_biharmonic(masked[0], mask, channel_axis=-1))]
        strip = (np.stack([e[1] for e in examples]) * 255).round().astype(np.uint8)
        figure.append((item.key, [(" | ".join(e[0] for e in examples), tile(strip, len(examples)))]))
    paths = out_paths(out_dir)
    panels(figure, paths["figure"], width=6.0)
    table = pd.DataFrame(rows, columns=["run", "corruption", "severity", "method", "n", "psnr", "ssim"])
    write_csv(paths["table"], table)
    return table
