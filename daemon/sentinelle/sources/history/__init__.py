"""Plant history in: CSV exports, Parquet files and a PostgreSQL historian → chunks of :class:`Sample`.

The backfill (``backfill.py``) and offline tools read a plant's past through these
readers, and they produce exactly what the live OPC-UA source produces — frozen
:class:`~sentinelle.records.Sample` records — so the same ``Windows`` resample them
and the same checks (quality, finiteness, order) count what they skip.  Files are
read as streams: a reader holds one chunk (``chunk_samples``) and the per-tag
state, never the file, so a multi-gigabyte export costs no more memory than a
small one.

The four formats
----------------
* **Event log CSV** (``csv_events``): one row per change, with the columns
  *date*, *parameter name*, *value* and *new value*.  *value* is the parameter's
  value **before** the change and *new value* the value **after** it: the row's
  sample is the new value at the row's date.  A parameter's first row also tells
  what it held before (the old value); that seeds the tag: a sample of the old
  value is emitted at the previous row date of the export (or the read's start,
  whichever is later), so the tag is known from there instead of only from its
  first change.  An unreadable old value only loses the seed.
* **Wide sparse CSV** (``csv_wide``): a date column (the first, unless named),
  then one column per tag.  An empty cell means "unchanged since the previous
  row": every row emits the held value of every tag already known (forward
  fill); a tag starts at its first non-empty cell.  A cell that cannot be read,
  or holds NaN/inf, ends the held value: the tag is unknown until its next
  readable cell, because forward-filling past an unreadable change would invent
  data.
* **Parquet** (``parquet``): long — columns ``tag, ts, value[, quality]``, one
  sample per row — or wide, with the same forward-fill rule as the wide CSV
  (null = unchanged).
* **PostgreSQL** (``postgres``): a historian table ``(tag, ts, value, quality)``
  (names configurable), read with asyncpg through a server-side cursor inside a
  read-only transaction, ``chunk_rows`` rows per round trip, filtered in SQL by
  tag list and time range and ordered by time.

One rule for dates, numbers and names
-------------------------------------
* **Dates**: ISO 8601 (``2024-03-31 02:30:00``, ``2024-03-31T02:30:00.250+02:00``,
  ``…Z``, a bare date is midnight) or day-first ``dd/mm/yyyy hh:mm[:ss[.fff]]``
  (``31/03/2024 02:30``), each optionally followed by ``Z`` or ``±hh:mm``.  A date
  with an offset is taken as written.  A date **without** one is wall-clock time
  in the source's ``timezone`` (IANA name, default UTC); inside a daylight-saving
  change it takes the offset in force *before* the change (``fold=0``): repeated
  autumn hours land on their first occurrence (the repeats then fail the windows'
  order check and are counted), and skipped spring times shift by the change.
  Export in UTC when you can.  Parquet timestamps with a zone and PostgreSQL
  ``timestamptz`` are exact; zone-less ones follow the same rule; numeric time
  columns are seconds since the Unix epoch.
* **Numbers**: spaces (also no-break and narrow no-break spaces) are thousands
  separators and removed; one ``,`` or ``.`` is the decimal separator; when both
  appear, the last one is the decimal separator and the other groups thousands
  (``1.234,5`` and ``1,234.5`` are both 1234.5).  ``true``/``false`` are 1/0;
  ``nan``/``inf`` are read as such and counted later by the windows (``non_finite``).
* **CSV layout**: UTF-8 by default (a byte-order mark is skipped); the separator
  is ``;`` if the header line contains one, else a tab if it contains one, else
  ``,`` (or set ``delimiter``); fields may be quoted.  Header names match the
  configured column names ignoring case and repeated spaces.  Blank lines are
  ignored; separators after the last column are ignored when the fields they
  open are empty.
* **Names**: a column or parameter name is stripped of surrounding spaces and
  then mapped by ``tag_map`` (export name → configured tag name); names not in
  the map are used as they are.  A read may ask for a set of tags: other tags are
  not read (as a SQL ``WHERE`` would not return them) and are only counted in
  :attr:`HistoryReport.other_tags`, not as drops.
* **Quality**: NULL or absent is Good; integers 0, 1, 2 are sentinelle's Good,
  Uncertain, Bad; other integers are OPC-UA StatusCodes (their top two bits);
  strings starting with Good / Uncertain / Bad (OPC-UA status names) likewise;
  anything else is Bad.  Bad and Uncertain samples are skipped and counted by
  the windows, as live ones are.
* **Time range**: a read may have a ``start`` and an ``end`` (epoch seconds,
  ``start <= ts < end``).  Rows before ``start`` are not emitted but still set the
  tags' state: when the first row at or after ``start`` comes (or the file ends),
  every known tag's value at ``start`` is emitted, dated ``start`` — so a tag that
  changed an hour before the look-back begins still has its value in it.

Compressed exports: held samples and the deadband
-------------------------------------------------
Historians and Excel exports write a value only once it moved past a *deadband*
(report by exception): an empty wide cell means "unchanged **within the deadband**",
not "measured exactly constant", and an event log has no row at all for such a
step.  Read as measurements, those flat stretches teach a detector a spread far
too small (issue 17: 88 % of the minutes of a chilled-water temperature held).
So the readers tell which samples were read and which were held, and how big the
deadband looks:

* **Per sample**: every chunk a reader yields is a :class:`SampleChunk` — a
  ``list[Sample]`` to every caller — whose ``held`` bytearray marks (1) the
  samples that repeat an earlier value: a wide row's forward-filled cells and the
  value carried to the read's ``start`` (all formats).  Filled cells, event rows
  (the seed of a first row's old value included) and long-format or PostgreSQL
  rows are read (0).  :func:`held_mask` gives the mask of any chunk (all 0 for a
  plain list).  :class:`Sample` itself is unchanged.
* **Per tag**, in :class:`HistoryReport`: ``tags[tag]`` (:class:`TagHistory`)
  counts held and changed (read) samples; :meth:`HistoryReport.held_shares` maps
  tag → held share; :meth:`HistoryReport.deadbands` maps tag → deadband in tag
  units: the source's ``deadband`` setting (a float for every tag, or a map per
  tag) where it gives one, else an estimate — the 5 % quantile of the tag's
  non-zero steps between consecutive read values (a compressed export writes a
  value only once it moved past the deadband, so most steps lie just above it; a
  low quantile, not the minimum, so a stray tiny step does not decide it; none
  below 5 steps).  The summary logs one line per tag (most held first, 20 at
  most): ``chiller1.chw_temp_c: 88 % of 10080 samples held (deadband ≈ 0.1 °C,
  estimated, 1210 changes)``.  An event log has no held samples; its estimate
  comes from its changes, and its held steps appear only when the windows
  resample (sample-and-hold), which is why the learning side below looks at
  slots, not at rows.

The learning side (``backfill.py``, ``windows.py``, ``detect/``, ``training/finetune.py``):

1. ``backfill.py`` keeps the mask beside each sample (its numpy columns have a
   ``held`` column that the stable sort by time carries along) and hands
   ``HistoryReport.deadbands()`` of all sources (the first source listed wins) to
   the detect stage with ``replaying_history(deadbands)``.
2. ``Windows`` marks each closed slot *changed* when at least one sample read (not
   held) fell into it, and *held* otherwise — so a wide export's filled cells and
   an event log's rows count alike, and the windows' own sample-and-hold of an
   event log is a held slot.  During history replay the batch carries that mask
   (``WindowBatch.held``); live batches carry none.
3. The detectors do not take a held slot for a measurement, by one setting,
   ``detect.history_held``: **widen** (the default) learns from every slot but,
   while history is replayed, floors the residual spread at ``deadband / √3``
   (the standard deviation of a value known only to within ±deadband, uniformly)
   and adds ``deadband² / 3`` (in forecast spreads) to what a held slot teaches
   the residual scale; an asset model warmed up on held values gets the same
   ``deadband² / 3`` in its variance floor for as long as it is in use.  The
   live data that follow are not compressed, and once the replay ends what a tag's
   residual scale and a relation's fit learned from held slots count as only
   ``detect.history_held_weight_steps`` live ticks (divided by the held share), so
   the live data replace them within hours, not ``score_memory_steps`` (or a
   relation's week): a fault on the first live day is not found later for them.
   A held slot of a tag with no deadband known (held through the whole export, so
   no steps to estimate it from, and none configured) has nothing to widen by and
   is skipped.  **skip** learns the residual scale and asset
   warm-ups only from changed slots (an asset tick with a held tag is not a warm-up
   tick, so the warm-up may go on live).  **off** takes held values for
   measurements (an uncompressed export).  Skip's changed slots are the moves
   past the deadband, a biased sample, so it learns wider spreads than widen
   (``docs/results/deadband``).
4. ``sentinelle finetune`` reads the same mask (``Series.held``, from
   :func:`~sentinelle.evaluation.history_data.resample`) and each tag's deadband
   (``Series.deadband``: :meth:`HistoryReport.deadbands`): held points stay in the
   contexts and are targets known only to within ±deadband
   (``finetune.held_targets``, :mod:`sentinelle.training.censored`), so an adapter
   learns neither "flat" from the export nor only from its large moves.
5. The backfill log (``BackfillResult.reports``) shows each tag's held share and
   deadband through :meth:`HistoryReport.log_summary`.

Malformed input is reported, counted, and skipped, never silently
------------------------------------------------------------------
A row whose date cannot be read (``malformed_date``), whose value cannot be read
(``malformed_value``; in a wide file only that cell is skipped) or whose number of
fields differs from the header's (``malformed_row``) is skipped.  Each skip is
counted by reason in the reader's :class:`HistoryReport` (and, when the report has
the daemon's metrics, in ``sentinelle_samples_dropped_total{reason}``), located as
``file:line`` (CSV), ``file:row N`` (Parquet) or ``table row N`` (PostgreSQL), and
logged — the first :data:`MAX_LOGGED_PROBLEMS` one by one, the rest in the
summary each reader logs at its end.

Ordering: readers emit rows in the order the file or query gives them.  Exports
are normally in time order; a long Parquet file sorted by tag is not, so the
backfill sorts what it read by time before the windows see it.

An event log, as a plant's historian writes it::

    >>> import tempfile, pathlib
    >>> from sentinelle.settings import CsvEventsSource
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "events.csv"
    >>> _ = path.write_text(
    ...     "date;parameter name;value;new value\\n"
    ...     "05/03/2024 10:00:00;chw temp;5,0;5,2\\n"
    ...     "05/03/2024 10:00:05;chw temp;5,2;5,1\\n", encoding="utf-8-sig")
    >>> source = CsvEventsSource(path=path, timezone="Europe/Paris", tag_map={"chw temp": "chiller1.chw_temp_c"})
    >>> for chunk in read_csv_events(source):
    ...     for sample in chunk:
    ...         print(sample)
    Sample(tag='chiller1.chw_temp_c', source_ts=1709629200.0, value=5.2, quality=<Quality.GOOD: 0>)
    Sample(tag='chiller1.chw_temp_c', source_ts=1709629205.0, value=5.1, quality=<Quality.GOOD: 0>)
"""

from __future__ import annotations

from .event_log import read_csv_events
from .parquet import read_parquet
from .parsing import parse_number, parse_timestamp, quality_of, timezone_of
from .postgres import read_postgres
from .reader import HistoryReader, all_samples
from .report import (
    DEFAULT_CHUNK_SAMPLES,
    MAX_KEPT_PROBLEMS,
    MAX_LOGGED_PROBLEMS,
    HistoryReport,
    Problem,
    SampleChunk,
    TagHistory,
    held_mask,
)
from .wide import read_csv_wide

__all__ = [
    "DEFAULT_CHUNK_SAMPLES",
    "MAX_KEPT_PROBLEMS",
    "MAX_LOGGED_PROBLEMS",
    "HistoryReader",
    "HistoryReport",
    "Problem",
    "SampleChunk",
    "TagHistory",
    "all_samples",
    "held_mask",
    "parse_number",
    "parse_timestamp",
    "quality_of",
    "read_csv_events",
    "read_csv_wide",
    "read_parquet",
    "read_postgres",
    "timezone_of",
]
