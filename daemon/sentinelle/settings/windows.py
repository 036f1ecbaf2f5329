"""How samples are gathered into windows (``[windows]``)."""

from __future__ import annotations

from pydantic import Field

from .base import _Section


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
