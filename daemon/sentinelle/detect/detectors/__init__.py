"""Every detector kind, one module each, all keeping one contract (:class:`~.base.Detector`).

The detect stage builds, for each tag group, the detectors of every module here and runs
them as one loop (``detect/stage.py``): each observes the gated tick, learns what the
life cycle allows, and its findings go to the one alert life cycle (``detect/alerting.py``).

=====================  ======================================================  ====
module                 alerts (kind)                                           rank
=====================  ======================================================  ====
``residual``           ``forecast_residual`` per asset incident or per tag       10
``residual_energy``    ``forecast_residual`` per tag: the residual's mean        12
                       square over a window improbably small (a frozen
                       sensor; ``<tag>#energy``; off)
``asset_estimate``     ``relation`` per tag: actual vs the asset model's         15
                       estimate from the other tags now (``<tag>#estimate``)
``estimate_cusum``     ``relation`` per tag: a two-sided CUSUM of that           15
                       residual, for slow faults (``<tag>#cusum``; off)
``estimate_rate``      ``relation`` per tag: that residual's hours-long share    15
                       of surprising ticks against the history's scale
                       (``<tag>#rate``; off)
``distribution``       ``distribution_change`` per tag (recent vs past values)   16
``horizon``            ``forecast_drift`` per tag (vs the forecast H ticks ago)  17
``novelty``            ``contextual_novelty`` per tag (unseen value sequences)   18
``asset_t2q``          ``asset_state`` (T², Q, EWMA charts; likelihood layer)    20
``limits``             ``limit_high``, ``limit_low``                             30
``rate_of_change``     ``rate_of_change``                                        40
``energy_balance``     ``energy_balance``                                        50
``afdd``               ``ahu_fault`` per AHU and Guideline 36 condition          55
``relations``          ``relation`` (learned virtual sensors)                    60
``data_quality``       ``data_quality`` (stuck, spike, missing)                  90
=====================  ======================================================  ====

**Adding a detector** touches one module and its settings:

1. write ``detectors/<name>.py`` with a class keeping :class:`~.base.Detector` (``name``,
   ``spec``, ``observe``, ``learn``, ``explain``, ``state``, ``restore``), a ``RANK`` (its
   place in the loop: the order of learning and of the events within a tick) and
   ``build(ctx: BuildContext) -> list[Detector]`` (empty when nothing is configured for
   the group);
2. add its settings to ``DetectSettings`` (``settings/detect.py``, or the part of it its kind
   belongs to: ``detect_scoring.py``, ``detect_asset.py``) and document them in
   ``config/sentinelle.toml``; a new alert kind also goes into ``AlertKind``
   (``records.py``) with its wording in ``alerts.py``.

Nothing else changes: this package finds its modules itself (:func:`build_all`), and the
life cycle, pauses, maintenance and metrics are generic.

>>> [name for name, _ in modules()]  # doctest: +NORMALIZE_WHITESPACE
['residual', 'residual_energy', 'asset_estimate', 'estimate_cusum', 'estimate_rate', 'distribution', 'horizon',
 'novelty', 'asset_t2q', 'limits', 'rate_of_change', 'energy_balance', 'afdd', 'relations', 'data_quality']
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Sequence
from typing import cast

from .base import BuildContext, Detector, Explanation, Findings, Layout, RowNumbers, Spec, Tick

__all__ = [
    "BuildContext",
    "Detector",
    "Explanation",
    "Findings",
    "Layout",
    "RowNumbers",
    "Spec",
    "Tick",
    "build_all",
    "modules",
]

Build = Callable[[BuildContext], Sequence[Detector]]
_NOT_DETECTORS = frozenset({"base"})


@functools.cache
def modules() -> list[tuple[str, Build]]:
    """(module name, its ``build``) of every detector module, by ``RANK`` (found once, when this package loads)."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name in _NOT_DETECTORS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.append((int(module.RANK), info.name, cast(Build, module.build)))
    return [(name, build) for _, name, build in sorted(found)]


def build_all(ctx: BuildContext) -> list[Detector]:
    """The detectors of one tag group, in loop order."""
    return [d for _, build in modules() for d in build(ctx)]


modules()  # import them now, with the package: not inside the first tick
