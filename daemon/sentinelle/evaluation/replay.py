"""Replay a labelled recording through the daemon's own stages, as if it arrived live.

Rows become :class:`~sentinelle.records.Sample` records in time order and go
through the same objects the daemon wires in ``app.py``: :class:`Windows`
(resampling, sample-and-hold, gaps) → :class:`ForecastBatcher` (the configured
forecaster, on its worker thread) → :class:`DetectStage` (scores, rules, k-of-n
life cycle).  Nothing looks ahead: a slot is forecast from its own context and
scored against forecasts made before it, exactly as live.

The first ``train_rows`` rows are the *warm-up* (SKAB's notebooks fit their
models on the first 400 rows of each file): they run inside
:meth:`DetectStage.replaying_history`, the daemon's start-up backfill mode, so
the detectors learn from them but no alert raised there survives into the
scored part.  From then on the trace records, per slot, whether an alert of the
asset is open with its condition on (the outlier prediction; an alert held open by
its re-arm time is what the operator is told, not a detection) and whether one opened (a detection
event), with the forecasts and scores behind them for plots.

>>> import numpy as np
>>> ts = 1_000.0 + np.arange(60.0)
>>> x = np.where(np.arange(60) < 45, 1.0, 5.0)[:, None] + 0.01 * np.sin(np.arange(60))[:, None]
>>> rec = Recording("toy", "pump", ("pump.p",), ("bar",), ts, x, np.ones(60, bool), train_rows=30)
>>> trace = replay(rec, replay_settings("naive"))
>>> trace.anomalous.shape, trace.forecast.shape, trace.forecaster
((60,), (60, 1), 'naive')
>>> float(trace.forecast[50, 0]) == float(x[49, 0])   # the naive forecast of slot 50 is slot 49's value
True
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry

from ..detect.stage import DetectStage
from ..forecast import make_forecaster
from ..forecast.base import Forecaster
from ..forecast.batcher import Estimator, ForecastBatcher
from ..metrics import Metrics
from ..records import AlertEvent, BoolArray, FloatArray, ForecastBatch, Sample, WindowBatch
from ..settings import DetectSettings, ForecastSettings, Settings, TagSettings, WindowSettings
from ..windows import Windows
from .cache_files import read_pickle

_QUEUE = 256


@dataclass(frozen=True, slots=True)
class Recording:
    """One labelled multichannel recording of one asset, on a regular grid.

    ``values[i, j]`` is tag ``j`` at ``timestamps[i]`` (NaN: no sample in that slot);
    ``present[i]`` says whether row ``i`` was in the source file (scores count only those).
    """

    name: str
    asset: str
    tags: tuple[str, ...]
    units: tuple[str, ...]
    timestamps: FloatArray
    values: FloatArray
    present: BoolArray
    labels: BoolArray | None = None
    changepoints: BoolArray | None = None
    train_rows: int = 0
    """Rows of the file (present rows, from the start) that warm the detectors up and are not scored."""
    min_spread: tuple[float, ...] | None = None
    high_limits: tuple[float | None, ...] | None = None
    """Static high limit per tag (None: none), as a plant's configuration would give."""
    period_s: float = 1.0
    tag_config: tuple[TagSettings, ...] | None = None
    """The tags' full settings (limits, rules), in ``tags`` order, as a plant's configuration gives them;
    None: built from ``units``, ``min_spread`` and ``high_limits``."""

    @property
    def test_start(self) -> int:
        """Grid index of the first scored row."""
        rows = np.flatnonzero(self.present)
        return int(rows[self.train_rows]) if self.train_rows < len(rows) else len(self.timestamps)

    def tag_settings(self) -> list[TagSettings]:
        if self.tag_config is not None:
            if tuple(t.name for t in self.tag_config) != self.tags:
                raise ValueError(f"{self.name}: tag_config must list the recording's tags, in order")
            return list(self.tag_config)
        spreads = self.min_spread or (0.0,) * len(self.tags)
        highs = self.high_limits or (None,) * len(self.tags)
        return [
            TagSettings(
                name=t,
                asset=self.asset,
                node_id=f"ns=2;s={t}",
                unit=u,
                period_s=self.period_s,
                min_spread=m,
                high_limit=h,
            )
            for t, u, m, h in zip(self.tags, self.units, spreads, highs, strict=True)
        ]


