"""The asset rules of ``[[detect.assets]]``: energy balance, learned relations, operating modes, AHU faults.

Apart from :mod:`.detect` because an asset's rules are configured per asset, the per-tag scoring once for all."""

from __future__ import annotations

from pydantic import Field, model_validator

from .afdd import AfddSettings
from .base import _Section


class EnergyBalanceSettings(_Section):
    """Heat-exchanger energy balance of one asset: power ≈ factor · flow · (hot − cold).

    For the reference chiller: 1.163 kW per (m³/h · K) of water, hot = the water entering
    (supply), cold = the chilled water leaving.  The four tags must share one period.
    """

    flow_tag: str = Field(min_length=1, description="Volume flow, m³/h for the default factor.")
    hot_temp_tag: str = Field(min_length=1, description="The warmer water temperature (a chiller's inlet).")
    cold_temp_tag: str = Field(min_length=1, description="The colder water temperature (a chiller's outlet).")
    power_tag: str = Field(min_length=1, description="Measured thermal power, kW for the default factor.")
    factor: float = Field(
        default=1.163, gt=0, description="Power per (flow unit · K): 1.163 kW per (m³/h · K) for water."
    )
    relative_tolerance: float = Field(
        default=0.1, gt=0, lt=1, description="|power − expected| / expected beyond this is a violation."
    )
    min_expected_power: float = Field(
        default=1.0,
        ge=0,
        description="Below this expected power (power tag units) the balance is not checked: a relative "
        "error of almost nothing is noise.",
    )


class ModeRuleSettings(_Section):
    """One operating-mode rule: the asset is in ``mode`` while ``tag`` is below / above / equal to a value."""

    mode: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$", description="Mode name (a metric label value).")
    tag: str = Field(min_length=1, description="The tag the rule reads (a speed, a flow, a state code).")
    below: float | None = None
    above: float | None = None
    equals: float | None = Field(default=None, description="For state-code tags; compared within 1e-6.")
    detect: bool = Field(
        default=False,
        description="Detect in this mode (a load band): only mode changes hold detection off. "
        "False: detection is paused while in it (stopped, start-up).",
    )

    @model_validator(mode="after")
    def _one_condition(self) -> ModeRuleSettings:
        given = [n for n in ("below", "above", "equals") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"a mode rule needs exactly one of below, above, equals (got {given or 'none'})")
        if self.mode == "running":
            raise ValueError("'running' is the mode when no rule matches; name the rule's mode otherwise")
        return self


class RelationSettings(_Section):
    """A virtual sensor: ``target`` predicted from ``inputs`` of the same asset, its residual scored.

    An online least-squares fit (exponential forgetting, ``memory_s``) learned only on
    ticks it is confident are normal: no tag of the relation gated (data quality, mode,
    maintenance), no open alert on the asset, the tick's own |z| below ``learn_below_z``.
    It flags a tick when the target leaves what the inputs imply by more than
    ``z_threshold`` residual spreads, and alerts through the usual k of n.

    Physics decides the form.  ``fit_intercept = false`` (the default) fits
    ``target = Σ wᵢ · inputᵢ``: a target *proportional* to its inputs, as the pump
    affinity law makes a pump's flow proportional to its speed and a chiller's cooling
    capacity proportional to its pumps' speeds.  Learned at one operating point, such a
    relation holds across the load cycle; with an intercept the slope is only as good as
    the load range the learning saw, and extrapolates poorly.
    """

    target: str = Field(min_length=1, description="The tag predicted (the virtual sensor's measured twin).")
    inputs: tuple[str, ...] = Field(min_length=1, description="Tags it is predicted from (same asset and period).")
    fit_intercept: bool = Field(
        default=False,
        description="Fit a constant too; False: the target is proportional to the inputs (zero when they are).",
    )
    z_threshold: float = Field(
        default=6.0, gt=0, description="|residual| beyond this many residual spreads is an anomalous tick."
    )
    learn_below_z: float = Field(
        default=4.0,
        gt=0,
        description="Only ticks with |residual| below this many spreads are learned from: a fault that ramps in "
        "is not absorbed as the new normal.",
    )
    warmup_steps: int = Field(
        default=300, ge=10, description="Ticks learned from before the relation scores (no alert meanwhile)."
    )
    memory_s: float = Field(
        default=604_800.0,
        gt=0,
        description="Time constant of the exponential forgetting of learned ticks (default a week): slow "
        "harmless change (wear, a recalibration) is followed, a fault developing over minutes or hours is not. "
        "Wear runs in wall time, so this is in seconds; memory_min_periods bounds it from below.",
    )
    memory_min_periods: float = Field(
        default=3000.0,
        ge=0,
        description="The memory is at least this many periods of the relation's tags: 3000, ten default "
        "warm-ups, keeps the fit an average of many ticks. Binds only for periods over ~3.4 min "
        "(a week is 604,800 ticks at 1 s, unchanged; 168 at 1 h, raised to 3000 h). 0: no floor.",
    )

    @model_validator(mode="after")
    def _target_not_input(self) -> RelationSettings:
        if self.target in self.inputs:
            raise ValueError(f"relation target {self.target!r} cannot be one of its own inputs")
        if len(set(self.inputs)) != len(self.inputs):
            raise ValueError(f"relation of {self.target!r}: an input is listed twice")
        return self


class AssetDetectSettings(_Section):
    """Asset-level rules: the energy balance, the learned relations and the operating modes of one asset."""

    name: str = Field(min_length=1, description="The asset (as in tags[].asset).")
    energy_balance: EnergyBalanceSettings | None = None
    afdd: AfddSettings | None = Field(
        default=None, description="An air-handling unit's fault conditions after ASHRAE Guideline 36 (its points)."
    )
    relations: tuple[RelationSettings, ...] = Field(
        default=(),
        description="Virtual sensors: a tag predicted from other tags of the asset, learned on normal ticks.",
    )
    modes: tuple[ModeRuleSettings, ...] = Field(
        default=(),
        description="Checked in order, the first rule that matches gives the mode; none: 'running'.",
    )
    mode_holdoff_s: float = Field(
        default=300.0,
        ge=0,
        description="After any mode change, detection on the asset waits this long (transients of a "
        "start or a load change are not faults); detectors do not learn meanwhile. A transient runs in "
        "process time, so this is in seconds; mode_holdoff_min_periods bounds it from below.",
    )
    mode_holdoff_min_periods: float = Field(
        default=5.0,
        ge=0,
        description="The hold-off lasts at least this many periods of the asset's slowest tag: 5, the "
        "default open_n, so no k-of-n window holds a tick forecast from before the change "
        "(300 s on 1 s data, unchanged; 5 h on hourly data). 0: no floor.",
    )
