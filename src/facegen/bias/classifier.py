"""The demographic classifier (chapter 1 of the conv-VAE report): 3 conv+pool blocks with BN and
ReLU and one head per target: classes (gender, race) by cross-entropy; age either as a label
distribution over 1-year bins read out by its expected value (DLDL, Gao et al. 2018; the default) or
by plain L1 regression. One version reads UTKFace 48x48 grayscale (the report's setting, for its
anchors), another RGB at the generation resolution (to label generated samples). The network, its
losses and the training loop are those of facegen.face_classifiers; this module holds the targets, the metrics and
the checkpoint. The metrics JSON carries the test split's metrics under their plain names and the
validation split's accuracies and errors as val_<name>: choices about the classifier are made on val,
and test, which the findings and the confusion correction read, is scored once."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from torch import nn

from facegen.bias import diagnostics
from facegen.bias.diagnostics import SCALAR_METRICS, VAL_PREFIX
from facegen.face_classifiers import DemographicCNN, bin_centres, fit, make_schedule, regression_loss
from facegen.config import ConfigError
from facegen.data.prepared import PreparedDataset
from facegen.data.summary import natural_key
from facegen.io import save_torch, write_json
from facegen.tensors import to_tensor

log = logging.getLogger(__name__)

def encode_targets(meta: pd.DataFrame, targets: dict[str, str], dataset: str) -> tuple[dict, dict[str, np.ndarray]]:
    """Head sizes (1 for regression) and per-target arrays: class indices (int) or values (float, own units)."""
    heads, arrays = {}, {}
    for col, kind in targets.items():
        if col not in meta.columns:
            raise ConfigError(f"bias.datasets.{dataset}.targets names '{col}', not a column of the {dataset} metadata")
        if kind == "class":
            cats = categories(meta, col)
            heads[col] = len(cats)
            arrays[col] = meta[col].map({c: i for i, c in enumerate(cats)}).to_numpy(np.int64)
        else:
            heads[col] = 1
            arrays[col] = meta[col].to_numpy(np.float32)
    return heads, arrays


def categories(meta: pd.DataFrame, column: str) -> list:
    """A class target's codes in head order."""
    return sorted(meta[column].dropna().unique().tolist())


def class_names(meta: pd.DataFrame, column: str) -> list[str]:
    """Readable names of a class target's sorted codes, from its '<column>_name' column where there is one."""
    cats = categories(meta, column)
    if f"{column}_name" not in meta.columns:
        return [str(c) for c in cats]
    names = meta.drop_duplicates(column).set_index(column)[f"{column}_name"]
    return [str(names[c]) for c in cats]


