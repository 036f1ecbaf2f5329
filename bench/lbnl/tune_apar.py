"""Whether NIST's APAR rules join the Guideline 36 conditions, and at which published εf: LBNL's tuning half.

The APAR rules (detect/apar.py) and their thresholds are published: εt = 2 °C, fan heat 1.1 °C,
ΔTmin = 5.6 °C, εf = 0.3 (NIST's recommended values; Guideline 36 FC6's ΔF_OA).  A second published
εf exists: 0.1, the 10 % flow threshold of implementations of APAR 2/16 ("outdoor-air fraction
suspect").  The minimum outdoor-air fraction is the one site value the rules need; it is learned
on the warm-up (known-good) day, not chosen.

**Decision rule, written before this script was run:** on the *tuning* days only
(``evaluation/lbnl.split_of``; ``ahu_fault`` alerts, Holt, the mode rules as in the headline),
with gain = detection rate − false-positive rate (day level):

1. a candidate that flags more than 20 % of the tuning fault-free days (issue 13's 6/30) is out;
2. APAR joins the headline if the better of the two candidates gains more than 0.05 over Guideline
   36 alone (``calibration_s = 0`` in ``docs/results/lbnl/tuning_afdd.json``: 15/19, 3/16 — the
   same code path, the APAR conditions untested without ``apar_rules``);
3. between the two, εf = 0.1 only if it gains more than 0.05 over 0.3 (else NIST's default).

The held-out days are never replayed here.  (Before the rule: a feasibility look at the tuning days'
outdoor-air fraction with the damper commanded closed and at minimum outdoor air, from the CSVs.)

    PYTHONPATH=daemon SENTINELLE_DATA_DIR=../shared/data python bench/lbnl/tune_apar.py
"""

from __future__ import annotations

from _tries import ROOT, two_candidate_rule

CANDIDATES = (0.3, 0.1)


def main() -> None:
    two_candidate_rule(
        "outdoor_air_fraction_tolerance",
        CANDIDATES,
        {"apar_rules": True},
        ROOT / "tuning_apar.json",
        "lbnl_apar_tuning",
        "apar",
    )


if __name__ == "__main__":
    main()
