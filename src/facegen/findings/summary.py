"""The paper's abstract, methods and limitations, generated from the findings and the result files."""

from __future__ import annotations

import json
import math

from facegen.data.celeba import FULL_SIZE as CELEBA_FULL_SIZE
from facegen.findings import stats
from facegen.findings.record import fmt
from facegen.findings.results import Results
from facegen.metrics import verdict_metric

PROTOCOL_KEYS = ("n_generated", "n_real", "real_split", "sampler", "inception_mode", "n_recon", "recon_split")


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
    for p in res.prepared_files():
        if p.is_file():
            prep = json.loads(p.read_text())
            out[p.parent.name] = {"n_images": prep["n_images"], "split": prep.get("split_counts", {}), "method": prep.get("split_method", "")}
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
    protocol = res.protocol()
    if protocol:  # the keys the Methods name, present or None
        protocol = {k: protocol.get(k) for k in PROTOCOL_KEYS}
    return {"data": _prepared(res), "models": models, "protocol": protocol, "tests": stats.METHOD,
            "tolerance": stats.RELATIVE_TOLERANCE}


def limitations(res: Results, papers: list[dict], methods: dict) -> list[str]:
    out = []
    for p in papers:
        for i in p["items"]:
            if i["verdict"] == stats.UNAVAILABLE:
                out.append(f"Not computed ({p['paper']}): {i['claim']} {i['ours']}; {i['test']}.")
    protocol, t = res.protocol(), res.table("evaluation")
    if protocol.get("n_generated") and protocol.get("n_real"):
        floors = t[(t["family"] == "real") & (t["metric"] == "fid")]
        floor_text = "; ".join(f"{r.dataset} {r.resolution}x{r.resolution}: {r.value:.1f}" for r in floors.itertuples()) or "not computed"
        out.append(f"FID is estimated from {int(protocol['n_generated'])} generated images against {int(protocol['n_real'])} real "
                   f"{protocol['real_split']} images, which biases it upward (Chong and Forsyth 2020). The floor, real "
                   f"{res.config['evaluation']['floor_split']} images scored as samples are, is {floor_text}: no model can be told "
                   f"apart from real faces below it. FID is a description here: every verdict on sample quality decides on "
                   f"{verdict_metric().label}, FID extrapolated over subsets of the samples to infinitely many (Chong and Forsyth "
                   "2020). Its fit in 1/n holds where n is well above the feature dimension (the paper fits 5,000 to 50,000 "
                   "images); at a few hundred it is an extrapolation outside that range and removes less of the bias. KID, "
                   "unbiased at any n, stands beside both.")
    gates = res.table("gates")
    if not gates.empty:
        failing = gates[~gates["passes"].astype(bool)]
        if len(failing):
            which = ("every model" if len(failing) == len(gates) else
                     ", ".join(f"{r.dataset}/{r.resolution}/{r.model}" for r in failing.itertuples()))
            out.append(f"{len(failing)} of {len(gates)} models fail at least one quality gate at this budget (precision, "
                       f"diversity, or an adversarial {verdict_metric().label} above the plain VAE's; the Evaluation section's gate table gives each): "
                       f"{which}. Their comparisons are between weak models.")
    prep = _prepared(res)
    if "celeba" in prep:
        out.append(f"CelebA is a subset: {prep['celeba']['n_images']:,} of its {CELEBA_FULL_SIZE:,} images (the local mirror), "
                   "so the reference statistics and every model see a small sample of its faces.")
    plan = res.path("plan")
    if plan.is_file():
        planned = json.loads(plan.read_text())
        out.append(f"Compute is small: facegen plan sized the whole study at {planned['wall_seconds'] / 60:.0f} minutes on "
                   f"{planned['slots']} CPU cores (the Compute section gives the measured time), so the training budgets are far "
                   "below the source papers' and the literature's, and every ranking here is a statement about low compute.")
    single = sorted({i["claim"] for p in papers for i in p["items"] if "single seed" in i["ours"] + i["test"]})
    seeded = [m for m in methods["models"] if m["seeds"] > 1]
    if single:
        several = ", ".join(m["run"] for m in seeded) or "none"
        out.append(f"{len(single)} findings rest on single-seed runs and are marked so; the runs with several seeds: {several}.")
    if seeded:
        fewest = min(m["seeds"] for m in seeded)
        out.append(f"With {fewest} seeds a side, the exact permutation test cannot go below p = {2 / math.comb(2 * fewest, fewest):.2g}, so "
                   "verdicts across seeds rest on Welch's t interval, which assumes a roughly normal spread of each metric over seeds; "
                   "a large effect is needed to be called at all, and 'no difference shown' is not evidence of equality.")
    out.append("The generated group mix is corrected by the demographic classifier's confusion matrix on real test faces, which "
               "assumes that the classifier errs on generated faces as it does on real ones (label shift only) and that every "
               "group is predicted at least sometimes.")
    return out
