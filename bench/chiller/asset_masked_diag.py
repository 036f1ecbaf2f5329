"""Diagnostic on DEVELOPMENT seeds 2100..2102: does masking the newest context stop the estimate following a slow fault?

One run per slow kind (``chiller_plan``, first seed 2100), every 8th slot from slot 700 to the
fault's end: the faulted tags' residual (actual − the asset model's median estimate) for
estimates made with the full context (``std``), with every tag's newest M slots masked in one
pass (``allM``, what ``forecast.asset_mask_recent_steps`` does), with only the target's own
newest M slots masked (``ownM``, one pass per tag: G times the cost) and with the target's whole
context but one slot masked (``ownall``: the tag's scale is then lost).  Printed: the residual's
standard deviation in the scored time before onset, and the mean over the fault's second half
less the pre-onset mean, in those standard deviations.  What it showed chose the candidates of
bench/chiller/asset_masked.py (no setting is chosen here).

    python bench/chiller/asset_masked_diag.py       # ~7 minutes on a busy 2-core machine
"""

from __future__ import annotations

import time

import numpy as np
import torch

from sentinelle.evaluation.chiller_eval import chiller_plan, simulate
from sentinelle.evaluation.chiller_report import asset_checkpoint
from sentinelle.forecast.asset_engine import AssetForecaster

SLOW = ("sensor_drift", "fouling", "pump_degradation")
EVERY = 8


def main() -> None:
    torch.set_num_threads(1)
    model = AssetForecaster(asset_checkpoint(), (0.1, 0.5, 0.9))
    length = model.config.context_length - 1
    for run in chiller_plan(1, 0, kinds=SLOW, first_seed=2100):
        rec, truth = simulate(run)
        fault = truth[0]
        x = rec.values
        g = x.shape[1]
        onset = int(np.searchsorted(rec.timestamps, fault.start_ts))
        end = int(np.searchsorted(rec.timestamps, fault.end_ts))
        slots = np.arange(700, min(len(x), end), EVERY)
        names = ("std", "all128", "all256", "own128", "own256", "ownall")
        est: dict[str, list[np.ndarray]] = {k: [] for k in names}
        started = time.perf_counter()
        for k in slots:
            ctx, now = x[k - length : k].T[None], x[k][None]
            est["std"].append(model.forecast(ctx, 1, now).estimate[0, :, 1])
            for m in (128, 256):
                masked = ctx.copy()
                masked[..., -m:] = np.nan
                est[f"all{m}"].append(model.forecast(masked, 1, now).estimate[0, :, 1])
                own = np.repeat(ctx, g, axis=0)
                for j in range(g):
                    own[j, j, -m:] = np.nan
                est[f"own{m}"].append(np.diag(model.forecast(own, 1, np.repeat(now, g, axis=0)).estimate[..., 1]))
            own = np.repeat(ctx, g, axis=0)
            for j in range(g):
                own[j, j, :-1] = np.nan
            whole = model.forecast(own, 1, np.repeat(now, g, axis=0), tag_mask=np.ones((g, g), dtype=bool))
            est["ownall"].append(np.diag(whole.estimate[..., 1]))
        print(run.name, fault.tags, f"{time.perf_counter() - started:.0f} s", flush=True)
        pre = (slots < onset) & (slots >= 900)
        late = (slots >= onset + (end - onset) // 2) & (slots < end)
        for name, values in est.items():
            r = x[slots] - np.array(values)
            parts = []
            for tag in fault.tags:
                j = rec.tags.index(tag)
                mu, sd = np.nanmean(r[pre, j]), np.nanstd(r[pre, j])
                shift = (np.nanmean(r[late, j]) - mu) / sd
                parts.append(f"{tag.split('.')[-1]}: pre sd {sd:.3g}, late {shift:+.1f} sd")
            print(f"  {name:8s}", "; ".join(parts), flush=True)


if __name__ == "__main__":
    main()
