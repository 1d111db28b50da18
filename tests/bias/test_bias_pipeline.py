"""The demographic classifier and the reconstruction-bias pipeline on the synthetic dataset."""

import numpy as np
import pandas as pd
import pytest

from facegen.bias import diagnostics, generation, reconstruction, selection
from facegen.bias.classifier import load_demographic, predict, train_demographic
from facegen.bias.selection import classifier_sources
from facegen.config import ConfigError, load
from facegen.data import fetch, prepare_dataset
from facegen.io import write_parquet


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bias")
    config = load({
        "results_dir": str(tmp / "results"),
        "data": {"resolutions": [16], "datasets": {"synthetic": {"kind": "synthetic", "n": 300, "size": 64,
                                                                 "group_weights": [0.6, 0.3, 0.1], "group_noise": [0, 0, 0]}}},
        "models": {"vae": {"arch": "vae"}},
        "experiments": [{"datasets": ["synthetic"], "resolutions": [16], "models": ["vae"], "seeds": [0]}],
        "bias": {"classifier": {"epochs": 1}, "n_boot": 300, "n_perm": 300},
    })
    fetch(config, "synthetic", tmp / "m.json")
    prepare_dataset(config, "synthetic", tmp / "m.json", tmp / "results/data/synthetic")
    return config, tmp


def test_reconstruction_bias_recovers_an_injected_disparity(prepared):
    config, tmp = prepared
    meta = pd.read_parquet(tmp / "results/data/synthetic/metadata.parquet")
    rows = np.arange(len(meta))  # every image, so the minority group has enough members
    rng = np.random.default_rng(0)
    hard = meta["group"].to_numpy()[rows] == 2  # the 10% minority is made 50% harder
    mse = rng.normal(0.02, 0.002, len(rows)) * np.where(hard, 1.5, 1.0)
    per_image = pd.DataFrame({"row": rows, "id": meta["id"].to_numpy()[rows], "mse": mse,
                              "ssim": 1 - 10 * mse, "lpips": 5 * mse})
    write_parquet(tmp / "results/eval/synthetic/16/vae/0/per_image.parquet", per_image)
    groups, disparity = reconstruction.analyse(config)
    d = disparity.set_index("metric")
    assert d.loc["mse", "worst_group"] == "tone_2" and d.loc["mse", "disparity_ratio"] == pytest.approx(1.5, abs=0.06)
    assert d.loc["ssim", "worst_group"] == "tone_2" and d.loc["ssim", "disparity_ratio"] < 1
    hard_row = groups[(groups.metric == "mse") & (groups.group == "tone_2")].iloc[0]
    assert hard_row["significant"] and hard_row["ci_low"] > hard_row["pooled_mean"]
    assert not groups[(groups.metric == "mse") & (groups.group == "tone_0")].iloc[0]["ci_low"] > 0.021
    # The injected disparity is the model's, not the images': it stays on MSE over each image's pixel variance.
    assert d.loc["mse_relative", "worst_group"] == "tone_2"
    table = reconstruction.run(config, tmp / "results/bias")
    assert (tmp / "results/bias/reconstruction_forest.png").stat().st_size > 0 and len(table) == 12


def test_relative_mse_removes_a_disparity_of_image_content_alone(prepared):
    """MSE proportional to each image's own pixel variance (a model equally good on every face, whose
    errors scale with contrast): raw MSE may differ by group, the relative yardstick is one constant."""
    config, tmp = prepared
    meta = pd.read_parquet(tmp / "results/data/synthetic/metadata.parquet")
    rows = np.arange(len(meta))
    variance = reconstruction.pixel_variance(np.load(tmp / "results/data/synthetic/images_16.npy"), rows)
    mse = 0.1 * variance * np.where(meta["group"].to_numpy() == 2, 3.0, 1.0)  # tone_2: 3x the error for its content
    write_parquet(tmp / "results/eval/synthetic/16/vae/0/per_image.parquet",
                  pd.DataFrame({"row": rows, "id": meta["id"], "mse": mse, "ssim": 1 - mse, "lpips": mse}))
    _, disparity = reconstruction.analyse(config)
    assert disparity.set_index("metric").loc["mse_relative", "disparity_ratio"] == pytest.approx(3.0)
    write_parquet(tmp / "results/eval/synthetic/16/vae/0/per_image.parquet",
                  pd.DataFrame({"row": rows, "id": meta["id"], "mse": 0.1 * variance, "ssim": 1 - mse, "lpips": mse}))
    groups, disparity = reconstruction.analyse(config)
    relative = disparity.set_index("metric").loc["mse_relative"]
    assert relative["disparity_ratio"] == pytest.approx(1.0) and relative["significant_groups"] == 0


