"""When the discriminator has won: its mean D(fake) below D_WON_FAKE, so that the generator gets almost
no gradient (issue 14's failure flag). One definition, applied to one epoch by the trainer (history.csv's
d_collapse) and to the mean over a run's last D_WON_SHARE of epochs, at least one, by the training
summary (d_won), which the report and the findings read."""

from __future__ import annotations

import pandas as pd

D_WON_FAKE = 0.05
D_WON_SHARE = 0.2


def discriminator_won(d_fake: float | None) -> bool:
    return d_fake is not None and d_fake < D_WON_FAKE


def final_d_fake(history: pd.DataFrame) -> float | None:
    """Mean D(fake) over the last D_WON_SHARE of epochs; None for models without a discriminator."""
    if "d_fake" not in history or history["d_fake"].isna().all():
        return None
    k = max(1, int(round(len(history) * D_WON_SHARE)))
    return float(history["d_fake"].iloc[-k:].mean())
