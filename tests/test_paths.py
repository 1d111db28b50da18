"""facegen.paths: one layout for both the rules' wildcard patterns and the concrete paths jobs use."""

from pathlib import Path

import pytest

from facegen import paths

CONFIG = {"results_dir": "results/test"}
RUN = {"dataset": "celeba", "resolution": 32, "model": "vae__lr3e_3", "seed": 2}
REAL = {"dataset": "celeba", "resolution": 64, "split": "val"}


@pytest.mark.parametrize("fn, values, wildcards", [
    (paths.run_dir, RUN, paths.RUN),
    (paths.eval_dir, RUN, paths.RUN),
    (paths.real_path, REAL, paths.REAL),
    (paths.floor_path, REAL, paths.REAL),
])
def test_a_pattern_filled_in_is_the_concrete_path(fn, values, wildcards):
    assert str(fn(CONFIG, wildcards)).format(**values) == str(fn(CONFIG, values))


def test_the_layout():
    assert str(paths.run_dir(CONFIG, RUN)) == "results/test/train/celeba/32/vae__lr3e_3/2"
    assert str(paths.floor_path(CONFIG, REAL)) == "results/test/eval/real/celeba/64/floor_val.npz"
    assert str(paths.attribute_classifier(CONFIG, "celeba", 32)) == "results/test/experiments/classifier/celeba/32/classifier.pt"
    assert str(paths.demographic_classifier(CONFIG, "utkface", "gray48")) == "results/test/bias/classifier/utkface/gray48/classifier.pt"
    assert str(paths.tuning_summary(CONFIG)["figure"]) == "results/test/tuning/grids.png"


def test_a_run_key_reads_back_and_a_bad_key_names_the_fix():
    from facegen.paths import Run, run_key

    run = Run("celeba", 32, "vaegan_late", 2)
    assert run.key == "celeba/32/vaegan_late/2" and Run.from_key(run.key) == run
    assert run_key({"dataset": "celeba", "resolution": "32", "model": "vaegan_late", "seed": "2"}) == run.key
    with pytest.raises(ValueError, match="dataset/resolution/model/seed"):
        Run.from_key("celeba/32/vae")


def test_a_runs_files_are_named_in_one_place():
    from facegen import paths

    config = {"results_dir": "results"}
    run = paths.Run("celeba", 32, "vae", 0)
    files = paths.train_files(paths.run_dir(config, run))
    assert files["model"] == paths.run_dir(config, run.fields()) / "model.pt"
    assert paths.eval_file(config, run, "samples") == Path("results/eval/celeba/32/vae/0/samples.npz")
    assert list(files) == ["model", "history", "card"] and set(paths.EVAL_FILES) == {"metrics", "per_image", "samples"}
