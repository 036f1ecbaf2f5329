"""The one settings tree of sentinelle.

Loaded from a TOML file (``config/sentinelle.toml`` documents every field) and
overridden by environment variables with the prefix ``SENTINELLE_`` and ``__``
between levels, e.g. ``SENTINELLE_KAFKA__BOOTSTRAP_SERVERS=127.0.0.1:9092`` or
``SENTINELLE_SOURCES__0__URL=...`` (one field of the file's first source), and by
secret files (systemd's ``LoadCredential=``, ``daemon.secrets_dir``): how these
layers merge is :mod:`sentinelle.settings_sources`.  Units are part of field names
(``period_s``, ``max_wait_ms``).  Everything is validated before anything starts;
:func:`load_settings` turns every problem into a :class:`~sentinelle.errors.ConfigError`
naming the field, list items by their name (``tags[chiller1.chw_temp_c].period_s``).
"""

from __future__ import annotations

import datetime as dt
import math
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from . import settings_sources
from .config_checks import BootstrapServers
from .errors import ConfigError

FaultKind = Literal[
    "pump_degradation",
    "sensor_drift",
    "stuck_sensor",
    "spike",
    "setpoint_violation",
    "fouling",
    "control_oscillation",
]


class _Section(BaseModel):
    # Unknown keys are errors: a typo in a config file must not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class TagSettings(_Section):
    """One monitored tag: where it comes from, what it belongs to, its limits."""

    name: str = Field(min_length=1, description="Unique tag name, e.g. chiller1.chw_temp_c.")
    asset: str = Field(min_length=1, description="Asset the tag belongs to; alerts are keyed by it.")
    node_id: str = Field(min_length=1, description="OPC-UA node id, e.g. ns=2;s=chiller1.chw_temp_c.")
    source: str = Field(default="plant", description="Name of the OPC-UA server in [[sources]].")
    unit: str = ""
    period_s: float = Field(default=1.0, gt=0, description="Resampling period of the tag.")
    low_limit: float | None = Field(default=None, description="Static low limit (alert below).")
    high_limit: float | None = Field(default=None, description="Static high limit (alert above).")
    limit_deadband: float = Field(
        default=0.0, ge=0, description="A limit alert clears only this far back inside the limit."
    )
    min_spread: float = Field(
        default=0.0,
        ge=0,
        description="Smallest forecast spread (tag units) used to scale residuals: the sensor resolution.",
    )
    rate_limit_per_s: float | None = Field(
        default=None,
        gt=0,
        description="Largest plausible |rate of change| (tag units per second); faster for open_k of "
        "open_n ticks opens a rate_of_change alert. None: not checked.",
    )
    rate_window_s: float | None = Field(
        default=None,
        gt=0,
        description="The rate is measured over this span (rounded to whole periods); None: one period.",
    )
    stuck_check: bool | None = Field(
        default=None,
        description="Check the tag for stuck (data quality): only for tags that normally move, never set "
        "points or state codes. None: checked when stuck_after_s is given.",
    )
    stuck_after_s: float | None = Field(
        default=None,
        gt=0,
        description="A checked tag is stuck when it stays within stuck_tolerance of one value for this long "
        "(giving it turns the check on). None: detect.stuck_after_periods periods of the tag.",
    )
    stuck_tolerance: float = Field(
        default=0.0, ge=0, description="Changes up to this (tag units) do not count as movement."
    )
    spike_factor: float | None = Field(
        default=None,
        gt=0,
        description="A jump from the previous value larger than this many robust standard deviations of "
        "the tag's recent steps, back within detect.spike_max_steps, is a spike (data quality). None: not checked.",
    )

    @model_validator(mode="after")
    def _limits_ordered(self) -> TagSettings:
        if self.stuck_check is False and self.stuck_after_s is not None:
            raise ValueError("stuck_after_s is given but stuck_check is false; drop one of them")
        if self.low_limit is not None and self.high_limit is not None and self.low_limit >= self.high_limit:
            raise ValueError(f"low_limit ({self.low_limit}) must be below high_limit ({self.high_limit})")
        for name in ("low_limit", "high_limit"):
            v = getattr(self, name)
            if v is not None and not math.isfinite(v):
                raise ValueError(f"{name} must be finite")
        return self


OpcUaSecurityPolicy = Literal["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"]


