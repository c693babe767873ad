#!/usr/bin/env bash
# Train the shipped zoo models -- ENet and DeepLabv3+ MobileNetV3, both panoptic -- on the
# synthetic driving scenes at 1024x512, with the project's own `seg-perception train`.
# Both train at once on one GPU from one shared frame cache.
#
# Usage: scripts/train_zoo.sh OUT_DIR [MINUTES] [FRAMES]
#   OUT_DIR/enet/model and OUT_DIR/deeplab/model are the resulting model packages.
#   A CUDA GPU is strongly recommended (CPU works, but takes days for the same quality).
set -euo pipefail
out=${1:?usage: train_zoo.sh OUT_DIR [MINUTES] [FRAMES]}
minutes=${2:-7}
frames=${3:-2000}
py=${PYTHON:-python3}
export PYTHONPATH="$(cd "$(dirname "$0")/.." && pwd)${PYTHONPATH:+:$PYTHONPATH}"
workers=$(( $(nproc) > 4 ? $(nproc) / 2 : 1 ))
cache="$out/frame_cache"
mkdir -p "$out"

# Draw the training scenes once with every core; both runs then read them memory-mapped.
"$py" -c '
import sys
from seg_perception.labels import cityscapes
from seg_perception.train import FrameSource
cache, frames, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
FrameSource("synthetic", "train", 1024, 512, 0, frames, cityscapes()).materialize(cache, workers)
' "$cache" "$frames" "$(nproc)"

common=(--tasks panoptic --data synthetic --height 512 --width 1024 --seed 0
        --train-frames "$frames" --val-frames 50 --val-every 2 --frame-cache "$cache"
        --max-minutes "$minutes" --epochs 1000 --batch-size 16 --workers "$workers")
"$py" -m seg_perception.cli train --model enet --lr 3e-3 "${common[@]}" \
    --out "$out/enet" > "$out/enet.log" 2>&1 &
enet=$!
"$py" -m seg_perception.cli train --model deeplabv3plus_mobilenetv3 --lr 2e-3 "${common[@]}" \
    --out "$out/deeplab" > "$out/deeplab.log" 2>&1 &
deeplab=$!
status=0
wait $enet || status=$?
wait $deeplab || status=$?
for run in enet deeplab; do
    echo "== $run"; tr '\r' '\n' < "$out/$run.log" | grep -E '^(epoch [0-9]+:|training|stopping|exported|model package|error)' || true
done
exit $status
