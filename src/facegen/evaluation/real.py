"""Real-image Inception features, once per dataset/resolution/split: the cached reference of every
distribution metric (results/eval/real/{dataset}/{resolution}/{split}.npz)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from facegen.data.prepared import PreparedDataset, split_rows
from facegen.io import atomic_path, read_json, write_json


def real_indices(meta: pd.DataFrame, split: str, n: int, seed: int) -> np.ndarray:
    """Sorted rows of ``split``, a seeded subset of ``n`` if the split is larger."""
    rows = split_rows(meta, split, n, seed)
    if len(rows) == 0:
        raise ValueError(f"the '{split}' split is empty; choose evaluation.real_split from the splits the data has")
    return rows


def real_features(config: dict, dataset: str, resolution: int, split: str, out: str | Path,
                  reference: str | Path | None = None) -> dict:
    """Write ``out`` (.npz with features, mu, sigma, rows) and ``out`` .json (the protocol).

    With ``reference`` (the real features every run is compared with), this is the floor: as many real
    images of ``split`` as each run generates, scored against the reference exactly as a run's samples
    are. No model can be expected to beat it, and it shows the bias of FID at this sample count."""
    # Imported here: the readers above serve every experiment job, which should not pay for
    # torch-fidelity's imports (torchvision and torch._dynamo, about 2.5 s).
    from facegen.metrics import inception
    from facegen.metrics.distribution import statistics
    from facegen.training.trainer import pick_device

    ev = config["evaluation"]
    data = PreparedDataset.of(config, dataset)
    images, meta = data.images(resolution), data.meta
    rows = real_indices(meta, split, ev["n_generated"] if reference else ev["n_real"], ev["seed"])
    t0 = time.perf_counter()
    ref = load_real(reference) if reference else None
    mode = ev["inception_mode"] if ref is None else inception.reference_mode(ev["inception_mode"], ref["protocol"]["inception_mode"],
                                                                               f"the real features {reference}")
    net = inception.extractor(mode=mode, device=pick_device(ev["device"]))
    feats = inception.features(images[rows], net, ev["batch_size"], desc=f"inception {dataset}/{resolution}/{split}")
    stats = statistics(feats)
    with atomic_path(out, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, features=feats, mu=stats["mu"], sigma=stats["sigma"], rows=rows)
    protocol = {"dataset": dataset, "resolution": resolution, "split": split, "n_real": int(len(rows)),
                "seed": ev["seed"], "inception_mode": net.facegen_mode, "inception_mode_requested": ev["inception_mode"],
                "seconds": time.perf_counter() - t0,
                "img_per_s": len(rows) / max(time.perf_counter() - t0, 1e-9)}
    if ref is not None:
        from facegen.metrics.pixel_fid import approx_fid, reference_scores

        reference_images = np.asarray(images[ref["rows"]])
        pixel = {"approx_fid_pixel": approx_fid(reference_images, images[rows]), **reference_scores(reference_images)}
        protocol["floor"] = floor_record(config, dataset, resolution, split, feats, ref, pixel)
    write_json(Path(out).with_suffix(".json"), protocol)
    return protocol


def floor_record(config: dict, dataset: str, resolution: int, split: str, feats: np.ndarray, ref: dict,
                 pixel: dict | None = None) -> dict:
    """The floor in the shape of a run's metrics.json, so tables list it beside the runs. ``pixel``: the
    pixel approximate FID of these real images and its reference scores (facegen.metrics.pixel_fid)."""
    from facegen.metrics import distribution

    ev = config["evaluation"]
    metrics = {"fid": distribution.fid_from_features(feats, ref), **(pixel or {})}
    metrics.update(distribution.kid(feats, ref["features"], ev["kid_subsets"], min(ev["kid_subset_size"], len(feats)), ev["seed"]))
    for name, keys, fn in (("precision/recall", ("precision", "recall"), lambda: distribution.precision_recall(feats, ref["features"], ev["prc_k"])),
                           ("density/coverage", ("density", "coverage"), lambda: distribution.density_coverage(feats, ref["features"], ev["dc_k"]))):
        try:
            metrics.update(fn())
        except ValueError as exc:  # a split smaller than k + 1 images (tiny test profiles): counted, not fatal
            metrics.update({k: None for k in keys})
            metrics.update({f"{k}_note": f"unavailable: {name} on {len(feats)} {split} images: {exc}" for k in keys})
    model = f"real_{split}_floor"
    return {"run": f"{dataset}/{resolution}/{model}/0", "dataset": dataset, "resolution": resolution, "model": model,
            "seed": 0, "arch": "real", "family": "real", "train_minutes": None, "metrics": metrics,
            "protocol": {"n_generated": int(len(feats)), "n_real": int(len(ref["features"])),
                         "real_split": ref["protocol"]["split"], "sampler": f"real {split} images",
                         "seed": ev["seed"], "resolution": resolution, "inception_mode": ref["protocol"]["inception_mode"],
                         "kid_subsets": ev["kid_subsets"], "kid_subset_size": min(ev["kid_subset_size"], len(feats)),
                         "prc_k": ev["prc_k"], "dc_k": ev["dc_k"]}}


def load_real(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"real-image features {path} not found; run `facegen real-features` for it first")
    with np.load(path) as z:
        out = {k: z[k] for k in z.files}
    out["protocol"] = read_json(path.with_suffix(".json"))
    return out
