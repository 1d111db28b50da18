"""Progress bars that stay readable in log files (fewer refreshes when stderr is not a terminal)."""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress(iterable=None, **kwargs):
    kwargs.setdefault("mininterval", 0.1 if sys.stderr.isatty() else 10.0)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)
