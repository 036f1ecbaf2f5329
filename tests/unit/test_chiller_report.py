"""The chiller report's rows, run order, model budget, forecast caches and the issues' targets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sentinelle.evaluation.chiller_eval import (
    FAULT_KINDS,
    ChillerRun,
    Config,
    RunOutcome,
    RunResult,
    chiller_plan,
    evaluate_run,
    simulate,
    summarise,
)
from sentinelle.evaluation.chiller_report import _rows, interleaved, report_configs, run_evaluation
from sentinelle.evaluation.chiller_targets import issue13, issue14, target_lines
from sentinelle.evaluation.detection import AlertSpan, FaultInterval, score_run
from sentinelle.evaluation.replay import SharedForecasters, replay_settings
from sentinelle.records import WindowBatch

T0 = 1_700_000_000.0


def _outcome(name: str, truth: list[FaultInterval], opened_at: list[float], end: float = 10_000.0) -> RunOutcome:
    spans = [AlertSpan("chiller1", "chiller1.power_kw", "relation", T0 + t, None) for t in opened_at]
    score = score_run(truth, spans, T0, T0 + end, 300.0)
    return RunOutcome(RunResult(name, score, not truth), [], T0, T0 + end, 1.0, "holt")


def _fault(kind: str, onset: float = 1000.0, end: float = 2000.0) -> list[FaultInterval]:
    return [FaultInterval(kind, "chiller1", ("chiller1.power_kw",), T0 + onset, T0 + end)]


def test_issue14_says_by_how_much_each_target_is_missed() -> None:
    outcomes = [
        _outcome("sensor_drift-0", _fault("sensor_drift"), [1100.0]),  # detected after 100 s
        _outcome("fouling-0", _fault("fouling"), []),  # missed
        _outcome("fault-free-0", [], [5000.0]),  # one false alarm in 10,000 s: 8.64 per day
    ]
    r = summarise(Config("asset model: residuals alone", "model", False, False, asset_model=True), outcomes)
    t = issue14(r)
    assert not t["met"]
    assert t["checks"] == {"kinds": False, "faults": False, "false_alarms": False, "slow_faults": False}
    assert "1/2 kinds (1 short)" in t["text"] and "1/2 faults (target ≥ 19, 18 short)" in t["text"]
    assert "sensor_drift 1/1 within 2 h, slowest 100 s" in t["text"]
    assert "fouling 0/1 within 2 h (1 short)" in t["text"]
    per_day = 86_400.0 / (3 * 10_000.0 - 2 * 1300.0)  # one false alarm; exposure: 3 runs less 2 faults + tolerance
    assert f"{per_day:.1f} false alarms per day" in t["text"] and f"over by {per_day - 0.5:.1f}" in t["text"]


def test_issue13_is_met_only_when_every_condition_holds() -> None:
    good = [_outcome("spike-0", _fault("spike"), [1010.0]), _outcome("fault-free-0", [], [])]
    r = summarise(Config("holt: per-tag + rules (shipped)", "holt", False, True), good)
    assert issue13(r)["met"] and "budget 3" in issue13(r)["text"]
    # Four openings in 600 s of fault run: 4 per 10 min over the fault runs, over the budget of 1 by 3.
    noisy = [_outcome("spike-0", _fault("spike"), [1010.0, 1020.0, 1030.0, 1040.0], end=600.0 + 1040.0)]
    r2 = summarise(Config("holt: per-tag + rules (shipped)", "holt", False, True), noisy)
    t = issue13(r2)
    assert not t["met"] and not t["checks"]["mean_budget"] and t["checks"]["kinds"]
    # Only shipped rows get issue 13 and only asset-model rows issue 14.
    rows = [r, r2, summarise(Config("holt: residuals alone", "holt", False, False), good)]
    assert [x["issue"] for x in target_lines(rows)] == [13, 13]


def test_runs_are_interleaved_so_an_early_stop_is_balanced() -> None:
    order = interleaved(chiller_plan(3, 3, 60.0, first_seed=2100))
    assert len(order) == 24 and len({r.name for r in order}) == 24
    slow = ["sensor_drift-0", "fouling-0", "pump_degradation-0"]
    assert order[0].name == "fault-free-0" and [r.name for r in order[1:4]] == slow
    assert {r.name for r in order[1:8]} == {f"{k}-0" for k in FAULT_KINDS}
    assert order[8].name == "fault-free-1" and order[16].name == "fault-free-2"


def test_cheap_rows_are_also_reported_on_the_model_rows_runs() -> None:
    a = _outcome("spike-0", _fault("spike"), [1010.0])
    b = _outcome("fault-free-0", [], [5000.0])
    plan = [ChillerRun("spike-0", 1, (), 1.0), ChillerRun("fault-free-0", 2, (), 1.0)]
    configs = [Config("model: x", "model", False, True), Config("holt: y", "holt", False, True)]
    rows = _rows(configs, [[a], [a, b]], plan)
    assert [(s, r.label) for s, r in rows] == [
        ("1 of 2 runs", "model: x"),
        ("2 of 2 runs", "holt: y"),
        ("1 of 2 runs", "holt: y, on the model rows' 1 runs"),
    ]
    assert rows[1][1].false_alarms == 1 and rows[2][1].false_alarms == 0


def _window(value: float) -> WindowBatch:
    return WindowBatch(
        ts=1.0,
        period_s=1.0,
        tags=("a.x", "a.y"),
        assets=("a", "a"),
        values=np.array([value, 2.0]),
        contexts=np.full((2, 8), value),
    )


class _FakeAssetForecaster:
    calls = 0

    def __init__(
        self,
        path: Path,
        levels: tuple[float, ...],
        mask_recent_steps: int = 0,
        every_steps: int = 1,
        context_stride_steps: int = 1,
        mask_groups: tuple[tuple[str, ...], ...] = (),
    ) -> None:
        self.levels = levels
        self.mask = mask_recent_steps

    def estimate_window(self, window: WindowBatch) -> np.ndarray:
        _FakeAssetForecaster.calls += 1
        return np.full((len(window), len(self.levels)), float(window.values[0]) + 100.0 * self.mask)


def test_estimates_are_cached_per_run_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sentinelle.forecast.asset_engine as engine

    monkeypatch.setattr(engine, "AssetForecaster", _FakeAssetForecaster)
    _FakeAssetForecaster.calls = 0
    first = SharedForecasters(tmp_path)
    first.begin("run-a")
    est = first.estimator(tmp_path / "ckpt")
    assert est(_window(1.0))[0, 0] == 1.0 and est(_window(1.0))[0, 0] == 1.0 and _FakeAssetForecaster.calls == 1
    first.save()
    assert (tmp_path / "run-a-asset_model.pkl").is_file()
    again = SharedForecasters(tmp_path)
    again.begin("run-a")
    assert again.estimator(tmp_path / "ckpt")(_window(1.0))[0, 0] == 1.0 and _FakeAssetForecaster.calls == 1
    again.begin("run-b")  # another run: nothing cached for it
    assert again.estimator(tmp_path / "ckpt")(_window(3.0))[0, 0] == 3.0 and _FakeAssetForecaster.calls == 2


def test_the_estimator_is_used_only_by_asset_model_rows() -> None:
    """A short development run (seed 7): the asset-model row asks for estimates at every slot, others never."""
    rec, truth = simulate(ChillerRun("fault-free-0", 7, (), 960.0))
    calls: list[int] = []

    def estimator(w: WindowBatch) -> np.ndarray:
        calls.append(len(w))
        return np.full((len(w), 3), np.nan)

    for asset_model in (False, True):
        config = Config("c", "holt", asset=False, rules=False, asset_model=asset_model)
        evaluate_run(rec, truth, replay_settings("holt", config.detect_settings()), config, None, estimator)
        assert (len(calls) >= len(rec.timestamps) - 1) is asset_model
    assert set(calls) == {len(rec.tags)}


def test_model_rows_stop_at_their_budget_and_the_report_says_so(tmp_path: Path) -> None:
    """Budget 0: the model row takes no run (the model is never loaded), the Holt row takes the plan."""
    configs: list[Any] = [
        Config("holt: per-tag + rules (shipped)", "holt", False, True),
        Config("model: residuals alone", "model", False, False),
    ]
    run_evaluation(
        tmp_path, runs_per_kind=0, fault_free_runs=1, fault_free_s=60.0, first_seed=7, configs=configs,
        costly_budget_s=0.0, log=lambda _: None,
    )  # fmt: skip
    doc = json.loads((tmp_path / "report.json").read_text())
    assert [(a["run_set"], a["label"]) for a in doc["ablation"]] == [
        ("1 of 1 runs", "holt: per-tag + rules (shipped)"),
        ("0 of 1 runs", "model: residuals alone"),
    ]
    assert "model_checkpoint" in doc and doc["plan"].endswith("seeds 7..7")
    assert "| holt: per-tag + rules (shipped) | 1 of 1 runs |" in (tmp_path / "report.md").read_text()


def test_report_rows_are_the_issues_rows() -> None:
    labels = [c.label for c in report_configs({"horizon_steps": 64})]
    assert labels[-1] == "asset model: residuals alone, horizon_steps 64"
    asset_rows = [c for c in report_configs() if c.asset_model]
    assert len(asset_rows) == 1 and asset_rows[0].detect_settings().horizon_enabled
    assert not any(c.asset_model or c.detect_settings().horizon_enabled for c in report_configs()[:4])
    cheap = report_configs({"asset_estimate_ewma_alpha": 0.03}, model_rows=False, asset_forecaster="holt")
    assert [c.label for c in cheap] == [
        "holt: per-tag + rules (shipped)",
        "holt: residuals alone",
        "asset model + holt: residuals alone (estimate-now + horizon)",
        "asset model + holt: residuals alone, asset_estimate_ewma_alpha 0.03",
    ]
    assert all(c.forecaster == "holt" for c in cheap)
    assert cheap[-1].detect_settings().asset_estimate_ewma_alpha == 0.03


def test_each_mask_of_the_asset_model_has_its_own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A masked estimate answers the same window differently: it must not be served the unmasked one's."""
    import sentinelle.forecast.asset_engine as engine

    monkeypatch.setattr(engine, "AssetForecaster", _FakeAssetForecaster)
    _FakeAssetForecaster.calls = 0
    shared = SharedForecasters(tmp_path)
    shared.begin("run-a")
    assert shared.estimator(tmp_path / "ckpt")(_window(1.0))[0, 0] == 1.0
    assert shared.estimator(tmp_path / "ckpt", mask_recent_steps=2)(_window(1.0))[0, 0] == 201.0
    assert _FakeAssetForecaster.calls == 2
    shared.save()
    assert {p.name for p in tmp_path.glob("*.pkl")} == {"run-a-asset_model.pkl", "run-a-asset_model-mask2.pkl"}
    again = SharedForecasters(tmp_path)
    again.begin("run-a")
    assert again.estimator(tmp_path / "ckpt", mask_recent_steps=2)(_window(1.0))[0, 0] == 201.0
    assert _FakeAssetForecaster.calls == 2


