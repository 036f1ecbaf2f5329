"""Whether the outdoor-air damper leak condition joins the headline, and at which tolerance: LBNL's tuning half.

The condition (``damper_leak_rule``, detect/afdd.py ``OAL``): with the outdoor-air damper
commanded closed and the fan running, the outdoor-air fraction from temperatures
``Q = (MAT − RAT) / (OAT − RAT)`` (only where ``|OAT − RAT| ≥ ΔTmin`` = 5.6 °C) exceeds
``damper_leak_fraction``.  One-sided, unlike APAR2C's ``|Q| > εf``: a leaking or stuck-open damper
lets outdoor air in, which moves ``Q`` *up*; a negative ``Q`` (mixed air on the far side of the
return air from the outdoor air) is a sensor inconsistency, not a leak.  Why: APAR2C at εf 0.1
took the stuck damper but flagged SZVAV's fault-free days, whose ``Q`` with the damper closed is
about −0.2 (``tuning_apar.json``).

Candidates (fixed before this script was run): 0.1, the 10 % outdoor-air-fraction threshold of
APAR 2/16 implementations ("fraction suspect", as in ``tune_apar.py``), and 0.05, half of it.
(A feasibility look at the tuning days' ``Q`` from the CSVs came first: 5-minute means, damper
closed, held 30 minutes — the 20 % leak day about 0.08, the stuck-open day 0.28, SZCAV's other
days at most 0.03, SZVAV's fault-free days below 0; it is why the candidates are these.)

**Decision rule, written before this script was run:** on the *tuning* days only
(``evaluation/lbnl.split_of``; ``ahu_fault`` alerts of the Guideline 36 conditions plus the new
condition, no APAR; Holt, the mode rules as in the headline), with gain = detection rate −
false-positive rate (day level):

1. a candidate that flags more than 20 % of the tuning fault-free days (issue 13's 6/30) is out;
2. the condition joins the headline if the better eligible candidate gains more than 0.05 over
   Guideline 36 alone (``tuning_afdd.json``, ``calibration_s = 0``: 15/19, 3/16);
3. between the two, 0.05 only if it gains more than 0.05 over 0.1 (else 0.1, the published one).

The held-out days are never replayed here.

    PYTHONPATH=daemon:bench SENTINELLE_DATA_DIR=../shared/data nice -n 10 python bench/lbnl/tune_leak.py
"""

from __future__ import annotations

from _tries import ROOT, two_candidate_rule

CANDIDATES = (0.1, 0.05)


def main() -> None:
    two_candidate_rule(
        "damper_leak_fraction",
        CANDIDATES,
        {"damper_leak_rule": True},
        ROOT / "tuning_leak.json",
        "lbnl_damper_leak_tuning",
        "damper leak",
    )


if __name__ == "__main__":
    main()
