"""Run orchestration: specs from the config, conditions, the end-to-end run, summaries and replication."""

import json

import pandas as pd
import pytest
import torch

from facegen.config import ConfigError, load
from facegen.data import fetch, prepare_dataset
from facegen.slices import run_config
from facegen.training.matrix import real_sets, training_runs
from facegen.models.checkpoint import encode_conditions, load_model
from facegen.training.matrix import run_spec
from facegen.training.run import train_run
from facegen.training.summary import epochs_to_convergence, replication, summarize_training


def tiny_config(tmp_path, **training):
    return load({
        "results_dir": str(tmp_path / "results"),
        "data": {"resolutions": [16, 32], "datasets": {"synthetic": {"kind": "synthetic", "n": 64, "size": 64}}},
        "training": {"epochs": 2, "batch_size": 16, "lr": 1e-3, "checkpoint_every": 1, **training},
        "models": {"vae": {"arch": "vae", "params": {"latent_dim": 8, "channels": [8, 16]}},
                   "cvae": {"arch": "cvae", "params": {"latent_dim": 8, "channels": [8, 16]}, "condition": ["group", "smile"]}},
        "experiments": [{"datasets": ["synthetic"], "resolutions": [16], "models": ["vae", "cvae"], "seeds": [0, 1],
                         "training": {"epochs": 3}}],
    })


@pytest.fixture
def prepared(tmp_path):
    config = tiny_config(tmp_path)
    fetch(config, "synthetic", tmp_path / "m.json")
    prepare_dataset(config, "synthetic", tmp_path / "m.json", tmp_path / "results/data/synthetic")
    return config


def test_matrix_expands_and_dedups(tmp_path):
    config = tiny_config(tmp_path)
    config["experiments"].append(dict(config["experiments"][0]))
    runs = training_runs(config)
    assert [(r["model"], r["seed"]) for r in runs] == [("vae", 0), ("vae", 1), ("cvae", 0), ("cvae", 1)]
    assert real_sets(config) == [{"dataset": "synthetic", "resolution": 16, "split": "train"}]


def test_run_spec_layers_training_overrides(tmp_path):
    spec = run_spec(tiny_config(tmp_path), "synthetic", 16, "vae", 0)
    assert spec["training"]["epochs"] == 3 and spec["training"]["lr"] == 1e-3 and spec["arch"] == "vae"
    # the slice a rule passes gives the same spec
    config = tiny_config(tmp_path)
    assert run_spec(load(run_config(config, "synthetic", 16, "vae", 0)), "synthetic", 16, "vae", 0) == spec


def test_run_spec_rejects_unknown_names(tmp_path):
    config = tiny_config(tmp_path)
    with pytest.raises(ConfigError, match="unknown model name 'vea'; the config defines: cvae, vae"):
        run_spec(config, "synthetic", 16, "vea", 0)
    with pytest.raises(ConfigError, match="resolution 64 is not prepared"):
        run_spec(config, "synthetic", 64, "vae", 0)


def test_experiment_naming_an_undefined_model_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"experiments.0.models' names 'gan', which is not defined; defined models: vae"):
        load({"data": {"datasets": {"s": {"kind": "synthetic"}}}, "models": {"vae": {"arch": "vae"}},
              "experiments": [{"datasets": ["s"], "resolutions": [32], "models": ["gan"]}]})


def test_unknown_architecture_lists_the_zoo(tmp_path):
    from facegen.study import check_model_params

    config = load({"data": {"datasets": {"s": {"kind": "synthetic"}}}, "models": {"x": {"arch": "transformer"}}})
    with pytest.raises(ConfigError, match="'models.x.arch' is 'transformer'.*known: fc_hvae, vae"):
        check_model_params(config)


def test_encode_conditions_binary_and_one_hot():
    meta = pd.DataFrame({"smile": [0, 1, 1], "race": [2, 0, 2]})
    y, enc = encode_conditions(meta, ["smile", "race"])
    assert y.tolist() == [[0, 0, 1], [1, 1, 0], [1, 0, 1]]
    assert enc == [{"column": "smile", "kind": "binary"}, {"column": "race", "kind": "one_hot", "categories": [0, 2]}]
    with pytest.raises(ConfigError, match="condition column 'age' is not in the dataset metadata"):
        encode_conditions(meta, ["age"])


