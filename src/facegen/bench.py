"""Benchmarks that print figures (they are not timed tests).

``facegen bench train`` measures, for every architecture (or the config's models) at each resolution,
training and sampling throughput, counted FLOPs per image, and the achieved GFLOP/s as a share of an
fp32 matmul peak measured in the same run, for plain fp32, channels_last and bf16 autocast, each with
the training step eager and compiled (training.compile), and the cold compile's seconds.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np
import pandas as pd
import torch

from facegen.models import ARCHITECTURES, data_params
from facegen.training.timing import bench_model


def matmul_peak_gflops(dtype=torch.float32, sizes=(512, 1024, 2048), repeats: int = 5, rounds: int = 3) -> float:
    """The best GFLOP/s of square matmuls over several sizes and rounds. One cold 2048 matmul read
    128-154 GFLOP/s on a machine whose best is about 190, which inflated every "% of peak" by up to 50%."""
    best = 0.0
    for _ in range(rounds):
        for n in sizes:
            a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
            torch.mm(a, b)  # warm-up
            for _ in range(repeats):
                t0 = time.perf_counter()
                torch.mm(a, b)
                best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


def bench_cases(archs: list[str] | None = None, batch: int = 64) -> list[dict]:
    """One case per architecture, with its default hyperparameters (a conditional family with 4 condition columns)."""
    return [{"name": arch, "arch": arch, "params": data_params(arch, n_cond=4), "batch": batch, "optimizer": "adam"}
            for arch in archs or list(ARCHITECTURES)]


def bench_train(cases: list[dict], sizes=(32, 64), variants=("fp32", "channels_last", "bf16"), steps: int = 5,
                compile_modes=("off", "on")) -> pd.DataFrame:
    """Each case ({name, arch, params, batch, optimizer}) at each size and arithmetic, eager and compiled.
    A compile is timed cold: dynamo's cache is emptied and inductor's is a fresh folder, as on a fresh machine."""
    from torch._inductor.utils import fresh_cache

    peak = matmul_peak_gflops()
    peak_bf16 = matmul_peak_gflops(torch.bfloat16)
    rows = []
    for case in cases:
        for size in sizes:
            for variant in variants:
                for mode in compile_modes:
                    compiled = mode == "on"
                    try:
                        with fresh_cache() if compiled else contextlib.nullcontext():
                            torch._dynamo.reset()
                            row = bench_model(case["arch"], size, case["batch"], variant, steps, case["params"],
                                              case["optimizer"], compile=compiled)
                    except Exception as exc:  # a model that cannot run a variant is reported, not hidden
                        row = {"arch": case["arch"], "resolution": size, "variant": variant, "compiled": compiled,
                               "error": f"{type(exc).__name__}: {exc}"}
                    row["model"] = case["name"]
                    row["fp32_matmul_peak_gflops"] = peak
                    row["bf16_matmul_peak_gflops"] = peak_bf16
                    if "achieved_gflops" in row:
                        row["pct_of_fp32_peak"] = 100 * row["achieved_gflops"] / peak
                    rows.append(row)
                    print(_fmt(row), flush=True)
    table = pd.DataFrame(rows)
    if {"off", "on"} <= set(compile_modes) and "train_img_per_s" in table:
        print(compile_table(table).to_string(index=False, float_format=lambda v: f"{v:.3g}"), flush=True)
    return table


def compile_table(table: pd.DataFrame) -> pd.DataFrame:
    """Eager beside compiled, one row per model, size and arithmetic."""
    keys = ["model", "resolution", "variant", "batch"]
    eager = table[~table["compiled"]].set_index(keys)
    comp = table[table["compiled"]].set_index(keys)
    out = pd.DataFrame({"eager_img_per_s": eager["train_img_per_s"], "compiled_img_per_s": comp["train_img_per_s"]})
    out["compiled_over_eager"] = out["compiled_img_per_s"] / out["eager_img_per_s"]
    out["eager_pct_of_fp32_peak"] = eager["pct_of_fp32_peak"]
    out["compiled_pct_of_fp32_peak"] = comp["pct_of_fp32_peak"]
    out["compile_seconds_cold"] = comp["compile_seconds"]
    return out.reset_index()


def _fmt(row: dict) -> str:
    label = f"{row['model']:>18} {row['resolution']:>3} {row['variant']:>13} {'compiled' if row['compiled'] else 'eager':>8}"
    if "error" in row:
        return f"{label}  unavailable: {row['error']}"
    compile_s = f"  compile {row['compile_seconds']:.1f} s" if row["compiled"] else ""
    return (f"{label}  batch {row['batch']:>3}  train {row['train_img_per_s']:8.1f} img/s  "
            f"sample {row['sample_img_per_s']:9.1f} img/s  {row['train_gflop_per_image']:7.3f} GFLOP/img  "
            f"{row['achieved_gflops']:6.1f} GFLOP/s = {row['pct_of_fp32_peak']:5.1f}% of fp32 peak {row['fp32_matmul_peak_gflops']:.0f}"
            f"{compile_s}")


def bench_inception(real_a, real_b, modes=("fp32", "channels_last", "bf16"), batch: int = 50,
                    tolerance_pct: float = 0.5, generated: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Inception feature throughput per arithmetic mode, and each mode's FID change from fp32 on a
    fixed real-versus-real pair (two disjoint sets of real images) and, for each set in ``generated``
    (name -> uint8 samples), on that set against ``real_b``: a mode can move the FID of samples far
    from the real images more than that of two real sets. The chosen mode is the fastest whose every
    FID differs from fp32's by less than ``tolerance_pct`` percent."""
    from facegen.metrics import distribution, inception

    generated = generated or {}
    rows = []
    for mode in modes:
        net = inception.extractor(mode=mode)
        inception.features(real_a[:batch], net, batch)  # warm-up: oneDNN picks kernels on first use
        t0 = time.perf_counter()
        fa = inception.features(real_a, net, batch)
        seconds = time.perf_counter() - t0
        fb = inception.features(real_b, net, batch)
        row = {"mode": mode, "img_per_s": len(real_a) / seconds, "fid": distribution.fid(fa, fb),
               "n_images": len(real_a), "resolution": real_a.shape[1]}
        for name, images in generated.items():
            row[f"fid_{name}"] = distribution.fid(inception.features(images, net, batch), fb)
        rows.append(row)
    table = pd.DataFrame(rows)
    base = table.loc[table["mode"] == "fp32"].iloc[0] if "fp32" in modes else table.iloc[0]
    table["speedup_vs_fp32"] = table["img_per_s"] / base["img_per_s"]
    table["fid_change_pct"] = 100 * (table["fid"] - base["fid"]).abs() / base["fid"]
    for name in generated:
        table[f"fid_{name}_change_pct"] = 100 * (table[f"fid_{name}"] - base[f"fid_{name}"]).abs() / base[f"fid_{name}"]
    changes = [c for c in table.columns if c.endswith("_change_pct")]
    table["max_fid_change_pct"] = table[changes].max(axis=1)
    ok = table[table["max_fid_change_pct"] < tolerance_pct]
    table["chosen"] = table["mode"] == ok.sort_values("img_per_s").iloc[-1]["mode"]
    for r in table.to_dict("records"):
        samples = "".join(f", {name} {r[f'fid_{name}']:.2f} ({r[f'fid_{name}_change_pct']:.3f}%)" for name in generated)
        print(f"inception {r['mode']:>13} {r['resolution']:>3}px  {r['img_per_s']:6.2f} img/s  x{r['speedup_vs_fp32']:.2f} vs fp32  "
              f"FID real {r['fid']:.3f} ({r['fid_change_pct']:.3f}% from fp32){samples}{'  <- chosen' if r['chosen'] else ''}",
              flush=True)
    return table


