"""VAE-GAN proposal: its hypothesis ("hybrid VAE-GANs beat standalone VAE and GAN on FID, with a better
quality-diversity trade-off, while keeping training stable"), tested across the central comparison's seeds,
and the ranking of the three fusions. "On FID" is decided on FID_inf (facegen.metrics.verdict_metric): FID at
the study's n is biased by an amount that depends on the model."""

from __future__ import annotations

import pandas as pd

from facegen.findings import stats
from facegen.findings.record import finding, fmt, pvalue, with_interval
from facegen.findings.results import Results
from facegen.metrics import verdict_metric

PAPER_NAME = "VAE-GAN proposal"
BASELINES = ("vae", "dcgan")  # the architectures of the standalone VAE and GAN (Results.baseline finds their models)
QUOTED = "quoted: VAE-GAN proposal, hypothesis (no figures: a proposal)"


def flags_text() -> str:
    """The failure flags of a run, as facegen.evaluation.summary.collapsed and facegen.training.summary set them."""
    from facegen.evaluation.summary import COLLAPSE_DIVERSITY
    from facegen.training.collapse import D_WON_FAKE, D_WON_SHARE

    return (f"LPIPS diversity below {COLLAPSE_DIVERSITY:g}x the real images', or mean D(fake) below {D_WON_FAKE:g} over the "
            f"last {D_WON_SHARE:.0%} of epochs")


def central(res: Results) -> tuple[str, int, list[str]] | None:
    """The dataset and resolution with the most seeds of the hybrids beside both baselines, and the hybrids."""
    t = res.table("evaluation")
    if t.empty:
        return None
    best = None
    for (dataset, resolution), grp in t[t["family"] != "real"].groupby(["dataset", "resolution"]):
        hybrids = sorted(grp.loc[grp["arch"] == "vaegan", "model"].unique())
        if not hybrids or None in baselines(res, (dataset, int(resolution))):
            continue
        seeds = grp[grp["model"].isin(hybrids)].groupby("model")["seed"].nunique().min()
        if best is None or seeds > best[0]:
            best = (seeds, dataset, int(resolution), hybrids)
    return best[1:] if best else None


def baselines(res: Results, where) -> list[str | None]:
    """The models of the standalone VAE and GAN at ``where`` (dataset, resolution)."""
    return [res.baseline(*where, arch) for arch in BASELINES]


def fusion(config: dict, model: str) -> str:
    return config["models"][model].get("params", {}).get("fusion", "early")


def _hypothesis(res: Results, where, hybrid: str, fusion_name: str, sources) -> dict:
    dataset, resolution = where
    q = verdict_metric()
    base = baselines(res, where)
    score = {m: res.values(dataset, resolution, m, q.name) for m in (hybrid, *base)}
    pairs = {b: stats.compare_seeds(score[hybrid], score[b]) for b in base}
    verdict = stats.overall([p["verdict"] for p in pairs.values()])
    ours = (f"{q.label} {hybrid} {with_interval(stats.mean_interval(score[hybrid]), 4)}; "
            + "; ".join(f"{b} {with_interval(stats.mean_interval(score[b]), 4)}, difference {fmt(pairs[b]['difference'], 3)} "
                        f"[{fmt(pairs[b]['low'], 3)}, {fmt(pairs[b]['high'], 3)}]: {pairs[b]['verdict']}" for b in base))
    test = (f"reproduced when the hybrid is better than both baselines, each decided by the Welch {stats.CONFIDENCE:.0%} interval "
            f"of the {q.label} difference over seeds; exact permutation p: " + ", ".join(f"{b} {pvalue(pairs[b]['p'])}" for b in base))
    return finding(f"The {fusion_name}-fusion VAE-GAN has a lower FID than the standalone VAE and DCGAN at {resolution}x{resolution} "
                   f"({q.label}: FID extrapolated to infinitely many samples).", QUOTED, ours, verdict, test, sources)


def _stability(res: Results, where, models: list[str], sources) -> dict:
    from facegen.evaluation.summary import collapsed, per_run

    dataset, resolution = where
    base = baselines(res, where)
    prefix = f"{dataset}/{resolution}/"
    evaluation, training = res.table("evaluation"), res.table("training_table")
    flagged_collapse = set(collapsed(evaluation)["run"]) if not evaluation.empty else set()
    won = set(training.loc[training["d_won"].fillna(False).astype(bool), "run"]) if "d_won" in training else set()
    # A run is checked only where both flags could be raised: no flag for want of a measurement is no evidence.
    wide = per_run(evaluation) if not evaluation.empty else pd.DataFrame(columns=["run"])
    diversity_known = set(wide.loc[wide[["lpips_diversity", "lpips_diversity_real"]].notna().all(axis=1), "run"]) \
        if {"lpips_diversity", "lpips_diversity_real"} <= set(wide.columns) else set()
    d_known = set(training.loc[training["d_fake_final"].notna(), "run"]) if "d_fake_final" in training else set()
    parts, hybrid_flags, unchecked = [], 0, []
    for m in models:
        runs = [f"{prefix}{m}/{s}" for s in res.values(dataset, resolution, m, "fid").index]
        flags = [r for r in runs if r in flagged_collapse or r in won]
        hybrid_flags += len(flags) * (m not in base)
        if m not in base:
            unchecked += [r for r in runs if r not in diversity_known or r not in d_known]
        sd = stats.mean_interval(res.values(dataset, resolution, m, "fid"))["sd"]
        parts.append(f"{m}: FID sd {fmt(sd, 3)} over {len(runs)} seeds, {len(flags)} flagged")
    if unchecked:
        parts.append(f"unchecked (no LPIPS diversity or final D(fake)): {', '.join(unchecked)}")
    verdict = stats.NOT_REPRODUCED if hybrid_flags else stats.UNAVAILABLE if unchecked else stats.REPRODUCED
    return finding("The hybrids keep training stable.", QUOTED, "; ".join(parts), verdict,
                   f"stated rule: reproduced when no hybrid run is flagged ({flags_text()}); the FID spread across seeds is shown, not tested",
                   sources)


