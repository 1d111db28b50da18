"""The variations report's post-processing pipeline, step by step: saturation and contrast ->
dark-channel-prior dehazing -> bilateral smoothing -> unsharp masking. Each step's effect is measured
cumulatively on reconstructions (MSE and SSIM against the originals, sharpness) and on generated
samples (sharpness, and Inception FID against the cached real features). A strength of 0 (1 for the
saturation and contrast factors) switches a step off exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.ndimage import minimum_filter
from skimage.color import hsv2rgb, rgb2hsv
from skimage.filters import unsharp_mask
from skimage.restoration import denoise_bilateral

from facegen.evaluation.real import load_real
from facegen.experiments.common import load_runs, out_paths, tile
from facegen.experiments.figures import panels
from facegen.io import write_csv
from facegen.metrics import distribution, inception
from facegen.metrics.pixel_quality import laplacian_variance, reconstruction_errors
from facegen.samplers import PriorSampler
from facegen.tensors import to_tensor, to_uint8
from facegen.paths import real_path


def saturation_contrast(im: np.ndarray, saturation: float, contrast: float) -> np.ndarray:
    out = im
    if saturation != 1:
        hsv = rgb2hsv(out)
        hsv[..., 1] = np.clip(hsv[..., 1] * saturation, 0, 1)
        out = hsv2rgb(hsv)
    if contrast != 1:
        out = np.clip((out - out.mean()) * contrast + out.mean(), 0, 1)
    return out


def dehaze(im: np.ndarray, omega: float, window: int, t_min: float = 0.1) -> np.ndarray:
    """He et al. 2009: transmission from the dark channel, airlight from its brightest 0.1% pixels."""
    if omega == 0:
        return im
    dark = minimum_filter(im.min(axis=2), size=window, mode="nearest")
    n = max(1, dark.size // 1000)
    brightest = np.argsort(dark.ravel())[-n:]
    airlight = np.maximum(im.reshape(-1, 3)[brightest].mean(0), 1e-3)
    t = 1 - omega * minimum_filter((im / airlight).min(axis=2), size=window, mode="nearest")
    t = np.maximum(t, t_min)[..., None]
    return np.clip((im - airlight) / t + airlight, 0, 1)


def bilateral(im: np.ndarray, sigma_color: float, sigma_spatial: float) -> np.ndarray:
    if sigma_color == 0 or sigma_spatial == 0:
        return im
    return denoise_bilateral(im, sigma_color=sigma_color, sigma_spatial=sigma_spatial, mode="reflect", channel_axis=-1)


def unsharp(im: np.ndarray, radius: float, amount: float) -> np.ndarray:
    if amount == 0 or radius == 0:
        return im
    # Channel by channel on contiguous planes: unsharp_mask(channel_axis=-1) returned out-of-range values
    # for strided channel views here (scikit-image 0.26).
    return np.stack([unsharp_mask(np.ascontiguousarray(im[..., c]), radius=radius, amount=amount) for c in range(im.shape[-1])], -1)


def steps(cfg: dict) -> list[tuple[str, callable]]:
    return [
        ("saturation/contrast", lambda im: saturation_contrast(im, cfg["saturation"], cfg["contrast"])),
        ("dehaze", lambda im: dehaze(im, cfg["dehaze_omega"], cfg["dehaze_window"])),
        ("bilateral", lambda im: bilateral(im, cfg["bilateral_sigma_color"], cfg["bilateral_sigma_spatial"])),
        ("unsharp", lambda im: unsharp(im, cfg["unsharp_radius"], cfg["unsharp_amount"])),
    ]


def pipeline_stages(images: np.ndarray, cfg: dict) -> list[tuple[str, np.ndarray]]:
    """[('original', x), (step 1, after 1), (step 2, after 1+2), ...] for float images in [0, 1]."""
    out, current = [("none", images)], images
    for name, fn in steps(cfg):
        current = np.stack([fn(im) for im in current])
        out.append((name, current))
    return out


def run(config: dict, out_dir) -> pd.DataFrame:
    ex = config["latent_experiments"]
    cfg, seed = ex["postprocess"], ex["seed"]
    ev = config["evaluation"]
    nets = {}
    rows, figure = [], []
    for item in load_runs(config):
        path = real_path(config, {**item.run, "split": ev["real_split"]})
        real = load_real(path)
        mode = inception.reference_mode(ev["inception_mode"], real["protocol"]["inception_mode"], f"the real features {path}")
        if mode not in nets:
            nets[mode] = inception.extractor(mode=mode)
        net = nets[mode]
        samples = PriorSampler().fit(item.model, None).sample(cfg["n"], seed=seed) if not item.ckpt["condition_encoding"] else None
        recon_stages = None
        if item.is_vae:
            x = item.images[item.rows("test", cfg["n"], seed)]
            recon = to_uint8(item.model.reconstruct(to_tensor(x), None, deterministic=True)).astype(np.float64) / 255
            recon_stages = pipeline_stages(recon, cfg)
        sample_stages = pipeline_stages(samples.astype(np.float64) / 255, cfg) if samples is not None else None
        if recon_stages is None and sample_stages is None:
            figure.append((item.key, []))
            continue
        strip = []
        for i, (name, _) in enumerate(recon_stages or sample_stages):
            row = {"run": item.key, "step_index": i, "step": name}
            if recon_stages is not None:
                r = recon_stages[i][1]
                err = reconstruction_errors(x, r)
                row.update({"recon_mse": float(err["mse"].mean()), "recon_ssim": float(err["ssim"].mean()),
                            "recon_sharpness": float(laplacian_variance(r).mean())})
                strip.append(r[0])
            if sample_stages is not None:
                s = (sample_stages[i][1] * 255).round().astype(np.uint8)
                feats = inception.features(s, net, ev["batch_size"], desc=f"inception {item.key} {name}")
                row.update({"sample_sharpness": float(laplacian_variance(s).mean()), "n_samples": len(s),
                            "sample_fid": distribution.fid_from_features(feats, real)})
                if recon_stages is None:
                    strip.append(s[0] / 255)
            rows.append(row)
        label = "reconstruction" if recon_stages is not None else "sample"
        figure.append((item.key, [(f"{label}: " + " -> ".join(n for n, _ in (recon_stages or sample_stages)),
                                   tile((np.stack(strip) * 255).round().astype(np.uint8), len(strip)))]))
    paths = out_paths(out_dir)
    panels(figure, paths["figure"], width=6.0)
    table = pd.DataFrame(rows)
    write_csv(paths["table"], table)
    return table
