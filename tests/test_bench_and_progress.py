import io
import sys

import pytest

from facegen.bench import bench_model, matmul_peak_gflops
from facegen.progress import progress


def test_bench_model_reports_throughput_and_flops():
    row = bench_model("fc_hvae", 16, batch=8, variant="fp32", steps=1)
    assert row["train_img_per_s"] > 0 and row["sample_img_per_s"] > 0
    # counted FLOPs of a train step: forward + backward of 768-512-256-128-(2x128) and back, x ~3
    assert 5e6 < row["train_gflop_per_image"] * 1e9 < 2e7
    assert row["achieved_gflops"] == pytest.approx(row["train_gflop_per_image"] * row["train_img_per_s"])


def test_matmul_peak_is_positive():
    assert matmul_peak_gflops(sizes=(128, 256), repeats=2, rounds=1) > 0


def test_progress_refreshes_rarely_in_logs(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    bar = progress(range(3), desc="x")
    assert bar.mininterval == 10.0
    assert list(bar) == [0, 1, 2]
