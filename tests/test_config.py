"""Config loading, merging, schema validation with defaults, error messages and the CLI front end."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from facegen import cli
from facegen import config as cfgmod
from facegen.config import ConfigError
from facegen.study import check_model_params

ROOT = Path(__file__).resolve().parents[1]
MAIN = ROOT / "config" / "config.yaml"
TEST = ROOT / "config" / "test.yaml"
ALLOWED_KINDS = ("celeba", "utkface", "folder", "synthetic")


def minimal(**datasets) -> dict:
    """A config with only the given datasets (default: one small synthetic one)."""
    return {"data": {"datasets": datasets or {"synth": {"kind": "synthetic", "n": 20}}}}


def error_of(*sources) -> str:
    with pytest.raises(ConfigError) as info:
        cfgmod.load(*sources)
    return str(info.value)


# --- the shipped configs -------------------------------------------------------------------------


def test_main_config_validates_and_fills_defaults():
    config = cfgmod.load(MAIN)
    assert config["seed"] == 1234
    assert config["data"]["download_dir"] == "resources/downloads"
    assert config["data"]["only_with_mirror"] == []
    assert config["data"]["mirror"] is None
    assert set(config["data"]["datasets"]) == {"celeba", "utkface", "synthetic"}
    celeba = config["data"]["datasets"]["celeba"]
    assert celeba["crop"] == {"size": 0.8315, "center_y": 0.5}
    assert celeba["limit"] is None
    synth = config["data"]["datasets"]["synthetic"]
    # Schema defaults for keys the file does not give.
    assert synth["size"] == 128
    assert synth["p_smile"] == 0.5 and synth["p_glasses"] == 0.2
    assert synth["split"] == [8, 1, 1]
    assert synth["crop"] == {"size": 1.0, "center_y": 0.5}
    assert config["report"] == {"title": "Low-resolution face generation under tight compute", "pdf": True, "smoke": False}


def test_test_profile_merges_over_main_config():
    config = cfgmod.load(MAIN, TEST)
    assert config["results_dir"] == "results/test"
    assert config["logs_dir"] == "logs/test"
    assert config["data"]["sample_grid"] == 4
    assert config["data"]["only_with_mirror"] == ["celeba", "utkface"]
    assert config["data"]["download_dir"] == "resources/downloads"  # default, given in neither file
    celeba = config["data"]["datasets"]["celeba"]
    # crop and split come from config.yaml, limit from test.yaml
    assert celeba == {"kind": "celeba", "crop": {"size": 0.8315, "center_y": 0.5}, "split": [8, 1, 1], "limit": 300}
    utk = config["data"]["datasets"]["utkface"]
    assert utk["split"] == [7, 2, 1] and utk["gray48"] is True and utk["limit"] == 300
    synth = config["data"]["datasets"]["synthetic"]
    # Lists are replaced, not merged element-wise.
    assert synth["group_weights"] == [0.6, 0.3, 0.1]
    assert synth["group_noise"] == [0.0, 0.03, 0.08]
    assert synth["n"] == 240 and synth["size"] == 64


def test_paper_tuning_chooses_on_validation_and_holds_each_tuned_models_recipe():
    """The paper's tuning scores its candidates on the validation split, and each tuned model's own entry
    is one of its candidates (the appendix's "config" row), so recipe and evidence cannot drift apart."""
    from facegen.tuning import same_recipe, tuning_study

    main = cfgmod.load(str(MAIN))
    t = main["tuning"]
    assert t["real_split"] == "val" and t["floor_split"] == "test"
    assert {"vae", "hvae", "dfc_vae", "cvae_celeba", "dcgan", "vaegan_early"} <= {g["model"] for g in t["candidates"]}
    for group in t["candidates"]:
        assert sum(same_recipe(c, main["models"][group["model"]]) for c in group["settings"].values()) == 1, group["model"]
    unbalanced = {k: v for k, v in main["models"]["dcgan_balanced"]["training"].items() if k != "balance_column"}
    assert same_recipe({**main["models"]["dcgan_balanced"], "training": unbalanced}, main["models"]["dcgan"])
    for fusion in ("late", "progressive"):  # the same recipe for every fusion
        params = dict(main["models"][f"vaegan_{fusion}"]["params"], fusion="early")
        assert params == main["models"]["vaegan_early"]["params"]
    study = tuning_study(main)
    assert study["evaluation"]["real_split"] == "val" and set(study["models"]) == {
        f"{g['model']}__{c}" for g in t["candidates"] for c in g["settings"]}
    cfgmod.validate(json.loads(json.dumps(study)))  # the tuning study is a valid config of its own


def test_tuning_names_an_unknown_model_or_a_test_reference_before_any_work():
    main = cfgmod.load(str(MAIN))
    bad = cfgmod.deep_merge(main, {"tuning": {"candidates": [{"model": "vea", "settings": {"a": {"arch": "vae"}}}]}})
    with pytest.raises(cfgmod.ConfigError, match="tuning.candidates.*'vea'.*defined models"):
        cfgmod.validate(bad)
    twice = [{"model": "vae", "settings": {"a": {"arch": "vae"}}}] * 2
    with pytest.raises(cfgmod.ConfigError, match="lists a model twice"):
        cfgmod.validate(cfgmod.deep_merge(main, {"tuning": {"candidates": twice}}))
    with pytest.raises(cfgmod.ConfigError, match="tuning.real_split"):
        cfgmod.validate(cfgmod.deep_merge(main, {"tuning": {"real_split": "test"}}))
    with pytest.raises(cfgmod.ConfigError, match="tuning.floor_split"):
        cfgmod.validate(cfgmod.deep_merge(main, {"tuning": {"real_split": "val", "floor_split": "val"}}))


def test_gpu_profile_trains_every_model_at_its_batch():
    """Model-level batch sizes tuned for the CPU budget must not leak into the GPU profile."""
    gpu = cfgmod.load(str(MAIN), str(ROOT / "config" / "gpu.yaml"))
    batch = gpu["training"]["batch_size"]
    for name, model in gpu["models"].items():
        expected = 16 if model["arch"] == "fc_hvae" else batch  # the HVAE paper fixes its batch
        assert model.get("training", {}).get("batch_size", batch) == expected, name
    assert gpu["models"]["vaegan_late"]["params"]["fusion"] == "late"  # merged over the recipe, not replacing it


def test_test_profile_alone_also_validates():
    config = cfgmod.load(TEST)
    assert config["seed"] == 1234
    assert config["data"]["datasets"]["celeba"]["crop"] == {"size": 0.8315, "center_y": 0.5}
    assert config["data"]["datasets"]["utkface"]["crop"] == {"size": 1.0, "center_y": 0.5}


@pytest.mark.parametrize(
    "kind, crop, split",
    [
        ("celeba", {"size": 0.8315, "center_y": 0.5}, [8, 1, 1]),
        ("utkface", {"size": 1.0, "center_y": 0.5}, [7, 2, 1]),
        ("synthetic", {"size": 1.0, "center_y": 0.5}, [8, 1, 1]),
    ],
)
def test_per_kind_crop_and_split_defaults(kind, crop, split):
    config = cfgmod.load(minimal(ds={"kind": kind}))
    ds = config["data"]["datasets"]["ds"]
    assert ds["crop"] == crop
    assert ds["split"] == split


def test_folder_defaults():
    ds = cfgmod.load(minimal(mine={"kind": "folder", "path": "faces"}))["data"]["datasets"]["mine"]
    assert ds == {"kind": "folder", "path": "faces", "labels": None, "align": None, "crop": {"size": 1.0, "center_y": 0.5},
                  "split": [8, 1, 1], "limit": None}


def test_partial_crop_gets_the_missing_field_default():
    ds = cfgmod.load(minimal(c={"kind": "celeba", "crop": {"size": 0.5}}))["data"]["datasets"]["c"]
    assert ds["crop"] == {"size": 0.5, "center_y": 0.5}


def test_load_does_not_mutate_its_sources():
    source = minimal()
    before = copy.deepcopy(source)
    cfgmod.load(source)
    assert source == before


# --- error messages ------------------------------------------------------------------------------


def test_bad_resolution_names_key_value_and_allowed_values():
    msg = error_of(MAIN, {"data": {"resolutions": [48]}})
    assert "data.resolutions.0" in msg
    assert "48" in msg
    assert "16, 32, 64, 128, 256" in msg


def test_unknown_kind_names_key_value_and_kinds():
    msg = error_of(minimal(faces={"kind": "imagenet"}))
    assert "data.datasets.faces.kind" in msg
    assert '"imagenet"' in msg
    for kind in ALLOWED_KINDS:
        assert f'"{kind}"' in msg


def test_unknown_top_level_key():
    msg = error_of(MAIN, {"epochs": 3})
    assert "'epochs' was unexpected" in msg
    assert "<top level>" in msg
    assert "allowed keys: bias, cluster, data, evaluation, experiments, job_threads, job_worker, latent_experiments, logs_dir, models, report, results_dir, seed, training, tuning" in msg


def test_invalid_evaluation_values():
    msg = error_of(MAIN, {"evaluation": {"inception_mode": "fp16"}})
    assert "evaluation.inception_mode" in msg and "fp16" in msg and "bf16" in msg
    msg = error_of(MAIN, {"evaluation": {"n_generated": 500, "kid_subset_size": 1000}})
    assert "evaluation.kid_subset_size" in msg and "1000" in msg and "n_generated 500" in msg
    msg = error_of(MAIN, {"evaluation": {"n_real": 5, "kid_subset_size": 2, "prc_k": 5}})
    assert "evaluation.prc_k" in msg
    msg = error_of(MAIN, {"evaluation": {"recon_split": "val", "decoder_variance_split": "val"}})
    assert "evaluation.decoder_variance_split" in msg and "recon_split" in msg


def test_job_threads_is_auto_or_a_positive_count():
    assert cfgmod.load({"data": {"datasets": {"s": {"kind": "synthetic"}}}})["job_threads"] == "auto"
    assert cfgmod.load(MAIN)["job_threads"] == 1  # the paper: two one-thread jobs side by side
    assert cfgmod.load(MAIN, {"job_threads": 1})["job_threads"] == 1
    for bad in (0, "all"):
        assert "job_threads" in error_of(MAIN, {"job_threads": bad})


def test_unknown_data_key_lists_allowed_keys():
    msg = error_of(MAIN, {"data": {"resolution": [32]}})
    assert "config key 'data'" in msg
    assert "'resolution' was unexpected" in msg
    assert "allowed keys: datasets, download_dir, mirror, only_with_mirror, resolutions, sample_grid" in msg


def test_key_of_another_kind_is_rejected():
    msg = error_of(minimal(c={"kind": "celeba", "gray48": True}))
    assert "data.datasets.c" in msg
    assert "'gray48' was unexpected" in msg
    assert "allowed keys: crop, kind, limit, split" in msg


def test_synthetic_group_noise_length_mismatch():
    msg = error_of(minimal(s={"kind": "synthetic", "group_weights": [1, 1, 1], "group_noise": [0.1, 0.2]}))
    assert "data.datasets.s.group_noise" in msg
    assert "has 2 entries but group_weights has 3" in msg


def test_group_noise_default_length_mismatch_with_custom_weights():
    # Weights with 3 groups but the 4-entry default noise: must be rejected, not silently truncated.
    msg = error_of(minimal(s={"kind": "synthetic", "group_weights": [1, 1, 1]}))
    assert "has 4 entries but group_weights has 3" in msg


def test_all_zero_split():
    msg = error_of(minimal(c={"kind": "celeba", "split": [0, 0, 0]}))
    assert "data.datasets.c.split" in msg
    assert "[0, 0, 0]" in msg
    assert "must not all be zero" in msg


@pytest.mark.parametrize(
    "override, key, fragment",
    [
        ({"seed": -1}, "'seed'", "-1 is less than the minimum of 0"),
        ({"data": {"resolutions": []}}, "'data.resolutions'", "should be non-empty"),
        ({"data": {"resolutions": [32, 32]}}, "'data.resolutions'", "non-unique"),
        ({"data": {"sample_grid": 17}}, "'data.sample_grid'", "17 is greater than the maximum of 16"),
        ({"data": {"datasets": {"celeba": {"kind": "celeba", "split": [1, -1, 0]}}}}, "'data.datasets.celeba.split.1'", "-1"),
        ({"data": {"datasets": {"celeba": {"kind": "celeba", "split": [1, 1]}}}}, "'data.datasets.celeba.split'", "[1, 1]"),
        ({"data": {"datasets": {"celeba": {"kind": "celeba", "crop": {"size": 1.5}}}}}, "'data.datasets.celeba.crop.size'", "1.5"),
        ({"data": {"datasets": {"celeba": {"kind": "celeba", "crop": {"size": 0}}}}}, "'data.datasets.celeba.crop.size'", "0"),
        ({"data": {"datasets": {"synthetic": {"kind": "synthetic", "size": 100}}}}, "'data.datasets.synthetic.size'", "allowed values: 64, 128, 256"),
        ({"data": {"datasets": {"synthetic": {"kind": "synthetic", "n": 5}}}}, "'data.datasets.synthetic.n'", "5 is less than the minimum of 10"),
        ({"data": {"datasets": {"Bad": {"kind": "synthetic"}}}}, "'data.datasets'", "'Bad' does not match"),
        ({"bias": {"classifier": {"regression_head": "mse"}}}, "'bias.classifier.regression_head'", 'allowed values: "dldl", "l1"'),
        ({"bias": {"classifier": {"bin_width": 0}}}, "'bias.classifier.bin_width'", "0"),
    ],
)
def test_schema_errors_name_key_and_value(override, key, fragment):
    msg = error_of(MAIN, override)
    assert msg.startswith("invalid configuration: ")
    assert f"config key {key}" in msg
    assert fragment in msg


def test_folder_without_path():
    msg = error_of(minimal(mine={"kind": "folder"}))
    assert "data.datasets.mine" in msg
    assert "'path' is a required property" in msg


def test_dataset_without_kind():
    msg = error_of(minimal(x={"n": 50}))
    assert "data.datasets.x" in msg
    assert "'kind' is a required property" in msg


def test_empty_config_needs_datasets():
    msg = error_of({})
    assert "data.datasets" in msg
    assert "non-empty" in msg


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


# --- dataset_config, load sources ----------------------------------------------------------------


def test_dataset_config_known_and_unknown():
    config = cfgmod.load(MAIN)
    assert cfgmod.dataset_config(config, "celeba") is config["data"]["datasets"]["celeba"]
    with pytest.raises(ConfigError) as info:
        cfgmod.dataset_config(config, "nope")
    msg = str(info.value)
    assert "unknown dataset 'nope'" in msg
    assert "the config defines celeba, synthetic, utkface" in msg


def test_load_inline_json_string():
    inline = json.dumps({"seed": 7, "data": {"datasets": {"s": {"kind": "synthetic", "n": 30}}}})
    config = cfgmod.load(inline)
    assert config["seed"] == 7
    assert config["data"]["datasets"]["s"]["n"] == 30
    assert config["data"]["datasets"]["s"]["group_weights"] == [0.5, 0.25, 0.15, 0.1]


def test_load_inline_json_merges_over_file():
    config = cfgmod.load(MAIN, ' {"seed": 99, "data": {"datasets": {"celeba": {"kind": "celeba", "limit": 5}}}}')
    assert config["seed"] == 99
    assert config["data"]["datasets"]["celeba"]["limit"] == 5
    assert config["data"]["datasets"]["celeba"]["crop"]["size"] == 0.8315  # still from the file
    assert "utkface" in config["data"]["datasets"]


def test_load_missing_file(tmp_path):
    missing = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError, match="does not exist") as info:
        cfgmod.load(missing)
    assert str(missing) in str(info.value)


