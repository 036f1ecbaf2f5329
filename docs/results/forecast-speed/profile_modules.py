# Per-module forward times of one pass (forward hooks, median of 5 after 8 timed passes), run at 10:53 UTC, load 1.9:
#   PYTHONPATH=$PWD/daemon python docs/results/forecast-speed/profile_modules.py 1 hooks
import sys, time, statistics, collections
import numpy as np, torch
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3] / "bench"))
from forecast_speed import windows, LEVELS
from sentinelle.forecast import SHIPPED_CHECKPOINT
from sentinelle.forecast.asset_model import SentinelleAssetModel
from sentinelle.forecast.model import SentinelleTSModel
from sentinelle.forecast.tokenizer import TSTokenizer
torch.set_num_threads(int(sys.argv[1]))
am = SentinelleAssetModel.from_pretrained(SHIPPED_CHECKPOINT.parent / "asset").eval()
um = SentinelleTSModel.from_pretrained(SHIPPED_CHECKPOINT).eval()
tok = TSTokenizer(4096, 15.0)
x = windows(104)
ids = torch.from_numpy(tok.encode(x[:, :-1]).ids.astype(np.int64))
uids = torch.from_numpy(tok.encode(x[:100]).ids.astype(np.int64))
cur = torch.zeros(104)
times = collections.defaultdict(list)
def hook(model):
    for name, mod in model.named_modules():
        if name.count(".") > 1 or name == "": continue
        def pre(m, a, name=name): m._t0 = time.perf_counter()
        def post(m, a, o, name=name): times[name].append(time.perf_counter() - m._t0)
        mod.register_forward_pre_hook(pre); mod.register_forward_hook(post)
def run(f, reps=8):
    f(); ts = []
    for _ in range(reps):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3
with torch.inference_mode():
    cases = {
      "uni 100": lambda: um(uids),
      "asset 12x8": lambda: am(ids[:96].view(12, 8, -1), current=cur[:96].view(12, 8), horizon=1),
      "asset 1x4": lambda: am(ids[96:100].view(1, 4, -1), current=cur[96:100].view(1, 4), horizon=1),
      "asset 13x8 (4 absent)": lambda: am(ids.view(13, 8, -1), current=cur.view(13, 8), tag_mask=torch.arange(104).view(13,8) < 100, horizon=1),
    }
    for k, f in cases.items():
        print(k, f"{run(f):.1f} ms")
    if len(sys.argv) > 2:
        hook(am); hook(um)
        for k, f in cases.items():
            times.clear(); run(f, 5)
            agg = {n: statistics.median(v) * 1e3 for n, v in times.items()}
            print(k, " ".join(f"{n}={v:.2f}" for n, v in sorted(agg.items(), key=lambda kv: -kv[1])[:16]))