@dataclass(slots=True)
class Trace:
    """What the daemon did at every slot of a recording (row ``i`` ↔ ``Recording.timestamps[i]``)."""

    anomalous: BoolArray
    """An alert of the asset was open after this slot, its condition on (not waiting out its re-arm time)."""
    opened: BoolArray
    """An alert opened at this slot (any kind, any tag of the asset)."""
    forecast: FloatArray
    lower: FloatArray
    upper: FloatArray
    z: FloatArray
    score: FloatArray
    events: list[AlertEvent] = field(default_factory=list)
    """Events of the scored part (the warm-up's alerts are discarded, as in a backfill)."""
    forecaster: str = ""


class CachedForecaster:
    """A forecaster that remembers each context row's forecast.

    Configurations that differ only in detection see the same windows, so they can share
    one forecaster's answers: an evaluation pays for the model's forecasts once, not once
    per ablation row.  Sound because rows are independent (the ``Forecaster`` contract): a
    row's forecast depends on its context (and asset) alone.  Memory: one (levels × horizon)
    array per distinct context, about 0.4 kB for 3 levels × 16 steps.
    """

    def __init__(self, inner: Forecaster) -> None:
        self.inner = inner
        self.name = inner.name
        self.levels = inner.levels
        self.horizon = inner.horizon
        self._cache: dict[bytes, FloatArray] = {}

    def forecast(self, contexts: FloatArray, assets: Sequence[str] | None = None) -> FloatArray:
        names = assets if assets is not None else [""] * len(contexts)
        keys = [
            hashlib.blake2b(row.tobytes() + a.encode(), digest_size=16).digest()
            for row, a in zip(contexts, names, strict=True)
        ]
        missing = [i for i, k in enumerate(keys) if k not in self._cache]
        if missing:
            q = self.inner.forecast(contexts[missing], None if assets is None else [assets[i] for i in missing])
            for i, row in zip(missing, q, strict=True):
                self._cache[keys[i]] = row
        return np.stack([self._cache[k] for k in keys]) if keys else np.zeros((0, len(self.levels), self.horizon))


class CachedEstimator:
    """The asset model's estimates of now (an :data:`~sentinelle.forecast.batcher.Estimator`), remembered per window.

    As :class:`CachedForecaster`: an estimate depends on its window alone (the asset's
    contexts and current values), so configurations that differ only in detection share it.

    >>> calls = []
    >>> est = CachedEstimator(lambda w: calls.append(1) or np.zeros((len(w), 3)))
    >>> w = WindowBatch(ts=1.0, period_s=1.0, tags=("a.x", "a.y"), assets=("a", "a"), values=np.ones(2),
    ...                 contexts=np.ones((2, 4)))
    >>> est(w).shape, est(w).shape, len(calls)
    ((2, 3), (2, 3), 1)
    """

    def __init__(self, inner: Estimator, cache: dict[bytes, FloatArray] | None = None) -> None:
        self.inner = inner
        self.cache: dict[bytes, FloatArray] = {} if cache is None else cache

    def __call__(self, window: WindowBatch) -> FloatArray:
        h = hashlib.blake2b(digest_size=16)
        h.update(np.ascontiguousarray(window.contexts).tobytes())
        h.update(np.ascontiguousarray(window.values).tobytes())
        if window.coarse_contexts is not None:  # a coarse reference reaches past the context
            h.update(f"coarse{window.coarse_stride_steps}".encode())
            h.update(np.ascontiguousarray(window.coarse_contexts).tobytes())
        h.update("\x00".join(window.assets).encode())
        key = h.digest()
        if key not in self.cache:
            self.cache[key] = self.inner(window)
        return self.cache[key]


MaskGroups = tuple[tuple[str, ...], ...]
"""``forecast.asset_mask_groups`` as a hashable key."""

ASSET_MODEL = "asset_model"
"""The name :class:`SharedForecasters` keeps the asset model's estimates under."""


