"""Real-image features in each feature space, once per dataset/resolution/split: the cached reference of every
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
    """Write ``out`` (.npz with each feature space's features, mu and sigma, and the rows) and ``out`` .json
    (the protocol; a space that could not be computed here is listed under ``unavailable`` with the reason).

    With ``reference`` (the real features every run is compared with), this is the floor: as many real
    images of ``split`` as each run generates, scored against the reference exactly as a run's samples
    are, by the same facegen.metrics.evaluate. No model can be expected to beat it, and it shows the bias
    of FID at this sample count."""
    # Imported here: the readers above serve every experiment job, which should not pay for
    # torch-fidelity's imports (torchvision and torch._dynamo, about 2.5 s).
    from facegen.metrics import spaces
    from facegen.metrics.distribution import statistics
    from facegen.devices import pick_device

    ev = config["evaluation"]
    data = PreparedDataset.of(config, dataset)
    images, meta = data.images(resolution), data.meta
    rows = real_indices(meta, split, ev["n_generated"] if reference else ev["n_real"], ev["seed"])
    t0 = time.perf_counter()
    ref = load_real(reference) if reference else None
    embedded = spaces.embed(images[rows], ev, pick_device(ev["device"]), f"{dataset}/{resolution}/{split}", ref,
                            f"the real features {reference}")
    arrays = {}
    for name, feats in embedded.features.items():
        stats, keys = statistics(feats), spaces.SPACES[name].keys
        arrays.update({keys["features"]: feats, keys["mu"]: stats["mu"], keys["sigma"]: stats["sigma"]})
    with atomic_path(out, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays, rows=rows)
    seconds = time.perf_counter() - t0
    requested = {k: v for name in embedded.features for k, v in spaces.SPACES[name].requested(ev).items()}
    protocol = {"dataset": dataset, "resolution": resolution, "split": split, "n_real": int(len(rows)),
                "seed": ev["seed"], **embedded.protocol, **requested, "seconds": seconds, "img_per_s": len(rows) / max(seconds, 1e-9)}
    if embedded.unavailable:
        protocol["unavailable"] = embedded.unavailable
    if ref is not None:
        protocol["floor"] = floor_record(config, dataset, resolution, split, np.asarray(images[rows]), embedded, ref,
                                         np.asarray(images[ref["rows"]]))
    write_json(Path(out).with_suffix(".json"), protocol)
    return protocol


def floor_record(config: dict, dataset: str, resolution: int, split: str, scored: np.ndarray, embedded, ref: dict,
                 reference_images: np.ndarray) -> dict:
    """The floor in the shape of a run's metrics.json, so tables list it beside the runs: the floor's
    metrics of facegen.metrics, computed on ``scored`` real images (``embedded``: their features) against
    the reference, plus what the pixel approximate FID gives for a mean-face and a perfect generator."""
    from facegen import metrics as metrics_api
    from facegen.metrics.pixel_fid import reference_scores

    ev = {**config["evaluation"], "kid_subset_size": min(config["evaluation"]["kid_subset_size"], len(scored))}
    images = metrics_api.SampleSet(scored, embedded.features, ref, reference_images, embedded.unavailable, f"{split} images")
    metrics, measured = metrics_api.evaluate(images, ev, floor=True)
    metrics.update(reference_scores(reference_images))
    model = f"real_{split}_floor"
    return {"run": f"{dataset}/{resolution}/{model}/0", "dataset": dataset, "resolution": resolution, "model": model,
            "seed": 0, "arch": "real", "family": "real", "train_minutes": None, "metrics": metrics,
            "protocol": protocol_record(len(scored), ref, f"real {split} images", ev["seed"], resolution, embedded.protocol, measured)}


def protocol_record(n_generated: int, ref: dict, sampler: str, seed: int, resolution: int, spaces: dict, measured: dict) -> dict:
    """The protocol of a scored set, a run's samples or a floor's real images, in one shape."""
    return {"n_generated": int(n_generated), "n_real": int(len(ref["rows"])), "real_split": ref["protocol"]["split"],
            "sampler": sampler, "seed": seed, "resolution": resolution, **spaces, **measured}


def load_real(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"real-image features {path} not found; run `facegen real-features` for it first")
    with np.load(path) as z:
        out = {k: z[k] for k in z.files}
    out["protocol"] = read_json(path.with_suffix(".json"))
    return out
