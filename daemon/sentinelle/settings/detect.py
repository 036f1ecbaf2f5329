"""Detection: per-tag scoring and alarm management (``[detect]``); the asset rules are in :mod:`.assets`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .assets import AssetDetectSettings
from .base import _Section


class DetectSettings(_Section):
    score_threshold: float = Field(
        default=0.259,
        gt=0,
        lt=1,
        description="A tick is anomalous when its score reaches this. A score is the calibrated surprise's tail "
        "probability p as S/(S+10), S = -log10 p: 0.259 is p = 10^-3.5 (3.6 calibrated sigmas), 0.5 is 10^-10.",
    )
    score_method: Literal["surprise", "likelihood", "both"] = Field(
        default="surprise",
        description="surprise: the calibrated surprise of each tick; likelihood: Numenta's anomaly likelihood of "
        "it (short-term mean against its long-term distribution, detect/likelihood.py); both: the larger.",
    )
    score_min_context_steps: int = Field(
        default=8,
        ge=1,
        description="A tag is scored only once its forecast was made from at least this many values (the first "
        "forecasts from 1-3 points would teach the scale residuals of thousands of sigmas).",
    )
    score_memory_steps: int = Field(
        default=5000,
        ge=2,
        description="Ticks a tag's usual surprise is remembered over (exponential forgetting): a new normal is "
        "absorbed in about this many ticks.",
    )
    score_clip_sigmas: float = Field(
        default=3.0,
        gt=1,
        description="Residuals are clipped to this many of the tag's usual scales before they are learned "
        "(winsorised): one spike cannot inflate the scale.",
    )
    score_severe_sigmas: float = Field(
        default=8.0,
        gt=0,
        description="A tick this many calibrated sigmas off its forecast is severe (one such tick may open an alert).",
    )
    score_refractory_steps: int = Field(
        default=1000,
        ge=0,
        description="After a surprise, only surprise beyond the tag's recent peak (decaying over about this many "
        "ticks) scores: one event, one detection. 0: off.",
    )
    score_refractory_max_decades: float = Field(
        default=0.0,
        ge=0,
        description="The most decades of tail probability the refractory peak remembers (a surprise beyond it still "
        "scores in full): one spike of z ~ 500 (tens of thousands of decades) otherwise keeps every later surprise "
        "of the tag below its decaying peak for thousands of ticks. 0: no cap.",
    )
    score_rest_steps: int = Field(
        default=100,
        ge=0,
        description="After a tag's recorded per-tag score (the stage's combined score, what evaluations score) "
        "reaches score_rest_level, it is 0 for this many ticks (detect/rest.py): one event, one detection. Flags, "
        "alerts and the score gauges do not read it. 0: off.",
    )
    score_rest_level: float = Field(
        default=0.4, gt=0, le=1, description="The recorded score from which the rest period starts."
    )
    score_rest_scope: Literal["tag", "term"] = Field(
        default="tag",
        description="What one rest period covers: tag (the combined per-tag score rests after any of its terms "
        "fired) or term (each term, the residual's and each detector's per-tag score, rests on its own after it "
        "fired, and the published score is the largest rested term: another kind of evidence during one term's "
        "rest is a detection of its own, as an alarm re-arms per alarm). Flags and alerts do not read it.",
    )
    score_tail_calibration: bool = Field(
        default=False,
        description="Bound each tick's surprise by the tag's own record: -log10 of the rate of excursions of that "
        "size it made over score_memory_steps (detect/tail.py), so a held control signal's daily commanded step "
        "or a ramp the forecast lags every day is not an alarm; an excursion larger than any recent one still is.",
    )
    score_likelihood_short_steps: int = Field(
        default=10, ge=1, description="score_method likelihood: ticks in the short-term mean of the score ..."
    )
    score_likelihood_memory_steps: int = Field(
        default=1000, ge=2, description="... judged against its distribution over about this many ticks."
    )
    score_spread_floor: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Floor on each tick's forecast spread, as this share of the tag's typical forecast spread (a "
        "forgetting geometric mean over score_memory_steps, detect/scoring.py): a forecast suddenly far surer than "
        "it usually is cannot turn an ordinary miss into hundreds of sigmas. 0: off.",
    )
    score_step_floor: float = Field(
        default=0.0,
        ge=0,
        le=10,
        description="Floor on each tick's forecast spread, as this share of the tag's typical non-zero step between "
        "successive values (its resolution or noise: a forgetting geometric mean over score_memory_steps of the "
        "steps seen before the tick, detect/scoring.py): a forecast made from a flat stretch cannot score the tag's "
        "first ordinary move at z ~ 1e9. 1/sqrt(12) = 0.29: the spread of a value known to within one step. 0: off.",
    )
    residual_min_sigma: float = Field(
        default=1.0,
        ge=0,
        description="Floor on each tag's learned usual residual scale (units: the forecast's spread, at least the "
        "tag's resolution): a still tag otherwise learns a scale of ~0 and alarms on its first small move.",
    )
    grace_period_steps: int = Field(
        default=30, ge=2, description="Ticks a tag's scale learns before it may flag anything."
    )
    # Distribution change (detect/distribution.py, detectors/distribution.py): recent values against the past.
    distribution_enabled: bool = Field(
        default=False,
        description="Per tag, the recent window's value distribution against a forgetting reference (relative "
        "entropy, calibrated as the residual surprise); its score joins the residual's (maximum). Off by default: "
        "on the development chiller runs (bench/alarm_load.py) it opened 26 more alerts, 12 of them false, on the "
        "plant's own load cycle; the NAB evaluation turns it on.",
    )
    distribution_window_steps: int = Field(
        default=16, ge=4, le=4096, description="Ticks in the recent window compared with the reference."
    )
    distribution_bins: int = Field(
        default=8,
        ge=2,
        le=60,
        description="Cells of the value distribution (equiprobable for a normal tag), plus one beyond "
        "±2.5 usual scales on each side.",
    )
    distribution_reference_steps: int = Field(
        default=3000,
        ge=2,
        description="Ticks the reference distribution (and the value scale that places the cells) remembers.",
    )
    distribution_warmup_steps: int = Field(
        default=100, ge=1, description="Values in the reference before a tag is measured."
    )
    distribution_differences: bool = Field(
        default=True,
        description="Also measure the tick-to-tick differences' distribution (a change of dynamics whose "
        "values stay in range); the tag's score is the larger of the two.",
    )
    # Contextual novelty (detect/novelty.py, detectors/novelty.py): sequences of coarse values never seen.
    novelty_enabled: bool = Field(
        default=True,
        description="Per tag, the share of the value's contexts (its last novelty_orders coarse values) that did "
        "not predict it or are new; joins the per-tag score by maximum (opens alerts only with "
        "novelty_opens_alerts).",
    )
    novelty_bins: int = Field(default=8, ge=2, le=60, description="Equal cells of the tag's range.")
    novelty_orders: int = Field(
        default=1, ge=1, le=16, description="Longest context: this many coarse values before the new one."
    )
    novelty_range: Literal["expanding", "frozen", "stepped"] = Field(
        default="stepped",
        description="The range the cells divide: expanding (the smallest and largest value seen so far), frozen "
        "(those of the first novelty_warmup_steps values, with an open cell below and above) or stepped (expanding "
        "during the warm-up, then a new extreme moves the range's end novelty_range_step of its width beyond it).",
    )
    novelty_range_step: float = Field(
        default=0.25, gt=0, le=10, description="stepped range: how far beyond a new extreme its end moves (widths)."
    )
    novelty_outer_cells: int = Field(
        default=1,
        ge=1,
        le=29,
        description="frozen range: cells of the range's cell width below and above it (the last one open), where "
        "new extremes land.",
    )
    novelty_requantise: bool = Field(
        default=True,
        description="expanding or stepped range: when the range moves, each learned cell becomes the new cell of "
        "its centre (contexts and what they predicted), instead of keeping a number that now means other values.",
    )
    novelty_warmup_steps: int = Field(default=100, ge=1, description="Values a tag has before it is scored.")
    novelty_max_contexts: int = Field(
        default=10_000, ge=16, description="Contexts remembered per tag (then only known ones learn new values)."
    )
    novelty_opens_alerts: bool = Field(
        default=False,
        description="Whether novelty's flags open contextual_novelty alerts; without, it only joins the per-tag "
        "score (what evaluations record and the per-tag score gauges show).",
    )
    novelty_flag_score: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="A tick is anomalous (towards opening a contextual_novelty alert) when its novelty reaches this.",
    )
    # Drift against an old forecast (detectors/horizon.py): the residual of the forecast made horizon_steps ago.
    horizon_enabled: bool = Field(
        default=False,
        description="Per tag, the value against the forecast made horizon_steps ticks ago (a slow drift "
        "accumulates there instead of being followed), calibrated as the residual surprise; joins by maximum.",
    )
    horizon_steps: int = Field(
        default=16, ge=2, le=1024, description="How many ticks ago that forecast was made (at most its horizon)."
    )
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
    asset_estimate_holdoff_steps: int = Field(
        default=0,
        ge=0,
        le=86400,
        description="For this many ticks after the last tick any alert was open on an asset, its tags' estimate "
        "residual neither flags nor learns: the estimate's reference (the tags' recent contexts) still holds the "
        "fault's values, a recovery transient longer than the fault (docs/results/chiller-detection/"
        "residual-energy/). 0: off.",
    )
    residual_energy_window_steps: int = Field(
        default=0,
        ge=0,
        le=86400,
        description="Per tag, the forecast residual's mean square over this many ticks, scored against its usual "
        "value (detect/detectors/residual_energy.py): a frozen transmitter's residual collapses towards zero, "
        "which no per-tick score of a large residual sees (docs/results/chiller-detection/residual-energy/). "
        "0: off.",
    )
    residual_energy_max_resolution_variances: float = Field(
        default=0.0,
        ge=0,
        description="With residual_energy_window_steps: flag only while the window's mean square residual is also "
        "below this many q^2/12 (q: the tag's resolution, min_spread), i.e. no larger than rounding alone leaves: "
        "a frozen value, not a calm spell (docs/results/chiller-detection/residual-energy/). 0: the calibrated "
        "score alone.",
    )
    residual_energy_sides: Literal["low", "both"] = Field(
        default="low",
        description="Which windows of residual_energy_window_steps score: 'low' only those quieter than usual (a "
        "frozen or over-smoothed value; the loud side is the per-tick residual's), 'both' either way.",
    )
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
        return self
