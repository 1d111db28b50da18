"""The tidy metrics table, the dvc metrics JSON and the report's evaluation section, from fake results."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facegen.evaluation.real import real_indices
from facegen.evaluation.summary import collapsed, per_run, summarize_evaluation
from facegen.report.sections import evaluation as section


def result(model, seed, fid, arch="vae", recon=True):
    metrics = {"fid": fid, "fid_inf": fid - 10, "kid": 0.01 * fid, "precision": 0.5, "recall": 0.25, "approx_fid_pixel": 200.0,
               "inception_score": None, "inception_score_note": "unavailable: classifier weights missing",
               "sharpness_samples": 300.0}
    if recon:
        metrics.update({"recon_mse": 0.02, "kl": 30.0, "iwae_bpd": float("nan")})
    return {"run": f"celeba/32/{model}/{seed}", "dataset": "celeba", "resolution": 32, "model": model, "seed": seed,
            "arch": arch, "family": "vae" if recon else "gan", "train_minutes": 2.0 + seed,
            "protocol": {"n_generated": 100, "n_real": 100, "real_split": "train", "sampler": "prior", "seed": 0,
                         "resolution": 32, "inception_mode": "bf16", "kid_subsets": 10, "kid_subset_size": 50,
                         "prc_k": 3, "dc_k": 5, "lpips_pairs": 10, "recon_split": "test", "n_recon": 10, "iwae_samples": 4,
                         "decoder_variance_split": "val"},
            "metrics": metrics, "timing": {}}


@pytest.fixture
def summary(tmp_path):
    files = []
    for model, seed, fid, recon in [("vae", 0, 100.0, True), ("vae", 1, 110.0, True), ("dcgan", 0, 80.0, False)]:
        path = tmp_path / "eval" / model / str(seed) / "metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(result(model, seed, fid, "dcgan" if not recon else "vae", recon)))
        files.append(path)
    out = tmp_path / "evaluation"
    table = summarize_evaluation(files, out / "metrics.csv", out / "metrics.json", out / "fid.png", out / "pr.png",
                                 gates_path=out / "gates.csv")
    return tmp_path, table


def test_the_gates_are_written_once_for_every_reader(summary):
    root, _ = summary
    gates = pd.read_csv(root / "evaluation" / "gates.csv").set_index("model")
    assert gates.loc["dcgan", "quality_vs_vae"] == -25.0 and bool(gates.loc["dcgan", "quality_ok"])
    assert gates.loc["vae", "n_seeds"] == 2 and np.isnan(gates.loc["vae", "quality_vs_vae"])


def test_tidy_table_has_one_row_per_run_and_metric(summary):
    root, table = summary
    assert set(table.columns) >= {"run", "model", "seed", "metric", "value", "note", "protocol_n_generated"}
    assert not table.duplicated(["run", "metric"]).any()
    is_row = table[(table.run == "celeba/32/vae/0") & (table.metric == "inception_score")].iloc[0]
    assert np.isnan(is_row["value"]) and is_row["note"].startswith("unavailable")
    assert pd.read_csv(root / "evaluation" / "metrics.csv").shape == table.shape


def test_per_run_frame_has_one_row_per_run_floors_included(summary):
    _, table = summary
    floor = table[table.run == "celeba/32/vae/0"].assign(run="real/val", model="real_val_floor", train_minutes=np.nan)
    wide = per_run(pd.concat([table, floor]))
    assert sorted(wide.run) == ["celeba/32/dcgan/0", "celeba/32/vae/0", "celeba/32/vae/1", "real/val"]
    assert wide.set_index("run").loc["celeba/32/dcgan/0", "fid"] == 80.0


def test_metrics_json_for_dvc_has_seed_spread_and_no_nan(summary):
    root, _ = summary
    text = (root / "evaluation" / "metrics.json").read_text()
    assert "NaN" not in text
    doc = json.loads(text)
    assert doc["runs"]["celeba/32/dcgan/0"]["fid"] == 80.0
    fid = doc["across_seeds"]["celeba/32/vae"]["fid"]
    assert fid["mean"] == 105.0 and fid["n_seeds"] == 2 and fid["std"] == pytest.approx(np.std([100, 110], ddof=1))
    assert doc["across_seeds"]["celeba/32/dcgan"]["fid"]["std"] is None


def test_report_section_rows_and_quoted_references(summary):
    root, _ = summary
    config = {"results_dir": str(root), "data": {"datasets": {"celeba": {"kind": "celeba"}}, "only_with_mirror": []},
              "experiments": [{"datasets": ["celeba"], "resolutions": [32], "models": ["vae"], "seeds": [0]}]}
    ctx = section.context(config, root)
    samples, other, recon, likelihood, gates = ctx["tables"]
    vae = next(r for r in samples["rows"] if r["name"] == "celeba/32/vae")
    assert vae["n_seeds"] == 2 and vae["cells"][samples["columns"].index("FID")] == "105.0 ± 7.1"
    assert [r["name"] for r in recon["rows"]] == ["celeba/32/vae"]  # the GAN has no reconstructions
    assert any(r["name"].startswith("quoted: HVAE paper") for r in other["references"])
    hvae = next(r for r in recon["references"] if r["name"].startswith("quoted: HVAE paper"))
    assert hvae["cells"][recon["columns"].index("MSE")] == "0.0726"
    assert ctx["is_notes"] == ["unavailable: classifier weights missing"]
    other_vae = next(r for r in other["rows"] if r["name"] == "celeba/32/vae")
    assert other_vae["cells"][other["columns"].index("Inception Score")] == "n/a"  # a column even when unavailable
    assert "precision (Inception features)" in samples["columns"]
    assert "IWAE bound, dequantized, post-hoc Gaussian decoder, bits/dim" in likelihood["columns"]
    # the gates: the DCGAN's FID_inf 70 is 25 below the VAE's mean 95; precision 0.5 passes; no diversity measured
    dcgan = next(r for r in gates["rows"] if r["name"] == "celeba/32/dcgan")
    assert dcgan["cells"][gates["columns"].index("FID_inf minus the VAE's")] == "-25.0"
    assert "0 of 2 models pass" in gates["title"]
    from facegen.report import _environment

    for kind in ("html", "tex"):
        text = _environment(kind).get_template(f"evaluation.{kind}.j2").render(section={
            **ctx, "floor_images": None, "fid_time": str(root / "evaluation" / "fid.png"), "scatter": str(root / "evaluation" / "pr.png"),
            "grids": str(root / "evaluation" / "pr.png")})
        assert "Published FIDs use 50,000 samples" in text and "= 100, lie above" in text


def test_the_sample_grids_show_each_models_first_seed(summary):
    from facegen.evaluation.samples import save_samples

    root, _ = summary
    files = sorted((root / "eval").rglob("metrics.json"))
    for f in files:
        save_samples(f.parent / "samples.npz", np.full((4, 8, 8, 3), 200, np.uint8), {"features": np.zeros((4, 2))})
    out = root / "again"
    summarize_evaluation(files, out / "m.csv", out / "m.json", out / "fid.png", out / "pr.png", grids_path=out / "grids.png")
    assert Image.open(out / "grids.png").size[0] > 0
    (files[0].parent / "samples.npz").unlink()  # a run without its samples: named, not skipped
    with pytest.raises(FileNotFoundError, match="samples.npz not found"):
        summarize_evaluation(files, out / "m.csv", out / "m.json", out / "fid.png", out / "pr.png", grids_path=out / "grids.png")


def test_summary_without_results_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no metrics.json files"):
        summarize_evaluation([], tmp_path / "t.csv", tmp_path / "m.json", tmp_path / "a.png", tmp_path / "b.png")


def test_real_indices_are_seeded_sorted_subsets():
    meta = pd.DataFrame({"split": ["train"] * 50 + ["test"] * 10})
    a = real_indices(meta, "train", 20, seed=1)
    assert len(a) == 20 and (np.diff(a) > 0).all() and a.max() < 50
    assert (a == real_indices(meta, "train", 20, seed=1)).all()
    assert len(real_indices(meta, "test", 100, seed=1)) == 10
    with pytest.raises(ValueError, match="'val' split is empty"):
        real_indices(meta, "val", 5, seed=0)


def test_floor_sentence_says_when_the_split_held_fewer_images_than_the_runs():
    same = pd.DataFrame({"protocol_n_generated": [250, 250]})
    assert section._floor_images(same, 250) == "250 real images, as many as each run generates"
    fewer = pd.DataFrame({"protocol_n_generated": [24]})
    assert section._floor_images(fewer, 40) == "24 real images (the split holds fewer than the 40 each run generates)"
    assert section._floor_images(pd.DataFrame({"protocol_n_generated": []}), 40) == ""


def test_runs_under_different_protocols_are_refused():
    from facegen.evaluation.summary import check_protocols

    def result(run, dataset="celeba", **protocol):
        base = {"n_generated": 100, "n_real": 200, "real_split": "train", "sampler": "prior", "inception_mode": "fp32",
                "seed": 0, "kid_subsets": 10, "kid_subset_size": 50, "prc_k": 3, "dc_k": 5}
        return {"run": run, "dataset": dataset, "resolution": 32, "protocol": {**base, **protocol}}

    check_protocols([result("a"), result("b"), result("c", dataset="utkface", n_real=150)])  # other data, own n_real
    with pytest.raises(ValueError, match=r"inception_mode: \"fp32\" in a; \"bf16\" in b.*Re-evaluate"):
        check_protocols([result("a"), result("b", inception_mode="bf16")])
    with pytest.raises(ValueError, match="n_real for celeba/32"):
        check_protocols([result("a"), result("b", n_real=150)])


def test_hvae_replica_is_compared_on_inception_fid_and_the_pixel_formula_gets_its_reference_scores(tmp_path):
    from facegen.report import _environment
    from facegen.report.sections import training

    replica = result("fc_hvae", 0, 150.0, "fc_hvae")
    floor = {**result("real_val_floor", 0, 40.0, "real"), "family": "real", "train_minutes": None}
    floor["metrics"] = {"fid": 40.0, "kid": 0.001, "approx_fid_pixel": 420.0, "approx_fid_pixel_mean_face": 210.0,
                        "approx_fid_pixel_perfect": 420.0}
    floor_path = tmp_path / "floor.json"
    floor_path.write_text(json.dumps({"floor": floor}))
    (tmp_path / "m.json").write_text(json.dumps(replica))
    out = tmp_path / "evaluation"
    summarize_evaluation([tmp_path / "m.json"], out / "metrics.csv", out / "metrics.json", out / "a.png", out / "b.png", [floor_path])
    config = {"results_dir": str(tmp_path)}
    rep = {"paper": {"approx_fid": 170.23, "recon_mse": 0.0726, "kl": 0.5, "cpu_hours": 2.4, "source": "HVAE paper"},
           "fc_hvae": {"run": "celeba/32/fc_hvae/0", "epochs": 600, "n_train_images": 5000, "recon_mse": 0.03, "kl": 20.0,
                       "approx_fid": 190.0, "cpu_hours": 0.7}}
    y = training.replica_yardsticks(config, rep)
    assert y["replica"]["fid"] == "150.0" and y["floor"]["fid"] == "40.0" and y["n_generated"] == 100
    assert y["floor"]["approx_fid_pixel_mean_face"] == "210.0" and y["floor"]["approx_fid_pixel_perfect"] == "420.0"
    assert training.replica_yardsticks(config, {**rep, "fc_hvae": None}) is None
    run = {"run": "celeba/32/fc_hvae/0", "arch": "fc_hvae", "n_parameters": 10, "n_train_images": 5000, "train_gflop_per_image": 0.01,
           "epochs": 600, "train_minutes": 43.0, "img_per_s": 1000.0, "epochs_to_convergence": 100, "final_recon": 0.03,
           "d_collapse_epochs": 0, "convergence_metric": "recon"}
    Image.new("RGB", (4, 4)).save(tmp_path / "curves.png")
    section = {"runs": [run], "figure": str(tmp_path / "curves.png"), "replication": rep, "yardsticks": y,
               "d_won": [{"run": "celeba/32/dcgan/0", "d_fake": "0.010"}], "d_won_fake": 0.05, "d_won_share": 0.2}
    for kind in ("html", "tex"):
        text = _environment(kind).get_template(f"training.{kind}.j2").render(section=section)
        assert "is not a distance" in text and "210.0" in text and "420.0" in text and "150.0" in text
        assert " beat " not in text.replace("said to beat", "")
        assert "celeba/32/dcgan/0 {(}0.010{)}" in text or "celeba/32/dcgan/0 (0.010)" in text
        # a replication file from before recon_reduction was recorded reads as the model's default, the mean
        assert "as the paper's text describes" in text
        summed = {**section, "replication": {**rep, "fc_hvae": {**rep["fc_hvae"], "recon_reduction": "sum", "beta": 0.02}}}
        text = _environment(kind).get_template(f"training.{kind}.j2").render(section=summed)
        assert "not the per-pixel mean the paper's text describes" in text
        assert "squared errors + 0.02" in text  # the run's own beta, read from its card


def test_collapsed_runs_are_those_below_half_the_real_diversity():
    rows = []
    for run, div in (("a", 0.10), ("b", 0.15), ("c", 0.2)):
        rows += [{"run": run, "model": run, "resolution": 32, "train_minutes": 1.0, "metric": "lpips_diversity", "value": div},
                 {"run": run, "model": run, "resolution": 32, "train_minutes": 1.0, "metric": "lpips_diversity_real", "value": 0.28}]
    assert collapsed(pd.DataFrame(rows))["run"].tolist() == ["a"]  # 0.14 is half of 0.28
