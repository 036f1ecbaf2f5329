"""NAB's official scorer on our result files, beside our port of it (``evaluation/nab_scorer.py``).

Runs ``python run.py --optimize --score --normalize -d DETECTOR --skipConfirmation -n 1`` of
``numenta/NAB`` in a writable temporary copy of the NAB folder (``data/`` linked, ``results/null``
copied: ``--normalize`` needs it), with a throwaway Python 3.11 venv holding ``pandas<2.3`` and
``simplejson`` (NAB pins pandas 0.23, which does not build there; made once with pip if missing),
then prints the official and our normalised scores side by side and writes them as JSON.

    python bench/nab_official.py --results evaluations/nab/results            # every detector there
    python bench/nab_official.py --results /tmp/r -d sentinelleHolt numenta   # named ones (numenta: NAB's own)
    python bench/nab_official.py --results /tmp/r -d sentinelleModel --split held_out   # one split's files only

A detector named ``numenta`` or ``windowedGaussian`` that is not in ``--results`` is taken from
NAB's shipped results, the check of the check.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import machine_info
from sentinelle.evaluation.nab_corpus import HELD_OUT, TUNING, default_nab_dir, load_corpus, read_scores, split_of
from sentinelle.evaluation.nab_scorer import PROFILES, score_corpus

OFFICIAL_PROFILES = {
    "standard": "standard",
    "reward_low_FP_rate": "reward_low_fp",
    "reward_low_FN_rate": "reward_low_fn",
}
_FINAL = re.compile(r"Final score for '(\S+)' detector on '(\S+)' profile = (-?[\d.]+)")


def ensure_venv(venv: Path, python: str) -> Path:
    """The venv's interpreter, creating the venv (pandas<2.3, simplejson) if it is not there."""
    exe = venv / "bin" / "python"
    if not exe.is_file():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(exe), "-m", "pip", "install", "-q", "pandas<2.3", "simplejson"], check=True)
    return exe


def official_scores(
    nab: Path, results: Path, detectors: list[str], exe: Path, only: list[str] | None = None
) -> dict[str, dict[str, float]]:
    """Run NAB's run.py on ``detectors`` in a temporary copy of ``nab``; the final scores it prints.

    ``only``: the files (``category/file.csv``) of a smaller corpus: the copy holds just them
    (data, labels, the null detector's results), and the null detector is scored on them first,
    since ``--normalize`` reads its totals.
    """
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="nab-official-") as tmp:
        root = Path(tmp)
        for part in ("config", "labels", "nab"):
            shutil.copytree(nab / part, root / part)
        shutil.copy(nab / "run.py", root / "run.py")
        (root / "results").mkdir()
        if only is None:
            (root / "data").symlink_to((nab / "data").resolve())
            shutil.copytree(nab / "results" / "null", root / "results" / "null")
        else:
            _subset(nab, root, only)
            _run(exe, root, ["--score", "-d", "null"])
        for d in detectors:
            src = results / d if (results / d).is_dir() else nab / "results" / d
            shutil.copytree(src, root / "results" / d, ignore=shutil.ignore_patterns("*_scores.csv"))
            if only is not None:  # the detector's result files of other files would be scored too
                for extra in (root / "results" / d).glob("*/*.csv"):
                    if f"{extra.parent.name}/{extra.name.removeprefix(d + '_')}" not in only:
                        extra.unlink()
            stdout = _run(exe, root, ["--optimize", "--score", "--normalize", "-d", d])
            for det, profile, score in _FINAL.findall(stdout):
                out.setdefault(det, {})[OFFICIAL_PROFILES[profile]] = float(score)
    return out


def _run(exe: Path, root: Path, args: list[str]) -> str:
    """NAB's run.py with ``args`` in ``root``; its standard output."""
    cmd = [str(exe), "run.py", *args, "--skipConfirmation", "-n", "1"]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-4000:])
        raise SystemExit(f"NAB's run.py {' '.join(args)} failed (exit {proc.returncode})")
    return proc.stdout