class OpcUaSourceSettings(_Section):
    """One OPC-UA server; all its tags go into one subscription."""

    name: str = Field(default="plant", min_length=1)
    url: str = Field(default="opc.tcp://127.0.0.1:4840/sentinelle/", pattern=r"^opc\.tcp://")
    publishing_interval_ms: float = Field(default=250.0, gt=0)
    sampling_interval_ms: float = Field(default=0.0, ge=0, description="0: the server's fastest.")
    queue_size: int = Field(
        default=4, ge=1, description="Values the server queues per tag between publishes (oldest discarded)."
    )
    report_unchanged: bool = Field(
        default=True,
        description="Notify on every new source timestamp, even with an unchanged value "
        "(DataChangeTrigger StatusValueTimestamp): a frozen sensor then shows as a flat line, not a gap.",
    )
    connect_timeout_s: float = Field(default=4.0, gt=0)
    reconnect_initial_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=15.0, gt=0)
    required_at_start: bool = Field(
        default=False,
        description="Exit 69 when the server is unreachable at start instead of retrying in the background.",
    )
    username: str | None = Field(
        default=None, description="User name token; None: anonymous (or user_certificate_path)."
    )
    password: SecretStr | None = Field(
        default=None,
        description="Best kept out of the file: a secret file sources.<name>.password (LoadCredential=, "
        "daemon.secrets_dir) or SENTINELLE_SOURCES__<index>__PASSWORD.",
    )
    security_policy: OpcUaSecurityPolicy = Field(
        default="None",
        description="None, Basic256Sha256, Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss; "
        "anything but None needs certificate_path, private_key_path and trusted_server_certs_dir.",
    )
    security_mode: Literal["Sign", "SignAndEncrypt"] = "SignAndEncrypt"
    certificate_path: Path | None = Field(
        default=None, description="This client's application instance certificate (DER or PEM; `sentinelle make-cert`)."
    )
    private_key_path: Path | None = Field(default=None, description="Its private key (PEM).")
    private_key_password: SecretStr | None = Field(
        default=None, description="Only for an encrypted key; a secret file sources.<name>.private_key_password."
    )
    trusted_server_certs_dir: Path | None = Field(
        default=None,
        description="Folder of trusted server (or CA) certificates, *.der / *.pem; a server whose certificate "
        "is not trusted by one of them is refused (no trust on first use).",
    )
    user_certificate_path: Path | None = Field(
        default=None, description="X.509 user identity token instead of a user name (with user_private_key_path)."
    )
    user_private_key_path: Path | None = None

    @model_validator(mode="after")
    def _security_complete(self) -> OpcUaSourceSettings:
        if self.security_policy != "None":
            for name in ("certificate_path", "private_key_path", "trusted_server_certs_dir"):
                if getattr(self, name) is None:
                    raise ValueError(f"{name}: required with security_policy {self.security_policy!r}")
        if (self.user_certificate_path is None) != (self.user_private_key_path is None):
            raise ValueError("user_certificate_path and user_private_key_path: set both or neither")
        if self.user_certificate_path is not None and self.username is not None:
            raise ValueError("username and user_certificate_path: one user identity token, not both")
        if self.user_certificate_path is not None and self.security_policy == "None":
            raise ValueError("user_certificate_path: an X.509 user token needs a security_policy other than None")
        return self


class WindowSettings(_Section):
    """Resampling into slots.  Each time constant is given in seconds, or (the default, None) as a
    number of periods of the tag's group, so one configuration serves 1 s and 1 h data alike
    (resolved per group by :mod:`sentinelle.timing`)."""

    context_steps: int = Field(default=512, ge=8, le=8192, description="Slots kept per tag.")
    allowed_lateness_s: float | None = Field(
        default=None,
        ge=0,
        description="How long a slot waits for late samples before it closes (event time). None: "
        "allowed_lateness_periods periods. Size it to the longest burst a server publishes at once.",
    )
    allowed_lateness_periods: float = Field(
        default=1.0,
        ge=0,
        description="Default lateness in periods: 1 lets the samples of one slot from several servers meet "
        "(1 s on 1 s data, as before). A server that flushes bursts (a reconnect, a buffered gateway) needs "
        "allowed_lateness_s of the burst's length.",
    )
    max_hold_s: float | None = Field(
        default=None,
        gt=0,
        description="A tag keeps its last value this long without a new sample (OPC-UA reports changes "
        "only); older, the slot is a gap. None: max_hold_periods periods.",
    )
    max_hold_periods: float = Field(
        default=30.0,
        gt=1,
        description="Default hold in periods: a value inside a server's deadband goes unreported for many "
        "periods, and a jittered sample arrives up to a period late; 30 (30 s on 1 s data, as before; 30 h "
        "on hourly data) covers both. Must exceed 1: a hold of one period turns every late sample into a gap.",
    )
    idle_close_s: float | None = Field(
        default=None,
        gt=0,
        description="If no sample arrives for this long (wall clock), slots are closed by the clock. "
        "None: idle_close_periods periods.",
    )
    idle_close_periods: float = Field(
        default=2.0,
        gt=0,
        description="Default idle close in periods: 2 (2 s on 1 s data, as before) lets one sample be "
        "missed before the clock takes over.",
    )


