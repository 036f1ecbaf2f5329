"""Detection: forecasts and actual values in, alert events out.

``scoring`` turns residuals into anomaly scores (online River detectors),
``rules`` checks static limits, ``lifecycle`` decides when an alert opens and
clears (k of n, hysteresis), ``alerts`` writes the events, and ``stage`` runs
them together for each forecast batch.
"""
