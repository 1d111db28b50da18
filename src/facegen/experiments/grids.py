"""Sample grids for every model and reconstruction grids (input beside its z = mu reconstruction)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from facegen.experiments.common import load_runs, out_paths, tile
from facegen.experiments.figures import panels
from facegen.io import write_csv
from facegen.metrics.pixel_quality import laplacian_variance, reconstruction_errors
from facegen.models.checkpoint import condition_labels
from facegen.samplers import PriorSampler
from facegen.tensors import to_tensor, to_uint8


def run(config: dict, out_dir) -> pd.DataFrame:
    ex = config["latent_experiments"]
    side, seed = ex["grid"], ex["seed"]
    rows, figure = [], []
    for item in load_runs(config):
        labels = None
        if item.ckpt["condition_encoding"]:
            train = item.rows("train", None, seed)
            labels = condition_labels(item.meta, item.ckpt)[np.random.default_rng(seed).choice(train, side * side)]
        samples = PriorSampler().fit(item.model, None).sample(side * side, seed=seed, y=labels)
        panel = [("prior samples", tile(samples, side))]
        row = {"run": item.key, "n_samples": len(samples), "sample_sharpness": float(laplacian_variance(samples).mean())}
        if hasattr(item.model, "reconstruct"):
            test = item.rows("test", side * side // 2, seed)
            x = item.images[test]
            y = None
            if item.ckpt["condition_encoding"]:
                y = torch.as_tensor(condition_labels(item.meta, item.ckpt)[test], dtype=torch.float32)
            recon = to_uint8(item.model.reconstruct(to_tensor(x), y, deterministic=True))
            pairs = np.stack([x, recon], axis=1).reshape(-1, *x.shape[1:])  # input, recon, input, recon...
            panel.append(("test input | reconstruction", tile(pairs, 2 * max(1, side // 2))))
            row.update({"n_reconstructions": len(x), "recon_mse": float(reconstruction_errors(x, recon)["mse"].mean())})
        rows.append(row)
        figure.append((item.key, panel))
    paths = out_paths(out_dir)
    panels(figure, paths["figure"])
    table = pd.DataFrame(rows)
    write_csv(paths["table"], table)
    return table