class ForecastSettings(_Section):
    forecaster: Literal["naive", "seasonal_naive", "holt", "model"] = Field(
        default="model",
        description="model: our time-series transformer (the shipped checkpoint unless model_path is set); "
        "holt, naive, seasonal_naive: baselines, also the fallback when the model cannot be loaded.",
    )
    horizon_steps: int = Field(default=16, ge=1, le=1024)
    season_steps: int = Field(default=0, ge=0, description="Season length for seasonal_naive (0: last value).")
    quantile_levels: tuple[float, ...] = (0.1, 0.5, 0.9)
    holt_alpha: float = Field(default=0.3, gt=0, le=1)
    holt_beta: float = Field(default=0.05, ge=0, le=1)
    holt_damping: float = Field(default=0.9, gt=0, le=1)
    max_batch: int = Field(default=4096, ge=1)
    max_wait_ms: float = Field(default=20.0, ge=0)
    refresh_every_steps: int = Field(
        default=1,
        ge=1,
        description="Forecast each tag every R ticks (a rotating 1/R of the tags per tick) and use the "
        "earlier multi-step forecast in between: how a model too slow for every tag every tick keeps up.",
    )
    fallback_retry_s: float = Field(
        default=300.0,
        gt=0,
        description="After the forecaster fails a whole call, its baseline forecasts for this long before the "
        "forecaster is tried again; the wait doubles after each failed retry.",
    )
    fallback_retry_max_s: float = Field(
        default=3600.0, gt=0, description="Longest wait between retries of a failing forecaster."
    )
    model_path: Path | None = Field(
        default=None,
        description="Local checkpoint directory (config.json + model.safetensors); "
        "None: the checkpoint shipped in the package.",
    )
    model_device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="auto: CUDA (bfloat16) when available, else the CPU (float32)."
    )
    model_max_batch: int = Field(default=1024, ge=1, description="Windows per forward pass of the model.")
    model_threads: int | None = Field(
        default=None, ge=1, description="Torch CPU threads for the whole process; None: torch's default."
    )
    adapters_dir: Path | None = Field(
        default=None,
        description="Per-asset LoRA adapters of the model (<adapters_dir>/<asset>/, written by "
        "`sentinelle finetune`); an asset without one, or with one that fails its checks, uses the base model. "
        "None: the base model for every asset.",
    )

    @model_validator(mode="after")
    def _levels_valid(self) -> ForecastSettings:
        lv = self.quantile_levels
        if not lv or any(not 0 < q < 1 for q in lv) or list(lv) != sorted(set(lv)):
            raise ValueError("quantile_levels must be strictly increasing values in (0, 1)")
        if 0.5 not in lv:
            raise ValueError("quantile_levels must contain 0.5 (the point forecast)")
        if self.refresh_every_steps > self.horizon_steps:
            raise ValueError(
                f"refresh_every_steps ({self.refresh_every_steps}) must not exceed horizon_steps "
                f"({self.horizon_steps}): a tag's forecast must reach its next refresh"
            )
        return self


