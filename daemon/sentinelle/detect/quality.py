"""Data-quality gating: values a detector must not judge, reported for the instrument technicians.

A transmitter that froze, a single-sample spike, a tag without data: none of
them is a process upset, and scoring them would both raise false process alarms
and teach the River detectors that garbage is normal.  So, per tag and tick,
before any scoring:

* **missing** — no usable value for ``detect.missing_after_s`` (by default
  ``detect.missing_after_periods`` periods of the tag).  The window stage already
  turned Bad/Uncertain samples, non-numbers and silence into gaps (NaN after
  ``windows.max_hold_s``); here a long gap becomes a condition.
* **stuck** — a tag configured with ``stuck_check`` (or ``stuck_after_s``) stayed
  within ``stuck_tolerance`` of one value for ``stuck_after_s`` (by default
  ``detect.stuck_after_periods`` periods).  Only for tags that normally move
  (a noisy measurement), never for set points or state codes.
* **spike** — a tag configured with ``spike_factor`` jumped from its previous
  value by more than ``spike_factor`` robust standard deviations (1.4826 · MAD)
  of its last ``detect.spike_window_steps`` steps, beyond their median step (a
  steady ramp is not a spike).  The jump is held out at once — the stage cannot
  wait — and is *confirmed* a spike when the tag comes back within
  ``spike_factor`` spreads of the value before it within ``detect.spike_max_steps``
  ticks; otherwise it was a level change, and the tag is scored again from then on
  (and not suspected again for ``spike_window_steps`` ticks: a fast ramp is data).
* **recovery** — the ``detect.dq_recovery_steps`` ticks after any of these ended:
  the forecasts made from the bad values are not judged either.

A gated tick is neither scored nor learned from, and raises no process alarm.

>>> from sentinelle.settings import DetectSettings, TagSettings
>>> tag = TagSettings(name="t", asset="a", node_id="n", stuck_after_s=3.0)
>>> dq = DataQuality([tag], DetectSettings(dq_recovery_steps=1))
>>> ticks = [dq.step(float(ts), np.array([v])) for ts, v in enumerate([1.0, 2.0, 2.0, 2.0, 2.0, 3.0, 4.0])]
>>> [int(t.stuck[0]) for t in ticks]   # flat since ts 1: stuck from ts 4
[0, 0, 0, 0, 1, 0, 0]
>>> [int(t.gate[0]) for t in ticks]    # and one recovery tick after it moved again
[0, 0, 0, 0, 1, 1, 0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..records import BoolArray, FloatArray
from ..settings import DetectSettings, TagSettings
from ..timing import missing_after_s, stuck_after_s

_MAD_TO_SIGMA = 1.4826
_MEAN_DEVIATION_TO_SIGMA = 1.2533  # sqrt(pi / 2): mean |x - mu| of a normal distribution is sigma / 1.2533


@dataclass(frozen=True, slots=True)
class QualityTick:
    """The data-quality verdict of one tick, per row."""

    gate: BoolArray
    """Kept out of scoring and process alarms (any reason below)."""
    missing: BoolArray
    stuck: BoolArray
    stuck_s: FloatArray
    """How long each tag has been flat (seconds)."""
    spike: BoolArray
    """Inside a suspected spike (held out, not yet confirmed or released)."""
    spike_confirmed: BoolArray
    """A spike came back this tick: the data-quality event."""
    spike_height: FloatArray
    """Height of the confirmed spike (tag units), NaN elsewhere."""
    recovery: BoolArray
    source_down: BoolArray | None = None
    """Rows without a value because their source is disconnected (missing at once); None: none."""


class DataQuality:
    """Data-quality state of one tag group (fixed row order)."""

    def __init__(self, tags: Sequence[TagSettings], settings: DetectSettings) -> None:
        n = len(tags)
        self.n = n
        self.missing_after_s: FloatArray = np.array([missing_after_s(t, settings) for t in tags])
        """Per row: how long without a usable value makes the tag missing (seconds)."""
        self.recovery_steps = settings.dq_recovery_steps
        self.spike_max_steps = settings.spike_max_steps
        self.stuck_after_s: FloatArray = np.array([stuck_after_s(t, settings) for t in tags])
        self.stuck_tolerance = np.array([t.stuck_tolerance for t in tags])
        self._flat_value: FloatArray = np.full(n, np.nan)
        self._flat_since: FloatArray = np.full(n, np.nan)
        self._last_seen: FloatArray = np.full(n, np.nan)
        self._recovery_left: npt.NDArray[np.int64] = np.zeros(n, dtype=np.int64)
        self._was_bad: BoolArray = np.zeros(n, dtype=bool)

        factor = np.array([t.spike_factor if t.spike_factor is not None else np.nan for t in tags])
        self.spike_rows = np.flatnonzero(np.isfinite(factor))
        m = len(self.spike_rows)
        self.spike_factor = factor[self.spike_rows]
        self.spike_floor = np.array([tags[i].min_spread for i in self.spike_rows.tolist()])
        self._steps: FloatArray = np.full((m, settings.spike_window_steps), np.nan)
        self._steps_pos = 0
        self._prev: FloatArray = np.full(m, np.nan)
        """Each spike-checked tag's last value outside a spike."""
        self._episode: npt.NDArray[np.int64] = np.zeros(m, dtype=np.int64)
        """Ticks into a suspected spike (0: none)."""
        self._episode_base: FloatArray = np.full(m, np.nan)
        self._episode_band: FloatArray = np.full(m, np.nan)
        self._episode_height: FloatArray = np.full(m, np.nan)
        self._quiet: npt.NDArray[np.int64] = np.zeros(m, dtype=np.int64)
        """Ticks left in which a tag whose jump turned out real (a level change, a fast ramp)
        is not suspected again: its steps are the data now, and fill the spread."""
        self._quiet_steps = settings.spike_window_steps
        self._replay_held: BoolArray = np.zeros(n, dtype=bool)
        """Rows with a held slot in the history replay so far (``detect.history_held_screen_reset``)."""

    def saw_held(self, held: BoolArray) -> None:
        """A replayed tick's held mask (a compressed export's slot without a read value)."""
        self._replay_held |= held

    def forget_replay(self) -> None:
        """The replay of a compressed export ended: rows that had held slots start the live days cold.

        ``detect.history_held_screen_reset``: a held slot repeats the last exported value, so the replay
        taught the spike screen steps of exactly 0 (a tag held in 84 % of its slots gets a spread of the few
        deadband-sized moves averaged with zeros, too narrow for live noise) and its last value is a held one,
        off by up to the deadband: the first live value "jumps" from it and the next lands back within the
        band, a confirmed spike that is only the hold ending (seed 1625, ``power_kw``, 1.2 min into the live
        days).  The stuck timer likewise counted a held run as flat.  So those rows forget the step ring,
        their last value, a spike in progress and the stuck timer, as a daemon started without backfill has
        them: the spike check waits for half a window of live steps.
        """
        rows = self._replay_held
        self._flat_value[rows] = np.nan
        self._flat_since[rows] = np.nan
        spike = rows[self.spike_rows]
        self._steps[spike] = np.nan
        self._prev[spike] = np.nan
        self._episode[spike] = 0
        for a in (self._episode_base, self._episode_band, self._episode_height):
            a[spike] = np.nan
        self._quiet[spike] = 0
        self._replay_held = np.zeros(self.n, dtype=bool)

    def step(
        self, ts: float, values: FloatArray, source_down: BoolArray | None = None, held: BoolArray | None = None
    ) -> QualityTick:
        """Judge one tick's values (NaN: a gap) and advance the state.

        ``source_down``: rows whose source is disconnected — missing at once, not after ``missing_after_s``.
        ``held``: rows whose value is a compressed export's held slot (``detect.history_held_spike_skip``):
        not a measurement, so the spike check neither judges it nor learns a step from it or across it.
        """
        finite = np.isfinite(values)

        # Missing: time since the last usable value (from the first tick seen, for a tag never seen).
        self._last_seen = np.where(finite | np.isnan(self._last_seen), ts, self._last_seen)
        missing = ~finite & (ts - self._last_seen >= self.missing_after_s)
        if source_down is not None:
            missing |= ~finite & source_down

        # Stuck: time since the value last moved beyond the tolerance; a gap neither moves nor resets it.
        with np.errstate(invalid="ignore"):
            moved = finite & ~(np.abs(values - self._flat_value) <= self.stuck_tolerance)
        self._flat_value = np.where(moved, values, self._flat_value)
        self._flat_since = np.where(moved, ts, self._flat_since)
        stuck_s = np.where(finite, ts - self._flat_since, np.nan)
        with np.errstate(invalid="ignore"):
            stuck = finite & (stuck_s >= self.stuck_after_s)

        spike = np.zeros(self.n, dtype=bool)
        confirmed = np.zeros(self.n, dtype=bool)
        height = np.full(self.n, np.nan)
        if len(self.spike_rows):
            s, c, h = self._spikes(values[self.spike_rows], None if held is None else held[self.spike_rows])
            spike[self.spike_rows] = s
            confirmed[self.spike_rows] = c
            height[self.spike_rows] = h

        # Recovery follows a condition that ended (a value back, a tag moving again, a confirmed
        # spike) — not a suspected spike released as a level change: that one is real data.
        lasting = missing | stuck
        ended = (self._was_bad & ~lasting) | confirmed
        self._recovery_left[ended] = self.recovery_steps
        bad = lasting | spike | confirmed
        recovery = ~bad & (self._recovery_left > 0)
        self._recovery_left[recovery] -= 1
        self._was_bad = lasting
        return QualityTick(
            gate=bad | recovery,
            missing=missing,
            stuck=stuck,
            stuck_s=stuck_s,
            spike=spike,
            spike_confirmed=confirmed,
            spike_height=height,
            source_down=source_down,
            recovery=recovery,
        )

    def _spikes(self, x: FloatArray, held: BoolArray | None = None) -> tuple[BoolArray, BoolArray, FloatArray]:
        """(inside a suspected spike, confirmed now, height) for the spike-checked rows.

        ``held`` rows (a replayed held slot, ``detect.history_held_spike_skip``) are read as gaps: their step
        of 0 does not enter the ring, and their last value is forgotten, so the step across a held run (from
        the last read value to the next, several ticks apart) is unknown too, not learned and not judged: the
        first value after the replay's last held slot is not a "jump" from a value off by up to the deadband.
        """
        if held is not None:
            x = np.where(held, np.nan, x)
        finite = np.isfinite(x)
        # Rows with no finite step yet give NaN: no spike check for them.
        gaps = np.isnan(self._steps)
        count = self._steps.shape[1] - np.count_nonzero(gaps, axis=1)
        median_step = row_nanmedian(self._steps, count)
        with np.errstate(invalid="ignore"):  # inf - inf: an infinite step
            deviation = np.abs(self._steps - median_step[:, None])
        if not np.isfinite(median_step[count > 0]).all():  # an infinite step: |inf - inf| is a new NaN
            gaps = np.isnan(deviation)
            count = self._steps.shape[1] - np.count_nonzero(gaps, axis=1)
        mad = row_nanmedian(deviation, count)
        with np.errstate(invalid="ignore"):  # 0/0: a row without steps
            mean_deviation = np.where(gaps, 0.0, deviation).sum(axis=1) / count  # np.nanmean's own sum and count
        enough = np.sum(np.isfinite(self._steps), axis=1) >= self._steps.shape[1] // 2
        # The MAD alone collapses to zero on a tag that is mostly flat (quantised, or sampled
        # faster than it changes): its first ordinary step would be a "spike".  The mean
        # absolute deviation does not; spikes never enter the ring, so it stays honest.
        spread = np.maximum(
            np.maximum(_MAD_TO_SIGMA * mad, _MEAN_DEVIATION_TO_SIGMA * mean_deviation), self.spike_floor
        )
        spread = np.where(enough & (spread > 0), spread, np.nan)

        in_episode = self._episode > 0
        with np.errstate(invalid="ignore"):
            back = in_episode & finite & (np.abs(x - self._episode_base) <= self._episode_band)
        ongoing = in_episode & ~back
        self._episode[ongoing] += 1
        released = ongoing & (self._episode > self.spike_max_steps)
        still = ongoing & ~released
        height = np.where(back, self._episode_height, np.nan)

        with np.errstate(invalid="ignore"):
            jump = x - self._prev
            band = self.spike_factor * spread
            starts = ~in_episode & finite & (self._quiet == 0) & (np.abs(jump - median_step) > band)
        self._quiet = np.maximum(self._quiet - 1, 0)
        self._quiet[released] = self._quiet_steps
        self._episode[starts] = 1
        self._episode_base[starts] = self._prev[starts]
        self._episode_band[starts] = band[starts]
        self._episode_height[starts] = jump[starts]
        self._episode[back | released] = 0

        # Steps of normal ticks feed the spread; a spike, its return and the jump of a level change do not.
        normal = ~in_episode & ~starts & finite
        self._steps[:, self._steps_pos] = np.where(normal, jump, np.nan)
        self._steps_pos = (self._steps_pos + 1) % self._steps.shape[1]
        self._prev = np.where(normal | back | (released & finite), x, self._prev)
        if held is not None:
            self._prev[held] = np.nan
        return starts | still, back, height


