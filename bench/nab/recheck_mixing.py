"""Issue 13: the two opt-in candidates re-checked with the model's forecasts after its inference-time mixing (a157af4).

The rule is ``docs/results/nab/mixing-recheck/RULE.md`` (committed before any score).  This script applies it to
the runs of ``bench/nab/diag_fp_rows.py`` (the model only: Holt's forecasts do not depend on the mixing, so its
rows are the recorded ones, once the re-measurement reproduced Holt's shipped rows).

    python bench/nab/recheck_mixing.py DIAG                       # step 1: tuning rows, pass / choose
    python bench/nab/recheck_mixing.py DIAG --held-out T|C S L N  # step 2: S L N = step 0's model held-out row

DIAG holds ``model.npz`` (shipped) and the candidates' npz as ``diag_fp_rows.py`` names them; a candidate whose
stage run is missing is scored offline from the shipped run where that is exact (T: the rest per term,
``tune_rest_scope.rested``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

Row = tuple[float, float, float]

HOLT_TUNING: dict[str, Row] = {"shipped": (70.71, 61.04, 75.80), "T": (72.89, 62.06, 78.42), "C": (74.32, 64.59, 79.96)}
HOLT_HELD_OUT: dict[str, Row] = {
    "shipped": (65.91, 54.38, 72.19),
    "T": (68.15, 55.08, 74.81),
    "C": (67.15, 54.70, 73.02),
}
NPZ = {
    "shipped": "model",
    "T": "model_score_rest_scopeterm",
    "C": "model_floor1_score_refractory_max_decades1000_score_rest_scopeterm_score_step_floor0.29",
}
MAX_FALL = 0.2
SIMPLER_WITHIN = 0.3


def passes(cand: dict[str, Row], base: dict[str, Row]) -> bool:
    """Step 1: every forecaster's standard and low FP rise, none of the numbers falls by more than 0.2.

    >>> passes({"m": (1.0, 1.0, 0.9)}, {"m": (0.5, 0.5, 1.0)}), passes({"m": (1.0, 0.5, 1.0)}, {"m": (0.5, 0.5, 1.0)})
    (True, False)
    """
    rise = all(cand[fc][i] > base[fc][i] for fc in base for i in (0, 1))
    return rise and all(cand[fc][i] >= base[fc][i] - MAX_FALL for fc in base for i in range(3))


def choose(tuning: dict[str, dict[str, Row]]) -> str | None:
    """Step 1's choice: of the passing candidates the largest sum of the six; T if within 0.3 of it (simpler).

    >>> b = {"h": (0.0, 0.0, 0.0)}
    >>> choose({"shipped": b, "T": {"h": (1.0, 1.0, 0.0)}, "C": {"h": (1.0, 1.2, 0.0)}})
    'T'
    >>> choose({"shipped": b, "T": {"h": (1.0, 1.0, 0.0)}, "C": {"h": (1.0, 1.5, 0.0)}})
    'C'
    >>> choose({"shipped": b, "T": {"h": (1.0, -1.0, 0.0)}}) is None
    True
    """
    ok = [c for c in ("T", "C") if c in tuning and passes(tuning[c], tuning["shipped"])]
    if not ok:
        return None
    total = {c: sum(sum(v) for v in tuning[c].values()) for c in ok}
    best = max(total.values())
    return next(c for c in ok if total[c] >= best - SIMPLER_WITHIN)


def ships(cand: str, held_out: dict[str, Row], shipped: dict[str, Row]) -> bool:
    """Step 2, each candidate by its own earlier rule: standard and low FP do not fall, none falls by more than 0.2;
    C also: the model's gap to Holt on standard and low FP widens by no more than 0.2 (its chiller condition was
    met when it was first checked; T's holds by construction).

    >>> s = {"holt": (1.0, 1.0, 1.0), "model": (1.0, 1.0, 1.0)}
    >>> ships("T", {"holt": (2.0, 1.0, 1.0), "model": (1.0, 1.0, 1.0)}, s)
    True
    >>> ships("C", {"holt": (2.0, 1.0, 1.0), "model": (1.0, 1.0, 1.0)}, s)
    False
    """
    no_fall = all(held_out[fc][i] >= shipped[fc][i] for fc in shipped for i in (0, 1))
    bounded = all(held_out[fc][i] >= shipped[fc][i] - MAX_FALL for fc in shipped for i in range(3))
    if cand == "T":
        return no_fall and bounded
    gap = all(
        held_out["model"][i] - held_out["holt"][i] >= shipped["model"][i] - shipped["holt"][i] - MAX_FALL
        for i in (0, 1)
    )
    return no_fall and bounded and gap


def main() -> None:
    from tune_rest_scope import rested, slots_of

    from sentinelle.evaluation.nab_corpus import HELD_OUT, TUNING, load_corpus, split_of
    from sentinelle.evaluation.nab_scorer import PROFILES, score_corpus

    diag = Path(sys.argv[1])
    held = "--held-out" in sys.argv
    files = load_corpus(Path("/work/shared/data/nab/data"))
    split = split_of(f.name for f in files)
    mine = [f for f in files if split[f.name] == (HELD_OUT if held else TUNING)]

    def row(scores: list[np.ndarray], label: str) -> Row:
        cs = [score_corpus([(f.labelled, s) for f, s in zip(mine, scores, strict=True)], p) for p in PROFILES]
        r = (round(cs[0].normalised, 2), round(cs[1].normalised, 2), round(cs[2].normalised, 2))
        print(
            f"model {label}: {r} (standard, low FP, low FN); windows {cs[0].detected}/{cs[0].windows}, "
            f"FP rows {cs[0].false_positive_rows}",
            flush=True,
        )
        return r

    def stage(name: str) -> list[np.ndarray] | None:
        path = diag / f"{NPZ[name]}{'_held_out' if held else ''}.npz"
        if not path.is_file():
            return None
        z = np.load(path)
        return [np.nan_to_num(np.clip(z[f"{f.name}|score"], 0.0, 1.0)) for f in mine]

    if held:
        cand, s, low_fp, low_fn = sys.argv[sys.argv.index("--held-out") + 1 :][:4]
        scores = stage(cand)
        assert scores is not None, f"no held-out stage run of {cand}"
        model = row(scores, f"{cand} held out")
        shipped = {"holt": HOLT_HELD_OUT["shipped"], "model": (float(s), float(low_fp), float(low_fn))}
        verdict = ships(cand, {"holt": HOLT_HELD_OUT[cand], "model": model}, shipped)
        print(f"{cand}: {'ships' if verdict else 'not shipped'} by the rule")
        return
    tuning: dict[str, dict[str, Row]] = {}
    for name in ("shipped", "T", "C"):
        scores = stage(name)
        label = name
        if scores is None and name == "T":
            label = "T (offline rest per term, from the shipped run)"
            base = np.load(diag / f"{NPZ['shipped']}.npz")
            scores = [rested(base[f"{f.name}|residual"], base[f"{f.name}|novelty"], *slots_of(f), "term") for f in mine]
        if scores is None:
            print(f"model {name}: no stage run")
            continue
        tuning[name] = {"holt": HOLT_TUNING[name], "model": row(scores, label)}
    for name in ("T", "C"):
        if name in tuning:
            print(f"{name}: {'passes' if passes(tuning[name], tuning['shipped']) else 'fails'} on the tuning split")
    print(f"chosen: {choose(tuning)}")


if __name__ == "__main__":
    main()
