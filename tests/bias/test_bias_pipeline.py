"""The demographic classifier and the reconstruction-bias pipeline on the synthetic dataset."""

import numpy as np
import pandas as pd
import pytest

from facegen.bias import reconstruction
from facegen.bias.classifier import classifier_sources, load_demographic, predict, train_demographic
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
    table = reconstruction.run(config, tmp / "results/bias")
    assert (tmp / "results/bias/reconstruction_forest.png").stat().st_size > 0 and len(table) == 9


def test_demographic_classifier_trains_and_reports(prepared):
    config, tmp = prepared
    out = tmp / "results/bias/classifier/synthetic/16/classifier.pt"
    metrics = train_demographic(config, "synthetic", "16", out)
    assert 0 <= metrics["group_accuracy"] <= 1
    assert np.array(metrics["group_confusion"]).shape == (3, 3)
    assert [c["class"] for c in metrics["group_per_class"]] == [0, 1, 2]
    model, ckpt = load_demographic(out)
    images = np.load(tmp / "results/data/synthetic/images_16.npy")[:5]
    probs = predict(model, images)["group"]
    assert probs.shape == (5, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert classifier_sources(config) == [{"dataset": "synthetic", "source": "16"}]


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