def _estimator_name(
    mask_recent_steps: int, every_steps: int, context_stride_steps: int = 1, mask_groups: MaskGroups = ()
) -> str:
    """The cache name of the asset model's estimates with this mask, refresh, coarse stride and tags hidden
    together (the plain ones keep the old names; groups by a hash of their sorted tags).

    >>> _estimator_name(0, 1), _estimator_name(128, 8), _estimator_name(128, 8, 4)
    ('asset_model', 'asset_model-mask128-every8', 'asset_model-mask128-every8-stride4')
    >>> _estimator_name(128, 8, 4, (("a.x", "a.y"),)) == _estimator_name(128, 8, 4, (("a.y", "a.x"),))
    True
    """
    mask = f"-mask{mask_recent_steps}" if mask_recent_steps else ""
    every = f"-every{every_steps}" if every_steps > 1 else ""
    stride = f"-stride{context_stride_steps}" if context_stride_steps > 1 else ""
    groups = ""
    if mask_groups:
        text = "|".join(sorted(",".join(sorted(g)) for g in mask_groups))
        groups = "-groups" + hashlib.blake2b(text.encode(), digest_size=4).hexdigest()
    return f"{ASSET_MODEL}{mask}{every}{stride}{groups}"


def cache_stem(name: str) -> str:
    """The cache file's name for forecaster ``name``: the model's names its inference-time mixing too
    (``forecast.model_long_season_weight`` and ``_level_steps`` when not 14, ``model_smoothing_share``, the
    statistical expert and ``model_band_floor_holt`` when on), so answers cached under another
    mixing (``<run>-model.pkl`` from before it) are never read back as today's.

    >>> cache_stem("holt"), cache_stem("model")
    ('holt', 'model-ls0.75-share0.75x4')
    """
    if name != "model":
        return name
    s = ForecastSettings()
    shares = sorted(set(s.model_smoothing_share))
    if not shares:
        share = "none"
    elif len(shares) == 1:
        share = f"{shares[0]:g}x{len(s.model_smoothing_share)}"
    else:
        share = "-".join(f"{v:g}" for v in s.model_smoothing_share)
    level = "" if s.model_long_season_level_steps == 14 else f"-level{s.model_long_season_level_steps}"
    expert = "" if s.model_stat_expert_weight == 0 else f"-{s.model_stat_expert}{s.model_stat_expert_weight:g}"
    floor = "" if s.model_band_floor_holt == 0 else f"-holtfloor{s.model_band_floor_holt:g}"
    return f"model-ls{s.model_long_season_weight:g}{level}-share{share}{expert}{floor}"


class SharedForecasters:
    """One :class:`CachedForecaster` per forecaster name, made on first use: what an evaluation's
    configurations share (the model is loaded once, and only if it is asked for).

    With ``cache_dir``, the answers of each run (:meth:`begin` names it) are kept in
    ``<cache_dir>/<run>-<name>.pkl``: :meth:`save` writes them and a later evaluation of the
    same run (another detection row) reads them instead of computing them.  The files are
    this tool's own pickles: never point it at files from elsewhere.  ``model_threads``:
    torch's CPU threads for the models (None: torch's default).
    """

    def __init__(self, cache_dir: Path | None = None, model_threads: int | None = None) -> None:
        self.cache_dir = cache_dir
        self.model_threads = model_threads
        self._made: dict[str, CachedForecaster] = {}
        self._estimators: dict[tuple[int, int, int, MaskGroups], CachedEstimator] = {}
        """Per (``mask_recent_steps``, ``every_steps``, ``context_stride_steps``, mask groups): the asset model's cached
        estimates (loaded on first use)."""
        self._key = ""

    def _path(self, name: str) -> Path | None:
        if self.cache_dir is None:
            return None
        stem = cache_stem(name)
        return self.cache_dir / (f"{self._key}-{stem}.pkl" if self._key else f"{stem}.pkl")

    def _load(self, name: str) -> dict[bytes, FloatArray]:
        path = self._path(name)
        loaded: dict[bytes, FloatArray] | None = None if path is None else read_pickle(path)
        return {} if loaded is None else loaded

    def begin(self, key: str) -> None:
        """Answers from here on belong to ``key`` (a run): the caches are emptied, or read from ``cache_dir``."""
        self._key = key
        for name, made in self._made.items():
            made._cache = self._load(name)
        for spec, est in self._estimators.items():
            est.cache = self._load(_estimator_name(*spec))

    def __getitem__(self, name: str) -> CachedForecaster:
        if name not in self._made:
            settings = ForecastSettings(forecaster=name, model_threads=self.model_threads)  # type: ignore[arg-type]
            made = CachedForecaster(make_forecaster(settings))
            made._cache = self._load(name)
            self._made[name] = made
        return self._made[name]

    def __contains__(self, name: object) -> bool:
        return name in self._made or (name == ASSET_MODEL and bool(self._estimators))

    def estimator(
        self,
        path: Path,
        levels: tuple[float, ...] = ForecastSettings().quantile_levels,
        mask_recent_steps: int = 0,
        every_steps: int = 1,
        context_stride_steps: int = 1,
        mask_groups: MaskGroups = (),
    ) -> CachedEstimator:
        """The asset model at ``path`` (loaded once per mask, refresh and stride, on first use) as a cached estimator.

        Estimates with different masks, refresh periods or coarse strides are different answers to the
        same window: each has its own cache (and its own file in ``cache_dir``).  With a stride > 1 the
        replay's settings must carry it too (``forecast.asset_context_stride_steps``: the windows keep the
        coarse contexts).
        """
        key = (mask_recent_steps, every_steps, context_stride_steps, mask_groups)
        if key not in self._estimators:
            import torch

            from ..forecast.asset_engine import AssetForecaster  # torch only when asked for

            if self.model_threads is not None:
                torch.set_num_threads(self.model_threads)
            model = AssetForecaster(
                path,
                levels,
                mask_recent_steps=mask_recent_steps,
                every_steps=every_steps,
                context_stride_steps=context_stride_steps,
                mask_groups=mask_groups,
            )
            cache = self._load(_estimator_name(*key))
            self._estimators[key] = CachedEstimator(model.estimate_window, cache)
        return self._estimators[key]

    def save(self) -> None:
        """Write the current caches to ``cache_dir`` (nothing without one)."""
        if self.cache_dir is None:
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        caches = {name: f._cache for name, f in self._made.items() if name not in ("holt", "naive")}
        for spec, est in self._estimators.items():
            caches[_estimator_name(*spec)] = est.cache
        for name, cache in caches.items():
            path = self._path(name)
            assert path is not None
            tmp = path.with_suffix(".tmp")
            with tmp.open("wb") as f:
                pickle.dump(cache, f, protocol=pickle.HIGHEST_PROTOCOL)
            tmp.replace(path)


