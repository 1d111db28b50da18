"""The findings' tests and verdicts: known answers of the statistics, and verdicts that follow the result
files (a changed result file changes the verdict's text)."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from facegen.evaluation.gates import gate_table
from facegen.findings import compute, stats
from facegen.findings import vaegan_proposal as vaegan, hvae_paper as hvae, bias as bias_findings
from facegen.findings.conv_vae_report import wilson
from facegen.findings.record import finding
from facegen.findings.results import Results


def test_an_exact_permutation_test_of_three_against_three_seeds_bottoms_out_at_one_in_ten():
    # 20 splits of 6 values into 3 + 3; the observed split and its mirror are the two most extreme
    assert stats.permutation_p([1, 2, 3], [10, 11, 12]) == pytest.approx(0.1)
    assert stats.permutation_p([1, 2, 3], [1, 2, 3]) == 1.0


def test_compare_seeds_decides_by_the_bootstrap_interval():
    lower = stats.compare_seeds([100, 101, 102], [200, 201, 202])
    assert lower["verdict"] == stats.BETTER and lower["high"] < 0 and lower["difference"] == pytest.approx(-100)
    assert stats.compare_seeds([200, 201, 202], [100, 101, 102])["verdict"] == stats.WORSE
    # higher is better (precision): the same numbers read the other way
    assert stats.compare_seeds([0.5, 0.6, 0.55], [0.1, 0.12, 0.11], lower_is_better=False)["verdict"] == stats.BETTER
    overlapping = stats.compare_seeds([100, 150, 200], [120, 160, 190])
    assert overlapping["verdict"] == stats.UNDECIDED and overlapping["low"] < 0 < overlapping["high"]
    single = stats.compare_seeds([100], [200, 201])
    assert single["verdict"] == stats.UNAVAILABLE and "2 or more seeds" in single["test"]


def test_against_quoted_uses_the_stated_tolerance():
    assert stats.against_quoted(0.0726 * 1.15, 0.0726)["verdict"] == stats.REPRODUCED
    assert stats.against_quoted(0.0726 * 1.5, 0.0726)["verdict"] == stats.NOT_REPRODUCED
    assert stats.against_quoted(None, 0.0726)["verdict"] == stats.UNAVAILABLE
    assert stats.against_quoted(float("nan"), 1.0)["verdict"] == stats.UNAVAILABLE


def test_mean_interval_is_the_t_interval_and_one_seed_has_none():
    one = stats.mean_interval([3.0])
    assert one["n"] == 1 and math.isnan(one["low"]) and one["mean"] == 3.0
    three = stats.mean_interval([1.0, 2.0, 3.0])  # 2 +- t(0.975, 2) x 1 / sqrt(3) = 2 +- 2.484
    assert (three["low"], three["high"]) == (pytest.approx(-0.484, abs=1e-3), pytest.approx(4.484, abs=1e-3))
    assert three["sd"] == pytest.approx(1.0)


def test_a_bounded_metrics_interval_stays_in_its_range():
    """Precision 0, 0, 0.01 over seeds: the t interval reaches below 0, a precision cannot."""
    free = stats.mean_interval([0.0, 0.0, 0.01])
    cut = stats.mean_interval([0.0, 0.0, 0.01], stats.UNIT_RANGE)
    assert free["low"] < 0 and cut["low"] == 0.0 and cut["high"] == free["high"] and cut["mean"] == free["mean"]
    assert stats.mean_interval([0.99, 1.0, 1.0], stats.UNIT_RANGE)["high"] == 1.0


def test_compare_seeds_keeps_its_level_at_three_seeds():
    """Under no difference, three seeds a side from one normal spread: a 95% interval decides in about 5% of
    comparisons or fewer (a percentile bootstrap decided in about a fifth)."""
    rng = np.random.default_rng(0)
    decided = [stats.compare_seeds(rng.normal(200, 15, 3), rng.normal(200, 15, 3))["verdict"] != stats.UNDECIDED for _ in range(400)]
    assert np.mean(decided) < 0.07


def test_permutation_p_samples_relabellings_when_there_are_too_many():
    a, b = np.arange(12.0), np.arange(12.0) + 100  # C(24, 12) = 2.7 million splits: a seeded sample of 20,000
    assert stats.permutation_p(a, b) == pytest.approx(1 / 20_001)


def test_wilson_interval_known_answer():
    low, high = wilson(0.5, 100)
    assert (low, high) == (pytest.approx(0.4038, abs=1e-4), pytest.approx(0.5962, abs=1e-4))


def test_a_finding_carries_only_a_known_verdict():
    with pytest.raises(ValueError, match="unknown verdict 'significant'"):
        finding("c", "q", "o", "significant", "t", [])


# -- verdicts from result files ------------------------------------------------------------------------

MODELS = {"vae": "vae", "dcgan": "dcgan", "vaegan_early": "vaegan", "vaegan_late": "vaegan", "plain": "vae", "dc": "dcgan"}


def _config(tmp_path):
    from facegen.config import load

    config = load("config/config.yaml", {"results_dir": str(tmp_path / "results")})
    return config


def _write_eval(config, fid: dict, precision=None, recall=None, fid_200=None):
    """A tidy evaluation table with three seeds of each model at celeba 32, and a real floor. ``fid``: the
    FID_inf the verdicts decide on; FID itself, a description, is the same unless ``fid_200`` gives it."""
    rows = []
    for model, values in fid.items():
        for seed, v in enumerate(values):
            for metric, value in (("fid_inf", v), ("fid", (fid_200 or fid)[model][seed]), ("precision", (precision or {}).get(model, 0.1)), ("recall", (recall or {}).get(model, 0.1)),
                                  ("lpips_diversity", 0.2), ("lpips_diversity_real", 0.28)):
                rows.append({"run": f"celeba/32/{model}/{seed}", "dataset": "celeba", "resolution": 32, "model": model, "seed": seed,
                             "arch": MODELS[model], "family": "gan" if MODELS[model] == "dcgan" else "vae", "train_minutes": 1.0,
                             "metric": metric, "value": value, "note": "", "protocol_n_generated": 200, "protocol_n_real": 1000,
                             "protocol_real_split": "train"})
    rows.append({"run": "celeba/32/real_val_floor", "dataset": "celeba", "resolution": 32, "model": "real_val_floor", "seed": 0,
                 "arch": "real", "family": "real", "train_minutes": None, "metric": "fid", "value": 49.0, "note": ""})
    path = Results(config).path("evaluation")
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    gate_table(pd.DataFrame(rows)).to_csv(Results(config).path("gates"), index=False)  # as the evaluation summary writes it
    table = Results(config).path("training_table")
    table.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{"run": f"celeba/32/{m}/{s}", "d_won": False, "d_fake_final": None if m == "vae" else 0.3}
                  for m in fid for s in range(3)]).to_csv(table, index=False)


def _hypothesis(config, fusion_model="vaegan_late"):
    found = vaegan.findings(Results(config))
    return next(i for i in found["items"] if i["claim"].startswith(f"The {vaegan.fusion(config, fusion_model)}-fusion"))


def test_the_hybrid_hypothesis_follows_the_evaluation_table(tmp_path):
    config = _config(tmp_path)
    _write_eval(config, {"vae": [200, 205, 210], "dcgan": [240, 250, 230], "vaegan_early": [300, 320, 310], "vaegan_late": [150, 155, 160]})
    late = _hypothesis(config)
    assert late["verdict"] == stats.REPRODUCED and "evaluation/metrics.csv" in late["sources"]
    assert "permutation p: vae 0.10, dcgan 0.10" in late["test"]
    early = _hypothesis(config, "vaegan_early")
    assert early["verdict"] == stats.NOT_REPRODUCED
    # the same check on a changed result file: the late fusion's FIDs now sit among the VAE's
    _write_eval(config, {"vae": [200, 205, 210], "dcgan": [240, 250, 230], "vaegan_early": [300, 320, 310], "vaegan_late": [195, 215, 205]})
    changed = _hypothesis(config)
    assert changed["verdict"] == stats.UNDECIDED and changed["ours"] != late["ours"]


def test_the_baselines_are_found_by_architecture_not_by_config_name(tmp_path):
    config = _config(tmp_path)
    fids = {"vaegan_early": [300, 320, 310], "vaegan_late": [150, 155, 160]}
    _write_eval(config, {"vae": [200, 205, 210], "dcgan": [240, 250, 230], **fids})
    named = _hypothesis(config)
    _write_eval(config, {"plain": [200, 205, 210], "dc": [240, 250, 230], **fids})
    renamed = _hypothesis(config)
    assert renamed["verdict"] == named["verdict"] == stats.REPRODUCED
    assert renamed["ours"] == named["ours"].replace("vae ", "plain ").replace("dcgan ", "dc ")


def test_the_fusion_ranking_and_the_trade_off_are_decided_over_seeds(tmp_path):
    config = _config(tmp_path)
    _write_eval(config, {"vae": [200, 205, 210], "dcgan": [240, 250, 230], "vaegan_early": [300, 320, 310], "vaegan_late": [150, 155, 160]},
                precision={"vae": 0.01, "dcgan": 0.2, "vaegan_early": 0.05, "vaegan_late": 0.3},
                recall={"vae": 0.0, "dcgan": 0.02, "vaegan_early": 0.0, "vaegan_late": 0.05})
    items = {i["claim"]: i for i in vaegan.findings(Results(config))["items"]}
    ranking = next(i for c, i in items.items() if c.startswith("Which fusion"))
    assert ranking["verdict"] == stats.BETTER and ranking["ours"].startswith("by mean FID_inf: late")
    trade = next(i for c, i in items.items() if "trade-off" in c)
    assert trade["verdict"] == stats.REPRODUCED
    stable = next(i for c, i in items.items() if "stable" in c)
    assert stable["verdict"] == stats.REPRODUCED


def test_a_collapsed_hybrid_is_not_stable(tmp_path):
    config = _config(tmp_path)
    _write_eval(config, {"vae": [200, 205, 210], "dcgan": [240, 250, 230], "vaegan_early": [300, 320, 310], "vaegan_late": [150, 155, 160]})
    path = Results(config).path("evaluation")
    t = pd.read_csv(path)
    t.loc[(t["run"] == "celeba/32/vaegan_late/1") & (t["metric"] == "lpips_diversity"), "value"] = 0.05
    t.to_csv(path, index=False)
    stable = next(i for i in vaegan.findings(Results(config))["items"] if "stable" in i["claim"])
    assert stable["verdict"] == stats.NOT_REPRODUCED and "vaegan_late: FID sd" in stable["ours"] and "1 flagged" in stable["ours"]


def test_a_hybrid_without_its_discriminator_record_leaves_stability_unchecked(tmp_path):
    """No flag because D(fake) was never recorded is no evidence of stable training."""
    config = _config(tmp_path)
    _write_eval(config, {"vae": [200, 205, 210], "dcgan": [240, 250, 230], "vaegan_early": [300, 320, 310], "vaegan_late": [150, 155, 160]})
    table = Results(config).path("training_table")
    t = pd.read_csv(table)
    t.loc[t["run"] == "celeba/32/vaegan_early/2", "d_fake_final"] = None
    t.to_csv(table, index=False)
    stable = next(i for i in vaegan.findings(Results(config))["items"] if "stable" in i["claim"])
    assert stable["verdict"] == stats.UNAVAILABLE and "unchecked (no LPIPS diversity or final D(fake)): celeba/32/vaegan_early/2" in stable["ours"]


def test_the_conv_vae_reaches_the_hvae_papers_mse_in_counted_minutes(tmp_path):
    config = _config(tmp_path)
    _write_eval(config, {"vae": [200, 205, 210], "dcgan": [240, 250, 230], "vaegan_early": [300, 320, 310], "vaegan_late": [150, 155, 160]})
    res = Results(config)
    for seed in range(3):
        run_dir = res.root / "train/celeba/32/vae" / str(seed)
        run_dir.mkdir(parents=True)
        pd.DataFrame({"epoch": [1, 2, 3], "recon": [0.09, 0.07, 0.05], "seconds": [60.0, 60.0, 60.0]}).to_csv(run_dir / "history.csv", index=False)
    item = hvae._vae_minutes(res, "celeba", 32)
    assert item["verdict"] == stats.BETTER and "2.0 min (end of epoch 2)" in item["ours"]


def test_consistently_worse_groups_are_those_significant_in_every_run():
    rows = []
    for run in ("celeba/32/vae/0", "celeba/32/hvae/0"):
        rows += [{"run": run, "attribute": "Pale_Skin", "metric": "mse", "group": "Pale_Skin", "mean": 0.03, "pooled_mean": 0.024,
                  "significant": True},
                 {"run": run, "attribute": "Pale_Skin", "metric": "mse", "group": "not Pale_Skin", "mean": 0.0238, "pooled_mean": 0.024,
                  "significant": False}]
    rows.append({"run": "celeba/32/vae/0", "attribute": "Male", "metric": "mse", "group": "Male", "mean": 0.026, "pooled_mean": 0.024,
                 "significant": True})
    rows.append({"run": "celeba/32/hvae/0", "attribute": "Male", "metric": "mse", "group": "Male", "mean": 0.025, "pooled_mean": 0.024,
                 "significant": False})
    found = bias_findings.worse_groups(pd.DataFrame(rows))
    assert (found[0]["group"], found[0]["n_worse"], found[0]["n_runs"]) == ("Pale_Skin", 2, 2)
    assert found[0]["ratio_high"] == pytest.approx(1.25)
    male = next(r for r in found if r["group"] == "Male")
    assert (male["n_worse"], male["n_runs"]) == (1, 2)


def test_findings_without_result_files_are_unavailable_with_reasons(tmp_path):
    config = _config(tmp_path)
    found = compute(config)
    verdicts = {i["verdict"] for p in found["papers"] for i in p["items"]}
    assert verdicts == {stats.UNAVAILABLE}
    assert found["smoke"] is False and any(line.startswith("Not computed") for line in found["limitations"])
    json.dumps(found)  # what facegen findings writes


def test_overall_needs_every_comparison_to_go_one_way():
    assert stats.overall([stats.BETTER, stats.BETTER]) == stats.REPRODUCED
    assert stats.overall([stats.BETTER, stats.WORSE]) == stats.NOT_REPRODUCED
    assert stats.overall([stats.BETTER, stats.UNDECIDED]) == stats.UNDECIDED
    assert stats.overall([stats.BETTER, stats.UNAVAILABLE]) == stats.UNAVAILABLE
    assert stats.overall([]) == stats.UNAVAILABLE
    assert stats.overall([stats.BETTER], stats.BETTER, stats.WORSE) == stats.BETTER


def test_identified_counts_faces_whose_variations_lie_nearest_their_own_input():
    from facegen.experiments.variations import identified

    # 2 inputs x 2 variations x 2 inputs: input 0's variations lie nearest input 0 on average; input 1's
    # nearest input 0 (0.55 against 0.6), so one face of two
    d = np.array([[[0.1, 1.0], [0.2, 1.0]], [[1.0, 0.3], [0.1, 0.9]]])
    assert identified(d) == pytest.approx(0.5)


def test_variations_keep_identity_only_beyond_chance_and_fail_only_without_variation(tmp_path):
    from facegen.findings import variations_report as var_findings

    config = _config(tmp_path)
    path = Results(config).path("experiment_variations")
    path.parent.mkdir(parents=True)
    rows = lambda hit, pixel_std=0.01: pd.DataFrame([  # noqa: E731
        {"run": "celeba/64/vae/0", "mode": "posterior", "n_inputs": 4, "k": 8, "input_noise": 0.0, "diversity_lpips": 0.05,
         "identity_inception_distance": 15.0, "identified": hit, "pixel_std": pixel_std},
        {"run": "celeba/64/vae/0", "mode": "other faces", "n_inputs": 4, "k": 8, "input_noise": 0.0, "diversity_lpips": 0.3,
         "identity_inception_distance": 20.0, "identified": 0.25, "pixel_std": 0.1}])
    rows(1.0).to_csv(path, index=False)
    kept = var_findings._variations(Results(config))
    assert kept["verdict"] == stats.REPRODUCED and "4 of 4 faces" in kept["ours"] and "p = 0.00" in kept["ours"]
    # 3 of 4 (p = 0.05) and 1 of 4 do not show identity kept, and do not show it lost either.
    for hit in (0.75, 0.25):
        rows(hit).to_csv(path, index=False)
        assert var_findings._variations(Results(config))["verdict"] == stats.UNDECIDED
    rows(1.0, pixel_std=0.0).to_csv(path, index=False)
    assert var_findings._variations(Results(config))["verdict"] == stats.NOT_REPRODUCED


def test_seeds_without_spread_on_both_sides_are_not_compared():
    """Recall 0, 0, 0 against 0.005 x 3: a zero-width Welch interval would call it 'worse'."""
    out = stats.compare_seeds([0.0, 0.0, 0.0], [0.005] * 3, lower_is_better=False)
    assert out["verdict"] == stats.UNDECIDED and "no spread" in out["test"]
    assert stats.compare_seeds([0.0, 0.0, 0.0], [0.005, 0.01, 0.0], lower_is_better=False)["verdict"] != stats.UNAVAILABLE


def test_welch_interval_matches_scipy():
    from scipy import stats as st

    a, b = np.array([200.0, 215, 207]), np.array([240.0, 228, 251, 233])
    ci = st.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert stats.welch_interval(a, b) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_findings_of_a_study_render_as_html_and_as_a_pdf(tmp_path):
    """compute() over a results tree with the central comparison, then the four sections it feeds rendered
    in both formats and through LaTeX (an empty or missing value must not break either)."""
    from facegen.findings import write
    from facegen.report import build_pdf, render
    from facegen.report.sections.findings import ABSTRACT, FINDINGS, LIMITATIONS, METHODS

    config = _config(tmp_path)
    _write_eval(config, {"vae": [200, 205, 210], "dcgan": [240, 250, 230], "vaegan_early": [300, 320, 310], "vaegan_late": [150, 155, 160]})
    pd.DataFrame([{"run": f"celeba/32/{m}/{s}", "dataset": "celeba", "resolution": 32, "model": m, "seed": s, "arch": MODELS[m],
                   "n_parameters": 1000, "n_train_images": 4000, "epochs": 3, "train_minutes": 2.5, "precision": "fp32", "d_won": False}
                  for m in ("vae", "dcgan", "vaegan_early", "vaegan_late") for s in range(3)]).to_csv(Results(config).path("training_table"), index=False)
    found = write(config)
    assert found["has_figure"] and (tmp_path / "results/findings/central.png").stat().st_size > 0
    assert any(line.startswith("VAE-GAN proposal: hybrids against VAE and DCGAN") for line in found["abstract"])
    assert any("With 3 seeds a side" in line for line in found["limitations"])
    # the DCGAN's FID (240) is above the VAE's (205): the one model failing a gate, and the Limitations name it
    assert any(line.startswith("1 of 4 models fail at least one quality gate") and line.endswith("celeba/32/dcgan. Their comparisons "
               "are between weak models.") for line in found["limitations"])
    sections = [{"name": part.NAME, "title": part.TITLE, **part.context(config, tmp_path)} for part in (ABSTRACT, METHODS, FINDINGS, LIMITATIONS)]
    context = {"title": "t", "sections": sections, "provenance_path": "p.json",
               "provenance": {"git": {"commit": "abc", "dirty": False}, "config_hash": "h", "packages": {}, "datasets": {},
                              "device": {"platform": "x", "cpu_count": 2, "cuda_available": False}}}
    html = render("html", context)
    assert "late-fusion VAE-GAN has a lower FID" in html and "verdict: <strong>reproduced</strong>" in html
    build_pdf(render("tex", context), tmp_path / "findings.pdf")
    assert (tmp_path / "findings.pdf").read_bytes().startswith(b"%PDF")


def _gaussian_scores(scale: float, shift: float, seeds=3, d=96) -> dict[str, list[float]]:
    """FID and FID_inf of a Gaussian "model" N(shift, scale I) in d dimensions, 200 samples per seed, against
    1,000 samples of N(0, I): FID_inf = d shift^2 + d (1 - sqrt(scale))^2 in the population."""
    from facegen.metrics.distribution import fid_from_features, fid_infinity, statistics

    real = statistics(np.random.default_rng(99).standard_normal((1000, d)))
    out = {"fid": [], "fid_inf": []}
    for seed in range(seeds):
        gen = np.random.default_rng(seed).standard_normal((200, d)) * np.sqrt(scale) + shift
        out["fid"].append(fid_from_features(gen, real))
        out["fid_inf"].append(fid_infinity(gen, real, seed)["fid_inf"])
    return out


def test_the_quality_verdicts_follow_fid_inf_where_fid_at_200_disagrees(tmp_path):
    """Model A, N(0.15, I) (population FID 2.16), beats model B, N(0, 0.6 I) (4.88), but A's broader samples
    carry the larger bias at n = 200, so FID_200 ranks B first: the fusion ranking and the gates follow A."""
    a, b = _gaussian_scores(1.0, 0.15), _gaussian_scores(0.6, 0.0)
    assert np.mean(a["fid"]) > np.mean(b["fid"]) and np.mean(a["fid_inf"]) < np.mean(b["fid_inf"])
    config = _config(tmp_path)
    base = {"vae": [200, 205, 210], "dcgan": [240, 250, 230]}

    def ranking(late, early):
        _write_eval(config, {**base, "vaegan_late": late["fid_inf"], "vaegan_early": early["fid_inf"]},
                    fid_200={**base, "vaegan_late": late["fid"], "vaegan_early": early["fid"]})
        return next(i for i in vaegan.findings(Results(config))["items"] if i["claim"].startswith("Which fusion"))

    assert ranking(a, b)["ours"].startswith("by mean FID_inf: late") and ranking(a, b)["verdict"] == stats.BETTER
    assert ranking(b, a)["ours"].startswith("by mean FID_inf: early")  # the data flipped: so does the verdict
    # the gate: A as the DCGAN against B as the VAE passes on FID_inf, and fails when they swap
    for gan, vae, passes in ((a, b, True), (b, a, False)):
        _write_eval(config, {"vae": vae["fid_inf"], "dcgan": gan["fid_inf"]}, fid_200={"vae": vae["fid"], "dcgan": gan["fid"]})
        gates = gate_table(Results(config).table("evaluation")).set_index("model")
        assert bool(gates.loc["dcgan", "quality_ok"]) is passes
