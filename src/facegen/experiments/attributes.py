"""Attribute arithmetic (the VAE/GAN study's smile vector): v = mean(z | attr) - mean(z | not attr)
over training faces, added at strength alpha to test faces, verified with the attribute classifier:
how P(attr) moves with alpha, and how far the other attributes leak."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from facegen.experiments.attribute_classifier import attribute_labels, load_classifier, predict
from facegen.paths import attribute_classifier
from facegen.experiments.common import decode, encode_mean, load_runs, out_paths, tile
from facegen.experiments.figures import panels
from facegen.io import write_csv
from facegen.tensors import to_uint8


def attribute_vector(z: torch.Tensor, has: np.ndarray) -> torch.Tensor:
    has = torch.as_tensor(has > 0.5)
    if has.all() or not has.any():
        raise ValueError("an attribute vector needs faces with and without the attribute")
    return z[has].mean(0) - z[~has].mean(0)


def shift(z: torch.Tensor, v: torch.Tensor, alpha: float) -> torch.Tensor:
    return z + alpha * v


def run(config: dict, out_dir) -> pd.DataFrame:
    ex = config["latent_experiments"]
    cfg, seed = ex["attributes"], ex["seed"]
    rows, figure = [], []
    for item in load_runs(config):
        ds, res = item.run["dataset"], item.run["resolution"]
        path = attribute_classifier(config, ds, res)
        if not item.is_vae or not path.is_file():
            figure.append((item.key, []))
            continue
        clf, names = load_classifier(path)
        labels = attribute_labels(item.meta, names, ds)
        fit = item.rows("train", cfg["n_fit"], seed)
        z_fit = encode_mean(item.model, item.images[fit])
        test = item.rows("test", cfg["n_test"], seed)
        z_test = encode_mean(item.model, item.images[test])
        panel = []
        for a, name in enumerate(names):
            try:
                v = attribute_vector(z_fit, labels[fit, a])
            except ValueError as exc:
                rows.append({"run": item.key, "attribute": name, "alpha": float("nan"), "n_test": len(test),
                             "p_attribute": float("nan"), "note": f"unavailable: {exc} among {len(fit)} training faces"})
                continue
            for alpha in cfg["alphas"]:
                prob = predict(clf, to_uint8(decode(item.model, shift(z_test, v, alpha))))
                rows.append({"run": item.key, "attribute": name, "alpha": alpha, "n_test": len(test),
                             "p_attribute": float(prob[:, a].mean()),
                             **{f"p_{other}": float(prob[:, b].mean()) for b, other in enumerate(names)}})
            without = np.flatnonzero(labels[test, a] < 0.5)
            face = z_test[without[:1]] if len(without) else z_test[:1]
            strip = to_uint8(decode(item.model, torch.cat([shift(face, v, al) for al in cfg["alphas"]])))
            panel.append((f"{name}: alpha {cfg['alphas'][0]} .. {cfg['alphas'][-1]}", tile(strip, len(cfg["alphas"]))))
        figure.append((item.key, panel))
    table = pd.DataFrame(rows)
    if len(table):
        # Leakage: mean absolute change of the other attributes' probabilities from alpha = 0.
        names_all = [c.removeprefix("p_") for c in table.columns if c.startswith("p_") and c != "p_attribute"]
        leak = []
        for (run_key, attr), grp in table.groupby(["run", "attribute"], sort=False):
            if grp["alpha"].isna().all():  # the attribute's vector was unavailable (see its note)
                leak.append(pd.Series(float("nan"), index=grp.index))
                continue
            ref = grp.loc[(grp["alpha"] - 0).abs().idxmin()]
            others = [n for n in names_all if n != attr and f"p_{n}" in grp]
            leak.append(grp[[f"p_{n}" for n in others]].sub(ref[[f"p_{n}" for n in others]]).abs().mean(axis=1))
        table["leakage"] = pd.concat(leak).sort_index()
    paths = out_paths(out_dir)
    panels(figure, paths["figure"], width=4.0)
    write_csv(paths["table"], table)
    return table
