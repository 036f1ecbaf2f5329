#!/usr/bin/env bash
# GPU benchmark run, as sent to a lent GPU machine (a bare image with python3 + torch + CUDA,
# no network): the packages the image lacks travel as wheels in .whl/ (downloaded with
# `pip download --no-deps --only-binary=:all: --python-version 3.12 ... -d .whl`, as the device tool
# documents: river, pydantic(-core, -settings), asyncua and their missing needs, transformers),
# sentinelle runs from the source tree.  Results land in $OUT (default bench/results/gpu; see its README.md).
#   bash bench/gpu_run.sh            # on the GPU machine
#   NO_WHEELS=1 PY=.venv/bin/python PYTHONPATH=daemon:bench DEVICE=cpu SIZES=100 TAGS=100 bash bench/gpu_run.sh  # dry run
set -u
OUT=${OUT:-bench/results/gpu}
DEVICE=${DEVICE:-cuda}
SIZES=${SIZES:-"1000 5000"}
TAGS=${TAGS:-"100 1000 10000"}
SCANS=${SCANS:-"recursion chunked"}  # the smoothing branch's two forms, side by side (auto: chunked on CUDA)
mkdir -p "$OUT"
if [ -z "${NO_WHEELS:-}" ] && [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD/daemon:$PWD/bench
fi
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
PY=${PY:-python3}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true; } | tee "$OUT/gpu.txt"
$PY -c "import torch, transformers, river, sentinelle; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())" || exit 1
# shellcheck disable=SC2086
timeout 360 $PY bench/forecast_speed.py --device "$DEVICE" --tags $TAGS --forecasters model holt --scans $SCANS \
  --out "$OUT/forecast_speed_$DEVICE.json" 2>&1 | tee "$OUT/forecast_speed_$DEVICE.log"
# shellcheck disable=SC2086
timeout 200 $PY bench/spine.py --forecaster model --model-device "$DEVICE" --sizes $SIZES --refresh-every-steps 1 \
  --warmup-s 20 --measure-s 30 --out "$OUT/spine_model_$DEVICE.json" 2>&1 | tee "$OUT/spine_model_$DEVICE.log"
# The same machine's CPU as the baseline for the model's numbers (torch's default threads).
if [ "$DEVICE" = cuda ] && [ -n "${CPU_TOO:-1}" ]; then
  timeout 120 $PY bench/forecast_speed.py --device cpu --tags 1000 --forecasters model --repeats 2 \
    --out "$OUT/forecast_speed_cpu_same_machine.json" 2>&1 | tee "$OUT/forecast_speed_cpu_same_machine.log"
fi
# The GPU's forecasts against the CPU's, on the same windows.
timeout 120 $PY bench/model_parity.py --device "$DEVICE" --out "$OUT/model_parity.json" 2>&1 | tee "$OUT/model_parity.log"
