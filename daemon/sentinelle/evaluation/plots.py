"""The three upper panels every replay plot draws (the chiller's runs, SKAB's files): signals, one tag's
forecast band, the largest per-tag score.  Each report adds its own fourth panel (alert spans, labels).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..records import FloatArray
from .replay import Recording, Trace


def trace_panels(axes: Any, t: FloatArray, rec: Recording, train: FloatArray, trace: Trace, j: int) -> None:
    """Every tag standardised by ``train``'s mean and spread; tag ``j`` against the forecast's median and
    10–90 % band; the largest per-tag score of each scored slot."""
    mu, sd = np.nanmean(train, axis=0), np.nanstd(train, axis=0) + 1e-9
    for i, tag in enumerate(rec.tags):
        axes[0].plot(t, (rec.values[:, i] - mu[i]) / sd[i], lw=0.6, label=tag.split(".", 1)[-1])
    axes[0].set_ylabel("standardised value")
    axes[0].legend(fontsize=6, ncol=4, loc="upper left")
    axes[1].plot(t, rec.values[:, j], lw=0.7, color="k", label=f"{rec.tags[j]} actual")
    axes[1].plot(t, trace.forecast[:, j], lw=0.7, color="tab:blue", label=f"forecast ({trace.forecaster}, median)")
    axes[1].fill_between(t, trace.lower[:, j], trace.upper[:, j], color="tab:blue", alpha=0.25, label="10–90 %")
    axes[1].legend(fontsize=7, loc="upper left")
    scored = np.isfinite(trace.score).any(axis=1)
    top = np.full(len(t), np.nan)
    top[scored] = np.nanmax(trace.score[scored], axis=1)
    axes[2].plot(t, top, lw=0.6, color="tab:purple", label="max per-tag score")
    axes[2].set_ylim(0, 1.02)
