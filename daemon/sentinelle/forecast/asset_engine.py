"""The asset forecaster: an asset's windows in, per tag a forecast and an estimate of now out.

:class:`AssetForecaster` runs :class:`~.asset_model.SentinelleAssetModel` the
way :class:`~.engine.ModelForecaster` runs the univariate model — newest
``context_length`` steps, each tag tokenised alone, quantile levels interpolated,
answers unscaled to the tags' units — with two additions: the tags of one asset
go in together ``(n, G, L)``, and each tag's value *now* ``(n, G)`` (the first
forecast step) may be given.  The model hides a tag's own current value from
that tag, so ``estimate`` is each tag as the rest of the asset says it should be:
the virtual-sensor reading that a residual (actual − estimate) scores.

**Blind to the recent past** (``mask_recent_steps`` M > 0): the estimate then reads every
tag's context only up to M slots before now (the newest M slots masked, as gaps, for all tags
of the asset in one pass) and the other tags' values now.  Why: with the full context a
tag's estimate reads that tag's own newest slots (the regression branch's lag column, the
first forecast step), so it follows a slow fault — a transmitter drifting 0.6 °C in 15
minutes, fouling — and leaves no residual (docs/results/chiller-detection/
asset-model-slow-faults.md).  Masked, the estimate is the other tags now read through the
relation the asset showed M slots ago: a drift accumulates over M slots instead of being
followed (the virtual sensor of SmartSignal-style condition monitoring, whose reference is
older than the fault).  Masking only the target's own context (one pass per tag) was
measured too: better on pump degradation, G times the cost.

**A long, coarse reference** (``context_stride_steps`` S > 1, with M > 0): the masked estimate reads
each tag's *coarse* context instead (the windows' means of S slots, ``WindowBatch.coarse_contexts``,
spanning S × the context), its newest M coarse slots masked, and the others' values now.  Why: the
estimate must still read a quarter of its context (:data:`MIN_SEEN_FRACTION`), so on 1 s data it is
blind to 384 s at most and to 128 s as used; a 900 s drift or a 5-minute pump ramp is then followed
with that lag and its residual is a plateau the size of healthy excursions (docs/results/chiller-
detection/asset-cusum.md).  Coarse, the reference can be older than the fault (S 8, M 128: 17
minutes) at the same cost; the model is scale-free per window (each tag tokenised alone) and the
estimate of now is a static relation, so the slots' spacing is not part of it.  A masked estimate of
a tag whose context still holds fewer than :data:`MIN_SEEN_SLOTS` values is not made (the tag is
left out of its asset's pass): a few values give no scale (a cold start, a long coarse mask).

**Anchored before an excursion** (``anchor_band_widths`` k > 0): after an estimate that misses any tag
of an asset by more than k band half-widths, the asset's estimates mask every slot since the excursion
began (:mod:`.asset_anchor`), until the values are back within ``anchor_release_band_widths`` of the
anchored band or the mask would pass the longest reach above.  Only with ``context_stride_steps`` 1.

**Tags hidden together** (``mask_groups``, with M > 0): each group is a set of an asset's tags whose
current values are hidden together when any of them is estimated (their recent past is already masked, as
every tag's, by M): one extra pass per group, for the assets that have tags of it, whose answers replace
the group's rows only.  Why: where tags are tied to each other by a fixed map — a chiller's three pump speed
commands, set together from one controller demand — each is implied by the others now, so an estimate that
reads them follows a fault that moves them all (a weakening pump: the demand rises, flow and temperatures
stay) and leaves no residual (docs/results/chiller-detection/sign-held/report.md).  Estimated from the
other tags alone, the group's tags show what the plant's state implies for them.  Off (no groups): the
estimates are exactly those without this setting.

**Every R slots** (``every_steps`` R > 1): an asset's estimate is made on one slot in R and
stands for the next R − 1.  The model cost about 23 ms of CPU per 7-tag asset and slot when
the asset was alone in a pass, 10 ms when 16 assets shared one (one thread, quiet machine,
2026-12-06, context 512); since 2026-12-07 (the last layer for the summary token alone, one
forecast step for the estimate, :data:`CPU_ROWS_PER_PASS`) a tag costs 0.66× that at 1,000 tags on
one thread and 0.82× at 100 (passes alternating with the code before on a loaded machine), 0.87×
the univariate model's time per tag at 1,000 (docs/benchmarks/forecast-speed.md).  A slow fault's
residual needs no fresher reference than a few slots.

**Adapted to one asset** (``adapter``: a folder written by
:func:`~sentinelle.training.asset_finetune.finetune_asset`): the LoRA adapter is checked against
the checkpoint (:func:`~.adapters.read_adapter`: the base's hash, the layers' shapes) and merged
into its weights, so an adapted model costs what the base does; ``adapter_tags`` (the asset's
configured tags) refuses one trained on other tags.  The daemon routes each asset to its own
adapted model (:mod:`.asset_estimators`).

Loading errors are :class:`~sentinelle.errors.ModelError` naming the file, as
for the univariate model (:func:`~.engine.load_model`).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt
import torch

from ..errors import ModelError
from ..records import FloatArray, WindowBatch
from .asset_anchor import ExcursionAnchors
from .asset_model import SentinelleAssetModel
from .engine import CONFIG_FILE, _level_weights, _pick_device, _pick_dtype, load_model
from .model import SentinelleTSModel
from .tokenizer import TSTokenizer

CPU_ROWS_PER_PASS = 128
"""Most rows (groups × tags) per forward pass on the CPU unless ``cpu_rows_per_pass`` says otherwise.