class FinetuneSettings(_Section):
    """How ``sentinelle finetune`` adapts the model to one asset's history (LoRA, early stopping).

    Windows are cut from the asset's own tags; the newest ``validation_fraction``
    of each series is kept for validation and never trained on, so the scores in
    the adapter's manifest are out of sample.
    """

    rank: int = Field(default=8, ge=1, le=256, description="LoRA rank r.")
    alpha: int = Field(default=16, ge=1, description="LoRA scaling numerator (the update is scaled by alpha/r).")
    lora_dropout: float = Field(default=0.0, ge=0, lt=1)
    target_modules: tuple[str, ...] = Field(
        default=("q_proj", "v_proj", "o_proj", "up_proj", "down_proj"),
        min_length=1,
        description="Linear layers of the model that get LoRA weights (names or dotted suffixes, e.g. "
        "head.output_layer).",
    )
    learning_rate: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    batch_size: int = Field(default=32, ge=1)
    max_steps: int = Field(default=400, ge=1, description="Upper bound; early stopping usually ends sooner.")
    eval_every_steps: int = Field(default=25, ge=1)
    patience_evals: int = Field(
        default=4, ge=1, description="Stop after this many validations in a row without a better validation loss."
    )
    validation_fraction: float = Field(default=0.2, gt=0, lt=1, description="Newest share of each series.")
    validation_windows: int = Field(default=256, ge=1, description="Most validation windows (evenly spaced).")
    min_context_steps: int = Field(default=32, ge=2, description="Fewest steps of history before an origin.")
    label_clip: float = Field(default=50.0, gt=0, description="Scaled targets are clipped to ±this (as pretraining).")
    season_steps: int = Field(default=1, ge=1, description="Season of the MASE scale in the validation scores.")
    seed: int = Field(default=0, ge=0)
    threads: int = Field(default=2, ge=1, description="Torch CPU threads during fine-tuning.")
    max_minutes: float | None = Field(default=None, gt=0, description="Wall-clock budget; the best adapter is kept.")


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
    score_likelihood_short_steps: int = Field(
        default=10, ge=1, description="score_method likelihood: ticks in the short-term mean of the score ..."
    )
    score_likelihood_memory_steps: int = Field(
        default=1000, ge=2, description="... judged against its distribution over about this many ticks."
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
        default=True,
        description="Per tag, the recent window's value distribution against a forgetting reference (relative "
        "entropy, calibrated as the residual surprise); its score joins the residual's (maximum).",
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
    # Drift against an old forecast (detectors/horizon.py): the residual of the forecast made horizon_steps ago.
    horizon_enabled: bool = Field(
        default=False,
        description="Per tag, the value against the forecast made horizon_steps ticks ago (a slow drift "
        "accumulates there instead of being followed), calibrated as the residual surprise; joins by maximum.",
    )
    horizon_steps: int = Field(
        default=16, ge=2, le=1024, description="How many ticks ago that forecast was made (at most its horizon)."
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
    assets: tuple[AssetDetectSettings, ...] = Field(
        default=(), description="Per-asset rules: energy balance, relations, operating modes."
    )

    @model_validator(mode="after")
    def _k_le_n(self) -> DetectSettings:
        if self.open_k > self.open_n:
            raise ValueError(f"open_k ({self.open_k}) must not exceed open_n ({self.open_n})")
        return self


class KafkaSettings(_Section):
    enabled: bool = True
    bootstrap_servers: BootstrapServers = Field(
        default="127.0.0.1:9092", description="host:port[,host:port...]; IPv6 addresses in brackets: [::1]:9092."
    )
    topic: str = Field(default="sentinelle.alerts", pattern=r"^[A-Za-z0-9._-]{1,249}$")
    client_id: str = "sentinelle"
    required_at_start: bool = True
    request_timeout_ms: int = Field(default=10_000, ge=100)
    linger_ms: int = Field(default=5, ge=0)
    max_pending_events: int = Field(default=10_000, ge=1, description="Bound of the in-memory send queue.")
    spool_dir: Path | None = Field(
        default=Path("/var/lib/sentinelle/spool"),
        description="On-disk spool of events Kafka has not acknowledged (on stop, and in outages longer than "
        "spool_after_s); sent on recovery or the next start. Under systemd's StateDirectory. None: no spool, "
        "undelivered events are dropped at stop (counted, exit 75).",
    )

    spool_max_bytes: int = Field(
        default=256 * 1024 * 1024, ge=4096, description="Bound of the spool's files; overflow drops the oldest."
    )
    spool_after_s: float = Field(
        default=30.0,
        gt=0,
        description="Write pending events to the spool once Kafka has not acknowledged any this long.",
    )
    spool_fsync: Literal["always", "never"] = Field(
        default="always",
        description="always: every spool write reaches the disk before it counts; never: the OS decides.",
    )

    @field_validator("spool_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        """TOML has no null: ``spool_dir = ""`` turns the spool off."""
        return None if value == "" else value

    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_SSL"] = Field(
        default="PLAINTEXT",
        description="For the alert producer and the command consumer alike. SSL: TLS (with ssl_certificate_path "
        "for a client certificate); SASL_SSL: TLS plus a SASL user.",
    )
    sasl_mechanism: Literal["SCRAM-SHA-512", "PLAIN"] = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = Field(
        default=None, description="A secret file kafka.sasl_password (LoadCredential=, daemon.secrets_dir)."
    )
    ssl_ca_path: Path | None = Field(
        default=None, description="CA certificate(s) (PEM) the broker's certificate must chain to; None: the system's."
    )
    ssl_certificate_path: Path | None = Field(default=None, description="Client certificate (PEM), mutual TLS.")
    ssl_key_path: Path | None = Field(default=None, description="Its private key (PEM).")
    ssl_key_password: SecretStr | None = None
    ssl_check_hostname: bool = Field(default=True, description="The broker's certificate must name its host.")

    @model_validator(mode="after")
    def _security_complete(self) -> KafkaSettings:
        if self.security_protocol == "SASL_SSL" and (self.sasl_username is None or self.sasl_password is None):
            raise ValueError("sasl_username and sasl_password: required with security_protocol SASL_SSL")
        if (self.ssl_certificate_path is None) != (self.ssl_key_path is None):
            raise ValueError("ssl_certificate_path and ssl_key_path: set both or neither")
        if self.security_protocol == "PLAINTEXT":
            for name in ("sasl_username", "ssl_ca_path", "ssl_certificate_path"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}: set, but security_protocol is PLAINTEXT (no TLS, no SASL)")
        return self


class CommandSettings(_Section):
    """Operator commands on Kafka (``sources/commands.py``): maintenance, acknowledgements; cluster of ``[kafka]``."""

    enabled: bool = Field(
        default=False,
        description="Read operator commands. Off by default: it is an inbound control path, so restrict who may "
        "write to the topic (Kafka ACLs) before turning it on.",
    )
    topic: str = Field(default="sentinelle.commands", pattern=r"^[A-Za-z0-9._-]{1,249}$")
    reply_topic: str = Field(default="sentinelle.command-replies", pattern=r"^[A-Za-z0-9._-]{1,249}$")
    group_id: str = Field(
        default="sentinelle",
        min_length=1,
        description="Consumer group that stores this daemon's offsets (only those); one per daemon instance.",
    )
    max_maintenance_s: float = Field(
        default=7 * 86_400.0,
        gt=0,
        description="Longest maintenance window a command may open (until - issued_at). Keep the topic's "
        "retention longer: the daemon rebuilds its maintenance state from the topic at start.",
    )


class MaintenanceWindowSettings(_Section):
    """A planned maintenance window of one asset: ``[start, end)``, compared with the tags' source timestamps."""

    asset: str = Field(min_length=1)
    start: AwareDatetime = Field(description="With a zone: a TOML offset date-time, e.g. 2026-12-01T06:00:00Z.")
    end: AwareDatetime
    reason: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> MaintenanceWindowSettings:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end.isoformat()}) must be later than start ({self.start.isoformat()})")
        return self


class MaintenanceSettings(_Section):
    """Planned maintenance (``detect/maintenance.py``); operators add windows with commands (``[commands]``)."""

    windows: tuple[MaintenanceWindowSettings, ...] = ()


class PrometheusSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9108, ge=0, le=65535, description="0: pick a free port (tests).")


