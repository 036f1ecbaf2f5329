"""``[detect]``, per-tag scoring: the calibrated surprise, its rests and floors, the distribution, novelty and
horizon checks.

A part of :class:`.detect.DetectSettings`, kept in its own module for size only: the keys stay flat
(``detect.score_threshold``), so configs written for one flat section still load.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import _Section


class _TagScoring(_Section):
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
    score_rest_escalate: Literal["off", "any", "excursion", "margin"] = Field(
        default="off",
        description="During a rest period, a score higher than every score published since the rest began is "
        "published and restarts the rest (detect/rest.py): an event ranks by its strongest evidence, not its first "
        "(a residual onset of 0.46 no longer hides a novelty of 1.0 eighty ticks later). any: every such score; "
        "excursion: only one that starts a new excursion (the tick before scored below score_rest_level), not the "
        "novelty of the tick after a spike, which reads the spike itself; margin: excursion, and only a score above "
        "the best published by at least score_rest_level (decisive evidence, not a first score rounded up). Flags "
        "and alerts do not read it.",
    )
    score_tail_calibration: bool = Field(
        default=False,
        description="Bound each tick's surprise by the tag's own record: -log10 of the rate of excursions of that "
        "size it made over score_memory_steps (detect/tail.py), so a held control signal's daily commanded step "
        "or a ramp the forecast lags every day is not an alarm; an excursion larger than any recent one still is.",
    )
    score_published_tail: bool = Field(
        default=False,
        description="Bound the published per-tag score's surprise (not the flag's) by the tag's own record, as "
        "score_tail_calibration does (detect/tail.py): a forecaster whose residual tail is heavier than a normal "
        "law's (a band over-sure at the moment the value moves) publishes an excursion of a size this tag makes "
        "often at what its rate says, and its refractory peak remembers that, not tens of decades. Flags and alerts "
        "do not read it.",
    )
    score_published_tail_floor_sigmas: float = Field(
        default=0.0,
        ge=0,
        le=8,
        description="score_published_tail: the bound never takes the published surprise below a normal tail of this "
        "many calibrated sigmas (0: no floor), so it acts only on surprises beyond that size, where a heavy tail's "
        "excess lies, and leaves moderate ones as they are.",
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
    score_band_calibration: Literal["off", "tag", "width"] = Field(
        default="off",
        description="Widen each tag's forecast band by a factor (>= 1) learned online from its realised coverage "
        "(adaptive conformal inference on the share of values outside the outer quantiles, over score_memory_steps; "
        "detect/conformal.py), so a band that is over-sure is scored as wide as it has proven to be. tag: one factor "
        "per tag; width: one per tag and per octave of the band's width against the tag's typical width (a "
        "forecaster whose narrow bands are over-sure is widened there only). off: the band as forecast.",
    )
    score_seasonal_repeat_periods: int = Field(
        default=0,
        ge=0,
        le=4,
        description="Discount the published per-tag score of a surprise this tag made at the same phase in each of "
        "the last this many periods (detect/seasonal.py): only surprise beyond the smallest of those periods' "
        "largest surprises near this phase (when that reaches the flag's) is published, so a spike the tag makes "
        "every day scores ~0 and a new one in full. Flags and alerts do not read it. 0: off.",
    )
    score_seasonal_repeat_period_s: float = Field(
        default=86400.0,
        gt=0,
        description="score_seasonal_repeat_periods: the period in wall-clock seconds (a day).",
    )
    score_seasonal_repeat_tolerance_s: float = Field(
        default=3600.0,
        gt=0,
        description="score_seasonal_repeat_periods: the phase tolerance in seconds (the width of the bins the largest "
        "surprises are kept in; a repeat is looked for in the bin of t - k period and its two neighbours, so at "
        "least this much jitter either way is tolerated, at most twice it); at most a quarter of the period.",
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
    # A frozen value's residual (detectors/residual_energy.py).
    residual_energy_window_steps: int = Field(
        default=0,
        ge=0,
        le=86400,
        description="Per tag, the forecast residual's mean square over this many ticks, scored against its usual "
        "value (detect/detectors/residual_energy.py): a frozen transmitter's residual collapses towards zero, "
        "which no per-tick score of a large residual sees (docs/results/chiller-detection/residual-energy.md). "
        "0: off.",
    )
    residual_energy_max_resolution_variances: float = Field(
        default=0.0,
        ge=0,
        description="With residual_energy_window_steps: flag only while the window's mean square residual is also "
        "below this many q^2/12 (q: the tag's resolution, min_spread), i.e. no larger than rounding alone leaves: "
        "a frozen value, not a calm spell (docs/results/chiller-detection/residual-energy.md). 0: the calibrated "
        "score alone.",
    )
    residual_energy_sides: Literal["low", "both"] = Field(
        default="low",
        description="Which windows of residual_energy_window_steps score: 'low' only those quieter than usual (a "
        "frozen or over-smoothed value; the loud side is the per-tick residual's), 'both' either way.",
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
