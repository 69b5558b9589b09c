#!/usr/bin/env bash
# Every CUDA figure framestyle needs, in one run of at most ~8 minutes, into
# one JSON file. Run it once whenever a CUDA GPU is at hand:
#
#     benchmarks/gpu_check.sh [OUT]        (default OUT: gpu_check_out/; $OUT too)
#
# Nothing is downloaded. Each step has its own time limit and writes its
# output to OUT/STEP.txt; benchmarks/gpu_check.py collects them into
# OUT/gpu_check.json (a step that failed or ran out of time leaves its
# figures out and its exit status in OUT/STEP.status).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-gpu_check_out}}
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
mkdir -p "$OUT"
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no CUDA device here (torch.cuda.is_available() is False); nothing measured" >&2
    exit 2
fi
nvidia-smi > "$OUT/nvidia-smi.log" 2>&1 || true

step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    echo "gpu_check: $name (at most $limit s)" >&2
    timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
    echo "$?" > "$OUT/$name.status"
}

# bench: ms/iteration, images/s and fraction of peak at 512 px, batch 1 and 8, fp32 and bf16.
step bench 90 "$PY" -m framestyle bench --device cuda --size 512 --batch 1,8 --precision fp32,bf16 --iterations 20
# video: 48 frames at 512 px, warm start, one chain and 8 segments side by side.
FFMPEG=$("$PY" -c "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())")
"$FFMPEG" -v error -y -i samples/video/burrow.mp4 -vf scale=512:-2 -frames:v 48 "$OUT/clip512.mp4"
step video 150 "$PY" -m framestyle bench --device cuda --size 512 --batch 1,8 --precision bf16 --iterations 2 \
    --video "$OUT/clip512.mp4" --frames 48
# auto: the batch size that the device's free memory gives (logged with -v).
step auto 45 "$PY" -m framestyle run samples/photos --style samples/styles/swirls.jpg -o "$OUT/auto-out" \
    --size 512 --iterations 20 --device cuda -v
# oom: 8 images at --batch-size 8 under a ~3 GiB cap: the batch halves, every image ends.
step oom 60 "$PY" benchmarks/gpu_check.py oom "$OUT"
# compile: --compile against eager at 512 px (the first compiled call includes compiling).
step compile 120 "$PY" benchmarks/gpu_check.py compile

"$PY" benchmarks/gpu_check.py collect "$OUT" > "$OUT/gpu_check.json"
echo "gpu_check: figures in $OUT/gpu_check.json" >&2
