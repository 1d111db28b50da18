"""The workflow stays as the Snakemake workflow catalog checks it: `snakefmt --check` and `snakemake --lint`
find nothing (seconds each; no job runs)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, tool_env

# What snakefmt formats ([tool.snakefmt] in pyproject.toml sets the line length).
SNAKEFILES = ["Snakefile", "workflow/Snakefile", "workflow/rules"]
TIMEOUT_S = 300  # a hang guard: each takes a few seconds


def snakefmt() -> str:
    """This interpreter's snakefmt (the pinned one of the test extra), else one on PATH."""
    local = Path(sys.executable).parent / "snakefmt"
    found = str(local) if local.exists() else shutil.which("snakefmt")
    if found is None:
        pytest.skip("snakefmt is not installed (it is in the test extra: pip install -e '.[test]')")
    return found


def test_the_snakefiles_are_snakefmt_formatted():
    proc = subprocess.run([snakefmt(), "--check", *SNAKEFILES], cwd=ROOT, env=tool_env(None), capture_output=True,
                          text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, ("snakefmt would reformat (run `snakefmt " + " ".join(SNAKEFILES) + "`):\n"
                                  + (proc.stdout + proc.stderr)[-3000:])


@pytest.mark.parametrize("overlay", [None, "config/test.yaml", "config/gpu.yaml"])
def test_snakemake_lint_finds_nothing(overlay):
    """`snakemake --lint` exits 1 on any finding; each overlay changes which rules and jobs there are."""
    cmd = ["snakemake", "--lint", *(["--configfile", overlay] if overlay else [])]
    proc = subprocess.run(cmd, cwd=ROOT, env=tool_env(None), capture_output=True, text=True, timeout=TIMEOUT_S)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "in a good condition" in out, out[-3000:]
