"""The SKAB report's split tables: each configuration scored on the tuning files and on the held-out files apart."""

from __future__ import annotations

import numpy as np

from sentinelle.evaluation.replay import Trace
from sentinelle.evaluation.skab import FileResult, in_tuning_split
from sentinelle.evaluation.skab_report import split_scores

N = 300


def _file(name: str, predicted: np.ndarray) -> FileResult:
    labels = np.zeros(N, dtype=bool)
    labels[40:120] = True
    changepoints = np.zeros(N, dtype=bool)
    changepoints[[40, 120]] = True
    nan = np.full((N, 1), np.nan)
    trace = Trace(predicted, np.zeros(N, dtype=bool), nan, nan, nan, nan, nan)
    return FileResult(name, trace, np.arange(N), labels, changepoints, np.arange(N, dtype=np.float64))


class _Result:
    def __init__(self, files: list[FileResult]) -> None:
        self.files = files


def test_each_split_is_scored_on_its_own_files_only() -> None:
    perfect = np.zeros(N, dtype=bool)
    perfect[40:120] = True
    files = [_file("valve1/0", perfect), _file("other/3", perfect), _file("valve2/1", ~perfect)]
    assert [in_tuning_split(f.name) for f in files] == [True, True, False]
    sp = split_scores(_Result(files))  # type: ignore[arg-type]
    assert sp["tuning"]["f1"] == 1.0 and sp["tuning"]["far_percent"] == 0.0
    assert sp["tuning"]["nab_standard"] == 100.0
    held = sp["held_out"]  # the inverse prediction: every row wrong ...
    assert held["f1"] == 0.0 and held["far_percent"] == 100.0 and held["mar_percent"] == 100.0
    # ... yet it changes at both changepoints: NAB loses only its first row's own value (one false positive)
    assert held["nab_low_fp"] < held["nab_standard"] < 100.0
