"""Each verdict of the findings follows its result file: a result file is written, its verdict read, one value
of the file changed, and the verdict's text must change with it (issue 18's rule)."""

import json

import pandas as pd
import pytest

from facegen.findings import stats
from facegen.findings import bias as bias_findings
from facegen.findings import conv_vae_report as conv_vae, hvae_paper as hvae, vae_gan_study as study
from facegen.findings import variations_report as var_findings
from facegen.findings.results import Results


@pytest.fixture
def res(tmp_path):
    from facegen.config import load

    return lambda: Results(load("config/config.yaml", {"results_dir": str(tmp_path / "results")}))


def _write(res, role: str, rows: list[dict]) -> None:
    path = res().path(role)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)


def _eval_rows(values: dict[tuple[str, str], list[float]], dataset="celeba", resolution=32) -> list[dict]:
    """(model, metric) -> one value per seed, in the evaluation summary's tidy shape."""
    return [{"run": f"{dataset}/{resolution}/{model}/{seed}", "dataset": dataset, "resolution": resolution, "model": model, "seed": seed,
             "arch": "beta_vae" if model.startswith("beta_vae") else model, "family": "gan" if model == "dcgan" else "vae",
             "metric": metric, "value": v, "note": ""}
            for (model, metric), vs in values.items() for seed, v in enumerate(vs)]


def _changed(first: dict, second: dict) -> None:
    assert first["verdict"] != second["verdict"] and first["ours"] != second["ours"]


# -- HVAE paper -----------------------------------------------------------------------------------------

def _replica_fid(res, replica_fid: float) -> dict:
    path = res().path("training_replication")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"fc_hvae": {"run": "celeba/32/fc_hvae/0", "epochs": 600, "n_train_images": 5000, "recon_mse": 0.1,
                                            "kl": 0.01, "cpu_hours": 0.6}}))
    _write(res, "evaluation", _eval_rows({("vae", "fid_inf"): [190.0, 200.0, 210.0], ("fc_hvae", "fid_inf"): [replica_fid],
                                          ("vae", "fid"): [300.0] * 3, ("fc_hvae", "fid"): [300.0]}))  # FID decides nothing
    return next(i for i in hvae.findings(res())["items"] if i["claim"].startswith("Does the conv VAE beat"))


def test_the_replica_is_compared_with_a_prediction_interval_of_one_more_vae_seed(res):
    """VAE 190, 200, 210: the mean's 95% t interval is [175, 225], one more seed's [150, 250]."""
    assert _replica_fid(res, 387.0)["verdict"] == stats.BETTER
    near = _replica_fid(res, 240.0)  # beyond the mean's interval, inside one seed's
    assert near["verdict"] == stats.UNDECIDED and "prediction interval" in near["test"]
    assert _replica_fid(res, float("nan"))["verdict"] == stats.UNAVAILABLE


# -- VAE/GAN study --------------------------------------------------------------------------------------

def test_the_laplacian_ordering_follows_the_sharpness_of_the_samples(res):
    real = {("vae", "sharpness_real"): [3000.0] * 3}
    _write(res, "evaluation", _eval_rows({**real, ("vae", "sharpness_samples"): [250, 260, 255],
                                          ("dcgan", "sharpness_samples"): [4000, 4200, 4100]}))
    holds = study._sharpness(res())
    assert holds["verdict"] == stats.REPRODUCED and "real 3,000" in holds["ours"] and "t interval" in holds["test"]
    _write(res, "evaluation", _eval_rows({**real, ("vae", "sharpness_samples"): [250, 260, 255],
                                          ("dcgan", "sharpness_samples"): [2300, 2400, 2350]}))
    _changed(holds, study._sharpness(res()))
    # The DCGAN's interval reaches across real: the order is not shown, and not contradicted.
    _write(res, "evaluation", _eval_rows({**real, ("vae", "sharpness_samples"): [250, 260, 255],
                                          ("dcgan", "sharpness_samples"): [2000, 4000, 3500]}))
    assert study._sharpness(res())["verdict"] == stats.UNDECIDED
    _write(res, "evaluation", _eval_rows({("vae", "sharpness_real"): [float("nan")] * 3, ("vae", "sharpness_samples"): [250, 260, 255],
                                          ("dcgan", "sharpness_samples"): [4000, 4200, 4100]}))
    assert study._sharpness(res())["verdict"] == stats.UNAVAILABLE


