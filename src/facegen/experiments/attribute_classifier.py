"""A small CNN attribute classifier at the study resolution (binary attributes, one logit each):
it verifies attribute arithmetic with numbers, and labels generated faces for the bias analysis. The
network and the training loop are those of facegen.face_classifiers; this module holds the labels, the metrics and
the checkpoint."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import confusion_matrix
from torch import nn

from facegen.face_classifiers import AttributeCNN, fit
from facegen.config import ConfigError
from facegen.data.prepared import PreparedDataset
from facegen.experiments.selection import attribute_names
from facegen.io import save_torch, write_json
from facegen.tensors import to_tensor

log = logging.getLogger(__name__)


def attribute_labels(meta, names: list[str], dataset: str) -> np.ndarray:
    missing = [n for n in names if n not in meta.columns]
    if missing:
        raise ConfigError(f"latent_experiments.attributes.names.{dataset} has {missing}, not columns of the "
                          f"{dataset} metadata; binary columns available: "
                          f"{', '.join(c for c in meta.columns if set(meta[c].dropna().unique()) <= {0, 1})}")
    return meta[names].to_numpy(np.float32)


def train_classifier(config: dict, dataset: str, resolution: int, out: str | Path) -> dict:
    ex = config["latent_experiments"]
    cfg, seed = ex["attributes"], ex["seed"]
    names = attribute_names(config, dataset)
    if not names:
        raise ConfigError(f"latent_experiments.attributes.names has no attributes for '{dataset}'; add some to train a classifier")
    data = PreparedDataset.of(config, dataset)
    images, meta = data.images(resolution), data.meta
    labels = attribute_labels(meta, names, dataset)
    train = data.rows("train", cfg["classifier_max_images"] or None, seed)
    test = data.rows("test")
    torch.manual_seed(seed)
    model = AttributeCNN(len(names))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    y_train = torch.from_numpy(labels[train])
    t0 = time.perf_counter()
    fit(model, np.asarray(images[train]), lambda out, idx: nn.functional.binary_cross_entropy_with_logits(out, y_train[idx]),
        opt, cfg["classifier_epochs"], 64, seed, f"classifier {dataset}/{resolution}")
    model.eval()
    prob = predict(model, np.asarray(images[test]))
    truth = labels[test]
    metrics = {"dataset": dataset, "resolution": resolution, "attributes": names, "n_train": int(len(train)),
               "n_test": int(len(test)), "epochs": cfg["classifier_epochs"], "seconds": time.perf_counter() - t0,
               "test_accuracy": {n: float(((prob[:, k] > 0.5) == (truth[:, k] > 0.5)).mean()) for k, n in enumerate(names)},
               "test_positive_rate": {n: float(truth[:, k].mean()) for k, n in enumerate(names)},
               # [[true negatives, false positives], [false negatives, true positives]]: corrects labelled mixes
               "test_confusion": {n: confusion_matrix(truth[:, k] > 0.5, prob[:, k] > 0.5, labels=[False, True]).tolist()
                                  for k, n in enumerate(names)}}
    save_torch(out, {"attributes": names, "state_dict": model.state_dict()})  # no timings: identical bytes on rerun
    write_json(Path(out).with_suffix(".json"), metrics)
    log.info("attribute classifier %s/%s: test accuracy %s", dataset, resolution, metrics["test_accuracy"])
    return metrics


@torch.no_grad()
def predict(model: AttributeCNN, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """P(attribute) per image, (N, n_attributes)."""
    model.eval()
    return np.concatenate([torch.sigmoid(model(to_tensor(images[i:i + batch]))).numpy()
                           for i in range(0, len(images), batch)]) if len(images) else np.zeros((0, model.head.out_features))


def load_classifier(path: str | Path) -> tuple[AttributeCNN, list[str]]:
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model = AttributeCNN(len(ckpt["attributes"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt["attributes"]