class ConsoleSettings(_Section):
    jsonl_path: Path | None = Field(default=None, description="Append alert events as JSON lines here.")
    live_view: bool = Field(default=False, description="Redraw a per-tag table on the terminal.")
    live_view_interval_s: float = Field(default=1.0, gt=0)


class DaemonSettings(_Section):
    shutdown_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Grace for draining and flushing at stop; then undelivered alerts go to the spool. Keep it a "
        "few seconds under the unit's TimeoutStopSec (30 s).",
    )
    samples_queue_size: int = Field(default=200_000, ge=1, description="Overflow drops the oldest, counted.")
    stage_queue_size: int = Field(default=64, ge=1, description="Batches between stages; full queues block.")
    watchdog_interval_s: float = Field(default=5.0, gt=0, description="Used when systemd gives no WATCHDOG_USEC.")
    secrets_dir: Path | None = Field(
        default=None,
        description="A folder of secret files named by field path (sources.plant.password); systemd's "
        "$CREDENTIALS_DIRECTORY is read as well (and wins).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class FaultSettings(_Section):
    """A fault the simulator injects, with its ground truth written to a file."""

    kind: FaultKind
    onset_s: float = Field(ge=0, description="Simulated seconds after the simulator's start.")
    duration_s: float = Field(gt=0)
    tag: str | None = Field(default=None, description="Affected tag (short name, e.g. chw_temp_c) where it applies.")
    magnitude: float | None = Field(default=None, description="Fault size in the tag's units; None: a typical size.")


class SimulatorSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=4840, ge=0, le=65535, description="0: pick a free port.")
    asset: str = Field(default="chiller1", min_length=1)
    sample_period_s: float = Field(default=1.0, gt=0, description="Simulated seconds between samples.")
    time_scale: float = Field(default=1.0, gt=0, description="Simulated seconds per real second.")
    start_ts: float | None = Field(default=None, description="Simulated start, epoch seconds; None: now.")
    seed: int = 0
    flow_m3h: float = Field(default=60.0, gt=0)
    chw_setpoint_c: float = 5.0
    supply_temp_mean_c: float = 12.0
    daily_load_amplitude_c: float = Field(default=1.5, ge=0)
    noise_scale: float = Field(default=1.0, ge=0, description="Multiplier of the sensor noise levels.")
    faults: tuple[FaultSettings, ...] = ()
    ground_truth_path: Path | None = Field(
        default=None, description="Write injected fault intervals here (JSON lines)."
    )
    extra_tags: int = Field(default=0, ge=0, description="Synthetic extra tags (benchmarks).")
    security_policies: tuple[OpcUaSecurityPolicy, ...] = Field(
        default=("None",),
        min_length=1,
        description="Endpoints offered; each policy but None with both Sign and SignAndEncrypt.",
    )
    certificate_path: Path | None = Field(default=None, description="Server certificate (DER or PEM).")
    private_key_path: Path | None = Field(default=None, description="Its private key (PEM).")
    trusted_client_certs_dir: Path | None = Field(
        default=None, description="Client certificates accepted on secured endpoints (*.der / *.pem)."
    )
    username: str | None = Field(default=None, description="Require this user (with password); None: anonymous.")
    user_certificates_dir: Path | None = Field(
        default=None,
        description="X.509 user certificates accepted as user identity tokens (*.der / *.pem); "
        "needs a secured endpoint. With neither this nor username: anonymous.",
    )
    password: SecretStr | None = None

    @model_validator(mode="after")
    def _security_complete(self) -> SimulatorSettings:
        if any(p != "None" for p in self.security_policies):
            for name in ("certificate_path", "private_key_path", "trusted_client_certs_dir"):
                if getattr(self, name) is None:
                    raise ValueError(f"{name}: required when security_policies offers a secured endpoint")
        if self.user_certificates_dir is not None and all(p == "None" for p in self.security_policies):
            raise ValueError("user_certificates_dir: X.509 user tokens need a secured endpoint in security_policies")
        # A password alone is allowed: it may come from the environment while --username comes later.
        if self.username is not None and self.password is None:
            raise ValueError("username: set without a password (SENTINELLE_SIMULATOR__PASSWORD)")
        return self


