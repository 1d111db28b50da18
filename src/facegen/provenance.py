"""results/provenance.json: what produced these results (commit, config, versions, device, data checksums)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

from facegen.calibration import cpu_model
from facegen.config import config_hash
from facegen.io import read_json, write_json

PACKAGES = ["facegen", "torch", "torchvision", "numpy", "pandas", "pillow", "scikit-image", "scikit-learn",
            "torch-fidelity", "lpips", "matplotlib", "seaborn", "snakemake", "dvc"]


def git_state(root: str | Path = ".") -> dict:
    def run(*args):
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
            return out.stdout.strip() if out.returncode == 0 else None
        except (OSError, subprocess.TimeoutExpired):
            return None

    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": run("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None}


def package_versions() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cxx_compiler() -> str | None:
    """The first line of ``--version`` of the C++ compiler inductor builds a compiled training step's CPU
    kernels with (training.compile), which therefore depend on it; None where it finds none."""
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        out = subprocess.run([get_cpp_compiler(), "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.splitlines()[0] if out.returncode == 0 and out.stdout else None
    except (OSError, RuntimeError, subprocess.TimeoutExpired):
        return None


def device_info() -> dict:
    import torch

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cuda_available": torch.cuda.is_available(),
        "cxx_compiler": cxx_compiler(),
    }
    if info["cuda_available"]:
        info["cuda_device"] = torch.cuda.get_device_name(0)
    return info


def manifest_files(config: dict, paths: list[str]) -> list[Path]:
    """Manifest paths as given; a directory stands for the manifests of the config's active datasets."""
    from facegen.config import active_datasets

    files = []
    for p in map(Path, paths):
        files += [p / f"{name}.json" for name in active_datasets(config)] if p.is_dir() else [p]
    return files


def write_provenance(config: dict, manifests: list[str], out: str | Path) -> dict:
    datasets = {}
    for path in manifest_files(config, manifests):
        manifest = read_json(path)
        datasets[manifest["dataset"]] = {
            "kind": manifest["kind"],
            "files": {name: {"sha256": f["sha256"], "source": f["source"]} for name, f in manifest["files"].items()},
        }
    record = {
        "git": git_state(),
        "config": config,
        "config_hash": config_hash(config),
        "packages": package_versions(),
        "device": device_info(),
        "datasets": datasets,
    }
    write_json(out, record)
    return record
