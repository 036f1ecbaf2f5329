"""An asset estimate anchored before an excursion: its reference stops at the last good refresh.

``forecast.asset_anchor_band_widths`` k > 0.  Why: with its whole context the asset model's
estimate of a tag reads that tag's own newest slots, so within one refresh it moves with a lasting
fault and the residual is back inside its healthy scale — on SKAB's tuning faults the estimate's
median moved 0.98 times as far as the value after 16 s, and the alert was open on more fault rows
than the residual was beyond (``docs/results/skab/anchored-estimate/RULE.md``).  A fixed blind spot
(``asset_mask_recent_steps``) does not follow at first, but is worse in healthy operation, follows
once the fault is older than the mask, and after the fault reads it as the reference.

Anchored instead: when a refreshed estimate misses any tag's value by more than k band half-widths
(the estimate's own outer levels, on the side of the miss), the asset's next estimates read the
contexts only up to the slot before the excursion began — every newer slot masked, for all the
asset's tags (one pass, as the fixed mask) — and the other tags' values now.  The reference is the
asset before the fault for as long as the fault lasts; when the values come back within r half-widths
of the anchored estimate (every tag; ``forecast.asset_anchor_release_band_widths``, 1: inside its band)
the anchor is released and the estimate reads its whole context again, so the recovery is not judged
against the fault.  Between refreshes (``every_steps`` R > 1) each slot's values are judged against the
held estimate, made before them: a miss beyond k there refreshes the asset at once (the refresh reads
the past up to the slot before, still clean, and anchors if it misses too) — judged at refreshes only,
the refresh after an onset read up to R − 1 of the fault's slots and had mostly followed it already
(SKAB's tuning files, ``docs/results/skab/anchored-estimate/RULE.md``, v1).  The mask cannot pass the
model's longest reach (:data:`~.asset_engine.MIN_SEEN_FRACTION`): an excursion that outlasts it is
released there (the estimate then follows, as without the anchor).

Decided from the forecaster's own estimates and values, never from alerts, so a replay is the same
whatever the detection stage does (and the anchored estimates are inputs like any other: a memo of
estimates, :mod:`sentinelle.evaluation.prefill`, keys on the masked contexts).
"""

from __future__ import annotations

import numpy as np

from ..records import FloatArray


def band_misses(values: FloatArray, estimate: FloatArray, mid: int) -> FloatArray:
    """Each row's miss in band half-widths: ``(x − median) / (upper − median)`` above, ``/ (median − lower)``
    below (a zero-width band: any miss is infinite, none is 0); NaN where the value or the estimate is missing.

    >>> est = np.array([[0.0, 1.0, 3.0], [5.0, 5.0, 5.0]])
    >>> band_misses(np.array([5.0, 5.0]), est, 1).tolist(), band_misses(np.array([-1.0, 6.0]), est, 1).tolist()
    ([2.0, 0.0], [2.0, inf])
    """
    med = estimate[:, mid]
    miss = values - med
    width = np.where(miss >= 0, estimate[:, -1] - med, med - estimate[:, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(miss == 0, 0.0, np.abs(miss) / np.maximum(width, 0.0))
    return np.asarray(np.where(np.isfinite(values) & np.isfinite(med), out, np.nan), dtype=np.float64)


class ExcursionAnchors:
    """Per asset (its key): the first slot of the excursion its estimates are anchored before, if any.

    >>> a = ExcursionAnchors(band_widths=3.0, longest=384, every_steps=16, mid=1)
    >>> est = np.array([[9.0, 10.0, 11.0]])
    >>> a.update(("p",), 100, np.array([10.5]), est, anchored=False); a.mask_steps(("p",), 116)
    0
    >>> a.update(("p",), 116, np.array([14.0]), est, anchored=False); a.mask_steps(("p",), 132)
    16
    >>> a.update(("p",), 132, np.array([10.2]), est, anchored=True); a.mask_steps(("p",), 148)
    0
    """

    def __init__(
        self, band_widths: float, longest: int, every_steps: int, mid: int, release_band_widths: float = 1.0
    ) -> None:
        if not 0 < release_band_widths <= band_widths:
            raise ValueError(
                f"need 0 < release_band_widths <= band_widths, got {release_band_widths} and {band_widths}"
            )
        self.band_widths = band_widths
        self.release_band_widths = release_band_widths
        self.longest = longest
        self.every_steps = every_steps
        self.mid = mid
        """The median's index among the estimate's levels."""
        self.start: dict[tuple[str, ...], int] = {}
        """Asset key → the first slot of its excursion (anchored assets only)."""
        self.last: dict[tuple[str, ...], int] = {}
        """Asset key → the slot of its last refresh (anchored assets only)."""

    def anchored(self, key: tuple[str, ...]) -> bool:
        return key in self.start

    def misses(self, values: FloatArray, estimate: FloatArray) -> bool:
        """Whether any tag's value misses ``estimate`` (rows × levels) by more than ``band_widths``."""
        miss = band_misses(values, estimate, self.mid)
        return bool((miss[np.isfinite(miss)] > self.band_widths).any())

    def mask_steps(self, key: tuple[str, ...], slot: int) -> int:
        """How many of the newest slots of the asset's past the estimate at ``slot`` must not read (0: none).

        The past ends at ``slot − 1``, so the mask covers the excursion's slots ``start … slot − 1``.  An
        anchor that would mask more than ``longest`` slots is released, and so is one whose last refresh is
        not in this history (at or after ``slot``, or more than two refresh periods before: another recording,
        a restart, a gap).
        """
        start = self.start.get(key)
        if start is None:
            return 0
        steps = slot - start
        if not 0 < steps <= self.longest or not 0 < slot - self.last[key] <= 2 * self.every_steps:
            self.release(key)
            return 0
        return steps

    def release(self, key: tuple[str, ...]) -> None:
        self.start.pop(key, None)
        self.last.pop(key, None)

    def update(
        self, key: tuple[str, ...], slot: int, values: FloatArray, estimate: FloatArray, *, anchored: bool
    ) -> None:
        """After a refresh at ``slot`` (``estimate``: rows × levels, ascending; ``anchored``: made with a mask
        from :meth:`mask_steps`): anchor on a miss beyond ``band_widths`` (the excursion begins at ``slot``:
        the slots before were judged already, at refreshes or against the held estimate), release when every
        tag is within ``release_band_widths``.  A refresh without any finite miss (no estimate) changes nothing."""
        miss = band_misses(values, estimate, self.mid)
        seen = np.isfinite(miss)
        if not seen.any():
            return
        if anchored:
            if bool((miss[seen] <= self.release_band_widths).all()):
                self.release(key)
            else:
                self.last[key] = slot
        elif bool((miss[seen] > self.band_widths).any()):
            self.start[key] = slot
            self.last[key] = slot
