"""Dataset registry: one module per dataset kind, each with ``load(manifest, cfg, seed)``.

``fetch`` writes a manifest naming the verified source files (it never copies a mirror);
``prepare`` turns those files into arrays and a metadata table.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import ModuleType

from facegen.config import ConfigError, dataset_config, kind_default
from facegen.data import acquire, celeba, folder, synthetic, utkface
from facegen.data.prepared import METADATA, PREPARE_RECORD, image_file
from facegen.data.preprocess import prepare
from facegen.io import read_json, write_json

log = logging.getLogger(__name__)

KINDS: dict[str, ModuleType] = {"celeba": celeba, "utkface": utkface, "folder": folder, "synthetic": synthetic}


def kind_module(kind: str) -> ModuleType:
    if kind not in KINDS:
        raise ConfigError(f"unknown dataset kind '{kind}'; known kinds: {', '.join(KINDS)}")
    return KINDS[kind]


def prepared_files(config: dict, name: str) -> list[str]:
    """File names that ``prepare`` writes into results/data/<name>/."""
    cfg = dataset_config(config, name)
    keys = [str(r) for r in sorted(config["data"]["resolutions"])] + (["gray48"] if cfg.get("gray48") else [])
    return [image_file(k) for k in keys] + [METADATA, PREPARE_RECORD] + (["alignment.png"] if cfg.get("align") else [])


def fetch(config: dict, name: str, manifest_path: str | Path) -> dict:
    cfg = dataset_config(config, name)
    module = kind_module(cfg["kind"])
    if hasattr(module, "FILES"):
        resolved = acquire.resolve(module.FILES, config["data"]["mirror"], config["data"]["download_dir"])
        files = {key: r.as_dict() for key, r in resolved.items()}
    else:
        files = module.fetch(cfg)
    manifest = {"dataset": name, "kind": cfg["kind"], "files": files}
    write_json(manifest_path, manifest)
    return manifest


def prepare_dataset(config: dict, name: str, manifest_path: str | Path, out_dir: str | Path) -> dict:
    cfg = dataset_config(config, name)
    module = kind_module(cfg["kind"])
    manifest = read_json(manifest_path)
    raw = module.load(manifest, cfg, config["seed"])
    gray48 = bool(cfg.get("gray48", False))
    aligner = None
    if cfg.get("align"):
        from facegen.data.align import Aligner

        # CelebA's own crop: aligned faces are framed as the study's CelebA images are
        aligner = Aligner.from_config(cfg["align"], kind_default("celeba", "crop"))
    summary = prepare(raw, cfg["crop"], sorted(config["data"]["resolutions"]), out_dir, name, gray48=gray48, align=aligner)
    log.info("%s: %d images stored, %d unreadable skipped", name, summary["n_images"], summary["n_skipped_unreadable"])
    return summary