def replay_settings(
    forecaster: str = "holt",
    detect: DetectSettings | None = None,
    forecast: ForecastSettings | None = None,
    context_steps: int = 512,
    refresh_every_steps: int = 1,
    max_hold_s: float | None = None,
) -> Settings:
    """Settings for a replay: the daemon's defaults, the named forecaster, one forecast per slot
    (or per ``refresh_every_steps`` slots: ``forecast.refresh_every_steps``).

    ``allowed_lateness_s`` is 0 because a recording has no late samples: each slot
    closes when the next row arrives.  ``max_hold_s`` None is the daemon's default hold;
    the single-stream evaluations (:func:`.stream_eval.stream_settings`) set one period.
    """
    fc = forecast or ForecastSettings()
    fc = fc.model_copy(update={"forecaster": forecaster, "refresh_every_steps": refresh_every_steps})
    return Settings(
        tags=(),
        windows=WindowSettings(context_steps=context_steps, allowed_lateness_s=0.0, max_hold_s=max_hold_s),
        forecast=fc,
        detect=detect or DetectSettings(),
    )


def replay(
    rec: Recording, settings: Settings, forecaster: Forecaster | None = None, estimator: Estimator | None = None
) -> Trace:
    """Run ``rec`` through windows → forecaster → detect; see the module docstring.

    ``estimator``: the asset model's estimates of now (``forecast.asset_model_path`` in the daemon), or None.
    """
    return asyncio.run(replay_async(rec, settings, forecaster, estimator))


