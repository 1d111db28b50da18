"""HVAE paper: the FC-HVAE replica against the quoted MSE, KL and pixel approximate FID; the CPU minutes
the conv VAE needs to reach the quoted MSE; and both models' Inception FID."""

from __future__ import annotations

from facegen.findings import stats
from facegen.findings.record import finding, fmt, with_interval
from facegen.findings.results import Results
from facegen.reference import HVAE_PAPER as PAPER

PAPER_NAME = "HVAE paper"
QUOTED = f"quoted: {PAPER['source']}"


def _replica_items(res: Results, replica: dict, sources: list[str]) -> list[dict]:
    items = []
    for key, label in (("recon_mse", "reconstruction MSE"), ("kl", "KL")):
        decided = stats.against_quoted(replica.get(key), PAPER[key])
        items.append(finding(f"The FC-HVAE reaches a training {label} of {PAPER[key]} after {replica['epochs']} epochs.",
                             f"{QUOTED}: {label} {PAPER[key]}", f"replica {replica['run']}: {label} {fmt(replica.get(key), 4)} "
                             f"after {replica['epochs']} epochs on {replica['n_train_images']:,} images (single seed)",
                             decided["verdict"], decided["test"], sources))
    dataset, resolution = replica["run"].split("/")[:2]
    pixel = res.values(dataset, int(resolution), replica["run"].split("/")[2], "approx_fid_pixel")
    mean_face = res.floor(dataset, int(resolution), "approx_fid_pixel_mean_face")
    perfect = res.floor(dataset, int(resolution), "approx_fid_pixel_perfect")
    ours = float(pixel.iloc[0]) if len(pixel) else None
    decided = stats.against_quoted(ours, PAPER["approx_fid"])
    yardsticks = (f"; on the same reference a mean face scores {fmt(mean_face, 4)} and a perfect generator {fmt(perfect, 4)}, "
                  "so the formula is not a distance" if mean_face is not None and perfect is not None else "")
    items.append(finding("The FC-HVAE's samples score a pixel 'approximate FID' of 170.23.",
                         f"{QUOTED}: approximate FID {PAPER['approx_fid']}",
                         f"replica samples: {fmt(ours, 4)} (single seed){yardsticks}",
                         decided["verdict"], decided["test"], sources + [res.source(res.path("evaluation"))]))
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
    seeds = res.values(dataset, resolution, "vae", "fid").index.tolist()
    if not seeds:
        return None
    runs = [f"{dataset}/{resolution}/vae/{s}" for s in seeds]
    reached = [_minutes_to(res.history(r), PAPER["recon_mse"]) for r in runs]
    minutes = [m for m, _ in reached if m is not None]
    paper_minutes = PAPER["cpu_hours"] * 60
    budget = max(float(h["seconds"].sum()) / 60 for h in map(res.history, runs) if h is not None)
    if minutes and len(minutes) == len(runs) and max(minutes) < paper_minutes:
        verdict, test = stats.BETTER, f"every seed reached it in under the paper's {paper_minutes:.0f} CPU minutes"
    elif minutes and max(minutes) >= paper_minutes or budget >= paper_minutes:
        verdict, test = stats.WORSE, f"a seed needed {paper_minutes:.0f} minutes or more, the paper's CPU time"
    else:
        verdict, test = stats.UNDECIDED, (f"{len(runs) - len(minutes)} of {len(runs)} seeds did not reach it within their "
                                          f"{budget:.1f}-minute budget, under the paper's {paper_minutes:.0f}")
    ours = "; ".join(f"seed {s}: " + (f"{m:.1f} min (end of epoch {e})" if m is not None else "not reached")
                     for s, (m, e) in zip(seeds, reached))
    return finding(f"How many CPU minutes does the conv VAE need to reach the HVAE paper's reconstruction MSE "
                   f"{PAPER['recon_mse']}?", f"{QUOTED}: {PAPER['cpu_hours']} h of CPU for the FC-HVAE",
                   f"conv VAE at {resolution}x{resolution}, training-set MSE per epoch, 1 thread on this machine: {ours}",
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
    dataset, resolution, model = replica["run"].split("/")[:3]
    resolution = int(resolution)
    minutes = _vae_minutes(res, dataset, resolution)
    if minutes:
        items.append(minutes)
    replica_fid = res.values(dataset, resolution, model, "fid")
    vae_fid = stats.mean_interval(res.values(dataset, resolution, "vae", "fid"))
    floor = res.floor(dataset, resolution, "fid")
    if len(replica_fid) and vae_fid["n"] > 1:
        r = float(replica_fid.iloc[0])
        verdict = stats.BETTER if vae_fid["high"] < r else stats.WORSE if vae_fid["low"] > r else stats.UNDECIDED
        test = f"the single-seed replica's FID against the conv VAE's 95% bootstrap interval over {vae_fid['n']} seeds"
    else:
        r, verdict, test = None, stats.UNAVAILABLE, "needs the replica and 2 or more conv VAE seeds"
    items.append(finding("Does the conv VAE beat the FC-HVAE on Inception FID?", "not quoted: the paper reports no Inception FID",
                         f"Inception FID: replica {fmt(r, 4)} (single seed), conv VAE {with_interval(vae_fid, 4)}; "
                         f"real-versus-real floor {fmt(floor, 4)}", verdict, test, [res.source(res.path("evaluation"))]))
    return {"paper": PAPER_NAME, "items": items}
