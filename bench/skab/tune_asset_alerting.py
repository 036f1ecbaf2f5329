"""Choose the asset alert's own life cycle (open, hold, severe) on SKAB's tuning split; writes its JSON.

    SENTINELLE_DATA_DIR=../shared/data .venv/bin/python bench/skab/tune_asset_alerting.py

Why (``why_missed_tuning.md``, tuning split only): of 22 anomaly ends, 13 were missed because the
asset alert *cleared 18–58 s before* the labelled end — the condition dipped inside its limits
while the fault lasted, the alert cleared after 10 normal ticks, and SKAB counts that clearing as
a changepoint outside every window (a false positive, the end's window missed, the rows after it
missed by the per-row F1); and 10 starts were late (the charts' lag plus 3 of 5).  The levers are
the asset alert's own life cycle, new settings that leave every other alert kind alone:
``asset_clear_normal_steps`` (the hold), ``asset_open_k``/``asset_open_n`` and
``asset_severe_factor`` (a tick this far over its limit opens at once).  The asset detector is
off in the daemon by default (``detect.asset_enabled``), so none of these changes what the
daemon ships for the chiller; they are SKAB's evaluation settings (``evaluation/skab.py``).

Protocol, fixed before this script was first run:

* **Only the 23 tuning files are replayed** (``valve1`` and the odd-numbered ``other`` files,
  :func:`~sentinelle.evaluation.skab.in_tuning_split`); the held-out files are not loaded into the
  grid at all (asserted).  Each configuration goes through the daemon's stages (``replay``, Holt
  forecasts cached and shared, per-tag residuals + the asset detector at the current defaults),
  exactly as ``sentinelle evaluate --dataset skab`` scores it.
* **Grid** (every configuration is recorded in the JSON): hold ``asset_clear_normal_steps`` 10
  (today's), 20, 30, 60 × opening (k of n) 3 of 5 (today's), 2 of 3, 1 of 1 × severe opening off,
  at 3× the limit.
* **Rule**: for each of the issue's three bounds its *relative margin* — ``(F1 − 0.78)/0.78``,
  ``(NAB standard − 32.42)/32.42``, ``(13.55 − FAR %)/13.55`` — computed on each tuning group
  (``valve1``; the odd ``other`` files) and averaged over the two groups, so that the ``other``
  files count as much as ``valve1`` (the held-out split holds 4 valve files and 7 ``other`` ones,
  the tuning split 16 and 7: a pooled tuning score is mostly ``valve1``).  The chosen
  configuration has the largest smallest of the three averaged margins (ties: the largest second
  smallest).  The pooled tuning split's scores are recorded beside them, not used by the rule.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tune_valve1 import write_json

from sentinelle.evaluation.replay import Recording, SharedForecasters, replay, replay_settings
from sentinelle.evaluation.skab import ASSET_ON, FileResult, file_result, in_tuning_split, score_files, skab_recordings
from sentinelle.forecast.batcher import Estimator
from sentinelle.settings import DetectSettings

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results" / "skab"
"""Where this script writes its JSON, beside the report it informs."""

BOUNDS = {"f1": 0.78, "nab_standard": 32.42, "far_percent": 13.55}
GRID: dict[str, tuple[Any, ...]] = {
    "asset_clear_normal_steps": (10, 20, 30, 60),
    "open": ((3, 5), (2, 3), (1, 1)),
    "asset_severe_factor": (0.0, 3.0),
}
GROUPS = ("valve1", "other")


def margins(scores: dict[str, Any]) -> dict[str, float]:
    """Relative margin over each bound (negative: the bound is missed)."""
    return {
        "f1": (scores["f1"] - BOUNDS["f1"]) / BOUNDS["f1"],
        "nab_standard": (scores["nab_standard"] - BOUNDS["nab_standard"]) / BOUNDS["nab_standard"],
        "far_percent": (BOUNDS["far_percent"] - scores["far_percent"]) / BOUNDS["far_percent"],
    }


def balanced_margins(by_group: dict[str, dict[str, Any]]) -> list[float]:
    """Each bound's margin averaged over the tuning groups, smallest first (what the rule ranks)."""
    per = [margins(by_group[g]) for g in GROUPS]
    return sorted(sum(m[b] for m in per) / len(per) for b in BOUNDS)


def scores_of(files: list[FileResult]) -> dict[str, Any]:
    s = score_files(files)
    return {
        **s.outlier.rounded(),
        "f1_exact": round(s.outlier.f1, 4),
        "nab_standard": s.nab["standard"],
        "nab_low_fp": s.nab["reward_low_fp"],
        "nab_low_fn": s.nab["reward_low_fn"],
        **{k: s.nab_counts[k] for k in ("detected", "missed", "false_positives")},
        "alert_events": {
            "nab_standard": s.nab_alert_events["standard"],
            "nab_low_fp": s.nab_alert_events["reward_low_fp"],
            "nab_low_fn": s.nab_alert_events["reward_low_fn"],
            **{k: s.nab_alert_events_counts[k] for k in ("detected", "missed", "false_positives")},
        },
    }


