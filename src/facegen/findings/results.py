"""The result files the findings read, by role, each read once; ``source`` names a file as the findings
cite it (relative to the results folder)."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import pandas as pd

from facegen import paths


class Results:
    def __init__(self, config: dict):
        self.config = config
        self.root = paths.results(config)

    def source(self, path: Path) -> str:
        return str(Path(path).relative_to(self.root)) if Path(path).is_relative_to(self.root) else str(path)

    # -- files -------------------------------------------------------------------------------------
    def files(self) -> dict[str, Path]:
        """Every file the findings may read, by role (the rule's inputs)."""
        from facegen.experiments import NAMES

        cfg = self.config
        summary = paths.evaluation_summary(cfg)
        out = {"evaluation": summary["table"], "gates": summary["gates"], "plan": paths.plan(cfg), **{
            f"training_{k}": v for k, v in paths.training_summary(cfg).items() if k in ("table", "replication")}}
        out.update({f"experiment_{n}": paths.experiment_outputs(cfg, n)["table"] for n in NAMES})
        recon = paths.bias_reconstruction(cfg)
        out.update(bias_groups=recon["groups"], bias_mitigation=paths.bias_mitigation(cfg))
        return out

    def prepared_files(self) -> list[Path]:
        """prepare.json of every built dataset (the Methods' data and splits)."""
        from facegen.config import active_datasets

        return [paths.prepared(self.config, d) / "prepare.json" for d in active_datasets(self.config)]

    def path(self, role: str) -> Path:
        return self.files()[role]

    @functools.cache
    def table(self, role: str) -> pd.DataFrame:
        """A CSV by role; an empty frame for a file with no rows (a stage that had nothing to analyse)."""
        p = self.path(role)
        if not p.is_file() or p.stat().st_size <= 1:
            return pd.DataFrame()
        return pd.read_csv(p)

    @functools.cache
    def replication(self) -> dict:
        p = self.path("training_replication")
        return json.loads(p.read_text()) if p.is_file() else {}

    def classifier_file(self, dataset: str, source: str) -> Path | None:
        """The metrics of the demographic classifier trained on ``dataset``'s ``source`` images, if configured."""
        from facegen.bias.selection import classifier_sources

        if not any((c["dataset"], c["source"]) == (dataset, source) for c in classifier_sources(self.config)):
            return None
        return paths.demographic_classifier(self.config, dataset, source).with_suffix(".json")

    def classifier_files(self) -> list[Path]:
        from facegen.bias.selection import classifier_sources

        return [paths.demographic_classifier(self.config, c["dataset"], c["source"]).with_suffix(".json")
                for c in classifier_sources(self.config)]

    def vae_histories(self) -> list[Path]:
        """history.csv of every run of a conv VAE (arch vae: the HVAE-paper question reads its baseline's)."""
        from facegen.training.matrix import active_runs

        return [paths.train_file(self.config, r, "history") for r in active_runs(self.config)
                if self.config["models"][r["model"]]["arch"] == "vae"]

    def _history_file(self, run: str) -> Path:
        return paths.train_file(self.config, paths.Run.from_key(run), "history")

    def history(self, run: str) -> pd.DataFrame | None:
        p = self._history_file(run)
        return pd.read_csv(p) if p.is_file() else None

    def history_path(self, run: str) -> str:
        return self.source(self._history_file(run))

    # -- the evaluation table ----------------------------------------------------------------------
    def values(self, dataset: str, resolution: int, model: str | None, metric: str) -> pd.Series:
        """One value per training seed of a model's metric (index: seed); empty for no model."""
        t = self.table("evaluation")
        if t.empty or model is None:
            return pd.Series(dtype=float)
        rows = t[(t["dataset"] == dataset) & (t["resolution"] == resolution) & (t["model"] == model) & (t["metric"] == metric)
                 & (t["family"] != "real")]
        return rows.set_index("seed")["value"].sort_index()

    def floor(self, dataset: str, resolution: int, metric: str) -> float | None:
        """The real-versus-real floor's value of a metric, scored as the runs are."""
        t = self.table("evaluation")
        if t.empty:
            return None
        rows = t[(t["family"] == "real") & (t["dataset"] == dataset) & (t["resolution"] == resolution) & (t["metric"] == metric)]
        return float(rows["value"].iloc[0]) if len(rows) else None

    def baseline(self, dataset: str, resolution: int, arch: str) -> str | None:
        """The study's baseline of a family at a dataset and resolution, found by architecture and role,
        not by its config name: the model of architecture ``arch`` trained in an experiment beside the
        hybrids (arch vaegan) where there is one; among several, the one with the most seeds, then the
        first by name. None when no model of ``arch`` was evaluated there."""
        t = self.table("evaluation")
        if t.empty:
            return None
        rows = t[(t["dataset"] == dataset) & (t["resolution"] == resolution) & (t["arch"] == arch) & (t["family"] != "real")]
        if rows.empty:
            return None
        seeds = rows.groupby("model")["seed"].nunique()
        models = self.config["models"]
        central = {m for e in self.config["experiments"] if dataset in e["datasets"] and resolution in e["resolutions"]
                   and any(models[x]["arch"] == "vaegan" for x in e["models"]) for m in e["models"]}
        return min(seeds.index, key=lambda m: (m not in central, -seeds[m], m))

    def models(self, dataset: str, resolution: int) -> list[str]:
        t = self.table("evaluation")
        if t.empty:
            return []
        rows = t[(t["dataset"] == dataset) & (t["resolution"] == resolution) & (t["family"] != "real")]
        return sorted(rows["model"].unique())

    def protocol(self) -> dict:
        """The evaluation protocol every run shares (facegen.evaluation.summary.check_protocols); the
        reconstruction keys are read from a run with an encoder."""
        t = self.table("evaluation")
        if t.empty:
            return {}
        runs = t[t["family"] != "real"]
        recon = runs[runs["metric"] == "recon_mse"]
        row = (recon if len(recon) else runs).iloc[0]
        def as_read(v):  # numpy scalars, counts that a column with gaps read as floats, and gaps as None
            v = v.item() if hasattr(v, "item") else v
            if isinstance(v, float) and not math.isfinite(v):
                return None
            return int(v) if isinstance(v, float) and v.is_integer() else v

        return {c.removeprefix("protocol_"): as_read(row[c]) for c in t.columns if c.startswith("protocol_")}