@torch.no_grad()
def predict(model: DemographicCNN, images: np.ndarray, batch: int = 256) -> dict[str, np.ndarray]:
    """Per target: class probabilities (N, K) or predicted values (N,) in the target's units (age in years),
    each the average over the image and its mirror image (training flips faces, so both are in-distribution)."""
    model.eval()
    parts: dict[str, list] = {}
    for i in range(0, len(images), batch):
        x = to_tensor(images[i:i + batch])
        plain, mirrored = model(x), model(x.flip(-1))
        for name, out in plain.items():
            value = ((model.value(name, out) + model.value(name, mirrored[name])) / 2 if name in model.regression
                     else (torch.softmax(out, 1) + torch.softmax(mirrored[name], 1)) / 2)
            parts.setdefault(name, []).append(value.numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def train_demographic(config: dict, dataset: str, source: str, out: str | Path) -> dict:
    """``source``: 'gray48' (images_gray48.npy) or a resolution such as '64' (images_64.npy)."""
    bcfg = config["bias"]
    dcfg = bcfg["datasets"].get(dataset)
    if not dcfg or not dcfg.get("targets"):
        raise ConfigError(f"bias.datasets.{dataset}.targets is not set; name the metadata columns to classify")
    data = PreparedDataset.of(config, dataset)
    images, meta = data.images(source), data.meta
    heads, targets = encode_targets(meta, dcfg["targets"], dataset)
    ccfg, seed = bcfg["classifier"], bcfg["seed"]
    train, val, test = data.rows("train", ccfg["max_images"] or None, seed), data.rows("val"), data.rows("test")
    centres = ({name: bin_centres(targets[name][train], ccfg["bin_width"])
                for name, kind in dcfg["targets"].items() if kind == "regression"}
               if ccfg["regression_head"] == "dldl" else {})
    heads.update({name: len(c) for name, c in centres.items()})
    torch.manual_seed(seed)
    model = DemographicCNN(1 if images.ndim == 3 else 3, heads, images.shape[1], centres=centres)
    opt = torch.optim.AdamW(model.parameters(), lr=ccfg["lr"], weight_decay=ccfg["weight_decay"])
    sched = make_schedule(ccfg, opt, -(-len(train) // ccfg["batch_size"]))

    def loss(logits, idx):
        total = 0
        for name, kind in dcfg["targets"].items():
            y = torch.from_numpy(targets[name][train[idx]])
            total = total + (nn.functional.cross_entropy(logits[name], y) if kind == "class"
                             else regression_loss(model, name, logits[name], y, ccfg["label_sigma"]))
        return total

    t0 = time.perf_counter()
    fit(model, np.asarray(images[train]), loss, opt, ccfg["epochs"], ccfg["batch_size"], seed,
        f"demographic classifier {dataset}/{source}", sched)
    # Val is where the classifier's design is chosen (head, epochs, schedule); test is scored once, for the
    # findings and for the confusion matrix that corrects the generated group mix.
    metrics = evaluate_classifier(model, np.asarray(images[test]), meta.iloc[test], targets, test, dcfg["targets"])
    if len(val):
        scored = evaluate_classifier(model, np.asarray(images[val]), meta.iloc[val], targets, val, dcfg["targets"])
        metrics.update({f"{VAL_PREFIX}{k}": v for k, v in scored.items() if k.endswith(SCALAR_METRICS)})
    metrics.update({f"{c}_classes": class_names(meta, c) for c, k in dcfg["targets"].items() if k == "class"})
    metrics.update({"dataset": dataset, "source": source, "n_train": int(len(train)), "n_val": int(len(val)), "n_test": int(len(test)),
                    "epochs": ccfg["epochs"], "schedule": ccfg["schedule"],
                    "regression_head": ccfg["regression_head"], "seconds": time.perf_counter() - t0})
    save_torch(out, {"heads": heads, "targets": dcfg["targets"], "in_channels": 1 if images.ndim == 3 else 3,
                     "size": int(images.shape[1]), "centres": centres,
                     "categories": {c: categories(meta, c) for c, k in dcfg["targets"].items() if k == "class"},
                     "state_dict": model.state_dict()})
    write_json(Path(out).with_suffix(".json"), metrics)
    diagnostics.figure(metrics, diagnostics.figure_path(out))
    log.info("demographic classifier %s/%s: %s", dataset, source,
             {k: v for k, v in metrics.items() if k.endswith(SCALAR_METRICS)})
    return metrics


def evaluate_classifier(model, images, meta, targets, rows, kinds) -> dict:
    pred = predict(model, images)
    out: dict = {}
    for name, kind in kinds.items():
        truth = targets[name][rows]
        if kind == "class":
            guess = pred[name].argmax(1)
            p, r, f, n = precision_recall_fscore_support(truth, guess, zero_division=0)
            out[f"{name}_accuracy"] = float((guess == truth).mean())
            out[f"{name}_confusion"] = confusion_matrix(truth, guess, labels=list(range(pred[name].shape[1]))).tolist()
            out[f"{name}_per_class"] = [{"class": int(k), "precision": float(p[k]), "recall": float(r[k]), "f1": float(f[k]),
                                         "support": int(n[k])} for k in range(len(p))]
            if "age_bucket" in meta.columns:
                buckets = meta["age_bucket"].astype(str).to_numpy()
                out[f"{name}_accuracy_by_age_bucket"] = {b: float((guess[buckets == b] == truth[buckets == b]).mean())
                                                         for b in sorted(set(buckets), key=natural_key)}
        else:
            err = pred[name] - truth
            out[f"{name}_mae"] = float(np.abs(err).mean())
            out[f"{name}_rmse"] = float(np.sqrt((err ** 2).mean()))
            edges = np.arange(0, 121, 5)
            out[f"{name}_histogram"] = {"edges": edges.tolist(), "true": np.histogram(truth, edges)[0].tolist(),
                                        "predicted": np.histogram(pred[name], edges)[0].tolist()}
    return out


def load_demographic(path: str | Path) -> tuple[DemographicCNN, dict]:
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model = DemographicCNN(ckpt["in_channels"], ckpt["heads"], ckpt["size"], centres=ckpt.get("centres"))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt
