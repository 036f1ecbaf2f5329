"""The forecast stage: group windows across tags and ticks into batches.

A model forecaster is far cheaper per window in large batches (one forward pass
for thousands of tags), but a tick must not wait long for company.  The batcher
takes what is queued, waits at most ``max_wait_ms`` for more while it has fewer
than ``max_batch`` rows, and runs the forecaster on one dedicated worker thread
so the event loop keeps receiving samples meanwhile.

A forecaster that fails does not stop detection; the batcher uses the baseline
it was given (``fallback``) in two ways:

- **per row**: rows whose answer is not finite (while their window has data) get
  the baseline's forecast for those rows only, counted in
  ``sentinelle_forecast_fallback_rows_total`` (one bad window must not cost the
  other tags the model);
- **per call**: a call that raises is counted (``sentinelle_forecast_errors_total``)
  and answered by the baseline, which then serves every call for
  ``forecast.fallback_retry_s``; the forecaster is tried again after that, the
  wait doubling after each failed retry up to ``forecast.fallback_retry_max_s``.
  ``sentinelle_forecaster_active`` names the forecaster in use and
  ``sentinelle_forecast_fallback_active`` is 1 meanwhile (the
  ``SentinelleForecasterFallback`` rule watches both).

A forecaster too slow for the tag count (the model on a CPU with thousands of
tags) shows as passes longer than the tick while more windows wait: each is
counted (``sentinelle_forecast_overruns_total``) and, at most every
``OVERRUN_LOG_INTERVAL_S``, logged with the ``refresh_every_steps`` that would
fit — the stage then coalesces ticks into bigger passes and detection runs
late, rather than anything being dropped unseen.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from ..metrics import Metrics
from ..queues import end_of_stream
from ..records import FloatArray, ForecastBatch, IntArray, WindowBatch
from ..settings import ForecastSettings
from .base import Forecaster

log = logging.getLogger(__name__)

OVERRUN_LOG_INTERVAL_S = 600.0
ROW_FALLBACK_LOG_INTERVAL_S = 600.0
ESTIMATOR_NAME = "asset_model"
"""The estimator's label in ``sentinelle_forecast_errors_total``."""
Estimator = Callable[[WindowBatch], FloatArray]
"""A window batch → each row's value at its slot estimated from the others (rows × levels), NaN where none."""
MIN_PROBE_ROWS = 256
"""Fewest windows the start-up capacity probe times in one pass (see ``probe_capacity``)."""


def _per_s(rate: float) -> str:
    """A rate for a log line: whole numbers from 10 on, three digits below (7 one-minute tags need 0.117)."""
    return f"{rate:.0f}" if rate >= 10 else f"{rate:.3g}"


def due_rows(w: WindowBatch, refresh_every_steps: int) -> IntArray | None:
    """Rows of ``w`` to forecast at its tick: all (None), or a rotating share when R > 1.

    Row ``i`` is refreshed at ticks where ``(i + tick) % R == 0``, so every tick
    costs about 1/R of a full batch and no row's forecast is older than R steps
    (the horizon covers it: the settings require R ≤ horizon_steps).  The live
    batcher and the start-up backfill both use it, so the backfill costs what
    live ticks cost.

    >>> import numpy as np
    >>> w = WindowBatch(ts=10.0, period_s=1.0, tags=tuple("abcdef"), assets=("x",) * 6,
    ...                 values=np.zeros(6), contexts=np.zeros((6, 4)))
    >>> due_rows(w, 1) is None, due_rows(w, 4).tolist(), due_rows(w, 3).tolist()
    (True, [2], [2, 5])
    """
    r = refresh_every_steps
    if r <= 1:
        return None
    tick = round(w.ts / w.period_s)
    rows = np.flatnonzero((np.arange(len(w)) + tick) % r == 0)
    return rows.astype(np.intp)


