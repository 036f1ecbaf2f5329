"""The SKAB evaluation's headline settings are the ones its last tuning stage recorded as chosen.

``bench/skab/tune_settle_rearm.py`` chose on the 23 tuning files and wrote ``settle/tuning_settle_rearm.json`` before
the held-out split was scored; ``evaluation.skab.ASSET_ON`` must carry that choice (and ``PREVIOUS_HEADLINE``
the base it was compared with), or the report's "chosen on the tuning files" would describe settings nobody ran.
"""

from __future__ import annotations

import json
from pathlib import Path

from sentinelle.evaluation.skab import ASSET_ON, PREVIOUS_HEADLINE
from sentinelle.settings import DetectSettings

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results" / "skab"


def _tuning() -> dict[str, object]:
    data = json.loads(RESULTS.joinpath("settle", "tuning_settle_rearm.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_headline_is_the_recorded_choice() -> None:
    data = _tuning()
    chosen = data["chosen"]
    assert isinstance(chosen, dict) and data["adopted"] is True
    settings = DetectSettings(**ASSET_ON)
    for key, value in chosen["config"].items():
        assert getattr(settings, key) == value, key


def test_previous_headline_is_the_grid_base() -> None:
    today = _tuning()["today"]
    assert isinstance(today, dict)
    settings = DetectSettings(**PREVIOUS_HEADLINE)
    for key, value in today["config"].items():
        assert getattr(settings, key) == value, key
    assert PREVIOUS_HEADLINE != ASSET_ON


def test_both_are_valid_settings() -> None:
    for overrides in (ASSET_ON, PREVIOUS_HEADLINE):
        d = DetectSettings(**overrides)
        assert d.asset_enabled and d.asset_open_k == 2 and d.asset_open_n == 3