_SQL_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
_SQL_NAME = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$"
"""Table and column names are quoted into SQL, so only plain identifiers are accepted."""
HistoryKind = Literal["csv_events", "csv_wide", "parquet", "postgres"]


class _HistorySource(_Section):
    """What every history source shares: a name, the zone of naive dates, the tag-name map."""

    kind: HistoryKind
    name: str | None = Field(default=None, min_length=1, description="Label in metrics and logs; default: the kind.")
    timezone: str = Field(
        default="UTC", description="IANA zone of dates written without an offset (e.g. Europe/Paris)."
    )
    tag_map: dict[str, str] = Field(
        default_factory=dict,
        description="Name in the export (column or parameter name) → configured tag name; "
        "names not listed are used as they are.",
    )
    deadband: float | dict[str, float] | None = Field(
        default=None,
        description="The export's deadband (tag units): one value for every tag or a map configured tag → value; "
        "overrides the estimate from the export's own steps (tags not in the map keep the estimate).",
    )

    @property
    def label(self) -> str:
        return self.name or self.kind

    @model_validator(mode="after")
    def _deadband_valid(self) -> _HistorySource:
        values = self.deadband.values() if isinstance(self.deadband, dict) else [self.deadband]
        for value in values:
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"deadband: {value} is not a finite number >= 0")
        return self

    @model_validator(mode="after")
    def _zone_known(self) -> _HistorySource:
        import zoneinfo

        if self.timezone != "UTC":
            try:
                zoneinfo.ZoneInfo(self.timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"timezone: unknown time zone {self.timezone!r}") from None
        return self


class _CsvSource(_HistorySource):
    path: Path = Field(description="The CSV export.")
    delimiter: Literal["auto", ",", ";", "\t"] = Field(
        default="auto", description="auto: ';' if the header line has one, else a tab if it has one, else ','."
    )
    encoding: str = Field(default="utf-8", description="Text encoding; a UTF-8 byte-order mark is always skipped.")


class CsvEventsSource(_CsvSource):
    """The event-log export: one row per change — date, parameter name, value (before), new value (after)."""

    kind: Literal["csv_events"] = "csv_events"
    date_column: str = "date"
    tag_column: str = "parameter name"
    value_column: str = Field(default="value", description="The value before the change.")
    new_value_column: str = Field(default="new value", description="The value after the change: the sample.")


class CsvWideSource(_CsvSource):
    """The wide sparse export: a date column, then one column per tag; an empty cell means unchanged."""

    kind: Literal["csv_wide"] = "csv_wide"
    date_column: str | None = Field(default=None, description="None: the first column.")


class ParquetSource(_HistorySource):
    """A Parquet file, long (tag, ts, value[, quality]) or wide (ts, then one column per tag)."""

    kind: Literal["parquet"] = "parquet"
    path: Path
    layout: Literal["long", "wide"] = "long"
    tag_column: str = "tag"
    ts_column: str = "ts"
    value_column: str = "value"
    quality_column: str | None = Field(default="quality", description="Used when the file has it.")