Why: a pass's activations grow with its rows (1,024 rows: 67 MB for one MLP's hidden layer alone),
and past the caches every element-wise step and every copy of the group attention waits on memory.
Passes alternating in one process over 1,000 tags, one thread, this shared 2-core machine at load
5–7 (2026-12-07, ``bench/results/forecast_speed_asset_1thr_2026-12-07.json``): 128-row passes 0.87×
the univariate model's time per tag, one 1,000-row pass 1.31× (the code before) and 1.41× (an
earlier run).  On two threads too, on the quiet machine (load 0.3–1.2, 2026-12-07 01:03 UTC,
``bench/results/forecast_speed_quiet_2026-12-07.json``): 1,000 tags 1,713 tag-windows/s in 128-row
passes against 1,096 in one (the univariate model 1,286; alternating, 0.69× its time per tag).
Where other jobs crowd the cores, two torch threads wait on each other at every op and 8× the
passes is 8× the waits (load 3.6–3.9: 2.3× the univariate model in 128-row passes, 1.5× in one):
there the remedy is ``forecast.model_threads = 1`` (the README's advice for shared cores), and
``forecast.asset_cpu_rows_per_pass = 0`` restores one pass."""

MIN_SEEN_FRACTION = 0.25
"""Share of its context a masked estimate still reads (each tag's scale and its relation to the others)."""


MIN_SEEN_SLOTS = 32
"""Fewest values a tag's masked context must still hold for the tag to take part in a masked estimate."""


_Held = tuple[int, FloatArray, FloatArray]
"""An asset's last estimate: its slot, the estimates (rows × levels) and the rows' values then."""


@dataclass(frozen=True, slots=True)
class AssetForecast:
    """Answers for n groups of G tags, in the tags' units; NaN for absent tags and failed rows."""

    quantiles: FloatArray
    """(n, G, len(levels), horizon): the forecast; step 1 is the instant of ``current``."""
    estimate: FloatArray
    """(n, G, len(levels)): each tag's value at that instant, estimated from its past and the others now."""


class AssetForecaster:
    """Forecasts and estimates of now from an asset-model checkpoint in a local directory."""

    name = "asset_model"

    def __init__(
        self,
        path: Path,
        levels: tuple[float, ...],
        *,
        device: str = "cpu",
        dtype: str = "auto",
        max_batch: int = 128,
        mask_recent_steps: int = 0,
        every_steps: int = 1,
        context_stride_steps: int = 1,
        adapter: Path | None = None,
        adapter_tags: Collection[str] | None = None,
        threads: int | None = None,
        cpu_rows_per_pass: int | None = None,
        anchor_band_widths: float = 0.0,
        anchor_release_band_widths: float = 1.0,
        mask_groups: Collection[Collection[str]] = (),
    ) -> None:
        self.path = Path(path)
        self.adapter = adapter
        self.levels = tuple(levels)
        if max_batch < 1:
            raise ModelError(f"max_batch must be ≥ 1, got {max_batch}")
        self.max_batch = max_batch
        if threads is not None:  # forecast.model_threads, the whole process's: with Holt no one else sets it
            if threads < 1:
                raise ModelError(f"threads must be ≥ 1, got {threads}")
            torch.set_num_threads(threads)
        if cpu_rows_per_pass is not None and cpu_rows_per_pass < 0:
            raise ModelError(f"cpu_rows_per_pass must be ≥ 0 (0: max_batch groups a pass), got {cpu_rows_per_pass}")
        self.cpu_rows_per_pass = cpu_rows_per_pass
        """Most rows a forward pass on the CPU (0: ``max_batch`` groups; None: :data:`CPU_ROWS_PER_PASS`
        on one torch thread, ``max_batch`` groups on more)."""
        self._device = _pick_device(device)
        loaded = load_model(self.path, self._device, _pick_dtype(dtype, self._device), SentinelleAssetModel)
        merged = loaded if adapter is None else _merged(self.path, loaded, adapter, adapter_tags)
        self.model = cast(SentinelleAssetModel, merged)
        self.config = self.model.config
        if not self.config.group_attention:
            raise ModelError(f"{self.path / CONFIG_FILE}: not an asset model (group_attention is false)")
        self.tokenizer = TSTokenizer(self.config.vocab_size, self.config.token_limit)
        self._weights = _level_weights(self.levels, tuple(self.config.quantile_levels), self.path / CONFIG_FILE)
        longest = self.config.context_length - math.ceil(MIN_SEEN_FRACTION * self.config.context_length)
        if not 0 <= mask_recent_steps <= longest:
            raise ModelError(
                f"mask_recent_steps must be in 0..{longest} (the estimate must still read a quarter of the "
                f"context of {self.config.context_length} steps), got {mask_recent_steps}"
            )
        self.mask_recent_steps = mask_recent_steps
        if context_stride_steps < 1 or (context_stride_steps > 1 and not mask_recent_steps):
            raise ModelError(
                f"context_stride_steps must be ≥ 1, and 1 without mask_recent_steps (a coarse slot holds the "
                f"current value), got {context_stride_steps} with mask_recent_steps {mask_recent_steps}"
            )
        self.context_stride_steps = context_stride_steps
        if every_steps < 1:
            raise ModelError(f"every_steps must be ≥ 1, got {every_steps}")
        self.every_steps = every_steps
        self.mask_groups = _checked_groups(mask_groups, mask_recent_steps)
        """Sets of tags whose current values are hidden together when any of them is estimated (module)."""
        self._held: dict[tuple[str, ...], _Held] = {}
        """(asset, its tags...) → its last estimate, when ``every_steps`` > 1."""
        if anchor_band_widths and context_stride_steps > 1:
            raise ModelError("anchor_band_widths needs context_stride_steps 1 (the anchor counts slots, not means)")
        self._anchors = (
            ExcursionAnchors(
                anchor_band_widths, longest, every_steps, self.levels.index(0.5), anchor_release_band_widths
            )
            if anchor_band_widths
            else None
        )
        """Per asset, the excursion its estimates are anchored before (None: off)."""

    def forecast(
        self,
        contexts: FloatArray,
        horizon: int,
        current: FloatArray | None = None,
        tag_mask: npt.NDArray[np.bool_] | None = None,
    ) -> AssetForecast:
        """Groups ``contexts`` (n, G, L), oldest first, NaN for gaps; ``current`` (n, G) NaN where unknown.

        ``tag_mask`` (n, G) marks the tags present (default: those with any observed value).
        """
        x = np.asarray(contexts, dtype=np.float64)
        if x.ndim != 3:
            raise ModelError(f"expected groups of shape (n, tags, steps), got shape {x.shape}")
        if not 1 <= horizon <= self.config.horizon:
            raise ModelError(f"the model forecasts {self.config.horizon} steps; {horizon} requested")
        n, g, _ = x.shape
        now = np.full((n, g), np.nan) if current is None else np.asarray(current, dtype=np.float64)
        if now.shape != (n, g):
            raise ModelError(f"current must have shape {(n, g)}, got {now.shape}")
        x = self._fit_length(x)
        present: npt.NDArray[np.bool_] = np.asarray(
            np.isfinite(x).any(axis=2) if tag_mask is None else tag_mask, dtype=bool
        )
        q = np.full((n, g, len(self.levels), horizon), np.nan)
        est = np.full((n, g, len(self.levels)), np.nan)
        per_pass = self.max_batch
        rows = CPU_ROWS_PER_PASS if self.cpu_rows_per_pass is None else self.cpu_rows_per_pass
        if self._device.type == "cpu" and rows:  # see CPU_ROWS_PER_PASS
            per_pass = min(per_pass, max(1, rows // g))
        with np.errstate(over="ignore", invalid="ignore"):
            for start in range(0, n, per_pass):
                part = slice(start, min(n, start + per_pass))
                q[part], est[part] = self._chunk(x[part], now[part], present[part], horizon)
        q[~present], est[~present] = np.nan, np.nan
        return AssetForecast(q, est)

    def estimate_window(self, window: WindowBatch) -> FloatArray:
        """Each row's value at ``window.ts`` estimated from the other tags of its asset then: (rows, levels).

        The rows of one asset form a group: contexts without their newest slot are
        the past, ``values`` the current values (a row's own is hidden from it by the
        model).  With ``mask_recent_steps`` M the newest M slots of that past are
        masked (every tag's), and with ``context_stride_steps`` S > 1 the past is the window's coarse
        context (means of S slots): see the module docstring.  A row whose asset has no
        other tag with a value now gets NaN: an estimate from nobody is not one.  With
        ``every_steps`` R > 1 an asset's estimates are made on one slot in R and stand for the
        next R − 1 (held per asset and tag list; a gap of R slots or more refreshes).  What fills
        :attr:`~sentinelle.records.ForecastBatch.estimate` for the ``asset_estimate`` detector.
        """
        n = len(window)
        out = np.full((n, len(self.levels)), np.nan)
        groups: dict[str, list[int]] = {}
        for i, asset in enumerate(window.assets):
            groups.setdefault(asset, []).append(i)
        slot = round(window.ts / window.period_s)
        rows_of = []
        for asset, rows in groups.items():
            key = (asset, *(window.tags[i] for i in rows))
            held = self._held.get(key)
            if (
                held is not None
                and self._continues(window, rows, slot, held)
                and not self._onset(key, rows, window, held)
            ):
                out[rows] = held[1]  # refreshed less than every_steps slots ago in this same history: it stands
            elif len(rows) >= 2:
                rows_of.append(rows)
        if not rows_of:
            return out
        keys = [(window.assets[rows[0]], *(window.tags[i] for i in rows)) for rows in rows_of]
        anchor = [0 if self._anchors is None else self._anchors.mask_steps(k, slot) for k in keys]
        past = self._past(window)
        masked = np.full(n, bool(self.mask_recent_steps))  # rows whose past is masked: all, or the anchored
        if any(anchor):
            past = past.copy()
            for rows, m in zip(rows_of, anchor, strict=True):
                if m:
                    masked[rows] = True
                    past[rows, -max(m, self.mask_recent_steps) :] = np.nan  # the reference: the asset before it
        values = window.values
        if masked.any():
            seen = np.isfinite(past[:, -self.config.context_length :]).sum(axis=1)  # what the model reads
            few = masked & (seen < MIN_SEEN_SLOTS)  # no scale: left out (module docstring)
            if few.any():
                past[few] = np.nan
                values = np.where(few, np.nan, values)
        self._passes(rows_of, past, values, out)
        for group in self.mask_groups:  # an extra pass per group; only the group's rows are taken from it
            hidden = np.fromiter((t in group for t in window.tags), dtype=bool, count=n)
            grouped = [rows for rows in rows_of if hidden[rows].any()]
            if grouped:
                alone = np.full_like(out, np.nan)
                self._passes(grouped, past, np.where(hidden, np.nan, values), alone)
                for rows in grouped:
                    mine = [i for i in rows if hidden[i]]
                    out[mine] = alone[mine]
        if self.every_steps > 1:
            for key, rows in zip(keys, rows_of, strict=True):
                self._held[key] = (slot, out[rows].copy(), window.values[rows].copy())
        if self._anchors is not None:
            for key, rows, m in zip(keys, rows_of, anchor, strict=True):
                self._anchors.update(key, slot, window.values[rows], out[rows], anchored=m > 0)
        return out

    def _passes(self, rows_of: list[list[int]], past: FloatArray, values: FloatArray, out: FloatArray) -> None:
        """Estimate each asset's ``rows`` (a list per asset) from ``past`` and ``values`` into ``out``.

        Assets padded with absent tags to a power of two, each width its own passes: padding to the
        widest asset of the window made a plant of 5-tag assets and one of 40 pay 8x (absent tags
        change no other tag's answer, so the width changes nothing else).  A row with no other tag of
        its asset known now gets NaN."""
        widths: dict[int, list[list[int]]] = {}
        for rows in rows_of:
            widths.setdefault(1 << (len(rows) - 1).bit_length(), []).append(rows)
        for g, members in widths.items():
            ctx = np.full((len(members), g, past.shape[1]), np.nan)
            now = np.full((len(members), g), np.nan)
            for k, rows in enumerate(members):
                ctx[k, : len(rows)] = past[rows]
                now[k, : len(rows)] = values[rows]
            estimate = self.forecast(ctx, 1, now).estimate
            for k, rows in enumerate(members):
                others_now = np.isfinite(now[k, : len(rows)]).sum() - np.isfinite(now[k, : len(rows)])
                est = estimate[k, : len(rows)]
                out[rows] = np.where((others_now >= 1)[:, None], est, np.nan)

    def _onset(self, key: tuple[str, ...], rows: list[int], window: WindowBatch, held: _Held) -> bool:
        """Anchoring on and the asset not anchored: whether its values now miss the held estimate beyond the
        anchor's threshold (then it is refreshed at once, and anchored if the refresh misses too)."""
        a = self._anchors
        return a is not None and not a.anchored(key) and a.misses(window.values[rows], held[1])

    def _past(self, window: WindowBatch) -> FloatArray:
        """What the estimate reads of each row's past: the context without its newest slot, or the coarse
        context (``context_stride_steps`` > 1), with the newest ``mask_recent_steps`` slots masked."""
        if self.context_stride_steps == 1:
            past = window.contexts[:, :-1]
        elif window.coarse_contexts is None or window.coarse_stride_steps != self.context_stride_steps:
            raise ModelError(
                f"the estimate reads means of {self.context_stride_steps} slots, the windows keep "
                + ("none" if window.coarse_contexts is None else f"means of {window.coarse_stride_steps}")
                + " (forecast.asset_context_stride_steps must reach the windows)"
            )
        else:
            past = window.coarse_contexts
        if not self.mask_recent_steps:
            return past
        past = past.copy()
        past[:, -self.mask_recent_steps :] = np.nan
        return past

    def _continues(self, window: WindowBatch, rows: list[int], slot: int, held: _Held) -> bool:
        """Whether ``held`` was made fewer than ``every_steps`` slots ago in this window's history: its
        slot is in range and the values it was made at are in this window's context there (a replay
        of another recording, or a restart, is not served an estimate of elsewhere)."""
        age = slot - held[0]
        if not 0 <= age < self.every_steps or age >= window.contexts.shape[1]:
            return False
        return bool(np.array_equal(window.contexts[rows, -1 - age], held[2], equal_nan=True))

    def _fit_length(self, x: FloatArray) -> FloatArray:
        """The newest ``context_length`` steps, left-padded with NaN to the full context: missing patches
        are masked, and the analog branch needs more steps than its pattern (a 16-step window failed)."""
        cfg = self.config
        x = x[:, :, -cfg.context_length :]
        if x.shape[2] == cfg.context_length:
            return x
        return np.concatenate([np.full((*x.shape[:2], cfg.context_length - x.shape[2]), np.nan), x], axis=2)

    def _chunk(
        self, x: FloatArray, now: FloatArray, present: npt.NDArray[np.bool_], horizon: int
    ) -> tuple[FloatArray, FloatArray]:
        n, g, length = x.shape
        enc = self.tokenizer.encode(x.reshape(n * g, length))
        scaled_now = TSTokenizer.scale_values(now.reshape(n * g), enc.loc, enc.scale).reshape(n, g)
        with torch.inference_mode():
            out = self.model(
                torch.from_numpy(enc.ids.reshape(n, g, length)).to(self._device),
                current=torch.from_numpy(scaled_now).float().to(self._device),
                tag_mask=torch.from_numpy(present).to(self._device),
                horizon=horizon,
            )
        assert out.quantiles is not None and out.estimate is not None
        q = out.quantiles[..., :horizon].float().cpu().numpy().astype(np.float64).reshape(n * g, -1, horizon)
        e = out.estimate.float().cpu().numpy().astype(np.float64).reshape(n * g, -1)
        q = np.maximum.accumulate(np.einsum("rq,bqh->brh", self._weights, q), axis=1)
        e = np.maximum.accumulate(np.einsum("rq,bq->br", self._weights, e), axis=1)
        q = self.tokenizer.unscale(q, enc.loc, enc.scale)
        e = self.tokenizer.unscale(e, enc.loc, enc.scale)
        bad = ~np.isfinite(q).all(axis=(1, 2)) | ~np.isfinite(e).all(axis=1)
        q[bad], e[bad] = np.nan, np.nan
        return q.reshape(n, g, -1, horizon), e.reshape(n, g, -1)


def _checked_groups(groups: Collection[Collection[str]], mask_recent_steps: int) -> tuple[frozenset[str], ...]:
    """``mask_groups`` as sets, refused when a group has fewer than two tags, a tag is in two groups, or the
    recent past is not masked (the group's own newest slots would give its current values away)."""
    sets = tuple(frozenset(g) for g in groups)
    if not sets:
        return ()
    if not mask_recent_steps:
        raise ModelError("mask_groups needs mask_recent_steps > 0 (the newest slots would give the values away)")
    if any(len(g) < 2 for g in sets):
        raise ModelError(f"each of mask_groups needs two tags or more, got {[sorted(g) for g in sets]}")
    if sum(len(g) for g in sets) != len(frozenset().union(*sets)):
        raise ModelError(f"a tag is in two of mask_groups: {[sorted(g) for g in sets]}")
    return sets


def _merged(base_dir: Path, model: SentinelleTSModel, adapter: Path, tags: Collection[str] | None) -> SentinelleTSModel:
    """``model`` with the LoRA adapter in ``adapter`` checked against ``base_dir``'s weights and merged in.

    ``tags``: the configured tags of the asset the folder is named after; an adapter trained on others
    is refused (None: not checked).
    """
    from .adapters import BASE_WEIGHTS_FILE, attach, check_adapter_tags, file_sha256, read_adapter

    files = read_adapter(Path(adapter), file_sha256(base_dir / BASE_WEIGHTS_FILE), model)
    if tags is not None:
        check_adapter_tags(files, files.directory.name, tags)
    peft_model = attach(model, files, "asset")
    peft_model.set_adapter("asset")
    merged = peft_model.merge_and_unload()
    torch.nn.Module.eval(merged)
    return cast(SentinelleTSModel, merged)
