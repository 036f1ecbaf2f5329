"""A NAB-style corpus on disk: ``timestamp,value`` CSVs, labelled windows, NAB's result files, the tuning split.

Layout (``numenta/NAB``): ``data/<category>/<file>.csv`` with a ``timestamp,value``
header; ``labels/combined_windows.json`` maps ``"<category>/<file>.csv"`` to a list
of ``[start, end]`` timestamps, each of which must be a row of the file (NAB's
``CorpusLabel.getWindows`` checks that); result files are
``results/<detector>/<category>/<detector>_<file>.csv`` with the columns
``timestamp,value,anomaly_score,label``.  Any folder laid out like ``data/`` (or a
flat folder of CSVs, category "") with a labels file in that format works.

Timestamps are read as UTC (NAB's have no zone).  Values are kept as written, so
the result files repeat the data's text exactly.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..records import FloatArray
from .datasets import default_data_dir
from .nab_scorer import LabelledFile
from .stream_eval import Stream

_log = logging.getLogger(__name__)

LABELS_FILE = Path("labels") / "combined_windows.json"

TUNING = "tuning"
HELD_OUT = "held_out"


@dataclass(frozen=True, slots=True)
class NabFile:
    """One data file: its rows (text as written and parsed) and its labelled windows."""

    name: str
    """``category/file.csv`` (NAB's key in the labels file)."""
    timestamp_text: tuple[str, ...]
    value_text: tuple[str, ...]
    timestamps: FloatArray
    values: FloatArray
    labelled: LabelledFile

    @property
    def category(self) -> str:
        return self.labelled.category

    @property
    def stem(self) -> str:
        return Path(self.name).stem

    def stream(self) -> Stream:
        return Stream(self.stem, self.timestamps, self.values)

    def label_column(self) -> list[int]:
        """NAB's ``label``: 1 where a window covers the row's timestamp (``labeler.getLabels``, by time)."""
        out = np.zeros(len(self.timestamps), dtype=np.int64)
        for first, last in self.labelled.windows:
            t1, t2 = self.timestamps[first], self.timestamps[last]
            out[(self.timestamps >= t1) & (self.timestamps <= t2)] = 1
        return [int(v) for v in out.tolist()]


def parse_time(text: str) -> float:
    """Seconds since the epoch of NAB's ``YYYY-MM-DD HH:MM:SS[.ffffff]`` (UTC).

    >>> parse_time("2014-04-10 07:15:00.000000") == parse_time("2014-04-10 07:15:00")
    True
    """
    t = dt.datetime.fromisoformat(text.strip())
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.timestamp()


def default_nab_dir() -> Path:
    """``<shared data>/nab`` (see :func:`~.datasets.default_data_dir`)."""
    return default_data_dir() / "nab"


def _read_rows(path: Path) -> tuple[list[str], list[str]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:2]] != ["timestamp", "value"]:
                raise ConfigError(f"{path}: expected a 'timestamp,value' header", field=str(path))
            ts, vs = [], []
            short = 0
            for row in reader:
                if len(row) < 2:
                    short += any(cell.strip() for cell in row)  # a blank line is not a loss
                    continue
                ts.append(row[0])
                vs.append(row[1])
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e})", field=str(path)) from e
    if short:
        _log.warning("%s: %d rows without a value column skipped", path, short)
    return ts, vs