class PostgresSource(_HistorySource):
    """A PostgreSQL historian table (tag, ts, value, quality), read in chunks through a server-side cursor."""

    kind: Literal["postgres"] = "postgres"
    dsn: SecretStr = Field(description="postgresql://user@host:port/database, best without the password.")
    password: SecretStr | None = Field(
        default=None,
        description="The database password; best a secret file history.sources.<name>.password "
        "(LoadCredential=, daemon.secrets_dir) rather than the file or the DSN.",
    )
    table: str = Field(default="history", pattern=_SQL_NAME, description="Table or view, optionally schema.table.")
    tag_column: str = Field(default="tag", pattern=_SQL_IDENTIFIER)
    ts_column: str = Field(default="ts", pattern=_SQL_IDENTIFIER)
    value_column: str = Field(default="value", pattern=_SQL_IDENTIFIER)
    quality_column: str | None = Field(default="quality", pattern=_SQL_IDENTIFIER, description="None: all Good.")
    chunk_rows: int = Field(default=10_000, ge=1, description="Rows fetched per round trip.")
    connect_timeout_s: float = Field(default=5.0, gt=0)


HistorySource = Annotated[CsvEventsSource | CsvWideSource | ParquetSource | PostgresSource, Field(discriminator="kind")]


def _epoch(when: dt.datetime) -> float:
    """Epoch seconds of a settings date-time; one without an offset is UTC."""
    return (when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)).timestamp()


class HistorySettings(_Section):
    """Plant history read at start so windows and detectors are warm at the first live tick."""

    sources: tuple[HistorySource, ...] = ()
    backfill_lookback_s: float | None = Field(
        default=None,
        gt=0,
        description="How far back the backfill reads; None: (context_steps + grace_period_steps) "
        "periods of the slowest tag.",
    )
    backfill_from: dt.datetime | None = Field(
        default=None,
        description="Read the history from this date (the data's time; ISO 8601 or a TOML date-time; "
        "without an offset: UTC) instead of the look-back before now: an export of a past period.",
    )
    backfill_until: dt.datetime | None = Field(
        default=None, description="With backfill_from: read the history before this date (default: now)."
    )
    required_at_start: bool = Field(
        default=False, description="Exit 69 when a history source cannot be read at start instead of starting cold."
    )
    chunk_samples: int = Field(default=10_000, ge=1, description="Samples per chunk a reader yields.")

    def backfill_range(self, now: float) -> tuple[float, float] | None:
        """``(start, end)`` epoch seconds of ``backfill_from``/``backfill_until`` (None: the look-back applies)."""
        if self.backfill_from is None:
            return None
        end = _epoch(self.backfill_until) if self.backfill_until is not None else now
        return _epoch(self.backfill_from), end

    @model_validator(mode="after")
    def _range_ordered(self) -> HistorySettings:
        if self.backfill_until is not None:
            if self.backfill_from is None:
                raise ValueError("backfill_until: set backfill_from too (the range's start)")
            if _epoch(self.backfill_until) <= _epoch(self.backfill_from):
                raise ValueError("backfill_until: must come after backfill_from")
        return self

    @model_validator(mode="after")
    def _names_unique(self) -> HistorySettings:
        labels = [s.label for s in self.sources]
        for label in labels:
            if labels.count(label) > 1:
                raise ValueError(f"sources: two history sources are labelled {label!r}; give them distinct names")
        return self