def test_load_non_mapping_file(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="is not a mapping"):
        cfgmod.load(path)


def test_load_empty_file_counts_as_empty_mapping(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    config = cfgmod.load(MAIN, empty)
    assert config == cfgmod.load(MAIN)


# --- mirrors -------------------------------------------------------------------------------------


def test_active_datasets_without_mirror(monkeypatch):
    monkeypatch.delenv(cfgmod.MIRROR_ENV, raising=False)
    config = cfgmod.load(MAIN, TEST)
    assert config["data"]["mirror"] is None
    assert not cfgmod.mirror_available(config)
    assert cfgmod.active_datasets(config) == ["synthetic"]


def test_active_datasets_with_config_mirror(monkeypatch, tmp_path):
    monkeypatch.delenv(cfgmod.MIRROR_ENV, raising=False)
    config = cfgmod.load(MAIN, TEST, {"data": {"mirror": str(tmp_path)}})
    assert cfgmod.mirror_available(config)
    assert sorted(cfgmod.active_datasets(config)) == ["celeba", "synthetic", "utkface"]


def test_active_datasets_with_env_mirror(monkeypatch, tmp_path):
    monkeypatch.setenv(cfgmod.MIRROR_ENV, str(tmp_path))
    config = cfgmod.load(MAIN, TEST)
    assert sorted(cfgmod.active_datasets(config)) == ["celeba", "synthetic", "utkface"]


def test_mirror_that_is_not_a_directory_does_not_count(monkeypatch, tmp_path):
    monkeypatch.setenv(cfgmod.MIRROR_ENV, str(tmp_path / "absent"))
    config = cfgmod.load(MAIN, TEST)
    assert cfgmod.active_datasets(config) == ["synthetic"]
    config = cfgmod.load(MAIN, TEST, {"data": {"mirror": str(tmp_path / "absent")}})
    assert cfgmod.active_datasets(config) == ["synthetic"]


def test_only_with_mirror_empty_keeps_everything(monkeypatch):
    monkeypatch.delenv(cfgmod.MIRROR_ENV, raising=False)
    assert sorted(cfgmod.active_datasets(cfgmod.load(MAIN))) == ["celeba", "synthetic", "utkface"]


# --- config hash ---------------------------------------------------------------------------------


def test_config_hash_stable_and_sensitive():
    a = cfgmod.load(MAIN, TEST)
    b = cfgmod.load(MAIN, TEST)
    h = cfgmod.config_hash(a)
    assert len(h) == 16 and all(c in "0123456789abcdef" for c in h)
    assert cfgmod.config_hash(b) == h
    assert cfgmod.config_hash(a) == h  # hashing does not change the config
    reordered = json.loads(json.dumps(a, sort_keys=True))
    reordered = dict(reversed(list(reordered.items())))
    assert cfgmod.config_hash(reordered) == h
    c = copy.deepcopy(a)
    c["data"]["datasets"]["synthetic"]["n"] = 241
    assert cfgmod.config_hash(c) != h
    d = copy.deepcopy(a)
    d["seed"] = 1235
    assert cfgmod.config_hash(d) != h


# --- CLI -----------------------------------------------------------------------------------------


def test_cli_validate_config_ok(tmp_path, capsys, restore_logging):
    rc = cli.main(["validate-config", "--config", str(MAIN), "--config", str(TEST)])
    out = capsys.readouterr().out
    assert rc == 0
    expected_hash = cfgmod.config_hash(cfgmod.load(MAIN, TEST))
    assert f"config OK (hash {expected_hash}); datasets: " in out
    listed = out.split("datasets: ")[1].strip().split(", ")
    assert sorted(listed) == ["celeba", "synthetic", "utkface"]


def test_cli_invalid_config_file_exit_2(tmp_path, capsys, restore_logging):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"data": {"resolutions": [48], "datasets": {"s": {"kind": "synthetic"}}}}))
    rc = cli.main(["validate-config", "--config", str(bad)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "facegen validate-config: error:" in err
    assert "data.resolutions.0" in err
    assert "48" in err
    assert "16, 32, 64, 128, 256" in err


def test_cli_missing_config_file_exit_2(tmp_path, capsys, restore_logging):
    rc = cli.main(["validate-config", "--config", str(tmp_path / "nowhere.yaml")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "nowhere.yaml' does not exist" in err


def test_cli_unknown_dataset_exit_2(tmp_path, capsys, restore_logging):
    rc = cli.main(["fetch", "nope", "--config", str(MAIN), "--out", str(tmp_path / "m.json")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "unknown dataset 'nope'" in err
    assert not (tmp_path / "m.json").exists()


def test_cli_default_config_is_config_yaml(monkeypatch, capsys, restore_logging):
    monkeypatch.chdir(ROOT)
    rc = cli.main(["validate-config"])
    assert rc == 0
    assert cfgmod.config_hash(cfgmod.load(MAIN)) in capsys.readouterr().out


@pytest.mark.parametrize("models, named", [
    ({"vaegan_late": {"params": {"fusion": "sideways"}}}, r"'models.vaegan_late.params'.*fusion must be one of.*'sideways'"),
    ({"vae": {"params": {"beta": -1}}}, r"'models.vae.params'.*beta >= 0.*-1"),
    ({"dcgan": {"params": {"ngff": 3}}}, r"'models.dcgan.params'.*unknown key 'ngff'.*allowed keys: nz, ngf"),
])
def test_validate_config_rejects_a_bad_model_param_naming_its_key(models, named, capsys, restore_logging):
    bad = json.dumps({"models": models})
    rc = cli.main(["validate-config", "--config", str(MAIN), "--config", bad])
    assert rc == 2
    assert re.search(named, capsys.readouterr().err)


def test_an_unknown_architecture_is_named_by_its_key_even_when_no_experiment_trains_it():
    """The registry, not a schema enum, lists the architectures: a new family is one registry line."""
    cfg = cfgmod.load(MAIN, TEST)
    cfg["models"]["spare"] = {"arch": "vqvae"}
    with pytest.raises(ConfigError, match=r"'models.spare.arch' is 'vqvae'.*known: fc_hvae, vae"):
        check_model_params(cfg)


def test_a_bad_tuning_candidate_param_is_named_by_its_place():
    cfg = cfgmod.load(MAIN, TEST)
    cfg["tuning"]["candidates"][0]["settings"]["lr3e_3"]["params"]["latent_dim"] = 0
    with pytest.raises(ConfigError, match=r"'tuning.candidates.0.settings.lr3e_3.params'.*latent_dim >= 1"):
        check_model_params(cfg)


def test_param_names_are_the_constructors_keywords():
    from facegen.models import param_names

    assert "fusion" in param_names("vaegan") and "image_size" not in param_names("vaegan")
    assert "n_cond" not in param_names("cvae") and "latent_dim" in param_names("cvae")


@pytest.mark.parametrize("rel", ["workflow/schemas/config.schema.yaml", "config/config.yaml", "config/test.yaml", "config/gpu.yaml"])
def test_no_yaml_file_repeats_a_key(rel):
    """YAML keeps the last of two equal keys without a word: a block pasted twice (the schema is reached
    through a symlink from src/facegen/schemas, so an edit to "both" copies doubles it) goes unseen."""
    class Strict(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        keys = [loader.construct_object(k, deep) for k, _ in node.value]
        assert len(keys) == len(set(keys)), f"{rel}: repeated keys {sorted({k for k in keys if keys.count(k) > 1})}"
        return loader.construct_mapping(node, deep)

    Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    yaml.load((Path(__file__).resolve().parents[1] / rel).read_text(), Strict)
