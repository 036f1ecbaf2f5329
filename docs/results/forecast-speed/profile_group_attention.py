# One group-attention layer split into its steps (12 assets x 8 tags x 33 positions), run at 10:53 UTC, load 1.6:
#   PYTHONPATH=$PWD/daemon python docs/results/forecast-speed/profile_group_attention.py 1 12
import sys, time, statistics, math
import torch, torch.nn.functional as F
from sentinelle.forecast import SHIPPED_CHECKPOINT
from sentinelle.forecast.asset_model import SentinelleAssetModel
torch.set_num_threads(int(sys.argv[1]))
am = SentinelleAssetModel.from_pretrained(SHIPPED_CHECKPOINT.parent / "asset").eval()
layer = am.group_layers[0]
b, g, s, d = int(sys.argv[2]), 8, 33, 128
x = torch.randn(b, g, s, d); present = torch.ones(b, g, dtype=torch.bool)
def T(f, reps=30):
    f(); ts=[]
    for _ in range(reps):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return statistics.median(ts)*1e3
with torch.inference_mode():
    print("full layer", T(lambda: layer(x, None, present)))
    h = layer.norm(x)
    print("norm", T(lambda: layer.norm(x)))
    print("project", T(lambda: layer._project(h, None)))
    q, k, v = layer._project(h, None)
    print("q@kT", T(lambda: q @ k.transpose(-1, -2)))
    sc = q @ k.transpose(-1, -2)
    print("softmax-ish", T(lambda: torch.exp(sc - sc.amax(-1, keepdim=True))))
    print("w@v + permute", T(lambda: (sc @ v).permute(0, 3, 1, 2, 4).reshape(b, g, s, d)))
    out = (sc @ v).permute(0, 3, 1, 2, 4).reshape(b, g, s, d)
    print("o_proj+add", T(lambda: x + layer.o_proj(out)))
    W = torch.randn(384, 128)
    print("plain linear 3d", T(lambda: F.linear(h, W)))
