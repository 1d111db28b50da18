"""facegen.dvcfile: Snakemake jobs as DVC stages (the generated dvc.yaml itself is checked in test_workflow)."""

import json
import shlex

import pytest

from facegen import dvcfile


def job(rule="train", wildcards=None, shell=None, inputs=("results/data/a/images_32.npy", "resources/weights/vgg16.ckpt"),
        outputs=("results/train/a/model.pt", "results/eval/a/metrics.json")):
    slice_ = {"seed": 1, "models": {"vae": {"params": {"note": "it's"}}}}
    shell = shell or f"facegen {rule} a 32 --config {shlex.quote(json.dumps(slice_))}  --out-dir $(dirname {outputs[0]}) --log logs/x.log"
    return {"rule": rule, "wildcards": wildcards or {"dataset": "a", "resolution": 32, "model": "vae__lr3e_3", "seed": 0},
            "input": list(inputs), "output": list(outputs), "shell": shell}, slice_


def test_a_stage_runs_the_jobs_command_with_its_slice_from_a_file():
    j, slice_ = job()
    doc, slices = dvcfile.stages([j], ["config/test.yaml"])
    name = "train-a-32-vae__lr3e_3-0"
    stage = doc["stages"][name]
    path = f"build/dvc/{name}.json"
    assert stage["cmd"] == f"facegen train a 32 --config {path} --out-dir $(dirname results/train/a/model.pt) --log logs/x.log"
    assert slices == {path: slice_}
    # its slice first; weights under resources/ stay out of DVC; metrics.json is a DVC metric
    assert stage["deps"] == [path, "results/data/a/images_32.npy"]
    assert stage["outs"] == ["results/train/a/model.pt"] and stage["metrics"] == ["results/eval/a/metrics.json"]
    configure = doc["stages"]["configure"]
    assert list(doc["stages"])[0] == "configure" and configure["outs"] == [{path: {"cache": False}}]
    assert configure["cmd"] == "facegen dvc-yaml --configure --configfile config/test.yaml"
    assert configure["params"] == [{"config/config.yaml": None}, {"config/test.yaml": None}]


def test_stage_names_keep_to_dvcs_characters():
    assert dvcfile.stage_name({"rule": "real_floor", "wildcards": {"dataset": "my.photos", "split": "val"}}) == "real_floor-my_photos-val"
    assert dvcfile.stage_name({"rule": "report", "wildcards": {}}) == "report"


def test_a_command_without_a_slice_is_kept():
    assert dvcfile.split_slice("facegen weights  --log x.log", "s.json") == ("facegen weights --log x.log", None)


def test_a_slice_that_cannot_be_taken_out_is_an_error():
    with pytest.raises(ValueError, match="cannot take the config slice out"):
        dvcfile.split_slice("facegen x --config '{\"a\": 1}' --config '{\"b\": 2}'", "s.json")


def test_configure_refuses_a_stale_dvc_yaml(tmp_path, monkeypatch):
    j, _ = job()
    monkeypatch.setattr(dvcfile, "workflow_jobs", lambda configfiles: [j])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    with pytest.raises(dvcfile.StaleError, match=r"facegen dvc-yaml --write dvc.yaml --configfile config/test.yaml"):
        dvcfile.configure(["config/test.yaml"])
    assert not (tmp_path / "build").exists()
    (tmp_path / "dvc.yaml").write_text(dvcfile.document(["config/test.yaml"])[0])
    written = dvcfile.configure(["config/test.yaml"])
    assert [p.name for p in written] == ["train-a-32-vae__lr3e_3-0.json"]
    assert json.loads(written[0].read_text())["models"]["vae"]["params"]["note"] == "it's"


def test_plots_draw_each_familys_logged_curves_and_the_per_run_table():
    def train(model, arch):
        return {"rule": "train", "arch": arch, "output": [f"r/train/{model}/model.pt", f"r/train/{model}/history.csv"]}

    jobs = [train("vae", "vae"), train("dcgan", "dcgan"), train("vaegan", "vaegan"),
            {"rule": "evaluation_summary", "arch": None, "output": ["r/evaluation/metrics.csv", "r/evaluation/per_run.csv"]}]
    shown = {k: v for p in dvcfile.plots(jobs) for k, v in p.items()}
    assert shown["training_loss"]["y"] == {"r/train/vae/history.csv": "loss"}
    assert shown["training_kl"]["y"] == {"r/train/vae/history.csv": "kl", "r/train/vaegan/history.csv": "kl"}
    assert shown["training_d_loss"]["y"] == {"r/train/dcgan/history.csv": "d_loss", "r/train/vaegan/history.csv": "d_loss"}
    assert shown["fid_vs_training_time"]["y"] == {"r/evaluation/per_run.csv": "fid"} and shown["precision_vs_recall"]["x"] == "recall"


def test_a_new_recipe_reruns_its_training_but_not_the_classifiers(tmp_path, monkeypatch):
    """The classifiers and the dataset bias get a config slice without the models (facegen.slices)."""
    monkeypatch.delenv("FACEGEN_DATA_MIRROR", raising=False)
    overlay = tmp_path / "recipe.yaml"
    overlay.write_text("models:\n  vae:\n    training: {lr: 0.005}\n")

    def slices(configfiles):
        return {dvcfile.stage_name(j): dvcfile.split_slice(j["shell"], "s.json")[1] for j in dvcfile.workflow_jobs(configfiles)}

    before, after = slices(["config/test.yaml"]), slices(["config/test.yaml", str(overlay)])
    untouched = [n for n in before if n.split("-")[0] in ("attribute_classifier", "demographic_classifier", "bias_dataset")]
    assert untouched and all(before[n] == after[n] for n in untouched)
    assert before["train-synthetic-32-vae-0"] != after["train-synthetic-32-vae-0"]
