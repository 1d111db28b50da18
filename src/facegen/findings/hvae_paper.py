"""HVAE paper: the FC-HVAE replica against the quoted MSE, KL and pixel approximate FID; the CPU minutes
the conv VAE needs to reach the quoted MSE; and both models' Inception FID."""

from __future__ import annotations

import math

from facegen.findings import stats
from facegen.findings.record import finding, fmt, with_interval
from facegen.findings.results import Results
from facegen.metrics import verdict_metric
from facegen.paths import Run
from facegen.reference import HVAE_PAPER as PAPER

PAPER_NAME = "HVAE paper"
QUOTED = f"quoted: {PAPER['source']}"


def _replica_value(res: Results, replica: dict, metric: str) -> float | None:
    """The replica run's own value of an evaluation metric."""
    run = Run.from_key(replica["run"])
    values = res.values(run.dataset, run.resolution, run.model, metric)
    value = float(values.loc[run.seed]) if run.seed in values.index else None
    return value if value is not None and math.isfinite(value) else None


def _replica_items(res: Results, replica: dict, sources: list[str]) -> list[dict]:
    items = []
    for key, label in (("recon_mse", "reconstruction MSE"), ("kl", "KL")):
        decided = stats.against_quoted(replica.get(key), PAPER[key])
        items.append(finding(f"The FC-HVAE ends its training (600 epochs, 5,000 images) at a {label} of {PAPER[key]}.",
                             f"{QUOTED}: final {label} {PAPER[key]}", f"replica {replica['run']}: {label} {fmt(replica.get(key), 4)} "
                             f"in its last epoch ({replica['epochs']} epochs on {replica['n_train_images']:,} images; single seed)",
                             decided["verdict"], decided["test"], sources))
    run = Run.from_key(replica["run"])
    dataset, resolution = run.dataset, run.resolution
    ours = _replica_value(res, replica, "approx_fid_pixel")
    mean_face = res.floor(dataset, resolution, "approx_fid_pixel_mean_face")
    perfect = res.floor(dataset, int(resolution), "approx_fid_pixel_perfect")
    decided = stats.against_quoted(ours, PAPER["approx_fid"])
    yardsticks = ""
    if mean_face is not None and perfect is not None:
        yardsticks = f"; on the same reference a mean face scores {fmt(mean_face, 4)} and a perfect generator {fmt(perfect, 4)}"
        if mean_face < perfect:
            yardsticks += ", so the formula is not a distance and its value says nothing of quality"
    items.append(finding("The FC-HVAE's samples score a pixel 'approximate FID' of 170.23.",
                         f"{QUOTED}: approximate FID {PAPER['approx_fid']}",
                         f"replica samples: {fmt(ours, 4)} (single seed){yardsticks}",
                         decided["verdict"], "the number alone, not a quality: " + decided["test"],
                         sources + [res.source(res.path("evaluation"))]))
    return items


def _minutes_to(history, target: float) -> tuple[float | None, int | None]:
    """Cumulative training minutes (and the epoch) at the end of the first epoch whose mean training
    reconstruction MSE is at or below ``target``."""
    if history is None or "recon" not in history:
        return None, None
    reached = history.index[history["recon"] <= target]
    if not len(reached):
        return None, None
    i = reached[0]
    return float(history["seconds"].iloc[: i + 1].sum() / 60), int(history["epoch"].iloc[i])


