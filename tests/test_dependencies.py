"""Every third-party package facegen imports is declared, in pyproject.toml and in environment.yml: an
undeclared one works only where something else happened to install it."""

import ast
import re
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

# Where the import name is not the distribution's name.
DISTRIBUTION = {"PIL": "pillow", "sklearn": "scikit-learn", "skimage": "scikit-image", "yaml": "pyyaml",
                "torch_fidelity": "torch-fidelity"}
# Installed apart from the package's dependencies: facenet-pytorch's own pins conflict with ours, so
# scripts/install.sh installs it without them from requirements-align.txt (face alignment only).
INSTALLED_APART = {"facenet_pytorch": "requirements-align.txt"}


def _name(requirement: str) -> str:
    """A requirement's distribution name, normalised as PEP 503 does."""
    return re.sub(r"[-_.]+", "-", re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1)).lower()


def third_party_imports() -> set[str]:
    found = set()
    for path in (ROOT / "src/facegen").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "facegen"}


def test_the_scan_sees_known_imports():
    assert {"numpy", "scipy", "statsmodels", "PIL", "torch"} <= third_party_imports()
    assert _name("torch-fidelity==0.4.0") == "torch-fidelity" and _name("Snakemake_Executor.Plugin>=1") == "snakemake-executor-plugin"


def test_every_third_party_import_is_declared():
    declared = {_name(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    pip = next(d["pip"] for d in yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"] if isinstance(d, dict))
    in_conda_env = {_name(r) for r in pip if not r.startswith("-")}
    needed = {_name(DISTRIBUTION.get(m, m)) for m in third_party_imports() - INSTALLED_APART.keys()}
    assert needed - declared == set(), "imported but not in pyproject.toml's dependencies"
    assert needed - in_conda_env == set(), "imported but not in environment.yml"
    for module, requirements in INSTALLED_APART.items():
        assert _name(module) in {_name(r) for r in (ROOT / requirements).read_text().splitlines() if r and not r.startswith("#")}
