"""The paper's abstract, methods and limitations, generated from the findings and the result files."""

from __future__ import annotations

import json

from facegen import paths
from facegen.findings import stats
from facegen.findings.record import fmt
from facegen.findings.results import Results

CELEBA_FULL = 202_599  # images in the official CelebA release


def abstract(res: Results, papers: list[dict]) -> list[str]:
    """One headline per source paper: its own headline where it has one, else its first decided claim with
    our figure and the verdict; then the tally of its verdicts."""
    out = []
    for p in papers:
        decided = [i for i in p["items"] if i["verdict"] != stats.UNAVAILABLE]
        if not decided:
            continue
        counts = {v: sum(i["verdict"] == v for i in decided) for v in stats.VERDICTS}
        tally = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        head = decided[0]
        line = p.get("headline") or f"{head['claim']} Verdict: {head['verdict']} ({head['ours']})."
        out.append(f"{p['paper']}: {line} All its findings: {tally}.")
    return out


def _prepared(res: Results) -> dict:
    out = {}
    for name in res.config["data"]["datasets"]:
        p = paths.prepared(res.config, name) / "prepare.json"
        if p.is_file():
            prep = json.loads(p.read_text())
            out[name] = {"n_images": prep["n_images"], "split": prep.get("split_counts", {}), "method": prep.get("split_method", "")}
    return out


def methods(res: Results) -> dict:
    training = res.table("training_table")
    models = []
    if not training.empty:
        for (dataset, resolution, model), g in training.groupby(["dataset", "resolution", "model"], sort=True):
            r = g.iloc[0]
            models.append({"run": f"{dataset}/{resolution}/{model}", "arch": r["arch"], "n_parameters": int(r["n_parameters"]),
                           "seeds": len(g), "epochs": int(r["epochs"]), "n_train_images": int(r["n_train_images"]),
                           "train_minutes": float(g["train_minutes"].mean()), "precision": r["precision"]})
    return {"data": _prepared(res), "models": models, "protocol": res.protocol(), "tests": stats.__doc__.strip(),
            "tolerance": stats.RELATIVE_TOLERANCE}


def limitations(res: Results, papers: list[dict]) -> list[str]:
    out = []
    for p in papers:
        for i in p["items"]:
            if i["verdict"] == stats.UNAVAILABLE:
                out.append(f"Not computed ({p['paper']}): {i['claim']} {i['ours']}; {i['test']}.")
    protocol, t = res.protocol(), res.table("evaluation")
    if protocol:
        floors = t[(t["family"] == "real") & (t["metric"] == "fid")]
        floor_text = "; ".join(f"{r.dataset} {r.resolution}x{r.resolution}: {r.value:.1f}" for r in floors.itertuples()) or "not computed"
        out.append(f"FID is estimated from {int(protocol['n_generated'])} generated images against {int(protocol['n_real'])} real "
                   f"{protocol['real_split']} images, which biases it upward (Chong and Forsyth 2020). The floor, real "
                   f"{res.config['evaluation']['floor_split']} images scored as samples are, is {floor_text}: no model can be told "
                   "apart from real faces below it. KID, unbiased, stands beside FID in every table.")
    prep = _prepared(res)
    if "celeba" in prep:
        out.append(f"CelebA is a subset: {prep['celeba']['n_images']:,} of its {CELEBA_FULL:,} images (the local mirror), "
                   "so the reference statistics and every model see a small sample of its faces.")
    plan = res.path("plan")
    if plan.is_file():
        planned = json.loads(plan.read_text())
        out.append(f"Compute is small: facegen plan sized the whole study at {planned['wall_seconds'] / 60:.0f} minutes on "
                   f"{planned['slots']} CPU cores (the Compute section gives the measured time), so the training budgets are far "
                   "below the source papers' and the literature's, and every ranking here is a statement about low compute.")
    single = sorted({i["claim"] for p in papers for i in p["items"] if "single seed" in i["ours"] + i["test"]})
    if single:
        out.append(f"{len(single)} findings rest on single-seed runs and are marked so; only the central 32x32 comparison has "
                   "several seeds.")
    out.append("With 3 seeds a side the exact permutation test cannot reach p < 0.1, and the percentile bootstrap interval over "
               "seeds is narrower than its nominal 95%: a 'better' or 'worse' across seeds is weaker evidence than its interval suggests.")
    out.append("The generated group mix is corrected by the demographic classifier's confusion matrix on real test faces, which "
               "assumes that the classifier errs on generated faces as it does on real ones (label shift only) and that every "
               "group is predicted at least sometimes.")
    return out
