"""workflow/resources.yaml sized from benchmark files (facegen resources)."""

from pathlib import Path

import pytest
import yaml

from facegen.resources import benchmark_rule, write


@pytest.mark.parametrize("rel, rule", [
    ("train/celeba/32/vae/0.tsv", "train"),
    ("tuning/train/celeba/32/vae__lr1e_3/0.tsv", "train"),
    ("eval/celeba/32/vae/0.tsv", "evaluate"),
    ("eval/real/celeba/32/train.tsv", "real_features"),
    ("tuning/eval/real/celeba/32/floor_test.tsv", "real_floor"),
    ("experiments/classifier/celeba/32.tsv", "attribute_classifier"),
    ("experiments/variations.tsv", "experiment"),
    ("bias/classifier/utkface/gray48.tsv", "demographic_classifier"),
    ("bias/mitigation.tsv", "bias_mitigation"),
    ("prepare/celeba.tsv", "prepare"),
    ("report.tsv", "report"),
])
def test_benchmark_files_map_to_their_rules_resources(rel, rule):
    assert benchmark_rule(Path(rel)) == rule


def _bench(path: Path, s: float, rss: float):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n{s}\t0:00:00\t{rss}\t0\t0\t0\t0\t0\t50\t{s}\n")


def test_resources_are_sized_from_the_largest_job_of_each_rule(tmp_path):
    b = tmp_path / "benchmarks"
    _bench(b / "train/celeba/32/vae/0.tsv", 600, 1000)
    _bench(b / "tuning/train/celeba/32/vae__x/0.tsv", 2300, 1300)  # 2,300 s x 3 = 115 min
    _bench(b / "report.tsv", 20, 300)
    out = tmp_path / "resources.yaml"
    spec = write(b, out, "a test")
    assert spec["rules"]["train"] == {"mem_mb": 2816, "runtime": 115, "gpu": True}  # 1,300 MB x 2 -> 2,816 (11 x 256)
    assert spec["rules"]["report"] == {"mem_mb": 1024, "runtime": 5}  # the floors
    assert spec["default"] == {"mem_mb": 2816, "runtime": 115}
    text = out.read_text()
    assert yaml.safe_load(text) == spec and "from 3 benchmark files of a test" in text


def test_no_benchmark_files_is_an_error_naming_the_folder(tmp_path):
    with pytest.raises(ValueError, match="no benchmark files under .*Snakemake"):
        write(tmp_path, tmp_path / "r.yaml", "x")


def test_a_job_without_a_memory_sample_and_a_long_source_name(tmp_path):
    b = tmp_path / "benchmarks"
    (b / "report.tsv").parent.mkdir(parents=True)
    (b / "report.tsv").write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                                  "0.5\t0:00:00\tNA\tNA\tNA\tNA\tNA\tNA\tNA\t0.4\n")
    spec = write(b, tmp_path / "r.yaml", "x" * 300)  # an unbreakable word longer than a line
    assert spec["rules"]["report"] == {"mem_mb": 1024, "runtime": 5}
