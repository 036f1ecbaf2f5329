"""The plant simulator and the faults it injects (``[simulator]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from .base import _Section
from .sources import OpcUaSecurityPolicy

FaultKind = Literal[
    "pump_degradation",
    "sensor_drift",
    "stuck_sensor",
    "spike",
    "setpoint_violation",
    "fouling",
    "control_oscillation",
]


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
