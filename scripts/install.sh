#!/usr/bin/env bash
# Install facegen into ./.venv, plus Debian's TeX packages for the PDF report when they are missing.
#   bash scripts/install.sh          # the study
#   bash scripts/install.sh --test   # the study and the test tools
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[ "${1:-}" = "--test" ] && extras="[test]"

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".${extras}"
# Face alignment's detector, without its outdated pins (see requirements-align.txt).
.venv/bin/python -m pip install --quiet --no-deps --require-hashes -r requirements-align.txt

# The PDF report is built with latexmk + pdflatex from Debian's TeX Live.
if ! command -v latexmk >/dev/null || ! command -v pdflatex >/dev/null; then
  packages="texlive-latex-base texlive-latex-recommended texlive-fonts-recommended latexmk"
  sudo=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && sudo="sudo -n"
  if command -v apt-get >/dev/null; then
    echo "installing TeX for the PDF report: $packages"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $packages >/dev/null
  else
    echo "warning: latexmk/pdflatex not found and apt-get is unavailable; install TeX Live or set report.pdf: false" >&2
  fi
fi
# The test tools also start a single-node SLURM on localhost (scripts/slurm-local.sh) to run the quick
# profile through profiles/slurm: Debian's SLURM 22.05 and munge.
if [ -n "$extras" ] && ! command -v slurmctld >/dev/null; then
  packages="slurmctld slurmd slurm-client munge"
  sudo=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && sudo="sudo -n"
  if command -v apt-get >/dev/null; then
    echo "installing SLURM for the cluster test: $packages"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $packages >/dev/null
  else
    echo "warning: SLURM not found and apt-get is unavailable; the SLURM test will be skipped" >&2
  fi
fi
echo "facegen installed in .venv ($(.venv/bin/python -c 'import facegen; print(facegen.__version__)'))"
