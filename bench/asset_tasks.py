"""Multivariate tasks of ``forecast_accuracy.py``: each tag of an asset given the asset's other tags.

An :class:`AssetTask` keeps whole asset runs ``(T, G)`` and the forecast origins
in them.  Flattened (run → tag → origin) it is exactly the univariate task of
the same data (``chiller``, ``skab``), so the univariate forecasters' numbers do
not change; the new score is the **estimate of now**: each tag's value at the
origin ``o`` given the context before ``o`` and, for the multivariate
estimators, the other tags' values *at* ``o`` (the target's own value at ``o``
hidden).  It is scored with MASE (season 1, the context's mean absolute step),
WQL and 80 % coverage like the forecasts.

* univariate forecasters: their estimate of now is their 1-step forecast (the
  same numbers as ``<task>-h1``, repeated in the ``-now`` row for comparison);
* ``virtual_sensor``: recursive least squares of each tag on the other tags'
  current values (:mod:`sentinelle.forecast.virtual_sensor`), run online over
  the whole run from its first row, scored at the origins;
* the asset model: its estimate-now head.

Held-out rules (:mod:`sentinelle.evaluation.heldout`): chiller seeds from
:func:`benchmark_seeds`; SKAB's anomaly-free file with origins only in its last
40 % (the context and the virtual sensor's online fit may read the earlier rows,
as they would live; no score lands on them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sentinelle.evaluation.datasets import load_skab
from sentinelle.evaluation.heldout import benchmark_seeds, skab_anomaly_free_cut
from sentinelle.evaluation.scores import ScoreAccumulator, mase_scale
from sentinelle.forecast.virtual_sensor import VirtualSensor, gaussian_quantiles
from sentinelle.records import FloatArray
from sentinelle.settings import SimulatorSettings
from sentinelle.sim.chiller import CHILLER_TAGS, ChillerModel

CONTEXT = 512


@dataclass
class AssetTask:
    """Runs of one asset kind, each ``(T, G)``, and the origins scored in each."""

    name: str
    tags: tuple[str, ...]
    horizon: int = 16
    runs: list[FloatArray] = field(default_factory=list)
    origins: list[list[int]] = field(default_factory=list)

    def flat(self) -> tuple[list[FloatArray], list[FloatArray]]:
        """Univariate contexts and targets in run → tag → origin order."""
        contexts, targets = [], []
        for run, origins in zip(self.runs, self.origins, strict=True):
            for j in range(run.shape[1]):
                for o in origins:
                    contexts.append(run[max(0, o - CONTEXT) : o, j])
                    targets.append(run[o : o + self.horizon, j])
        return contexts, targets

    def groups(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Contexts (N, G, L), the values at the origin (N, G) and targets (N, G, H), run → origin order."""
        ctx, now, tgt = [], [], []
        for run, origins in zip(self.runs, self.origins, strict=True):
            for o in origins:
                c = np.full((run.shape[1], CONTEXT), np.nan)
                part = run[max(0, o - CONTEXT) : o].T
                c[:, CONTEXT - part.shape[1] :] = part
                ctx.append(c)
                now.append(run[o])
                tgt.append(run[o : o + self.horizon].T)
        return np.stack(ctx), np.stack(now), np.stack(tgt)

    def to_flat_order(self, per_group: FloatArray) -> FloatArray:
        """(N_groups, G, …) in run → origin order → (N_groups·G, …) in run → tag → origin order."""
        out, start = [], 0
        for origins in self.origins:
            block = per_group[start : start + len(origins)]  # (n, G, …)
            out.append(np.swapaxes(block, 0, 1).reshape(-1, *block.shape[2:]))
            start += len(origins)
        return np.concatenate(out)


def chiller_asset_task(seeds: int | Sequence[int] = 3, hours: float = 4.0, name: str = "chiller") -> AssetTask:
    """The chiller simulator with unseen seeds, 1 s, origins every 480 s (as the univariate ``chiller`` task).

    ``seeds``: how many benchmark seeds (held out), or the seeds themselves (``forecast_validation.py``'s
    development seeds)."""
    task = AssetTask(name, CHILLER_TAGS)
    steps = int(hours * 3600)
    for seed in benchmark_seeds(seeds) if isinstance(seeds, int) else seeds:
        settings = SimulatorSettings(seed=seed, start_ts=1_767_225_600.0 + 3600.0 * seed)
        model = ChillerModel(settings)
        data = np.empty((steps, len(CHILLER_TAGS)))
        for k in range(steps):
            data[k] = model.step_array(settings.start_ts + k * settings.sample_period_s)  # type: ignore[operator]
        task.runs.append(data)
        task.origins.append(list(range(CONTEXT, steps - 16, 480)))
    return task


def skab_asset_task(data_dir: Path | None) -> AssetTask:
    """SKAB's anomaly-free file, its 8 channels as one asset, origins every 64 s in the held-out 40 %."""
    series = load_skab(data_dir, groups=("anomaly-free",))
    task = AssetTask("skab", tuple(s.name.rsplit("/", 1)[-1] for s in series))
    run = np.stack([s.values for s in series], axis=1)
    cut = skab_anomaly_free_cut(series[0])
    task.runs.append(run)
    task.origins.append(list(range(max(cut, CONTEXT), len(run) - 16, 64)))
    return task


NowEstimate = Callable[[AssetTask], FloatArray]
"""An estimator of now: the task → quantiles (N_flat, Q) in flat (run → tag → origin) order."""


def virtual_sensor(levels: Sequence[float]) -> NowEstimate:
    """The RLS virtual sensor's estimates at the origins; the last value where it is not warm yet."""

    def run(task: AssetTask) -> FloatArray:
        per_group = []
        for data, origins in zip(task.runs, task.origins, strict=True):
            est, sigma = VirtualSensor(data.shape[1], warmup=CONTEXT).run(data)
            for o in origins:
                e, s = est[o], sigma[o]
                last = _last_finite(data[:o])
                e = np.where(np.isfinite(e), e, last)
                s = np.where(np.isfinite(s), s, np.nan)
                per_group.append(gaussian_quantiles(e, s, levels))
        return task.to_flat_order(np.stack(per_group))

    return run


def _last_finite(block: FloatArray) -> FloatArray:
    out = np.full(block.shape[1], np.nan)
    for j in range(block.shape[1]):
        ok = np.flatnonzero(np.isfinite(block[:, j]))
        if ok.size:
            out[j] = block[ok[-1], j]
    return out


def score_now(task: AssetTask, q: FloatArray, levels: Sequence[float]) -> dict[str, float]:
    """Scores of estimates of now ``q`` (N_flat, Q) against the values at the origins."""
    contexts, targets = task.flat()
    acc = ScoreAccumulator(tuple(levels))
    for i, (c, y) in enumerate(zip(contexts, targets, strict=True)):
        acc.add(y[:1], q[i][:, None], mase_scale(c, 1))
    return acc.summary()