def test_train_run_end_to_end_and_reload(prepared, tmp_path):
    out = tmp_path / "results/train/synthetic/16/cvae/0"
    card = train_run(prepared, "synthetic", 16, "cvae", 0, out)
    assert card["epochs"] == 3 and card["n_parameters"] > 0 and card["train_flops_per_image"] > card["sample_flops_per_image"] > 0
    assert not (out / "last.pt").exists() and len(pd.read_csv(out / "history.csv")) == 3
    model, ckpt = load_model(out / "model.pt")
    assert ckpt["condition_encoding"][0]["categories"] == [0, 1, 2, 3]  # the 4 default skin-tone groups
    y = torch.zeros(2, 5)
    y[:, 0] = 1
    assert model.sample(2, y).shape == (2, 3, 16, 16)
    # the same run again gives byte-identical weights
    again = train_run(prepared, "synthetic", 16, "cvae", 0, tmp_path / "again")
    assert (out / "model.pt").read_bytes() == (tmp_path / "again/model.pt").read_bytes()
    assert again["config_hash"] == card["config_hash"]


def test_epochs_to_convergence_known_answers():
    assert epochs_to_convergence(pd.Series([1.0, 0.5, 0.2, 0.11, 0.1])) == 4  # 95% of the 0.9 drop is reached at 0.145
    assert epochs_to_convergence(pd.Series([1.0, 1.0, 1.2])) is None
    assert epochs_to_convergence(pd.Series([1.0, float("nan")])) is None


def fake_run(root, run, arch, hist):
    d = root / run
    d.mkdir(parents=True)
    ds, res, model, seed = run.split("/")
    pd.DataFrame(hist).to_csv(d / "history.csv", index=False)
    (d / "model_card.json").write_text(json.dumps({
        "run": run, "arch": arch, "n_parameters": 10, "n_train_images": 5000, "train_flops_per_image": 2e9,
        "train_seconds": 7200.0, "img_per_s": 100.0,
        "spec": {"dataset": ds, "resolution": int(res), "model": model, "seed": int(seed)}}))
    return d


def test_replication_and_summary_from_result_files(tmp_path):
    fc = fake_run(tmp_path, "celeba/32/fc_hvae/0", "fc_hvae", {"epoch": [1, 2], "recon": [0.09, 0.07], "kl": [0.6, 0.5],
                                                                 "loss": [1, 0.9], "approx_fid": [190.0, 175.5], "seconds": [3600, 3600], "d_collapse": [False, False]})
    vae = fake_run(tmp_path, "celeba/32/vae/0", "vae", {"epoch": [1, 2, 3], "recon": [0.05, 0.03, 0.02], "kl": [9, 8, 7], "loss": [3, 2, 1],
                                                          "approx_fid": [200.0, 160.0, 150.0], "seconds": [30.0, 30.0, 30.0], "d_collapse": [False] * 3})
    gan = fake_run(tmp_path, "celeba/32/dcgan/0", "dcgan", {"epoch": [1, 2], "g_loss": [2.0, 3.0], "d_loss": [0.5, 0.1], "d_real": [0.9, 0.999],
                                                               "d_fake": [0.1, 0.001], "seconds": [5, 5], "d_collapse": [False, True]})
    rep = replication([fc, vae, gan])
    assert rep["fc_hvae"]["recon_mse"] == 0.07 and rep["fc_hvae"]["approx_fid"] == 175.5 and rep["fc_hvae"]["cpu_hours"] == 2.0
    assert rep["fc_hvae"]["recon_reduction"] == "mean"  # a card without params: the model's default
    assert rep["fc_hvae"]["beta"] == 0.01
    assert set(rep) == {"paper", "fc_hvae"}  # no claim that a model "beat" a formula that is not a distance
    table = summarize_training([fc, vae, gan], tmp_path / "s.csv", tmp_path / "c.png", tmp_path / "r.json")
    row = table.set_index("run").loc["celeba/32/dcgan/0"]
    assert row["convergence_metric"].startswith("n/a") and row["d_collapse_epochs"] == 1
    assert row["d_won"] and row["d_fake_final"] == 0.001  # the last 20% of 2 epochs is the last one
    assert not table.set_index("run").loc["celeba/32/vae/0", "d_won"]
    assert table.set_index("run").loc["celeba/32/vae/0", "epochs_to_convergence"] == 3
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_one_collapse_definition_for_an_epoch_and_for_a_run():
    """The trainer's per-epoch flag and the summary's per-run flag are one rule on D(fake)."""
    from facegen.training.collapse import D_WON_FAKE, discriminator_won, final_d_fake

    assert discriminator_won(D_WON_FAKE / 2) and not discriminator_won(D_WON_FAKE) and not discriminator_won(None)
    history = pd.DataFrame({"d_fake": [0.4] * 8 + [0.01, 0.02]})  # the last 20% of 10 epochs: two
    assert final_d_fake(history) == pytest.approx(0.015) and discriminator_won(final_d_fake(history))
    history.loc[9, "d_fake"] = 0.2  # the data flipped: the run's mean rises above the threshold
    assert not discriminator_won(final_d_fake(history))