def test_the_laplacian_ordering_of_single_seeds_says_it_is_untested(res):
    _write(res, "evaluation", _eval_rows({("vae", "sharpness_real"): [3000.0], ("vae", "sharpness_samples"): [250],
                                          ("dcgan", "sharpness_samples"): [4000]}))
    assert study._sharpness(res())["test"].startswith("single seed")


def _smile_rows(rise: float) -> list[dict]:
    return [{"run": run, "attribute": "Smiling", "alpha": a, "p_attribute": 0.5 + rise * a / 2, "leakage": 0.02}
            for run in ("celeba/32/vae/0", "celeba/64/vae/0") for a in (-2.0, 0.0, 1.0, 2.0)]


def test_the_smile_vector_works_when_p_smiling_rises_in_every_run(res):
    _write(res, "experiment_attributes", _smile_rows(0.2))
    works = study._smile(res())
    assert works["verdict"] == stats.REPRODUCED and "0.50 at alpha 0 -> 0.70 at alpha 2" in works["ours"]
    _write(res, "experiment_attributes", _smile_rows(0.05))
    _changed(works, study._smile(res()))
    _write(res, "experiment_attributes", [{**r, "p_attribute": float("nan")} if r["run"] == "celeba/64/vae/0" else r
                                          for r in _smile_rows(0.2)])
    assert study._smile(res())["verdict"] == stats.UNAVAILABLE


def test_the_inception_score_is_unavailable_with_the_evaluations_reason(res):
    _write(res, "evaluation", [{**r, "value": None, "note": "IS classifier weights missing"}
                               for r in _eval_rows({("vae", "inception_score"): [1.0]})])
    item = study._inception_score(res())
    assert item["verdict"] == stats.UNAVAILABLE and item["ours"] == "IS classifier weights missing"


# -- conv-VAE report ------------------------------------------------------------------------------------

def _classifier(res, **metrics) -> None:
    r = res()
    path = r.classifier_file(conv_vae.ANCHORS["dataset"], conv_vae.ANCHORS["input"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"n_test": 2000, "epochs": 10, "gender_accuracy": 0.90, "race_accuracy": 0.78, "age_mae": 6.0, **metrics}))


def test_the_classifier_anchors_follow_the_classifiers_metrics(res):
    _classifier(res)
    gender, race, age = conv_vae._classifier(res())
    assert [i["verdict"] for i in (gender, race, age)] == [stats.REPRODUCED] * 3
    assert "[0.886, 0.912] on 2,000 test faces" in gender["ours"]
    _classifier(res, gender_accuracy=0.80, race_accuracy=0.85, age_mae=9.0)
    gender2, race2, age2 = conv_vae._classifier(res())
    assert (gender2["verdict"], race2["verdict"], age2["verdict"]) == (stats.WORSE, stats.BETTER, stats.NOT_REPRODUCED)


def test_the_classifier_findings_read_test_and_not_val(res):
    _classifier(res, val_gender_accuracy=0.50, val_race_accuracy=0.99, val_age_mae=20.0)
    assert [i["verdict"] for i in conv_vae._classifier(res())] == [stats.REPRODUCED] * 3


