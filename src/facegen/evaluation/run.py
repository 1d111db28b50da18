"""Evaluate one trained run: its samples scored by facegen.metrics.evaluate against the cached real
features, and for VAEs per-image reconstruction quality on the test split, likelihood and LPIPS.

Writes results/eval/{dataset}/{resolution}/{model}/{seed}/metrics.json (every number with its
protocol) and per_image.parquet (one row per test image, kept for the bias analysis)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from facegen import metrics as metrics_api
from facegen.data.prepared import PreparedDataset, seeded_subset
from facegen.evaluation.real import load_real, protocol_record, real_indices
from facegen.evaluation.samples import save_samples
from facegen.metrics import inception, likelihood, spaces
from facegen.metrics import lpips as lpips_metric
from facegen.metrics.pixel_quality import laplacian_variance, reconstruction_errors
from facegen.models import VAEModel
from facegen.models.checkpoint import condition_labels, load_model
from facegen.paths import eval_files, train_files
from facegen.records import read_card, write_metrics, write_per_image
from facegen.samplers import SamplerError, make_sampler
from facegen.tensors import to_tensor
from facegen.devices import pick_device

log = logging.getLogger(__name__)


def generate(model, ckpt: dict, images, meta: pd.DataFrame, ev: dict, reference_rows=()) -> tuple[np.ndarray, str]:
    """n_generated uint8 samples and the sampler actually used. Conditional models get labels drawn
    from the training split, so samples follow the training data's attribute mix. A fitted sampler
    (gmm, two_stage) is fitted on training images outside ``reference_rows``, the FID reference, so
    that the samples are not scored against the very images their sampler was fitted to."""
    n, seed, name = ev["n_generated"], ev["seed"], ev["sampler"]
    train = np.flatnonzero(meta["split"].to_numpy() == "train")
    y = None
    labels = condition_labels(meta, ckpt)
    if labels is not None:
        y = labels[np.random.default_rng(seed).choice(train, n, replace=True)]
    if name != "prior" and not model.latent_density():
        log.info("sampler '%s' needs an unconditional VAE; %s uses the prior", name, ckpt["spec"]["model"])
        name = "prior"
    pool = np.setdiff1d(train, np.asarray(reference_rows, dtype=np.int64))
    if name != "prior" and len(pool) < 2:
        raise ValueError(f"sampler '{name}' is fitted on training images outside the FID reference, and the reference "
                         f"holds the whole training split; lower evaluation.n_real or use the prior sampler")
    pool = pool if len(pool) else train  # the prior sampler fits nothing
    fit_rows = seeded_subset(pool, 5000, seed)
    try:
        sampler = make_sampler(name).fit(model, np.asarray(images[fit_rows]), seed=seed)
    except SamplerError as exc:
        raise ValueError(str(exc)) from exc
    return sampler.sample(n, seed=seed, y=y), name


@torch.no_grad()
def reconstruct(model: VAEModel, x: np.ndarray, y: np.ndarray | None, batch: int = 128) -> np.ndarray:
    """Deterministic (z = mu) reconstructions as floats in [0, 1], (N, H, W, 3)."""
    out = []
    for i in range(0, len(x), batch):
        xb = to_tensor(x[i:i + batch])
        yb = None if y is None else torch.as_tensor(y[i:i + batch], dtype=torch.float32)
        out.append(model.reconstruct(xb, yb, deterministic=True).float().clamp(0, 1).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out).astype(np.float64)


def _batched(fn, x: np.ndarray, y: np.ndarray | None, batch: int = 128) -> dict[str, np.ndarray]:
    parts: dict[str, list] = {}
    for i in range(0, len(x), batch):
        xb = to_tensor(x[i:i + batch])
        yb = None if y is None else torch.as_tensor(y[i:i + batch], dtype=torch.float32)
        for k, v in fn(xb, yb).items():
            parts.setdefault(k, []).append(np.asarray(v))
    return {k: np.concatenate(v) for k, v in parts.items()}


def decoder_variance(model: VAEModel, ckpt: dict, images, meta: pd.DataFrame, ev: dict) -> float:
    """The maximum-likelihood variance of a Gaussian decoder, the per-pixel MSE of deterministic
    reconstructions, fitted on up to n_recon images of evaluation.decoder_variance_split (not the
    scored images, which would make the bound optimistic)."""
    rows = real_indices(meta, ev["decoder_variance_split"], ev["n_recon"] or len(meta), ev["seed"])
    x = np.asarray(images[rows])
    labels = condition_labels(meta, ckpt)
    recon = reconstruct(model, x, None if labels is None else labels[rows])
    return float(max(np.mean((recon - x / 255.0) ** 2), 1e-8))


def iwae_positions(n_scored: int, ev: dict) -> np.ndarray:
    """Positions among the n_scored reconstruction rows whose IWAE bound is computed: n_iwae of them, seeded."""
    return seeded_subset(n_scored, ev["n_iwae"], ev["seed"])


def reconstruction_metrics(model: VAEModel, ckpt: dict, images, meta: pd.DataFrame, ev: dict, lp) -> tuple[pd.DataFrame, dict]:
    rows = real_indices(meta, ev["recon_split"], ev["n_recon"] or len(meta), ev["seed"])
    x = np.asarray(images[rows])
    labels = condition_labels(meta, ckpt)
    y = None if labels is None else labels[rows]
    recon = reconstruct(model, x, y)
    table = pd.DataFrame({"row": rows, "id": meta["id"].to_numpy()[rows]})
    for k, v in reconstruction_errors(x, recon).items():
        table[k] = v
    table["lpips"] = lpips_metric.distances(lp, x, recon)
    table["sharpness_recon"] = laplacian_variance(recon)
    for k, v in _batched(lambda xb, yb: likelihood.kl_per_image(model, xb, yb, ev["seed"]), x, y).items():
        table[k] = v
    sigma2 = decoder_variance(model, ckpt, images, meta, ev)
    # A seeded draw of the scored rows, not their first n_iwae: rows follow the metadata's order, and
    # UTKFace's is sorted by file name, which begins with the age.
    iwae = iwae_positions(len(x), ev)
    bpd = _batched(lambda xb, yb: {"bpd": likelihood.iwae_bits_per_dim(model, xb, yb, sigma2, ev["iwae_samples"], ev["seed"])},
                   x[iwae], None if y is None else y[iwae])["bpd"]
    table["iwae_bpd"] = np.nan
    table.loc[iwae, "iwae_bpd"] = bpd
    summary = {k: float(table[k].mean()) for k in table.columns if k not in ("row", "id", "iwae_bpd")}
    summary["iwae_bpd"] = float(np.nanmean(bpd))
    summary["decoder_sigma2"] = sigma2
    summary["sharpness_real_test"] = float(laplacian_variance(x).mean())
    return table, summary


def evaluate_run(config: dict, run_dir: str | Path, real_path: str | Path, out_dir: str | Path) -> dict:
    ev = config["evaluation"]
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    torch.manual_seed(ev["seed"])
    model, ckpt = load_model(train_files(run_dir)["model"])
    spec = ckpt["spec"]
    card = read_card(run_dir)
    real = load_real(real_path)
    if real["protocol"]["resolution"] != spec["resolution"] or real["protocol"]["dataset"] != spec["dataset"]:
        raise ValueError(f"real features {real_path} are for {real['protocol']['dataset']}/{real['protocol']['resolution']}, "
                         f"the run is {spec['dataset']}/{spec['resolution']}")
    if ev["kid_subset_size"] > len(real["features"]):
        raise ValueError(f"KID subset size {ev['kid_subset_size']} exceeds the number of real images with features "
                         f"({len(real['features'])} in {real_path}); lower evaluation.kid_subset_size or use a larger split")
    data = PreparedDataset.of(config, spec["dataset"])
    images, meta = data.images(spec["resolution"]), data.meta
    t0 = time.perf_counter()
    samples, sampler = generate(model, ckpt, images, meta, ev, real["rows"] if real["protocol"]["split"] == "train" else ())
    inception.check_images(samples, "generated samples", spec["resolution"])
    embedded = spaces.embed(samples, ev, pick_device(ev["device"]), card["run"], real, f"the real features {real_path}")
    # one read of the memory-mapped array, used by every metric that compares with real images
    scored = metrics_api.SampleSet(samples, embedded.features, real, np.asarray(images[real["rows"]]), embedded.unavailable)
    metrics, measured = metrics_api.evaluate(scored, ev)
    per_image = None
    if model.encodes:
        per_image, recon = reconstruction_metrics(model, ckpt, images, meta, ev, scored.lpips)
        metrics.update({f"recon_{k}" if not k.startswith(("kl", "iwae", "decoder", "sharpness")) else k: v for k, v in recon.items()})
    protocol = {**protocol_record(len(samples), real, sampler, ev["seed"], spec["resolution"], embedded.protocol, measured),
                "recon_split": ev["recon_split"] if per_image is not None else None,
                "n_recon": int(len(per_image)) if per_image is not None else 0,
                "iwae_samples": ev["iwae_samples"] if per_image is not None else None,
                "decoder_variance_split": ev["decoder_variance_split"] if per_image is not None else None}
    result = {"run": card["run"], "dataset": spec["dataset"], "resolution": spec["resolution"], "model": spec["model"],
              "seed": spec["seed"], "arch": spec["arch"], "family": model.family, "train_minutes": card["train_seconds"] / 60,
              "protocol": protocol, "metrics": metrics,
              "timing": {"eval_seconds": time.perf_counter() - t0,
                         **{f"{name}_img_per_s": len(samples) / max(t, 1e-9) for name, t in embedded.seconds.items()}}}
    save_samples(eval_files(out_dir)["samples"], samples[:ev["save_samples"]], embedded.arrays())
    write_per_image(out_dir, per_image if per_image is not None else pd.DataFrame({"row": pd.Series(dtype=int)}))
    write_metrics(out_dir, result)
    return result