def bench_align(config: dict, n: int = 300, seed: int = 0, canvas: int = 400, detect=None) -> dict:
    """Face alignment's detector on real faces of the data mirror, printed (facegen.data.align):

    * CelebA's aligned images: detection rate, speed, and the mean landmarks (CELEBA_LANDMARKS) with
      their spread;
    * UTKFace's aligned faces re-framed as in-the-wild photos: each pasted by a known random similarity
      (scale, rotation up to 20 degrees, position) onto a noisy canvas. The landmarks found on the
      face at its own size on a plain canvas, moved by that transform, are the truth, so the error
      (the mean landmark distance over the inter-ocular distance; 0.1 is a common success threshold)
      measures how far re-framing moves the landmarks, not their accuracy against human labels, which
      the mirror does not have.
    """
    import io
    import tempfile

    from PIL import Image

    from facegen.data import fetch, kind_module
    from facegen.data.align import mtcnn_detector

    detect = detect or mtcnn_detector()  # another detector of the same signature can be compared
    rng = np.random.default_rng(seed)
    out: dict = {}

    def photos(name):
        cfg = config["data"]["datasets"][name]
        with tempfile.TemporaryDirectory() as tmp:
            manifest = fetch(config, name, f"{tmp}/m.json")
        raw = kind_module(cfg["kind"]).load(manifest, cfg, config["seed"])
        for k, (_, item) in enumerate(raw.images()):
            if k >= n:
                return
            yield Image.open(io.BytesIO(item)).convert("RGB") if isinstance(item, bytes) else Image.fromarray(item)

    def largest(img):
        boxes, _, landmarks = detect(img)
        if not len(boxes):
            return None
        return landmarks[np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))]

    found, t0, count = [], time.perf_counter(), 0
    for img in photos("celeba"):
        count += 1
        pts = largest(img)
        if pts is not None:
            found.append(pts / np.array(img.size, float))
    pts = np.stack(found)
    out["celeba"] = {"n": count, "detected": len(found) / count, "img_per_s": count / (time.perf_counter() - t0),
                     "mean_landmarks": pts.mean(0).round(4).tolist(), "sd": pts.std(0).round(4).tolist()}
    print(f"CelebA aligned ({count} images): detected {100 * out['celeba']['detected']:.1f}%, "
          f"{out['celeba']['img_per_s']:.1f} img/s; mean landmarks {out['celeba']['mean_landmarks']}", flush=True)

    errors, missed, refs, t_detect = [], 0, 0, 0.0
    for img in photos("utkface"):
        # The reference: the face at its own size on a grey canvas twice as large (on the tight crop itself,
        # whose borders cut the face, MTCNN's landmarks move by 0.1-0.5 inter-ocular distances).
        pad = img.size[0] // 2
        padded = Image.new("RGB", (img.size[0] + 2 * pad, img.size[1] + 2 * pad), (128, 128, 128))
        padded.paste(img, (pad, pad))
        ref = largest(padded)
        if ref is None:
            continue
        ref = ref - pad
        refs += 1
        scale = rng.uniform(0.35, 0.9) * canvas / img.size[0]
        theta = np.deg2rad(rng.uniform(-20, 20))
        side = img.size[0] * scale
        centre = rng.uniform(side / 2, canvas - side / 2, 2)  # about the photo's centre, inside the canvas
        rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]) * scale
        m = np.eye(3)
        m[:2, :2], m[:2, 2] = rot, centre - rot @ (np.array(img.size, float) / 2)
        noise = rng.integers(0, 256, (canvas // 8, canvas // 8, 3), dtype=np.uint8)
        background = Image.fromarray(noise).resize((canvas, canvas), Image.Resampling.BILINEAR)
        inv = np.linalg.inv(m)
        moved = img.transform((canvas, canvas), Image.Transform.AFFINE, data=tuple(inv[:2].ravel()),
                              resample=Image.Resampling.BICUBIC)
        mask = Image.new("L", img.size, 255).transform((canvas, canvas), Image.Transform.AFFINE, data=tuple(inv[:2].ravel()))
        background.paste(moved, (0, 0), mask)
        truth = ref @ m[:2, :2].T + m[:2, 2]
        t = time.perf_counter()
        got = largest(background)
        t_detect += time.perf_counter() - t
        if got is None:
            missed += 1
            continue
        iod = np.linalg.norm(truth[1] - truth[0])
        errors.append(float(np.linalg.norm(got - truth, axis=1).mean() / iod))
    err = np.array(errors)
    out["utkface_reframed"] = {"n_reference": refs, "detected": 1 - missed / max(refs, 1),
                               "error_median": float(np.median(err)), "error_p95": float(np.percentile(err, 95)),
                               "success_below_0.1": float((err < 0.1).mean()), "img_per_s": refs / t_detect,
                               "canvas": canvas}
    u = out["utkface_reframed"]
    print(f"UTKFace re-framed on {canvas}x{canvas} ({refs} faces found on the original): detected {100 * u['detected']:.1f}%, "
          f"landmark error / inter-ocular median {u['error_median']:.3f}, 95th pct {u['error_p95']:.3f}, "
          f"{100 * u['success_below_0.1']:.1f}% below 0.1; {u['img_per_s']:.1f} img/s", flush=True)
    return out