def _subset(nab: Path, root: Path, only: list[str]) -> None:
    """``root``'s data, labels and null results for the files ``only`` (links to the data, copies of the rest)."""
    labels = root / "labels" / "combined_windows.json"
    windows = json.loads(labels.read_text(encoding="utf-8"))
    labels.write_text(json.dumps({n: windows[n] for n in only}, indent=4), encoding="utf-8")
    # run.py imports the null detector's class before scoring it; this NAB copy ships its results only.
    stub = root / "nab" / "detectors" / "null"
    if not (stub / "null_detector.py").is_file():
        stub.mkdir(parents=True, exist_ok=True)
        (stub / "__init__.py").write_text("", encoding="utf-8")
        (stub / "null_detector.py").write_text("class NullDetector:  # scoring only\n    pass\n", encoding="utf-8")
    for name in only:
        category, file = name.split("/")
        (root / "data" / category).mkdir(parents=True, exist_ok=True)
        (root / "data" / name).symlink_to((nab / "data" / name).resolve())
        (root / "results" / "null" / category).mkdir(parents=True, exist_ok=True)
        shutil.copy(nab / "results" / "null" / category / f"null_{file}", root / "results" / "null" / category)


def ours(nab: Path, results: Path, detectors: list[str], only: list[str] | None = None) -> dict[str, dict[str, float]]:
    files = load_corpus(nab / "data", nab / "labels" / "combined_windows.json")
    files = [f for f in files if only is None or f.name in only]
    out = {}
    for d in detectors:
        where = results if (results / d).is_dir() else nab / "results"
        scores = read_scores(where, d, files)
        pairs = [(f.labelled, s) for f, s in zip(files, scores, strict=True)]
        out[d] = {p.name: round(score_corpus(pairs, p).normalised, 2) for p in PROFILES}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, required=True, help="folder of results/<detector>/… as NAB lays out")
    ap.add_argument("-d", "--detectors", nargs="+", default=None, help="default: every folder in --results")
    ap.add_argument("--nab", type=Path, default=None, help="the NAB folder (default: shared data's nab)")
    ap.add_argument("--venv", type=Path, default=Path("/tmp/nab-official-venv"), help="Python 3.11 venv for NAB")
    ap.add_argument("--python", default="python3.11", help="interpreter that makes the venv")
    ap.add_argument("--out", type=Path, default=None, help="JSON with both scores")
    ap.add_argument(
        "--split", choices=["all", HELD_OUT, TUNING], default="all", help="score the files of one split only"
    )
    args = ap.parse_args()
    nab = args.nab or default_nab_dir()
    detectors = args.detectors or sorted(p.name for p in args.results.iterdir() if p.is_dir())
    started = time.perf_counter()
    exe = ensure_venv(args.venv, args.python)
    only = None
    if args.split != "all":
        names = json.loads((nab / "labels" / "combined_windows.json").read_text(encoding="utf-8"))
        only = sorted(n for n, part in split_of(names).items() if part == args.split)
    official = official_scores(nab, args.results, detectors, exe, only)
    mine = ours(nab, args.results, detectors, only)
    print(f"{'detector':28} {'profile':14} {'official':>9} {'ours':>9} {'diff':>7}")
    worst = 0.0
    for d in detectors:
        for p in PROFILES:
            a, b = official.get(d, {}).get(p.name), mine[d][p.name]
            diff = abs(a - b) if a is not None else float("nan")
            worst = max(worst, diff)
            print(f"{d:28} {p.name:14} {a if a is not None else float('nan'):9.2f} {b:9.2f} {diff:7.2f}")
    print(f"largest difference: {worst:.2f} (official scores are printed to 2 decimals)")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "benchmark": "nab_official",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": machine_info(),
            "nab": str(nab),
            "results": str(args.results),
            "split": args.split,
            "official": official,
            "ours": mine,
            "largest_difference": round(worst, 4),
            "seconds": round(time.perf_counter() - started, 1),
        }
        args.out.write_text(json.dumps(payload, indent=2) + "\n")
    return 0 if worst < 0.005 else 1


if __name__ == "__main__":
    raise SystemExit(main())
