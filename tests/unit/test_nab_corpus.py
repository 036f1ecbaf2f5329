"""A NAB-style corpus on disk: windows mapped to rows, NAB's result files, the tuning split, the whole command."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from sentinelle.errors import ConfigError
from sentinelle.evaluation.nab_corpus import (
    HELD_OUT,
    TUNING,
    load_corpus,
    read_scores,
    result_path,
    split_of,
    write_result,
)
from sentinelle.evaluation.stream_eval import StreamResult


def _corpus(tmp_path: Path, rows: int = 400) -> tuple[Path, Path]:
    data = tmp_path / "nab" / "data"
    windows: dict[str, list[list[str]]] = {}
    rng = np.random.default_rng(0)
    for cat, names in {"catA": ["b.csv", "a.csv", "c.csv"], "catB": ["z.csv"]}.items():
        (data / cat).mkdir(parents=True)
        for name in names:
            # Hourly rows at :04 past the hour (off the epoch grid), a spike at row 300.
            stamps = [f"2015-01-{1 + h // 24:02d} {h % 24:02d}:00:04" for h in range(rows)]
            values = rng.normal(size=rows)
            values[300] = 30.0
            with open(data / cat / name, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["timestamp", "value"])
                w.writerows([t, f"{v:.3f}"] for t, v in zip(stamps, values, strict=True))
            windows[f"{cat}/{name}"] = [[stamps[290] + ".000000", stamps[310] + ".000000"]] if name != "z.csv" else []
    labels = tmp_path / "nab" / "labels" / "combined_windows.json"
    labels.parent.mkdir(parents=True)
    labels.write_text(json.dumps(windows))
    return data, labels


def test_split_alternates_within_each_category_by_name() -> None:
    names = ["x/a3.csv", "x/a1.csv", "x/a2.csv", "y/only.csv", "x/a4.csv"]
    split = split_of(names)
    assert [split[n] for n in ("x/a1.csv", "x/a2.csv", "x/a3.csv", "x/a4.csv")] == [TUNING, HELD_OUT, TUNING, HELD_OUT]
    assert split["y/only.csv"] == TUNING
    assert split_of(reversed(names)) == split  # the order given does not matter


def test_loader_maps_windows_to_rows_and_result_files_round_trip(tmp_path: Path) -> None:
    data, labels = _corpus(tmp_path)
    files = load_corpus(data, labels)
    assert [f.name for f in files] == ["catA/a.csv", "catA/b.csv", "catA/c.csv", "catB/z.csv"]
    assert files[0].labelled.windows == ((290, 310),) and files[3].labelled.windows == ()
    assert files[0].timestamps[1] - files[0].timestamps[0] == 3600.0
    scores = np.linspace(0, 1, 400)
    path = write_result(tmp_path / "results", "det", files[0], scores)
    assert path == result_path(tmp_path / "results", "det", "catA/a.csv") == tmp_path / "results/det/catA/det_a.csv"
    with open(path) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["timestamp", "value", "anomaly_score", "label"]
    assert rows[1][:2] == [files[0].timestamp_text[0], files[0].value_text[0]]
    assert [int(r[3]) for r in rows[1:]].count(1) == 21
    assert np.array_equal(read_scores(tmp_path / "results", "det", files[:1])[0], scores)
    with pytest.raises(ValueError, match="may not contain"):
        result_path(tmp_path, "bad_name", "catA/a.csv")


def test_a_window_bound_that_is_not_a_row_is_an_error(tmp_path: Path) -> None:
    data, labels = _corpus(tmp_path)
    windows = json.loads(labels.read_text())
    windows["catA/a.csv"] = [["2015-01-02 00:00:00.000000", "2015-01-03 00:00:04.000000"]]  # :00, not :04
    labels.write_text(json.dumps(windows))
    with pytest.raises(ConfigError, match="matches 0 rows"):
        load_corpus(data, labels)


def test_evaluate_nab_command_writes_results_and_report(tmp_path: Path) -> None:
    from sentinelle.cli import main

    data, labels = _corpus(tmp_path)
    out = tmp_path / "report"
    args = ["evaluate", "--dataset", "nab", "--data", str(data), "--labels", str(labels), "--out", str(out)]
    code = main([*args, "--forecasters", "naive"])
    assert code == 0
    result = json.loads((out / "results.json").read_text())
    det = result["forecasters"]["naive"]["detectors"]
    # The combined per-tag score, the openings, and each term of the shipped score alone (the ablation).
    assert set(det) == {
        "sentinelleNaive",
        "sentinelleNaiveOpenings",
        "sentinelleNaiveResidual",
        "sentinelleNaiveNovelty",
    }
    assert set(det["sentinelleNaive"]) == {"held_out", "tuning", "all", "by_category", "held_out_by_category"}
    assert set(det["sentinelleNaive"]["held_out_by_category"]) == {"catA"}  # the one held-out file's category
    assert result["split"] == {HELD_OUT: ["catA/b.csv"], TUNING: ["catA/a.csv", "catA/c.csv", "catB/z.csv"]}
    assert result["forecasters"]["naive"]["periods_s"]["catA/a.csv"] == 3600.0
    assert (out / "results" / "sentinelleNaiveOpenings" / "catB" / "sentinelleNaiveOpenings_z.csv").is_file()
    assert (out / "results" / "sentinelleNaiveNovelty" / "catB" / "sentinelleNaiveNovelty_z.csv").is_file()
    report = (out / "report.md").read_text()
    assert "held-out split" in report
    assert "| score: novelty alone |" in report
    assert "Per category, held-out split" in report


def test_a_coarser_cadence_brings_holt_at_the_same_cadence_beside_holt_every_tick(tmp_path: Path) -> None:
    from sentinelle.evaluation.nab_report import markdown
    from sentinelle.evaluation.nab_stream import evaluate_nab, replay_corpus

    data, labels = _corpus(tmp_path)
    files = load_corpus(data, labels)
    results = tmp_path / "results"
    # naive stands in for the model: refreshed every 4 ticks, on the held-out files only.
    out = evaluate_nab(files, ["naive", "holt"], results, only={"naive": HELD_OUT}, refresh={"naive": 4})
    fcs = out["forecasters"]
    assert list(fcs) == ["naive", "holt", "holtEvery4"]
    extra = fcs["holtEvery4"]
    assert (extra["forecaster"], extra["refresh_every_steps"], extra["files"]) == ("holt", 4, HELD_OUT)
    assert fcs["holt"]["refresh_every_steps"] == 1
    assert {"sentinelleHoltEvery4", "sentinelleHoltEvery4Openings"} <= set(extra["detectors"])
    # The extra row is Holt forecasting every 4 ticks (not every tick) on the model's files.
    held = [f for f in files if split_of(g.name for g in files)[f.name] == HELD_OUT]
    written = read_scores(results, "sentinelleHoltEvery4", held)
    every4 = replay_corpus(held, "holt", refresh_every_steps=4)
    every1 = replay_corpus(held, "holt")
    for f, s in zip(held, written, strict=True):
        assert np.allclose(s, every4.results[f.name].score)
    assert any(not np.allclose(s, every1.results[f.name].score) for f, s in zip(held, written, strict=True))
    report = markdown({"meta": {}, **out})
    assert "| holt (forecast every 4 ticks), held_out files only | score |" in report
    assert "| holt | score |" in report


def test_every_tick_runs_bring_no_extra_holt_row(tmp_path: Path) -> None:
    from sentinelle.evaluation.nab_report import markdown
    from sentinelle.evaluation.nab_stream import evaluate_nab

    data, labels = _corpus(tmp_path)
    files = load_corpus(data, labels)
    out = evaluate_nab(files, ["naive"], tmp_path / "results", refresh={"naive": 1})
    assert list(out["forecasters"]) == ["naive"]
    assert "forecast every" not in markdown({"meta": {}, **out})


def _same_results(a: dict[str, StreamResult], b: dict[str, StreamResult], exact: bool) -> None:
    assert list(a) == list(b)
    for name in a:
        x, y = a[name], b[name]
        assert np.array_equal(x.slot, y.slot) and np.array_equal(x.opened, y.opened), name
        assert set(x.parts) == set(y.parts) and x.dropped == y.dropped and x.slots == y.slots
        pairs = [(x.score, y.score), *((x.parts[p], y.parts[p]) for p in x.parts)]
        for u, v in pairs:
            assert np.array_equal(u, v) if exact else np.allclose(u, v, rtol=1e-9, atol=1e-12), name


def test_files_replayed_in_worker_processes_give_the_one_process_results(tmp_path: Path) -> None:
    from sentinelle.evaluation.nab_stream import replay_corpus

    data, labels = _corpus(tmp_path, rows=360)
    files = load_corpus(data, labels)
    alone = replay_corpus(files, "holt")
    shared = replay_corpus(files, "holt", workers=3)
    assert [f.name for f in files] == list(shared.results)  # the caller's order, whatever the workers' shares
    _same_results(alone.results, shared.results, exact=True)
    assert all(r.score.max() > 0 for r in alone.results.values())  # scores that could differ


def test_model_forecasts_filled_apart_one_thread_per_share_replay_as_computed_in_place(tmp_path: Path) -> None:
    import torch

    from sentinelle.evaluation.nab_stream import forecast_corpus, replay_corpus
    from sentinelle.evaluation.replay import cache_stem

    data, labels = _corpus(tmp_path, rows=330)
    files = load_corpus(data, labels)[:2]
    threads = torch.get_num_threads()
    cache = tmp_path / "cache"
    try:
        # Two "processes'" shares, each on one thread, as bench/nab/model_forecasts.py runs them.
        for share in (files[:1], files[1:]):
            forecast_corpus(share, "model", cache, model_threads=1)
    finally:
        torch.set_num_threads(threads)
    folder = cache / cache_stem("model")  # names the model's inference-time mixing
    assert folder.name != "model" and len(list(folder.glob("*.npz"))) == len(files)
    in_place = replay_corpus(files, "model")  # no cache, torch's default threads
    from_cache = replay_corpus(files, "model", forecast_cache=cache)
    _same_results(in_place.results, from_cache.results, exact=False)
    # The cache is keyed by the windows: other windows (a file changed) are forecast afresh, not misread.
    (folder / "catA__b.csv.npz").replace(folder / "catA__a.csv.npz")
    again = replay_corpus(files[:1], "model", forecast_cache=cache)
    _same_results({files[0].name: in_place.results[files[0].name]}, again.results, exact=False)
