# Exploratory (not pre-registered, not used to decide): wall and thread CPU time per pass, 100 tags, one thread,
# the candidate (commit 882614e checked out) against main b5f9c7c's asset model and the univariate model, 30 alternating passes.
#   git checkout 882614e -- daemon && git archive b5f9c7c daemon | tar -x -C /tmp/before
#   PYTHONPATH=$PWD/daemon:$PWD/bench python docs/results/forecast-speed/exploratory_cpu_alt.py 100 30
"""Exploratory: wall and thread CPU time per pass, 100 tags, 1 thread, candidate vs main's asset model and the model."""
import sys, time, statistics, json
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3] / "bench"))
import torch
torch.set_num_threads(1)
import forecast_speed as fs
from _baseline import BASELINE, import_baseline
import_baseline("/tmp/before/daemon")
import argparse
args = argparse.Namespace(asset_model=None, tags_per_asset=8, max_batch=1024, device="cpu", model=None, horizon=16)
calls = {
    "model": fs.univariate_call(fs.build("model", args)),
    "asset": fs.build_asset(args)[0],
    "asset@baseline": fs.build_asset(args, BASELINE)[0],
}
n = int(sys.argv[1]); passes = int(sys.argv[2])
ctx = fs.windows(n)
for c in calls.values(): c(ctx)
wall = {k: [] for k in calls}; cpu = {k: [] for k in calls}
names = list(calls)
for p in range(passes):
    for k in (names if p % 2 == 0 else names[::-1]):
        w0, c0 = time.perf_counter(), time.thread_time()
        for s in range(0, n, 1024): calls[k](ctx[s:s + 1024])
        cpu[k].append(time.thread_time() - c0); wall[k].append(time.perf_counter() - w0)
out = {"tags": n, "passes": passes}
for what, t in (("wall", wall), ("cpu", cpu)):
    for k in ("asset", "asset@baseline"):
        for ref in ("model", "asset@baseline"):
            if k == ref: continue
            r = [a / b for a, b in zip(t[k], t[ref])]
            out[f"{what} {k}/{ref}"] = [round(statistics.median(r), 3), round(min(r), 3), round(max(r), 3)]
    out[f"{what} median pass s"] = {k: round(statistics.median(v), 4) for k, v in t.items()}
print(json.dumps(out))
