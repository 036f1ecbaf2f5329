"""One asset's detection state as a record of the compacted state topic (key = asset).

A worker that is given an asset's partition restores it from here, so the asset goes on
where its previous worker left it: the windows' recent values (no context to refill, no
gaps), every detector's learned state, the data-quality screen, the k-of-n rings, the
asset's operating mode and its last change (a hold-off under way goes on) and the
open alerts (their next event continues their ``sequence``, so an event re-made after a
takeover has the ``event_id`` its first sending had, and a clearing clears them).

Value layout: ``b"SW"``, a version byte (:data:`VERSION`), then one ``.npz``
archive — numpy arrays and a JSON header, never a pickle (``allow_pickle=False`` on
both sides), so a record from another process cannot run code.  Its size is bounded
(``scaleout.max_snapshot_bytes``): a larger snapshot is not written.

What is not in a snapshot: operator acknowledgements' command log and maintenance windows
from commands (the all-in-one mode's ``[commands]``), and anything of other assets.

>>> from prometheus_client import CollectorRegistry
>>> from sentinelle.metrics import Metrics
>>> from sentinelle.settings import TagSettings, DetectSettings, WindowSettings
>>> tags = [TagSettings(name="c1.t", asset="c1", node_id="ns=2;s=c1.t", source="plant")]
>>> unit = AssetUnit("c1", tags, WindowSettings(), DetectSettings(), Metrics(CollectorRegistry()))
>>> snap = decode_snapshot(encode_snapshot(unit))
>>> snap.asset, snap.version
('c1', 1)
>>> AssetUnit("c1", tags, WindowSettings(), DetectSettings(), Metrics(CollectorRegistry())).restore(snap)
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from ..detect.maintenance import MaintenanceCalendar
from ..detect.stage import DetectStage
from ..metrics import Metrics
from ..settings import DetectSettings, TagSettings, WindowSettings
from ..windows import Windows
from .codec import CodecError

MAGIC: Final = b"SW"
VERSION: Final = 1


class SnapshotMismatch(ValueError):
    """A snapshot of the asset that does not fit the configuration now (tags or detectors changed)."""


class AssetUnit:
    """One asset's windows and detect stage: the unit a worker holds, checkpoints and hands over."""

    def __init__(
        self,
        asset: str,
        tags: Sequence[TagSettings],
        windows: WindowSettings,
        detect: DetectSettings,
        metrics: Metrics,
        calendar: MaintenanceCalendar | None = None,
        *,
        refresh_every_steps: int = 1,
    ) -> None:
        self.asset = asset
        self.tags = tuple(tags)
        self.windows = Windows(self.tags, windows, metrics)
        self.detect = DetectStage(self.tags, detect, metrics, calendar, refresh_every_steps=refresh_every_steps)

    def restore(self, snap: Snapshot) -> None:
        """Take over ``snap``; :class:`SnapshotMismatch` when it does not fit (this unit is then unusable)."""
        if snap.asset != self.asset:
            raise SnapshotMismatch(f"snapshot of {snap.asset!r}, not {self.asset!r}")
        window_tags = [m["tags"] for m in snap.windows_meta["groups"]]
        if any(g["tags"] not in window_tags for g in snap.detect_meta["groups"]):
            raise SnapshotMismatch("its detector state is of other tags than its windows")
        try:
            self.windows.restore(snap.windows_arrays, snap.windows_meta)
            self.detect.restore(snap.detect_arrays, snap.detect_meta)
        except (KeyError, TypeError, ValueError) as e:
            raise SnapshotMismatch(str(e) or type(e).__name__) from None

    def release(self) -> None:
        """This worker no longer holds the asset: its open alerts and tag gauges are no longer shown here."""
        self.detect.book.release()
        self.detect.metrics.tag_state.forget(frozenset(t.name for t in self.tags))


@dataclass(frozen=True, slots=True)
class Snapshot:
    asset: str
    version: int
    saved_at: float
    """Wall-clock time of the checkpoint, epoch seconds."""
    windows_arrays: dict[str, Any]
    windows_meta: dict[str, Any]
    detect_arrays: dict[str, Any]
    detect_meta: dict[str, Any]


def encode_snapshot(unit: AssetUnit) -> bytes:
    """The record value of ``unit``'s state now."""
    w_arrays, w_meta = unit.windows.state()
    d_arrays, d_meta = unit.detect.state()
    header = {"asset": unit.asset, "saved_at": time.time(), "windows": w_meta, "detect": d_meta}
    arrays: dict[str, Any] = {"__header__": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)}
    arrays |= {"w~" + k: v for k, v in w_arrays.items()}
    arrays |= {"d~" + k: v for k, v in d_arrays.items()}
    buf = io.BytesIO()
    # Not compressed: a 50-tag asset's snapshot (~230 kB, mostly its windows' floats) takes 17 ms
    # to compress and 1 ms to store, for 10 % less space; a checkpoint writes every asset.
    np.savez(buf, **arrays)
    return MAGIC + bytes([VERSION]) + buf.getvalue()


def decode_snapshot(blob: bytes) -> Snapshot:
    """The snapshot in a record value; :class:`CodecError` when it is not one this version wrote."""
    if len(blob) < 3 or blob[:2] != MAGIC:
        raise CodecError("not a state snapshot (bad magic)")
    if blob[2] != VERSION:
        raise CodecError(f"state snapshot version {blob[2]}; this sentinelle reads version {VERSION}")
    try:
        with np.load(io.BytesIO(blob[3:]), allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
        header = json.loads(arrays.pop("__header__").tobytes().decode())
        return Snapshot(
            asset=str(header["asset"]),
            version=VERSION,
            saved_at=float(header["saved_at"]),
            windows_arrays={k[2:]: v for k, v in arrays.items() if k.startswith("w~")},
            windows_meta=dict(header["windows"]),
            detect_arrays={k[2:]: v for k, v in arrays.items() if k.startswith("d~")},
            detect_meta=dict(header["detect"]),
        )
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise CodecError(f"malformed state snapshot: {type(e).__name__}: {e}") from None
