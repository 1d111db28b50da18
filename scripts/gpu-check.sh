#!/usr/bin/env bash
# The GPU check (issue 16): the quick profile on CUDA, with bf16 autocast, channels_last and the compiled
# step (training.compile) for training and bf16 Inception, in a scratch results folder. Prints training
# and Inception throughput (from each run's model card and metrics) and the peak GPU memory (nvidia-smi,
# sampled every 0.5 s), and fails on any CUDA error or failed job.
#   bash scripts/gpu-check.sh [extra snakemake arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nvidia-smi >/dev/null || { echo "gpu-check: no nvidia-smi here; run it on a machine with a CUDA GPU" >&2; exit 1; }
export PATH="$PWD/.venv/bin:$PATH"
python -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "gpu-check: torch sees no CUDA device")'

work=$(mktemp -d)
overlay=$work/gpu-check.yaml
cat > "$overlay" <<EOF
results_dir: $work/results
logs_dir: $work/logs
training: {device: cuda, precision: bf16, compile: "on"}
evaluation: {device: cuda, inception_mode: bf16}
EOF

nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 > "$work/memory.csv" &
sampler=$!
trap 'kill $sampler 2>/dev/null || true' EXIT

status=0
snakemake --cores "$(nproc)" --configfile config/test.yaml "$overlay" "$@" > "$work/snakemake.log" 2>&1 || status=$?
kill $sampler 2>/dev/null || true

if grep -rqiE "CUDA error|cuda runtime error|CUBLAS_STATUS|cuDNN error|device-side assert" "$work/logs" "$work/snakemake.log"; then
    grep -rhiE "CUDA error|cuda runtime error|CUBLAS_STATUS|cuDNN error|device-side assert" "$work/logs" "$work/snakemake.log" | head -5 >&2
    echo "gpu-check: CUDA errors in the logs ($work/logs)" >&2
    exit 1
fi
[ "$status" = 0 ] || { tail -30 "$work/snakemake.log" >&2; echo "gpu-check: snakemake failed ($status); log: $work/snakemake.log" >&2; exit 1; }

python - "$work" <<'EOF'
import json, sys
from pathlib import Path

work = Path(sys.argv[1])
results = work / "results"
print(f"gpu-check on {__import__('torch').cuda.get_device_name(0)}")
print("training (model cards):")
for card in sorted(results.glob("train/*/*/*/*/model_card.json")):
    c = json.loads(card.read_text())
    assert c["device"].startswith("cuda"), f"{c['run']} trained on {c['device']}, not CUDA"
    compiled = c.get("compile", {})
    assert compiled.get("mode") == "on", f"{c['run']} trained with compile {compiled.get('mode')}, not on"
    print(f"  {c['run']:<32} {c['img_per_s']:>10.0f} img/s  ({c['precision']}, {c['device']}, compiled; "
          f"first step {compiled['first_step_seconds']:.1f} s)")
print("Inception (evaluations):")
for m in sorted(results.glob("eval/*/*/*/*/metrics.json")):
    e = json.loads(m.read_text())
    print(f"  {e['run']:<32} {e['timing']['inception_img_per_s']:>10.1f} img/s  ({e['protocol']['inception_mode']})")
used = [int(x) for x in (work / "memory.csv").read_text().split() if x.strip().isdigit()]
print(f"peak GPU memory used: {max(used) if used else 'not sampled'} MiB (nvidia-smi, whole device)")
EOF
echo "gpu-check: passed; outputs in $work"