def _vae_minutes(res: Results, dataset: str, resolution: int) -> dict | None:
    vae = res.baseline(dataset, resolution, "vae")
    seeds = res.values(dataset, resolution, vae, "fid").index.tolist()
    runs = [f"{dataset}/{resolution}/{vae}/{s}" for s in seeds]
    histories = {r: res.history(r) for r in runs}
    runs = [r for r in runs if histories[r] is not None]
    if not runs:
        return None
    reached = {r: _minutes_to(histories[r], PAPER["recon_mse"]) for r in runs}
    paper_minutes = PAPER["cpu_hours"] * 60
    budgets = {r: float(histories[r]["seconds"].sum()) / 60 for r in runs}
    missed = [r for r in runs if reached[r][0] is None]
    minutes = [reached[r][0] for r in runs if reached[r][0] is not None]
    if not missed and max(minutes) < paper_minutes:
        verdict, test = stats.BETTER, f"every seed reached it in under the paper's {paper_minutes:.0f} CPU minutes"
    elif (minutes and max(minutes) >= paper_minutes) or any(budgets[r] >= paper_minutes for r in missed):
        verdict, test = stats.WORSE, f"a seed needed the paper's {paper_minutes:.0f} CPU minutes or more"
    else:
        verdict, test = stats.UNDECIDED, (f"{len(missed)} of {len(runs)} seeds did not reach it within their budgets "
                                          f"({', '.join(f'{budgets[r]:.1f}' for r in missed)} minutes), under the paper's {paper_minutes:.0f}")
    ours = "; ".join(f"seed {r.rsplit('/', 1)[1]}: " + (f"{m:.1f} min (end of epoch {e})" if m is not None else "not reached")
                     for r, (m, e) in reached.items())
    threads = res.config["job_threads"]
    return finding(f"How many CPU minutes does the conv VAE need to reach the HVAE paper's reconstruction MSE "
                   f"{PAPER['recon_mse']}?", f"{QUOTED}: {PAPER['cpu_hours']} h of CPU for the FC-HVAE",
                   f"conv VAE at {resolution}x{resolution}, mean training MSE per epoch, training time without the monitor's, "
                   f"{threads} thread{'s' if threads != 1 else ''} per job on this machine: {ours}",
                   verdict, test, [res.history_path(r) for r in runs])


def findings(res: Results) -> dict:
    replication = res.replication()
    replica = replication.get("fc_hvae")
    sources = [res.source(res.path("training_replication"))]
    items = []
    if not replica:
        items.append(finding("The FC-HVAE replica's reconstruction, KL and approximate FID against the paper's.", QUOTED,
                             "no FC-HVAE run at 32x32 on real faces in this config", stats.UNAVAILABLE,
                             "needs the hvae_replica experiment", sources))
        return {"paper": PAPER_NAME, "items": items}
    items += _replica_items(res, replica, sources)
    run = Run.from_key(replica["run"])
    dataset, resolution = run.dataset, run.resolution
    minutes = _vae_minutes(res, dataset, resolution)
    if minutes:
        items.append(minutes)
    q = verdict_metric()
    r = _replica_value(res, replica, q.name)
    vae = res.values(dataset, resolution, res.baseline(dataset, resolution, "vae"), q.name)
    vae_score = stats.mean_interval(vae)
    floor = res.floor(dataset, resolution, q.name)
    if r is not None and vae_score["n"] > 1:
        # One replica seed against the VAE's mean: the replica's own spread over seeds counts too, taken
        # as the VAE's (a prediction interval for one more seed), not as zero.
        low, high = stats.prediction_interval(vae)
        verdict = stats.BETTER if high < r else stats.WORSE if low > r else stats.UNDECIDED
        test = (f"the single-seed replica's {q.label} against the {stats.CONFIDENCE:.0%} prediction interval of one more conv VAE seed "
                f"from {vae_score['n']} seeds, [{fmt(low, 4)}, {fmt(high, 4)}] (the replica assumed to vary over seeds as the VAE does)")
    else:
        verdict, test = stats.UNAVAILABLE, "needs the replica evaluated and 2 or more conv VAE seeds"
    items.append(finding(f"Does the conv VAE beat the FC-HVAE on Inception FID ({q.label}: extrapolated to infinitely many samples)?",
                         "not quoted: the paper reports no Inception FID",
                         f"Inception {q.label}: replica {fmt(r, 4)} (single seed), conv VAE {with_interval(vae_score, 4)}; "
                         f"real-versus-real floor {fmt(floor, 4)}", verdict, test, [res.source(res.path("evaluation"))]))
    return {"paper": PAPER_NAME, "items": items}