def test_a_masked_asset_row_is_added_only_when_asked() -> None:
    plain = report_configs(model_rows=False, asset_forecaster="holt")
    masked = report_configs(model_rows=False, asset_forecaster="holt", asset_mask_recent_steps=256)
    assert all(c.asset_mask_recent_steps == 0 for c in plain)
    assert len(masked) == len(plain) + 1
    row = masked[-1]
    assert row.asset_model and row.asset_mask_recent_steps == 256 and row.forecaster == "holt" and not row.rules
    assert "256" in row.label


def test_a_second_blind_row_carries_its_own_detect_settings() -> None:
    own = {"asset_estimate_open_k": 16, "asset_estimate_open_n": 24}
    base = report_configs(model_rows=False, asset_forecaster="holt", asset_mask_recent_steps=128)
    both = report_configs(model_rows=False, asset_forecaster="holt", asset_mask_recent_steps=128, blind_detect=own)
    assert len(both) == len(base) + 1 and both[-2] == base[-1]
    row = both[-1]
    assert row.asset_mask_recent_steps == 128 and row.detect["asset_estimate_open_k"] == 16
    assert row.detect_settings().asset_estimate_open_n == 24 and row.detect_settings().horizon_enabled
    assert "asset_estimate_open_k 16" in row.label
    assert report_configs(model_rows=False, blind_detect=own) == report_configs(model_rows=False)  # needs a mask
