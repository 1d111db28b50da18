"""The demographic classifier (chapter 1 of the conv-VAE report): 3 conv+pool blocks with BN and
ReLU and one head per target: classes (gender, race) by cross-entropy; age either as a label
distribution over 1-year bins read out by its expected value (DLDL, Gao et al. 2018; the default) or
by plain L1 regression. One version reads UTKFace 48x48 grayscale (the report's setting, for its
anchors), another RGB at the generation resolution (to label generated samples)."""

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
from facegen.config import ConfigError
from facegen.data.prepared import PreparedDataset
from facegen.data.summary import natural_key
from facegen.io import save_torch, write_json
from facegen.progress import progress
from facegen.tensors import to_tensor

log = logging.getLogger(__name__)

# Regression targets enter the losses in tenths of their unit (years/10), so an L1 term weighs about as
# much as a cross-entropy in the shared loss.
REGRESSION_SCALE = 10.0


class DemographicCNN(nn.Module):
    """The report's three conv+pool feature blocks, flattened whole (no global pooling: where a feature
    sits matters for age), then one small LeakyReLU network per target on the shared features."""

    def __init__(self, in_channels: int, heads: dict[str, int], size: int, width: int = 32, hidden: int = 128,
                 centres: dict[str, list[float]] | None = None):
        super().__init__()
        if size % 8:
            raise ValueError(f"demographic classifier input size must be a multiple of 8, got {size}")
        layers, c = [], in_channels
        for w in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2)]
            c = w
        self.features = nn.Sequential(*layers, nn.Flatten(), nn.Dropout(0.3))
        flat = c * (size // 8) ** 2
        self.heads = nn.ModuleDict({name: nn.Sequential(nn.Linear(flat, hidden), nn.LeakyReLU(0.1), nn.Dropout(0.3),
                                                        nn.Linear(hidden, n)) for name, n in heads.items()})
        # A regression head is a label distribution over these bin centres, or else a single output.
        self.regression = sorted(set(centres or {}) | {name for name, n in heads.items() if n == 1})
        for name, c in (centres or {}).items():
            self.register_buffer(f"centres_{name}", torch.as_tensor(c, dtype=torch.float32))

    def centres(self, name: str) -> torch.Tensor | None:
        """The bin centres of a label-distribution head; None for a single-output or class head."""
        return getattr(self, f"centres_{name}", None)

    def value(self, name: str, out: torch.Tensor) -> torch.Tensor:
        """A regression head's prediction in the target's units: the expected bin centre, or the output."""
        centres = self.centres(name)
        return (torch.softmax(out, 1) * centres).sum(1) if centres is not None else out[:, 0] * REGRESSION_SCALE

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.features(x)
        return {name: head(h) for name, head in self.heads.items()}


def as_input(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) grayscale or (N, H, W, 3) RGB -> float (N, C, H, W) in [0, 1]."""
    return to_tensor(images)


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


def bin_centres(values: np.ndarray, width: float) -> list[float]:
    """Bin centres every ``width`` units covering the training values (ages 1..116 -> 116 one-year bins)."""
    lo, hi = np.floor(values.min() / width) * width, np.ceil(values.max() / width) * width
    return np.arange(lo, hi + width / 2, width).tolist()


def regression_loss(model: DemographicCNN, name: str, out: torch.Tensor, y: torch.Tensor, sigma: float) -> torch.Tensor:
    """L1 on the prediction (in tenths); a label-distribution head adds the cross-entropy to a Gaussian of
    std ``sigma`` around the true value over its bins (one-hot at the nearest bin when sigma is 0): DLDL-v2."""
    l1 = nn.functional.l1_loss(model.value(name, out), y) / REGRESSION_SCALE
    centres = model.centres(name)
    if centres is None:
        return l1
    if sigma > 0:
        target = torch.softmax(-0.5 * ((centres[None] - y[:, None]) / sigma) ** 2, 1)
    else:
        target = nn.functional.one_hot((centres[None] - y[:, None]).abs().argmin(1), len(centres)).float()
    return l1 - (target * torch.log_softmax(out, 1)).sum(1).mean()


def make_schedule(cfg: dict, opt: torch.optim.Optimizer, steps_per_epoch: int):
    """Per-step LR scheduler: one-cycle (warm-up to lr, cosine decay to ~0), constant, or the report's
    r(E) = 1 / (2000 (1 + E)) per epoch."""
    if cfg["schedule"] == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=cfg["epochs"] * steps_per_epoch,
                                                   pct_start=0.2)
    if cfg["schedule"] == "inverse":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (2000 * (1 + step // steps_per_epoch)) / cfg["lr"])
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)


@torch.no_grad()
def predict(model: DemographicCNN, images: np.ndarray, batch: int = 256) -> dict[str, np.ndarray]:
    """Per target: class probabilities (N, K) or predicted values (N,) in the target's units (age in years),
    each the average over the image and its mirror image (training flips faces, so both are in-distribution)."""
    model.eval()
    parts: dict[str, list] = {}
    for i in range(0, len(images), batch):
        x = as_input(images[i:i + batch])
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
    train, test = data.rows("train", ccfg["max_images"] or None, seed), data.rows("test")
    centres = ({name: bin_centres(targets[name][train], ccfg["bin_width"])
                for name, kind in dcfg["targets"].items() if kind == "regression"}
               if ccfg["regression_head"] == "dldl" else {})
    heads.update({name: len(c) for name, c in centres.items()})
    torch.manual_seed(seed)
    model = DemographicCNN(1 if images.ndim == 3 else 3, heads, images.shape[1], centres=centres)
    opt = torch.optim.AdamW(model.parameters(), lr=ccfg["lr"], weight_decay=ccfg["weight_decay"])
    sched = make_schedule(ccfg, opt, -(-len(train) // ccfg["batch_size"]))
    gen = torch.Generator().manual_seed(seed)
    x_train = np.asarray(images[train])
    t0 = time.perf_counter()
    for epoch in progress(range(ccfg["epochs"]), desc=f"demographic classifier {dataset}/{source}", unit="epoch"):
        model.train()
        order = torch.randperm(len(train), generator=gen).numpy()
        for i in range(0, len(order), ccfg["batch_size"]):
            idx = order[i:i + ccfg["batch_size"]]
            x = as_input(x_train[idx])
            x = torch.where(torch.rand(len(idx), 1, 1, 1, generator=gen) < 0.5, x.flip(-1), x)
            logits = model(x)
            loss = 0
            for name, kind in dcfg["targets"].items():
                y = torch.from_numpy(targets[name][train[idx]])
                loss = loss + (nn.functional.cross_entropy(logits[name], y) if kind == "class"
                               else regression_loss(model, name, logits[name], y, ccfg["label_sigma"]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    metrics = evaluate_classifier(model, np.asarray(images[test]), meta.iloc[test], targets, test, dcfg["targets"])
    metrics.update({f"{c}_classes": class_names(meta, c) for c, k in dcfg["targets"].items() if k == "class"})
    metrics.update({"dataset": dataset, "source": source, "n_train": int(len(train)), "n_test": int(len(test)),
                    "epochs": ccfg["epochs"], "schedule": ccfg["schedule"],
                    "regression_head": ccfg["regression_head"], "seconds": time.perf_counter() - t0})
    save_torch(out, {"heads": heads, "targets": dcfg["targets"], "in_channels": 1 if images.ndim == 3 else 3,
                     "size": int(images.shape[1]), "centres": centres,
                     "categories": {c: categories(meta, c) for c, k in dcfg["targets"].items() if k == "class"},
                     "state_dict": model.state_dict()})
    write_json(Path(out).with_suffix(".json"), metrics)
    diagnostics.figure(metrics, diagnostics.figure_path(out))
    log.info("demographic classifier %s/%s: %s", dataset, source,
             {k: v for k, v in metrics.items() if k.endswith(("accuracy", "mae", "rmse"))})
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


def classifier_sources(config: dict) -> list[dict]:
    """{dataset, source} of every demographic classifier: the 48x48 grayscale variant where the dataset
    has one, and RGB at each resolution the dataset's runs generate."""
    from facegen.config import active_datasets
    from facegen.training.matrix import training_runs

    out = []
    for name in active_datasets(config):
        if not config["bias"]["datasets"].get(name, {}).get("targets"):
            continue
        if config["data"]["datasets"][name].get("gray48"):
            out.append({"dataset": name, "source": "gray48"})
        for res in sorted({r["resolution"] for r in training_runs(config, [name])}):
            out.append({"dataset": name, "source": str(res)})
    return out

