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

# Debian packages some features need, installed with apt when their command is missing (as root, or
# with passwordless sudo): apt_install WHAT "PACKAGES" WARNING
apt_install() {
  local sudo=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && sudo="sudo -n"
  if command -v apt-get >/dev/null; then
    echo "installing $1: $2"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $2 >/dev/null
  else
    echo "warning: $3" >&2
  fi
}

# The PDF report is built with latexmk + pdflatex from Debian's TeX Live.
if ! command -v latexmk >/dev/null || ! command -v pdflatex >/dev/null; then
  apt_install "TeX for the PDF report" "texlive-latex-base texlive-latex-recommended texlive-fonts-recommended latexmk" \
    "latexmk/pdflatex not found and apt-get is unavailable; install TeX Live or set report.pdf: false"
fi
# The test tools also start a single-node SLURM on localhost (scripts/slurm-local.sh) to run the quick
# profile through profiles/slurm: Debian's SLURM 22.05 and munge.
if [ -n "$extras" ] && ! command -v slurmctld >/dev/null; then
  apt_install "SLURM for the cluster test" "slurmctld slurmd slurm-client munge" \
    "SLURM not found and apt-get is unavailable; the SLURM test will be skipped"
fi
echo "facegen installed in .venv ($(.venv/bin/python -c 'import facegen; print(facegen.__version__)'))"