def test_the_reports_classifier_table_shows_the_findings_verdict(res):
    """Accuracy 0.895 on 2,370 test faces: the findings' Wilson interval with the rounding allowance says
    'reproduced', where a bare 0.895 >= 0.90 said 'below'; 0.80 is 'worse' in both."""
    from facegen.report.sections import bias as section

    path = res().classifier_file(conv_vae.ANCHORS["dataset"], conv_vae.ANCHORS["input"])
    for accuracy, verdict in ((0.895, stats.REPRODUCED), (0.80, stats.WORSE)):
        _classifier(res, n_test=2370, gender_accuracy=accuracy, val_gender_accuracy=0.7, age_rmse=9.0, dataset="utkface", source="gray48")
        found = {"papers": [{"items": conv_vae._classifier(res())}]}
        rows = {r["metric"]: r for r in section._classifier_rows([path], section.anchor_verdicts(found))}
        assert rows["gender_accuracy"]["verdict"] == verdict == found["papers"][0]["items"][0]["verdict"]
        assert rows["gender_accuracy"]["val"] == "0.700" and "val_gender_accuracy" not in rows
        assert rows["age_rmse"]["verdict"] == "not judged by the findings"


def test_the_classifier_anchors_are_unavailable_without_the_classifier(res):
    (item,) = conv_vae._classifier(res())
    assert item["verdict"] == stats.UNAVAILABLE and "is missing" in item["ours"]


GRID = {"beta_vae_z4_b1": (0.030, 190), "beta_vae_z256_b1": (0.024, 175), "beta_vae_z4_b001": (0.029, 240), "beta_vae_z256_b001": (0.015, 191)}


def _grid_rows(cells) -> list[dict]:
    return _eval_rows({(m, k): [v] for m, (mse, fid) in cells.items() for k, v in (("recon_mse", mse), ("fid_inf", fid))})


def test_the_grid_names_its_winners_and_tests_the_latent_dimension(res):
    _write(res, "evaluation", _grid_rows(GRID))
    holds = conv_vae._grid(res())
    assert holds["verdict"] == stats.REPRODUCED
    assert "Best reconstruction: z 256, beta 0.01; best samples (FID_inf): z 256, beta 1" in holds["ours"]
    _write(res, "evaluation", _grid_rows({**GRID, "beta_vae_z256_b1": (0.035, 175)}))  # z 256 no longer reconstructs better at beta 1
    _changed(holds, conv_vae._grid(res()))
    # Without the z 256, beta 1 corner the latent dimension is tested at one beta only: no verdict.
    _write(res, "evaluation", _grid_rows({k: v for k, v in GRID.items() if k != "beta_vae_z256_b1"}))
    gap = conv_vae._grid(res())
    assert gap["verdict"] == stats.UNAVAILABLE and "lacks z 256, beta 1" in gap["ours"]


def _restoration_rows(vae_psnr: float) -> list[dict]:
    return [{"run": "celeba/32/vae/0", "corruption": "noise", "severity": 0.1, "method": "none (corrupted)", "n": 100, "psnr": 20.0},
            {"run": "celeba/32/vae/0", "corruption": "noise", "severity": 0.1, "method": "VAE reconstruction", "n": 100, "psnr": vae_psnr},
            {"run": "classical/celeba/32", "corruption": "noise", "severity": 0.1, "method": "mean filter 3x3", "n": 100, "psnr": 22.0},
            {"run": "classical/celeba/32", "corruption": "noise", "severity": 0.1, "method": "median filter 3x3", "n": 100, "psnr": 24.0}]


def test_restoration_is_decided_against_the_reports_mean_filter_beyond_the_tolerance(res):
    _write(res, "experiment_restoration", _restoration_rows(23.0))  # above the mean filter (22.0), below the median (24.0)
    better = conv_vae._restoration(res())
    assert better["verdict"] == stats.REPRODUCED and "the VAE against the classical method is better in 1 of 1 runs (VAE 23.0-23.0 dB, classical 22.0-22.0 dB)" in better["ours"]
    _write(res, "experiment_restoration", _restoration_rows(22.3))  # within 0.5 dB
    _changed(better, conv_vae._restoration(res()))
    _write(res, "experiment_restoration", _restoration_rows(16.0))
    assert conv_vae._restoration(res())["verdict"] == stats.NOT_REPRODUCED


# -- variations report ----------------------------------------------------------------------------------

def _chain(after: float) -> list[dict]:
    return [{"run": "celeba/64/vae/0", "step_index": i, "step": s, "recon_mse": v}
            for i, (s, v) in enumerate((("none", 0.0360), ("saturation/contrast", 0.03), ("unsharp mask", after)))]