def forecast_in_chunks(
    forecaster: Forecaster,
    contexts: FloatArray,
    assets: Sequence[str] | None,
    max_batch: int,
    metrics: Metrics | None = None,
) -> FloatArray:
    """The forecaster over ``contexts``, ``max_batch`` rows a call, each answer's shape checked.

    Runs on a worker thread (the live batcher's, the backfill's).  ``assets`` (one per row)
    lets a model forecaster use each asset's adapter; ``metrics``, when given, get each call's
    wall time and size.  A wrong shape raises :class:`ModelError`.
    """
    parts = []
    for start in range(0, contexts.shape[0], max_batch):
        chunk = contexts[start : start + max_batch]
        t0 = time.perf_counter()
        q = forecaster.forecast(chunk, None if assets is None else assets[start : start + max_batch])
        if metrics is not None:
            metrics.forecast_batch_seconds.observe(time.perf_counter() - t0)
            metrics.forecast_batch_size.observe(len(chunk))
        expected = (len(chunk), len(forecaster.levels), forecaster.horizon)
        if q.shape != expected:
            raise ModelError(f"forecaster {forecaster.name!r} returned shape {q.shape}, expected {expected}")
        parts.append(q)
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)


@dataclass(frozen=True, slots=True)
class ForecastPass:
    """One forecaster call over several window batches: the rows due in each, stacked.

    The live batcher and the start-up backfill both build their passes with
    :meth:`of` and turn the answer back into one :class:`ForecastBatch` per window
    batch with :meth:`split`.
    """

    windows: Sequence[WindowBatch]
    rows: list[IntArray | None]
    """Per window batch, the rows forecast (None: all of them)."""
    contexts: FloatArray
    assets: list[str]
    """Each stacked row's asset: a forecaster with per-asset adapters picks weights by it."""

    @classmethod
    def of(cls, windows: Sequence[WindowBatch], refresh_every_steps: int) -> ForecastPass:
        rows = [due_rows(w, refresh_every_steps) for w in windows]
        parts = [w.contexts if r is None else w.contexts[r] for w, r in zip(windows, rows, strict=True)]
        contexts = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
        assets = [
            a for w, r in zip(windows, rows, strict=True) for a in (w.assets if r is None else [w.assets[i] for i in r])
        ]
        return cls(windows, rows, contexts, assets)

    def split(self, levels: tuple[float, ...], quantiles: FloatArray, forecaster: str) -> list[ForecastBatch]:
        """The stacked answer (rows × levels × horizon) as one batch per window batch."""
        out, start = [], 0
        for w, r in zip(self.windows, self.rows, strict=True):
            end = start + (len(w) if r is None else len(r))
            out.append(
                ForecastBatch(window=w, levels=levels, quantiles=quantiles[start:end], forecaster=forecaster, rows=r)
            )
            start = end
        return out