def _ranking(res: Results, where, hybrids: list[str], names: dict, sources) -> dict:
    dataset, resolution = where
    q = verdict_metric()
    score = {m: res.values(dataset, resolution, m, q.name) for m in hybrids}
    order = sorted(hybrids, key=lambda m: stats.mean_interval(score[m])["mean"])
    best = order[0]
    against = {m: stats.compare_seeds(score[best], score[m]) for m in order[1:]}
    verdict = stats.overall([p["verdict"] for p in against.values()], stats.BETTER, stats.WORSE)
    ours = (f"by mean {q.label}: " + " < ".join(f"{names[m]} {with_interval(stats.mean_interval(score[m]), 4)}" for m in order)
            + "; " + "; ".join(f"{names[best]} vs {names[m]}: {p['verdict']} (difference {fmt(p['difference'], 3)}, "
                                f"[{fmt(p['low'], 3)}, {fmt(p['high'], 3)}], p = {pvalue(p['p'])})" for m, p in against.items()))
    return finding(f"Which fusion (early, late, progressive) gives the lowest FID ({q.label})?", QUOTED, ours, verdict,
                   f"'better' when the first-ranked fusion beats each other one: Welch {stats.CONFIDENCE:.0%} interval of the difference over seeds",
                   sources)


def _trade_off(res: Results, where, hybrids: list[str], names: dict, sources) -> dict:
    dataset, resolution = where
    base = baselines(res, where)
    parts, per_fusion = [], []
    for h in hybrids:
        cmp = {(metric, b): stats.compare_seeds(res.values(dataset, resolution, h, metric), res.values(dataset, resolution, b, metric),
                                                lower_is_better=False)
               for metric in ("precision", "recall") for b in base}
        verdicts = [c["verdict"] for c in cmp.values()]
        better_on_each = all(any(cmp[(metric, b)]["verdict"] == stats.BETTER for metric in ("precision", "recall")) for b in base)
        per_fusion.append(stats.UNAVAILABLE if stats.UNAVAILABLE in verdicts else stats.NOT_REPRODUCED if stats.WORSE in verdicts
                          else stats.REPRODUCED if better_on_each else stats.UNDECIDED)
        parts.append(f"{names[h]}: " + ", ".join(f"{metric} vs {b} {c['verdict']}" for (metric, b), c in cmp.items()))
    summary = {m: {k: stats.mean_interval(res.values(dataset, resolution, m, k), stats.UNIT_RANGE) for k in ("precision", "recall")}
               for m in (*base, *hybrids)}
    means = "; ".join(f"{m}: precision {with_interval(s['precision'], 2)}, recall {with_interval(s['recall'], 2)}" for m, s in summary.items())
    verdict = (stats.REPRODUCED if stats.REPRODUCED in per_fusion else stats.UNAVAILABLE if set(per_fusion) == {stats.UNAVAILABLE}
               else stats.NOT_REPRODUCED if set(per_fusion) <= {stats.NOT_REPRODUCED, stats.UNAVAILABLE} else stats.UNDECIDED)
    return finding("A hybrid has a better quality-diversity trade-off than both baselines (precision and recall on Inception features).",
                   QUOTED, f"{means}. {'; '.join(parts)}", verdict,
                   "stated rule: reproduced when some fusion is worse than neither baseline on precision and recall, and better than "
                   f"each baseline on at least one of them; each comparison a Welch {stats.CONFIDENCE:.0%} interval over seeds", sources)


def findings(res: Results) -> dict:
    where = central(res)
    sources = [res.source(res.path("evaluation")), res.source(res.path("training_table"))]
    if where is None:
        return {"paper": PAPER_NAME, "items": [finding("Do hybrid VAE-GANs beat standalone VAE and GAN on FID?", QUOTED,
                                                       "no VAE-GAN evaluated beside both a VAE and a DCGAN in this config",
                                                       stats.UNAVAILABLE, "needs the central comparison", sources)]}
    dataset, resolution, hybrids = where
    names = {m: fusion(res.config, m) for m in hybrids}
    at = (dataset, resolution)
    base = baselines(res, at)
    items = [_hypothesis(res, at, h, names[h], sources) for h in hybrids]
    q = verdict_metric()
    score = {m: stats.mean_interval(res.values(dataset, resolution, m, q.name)) for m in (*base, *hybrids)}
    headline = (f"hybrids against VAE and DCGAN on {q.label} at {resolution}x{resolution} "
                f"(VAE {with_interval(score[base[0]], 4)}, DCGAN {with_interval(score[base[1]], 4)}): "
                + "; ".join(f"{names[h]} fusion {with_interval(score[h], 4)}, hypothesis {i['verdict']}" for h, i in zip(hybrids, items)) + ".")
    items += [_trade_off(res, at, hybrids, names, sources), _stability(res, at, [*base, *hybrids], sources),
              _ranking(res, at, hybrids, names, sources)]
    return {"paper": PAPER_NAME, "items": items, "headline": headline, "central": {"dataset": dataset, "resolution": resolution,
                                                              "models": [*base, *hybrids]}}