class EnvOverTomlSettings(BaseSettings):
    """A settings root whose TOML file arrives as init arguments and whose environment wins over it."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives through init arguments (see load_settings), so the
        # environment must win over it: env first, then init.
        return (env_settings, init_settings)


class Settings(BaseSettings):
    """Root of the settings tree: the TOML file (init arguments), the environment, secret files."""

    model_config = SettingsConfigDict(
        env_prefix="SENTINELLE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    sources: tuple[OpcUaSourceSettings, ...] = (OpcUaSourceSettings(),)
    tags: tuple[TagSettings, ...] = ()
    windows: WindowSettings = WindowSettings()
    forecast: ForecastSettings = ForecastSettings()
    detect: DetectSettings = DetectSettings()
    kafka: KafkaSettings = KafkaSettings()
    prometheus: PrometheusSettings = PrometheusSettings()
    console: ConsoleSettings = ConsoleSettings()
    daemon: DaemonSettings = DaemonSettings()
    simulator: SimulatorSettings = SimulatorSettings()
    history: HistorySettings = HistorySettings()
    commands: CommandSettings = CommandSettings()
    maintenance: MaintenanceSettings = MaintenanceSettings()
    finetune: FinetuneSettings = FinetuneSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # One source that merges file, environment and secret files itself: pydantic-settings'
        # own merge replaces a list from the environment whole (settings_sources explains).
        file_data = init_settings.init_kwargs if isinstance(init_settings, InitSettingsSource) else {}
        return (settings_sources.LayeredSource(settings_cls, file_data, env_settings),)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        source_names = [s.name for s in self.sources]
        dup = _first_duplicate(source_names)
        if dup:
            raise ValueError(f"sources: duplicate source name {dup!r}")
        dup = _first_duplicate([t.name for t in self.tags])
        if dup:
            raise ValueError(f"tags: duplicate tag name {dup!r}")
        for t in self.tags:
            if t.source not in source_names:
                raise ValueError(f"tags[{t.name}].source: unknown source {t.source!r} (known: {source_names})")
        seen: dict[tuple[str, str], str] = {}
        for t in self.tags:
            key = (t.source, t.node_id)
            if key in seen:
                raise ValueError(f"tags: {t.name!r} and {seen[key]!r} read the same node {t.node_id!r}")
            seen[key] = t.name
        _check_asset_rules(self.tags, self.detect.assets)
        if self.commands.enabled and not self.kafka.enabled:
            raise ValueError("commands.enabled: operator commands are read from Kafka; kafka.enabled is false")
        known_assets = {t.asset for t in self.tags}
        for i, w in enumerate(self.maintenance.windows):
            if self.tags and w.asset not in known_assets:
                raise ValueError(f"maintenance.windows[{i}].asset: no tag belongs to asset {w.asset!r}")
        return self


def _check_asset_rules(tags: tuple[TagSettings, ...], assets: tuple[AssetDetectSettings, ...]) -> None:
    """Asset rules name configured assets and tags; an energy balance's tags share one period."""
    by_name = {t.name: t for t in tags}
    known_assets = {t.asset for t in tags}
    dup = _first_duplicate([a.name for a in assets])
    if dup:
        raise ValueError(f"detect.assets: asset {dup!r} configured twice")
    for a in assets:
        where = f"detect.assets[{a.name}]"
        if tags and a.name not in known_assets:
            raise ValueError(f"{where}.name: no tag belongs to asset {a.name!r}")
        for rule in a.modes:
            if tags and rule.tag not in by_name:
                raise ValueError(f"{where}.modes[{rule.mode}].tag: unknown tag {rule.tag!r}")
        if tags:
            _check_relations(by_name, a, where)
        e = a.energy_balance
        if e is None or not tags:
            continue
        roles = {
            "flow_tag": e.flow_tag,
            "hot_temp_tag": e.hot_temp_tag,
            "cold_temp_tag": e.cold_temp_tag,
            "power_tag": e.power_tag,
        }
        for role, name in roles.items():
            if name not in by_name:
                raise ValueError(f"{where}.energy_balance.{role}: unknown tag {name!r}")
        periods = {by_name[name].period_s for name in roles.values()}
        if len(periods) > 1:
            raise ValueError(f"{where}.energy_balance: its tags must share one period_s (got {sorted(periods)})")


def _check_relations(by_name: dict[str, TagSettings], asset: AssetDetectSettings, where: str) -> None:
    """A relation's tags are tags of its asset sharing one period; one relation per target."""
    dup = _first_duplicate([r.target for r in asset.relations])
    if dup:
        raise ValueError(f"{where}.relations: two relations predict {dup!r}")
    for r in asset.relations:
        here = f"{where}.relations[{r.target}]"
        for name in (r.target, *r.inputs):
            t = by_name.get(name)
            if t is None:
                raise ValueError(f"{here}: unknown tag {name!r}")
            if t.asset != asset.name:
                raise ValueError(f"{here}: tag {name!r} belongs to {t.asset!r}, not {asset.name!r}")
        periods = {by_name[name].period_s for name in (r.target, *r.inputs)}
        if len(periods) > 1:
            raise ValueError(f"{here}: its tags must share one period_s (got {sorted(periods)})")


def _first_duplicate(names: list[str]) -> str | None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            return n
        seen.add(n)
    return None


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML settings file as a dict; every failure is a :class:`ConfigError` naming the file."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError("file not found", field=str(path)) from None
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror}", field=str(path)) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"invalid TOML: {e}", field=str(path)) from None


def config_error(e: ValidationError, *, prefix: str = "", data: Any = None) -> ConfigError:
    """Pydantic's problems as one :class:`ConfigError` naming each field (``prefix`` + location), items by name."""
    return settings_sources.config_error(e, prefix=prefix, data=data)


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (if any), apply environment overrides, validate.

    Raises :class:`ConfigError` naming the offending field for every kind of problem:
    unreadable file, TOML syntax, unknown key, wrong type, contradiction.
    """
    data: dict[str, Any] = read_toml(path) if path is not None else {}
    data.update(overrides)
    try:
        return Settings(**data)
    except ValidationError as e:
        # The same merge again, to name the list items the error's location points into.
        merged = settings_sources.resolve(Settings, data, EnvSettingsSource(Settings))
        raise config_error(e, data=merged) from None