class ForecastBatcher:
    def __init__(
        self,
        forecaster: Forecaster,
        settings: ForecastSettings,
        metrics: Metrics,
        fallback: Forecaster | None = None,
        clock: Callable[[], float] = time.monotonic,
        estimator: Estimator | None = None,
    ) -> None:
        self.forecaster = forecaster
        self.estimator = estimator
        """Each window's rows estimated from the other tags of their asset (the asset model); None: off."""
        self.fallback = fallback
        self.settings = settings
        self.metrics = metrics
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sentinelle-forecast")
        self._overrun_logged_at = -math.inf
        self._row_fallback_logged_at = -math.inf
        self._estimate_logged_at = -math.inf
        self._retry_at: float | None = None
        """While the fallback serves whole calls: when to try the forecaster again (clock time)."""
        self._retry_wait_s = settings.fallback_retry_s
        metrics.forecaster_info.labels(forecaster.name).set(1)
        # Declared at zero so dashboards and rules see "no errors yet" rather than no series.
        metrics.forecast_errors.labels(forecaster.name)
        metrics.forecast_overruns.labels(forecaster.name)
        if fallback is not None:
            metrics.forecaster_info.labels(fallback.name).set(0)
            metrics.forecast_fallback_rows.labels(forecaster.name)
        metrics.forecast_fallback_active.set(0)

    @property
    def active(self) -> str:
        """Name of the forecaster that answers whole calls now (the fallback's while it stands in)."""
        if self._retry_at is not None and self.fallback is not None:
            return self.fallback.name
        return self.forecaster.name

    async def run(
        self,
        inbox: asyncio.Queue[WindowBatch | None],
        outbox: asyncio.Queue[ForecastBatch | None],
    ) -> None:
        """Forecast every window batch from ``inbox``; ``None`` ends the stage (and is passed on)."""
        loop = asyncio.get_running_loop()
        max_batch = self.settings.max_batch
        max_wait = self.settings.max_wait_ms / 1000.0
        closing = False
        try:
            while not closing:
                first = await inbox.get()
                if first is None:
                    break
                pending = [first]
                rows = len(first)
                deadline = loop.time() + max_wait
                while rows < max_batch:
                    try:
                        nxt = inbox.get_nowait()
                    except asyncio.QueueEmpty:
                        remaining = deadline - loop.time()
                        if remaining <= 0:
                            break
                        try:
                            async with asyncio.timeout(remaining):
                                nxt = await inbox.get()
                        except TimeoutError:
                            break
                    if nxt is None:
                        closing = True
                        break
                    pending.append(nxt)
                    rows += len(nxt)
                batch = ForecastPass.of(pending, self.settings.refresh_every_steps)
                started = time.perf_counter()
                quantiles, name = await loop.run_in_executor(self._executor, self.predict, batch.contexts, batch.assets)
                self._check_pace(time.perf_counter() - started, pending, len(batch.contexts), inbox.qsize(), name)
                for fb in batch.split(self._levels(), quantiles, name):
                    if self.estimator is not None:
                        fb = await loop.run_in_executor(self._executor, self._with_estimate, fb)
                    await outbox.put(fb)
        finally:
            await end_of_stream(outbox)
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def probe_capacity(
        self,
        windows_per_s: float,
        context_steps: int,
        tick_rows: int = 0,
        probe_rows: int = 1024,
        *,
        asset_sizes: Sequence[int] = (),
        estimates_per_s: float = 0.0,
    ) -> float:
        """Time the forecaster on synthetic windows and compare with the load; returns windows/s.

        ``windows_per_s``: what the configured tags ask for (Σ 1/period over tags, divided
        by ``refresh_every_steps``).  Logged at start so an undersized configuration (the
        model on a CPU with thousands of tags) is named before it falls behind, with the
        ``refresh_every_steps`` that would fit.  The probe is one pass of the size a tick
        will send, up to ``probe_rows`` (the model's own chunk, ``model_max_batch``, is
        1,024 by default, so larger passes cost proportionally more): a pass's cost per window
        falls with its size, on a GPU almost inversely (an H100 took 38 ms for 100 windows
        and 59 ms for 1,000), so a smaller probe under-rated a GPU sevenfold.  A first pass
        of the same size warms up (lazy initialisation, kernel selection) and is not timed.

        ``tick_rows`` is what one tick sends (the tags due per tick); the pass has at
        least ``MIN_PROBE_ROWS`` windows even for a few slow tags, because one window's
        time is all fixed cost (a Python call, a small tensor): 7 one-minute tags once
        timed Holt at 180 windows/s, which does 50,000 in a real pass.

        With the asset model on (an ``estimator``), its estimates run on the same worker thread
        after each pass, so they are timed too: ``asset_sizes`` are the tag counts of the assets
        it estimates (one call per tick covers them all, as the tick does) and ``estimates_per_s``
        what they ask for (Σ 1/period over their tags, divided by ``asset_estimate_every_steps``).
        The verdict is then on the thread's share of both (timing the forecaster alone overstated
        the capacity about twofold with both models on, at 1,000 tags on one thread).
        """
        wanted = max(MIN_PROBE_ROWS, tick_rows, math.ceil(windows_per_s))
        rows = max(1, min(wanted, probe_rows, self.settings.max_batch))
        walk = np.cumsum(np.random.default_rng(0).normal(size=(rows, context_steps)), axis=1)
        loop = asyncio.get_running_loop()
        name = self.forecaster.name
        try:
            await loop.run_in_executor(self._executor, self.forecaster.forecast, walk)
            started = time.perf_counter()
            await loop.run_in_executor(self._executor, self.forecaster.forecast, walk)
            rate = rows / max(time.perf_counter() - started, 1e-9)
        except Exception as e:  # a failing forecaster is the batcher's fallback's business, when it runs
            log.warning("forecaster %r: capacity probe failed (%s)", name, e)
            return math.nan
        if self.estimator is not None and estimates_per_s > 0 and asset_sizes:
            estimate_rate = await self._probe_estimator(asset_sizes, context_steps, probe_rows)
            if math.isfinite(estimate_rate):
                self._judge_both(windows_per_s, rate, estimates_per_s, estimate_rate, name)
                return rate
        r = self.settings.refresh_every_steps
        if windows_per_s > 0.8 * rate:
            fit = math.ceil(r * windows_per_s / (0.8 * rate))
            hint = (
                f"raise forecast.refresh_every_steps (about {fit} would fit)"
                if fit <= self.settings.horizon_steps
                else f"even refresh_every_steps = horizon_steps would not fit (about {fit} needed): use a GPU, "
                "fewer tags per process, or the Holt forecaster"
            )
            log.warning(
                "forecaster %r does about %.0f windows/s here and the tags need %s (refresh_every_steps %d): "
                "it will fall behind; %s",
                name,
                rate,
                _per_s(windows_per_s),
                r,
                hint,
            )
        else:
            log.info(
                "forecaster %r does about %.0f windows/s here (a pass of %d windows); the tags need %s "
                "(refresh_every_steps %d)",
                name,
                rate,
                rows,
                _per_s(windows_per_s),
                r,
            )
        return rate

    async def _probe_estimator(self, asset_sizes: Sequence[int], context_steps: int, probe_rows: int) -> float:
        """Estimates/s of the asset model on one tick's call over synthetic assets of these sizes (NaN: failed).

        As many whole assets as fit in ``probe_rows`` or ``MIN_PROBE_ROWS`` (at least one).  Two
        calls whose slots are far apart, so the second is a fresh estimate and not one held from the
        first (``every_steps``); the first warms up and is not timed.
        """
        assert self.estimator is not None
        sizes: list[int] = []
        for n in asset_sizes:
            if sizes and sum(sizes) + n > max(probe_rows, MIN_PROBE_ROWS):
                break
            sizes.append(n)
        rows = sum(sizes)
        walk = np.cumsum(np.random.default_rng(1).normal(size=(rows, context_steps)), axis=1)
        tags = tuple(f"probe/{k}/{j}" for k, n in enumerate(sizes) for j in range(n))
        assets = tuple(f"probe/{k}" for k, n in enumerate(sizes) for _ in range(n))

        stride = self.settings.asset_context_stride_steps
        coarse = walk if stride > 1 else None  # the estimator's cost does not depend on the slots' spacing

        def window(ts: float) -> WindowBatch:
            return WindowBatch(
                ts=ts,
                period_s=1.0,
                tags=tags,
                assets=assets,
                values=walk[:, -1],
                contexts=walk,
                coarse_contexts=coarse,
                coarse_stride_steps=stride,
            )

        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self.estimator, window(0.0))
            started = time.perf_counter()
            await loop.run_in_executor(self._executor, self.estimator, window(1e9))
        except Exception as e:  # the estimate is extra evidence; its own errors are counted when it runs
            log.warning("asset model: capacity probe failed (%s)", e)
            return math.nan
        return rows / max(time.perf_counter() - started, 1e-9)

    def _judge_both(
        self, windows_per_s: float, rate: float, estimates_per_s: float, estimate_rate: float, name: str
    ) -> None:
        """Log whether forecasts and estimates together fit the worker thread (warning above 80 % of it)."""
        share = windows_per_s / rate + estimates_per_s / estimate_rate
        behind = share > 0.8
        log.log(
            logging.WARNING if behind else logging.INFO,
            "forecaster %r does about %.0f windows/s and the asset model about %.0f estimates/s here; the tags "
            "need %s forecasts and %s estimates (%.0f %% of the forecast thread)%s",
            name,
            rate,
            estimate_rate,
            _per_s(windows_per_s),
            _per_s(estimates_per_s),
            100 * share,
            ": it will fall behind; raise forecast.refresh_every_steps or forecast.asset_estimate_every_steps, "
            "use a GPU, or fewer tags per process"
            if behind
            else "",
        )

    def _check_pace(self, elapsed_s: float, pending: Sequence[WindowBatch], rows: int, waiting: int, name: str) -> None:
        """Count (and now and then log) a pass slower than the data it covered while more windows wait.

        A pass over ``len(pending)`` window batches (one tick of one period group each) covers
        that many ticks of data; taking longer than that, with batches already waiting, the
        backlog grows (coalescing into bigger passes is not enough to catch up).
        """
        tick_s = min(w.period_s for w in pending)
        covered_s = len(pending) * tick_s
        if waiting == 0 or elapsed_s <= covered_s:
            return
        self.metrics.forecast_overruns.labels(name).inc()
        now = time.monotonic()
        if now - self._overrun_logged_at < OVERRUN_LOG_INTERVAL_S:
            return
        self._overrun_logged_at = now
        r = self.settings.refresh_every_steps
        fit = min(self.settings.horizon_steps, max(r + 1, math.ceil(r * elapsed_s / covered_s)))
        log.warning(
            "forecaster %r is falling behind: %d windows took %.2f s for %.2f s of ticks, %d batches waiting; "
            "detection runs late. Raise forecast.refresh_every_steps (now %d; about %d would fit), "
            "set forecast.model_threads = 1 if other work shares the cores, or use a GPU",
            name,
            rows,
            elapsed_s,
            covered_s,
            waiting,
            r,
            fit,
        )

    def _with_estimate(self, fb: ForecastBatch) -> ForecastBatch:
        """``fb`` with each row's estimate from the other tags now; unchanged (counted, logged) if that fails."""
        assert self.estimator is not None
        try:
            estimate = self.estimator(fb.window)
        except Exception as e:  # the estimate is extra evidence: its failure must not cost the forecasts
            self.metrics.forecast_errors.labels(ESTIMATOR_NAME).inc()
            now = time.monotonic()
            if now - self._estimate_logged_at >= ROW_FALLBACK_LOG_INTERVAL_S:
                self._estimate_logged_at = now
                log.error("asset-model estimate failed (%s); this batch goes on without estimates", e)
            return fb
        if estimate.shape != (len(fb.window), len(fb.levels)):
            self.metrics.forecast_errors.labels(ESTIMATOR_NAME).inc()
            return fb
        # Every row, not only the refreshed ones: the estimate of *now* is as fresh for all of them.
        return dataclasses.replace(fb, estimate=estimate)

    def _levels(self) -> tuple[float, ...]:
        return self.forecaster.levels

    def predict(self, contexts: FloatArray, assets: Sequence[str] | None = None) -> tuple[FloatArray, str]:
        """One pass, as the worker thread runs it: the forecaster (or its stand-in), then the per-row fallback.

        Returns the quantiles (rows × levels × horizon) and the name of the forecaster that answered the call.
        """
        primary, fallback = self.forecaster, self.fallback
        if fallback is None:
            try:
                return self._predict_with(primary, contexts, assets), primary.name
            except Exception as e:
                self.metrics.forecast_errors.labels(primary.name).inc()
                raise ModelError(f"forecaster {primary.name!r} failed: {e}") from e
        now = self._clock()
        if self._retry_at is not None and now < self._retry_at:
            return self._predict_with(fallback, contexts, assets), fallback.name
        try:
            quantiles = self._predict_with(primary, contexts, assets)
        except Exception as e:
            self.metrics.forecast_errors.labels(primary.name).inc()
            self._stand_in(primary, fallback, now, e)
            return self._predict_with(fallback, contexts, assets), fallback.name
        if self._retry_at is not None:
            self._recovered(primary, fallback)
        return self._fill_non_finite_rows(quantiles, contexts, assets, primary, fallback), primary.name

    def _stand_in(self, primary: Forecaster, fallback: Forecaster, now: float, error: Exception) -> None:
        """The fallback answers whole calls for the back-off; the wait doubles after each failed retry."""
        if self._retry_at is None:
            wait = self.settings.fallback_retry_s
        else:
            wait = min(2 * self._retry_wait_s, self.settings.fallback_retry_max_s)
        self._retry_wait_s = wait
        self._retry_at = now + wait
        log.error(
            "forecaster %r failed (%s); %r forecasts instead, the forecaster is tried again in %.0f s",
            primary.name,
            error,
            fallback.name,
            wait,
        )
        self.metrics.forecaster_info.labels(primary.name).set(0)
        self.metrics.forecaster_info.labels(fallback.name).set(1)
        self.metrics.forecast_fallback_active.set(1)

    def _recovered(self, primary: Forecaster, fallback: Forecaster) -> None:
        log.warning("forecaster %r works again; %r no longer stands in", primary.name, fallback.name)
        self._retry_at = None
        self._retry_wait_s = self.settings.fallback_retry_s
        self.metrics.forecaster_info.labels(fallback.name).set(0)
        self.metrics.forecaster_info.labels(primary.name).set(1)
        self.metrics.forecast_fallback_active.set(0)

    def _fill_non_finite_rows(
        self,
        quantiles: FloatArray,
        contexts: FloatArray,
        assets: Sequence[str] | None,
        primary: Forecaster,
        fallback: Forecaster,
    ) -> FloatArray:
        """Rows with data whose answer is not finite get the fallback's forecast (counted, logged now and then).

        A window without a single finite value has no forecast from anyone: its NaN row stays.
        """
        bad = ~np.isfinite(quantiles).all(axis=(1, 2)) & np.isfinite(contexts).any(axis=1)
        if not bad.any():
            return quantiles
        rows = np.flatnonzero(bad)
        sub_assets = None if assets is None else [assets[i] for i in rows.tolist()]
        out = quantiles.copy()
        # No metrics: the histograms time the configured forecaster's calls, not this repair.
        out[rows] = forecast_in_chunks(fallback, contexts[rows], sub_assets, self.settings.max_batch)
        self.metrics.forecast_fallback_rows.labels(primary.name).inc(len(rows))
        now = time.monotonic()
        if now - self._row_fallback_logged_at >= ROW_FALLBACK_LOG_INTERVAL_S:
            self._row_fallback_logged_at = now
            log.warning(
                "forecaster %r gave non-finite forecasts for %d of %d windows (e.g. asset %r); %r forecast them",
                primary.name,
                len(rows),
                len(contexts),
                None if sub_assets is None else sub_assets[0],
                fallback.name,
            )
        return out

    def _predict_with(
        self, forecaster: Forecaster, contexts: FloatArray, assets: Sequence[str] | None = None
    ) -> FloatArray:
        return forecast_in_chunks(forecaster, contexts, assets, self.settings.max_batch, self.metrics)
