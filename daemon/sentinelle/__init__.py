"""sentinelle: on-premises streaming anomaly detection for industrial plants.

The package layout is the pipeline: ``sources`` → ``windows`` → ``forecast`` →
``detect`` → ``sinks``, wired by ``app`` and configured by ``settings``.
"""

__version__ = "0.1.0"