async def replay_async(
    rec: Recording, settings: Settings, forecaster: Forecaster | None = None, estimator: Estimator | None = None
) -> Trace:
    metrics = Metrics(CollectorRegistry())
    tags = rec.tag_settings()
    windows = Windows(tags, settings.windows, metrics, coarse_stride_steps=settings.forecast.asset_context_stride_steps)
    stage = DetectStage(
        tags,
        settings.detect,
        metrics,
        refresh_every_steps=settings.forecast.refresh_every_steps,
        estimate_groups=settings.forecast.asset_mask_groups if estimator is not None else (),
    )
    fc = forecaster or make_forecaster(settings.forecast, metrics)
    batcher = ForecastBatcher(fc, settings.forecast, metrics, estimator=estimator)
    to_forecast: asyncio.Queue[WindowBatch | None] = asyncio.Queue(maxsize=_QUEUE)
    to_detect: asyncio.Queue[ForecastBatch | None] = asyncio.Queue(maxsize=_QUEUE)
    n, k = rec.values.shape
    trace = Trace(
        anomalous=np.zeros(n, dtype=bool),
        opened=np.zeros(n, dtype=bool),
        forecast=np.full((n, k), np.nan),
        lower=np.full((n, k), np.nan),
        upper=np.full((n, k), np.nan),
        z=np.full((n, k), np.nan),
        score=np.full((n, k), np.nan),
        forecaster=fc.name,
    )
    row_of = {name: j for j, name in enumerate(rec.tags)}
    draining: list[asyncio.Future[None]] = []

    async def produce() -> None:
        try:
            for i in np.flatnonzero(rec.present).tolist():
                ts = float(rec.timestamps[i])
                samples = [
                    Sample(t, ts, float(v))
                    for t, v in zip(rec.tags, rec.values[i].tolist(), strict=True)
                    if math.isfinite(v)
                ]
                for wb in windows.ingest(samples):
                    await to_forecast.put(wb)
            # The end of the recording closes its last slot as the next row would have.
            if n:
                lateness = max((g.timing.allowed_lateness_s for g in windows.groups), default=0.0)
                end = float(rec.timestamps[-1]) + lateness + rec.period_s + 1e-6
                # (The sample itself lands in a slot that never closes.)
                for wb in windows.ingest([Sample(rec.tags[0], end, 0.0)]):
                    await to_forecast.put(wb)
        finally:
            await to_forecast.put(None)

    async def detect() -> None:
        try:
            await detect_all()
        except BaseException:
            # The producer and the batcher hand on their end markers even when cancelled: keep their
            # queues moving so the task group can finish and raise this error instead of waiting for ever.
            draining.append(asyncio.ensure_future(_drain(to_forecast)))
            draining.append(asyncio.ensure_future(_drain(to_detect)))
            raise

    async def detect_all() -> None:
        test_start = rec.test_start
        with contextlib.ExitStack() as warm_up:
            warm_up.enter_context(stage.replaying_history())
            warming = True
            while (fb := await to_detect.get()) is not None:
                i = round((fb.window.ts - rec.timestamps[0]) / rec.period_s) if n else -1
                if warming and i >= test_start:
                    warm_up.close()
                    warming = False
                events = stage.process(fb)
                if not 0 <= i < n:
                    continue
                if not warming:
                    if any(ev.event == "opened" for ev in events):
                        trace.opened[i] = True
                    trace.events.extend(events)
                    # An alert whose condition is on; one waiting out its re-arm time (detect/chatter.py) is not.
                    trace.anomalous[i] = stage.book.any_active()
                tick = stage.last_tick
                if tick is not None:
                    cols = [row_of[t] for t in tick.group.tags]
                    trace.forecast[i, cols] = tick.expected[:, tick.mid]
                    trace.lower[i, cols] = tick.expected[:, 0]
                    trace.upper[i, cols] = tick.expected[:, -1]
                    trace.z[i, cols] = tick.z
                    trace.score[i, cols] = tick.score

    async with asyncio.TaskGroup() as tg:
        tg.create_task(produce())
        tg.create_task(batcher.run(to_forecast, to_detect))
        tg.create_task(detect())
    return trace


async def _drain(queue: asyncio.Queue[WindowBatch | None] | asyncio.Queue[ForecastBatch | None]) -> None:
    while await queue.get() is not None:
        pass


def resolutions(train: FloatArray) -> tuple[float, ...]:
    """Each channel's sensor resolution, read from training rows: its smallest non-zero step (0 if constant).

    Evaluations set the daemon's ``min_spread`` to it: SKAB's pressure and flow channels are
    quantised (steps of 0.33 bar, 1 L/min), and a forecast spread below one step would make
    every quantisation step look like a surprise.

    >>> resolutions(np.array([[1.0, 5.0], [1.5, 5.0], [1.25, 5.0]]))
    (0.25, 0.0)
    """
    out = []
    for col in train.T:
        d = np.abs(np.diff(col[np.isfinite(col)]))
        d = d[d > 1e-9]
        out.append(float(d.min()) if d.size else 0.0)
    return tuple(out)