def test_the_post_processing_ratio_is_held_against_the_quoted_one(res):
    _write(res, "experiment_postprocess", _chain(0.0190))
    held = var_findings._postprocess(res())
    assert held["verdict"] == stats.REPRODUCED and "0.036 -> 0.019 (x0.53)" in held["ours"]
    _write(res, "experiment_postprocess", _chain(0.0612))
    _changed(held, var_findings._postprocess(res()))


def _modes(det: float, post: float) -> list[dict]:
    return [{"run": "celeba/64/vae/0", "mode": "deterministic", "n_inputs": 4, "k": 1, "identity_inception_distance": det},
            {"run": "celeba/64/vae/0", "mode": "posterior", "n_inputs": 4, "k": 8, "identity_inception_distance": post}]


def test_deterministic_mode_is_reproduced_when_it_stays_no_farther_from_the_input(res):
    _write(res, "experiment_variations", _modes(15.0, 16.0))
    closer = var_findings._deterministic(res())
    assert closer["verdict"] == stats.REPRODUCED
    _write(res, "experiment_variations", _modes(18.0, 16.0))
    _changed(closer, var_findings._deterministic(res()))


# -- bias -----------------------------------------------------------------------------------------------

def _twins(balanced: str, balanced_fd2: list[float], baseline_fd2=(0.30, 0.32, 0.28)) -> list[dict]:
    """One mitigation pair, a row per seed: the baseline's unbiased fd2_uniform beside the twin's."""
    return [{"dataset": "utkface", "resolution": 64, "seed": seed, "baseline": "vae", "balanced": balanced, "balance_mode": "resample",
             "fd2_uniform_unbiased_baseline": base, "fd2_uniform_unbiased_balanced": bal, "fairer": "no clear difference",
             "mse_disparity_baseline": 1.14, "mse_disparity_balanced": 1.09, "fid_baseline": 315.8, "fid_balanced": 297.5}
            for seed, (base, bal) in enumerate(zip(baseline_fd2, balanced_fd2))]


def test_mitigation_is_decided_across_seeds(res):
    _write(res, "bias_mitigation", _twins("vae_balanced", [0.10, 0.12, 0.08]))
    fairer = bias_findings._mitigation(res())
    assert fairer["verdict"] == stats.BETTER and "0.3 -> 0.1 over 3 and 3 seeds" in fairer["ours"]
    _write(res, "bias_mitigation", _twins("vae_balanced", [0.50, 0.52, 0.48]))
    _changed(fairer, bias_findings._mitigation(res()))
    assert bias_findings._mitigation(res())["verdict"] == stats.WORSE
    _write(res, "bias_mitigation", _twins("vae_balanced", [0.25, 0.36, 0.30]))
    assert bias_findings._mitigation(res())["verdict"] == stats.UNDECIDED
    # One twin fairer, another less fair: not "worse" overall (the paper's first run said so).
    _write(res, "bias_mitigation", _twins("vae_balanced", [0.10, 0.12, 0.08]) + _twins("vae_reweighted", [0.50, 0.52, 0.48]))
    mixed = bias_findings._mitigation(res())
    assert mixed["verdict"] == stats.UNDECIDED and "(better;" in mixed["ours"] and "(worse;" in mixed["ours"]


def test_mitigation_with_one_seed_per_twin_is_unavailable(res):
    """However far apart one seed's twins are, one seed a side says nothing about another training run."""
    _write(res, "bias_mitigation", _twins("vae_balanced", [0.01], baseline_fd2=[0.60]))
    one = bias_findings._mitigation(res())
    assert one["verdict"] == stats.UNAVAILABLE and "needs 2 or more seeds a side (has 1 and 1)" in one["ours"]
    _write(res, "bias_mitigation", _twins("vae_balanced", [0.01, 0.02], baseline_fd2=[0.60, 0.62]))
    assert bias_findings._mitigation(res())["verdict"] == stats.BETTER
