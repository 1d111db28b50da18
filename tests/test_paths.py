"""facegen.paths: one layout for both the rules' wildcard patterns and the concrete paths jobs use."""

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
