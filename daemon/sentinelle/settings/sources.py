"""OPC-UA sources and the tags read from them (``[[sources]]``, ``[[tags]]``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from .base import _Section


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

    eu_low: float | None = Field(
        default=None,
        description="Engineering range's low end (OPC-UA EURange): with eu_high, the contextual novelty divides "
        "this range into its cells instead of learning one online.",
    )
    eu_high: float | None = Field(default=None, description="Engineering range's high end (with eu_low).")

    @model_validator(mode="after")
    def _limits_ordered(self) -> TagSettings:
        if self.stuck_check is False and self.stuck_after_s is not None:
            raise ValueError("stuck_after_s is given but stuck_check is false; drop one of them")
        if self.low_limit is not None and self.high_limit is not None and self.low_limit >= self.high_limit:
            raise ValueError(f"low_limit ({self.low_limit}) must be below high_limit ({self.high_limit})")
        if (self.eu_low is None) != (self.eu_high is None):
            raise ValueError("eu_low and eu_high go together")
        if self.eu_low is not None and self.eu_high is not None and not self.eu_low < self.eu_high:
            raise ValueError(f"eu_low ({self.eu_low}) must be below eu_high ({self.eu_high})")
        for name in ("low_limit", "high_limit", "eu_low", "eu_high"):
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
    read_eu_range: bool = Field(
        default=True,
        description="At every subscription, read the EURange property (OPC-UA AnalogItemType) of each tag with no "
        "eu_low/eu_high, for the contextual novelty's range, and EngineeringUnits of each tag with a unit "
        "(a mismatch is warned about). A missing or bad EURange: the range is learned online.",
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
