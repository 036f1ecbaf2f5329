"""The command line: ``sentinelle run | simulate | demo | check-config | make-cert | pretrain | finetune | backtest |
evaluate``.

Exit codes (uvicorn-style, and ``RestartPreventExitStatus=78`` in the systemd unit):
0 clean stop, 1 a bug, 69 a required service unavailable at start (EX_UNAVAILABLE),
75 stopped, but alert events were dropped during the run (EX_TEMPFAIL: spool full or
unusable, see ``sentinelle_sink_events_dropped_total``), 78 bad configuration (EX_CONFIG).
Heavy imports (asyncua, aiokafka, torch) happen inside the commands, so ``--help`` and ``check-config`` stay fast.

One module per group: :mod:`.parser` (every command's arguments), :mod:`.daemon` (``run``,
``simulate``, ``demo``, ``check-config``, ``make-cert``), :mod:`.training` (``pretrain``,
``finetune``), :mod:`.evaluate` (``evaluate``, ``backtest``), :mod:`.inputs` (the history they
read), :mod:`.common` (exit codes, logging); :mod:`.main` dispatches. ``python -m sentinelle.cli``
runs :mod:`.__main__`.
"""

from .common import EXIT_ALERTS_DROPPED, EXIT_BUG, EXIT_CONFIG, EXIT_OK, EXIT_UNAVAILABLE
from .daemon import DEMO_FAULTS
from .daemon import _exit_now_if_compute_lingers as _exit_now_if_compute_lingers
from .main import main
from .parser import build_parser, parse_fault

__all__ = [
    "DEMO_FAULTS",
    "EXIT_ALERTS_DROPPED",
    "EXIT_BUG",
    "EXIT_CONFIG",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "build_parser",
    "main",
    "parse_fault",
]
