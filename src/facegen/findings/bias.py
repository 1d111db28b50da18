"""Bias: which demographic groups every VAE reconstructs worse, with Holm-corrected tests, and whether the
mitigations lower the fairness discrepancy and the disparity, at what cost in FID."""

from __future__ import annotations

from facegen.findings import stats
from facegen.findings.record import finding, fmt
from facegen.findings.results import Results

PAPER_NAME = "Bias"
QUOTED = "quoted: variations report, which notes CelebA's demographic bias (no figure)"


def worse_groups(groups, metric: str = "mse") -> list[dict]:
    """Per dataset, attribute and group: in how many of the runs that analysed it the group's reconstruction
    error is significantly above the pooled mean (Holm-corrected permutation test), sorted most consistent first."""
    g = groups[groups["metric"] == metric].copy()
    if g.empty:
        return []
    g["dataset"] = g["run"].str.split("/").str[0]
    g["worse"] = g["significant"].astype(bool) & (g["mean"] > g["pooled_mean"])
    g["ratio"] = g["mean"] / g["pooled_mean"]
    out = []
    for (dataset, attribute, group), rows in g.groupby(["dataset", "attribute", "group"], sort=True):
        out.append({"dataset": dataset, "attribute": attribute, "group": group, "n_runs": len(rows), "n_worse": int(rows["worse"].sum()),
                    "ratio_low": float(rows["ratio"].min()), "ratio_high": float(rows["ratio"].max())})
    return sorted(out, key=lambda r: (-r["n_worse"] / r["n_runs"], -r["ratio_high"]))


def _reconstruction(res: Results) -> dict:
    groups, source = res.table("bias_groups"), [res.source(res.path("bias_groups"))]
    claim = "Which demographic groups are reconstructed worse, consistently across models?"
    if groups.empty:
        return finding(claim, QUOTED, "no VAE-type run on a dataset with groups", stats.UNAVAILABLE, "needs labelled runs", source)
    rows = worse_groups(groups)
    consistent = [r for r in rows if r["n_worse"] == r["n_runs"] >= 2]  # one run is no consistency
    relative = {(r["dataset"], r["attribute"], r["group"]) for r in worse_groups(groups, "mse_relative")
                if r["n_worse"] == r["n_runs"] >= 2}
    some = [r for r in rows if r["n_worse"] and r not in consistent]
    describe = lambda r: (f"{r['dataset']} {r['attribute']} = {r['group']} in {r['n_worse']} of {r['n_runs']} runs "  # noqa: E731
                          f"(MSE {fmt(r['ratio_low'], 3)}-{fmt(r['ratio_high'], 3)}x the pooled mean)")
    ours = ("significantly worse in every run: " + ("; ".join(map(describe, consistent)) or "no group")
            + ". In some runs only: " + ("; ".join(map(describe, some[:8])) or "none") + (f" and {len(some) - 8} more" if len(some) > 8 else "")
            + ". Of the groups worse in every run, also worse in every run on MSE over each image's own pixel variance (a model-free "
            "yardstick of image content, by the same test): "
            + (", ".join(f"{r['dataset']} {r['attribute']} = {r['group']}" for r in consistent
                         if (r["dataset"], r["attribute"], r["group"]) in relative) or "none"))
    return finding(claim, QUOTED, ours, stats.WORSE if consistent else stats.UNDECIDED,
                   "per run, a group's test-set reconstruction MSE against the pooled mean, permutation test, Holm-corrected over "
                   "the groups; 'worse' when some group is significantly worse in every one of two or more runs that analysed it",
                   source)


def mitigation_verdicts(table) -> list[dict]:
    """Per mitigation pair (dataset, resolution, baseline, balanced): is the balanced twin's generated group
    mix closer to uniform than the baseline's, across training seeds? compare_seeds on the unbiased squared
    fairness discrepancy (fd2_uniform_unbiased), one value per seed a side; 'better' means the balanced
    twin is fairer, and below 2 seeds a side the verdict is unavailable."""
    out = []
    for (ds, res, baseline, balanced, mode), rows in table.groupby(["dataset", "resolution", "baseline", "balanced", "balance_mode"],
                                                                  sort=False):
        decided = stats.compare_seeds(rows["fd2_uniform_unbiased_balanced"], rows["fd2_uniform_unbiased_baseline"])
        out.append({"pair": f"{ds}/{res} {balanced} ({mode}) vs {baseline}", "rows": rows, **decided})
    return out


def _mitigation(res: Results) -> dict:
    table, source = res.table("bias_mitigation"), [res.source(res.path("bias_mitigation"))]
    claim = "Does rebalancing the training data lower the fairness discrepancy of the generated group mix, and at what cost in FID?"
    quoted = "quoted: none (Choi et al. 2020's fairness discrepancy, our ablation)"
    if table.empty:
        return finding(claim, quoted, "no mitigation twins in this config", stats.UNAVAILABLE, "needs bias.mitigation", source)
    parts, verdicts = [], []
    for pair in mitigation_verdicts(table):
        rows, v = pair["rows"], pair["verdict"]
        verdicts.append(v)
        per_seed = rows["fairer"].value_counts()
        parts.append(f"{pair['pair']}: fd2_uniform (unbiased) {fmt(rows['fd2_uniform_unbiased_baseline'].mean(), 3)} -> "
                     f"{fmt(rows['fd2_uniform_unbiased_balanced'].mean(), 3)} over {pair['n_b']} and {pair['n_a']} seeds, "
                     f"difference [{fmt(pair['low'], 3)}, {fmt(pair['high'], 3)}] ({v}; {pair['test']}); per seed, the paired "
                     f"bootstrap finds the balanced twin fairer in {int(per_seed.get('balanced', 0))} and the baseline in "
                     f"{int(per_seed.get('baseline', 0))} of {len(rows)}; MSE disparity {fmt(rows['mse_disparity_baseline'].mean(), 3)} -> "
                     f"{fmt(rows['mse_disparity_balanced'].mean(), 3)} (untested); FID {fmt(rows['fid_baseline'].mean(), 4)} -> "
                     f"{fmt(rows['fid_balanced'].mean(), 4)} (untested)")
    # One twin fairer and another less fair answers neither way: each twin's own verdict stands in the text.
    found = set(verdicts)
    verdict = (stats.UNAVAILABLE if stats.UNAVAILABLE in found else stats.BETTER if found == {stats.BETTER}
               else stats.WORSE if found == {stats.WORSE} else stats.UNDECIDED)
    return finding(claim, quoted, "; ".join(parts), verdict,
                   "per pair, the Welch 95% interval over training seeds of the difference of mean fd2_uniform_unbiased "
                   "(facegen.findings.stats.compare_seeds; unavailable below 2 seeds a side); 'better' when every mitigation "
                   "is fairer, 'worse' when every one is less fair, else each pair's own verdict", source)


def findings(res: Results) -> dict:
    return {"paper": PAPER_NAME, "items": [_reconstruction(res), _mitigation(res)]}