def tuning_recordings() -> list[Recording]:
    """The 23 tuning files only (asserted): the held-out files are never replayed by a tuning grid."""
    recs = [r for r in skab_recordings() if in_tuning_split(r.name)]
    assert len(recs) == 23 and all(in_tuning_split(r.name) for r in recs)
    return recs


def replay_scores(
    detect: DetectSettings, recs: list[Recording], shared: SharedForecasters, estimator: Estimator | None = None
) -> dict[str, Any]:
    """One configuration through the daemon's stages (Holt, cached; ``estimator``: the asset model's estimates):
    pooled, per group, the rule's margins."""
    settings = replay_settings("holt", detect)
    files = []
    for r in recs:
        assert r.labels is not None and r.changepoints is not None and in_tuning_split(r.name)
        files.append(file_result(r, replay(r, settings, shared["holt"], estimator)))
    by_group = {g: scores_of([f for f in files if f.group == g]) for g in GROUPS}
    return {
        "tuning": scores_of(files),
        "by_group": by_group,
        "balanced_margins": [round(m, 4) for m in balanced_margins(by_group)],
    }


def run(config: dict[str, Any], recs: list[Recording], shared: SharedForecasters) -> dict[str, Any]:
    k, n = config["open"]
    detect = DetectSettings(
        asset_enabled=True,
        asset_clear_normal_steps=config["asset_clear_normal_steps"],
        asset_open_k=k,
        asset_open_n=n,
        asset_severe_factor=config["asset_severe_factor"],
    )
    return {"config": {**config, "open": f"{k} of {n}"}, **replay_scores(detect, recs, shared)}


def run_over_asset_on(config: dict[str, Any], recs: list[Recording], shared: SharedForecasters) -> dict[str, Any]:
    """One grid row: ``config`` over the SKAB evaluation's ``ASSET_ON``, replayed and scored like ``replay_scores``.

    The grids that tune the asset detector from ``ASSET_ON`` on (change points, onset, settling, slow chart,
    deadband) all score a row this way; one function keeps their rows comparable.
    """
    return {"config": config, **replay_scores(DetectSettings(**{**ASSET_ON, **config}), recs, shared)}


def write_choice(
    out: Path,
    rows: list[dict[str, Any]],
    today: dict[str, Any],
    chosen: dict[str, Any],
    *,
    base: str,
    rule: str,
    convention: bool = True,
) -> None:
    """A grid tuned from ``ASSET_ON`` (frozen at commit ``base``): its JSON (what was replayed, the rule, today's
    row, the choice and whether it differs from today's settings, then every row) and the choice printed.

    The change-point, onset, settling and slow-chart grids and their follow-ups all record this head; written
    once, their JSON files keep one layout that the held-out scripts and the report read alike.  ``convention``:
    name the changepoint convention scored (the alert stream's events), as the grids that scored it did.
    """
    head = {
        "tuning_split": "valve1 + other/{1,3,5,7,9,11,13} (the held-out files were not replayed)",
        "forecaster": "holt (per-tag residuals; the asset detector does not read forecasts)",
        "base": f"ASSET_ON (frozen at {base})",
        **(
            {"changepoint_convention": "the alert stream's events (opened, updated, cleared) of any alert of the asset"}
            if convention
            else {}
        ),
        "rule": rule,
        "today": today,
        "chosen": chosen,
        "adopted": chosen["config"] != today["config"],
    }
    write_json(out, head, rows)
    print("chosen:", json.dumps(chosen))


def run_grid(
    grid: dict[str, tuple[Any, ...]],
    run_one: Callable[[dict[str, Any], list[Recording], SharedForecasters], dict[str, Any]],
) -> list[dict[str, Any]]:
    """Every configuration of ``grid`` replayed on the tuning files (forecasts shared), each row printed as it comes."""
    recs = tuning_recordings()
    shared = SharedForecasters()
    rows = []
    started = time.perf_counter()
    for values in itertools.product(*grid.values()):
        row = run_one(dict(zip(grid, values, strict=True)), recs, shared)
        rows.append(row)
        print(f"{time.perf_counter() - started:.0f}s", json.dumps(row), flush=True)
    return rows


def main() -> None:
    rows = run_grid(GRID, run)
    best = max(rows, key=lambda r: r["balanced_margins"])
    head = {
        "tuning_split": "valve1 + other/{1,3,5,7,9,11,13} (the held-out files were not replayed)",
        "forecaster": "holt (per-tag residuals; the asset detector does not read forecasts)",
        "rule": "largest smallest relative margin over F1 > 0.78, NAB standard > 32.42, FAR < 13.55 %, each "
        "margin averaged over the tuning groups valve1 and other-odd (ties: the second smallest)",
        "chosen": best,
    }
    write_json(RESULTS.joinpath("tuning_asset_alerting.json"), head, rows)
    print("chosen:", json.dumps(best))


if __name__ == "__main__":
    main()
