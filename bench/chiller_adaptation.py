"""Chiller adaptation check: does a per-asset adapter beat the base model on a plant the base never saw?

The plant is the simulator with a benchmark seed (≥ 1000, never used in
pretraining: ``sentinelle.evaluation.heldout``) and a configuration outside the
pretraining corpus's ranges (``training/corpus.py:chiller_run`` draws setpoints
4–9 °C, supply 3–10 °C above, flows 20–300 m³/h, noise ×0.3–3): setpoint 10 °C,
supply 24 °C with a ±6 °C daily swing, 600 m³/h, noise ×4, one sample every 5 s.

It goes through the commands a user would run, on files a user would have:

1. simulate ``--days`` days and write them as the plant's wide CSV export, with
   a daemon config whose tags belong to asset ``chiller9``;
2. ``sentinelle finetune --until <cut>`` on the first ``--train-days`` days;
3. ``sentinelle backtest --adapter … --from <cut>`` on the rest (held out from the
   fine-tuning), base vs adapted vs baselines, into ``--out``.

    .venv/bin/python bench/chiller_adaptation.py --base runs/starter --out docs/results/chiller-adaptation
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sentinelle.cli import main as sentinelle
from sentinelle.evaluation.heldout import benchmark_seeds, is_benchmark_seed
from sentinelle.settings import SimulatorSettings
from sentinelle.sim.chiller import CHILLER_TAGS, TAG_UNITS, ChillerModel

ROOT = Path(__file__).resolve().parents[1]
ASSET = "chiller9"
START = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)


def plant_settings(seed: int, period_s: float) -> SimulatorSettings:
    return SimulatorSettings(
        seed=seed,
        asset=ASSET,
        sample_period_s=period_s,
        flow_m3h=600.0,
        chw_setpoint_c=10.0,
        supply_temp_mean_c=24.0,
        daily_load_amplitude_c=6.0,
        noise_scale=4.0,
        start_ts=START.timestamp(),
    )


def write_plant(folder: Path, settings: SimulatorSettings, days: float, threads: int = 2) -> tuple[Path, Path]:
    """The simulated history as a wide CSV export, and a daemon config naming its tags."""
    period = settings.sample_period_s
    steps = int(days * 86_400 / period)
    model = ChillerModel(settings)
    start = settings.start_ts or 0.0
    data = np.stack([model.step_array(start + k * period) for k in range(steps)])
    csv_path = folder / "plant.csv"
    with open(csv_path, "w", encoding="utf-8") as f:
        f.write("date," + ",".join(f"{ASSET}.{t}" for t in CHILLER_TAGS) + "\n")
        for k in range(steps):
            when = dt.datetime.fromtimestamp(start + k * period, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            f.write(when + "," + ",".join(f"{v:.5g}" for v in data[k]) + "\n")
    config = folder / "sentinelle.toml"
    lines = [
        f'[forecast]\nforecaster = "model"\nhorizon_steps = 16\nadapters_dir = "{folder / "adapters"}"\n'
        f"[finetune]\nthreads = {threads}\n"
    ]
    for t in CHILLER_TAGS:
        lines.append(
            f'[[tags]]\nname = "{ASSET}.{t}"\nasset = "{ASSET}"\nnode_id = "ns=2;s={ASSET}.{t}"\n'
            f'unit = "{TAG_UNITS.get(t, "")}"\nperiod_s = {period}\n'
        )
    config.write_text("\n".join(lines), encoding="utf-8")
    return csv_path, config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, required=True, help="base checkpoint")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "chiller-adaptation")
    ap.add_argument("--days", type=float, default=3.0)
    ap.add_argument("--train-days", type=float, default=2.0)
    ap.add_argument("--period-s", type=float, default=5.0)
    ap.add_argument("--origins", type=int, default=40)
    ap.add_argument("--steps", type=int, default=None, help="most fine-tuning steps")
    ap.add_argument("--max-minutes", type=float, default=10.0)
    ap.add_argument("--work", type=Path, default=None, help="keep the CSV, config and adapter here")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads while fine-tuning")
    ap.add_argument("--seed", type=int, default=benchmark_seeds(1)[0], help="simulator seed (benchmark: >= 1000)")
    args = ap.parse_args()

    seed = args.seed
    if not is_benchmark_seed(seed):
        sys.exit(f"seed {seed} may have been seen in pretraining; use one >= 1000")
    work = args.work or Path(tempfile.mkdtemp(prefix="chiller-adaptation-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    csv_path, config = write_plant(work, plant_settings(seed, args.period_s), args.days, args.threads)
    cut = (START + dt.timedelta(days=args.train_days)).isoformat().replace("+00:00", "Z")
    print(f"simulated {args.days} days (seed {seed}) into {csv_path} in {time.time() - t0:.0f} s", flush=True)

    t = time.time()
    ft = [
        "finetune",
        "--config",
        str(config),
        "--asset",
        ASSET,
        "--data",
        str(csv_path),
        "--until",
        cut,
        "--base",
        str(args.base),
        "--max-minutes",
        str(args.max_minutes),
        "--no-progress",
    ]
    if args.steps is not None:
        ft += ["--steps", str(args.steps)]
    if sentinelle(ft) != 0:
        sys.exit("finetune failed")
    finetune_s = time.time() - t
    adapter = work / "adapters" / ASSET

    t = time.time()
    code = sentinelle(
        [
            "backtest",
            "--config",
            str(config),
            "--data",
            str(csv_path),
            "--adapter",
            str(adapter),
            "--base",
            str(args.base),
            "--out",
            str(args.out),
            "--horizons",
            "1",
            "16",
            "64",
            "--origins",
            str(args.origins),
        ]
    )
    if code != 0:
        sys.exit("backtest failed")
    backtest_s = time.time() - t
    manifest = json.loads((adapter / "manifest.json").read_text())
    report = json.loads((args.out / "report.json").read_text())
    summary = {
        "plant": plant_settings(seed, args.period_s).model_dump(mode="json"),
        "days": args.days,
        "fine-tuned on": f"{manifest['data']['first']} .. {manifest['data']['last']} "
        f"(validation from {manifest['data']['validation_from']})",
        "backtest from": cut,
        "base model": str(args.base),
        "adapter": {k: manifest[k] for k in ("adapter", "validation")},
        "training": {
            k: manifest["training"][k] for k in ("steps", "best_step", "stopped_by", "wall_seconds", "device")
        },
        "overall": report["overall"],
        "seconds": {"finetune": round(finetune_s, 1), "backtest": round(backtest_s, 1)},
    }
    (args.out / "experiment.json").write_text(json.dumps(summary, indent=2) + "\n")
    for key, per in report["overall"].items():
        print(f"{key}: " + ", ".join(f"{n} MASE {m['mase']:.3f}" for n, m in per.items()))


if __name__ == "__main__":
    main()
