"""Dataset summary, provenance, the HTML/PDF report and the CLI commands that drive them."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facegen import cli, report
from facegen.config import config_hash
from facegen.config import load as load_config
from facegen.data import fetch, prepare_dataset
from facegen.data.summary import natural_key, group_columns, group_counts, sample_grid, summarize
from facegen.provenance import git_state, write_provenance
from facegen.report import ReportError, build_report, tex_escape
from facegen.report.sections import datasets as datasets_section

ROOT = Path(__file__).resolve().parents[1]
NAME = "toy_set"  # an underscore, so the TeX path has something to escape


def small_config(results_dir, **extra) -> dict:
    return load_config({
        "seed": 5,
        "results_dir": str(results_dir),
        "data": {"resolutions": [16, 32], "sample_grid": 3,
                 "datasets": {NAME: {"kind": "synthetic", "n": 30, "size": 64,
                                     "group_weights": [2, 1], "group_noise": [0.0, 0.05]}}},
        **extra,
    })


def produce(config: dict) -> Path:
    """Run the real pipeline functions: fetch, prepare, summarize, provenance."""
    results = Path(config["results_dir"])
    manifest = results / "manifests" / f"{NAME}.json"
    fetch(config, NAME, manifest)
    prepare_dataset(config, NAME, manifest, results / "data" / NAME)
    summarize(config, NAME, results / "data" / NAME, results / "summary" / f"{NAME}.csv", results / "summary" / f"{NAME}.png")
    write_provenance(config, [str(manifest)], results / "provenance.json")
    return results


@pytest.fixture(scope="module")
def produced(tmp_path_factory):
    base = tmp_path_factory.mktemp("pipeline")
    config = small_config(base / "results")
    produce(config)
    return base / "results"


@pytest.fixture
def results(produced, tmp_path, monkeypatch):
    """A private copy of the produced results, with a config pointing at it."""
    monkeypatch.delenv("FACEGEN_DATA_MIRROR", raising=False)
    dest = tmp_path / "results"
    shutil.copytree(produced, dest)
    return dest, small_config(dest)


# --- group counts -------------------------------------------------------------------------------


@pytest.fixture
def tiny_meta():
    return pd.DataFrame({
        "id": list("abcdefgh"),
        "split": ["train", "train", "train", "train", "val", "val", "test", "test"],
        "sex": ["f", "m", "f", "f", "m", "m", "f", "m"],
        "age_bucket": ["70+", "3-9", "10-19", "3-9", "10-19", "70+", "20-29", "3-9"],
    })


def test_group_counts_known_answer(tiny_meta):
    table = group_counts(tiny_meta, ["sex", "age_bucket"], "toy")
    assert list(table.columns) == ["dataset", "attribute", "value", "split", "count", "fraction"]
    assert (table["dataset"] == "toy").all()
    rows = [tuple(r) for r in table[["attribute", "value", "split", "count"]].itertuples(index=False)]
    assert rows == [
        ("age_bucket", "3-9", "train", 2), ("age_bucket", "3-9", "test", 1),
        ("age_bucket", "10-19", "train", 1), ("age_bucket", "10-19", "val", 1),
        ("age_bucket", "20-29", "test", 1),
        ("age_bucket", "70+", "train", 1), ("age_bucket", "70+", "val", 1),
        ("sex", "f", "train", 3), ("sex", "f", "test", 1),
        ("sex", "m", "train", 1), ("sex", "m", "val", 2), ("sex", "m", "test", 1),
    ]
    sex = table[table["attribute"] == "sex"].set_index(["value", "split"])["fraction"]
    assert sex[("f", "train")] == pytest.approx(0.75)
    assert sex[("m", "val")] == pytest.approx(1.0)
    assert sex[("m", "test")] == pytest.approx(0.5)


def test_group_counts_fractions_sum_to_one(tiny_meta):
    table = group_counts(tiny_meta, ["sex", "age_bucket"], "toy")
    sums = table.groupby(["attribute", "split"])["fraction"].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0)
    # And counts per attribute add up to all images.
    assert (table.groupby("attribute")["count"].sum() == len(tiny_meta)).all()


def test_group_counts_without_columns(tiny_meta):
    table = group_counts(tiny_meta, [], "toy")
    assert table[["attribute", "value", "split", "count", "fraction"]].values.tolist() == [
        ["all", "all", "train", 4, 1.0], ["all", "all", "val", 2, 1.0], ["all", "all", "test", 2, 1.0]]


def test_natural_ordering_of_buckets():
    values = ["unknown", "70+", "10-19", "3-9", "0-2", "20-29", "abc"]
    assert sorted(values, key=natural_key) == ["0-2", "3-9", "10-19", "20-29", "70+", "abc", "unknown"]
    meta = pd.DataFrame({"split": ["train"] * 5, "age_bucket": ["70+", "10-19", "3-9", "100+", "3-9"]})
    table = group_counts(meta, ["age_bucket"], "x")
    assert table["value"].tolist() == ["3-9", "10-19", "70+", "100+"]


def test_group_columns(tiny_meta):
    assert group_columns(tiny_meta, "folder") == ["sex", "age_bucket"]  # id and split are not groups
    meta = tiny_meta.assign(group_name="tone_0", smile=1, glasses=0, hair_name="black")
    assert group_columns(meta, "synthetic") == ["group_name", "smile", "glasses", "hair_name"]
    many = pd.DataFrame({"split": ["train"] * 30, "score": range(30), "age": range(30), "kind": ["a"] * 30})
    assert group_columns(many, "folder") == ["kind"]  # >20 distinct values, or 'age', are left out


# --- sample grid --------------------------------------------------------------------------------


def test_sample_grid_full():
    images = np.random.default_rng(0).integers(0, 255, (20, 4, 5, 3), dtype=np.uint8)
    grid = sample_grid(images, 3, seed=1)
    assert grid.shape == (3 * 4, 3 * 5, 3) and grid.dtype == np.uint8
    tiles = [grid[r * 4:(r + 1) * 4, q * 5:(q + 1) * 5] for r in range(3) for q in range(3)]
    picked = [next(i for i in range(20) if np.array_equal(t, images[i])) for t in tiles]
    assert len(set(picked)) == 9 and picked == sorted(picked)
    np.testing.assert_array_equal(grid, sample_grid(images, 3, seed=1))
    assert not np.array_equal(grid, sample_grid(images, 3, seed=2))


@pytest.mark.parametrize("side", [1, 2, 4, 8])
def test_sample_grid_shape_for_side(side):
    images = np.zeros((100, 8, 8, 3), np.uint8)
    assert sample_grid(images, side, 0).shape == (side * 8, side * 8, 3)


def test_sample_grid_fewer_images_than_cells():
    images = np.zeros((5, 2, 2, 3), np.uint8)
    grid = sample_grid(images, 4, 0)  # 5 images fit a 3x3 grid
    assert grid.shape == (6, 6, 3)
    assert (grid[:2, :] == 0).all() and (grid[2:4, :4] == 0).all()  # five image tiles
    assert (grid[2:4, 4:] == 255).all() and (grid[4:, :] == 255).all()  # four blank (white) tiles


# --- summarize ----------------------------------------------------------------------------------


def test_summarize_writes_csv_and_png(produced):
    table = pd.read_csv(produced / "summary" / f"{NAME}.csv", dtype={"value": str})
    assert set(table["attribute"]) == {"group_name", "smile", "glasses", "hair_name"}
    assert (table["dataset"] == NAME).all()
    meta = pd.read_parquet(produced / "data" / NAME / "metadata.parquet")
    expected = group_counts(meta, ["group_name", "smile", "glasses", "hair_name"], NAME)
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)
    assert (table.groupby("attribute")["count"].sum() == 30).all()
    png = produced / "summary" / f"{NAME}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as im:
        assert im.width > im.height > 100


def test_summarize_returns_table_and_is_reproducible(produced, tmp_path):
    config = small_config(produced)
    table = summarize(config, NAME, produced / "data" / NAME, tmp_path / "t.csv", tmp_path / "f.png")
    assert (tmp_path / "t.csv").read_bytes() == (produced / "summary" / f"{NAME}.csv").read_bytes()
    assert (tmp_path / "f.png").read_bytes() == (produced / "summary" / f"{NAME}.png").read_bytes()
    assert len(table) == len(pd.read_csv(tmp_path / "t.csv"))


# --- provenance ---------------------------------------------------------------------------------


def test_provenance_record(produced):
    record = json.loads((produced / "provenance.json").read_text())
    config = small_config(produced)
    assert record["config"] == json.loads(json.dumps(config))
    assert record["config_hash"] == config_hash(config)
    assert record["packages"]["torch"] == importlib.metadata.version("torch")
    assert record["packages"]["numpy"] == importlib.metadata.version("numpy")
    assert record["packages"]["facegen"] == importlib.metadata.version("facegen")
    assert "commit" in record["git"] and "dirty" in record["git"]
    assert record["datasets"] == {NAME: {"kind": "synthetic", "files": {}}}
    assert isinstance(record["device"]["cuda_available"], bool)
    assert record["device"]["python"].count(".") == 2


def test_provenance_dataset_checksums_from_manifests(tmp_path):
    faces = tmp_path / "faces"
    faces.mkdir()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(faces / "x.png")
    labels = tmp_path / "labels.csv"
    labels.write_text("filename,age\nx.png,40\n")
    config = load_config({"results_dir": str(tmp_path / "r"),
                          "data": {"datasets": {"mine": {"kind": "folder", "path": str(faces), "labels": str(labels)},
                                                "synth": {"kind": "synthetic", "n": 10}}}})
    fetch(config, "mine", tmp_path / "m1.json")
    fetch(config, "synth", tmp_path / "m2.json")
    record = write_provenance(config, [str(tmp_path / "m1.json"), str(tmp_path / "m2.json")], tmp_path / "p.json")
    assert json.loads((tmp_path / "p.json").read_text()) == json.loads(json.dumps(record))
    expected_folder = hashlib.sha256(b"x.png\0" + hashlib.sha256((faces / "x.png").read_bytes()).digest()).hexdigest()
    assert record["datasets"]["mine"] == {
        "kind": "folder",
        "files": {"folder": {"sha256": expected_folder, "source": "local folder"},
                  "labels": {"sha256": hashlib.sha256(labels.read_bytes()).hexdigest(), "source": "local file"}},
    }
    assert record["datasets"]["synth"] == {"kind": "synthetic", "files": {}}
    assert record["config_hash"] == config_hash(config)


def test_git_state_in_repo(monkeypatch):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("the source tree is not a git checkout")
    monkeypatch.chdir(ROOT)
    state = git_state()
    assert re.fullmatch(r"[0-9a-f]{40}", state["commit"])
    assert state["commit"] == head.stdout.strip()
    assert isinstance(state["dirty"], bool)


def test_git_state_outside_a_repo(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert git_state(tmp_path) == {"commit": None, "dirty": None}


# --- report helpers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, escaped",
    [
        ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"), ("_", r"\_"), ("{", r"\{"), ("}", r"\}"),
        ("~", r"\textasciitilde{}"), ("^", r"\textasciicircum{}"), ("\\", r"\textbackslash{}"),
        ("plain text 123", "plain text 123"),
        ("a_b & 50% {x}", r"a\_b \& 50\% \{x\}"),
        ("\\&", r"\textbackslash{}\&"),  # no double escaping
        ("~/data_1", r"\textasciitilde{}/data\_1"),
        (3.5, "3.5"),
        (None, "None"),
    ],
)
def test_tex_escape(raw, escaped):
    assert tex_escape(raw) == escaped


def test_tex_header_wraps_long_headers_at_least_as_wide_as_their_longest_word():
    assert report.tex_header("FID") == "FID"
    assert report.tex_header("recon. MSE of the runs") == r"\parbox[b]{1.50cm}{\raggedright recon. MSE of the runs}"
    assert report.tex_header("reconstructions shown") == r"\parbox[b]{2.10cm}{\raggedright reconstructions shown}"  # 15 x 0.14


def test_tex_path_may_break_after_each_slash():
    assert report.tex_path("celeba/32/vae_b/0") == r"celeba/\allowbreak{}32/\allowbreak{}vae\_b/\allowbreak{}0"


def test_number_format():
    assert report.number(1234567) == "1,234,567"
    assert report.number(12) == "12"
    assert report.number(1234.5678, 2) == "1,234.57"
    assert report.number(2.0) == "2"


def test_count_table_known_answer():
    summary = pd.DataFrame({
        "attribute": ["sex", "sex", "sex", "sex"],
        "value": ["f", "f", "m", "m"],
        "split": ["train", "test", "train", "val"],
        "count": [6, 2, 1, 1],
    })
    table = datasets_section.count_table(summary)
    assert table["splits"] == ["train", "val", "test"]
    assert table["rows"] == [
        {"attribute": "sex", "value": "f", "counts": [6, 0, 2], "share": 80.0},
        {"attribute": "sex", "value": "m", "counts": [1, 1, 0], "share": 20.0},
    ]


def test_report_inputs(results):
    """The files the report declares as inputs include every file it reads, and the pipeline made them all."""
    dest, config = results
    inputs = report.report_inputs(config)
    assert inputs[0] == str(dest / "provenance.json")
    for needed in [dest / "summary" / f"{NAME}.csv", dest / "summary" / f"{NAME}.png"]:
        assert str(needed) in inputs
    assert any(Path(p) == dest / "data" / NAME / "prepare.json" or Path(p) == dest / "data" / NAME for p in inputs)
    for p in inputs:
        assert Path(p).exists(), p


# --- the report ---------------------------------------------------------------------------------


def test_html_report_reads_result_files(results, produced):
    dest, config = results
    html_path = dest / "report" / "paper.html"
    build_report(config, html_path, None)
    html = html_path.read_text()
    prep = json.loads((dest / "data" / NAME / "prepare.json").read_text())
    prov = json.loads((dest / "provenance.json").read_text())
    assert prep["n_images"] == 30
    assert f"<h3>{NAME}</h3>" in html
    assert f"<strong>{prep['n_images']}</strong> images" in html
    splits = " / ".join(f"{k} {v}" for k, v in prep["split_counts"].items())
    assert f"split {splits}" in html
    assert f"config hash <code>{prov['config_hash']}</code>" in html
    assert prov["config_hash"] == config_hash(small_config(produced))
    assert f"<td>torch</td><td>{importlib.metadata.version('torch')}</td>" in html
    assert "data:image/png;base64," in html  # the summary figure is embedded
    assert "<title>Low-resolution face generation under tight compute</title>" in html
    # A row of the group table, with the share computed from summary CSV counts.
    summary = pd.read_csv(dest / "summary" / f"{NAME}.csv", dtype={"value": str})
    tone0 = summary[(summary["attribute"] == "group_name") & (summary["value"] == "tone_0")]
    share = 100.0 * tone0["count"].sum() / 30
    assert "<td>group_name</td><td>tone_0</td>" in html
    assert f"<td>{share:.1f}</td>" in html


def test_html_report_changes_with_result_files(results):
    dest, config = results
    build_report(config, dest / "a.html", None)
    before = (dest / "a.html").read_text()
    prep_path = dest / "data" / NAME / "prepare.json"
    prep = json.loads(prep_path.read_text())
    prep["n_images"] = 98765
    prep["n_skipped_unreadable"] = 4321
    prep_path.write_text(json.dumps(prep))
    prov_path = dest / "provenance.json"
    prov = json.loads(prov_path.read_text())
    prov["config_hash"] = "feedfacecafebeef"
    prov["git"] = {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": True}
    prov_path.write_text(json.dumps(prov))
    build_report(config, dest / "b.html", None)
    after = (dest / "b.html").read_text()
    assert after != before
    assert "<strong>98,765</strong> images" in after and "98,765" not in before
    assert "4,321 unreadable images skipped" in after
    assert "config hash <code>feedfacecafebeef</code>" in after
    assert "0123456789abcdef0123456789abcdef01234567" in after and "(with uncommitted changes)" in after
    assert "<strong>30</strong> images" not in after


def test_report_needs_its_input_files(results):
    dest, config = results
    (dest / "data" / NAME / "prepare.json").unlink()
    with pytest.raises(FileNotFoundError, match="prepare.json"):
        build_report(config, dest / "x.html", None)


def test_pdf_refused_when_disabled(results):
    dest, _ = results
    config = small_config(dest, report={"pdf": False})
    with pytest.raises(ReportError, match="report.pdf is false"):
        build_report(config, dest / "r.html", dest / "r.pdf")
    assert not (dest / "r.pdf").exists()


def test_pdf_without_latex_gives_install_hint(results, monkeypatch):
    dest, config = results
    monkeypatch.setattr(report.shutil, "which", lambda name: None)
    with pytest.raises(ReportError) as info:
        build_report(config, dest / "r.html", dest / "r.pdf")
    assert "latexmk/pdflatex not found" in str(info.value)
    assert "report.pdf: false" in str(info.value)
    assert not (dest / "r.pdf").exists()


def test_tex_source_escapes_names(results):
    dest, config = results
    tex = report.render("tex", report.collect(config))
    assert r"\subsection{toy\_set}" in tex
    assert r"group\_name & tone\_0" in tex
    assert tex.startswith(r"\documentclass") and tex.rstrip().endswith(r"\end{document}")


def test_pdf_report(results):
    if shutil.which("latexmk") is None or shutil.which("pdflatex") is None:
        pytest.skip("latexmk/pdflatex not on PATH; the PDF report cannot be built here")
    dest, config = results
    pdf = dest / "report" / "paper.pdf"
    build_report(config, dest / "report" / "paper.html", pdf)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(data) > 10_000  # the embedded figure alone is larger than this


# --- CLI pipeline -------------------------------------------------------------------------------


def test_cli_pipeline_end_to_end(tmp_path, monkeypatch, capsys, restore_logging):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FACEGEN_DATA_MIRROR", raising=False)
    inline = json.dumps({"seed": 2, "results_dir": "res",
                         "data": {"resolutions": [16], "sample_grid": 2,
                                  "datasets": {"demo": {"kind": "synthetic", "n": 12, "size": 64,
                                                        "group_weights": [1, 1], "group_noise": [0, 0]}}},
                         "report": {"pdf": False}})
    common = ["--config", inline]
    assert cli.main(["fetch", "demo", "--out", "res/manifests/demo.json", *common]) == 0
    assert cli.main(["prepare", "demo", "--manifest", "res/manifests/demo.json", "--out-dir", "res/data/demo", *common]) == 0
    assert cli.main(["summarize", "demo", "--data-dir", "res/data/demo", "--table", "res/summary/demo.csv",
                     "--figure", "res/summary/demo.png", *common]) == 0
    assert cli.main(["provenance", "--manifests", "res/manifests/demo.json", "--out", "res/provenance.json", *common]) == 0
    assert cli.main(["report", "--html", "res/report/paper.html", "--log", "logs/report.log", *common]) == 0
    html = (tmp_path / "res" / "report" / "paper.html").read_text()
    assert "<h3>demo</h3>" in html and "<strong>12</strong> images" in html
    assert np.load(tmp_path / "res" / "data" / "demo" / "images_16.npy").shape == (12, 16, 16, 3)
    assert "report written to res/report/paper.html" in (tmp_path / "logs" / "report.log").read_text()
    # A PDF asked for while report.pdf is false is a clean error, exit status 2.
    assert cli.main(["report", "--html", "res/report/p.html", "--pdf", "res/report/p.pdf", *common]) == 2
    assert "report.pdf is false" in capsys.readouterr().err


def test_cli_prepare_with_missing_folder_exit_2(tmp_path, capsys, restore_logging):
    inline = json.dumps({"data": {"datasets": {"mine": {"kind": "folder", "path": str(tmp_path / "gone")}}}})
    rc = cli.main(["fetch", "mine", "--out", str(tmp_path / "m.json"), "--config", inline])
    assert rc == 2
    assert str(tmp_path / "gone") in capsys.readouterr().err


def test_html_split_list_is_separated_from_method(results):
    dest, config = results
    build_report(config, dest / "s.html", None)
    html = (dest / "s.html").read_text()
    prep = json.loads((dest / "data" / NAME / "prepare.json").read_text())
    last_split, last_n = list(prep["split_counts"].items())[-1]
    assert f"{last_split} {last_n} ({prep['split_method']})" in html