def row_nanmedian(a: FloatArray, count: npt.NDArray[np.intp] | None = None) -> FloatArray:
    """``np.nanmedian(a, axis=1)`` (NaN for a row without a number), without its masked-array path.

    For rows shorter than 600 numpy takes the median through ``np.ma``, whose sorting and
    indexing cost ~9 ms on 10,000 rows of 30; one plain sort (NaN sorts last) and the middle
    one or two numbers of each row give the same floats: the mean of the two middle ones is
    their sum halved, as numpy computes it.  ``count``: each row's numbers (not NaN), when the caller has them.

    >>> row_nanmedian(np.array([[3.0, np.nan, 1.0, 2.0], [4.0, 1.0, np.nan, np.nan], [np.nan] * 4]))
    array([2. , 2.5, nan])
    """
    ordered = np.sort(a, axis=1)
    if count is None:
        count = a.shape[1] - np.count_nonzero(np.isnan(a), axis=1)
    rows = np.arange(a.shape[0])
    low = ordered[rows, np.maximum((count - 1) // 2, 0)]
    high = ordered[rows, np.minimum(count // 2, a.shape[1] - 1)]
    with np.errstate(invalid="ignore", over="ignore"):  # -inf + inf; two huge numbers
        middle = np.where(count % 2 == 1, high, (low + high) / 2.0)
    return np.where(count > 0, middle, np.nan)