def test_demographic_classifier_trains_and_reports(prepared):
    config, tmp = prepared
    out = tmp / "results/bias/classifier/synthetic/16/classifier.pt"
    metrics = train_demographic(config, "synthetic", "16", out)
    assert 0 <= metrics["group_accuracy"] <= 1 and 0 <= metrics["val_group_accuracy"] <= 1
    # val carries the scalar metrics only; the confusion matrix, which corrects the generated mix, is test's
    assert metrics["n_val"] > 0 and "val_group_confusion" not in metrics
    assert np.array(metrics["group_confusion"]).shape == (3, 3)
    assert [c["class"] for c in metrics["group_per_class"]] == [0, 1, 2]
    assert metrics["group_classes"] == ["tone_0", "tone_1", "tone_2"]  # readable names from group_name
    rows = diagnostics.per_class_rows(metrics)
    assert [r["class"] for r in rows] == ["tone_0", "tone_1", "tone_2"]
    assert sum(r["support"] for r in rows) == metrics["n_test"] == np.array(metrics["group_confusion"]).sum()
    assert diagnostics.figure_path(out).stat().st_size > 0
    model, ckpt = load_demographic(out)
    images = np.load(tmp / "results/data/synthetic/images_16.npy")[:5]
    probs = predict(model, images)["group"]
    assert probs.shape == (5, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert classifier_sources(config) == [{"dataset": "synthetic", "source": "16"}]


@pytest.mark.parametrize("head", ["dldl", "l1"])
def test_demographic_classifier_regression_heads(prepared, head):
    """A regression target (hair colour index) trains under either head; a DLDL prediction is an expected
    bin centre, so it always lies within the bins, which span the training values in unit steps."""
    config, tmp = prepared
    cfg = {**config, "bias": {**config["bias"], "classifier": {**config["bias"]["classifier"], "regression_head": head},
                              "datasets": {"synthetic": {"targets": {"group": "class", "hair": "regression"}}}}}
    out = tmp / f"results/bias/classifier/synthetic/16/{head}.pt"
    metrics = train_demographic(cfg, "synthetic", "16", out)
    assert metrics["regression_head"] == head and metrics["hair_mae"] <= metrics["hair_rmse"]
    model, ckpt = load_demographic(out)
    hair = pd.read_parquet(tmp / "results/data/synthetic/metadata.parquet")["hair"]
    assert ckpt["centres"] == ({"hair": [float(v) for v in range(hair.min(), hair.max() + 1)]} if head == "dldl" else {})
    assert model.regression == ["hair"]
    pred = predict(model, np.load(tmp / "results/data/synthetic/images_16.npy")[:20])["hair"]
    assert pred.shape == (20,)
    if head == "dldl":
        assert hair.min() <= pred.min() and pred.max() <= hair.max()


def test_label_distribution_loss_is_least_at_its_target():
    """Logits equal to the log of the Gaussian label distribution read out the true value (its mean, away
    from the edges), and any other logits cost more."""
    import torch

    from facegen.face_classifiers import DemographicCNN, bin_centres, regression_loss

    centres = bin_centres(np.array([1.0, 116.0]), 1.0)
    assert centres[0] == 1 and centres[-1] == 116 and len(centres) == 116
    model = DemographicCNN(1, {"age": len(centres)}, 8, centres={"age": centres})
    y = torch.tensor([37.4, 60.0])
    best = -0.5 * ((torch.tensor(centres)[None] - y[:, None]) / 2.0) ** 2
    assert torch.allclose(model.value("age", best), y, atol=1e-4)
    floor = regression_loss(model, "age", best, y, 2.0)
    for other in (best.roll(3, 1), torch.zeros_like(best), best * 2):
        assert regression_loss(model, "age", other, y, 2.0) > floor
    one_hot = regression_loss(model, "age", torch.full((1, len(centres)), -1e4).index_fill(1, torch.tensor([59]), 0.0),
                              torch.tensor([60.2]), 0.0)
    assert float(one_hot) == pytest.approx(0.02, abs=1e-4)  # nearest bin is 60: cross-entropy 0, L1 0.2 years / 10


def test_demographic_classifier_bad_inputs(prepared):
    config, tmp = prepared
    with pytest.raises(FileNotFoundError, match="images_gray48.npy not found"):
        train_demographic(config, "synthetic", "gray48", tmp / "x.pt")
    bad = {**config, "bias": {**config["bias"], "datasets": {"synthetic": {"targets": {"skin": "class"}}}}}
    with pytest.raises(ConfigError, match="names 'skin', not a column"):
        train_demographic(bad, "synthetic", "16", tmp / "x.pt")
    none = {**config, "bias": {**config["bias"], "datasets": {}}}
    with pytest.raises(ConfigError, match="bias.datasets.synthetic.targets is not set"):
        train_demographic(none, "synthetic", "16", tmp / "x.pt")


def test_dataset_bias_counts_imbalance_and_mean_faces(prepared):
    from facegen.bias import dataset

    config, tmp = prepared
    table = dataset.run(config, tmp / "results/bias").set_index("attribute")
    meta = pd.read_parquet(tmp / "results/data/synthetic/metadata.parquet")
    train = meta[meta["split"] == "train"]["group_name"].value_counts()
    assert table.loc["group_name", "imbalance_ratio"] == pytest.approx(train.iloc[0] / train.iloc[-1])
    assert table.loc["group_name", "largest_group"] == "tone_0" and table.loc["group_name", "n_groups"] == 3
    counts = pd.read_csv(tmp / "results/bias/dataset_groups.csv")
    assert counts["count"].sum() == len(meta)
    assert np.allclose(counts.groupby("split")["share"].sum(), 1)
    assert (tmp / "results/bias/mean_faces.png").stat().st_size > 0


def test_classifier_diagnostics_figure_draws_every_panel(tmp_path):
    metrics = {"gender_confusion": [[40, 10], [5, 45]], "gender_classes": ["male", "female"], "gender_accuracy": 0.85,
               "gender_accuracy_by_age_bucket": {"0-19": 0.7, "20-39": 0.9}, "age_mae": 6.5,
               "age_histogram": {"edges": [0, 50, 100], "true": [60, 40], "predicted": [70, 30]},
               "gender_per_class": [{"class": 0, "precision": 0.89, "recall": 0.8, "f1": 0.84, "support": 50},
                                    {"class": 1, "precision": 0.82, "recall": 0.9, "f1": 0.86, "support": 50}]}
    assert diagnostics.class_targets(metrics) == ["gender"] and diagnostics.regression_targets(metrics) == ["age"]
    assert diagnostics.per_class_rows(metrics)[1]["class"] == "female"
    diagnostics.figure(metrics, tmp_path / "d.png")
    assert (tmp_path / "d.png").stat().st_size > 0


def test_generation_bias_labels_samples_with_the_attribute_classifier(prepared):
    """A dataset without demographic targets is labelled by the attribute classifier. Samples that are all
    smiling must show as a large smile discrepancy, and a smaller one for glasses, which is independent."""
    from facegen.evaluation.samples import save_samples
    from facegen.experiments.attribute_classifier import train_classifier
    from facegen.paths import attribute_classifier
    from facegen.paths import eval_dir, real_path
    from facegen.training.matrix import training_runs

    config, tmp = prepared
    config = {**config, "results_dir": str(tmp / "results"),
              "bias": {**config["bias"], "datasets": {"synthetic": {"groups": ["smile", "glasses"]}}, "min_group_images": 5},
              "latent_experiments": {**config["latent_experiments"], "runs": ["synthetic/16/vae/0"],
                                     "attributes": {**config["latent_experiments"]["attributes"],
                                                    "names": {"synthetic": ["smile", "glasses"]}, "classifier_epochs": 4}}}
    run = training_runs(config, ["synthetic"])[0]
    clf = attribute_classifier(config, "synthetic", 16)
    train_classifier(config, "synthetic", 16, clf)
    assert selection.classifier_for(config, run) == clf and selection.attributes_for(config, run) == ["smile", "glasses"]
    assert set(selection.generation_inputs(config)) == {str(clf), str(eval_dir(config, run) / "samples.npz"),
                                              str(real_path(config, {**run, "split": config["evaluation"]["real_split"]})),
                                              str(tmp / "results/data/synthetic/images_16.npy")}
    meta = pd.read_parquet(tmp / "results/data/synthetic/metadata.parquet")
    images = np.load(tmp / "results/data/synthetic/images_16.npy")
    smiling = np.flatnonzero(meta["smile"].to_numpy() == 1)
    rng = np.random.default_rng(0)
    save_samples(eval_dir(config, run) / "samples.npz", images[smiling], {"features": rng.normal(size=(len(smiling), 8))})
    real_rows = np.flatnonzero(meta["split"].to_numpy() == config["evaluation"]["real_split"])
    real = real_path(config, {**run, "split": config["evaluation"]["real_split"]})
    real.parent.mkdir(parents=True, exist_ok=True)
    np.savez(real, features=rng.normal(size=(len(real_rows), 8)), mu=np.zeros(8), sigma=np.eye(8), rows=real_rows)
    real.with_suffix(".json").write_text("{}")

    summary = generation.run(config, tmp / "results/bias").set_index("target")
    train_smile = meta.loc[meta["split"] == "train", "smile"].mean()
    assert summary.loc["smile", "fd_train"] == pytest.approx(np.sqrt(2) * (1 - train_smile), abs=0.15)
    assert summary.loc["smile", "fd_uniform"] == pytest.approx(np.sqrt(0.5), abs=0.15)  # all smiling: mix [0, 1]
    for stat in ("fd_train", "fd_uniform", "kl_train_gen"):
        assert summary.loc["smile", f"{stat}_ci_low"] <= summary.loc["smile", stat] <= summary.loc["smile", f"{stat}_ci_high"]
    assert summary.loc["glasses", "fd_train"] < summary.loc["smile", "fd_train"] / 2
    assert summary["n_groups_predicted"].between(1, 2).all()
    # FID against a group-balanced real reference: the smallest group's count drawn from each group.
    real_smile = meta["smile"].to_numpy()[real_rows]
    assert summary.loc["smile", "n_balanced_real"] == 2 * min((real_smile == 0).sum(), (real_smile == 1).sum())
    assert np.isfinite(summary.loc["smile", "fid_balanced_real"]) and summary.loc["smile", "fid_balanced_real"] > 0
    mix = pd.read_csv(tmp / "results/bias/generation_mix.csv")
    assert set(mix["group"]) == {"smile", "not smile", "glasses", "not glasses"}
    quality = pd.read_csv(tmp / "results/bias/generation_quality.csv").set_index(["target", "group"])
    assert quality.loc[("smile", "not smile"), "note"].startswith("counts do not allow it")
    assert np.isfinite(quality.loc[("smile", "smile"), "kid"])


@pytest.mark.parametrize("schedule", ["onecycle", "inverse", "constant"])
def test_classifier_schedules(schedule):
    import torch

    from facegen.face_classifiers import make_schedule

    cfg = {"schedule": schedule, "lr": 0.002, "epochs": 4}
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg["lr"])
    sched, lrs = make_schedule(cfg, opt, 5), []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    if schedule == "inverse":  # the report's r(E) = 1 / (2000 (1 + E)), constant within an epoch
        assert lrs[0] == pytest.approx(1 / 2000) and lrs[4] == lrs[0] and lrs[5] == pytest.approx(1 / 4000)
        assert lrs[19] == pytest.approx(1 / 8000)
    elif schedule == "onecycle":
        assert max(lrs) == pytest.approx(0.002, rel=0.05) and lrs[0] < 0.0002 and lrs[-1] < 0.0001
    else:
        assert set(lrs) == {0.002}
