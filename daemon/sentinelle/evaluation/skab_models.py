"""Issue 14's rows of the SKAB report: the models' residuals alone, beside Holt's and the headline.

* the univariate model's per-tag residuals alone, and Holt's at the same refresh cadence in the
  same run (the model forecasts each tag on one slot in :data:`MODEL_REFRESH_STEPS`: on the
  project's 2 shared cores one file at every slot took 306 s, about three hours for the 34);
* the asset model's residuals alone (``detect/detectors/asset_estimate.py``: each tag against its
  estimate from the other tags now; ``horizon.py``: against the forecast made 16 slots ago;
  Holt's one-step residuals), with the estimate reading the whole context, and blind to the tags'
  newest slots (``forecast.asset_mask_recent_steps``);
* the headline with the asset model's residuals added.

The asset model's estimates are made on one slot in :data:`ASSET_EVERY_STEPS`
(``forecast.asset_estimate_every_steps``, fixed for CPU before any run) and computed in batches
before the replays (:mod:`.prefill`).  Their settings (the mask of the blind row, the EWMA chart
of the estimate's residual) were chosen on the 23 tuning files by ``bench/skab/tune_asset_model.py``
(rule in its docstring, written before it ran) and frozen here before the held-out files were scored.

With ``--asset-adapter`` (issue 14, step 3) the same rows are run again with the asset model adapted to
SKAB's pump (a LoRA adapter trained on the first 60 % of ``anomaly-free.csv`` alone,
``bench/skab/adapt_asset_model.py``), at the same frozen settings: nothing is chosen anew.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from .prefill import PrefilledAssetForecaster
from .replay import Recording, SharedForecasters, replay, replay_settings

MODEL_REFRESH_STEPS = 16
"""``forecast.refresh_every_steps`` of the univariate model's row and of Holt's row beside it (the horizon: the most
allowed)."""
ASSET_EVERY_STEPS = 16
"""``forecast.asset_estimate_every_steps`` of every asset-model row (for CPU; the chiller's blind row used 8)."""
BLIND_MASK_STEPS = 128
"""The blind row's ``forecast.asset_mask_recent_steps`` (candidates 128 only on SKAB's short files: see the bench)."""

CHOSEN_ALONE_ALPHA = 0.1
"""``detect.asset_estimate_ewma_alpha`` of the estimate-now + horizon row, chosen on the tuning files
(``docs/results/skab/tuning_asset_model.json``: tuning F1 0.30, FAR 13.17 %, NAB 47.15; α 0: 0.20, 10.17 %, 33.23)."""
CHOSEN_BLIND_ALPHA = 0.0
"""The same for the blind row (tuning F1 0.45, FAR 26.19 %, NAB 29.57; α 0.1: 0.50, 35.76 %, 30.52)."""
CHOSEN_WITH_REST: dict[str, Any] = {"mask": 0, "alpha": 0.0}
"""The asset model's settings added to the headline's (mask, chart weight), chosen on the tuning files (tuning F1
0.79, FAR 16.51 %, NAB 34.61): it does not beat the headline there (0.82, 7.30 %, 40.12), which stays."""


class AssetModelUse(NamedTuple):
    """How a row uses the asset model: its estimate's mask and refresh (``forecast.asset_*``)."""

    mask_recent_steps: int
    every_steps: int = ASSET_EVERY_STEPS
    adapter: Path | None = None
    """A LoRA adapter of the asset model (``training/asset_finetune.py``) merged in; None: the shipped model."""
    anchor_band_widths: float = 0.0
    """``forecast.asset_anchor_band_widths`` (0: off).  The memo is shared with the unanchored estimates: it keys on
    the masked contexts, so an anchored estimate is another entry, computed on the spot the first time."""
    anchor_release_band_widths: float = 1.0
    """``forecast.asset_anchor_release_band_widths``."""


class AblationRun(NamedTuple):
    label: str
    forecaster: str
    detect: dict[str, Any]
    """``DetectSettings`` overrides."""
    refresh_every_steps: int = 1
    """``forecast.refresh_every_steps`` of the per-tag forecaster."""
    asset_model: AssetModelUse | None = None
    """The asset model's estimates of now (None: none)."""


def asset_detect(alpha: float) -> dict[str, Any]:
    """The asset model's residuals: estimate-now (on with an estimator) + horizon, the estimate's chart at ``alpha``."""
    return {"horizon_enabled": True, "asset_estimate_ewma_alpha": alpha}


ADAPTED = "asset model adapted to SKAB (LoRA)"
"""How the adapted rows name the model (their labels otherwise those of the shipped model's rows)."""


def adapted_runs(headline: dict[str, Any], adapter: Path) -> list[AblationRun]:
    """The asset model's rows of :func:`issue14_runs` with ``adapter`` merged in, same settings.

    >>> [r.label.split(":")[0] for r in adapted_runs({}, Path("a"))]
    ['asset model adapted to SKAB (LoRA) + holt', 'asset model adapted to SKAB (LoRA) + holt', 'holt']
    """
    out = []
    for run in issue14_runs(headline):
        if run.asset_model is not None:
            label = run.label.replace("asset model + holt", ADAPTED + " + holt").replace(
                "asset model (", ADAPTED + " ("
            )
            out.append(run._replace(label=label, asset_model=run.asset_model._replace(adapter=adapter)))
    return out


def issue14_runs(headline: dict[str, Any]) -> list[AblationRun]:
    """Issue 14's rows at the frozen choices (``headline``: the headline's ``DetectSettings`` overrides).

    >>> [r.label for r in issue14_runs({})][:2]
    ['model: per-tag only (forecast every 16 slots)', 'holt: per-tag only (forecast every 16 slots)']
    """
    r = MODEL_REFRESH_STEPS
    blind = f"estimate blind to the newest {BLIND_MASK_STEPS} slots"
    every = f"estimated every {ASSET_EVERY_STEPS}"
    rest = CHOSEN_WITH_REST
    rest_label = f"mask {rest['mask']}" + (f", chart α {rest['alpha']}" if rest["alpha"] else "")
    return [
        AblationRun(f"model: per-tag only (forecast every {r} slots)", "model", {}, r),
        AblationRun(f"holt: per-tag only (forecast every {r} slots)", "holt", {}, r),
        AblationRun(
            f"asset model + holt: residuals alone (estimate-now + horizon, {every}"
            + (f", chart α {CHOSEN_ALONE_ALPHA}" if CHOSEN_ALONE_ALPHA else "")
            + ")",
            "holt",
            asset_detect(CHOSEN_ALONE_ALPHA),
            asset_model=AssetModelUse(0),
        ),
        AblationRun(
            f"asset model + holt: residuals alone, {blind} ({every}"
            + (f", chart α {CHOSEN_BLIND_ALPHA}" if CHOSEN_BLIND_ALPHA else "")
            + ")",
            "holt",
            asset_detect(CHOSEN_BLIND_ALPHA),
            asset_model=AssetModelUse(BLIND_MASK_STEPS),
        ),
        AblationRun(
            f"holt: per-tag + asset (T²+Q, EWMA charts) + asset model ({rest_label}, {every})",
            "holt",
            {**headline, **asset_detect(rest["alpha"])},
            asset_model=AssetModelUse(rest["mask"]),
        ),
    ]


def memo_path(cache_dir: Path, use: AssetModelUse) -> Path:
    """Where the asset model's estimates with ``use`` are kept for SKAB (an adapter: named by its weights' hash).

    >>> memo_path(Path("c"), AssetModelUse(0)).name
    'skab-asset-mask0-every16.pkl'
    """
    name = f"skab-asset-mask{use.mask_recent_steps}-every{use.every_steps}"
    if use.adapter is not None:
        from ..forecast.adapters import ADAPTER_WEIGHTS_FILE, file_sha256

        name += "-adapter" + file_sha256(use.adapter / ADAPTER_WEIGHTS_FILE)[:12]
    return cache_dir / f"{name}.pkl"


def prefilled_estimator(
    recordings: Sequence[Recording],
    use: AssetModelUse,
    shared: SharedForecasters,
    cache_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> PrefilledAssetForecaster:
    """The asset model with its estimates for every recording computed (:mod:`.prefill`), read from and
    written to ``cache_dir`` when given."""
    from ..settings import ForecastSettings
    from .chiller_report import asset_checkpoint

    est = PrefilledAssetForecaster(
        asset_checkpoint(),
        ForecastSettings().quantile_levels,
        mask_recent_steps=use.mask_recent_steps,
        every_steps=use.every_steps,
        adapter=use.adapter,
        anchor_band_widths=use.anchor_band_widths,
        anchor_release_band_widths=use.anchor_release_band_widths,
    )
    path = None if cache_dir is None else memo_path(cache_dir, use)
    if path is not None:
        est.load(path)
    settings = replay_settings("holt")
    for rec in recordings:
        with est.dry_run():
            replay(rec, settings, shared["holt"], est.estimate_window)
        computed = est.fill()
        if progress is not None:
            progress(f"{rec.name}: {computed} estimates computed")
        if path is not None and computed:
            est.save(path)
    return est
