"""Detection (``[detect]``): alarm management, data quality and the history hand-over here; per-tag scoring
in :mod:`.detect_scoring`, the asset-level detectors in :mod:`.detect_asset`, the per-asset rules in :mod:`.assets`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .assets import AssetDetectSettings
from .detect_asset import _AssetDetection
from .detect_scoring import _TagScoring


class DetectSettings(_AssetDetection, _TagScoring):
    """``[detect]``: one flat section; the per-tag scoring and asset fields are declared in
    :mod:`.detect_scoring` and :mod:`.detect_asset`, the alarm management, data quality and history
    hand-over here."""

    open_k: int = Field(default=3, ge=1, description="An alert opens after k anomalous ticks ...")
    open_n: int = Field(default=5, ge=1, description="... among the last n ticks.")
    clear_normal_steps: int = Field(
        default=10, ge=1, description="An open alert clears after this many consecutive normal ticks."
    )
    critical_z: float = Field(default=8.0, gt=0, description="|residual z| from which an alert is critical.")
    update_min_interval_s: float = Field(
        default=30.0, ge=0, description="At most one 'updated' event per alert per this interval."
    )
    max_contributors: int = Field(default=5, ge=1)
    # Alarms fit for an operator (ISA-18.2 / EEMUA 191; detect/lifecycle.py, detect/chatter.py, detect/flood.py).
    # Defaults are set a priori from the standards' own numbers, not tuned on any reported data.
    severe_opens_at_once: bool = Field(
        default=True,
        description="A residual tick beyond score_severe_sigmas calibrated σ (the per-tag scorer's severe mask) "
        "opens its alert at once instead of waiting for open_k of open_n (a single huge spike is an alarm).",
    )
    rearm_steps: int = Field(
        default=10,
        ge=0,
        description="Re-arm time in periods of the alert's tag group: an alert whose condition cleared and "
        "comes back within it continues (an 'updated' event), no new alert opens; its 'cleared' waits for it.",
    )
    rearm_min_s: float = Field(
        default=60.0,
        ge=0,
        description="... and at least this long in operator time (EEMUA 191 counts chattering per minute). "
        "Both 0: clear at once, as before.",
    )
    chatter_openings: int = Field(
        default=3,
        ge=0,
        description="A subject that opens this many alerts within chatter_window_s is chattering: its alert is "
        "latched, re-armed for chatter_window_s. 0: no latch.",
    )
    chatter_window_s: float = Field(
        default=600.0, gt=0, description="Operator time in which chatter_openings openings latch a subject."
    )
    flood_openings: int = Field(
        default=10,
        ge=0,
        description="An asset that opened this many alerts within flood_window_s is in a flood: further "
        "openings become members of one 'flood' alert of the asset. 0: no flood alerts.",
    )
    flood_window_s: float = Field(default=600.0, gt=0, description="Operator time of the flood rate.")
    flood_clear_openings: int = Field(
        default=5,
        ge=0,
        description="The flood clears when fewer openings than this (members included) fall in the last "
        "flood_window_s and none of its members is still active.",
    )
    merge_by_asset: bool = Field(
        default=True,
        description="Residual anomalies of several tags of one asset form one alert (tags ranked as "
        "contributors); False: one alert per tag.",
    )
    rule_critical_ratio: float = Field(
        default=2.0,
        gt=1,
        description="A rate_of_change / energy_balance alert is critical from this multiple of its limit.",
    )
    dq_recovery_steps: int = Field(
        default=10,
        ge=0,
        description="Ticks a tag stays out of scoring after a data-quality condition ends: the forecasts "
        "made from the bad values are not judged.",
    )
    spike_window_steps: int = Field(
        default=30, ge=4, description="Recent steps of a tag whose spread a spike is measured against."
    )
    spike_max_steps: int = Field(
        default=2,
        ge=1,
        description="A jump that has not come back within this many ticks is a level change, not a spike: "
        "its ticks are scored again (detection of a real step is delayed by at most this).",
    )
    missing_after_s: float | None = Field(
        default=None,
        gt=0,
        description="A tag without a usable value this long (counted from its last value, held values "
        "included) is reported missing. None: missing_after_periods periods of the tag.",
    )
    missing_after_periods: float = Field(
        default=60.0,
        gt=0,
        description="Default missing-after in periods: 60 (60 s on 1 s data, as before; 60 h on hourly data). "
        "It counts from the last held value, so with the default hold a tag is missing 90 periods after its "
        "last sample: a few late or skipped samples of slow data never are, a silent 1 s tag is within 90 s.",
    )
    stuck_after_periods: float = Field(
        default=120.0,
        gt=1,
        description="Default of tags[].stuck_after_s in periods, for tags with stuck_check = true: 120 (the "
        "120 s the chiller's tags were set to at 1 s); a moving measurement does not sit within its "
        "tolerance for 120 of its own samples.",
    )
    history_held: Literal["widen", "skip", "off"] = Field(
        default="widen",
        description="What detectors learn from a held slot of replayed history (a compressed export's value "
        "known only to within its deadband, not measured; sources/history). widen: learn from it, with the "
        "residual spread floored at deadband/sqrt(3) and deadband^2/3 added to the learned variances (residual "
        "scale, asset warm-up); skip: learn spreads and asset warm-ups only from changed slots; off: take held "
        "values for measurements (an uncompressed export).",
    )
    history_held_weight_steps: float = Field(
        default=60.0,
        gt=0,
        description="Live ticks that what a tag's residual scale and a learned relation's fit took from a "
        "compressed export's replay are worth once the replay ends (divided by the held share, so a tag with "
        "few held slots keeps more of its history): live data replace them within about that many ticks instead "
        "of score_memory_steps (a relation: memory_s). Residuals of held values against forecasts of held values "
        "say little about the live spread (with the full weight, a fault on the first live day was found one "
        "period later). Only tags with held slots, only with history_held widen or skip.",
    )
    history_held_drop_after_steps: float = Field(
        default=60.0,
        gt=0,
        description="Live ticks (divided by the held share, as history_held_weight_steps), scored by forecasts "
        "made from fully live contexts, after which what a tag's residual scale took from a compressed export's "
        "replay no longer counts at all: the scale is then those ticks' own, learned as from a cold start. inf: "
        "never (the replay's share fades as weight / (weight + live ticks), ~3 % a day later, and the first live "
        "forecasts, made from the export's held values, count too: enough to tip a tick at the threshold).",
    )
    history_held_drop_keeps_location: bool = Field(
        default=False,
        description="At history_held_drop_after_steps, replace only the spread of a tag's residual scale: keep "
        "its location and learning rate (the replay's prior and every live tick since, blended) and take the "
        "live ticks' mean square about that location. false: location, spread and learning rate are the live "
        "ticks' alone (a location learned from a few live hours of one load pattern can be off by ~0.1 sigma). "
        "false was kept on development seeds 1540-1542 (true found a drift one period later; "
        "docs/results/deadband/keeploc/).",
    )
    history_held_relation_drop_after_steps: float = Field(
        default=60.0,
        gt=0,
        description="Live ticks (divided by the held share, as history_held_weight_steps) a learned relation "
        "learns after a compressed export's replay, after which the residual spread it took from the replay no "
        "longer counts: the spread is then those ticks' own (the fit is kept). A held target against held inputs "
        "carries both deadbands' error, so the replay's spread is wider than the live one and, fading only as "
        "weight / (weight + live ticks), still tipped a pump degradation one period later a day on (seed 1586). "
        "inf: never (the prior only fades). Relations with held slots only. 60 (the residual scale's count) was "
        "shipped by the rule of docs/results/deadband/relation-handover/ on development seeds 1600-1603.",
    )
    history_held_screen_reset: bool = Field(
        default=False,
        description="At the end of a compressed export's replay, the data-quality screen forgets what held "
        "slots taught it, for tags with held slots: the spike check's ring of steps (held slots step by exactly "
        "0, so the spread was too narrow for live noise), its last value (a held one, off by up to the "
        "deadband) and the stuck timer, as a daemon started without backfill has them. false: keep them (the "
        "first live value jumped from the held one and was confirmed a spike on seed 1625). false was kept by the "
        "rule of docs/results/deadband/screen-reset/ (true added a false alert on development seed 1643).",
    )
    history_held_spike_skip: bool = Field(
        default=True,
        description="During a compressed export's replay, the data-quality spike check reads a held slot as a "
        "gap: it learns no step from it (held slots step by exactly 0, narrowing the spread below live noise) "
        "and none across a held run (the next read value's step from the last one spans the run: unknown), and "
        'its last value is never a held one (the first live value then "jumped" from it and was confirmed a '
        "spike on seed 1625). Unlike history_held_screen_reset, the stuck timer and the read steps are kept. "
        "false: held slots are spike-checked as measurements. true shipped by the rule of "
        "docs/results/deadband/spike-held/ on development seeds 1680-1682 (false raised this spike on 1682).",
    )
    assets: tuple[AssetDetectSettings, ...] = Field(
        default=(), description="Per-asset rules: energy balance, relations, operating modes."
    )

    @model_validator(mode="after")
    def _k_le_n(self) -> DetectSettings:
        if self.open_k > self.open_n:
            raise ValueError(f"open_k ({self.open_k}) must not exceed open_n ({self.open_n})")
        if (self.asset_estimate_open_k is None) != (self.asset_estimate_open_n is None):
            raise ValueError("asset_estimate_open_k and asset_estimate_open_n are set together (or neither)")
        k, n = self.asset_estimate_open_k, self.asset_estimate_open_n
        if k is not None and n is not None and k > n:
            raise ValueError(f"asset_estimate_open_k ({k}) must not exceed asset_estimate_open_n ({n})")
        if (self.asset_open_k is None) != (self.asset_open_n is None):
            raise ValueError("asset_open_k and asset_open_n are set together (or neither)")
        if self.asset_open_k is not None and self.asset_open_n is not None and self.asset_open_k > self.asset_open_n:
            raise ValueError(f"asset_open_k ({self.asset_open_k}) must not exceed asset_open_n ({self.asset_open_n})")
        if self.asset_clear_score < 1.0 and self.asset_likelihood_enabled:
            raise ValueError("asset_clear_score is a deadband under the raw score's limit, not the likelihood layer's")
        if self.score_seasonal_repeat_periods and 4 * self.score_seasonal_repeat_tolerance_s > (
            self.score_seasonal_repeat_period_s
        ):
            raise ValueError("score_seasonal_repeat_tolerance_s must be at most a quarter of the period")
        return self