def _value(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")  # the windows skip and count it (non_finite)


def _check_labels(windows_by_file: object, path: Path) -> None:
    """NAB's shape: ``{"<category>/<file>.csv": [[start, end], ...], ...}`` with at least one file."""
    if not isinstance(windows_by_file, dict) or not windows_by_file:
        raise ConfigError('expected {"<file>.csv": [[start, end], ...]} naming at least one file', field=str(path))
    for name, windows in windows_by_file.items():
        if not isinstance(windows, list) or not all(isinstance(w, list) and len(w) == 2 for w in windows):
            raise ConfigError(f"{name}: expected a list of [start, end] windows, got {windows!r}", field=str(path))


def _time_in(text: str, path: Path) -> float:
    """:func:`parse_time`, failing as a :class:`ConfigError` naming the file and the text."""
    try:
        return parse_time(str(text))
    except ValueError:
        raise ConfigError(f"not a date-time: {text!r}", field=str(path)) from None


def load_corpus(data_dir: Path | None = None, labels: Path | None = None) -> list[NabFile]:
    """Every file named in the labels file, sorted by name; window timestamps mapped to rows.

    ``data_dir``: the folder of category folders (default ``<nab>/data``); ``labels``:
    the windows file (default ``<nab>/labels/combined_windows.json``).  A window whose
    start or end is not exactly one row's timestamp is an error, as in NAB.
    """
    nab = default_nab_dir()
    data = data_dir if data_dir is not None else nab / "data"
    labels_path = labels if labels is not None else (data.parent / LABELS_FILE if data_dir else nab / LABELS_FILE)
    if not data.is_dir():
        raise ConfigError(f"NAB data folder not found: {data}", field=str(data))
    try:
        windows_by_file: dict[str, list[list[str]]] = json.loads(labels_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"labels file {labels_path}: {e}", field=str(labels_path)) from e
    _check_labels(windows_by_file, labels_path)
    out = []
    for name in sorted(windows_by_file):
        ts_text, v_text = _read_rows(data / name)
        ts = np.array([_time_in(t, data / name) for t in ts_text], dtype=np.float64)
        if len(np.unique(ts)) < 2:
            raise ConfigError("fewer than two distinct timestamps: no period to replay", field=str(data / name))
        rows = []
        for start, end in windows_by_file[name]:
            pair = []
            for t in (start, end):
                hit = np.flatnonzero(ts == _time_in(t, labels_path))
                if hit.size != 1:
                    raise ConfigError(
                        f"{name}: window bound {t} matches {hit.size} rows (NAB needs exactly one)", field=str(t)
                    )
                pair.append(int(hit[0]))
            rows.append((pair[0], pair[1]))
        out.append(
            NabFile(
                name=name,
                timestamp_text=tuple(ts_text),
                value_text=tuple(v_text),
                timestamps=ts,
                values=np.array([_value(v) for v in v_text], dtype=np.float64),
                labelled=LabelledFile(name, len(ts), tuple(rows)),
            )
        )
    return out


def split_of(names: Iterable[str]) -> dict[str, str]:
    """The NAB tuning split, fixed before any tuning: per category, files sorted by name, odd positions
    (1st, 3rd, …) are ``tuning``, even positions ``held_out``.

    >>> split_of(["b/x.csv", "a/2.csv", "a/1.csv", "a/3.csv"])
    {'a/1.csv': 'tuning', 'a/2.csv': 'held_out', 'a/3.csv': 'tuning', 'b/x.csv': 'tuning'}
    """
    by_category: dict[str, list[str]] = {}
    for n in names:
        by_category.setdefault(n.split("/", 1)[0] if "/" in n else "", []).append(n)
    out = {}
    for category in sorted(by_category):
        for position, n in enumerate(sorted(by_category[category])):
            out[n] = TUNING if position % 2 == 0 else HELD_OUT
    return dict(sorted(out.items()))


def result_path(results_dir: Path, detector: str, name: str) -> Path:
    """``results/<detector>/<category>/<detector>_<file>.csv``; NAB forbids ``_`` in detector names."""
    if "_" in detector:
        raise ValueError(f"NAB detector names may not contain '_': {detector!r}")
    category, _, file = name.rpartition("/")
    return results_dir / detector / category / f"{detector}_{file}"


def write_result(results_dir: Path, detector: str, f: NabFile, anomaly_score: FloatArray) -> Path:
    """Write one file's NAB result CSV (``timestamp,value,anomaly_score,label``)."""
    path = result_path(results_dir, detector, f.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = f.label_column()
    with open(path, "w", newline="", encoding="utf-8") as out:
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["timestamp", "value", "anomaly_score", "label"])
        for t, v, s, lab in zip(f.timestamp_text, f.value_text, anomaly_score.tolist(), labels, strict=True):
            w.writerow([t, v, repr(float(s)), lab])
    return path


def read_scores(results_dir: Path, detector: str, files: Sequence[NabFile]) -> list[FloatArray]:
    """The ``anomaly_score`` column of each file's result CSV, in ``files`` order."""
    out = []
    for f in files:
        path = result_path(results_dir, detector, f.name)
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader)
            col = header.index("anomaly_score")
            scores = np.array([float(row[col]) for row in reader if row], dtype=np.float64)
        if scores.shape[0] != f.labelled.rows:
            raise ConfigError(f"{path}: {scores.shape[0]} rows, the data has {f.labelled.rows}", field=str(path))
        out.append(scores)
    return out
