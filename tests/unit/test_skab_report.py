"""The SKAB report's split tables: each configuration scored on the tuning files and on the held-out files apart."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sentinelle.evaluation.replay import Trace
from sentinelle.evaluation.skab import SKAB_FAULT_GROUPS, FileResult, SkabResult, in_tuning_split, score_files
from sentinelle.evaluation.skab_report import kept_runs, split_scores, write_report

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


def _result(label: str, files: list[FileResult]) -> SkabResult:
    t = score_files(files)
    groups = {g: score_files([f for f in files if f.group == g]) for g in SKAB_FAULT_GROUPS}
    return SkabResult(label, t.outlier, t.nab, t.nab_counts, t.nab_opened_only, 1.0, 2.0, files, groups)


def test_rows_not_re_run_are_carried_over_from_the_previous_report_and_marked(tmp_path: Path) -> None:
    perfect = np.zeros(N, dtype=bool)
    perfect[40:120] = True
    files = [_file("valve1/0", perfect), _file("other/3", perfect), _file("valve2/1", ~perfect)]
    write_report([_result("head", files), _result("variant", files[::-1])], tmp_path, {"generated": "2026-01-02T03:04"})
    kept = kept_runs(tmp_path / "report.json", ["variant", "absent"])
    assert [k["label"] for k in kept] == ["variant"] and kept[0]["kept_from"] == "2026-01-02T03:04"
    write_report([_result("new head", files)], tmp_path, {"generated": "later"}, kept)
    doc = json.loads((tmp_path / "report.json").read_text())
    assert [r["label"] for r in doc["runs"]] == ["new head", "variant"]
    assert doc["runs"][1]["splits"]["held_out"]["f1"] == 0.0
    md = (tmp_path / "report.md").read_text()
    assert md.count("| variant (not re-run: row of 2026-01-02T03:04) |") == 2  # the splits table and the ablation
