"""The asset model's estimates for a replay, computed in large batches before it (evaluations only).

In a replay the batcher asks the asset model for one slot at a time (:meth:`~sentinelle.forecast.
asset_engine.AssetForecaster.estimate_window`): a pass of one 8-tag group costs about 2.5 times a
group's share of a pass of 32 on the project's 2 shared cores.  Which groups the model is asked
for depends on the recording alone (the windows, the mask, the refresh period ``every_steps``),
not on detection, so an evaluation can find them first and compute them together:

1. :meth:`PrefilledAssetForecaster.dry_run` — a replay in which the model is not run: every group
   it would be asked for is recorded, and answered with NaN (no estimate; the detection of this
   pass is thrown away);
2. :meth:`PrefilledAssetForecaster.fill` — the recorded groups, in passes of ``max_batch``;
3. the real replays — every group is then answered from the memo (a group not seen in step 1
   is computed on the spot, so a memo never changes an answer, only when it is computed).

Sound because a group's answer depends on its own inputs alone (the model's rows are independent,
the :class:`~sentinelle.forecast.base.Forecaster` contract that :class:`~.replay.CachedForecaster`
relies on too).  The memo can be kept on disk (:meth:`save`, :meth:`load`: this tool's own
pickles, never files from elsewhere), so that a tuning grid and a later report share the model's work.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..forecast.asset_engine import AssetForecast, AssetForecaster
from ..records import FloatArray
from .cache_files import read_pickle


def _key(context: FloatArray, current: FloatArray) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    h.update(repr(context.shape).encode())
    h.update(np.ascontiguousarray(context, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(current, dtype=np.float64).tobytes())
    return h.digest()


class PrefilledAssetForecaster(AssetForecaster):
    """An :class:`AssetForecaster` whose estimates of now come from a memo filled in batches (see the module).

    Only the estimate of now is memoised (``horizon`` 1 with the current values, what
    :meth:`estimate_window` asks); every other call is the model's.
    """

    def __init__(
        self,
        path: Path,
        levels: tuple[float, ...],
        *,
        mask_recent_steps: int = 0,
        every_steps: int = 1,
        max_batch: int = 32,
        adapter: Path | None = None,
        anchor_band_widths: float = 0.0,
        anchor_release_band_widths: float = 1.0,
        mask_groups: tuple[tuple[str, ...], ...] = (),
    ) -> None:
        super().__init__(
            path,
            levels,
            max_batch=max_batch,
            mask_recent_steps=mask_recent_steps,
            every_steps=every_steps,
            adapter=adapter,
            anchor_band_widths=anchor_band_widths,
            anchor_release_band_widths=anchor_release_band_widths,
            mask_groups=mask_groups,
        )
        self.memo: dict[bytes, FloatArray] = {}
        """Group key → its estimate (G, levels)."""
        self._todo: dict[bytes, tuple[FloatArray, FloatArray]] = {}
        self._dry = False
        self.computed_on_the_spot = 0
        """Groups computed during a real replay (not recorded by a dry run first): 0 when prefilling worked."""

    @contextmanager
    def dry_run(self) -> Iterator[None]:
        """Within: requests are recorded and answered with NaN (the model is not run)."""
        self._held.clear()
        self._dry = True
        try:
            yield
        finally:
            self._dry = False
            self._held.clear()

    def fill(self) -> int:
        """Compute every group recorded by :meth:`dry_run` and not in the memo yet; how many were computed."""
        todo, self._todo = self._todo, {}
        by_shape: dict[tuple[int, ...], list[bytes]] = {}
        for k, (ctx, _) in todo.items():
            by_shape.setdefault(ctx.shape, []).append(k)
        for keys in by_shape.values():
            ctx = np.stack([todo[k][0] for k in keys])
            now = np.stack([todo[k][1] for k in keys])
            est = super().forecast(ctx, 1, now).estimate
            for k, e in zip(keys, est, strict=True):
                self.memo[k] = e
        return len(todo)

    def forecast(
        self,
        contexts: FloatArray,
        horizon: int,
        current: FloatArray | None = None,
        tag_mask: npt.NDArray[np.bool_] | None = None,
    ) -> AssetForecast:
        if horizon != 1 or current is None or tag_mask is not None:
            return super().forecast(contexts, horizon, current, tag_mask)
        x = np.asarray(contexts, dtype=np.float64)
        now = np.asarray(current, dtype=np.float64)
        n, g = now.shape
        keys = [_key(x[i], now[i]) for i in range(n)]
        levels = len(self.levels)
        est = np.full((n, g, levels), np.nan)
        missing = [i for i, k in enumerate(keys) if k not in self.memo]
        if self._dry:
            for i in missing:
                self._todo[keys[i]] = (x[i], now[i])
        elif missing:
            self.computed_on_the_spot += len(missing)
            fresh = super().forecast(x[missing], 1, now[missing]).estimate
            for i, e in zip(missing, fresh, strict=True):
                self.memo[keys[i]] = e
        for i, k in enumerate(keys):
            if k in self.memo:
                est[i] = self.memo[k]
        return AssetForecast(np.full((n, g, levels, 1), np.nan), est)

    def save(self, path: Path) -> None:
        """Write the memo to ``path`` (atomically)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as f:
            pickle.dump(self.memo, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)

    def load(self, path: Path) -> int:
        """Add the memo saved at ``path`` (nothing if there is none); how many groups it held."""
        loaded: dict[bytes, FloatArray] | None = read_pickle(path)
        if loaded is None:
            return 0
        self.memo.update(loaded)
        return len(loaded)
