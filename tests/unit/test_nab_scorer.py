"""Our port of NAB's scorer against a literal transcription of NAB's sweeper, and against NAB's published results."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sentinelle.evaluation.nab import Profile, numenta_score
from sentinelle.evaluation.nab_corpus import default_nab_dir, load_corpus, read_scores
from sentinelle.evaluation.nab_scorer import (
    PROFILES,
    REWARD_LOW_FN,
    REWARD_LOW_FP,
    STANDARD,
    LabelledFile,
    optimise,
    probation_rows,
    score_corpus,
)


def _official_sweep(files: list[tuple[LabelledFile, np.ndarray]], profile: Profile) -> list[tuple[float, float]]:
    """``Sweeper.calcSweepScore`` + ``calcScoreByThreshold`` of numenta/NAB @ ea702d7, transcribed line by line
    (rows instead of timestamps): (threshold, raw score) pairs, thresholds descending."""
    tp_w, fp_w, fn_w = profile.a_tp, -profile.a_fp, -profile.a_fn

    def sig(x: float) -> float:
        return -1.0 if x > 3.0 else 2 * (1 / (1 + math.exp(5 * x))) - 1.0

    max_tp = sig(-1.0)
    points = []
    for f, scores in files:
        limits = list(f.windows)
        probation = min(math.floor(0.15 * f.rows), 0.15 * 5000)
        cur = name = width = right = None
        prev_width = prev_right = None
        for i in range(f.rows):
            if limits and i == limits[0][0]:
                cur = limits.pop(0)
                name = f"{f.name}|{cur[0]}"
                right = cur[1]
                width = float(cur[1] - cur[0] + 1)
            if cur is not None:
                weighted = sig(-(right - i + 1) / width) * tp_w / max_tp  # type: ignore[operator]
            elif prev_right is None:
                weighted = -1.0 * fp_w
            else:
                weighted = sig(abs(prev_right - i) / float(prev_width - 1)) * fp_w  # type: ignore[operator]
            points.append((float(scores[i]), weighted, name if i >= probation else "probationary"))
            if cur is not None and i == cur[1]:
                prev_right, prev_width = i, width
                cur = name = width = right = None
    scorable = sorted([p for p in points if p[2] != "probationary"], key=lambda p: p[0], reverse=True)
    parts: dict[str | None, float] = {"fp": 0.0}
    for p in scorable:
        if p[2] not in ("probationary", None):
            parts[p[2]] = -fn_w
    out = []
    threshold = 1.1
    for score, weighted, win in scorable:
        if score != threshold:
            out.append((threshold, sum(parts.values())))
            threshold = score
        if win is None:
            parts["fp"] += weighted
        else:
            parts[win] = max(parts[win], weighted)
    out.append((threshold, sum(parts.values())))
    return out


def _random_corpus(seed: int) -> list[tuple[LabelledFile, np.ndarray]]:
    rng = np.random.default_rng(seed)
    files = []
    for k in range(5):
        n = int(rng.integers(60, 400))
        starts = sorted(rng.choice(np.arange(5, n - 20), size=int(rng.integers(0, 4)), replace=False).tolist())
        windows: list[tuple[int, int]] = []
        for s in starts:
            if windows and s <= windows[-1][1] + 1:
                continue
            windows.append((s, min(n - 1, s + int(rng.integers(1, 15)))))
        # Few distinct values, so thresholds tie across rows and files, as NAB's detectors' scores do.
        scores = np.round(rng.random(n) ** 3, 2)
        files.append((LabelledFile(f"cat{k % 2}/f{k}.csv", n, tuple(windows)), scores))
    return files


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_vectorised_sweep_matches_nab_sweeper(seed: int, profile: Profile) -> None:
    files = _random_corpus(seed)
    sweep = _official_sweep(files, profile)
    best = max(sweep, key=lambda ts: ts[1])  # NAB sorts by score (stable): the first best, highest threshold
    best = next(ts for ts in sweep if ts[1] == best[1])
    threshold, raw = optimise(files, profile)
    assert raw == pytest.approx(best[1], abs=1e-9)
    assert threshold == best[0]
    # The per-file scores at that threshold add up to the corpus optimum, and agree with numenta_score.
    r = score_corpus(files, profile)
    assert sum(r.per_file_raw.values()) == pytest.approx(raw, abs=1e-9)
    for f, s in files:
        det = s >= threshold
        assert r.per_file_raw[f.name] == pytest.approx(
            numenta_score(det, f.windows, profile, probation_rows(f.rows)),
            abs=1e-9,
        )


def test_null_and_perfect_detectors_score_0_and_100() -> None:
    # (NAB's "perfect" counts every labelled window, even one inside the probation, which no detector
    # can reach: these files have none there.)
    files = [
        f
        for seed in range(6)
        for f in _random_corpus(seed)
        if f[0].windows and f[0].windows[0][0] >= probation_rows(f[0].rows)
    ]
    assert files
    null = [(f, np.zeros(f.rows)) for f, _ in files]
    perfect = []
    for f, _ in files:
        s = np.zeros(f.rows)
        for first, _last in f.windows:
            s[first] = 1.0
        perfect.append((f, s))
    for p in PROFILES:
        assert score_corpus(null, p).normalised == 0.0
        assert score_corpus(perfect, p).normalised == pytest.approx(100.0)


def test_probation_is_15_percent_at_most_750_rows() -> None:
    assert probation_rows(100) == 15 and probation_rows(4032) == 604 and probation_rows(22695) == 750


NAB = default_nab_dir()


@pytest.mark.skipif(
    not (NAB / "results" / "numenta").is_dir() or not (NAB / "results" / "windowedGaussian").is_dir(),
    reason=f"NAB's shipped results are not at {NAB / 'results'} (set SENTINELLE_DATA_DIR to the shared data)",
)
def test_reproduces_the_official_scores_of_the_shipped_results() -> None:
    files = load_corpus(NAB / "data")
    assert len(files) == 58 and sum(len(f.labelled.windows) for f in files) == 116
    got = {}
    for detector in ("numenta", "windowedGaussian"):
        scores = read_scores(NAB / "results", detector, files)
        pairs = [(f.labelled, s) for f, s in zip(files, scores, strict=True)]
        got[detector] = {p.name: round(score_corpus(pairs, p).normalised, 2) for p in PROFILES}
        if detector == "numenta":
            # The published low-FP 63.12 was scored at an older optimiser's threshold (results/numenta's
            # score file: 0.575195503235, raw 30.4310725171); at that threshold we give the same raw.
            at = score_corpus(pairs, REWARD_LOW_FP, threshold=0.575195503235)
            assert at.raw == pytest.approx(30.4310725171, abs=1e-8)
            assert round(at.normalised, 2) == 63.12
    # What NAB's own run.py --optimize --score --normalize prints on these files (bench/nab_official.py);
    # numenta's low FP is 63.21 there too: its optimiser finds threshold 0.5431, better than the published one.
    assert got["numenta"] == {"standard": 70.10, "reward_low_fp": 63.21, "reward_low_fn": 74.32}
    assert got["windowedGaussian"] == {"standard": 39.65, "reward_low_fp": 20.87, "reward_low_fn": 47.41}
    assert STANDARD.name == "standard" and REWARD_LOW_FN.a_fn == -2.0
