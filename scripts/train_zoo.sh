#!/usr/bin/env bash
# Train the shipped zoo models -- ENet and DeepLabv3+ MobileNetV3, both panoptic -- on the
# synthetic driving scenes at 1024x512, with the project's own `seg-perception train`.
# Both train at once from one shared frame cache, each continuing from the shipped zoo
# package (its weights.pt, or for an ONNX-only package the weights of its graph).
#
# Usage: scripts/train_zoo.sh OUT_DIR [MINUTES] [FRAMES]
#   OUT_DIR/enet/model and OUT_DIR/deeplab/model are the trained model packages, and
#   OUT_DIR/enet/tuned and OUT_DIR/deeplab/tuned the same with their post-processing settings
#   searched for PQ on 60 validation frames (`seg-perception tune`, 64 instance slots; the
#   DeepLab package written at 1280x640): the zoo packages.
#   MINUTES is each run's time budget (the learning rate decays over it), FRAMES the number
#   of synthetic training frames drawn once into OUT_DIR/frame_cache (about 3 MB each).
# Environment:
#   FROM_SCRATCH=1  start from random weights instead of the zoo packages
#   CROP=WxH        training crops (default: 512x256 on a CPU, the full frame on a GPU)
#   THREADS=N       torch threads per run on a CPU (default: half the cores each)
#   SKIP_TUNE=1     stop after training (tune elsewhere, e.g. off a rented GPU's clock)
# A CUDA GPU is strongly recommended: on a 2-core CPU an epoch of 3000 crops of 512x256
# takes ~22 min for ENet and ~36 min for DeepLab with both running (bfloat16 on AMX).
set -euo pipefail
out=${1:?usage: train_zoo.sh OUT_DIR [MINUTES] [FRAMES]}
minutes=${2:-7}
frames=${3:-3000}
py=${PYTHON:-python3}
repo="$(cd "$(dirname "$0")/.." && pwd)"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
cores=$(nproc)
cache="$out/frame_cache"
mkdir -p "$out"

if "$py" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    crop=${CROP:-1024x512}
    batch=16
    workers=$(( cores > 4 ? cores / 2 : 1 ))
else
    crop=${CROP:-512x256}
    batch=8
    workers=1
    export OMP_NUM_THREADS=${THREADS:-$(( cores > 1 ? cores / 2 : 1 ))}
fi

# Draw the training scenes once with every core; both runs then read them memory-mapped.
"$py" -c '
import sys
from seg_perception.labels import cityscapes
from seg_perception.training.frames import FrameSource
cache, frames, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
FrameSource("synthetic", "train", 1024, 512, 0, frames, cityscapes()).materialize(cache, workers)
' "$cache" "$frames" "$cores"

init() {  # --init-weights for a zoo model, unless FROM_SCRATCH is set
    if [ -z "${FROM_SCRATCH:-}" ]; then
        echo --init-weights "$repo/seg_perception/zoo/$1"
    fi
}

common=(--tasks panoptic --data synthetic --height 512 --width 1024 --crop "$crop" --seed 0
        --train-frames "$frames" --val-frames 30 --val-every 1 --frame-cache "$cache"
        --class-balanced-crops 0.5 --max-minutes "$minutes" --epochs 1000
        --batch-size "$batch" --workers "$workers")
# shellcheck disable=SC2046  # init's words are meant to split
# ENet steps run 1.34x faster in NHWC on an AMX CPU; DeepLab MobileNetV3 does not gain.
"$py" -m seg_perception.cli train --model enet --lr 1e-3 $(init enet_panoptic) \
    --channels-last "${common[@]}" --out "$out/enet" > "$out/enet.log" 2>&1 &
enet=$!
# shellcheck disable=SC2046
"$py" -m seg_perception.cli train --model deeplabv3plus_mobilenetv3 --lr 1e-3 \
    $(init deeplabv3plus_mobilenetv3_panoptic) "${common[@]}" \
    --out "$out/deeplab" > "$out/deeplab.log" 2>&1 &
deeplab=$!
status=0
wait $enet || status=$?
wait $deeplab || status=$?
for run in enet deeplab; do
    echo "== $run"; tr '\r' '\n' < "$out/$run.log" | grep -E '^(epoch [0-9]+:|training|stopping|exported|model package|recovered|loaded|error)' || true
done
[ $status -eq 0 ] || exit $status
[ -z "${SKIP_TUNE:-}" ] || exit 0
# Post-processing settings for PQ, on validation frames (never the model cards' test seed).
# ENet ships at its training size, DeepLab at 1280x640 (it sees small things better there:
# see its model card).
declare -A size=([enet]=1024x512 [deeplab]=1280x640)
for run in enet deeplab; do
    echo "== tune $run"
    "$py" -m seg_perception.cli tune --model "$out/$run/model" --frames 60 --top-k 64 \
        --size "${size[$run]}" --out "$out/$run/tuned" --json "$out/$run/tuning.json" 2> "$out/$run/tune.log" \
        | grep -E '^(baseline|tuned|changed|wrote)'
done
