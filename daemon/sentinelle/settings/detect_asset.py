"""``[detect]``, the asset-level detectors: the asset model's estimates of each tag from the others, and the
asset T²/Q and EWMA charts with their life cycle.

A part of :class:`.detect.DetectSettings`, kept in its own module for size only: the keys stay flat
(``detect.asset_enabled``), so configs written for one flat section still load.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import _Section


class _AssetDetection(_Section):
    # The asset model's estimate of each tag from the others now (detectors/asset_estimate.py).
    asset_estimate_ewma_alpha: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="With the asset model (forecast.asset_model_path): also chart an EWMA of each tag's "
        "standardised residual against the estimate, with this weight of the newest tick, scored against its own "
        "learned scale (a slow fault the estimate half follows leaves a residual of one sign). 0: off.",
    )
    asset_estimate_calibrate_band: bool = Field(
        default=False,
        description="With the asset model: widen or narrow each tag's estimate band by a factor learned online "
        "from its own residuals (detect/conformal.py), so that the nominal share of values falls outside it "
        "(20 % for 10-90 %) before the scorer reads it; the scorer's floor (residual_min_sigma) trusts a band "
        "that is too wide, and the blind estimate's band was not trained for that use.",
    )
    asset_estimate_cusum_enabled: bool = Field(
        default=False,
        description="With the asset model: also a two-sided CUSUM per tag on the residual against the estimate, "
        "standardised by a robust forgetting location and scale (detectors/estimate_cusum.py): a slow drift's "
        "residual grows too slowly for any one tick to be surprising, but its sum does not stay small.",
    )
    asset_estimate_cusum_k_sigmas: float = Field(
        default=0.3,
        ge=0,
        description="The CUSUM's reference value k, in the residual's own standard units: each tick adds "
        "|r| - k, so a residual that stays below k on average never accumulates.",
    )
    asset_estimate_cusum_h_sigmas: float = Field(
        default=40.0,
        gt=0,
        description="The CUSUM's decision interval h, in standard units summed over ticks: a tick is anomalous "
        "while the sum of (r - k) on either side is at least h.",
    )
    asset_estimate_cusum_batch_steps: int = Field(
        default=64,
        ge=1,
        description="The CUSUM's residual is also divided by its long-run scale: the learned spread of its EWMA "
        "over about this many ticks, over what independent residuals would give (at least 1). The blind "
        "estimate's residual comes in runs of minutes in normal operation; without this the sum takes them for a "
        "shift. 1: off.",
    )
    asset_estimate_rate_enabled: bool = Field(
        default=False,
        description="With the asset model: also a slow exceedance-rate accumulator per tag on the residual against "
        "the estimate (detectors/estimate_rate.py), standardised by a scale learned only on the history replay "
        "(the start-up backfill, a known-good stretch) and frozen: a fault present all day raises the share of "
        "surprising ticks for hours, where weather and schedules move it less (docs/results/lbnl/estimate_rate/).",
    )
    asset_estimate_rate_units: tuple[str, ...] = Field(
        default=(),
        description="Only tags with one of these units (TagSettings.unit) are accumulated, e.g. ('degF',): measured "
        "process variables obey the balances the estimate reads; a controller's output is its own integral state "
        "and its residual's rate moved as much on LBNL's fault-free days as on faulted ones. Empty: every tag.",
    )
    asset_estimate_rate_sigmas: float = Field(
        default=3.0,
        gt=0,
        description="A tick counts as surprising when its standardised residual is beyond this many of the "
        "history's scales.",
    )
    asset_estimate_rate_window_steps: int = Field(
        default=720,
        ge=1,
        le=864000,
        description="The share of surprising ticks is an EWMA with weight 1/this (ticks), or the exact share of the "
        "last this many live ticks (asset_estimate_rate_window_kind): hours, so that a burst of minutes does not "
        "move it and a fault present all day does.",
    )
    asset_estimate_rate_window_kind: Literal["ewma", "sliding"] = Field(
        default="ewma",
        description="'ewma': the share is an EWMA run from the history on (it starts live at the history's own "
        "rate). 'sliding': the exact share of surprising ticks among the last asset_estimate_rate_window_steps "
        "live ticks; history ticks do not enter it (the history's rate is the reference's own, not evidence).",
    )
    asset_estimate_rate_judge_after_steps: int = Field(
        default=0,
        ge=0,
        le=864000,
        description="The share is judged only once this many live ticks have been seen (this one included): a "
        "window that still holds few live ticks, or mostly the history's, is not read as evidence. 0: from the "
        "first live tick.",
    )
    asset_estimate_rate_max_share: float = Field(
        default=0.3,
        gt=0,
        le=1,
        description="A live tick is anomalous while the share of surprising ticks is at least this.",
    )
    asset_estimate_open_k: int | None = Field(
        default=None,
        ge=1,
        description="The estimate residual's own k of n to open (None: open_k/open_n). An estimate made on one "
        "slot in forecast.asset_estimate_every_steps stands for the slots between, so one poor estimate is that "
        "many anomalous ticks in a row: a k above that period asks for two estimates to agree ...",
    )
    asset_estimate_open_n: int | None = Field(default=None, ge=1, description="... among the last n ticks.")
    asset_estimate_learn_delay_steps: int = Field(
        default=0,
        ge=0,
        le=86400,
        description="The estimate residual's usual scale learns each tick this many ticks late (a delay line), "
        "and only if no alert of it was open then or is open now: a slow fault's residual grows for minutes "
        "before any tick is surprising, and a scale learning it at once follows it (docs/results/chiller-"
        "detection/asset-stride.md). 0: each tick as it comes.",
    )
    asset_estimate_min_learned_steps: int = Field(
        default=0,
        ge=0,
        le=86400,
        description="The estimate residual flags a tag only once its usual scale has learned at least this many "
        "ticks (and grace_period_steps): a scale learning late (asset_estimate_learn_delay_steps) has learned "
        "few ticks when the estimates start, and a young scale is narrow (docs/results/chiller-detection/"
        "asset-stride.md). 0: grace_period_steps alone.",
    )
    asset_estimate_group_learn_delay_steps: int | None = Field(
        default=None,
        ge=0,
        le=86400,
        description="asset_estimate_learn_delay_steps for the tags of forecast.asset_mask_groups only (their "
        "estimate comes from the rest of the asset without the group's values now, and wanders more in healthy "
        "operation than the others'); the other tags keep asset_estimate_learn_delay_steps "
        "(docs/results/chiller-detection/group-learn/). None: the same for every tag.",
    )
    asset_estimate_group_min_learned_steps: int | None = Field(
        default=None,
        ge=0,
        le=86400,
        description="asset_estimate_min_learned_steps for the tags of forecast.asset_mask_groups only; the "
        "others keep asset_estimate_min_learned_steps. None: the same for every tag.",
    )
    asset_estimate_group_flag_side: int = Field(
        default=0,
        ge=-1,
        le=1,
        description="The tags of forecast.asset_mask_groups flag only on this side of their estimate (1: above, "
        "-1: below, about the scale's location; 0: either side). Why: a group of actuator commands estimated from "
        "the plant's state alone (the pump speeds) leaves it in one direction when the equipment it drives loses "
        "effect (a weakening pump: the controller raises every speed above what the state implies), while their "
        "healthy wander that met the opening on the chiller's development runs was below it under the group's later "
        "learning (docs/results/chiller-detection/flag-side/). Learning is unchanged. 0: off.",
    )
    asset_estimate_mean_steps: int = Field(
        default=0,
        ge=0,
        le=86400,
        description="Each tag's estimate residual is also scored as the mean of its last this many residuals, "
        "standardised by a second scale of the per-tick residual learned asset_estimate_mean_learn_delay_steps "
        "late (so against the tick's spread: a sustained bias of the tick threshold, without the tick noise that "
        "keeps a slow drift's ticks from opening); a tick is anomalous when either score reaches the threshold (the "
        "group's rows on asset_estimate_group_flag_side's side). Why: a drifting flow meter on the chiller's "
        "development runs (docs/results/chiller-detection/averaged-residual/). 0: off.",
    )
    asset_estimate_mean_learn_delay_steps: int = Field(
        default=0,
        ge=0,
        le=86400,
        description="How many ticks late the averaged residual's scale learns (a delay line; only ticks learnable "
        "then, with no alert of the detector open now). 0: each tick as it comes.",
    )
    asset_estimate_mean_min_learned_steps: int = Field(
        default=0,
        ge=0,
        le=86400,
        description="The averaged residual flags a tag only once its scale has learned this many ticks (and "
        "grace_period_steps). 0: grace_period_steps alone.",
    )
    asset_estimate_mean_groups: bool = Field(
        default=True,
        description="Whether the tags of forecast.asset_mask_groups are scored by asset_estimate_mean_steps too "
        "(False: only the other tags). Why: a group estimated from the plant's state alone (the chiller's pump "
        "speeds) wanders for minutes on one side in healthy operation, which the mean keeps and the per-tick "
        "noise hid (docs/results/chiller-detection/averaged-residual/).",
    )
    asset_estimate_holdoff_steps: int = Field(
        default=0,
        ge=0,
        le=86400,
        description="For this many ticks after the last tick any alert was open on an asset, its tags' estimate "
        "residual neither flags nor learns: the estimate's reference (the tags' recent contexts) still holds the "
        "fault's values, a recovery transient longer than the fault (docs/results/chiller-detection/"
        "residual-energy.md). 0: off.",
    )
    asset_estimate_held_spread: bool = Field(
        default=False,
        description="With the asset model: read each tag's residual against the estimate in the band width the tag "
        "usually has (a forgetting geometric mean, learned asset_estimate_learn_delay_steps ticks late on the ticks "
        "the scale learns, detect/held_spread.py) instead of this tick's band: the blind estimate widens its band "
        "when the tags stop agreeing, so a slow fault's residual read in it stays the size of healthy ones "
        "(docs/results/chiller-detection/held-spread/).",
    )
    asset_estimate_held_spread_sign_steps: int = Field(
        default=0,
        ge=0,
        le=86400,
        description="With asset_estimate_held_spread: hold the usual width only on tags whose residual has kept "
        "its sign (about its usual location): a forgetting mean of the sign over this many ticks at or beyond "
        "asset_estimate_held_spread_sign_share; elsewhere the tick's own band.  A drift leaves a one-sided "
        "residual for minutes, a healthy residual in a wide band wanders (detect/held_spread.py; docs/results/"
        "chiller-detection/sign-held/). 0: the usual width on every tick.",
    )
    asset_estimate_held_spread_sign_share: float = Field(
        default=0.9,
        gt=0.0,
        le=1.0,
        description="The magnitude of the mean sign (asset_estimate_held_spread_sign_steps) at which a residual "
        "counts as one-sided: 0.9 is 95 % of recent ticks on one side.",
    )
    asset_enabled: bool = Field(
        default=False,
        description="Also score each asset's tags together (PCA T² and Q on their state, detect/asset.py).",
    )
    asset_warmup_steps: int = Field(
        default=400, ge=20, description="Ticks an asset's normal state is learned from; then the model is frozen."
    )
    asset_warmup_ends_with_history: bool = Field(
        default=False,
        description="The start-up backfill (history replay) is the asset's warm-up: when it ends, an asset still "
        "learning freezes on what it learned (at least ASSET_MIN_WARMUP ticks) instead of learning on into live "
        "data. For history whose length in learnable ticks is not known in advance (mode pauses, gaps).",
    )
    asset_explained_variance: float = Field(
        default=0.7, gt=0, le=1, description="Principal components in T² carry this share; the rest make Q."
    )
    asset_quantile: float = Field(
        default=0.99, gt=0.5, lt=1, description="Control limits: this quantile of the warm-up's T² and Q ..."
    )
    asset_ucl_factor: float = Field(default=3.0, gt=0, description="... times this factor.")
    asset_ewma_alpha: float = Field(
        default=1.0, gt=0, le=1, description="Smoothing weight of the newest tick (1: no smoothing)."
    )
    asset_smooth_vector: bool = Field(
        default=False, description="Smooth the standardised vector (MEWMA); False: smooth T² and Q."
    )
    asset_drift_share: float = Field(
        default=0.3,
        gt=0,
        le=1,
        description="A tag whose warm-up variance is more than this share slow is scored against a moving baseline.",
    )
    asset_drift_alpha: float = Field(
        default=1.0 / 30.0, gt=0, le=1, description="EWMA weight of that baseline (and of the slowness test)."
    )
    asset_chart_alpha: float = Field(
        default=0.15,
        ge=0,
        le=1,
        description="EWMA control chart per steady tag for small sustained shifts: weight of the newest tick "
        "(0: no charts).",
    )
    asset_chart_factor: float = Field(
        default=3.5, gt=0, description="Each chart's limit: the warm-up quantile of its |EWMA| times this factor."
    )
    asset_slow_chart_alpha: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="A second, slow EWMA chart per steady tag beside the first (weight of the newest tick; 0: none): "
        "a light weight finds a shift of one or two σ that lasts, which the first chart's limit lets pass.",
    )
    asset_slow_chart_factor: float | None = Field(
        default=None, gt=0, description="The slow chart's limit factor (None: asset_chart_factor)."
    )
    asset_slow_chart_clip: float | None = Field(
        default=None,
        gt=0,
        description="The slow chart's input is clipped at ± this many warm-up σ, so that after a large fault it "
        "comes back within ln(clip/limit)/alpha ticks (None: not clipped).",
    )
    asset_slow_chart_hold_steps: int | None = Field(
        default=None,
        ge=1,
        description="The slow chart (and the MEWMA) opens but does not hold: once T², Q or a fast chart flagged "
        "this many ticks in a row in its excursion, it counts only until they have been normal this many ticks in a "
        "row, then not "
        "again before it comes back inside its limit (a process a little off its old level after a fault). None: "
        "every tick over its limit counts.",
    )
    asset_slow_chart_open_only: bool = Field(
        default=False,
        description="With asset_slow_chart_hold_steps: an excursion of the slow chart that begins while the asset's "
        "alert is open as sent (its condition, or within the re-arm time after it) does not count — the slow chart "
        "may raise the asset's alert, never prolong one.",
    )
    asset_mewma_alpha: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="A MEWMA of the steady tags beside T², Q and the charts (detect/mewma.py; weight of the newest "
        "tick, 0: none): a small lasting shift summed over the tags under their normal correlation. Gated as the "
        "slow chart is (asset_slow_chart_hold_steps, asset_slow_chart_open_only).",
    )
    asset_mewma_factor: float = Field(
        default=3.0,
        gt=0,
        description="The MEWMA's limit: the warm-up quantile of its statistic (floored at white noise's χ² "
        "quantile) times this factor.",
    )
    asset_mewma_clip_sigma: float | None = Field(
        default=None,
        gt=0,
        description="The MEWMA's input is clipped at ± this many warm-up σ per tag, which bounds its inertia after "
        "a large fault (None: not clipped).",
    )
    asset_learn_rate: float = Field(
        default=0.0, ge=0, lt=1, description="After the warm-up, learn from confidently normal ticks at this rate."
    )
    asset_open_k: int | None = Field(
        default=None,
        ge=1,
        description="The asset alert's own k of n to open (None: open_k/open_n, shared with every alert kind) ...",
    )
    asset_open_n: int | None = Field(default=None, ge=1, description="... among the last n ticks.")
    asset_clear_normal_steps: int | None = Field(
        default=None,
        ge=1,
        description="The asset alert clears after this many normal ticks (None: clear_normal_steps). A state "
        "detector's condition can dip inside its limits while the fault lasts; a longer hold keeps one alert.",
    )
    asset_severe_factor: float = Field(
        default=0.0,
        ge=0,
        description="An asset tick whose score (T², Q or a chart over its limit) reaches this opens the asset alert "
        "at once instead of waiting for k of n (0: never; must be over 1 to mean anything).",
    )
    asset_clear_score: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="Deadband of the asset alert (ISA-18.2): once open, its condition stays on while the score is "
        "above this (the limit is 1), and only ticks at or below it count towards clearing. 1: no deadband.",
    )
    asset_settle_steps: int = Field(
        default=0,
        ge=0,
        description="Settling time after an asset episode: once an asset alert's condition that lasted at least "
        "asset_settle_after_steps clears, the asset-state condition does not flag again for this many ticks (the "
        "process returning from an upset drifts back through its limits; per-tag residual and limit alerts are "
        "untouched). 0: off.",
    )
    asset_settle_after_steps: int = Field(
        default=60,
        ge=1,
        description="... an episode is a condition open at least this many ticks (a short false opening earns no "
        "settling time, so a fault that follows it is not delayed).",
    )
    asset_settle_after_rearm: bool = Field(
        default=False,
        description="The episode is the alert as sent: a dip shorter than the re-arm time continues it, and the "
        "settling time starts when the condition has stayed normal through the re-arm time (the 'cleared' event), "
        "not at the condition's first clearing.",
    )
    asset_likelihood_enabled: bool = Field(
        default=False,
        description="Flag on the anomaly likelihood of the asset score (detect/likelihood.py, Numenta HTM's) "
        "instead of the score itself.",
    )
    asset_likelihood_short_steps: int = Field(
        default=1, ge=1, description="Ticks in the short-term mean of the asset score ..."
    )
    asset_likelihood_history_steps: int = Field(
        default=500,
        ge=10,
        description="... judged against the last this many normal scores (seeded with the warm-up's own).",
    )
    asset_likelihood_z: float = Field(
        default=3.0,
        gt=0,
        description="A tick is anomalous when the short-term mean is this many long-term σ above the long-term "
        "mean (likelihood Φ(z)).",
    )
