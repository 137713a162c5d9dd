#!/usr/bin/env bash
# How far synthetic speech alone carries the scarce words, on more real speech than their 6-7
# validation clips: the recipe of the model shipped then (training/train_speech_commands_12_base.sh
# without speed perturbation: same synthetic clips, same budget), except that the real clips of
# on/off/stop are all held out of training. Every one of them is then a test clip that the model
# never heard (85 clips, 56 speakers).
# Usage: [DATA_DIR=...] [SYNTH_DIR=...] training/studies/scarce_holdout.sh
#        (after training/train_speech_commands_12_base.sh made runs/synth/scarce)
set -euo pipefail
cd "$(dirname "$0")/../.."  # the repository root
DATA_DIR=${DATA_DIR:-../shared/data/speech_commands}
SYNTH_DIR=${SYNTH_DIR:-runs/synth/scarce}
SCARCE=(on off stop)
mkdir -p runs/scarce_holdout
[ -f runs/scarce_holdout/model.safetensors ] || speech-app train "$DATA_DIR" \
  --words yes,no,up,down,left,right,on,off,stop,go --synthetic "$SYNTH_DIR" --holdout-real on,off,stop \
  --out runs/scarce_holdout/model.safetensors --report-dir runs/scarce_holdout/training \
  --epochs 22 --patience 10 --batch-size 128 --learning-rate 2e-3 --seed 0 --quiet
# a data folder holding only the scarce words' real clips: evaluate scores all of them
real=runs/scarce_holdout/real_scarce
mkdir -p "$real"
for word in "${SCARCE[@]}"; do ln -sfn "$(realpath "$DATA_DIR/$word")" "$real/$word"; done
speech-app evaluate "$real" --split all --model runs/scarce_holdout/model.safetensors \
  --report-dir runs/scarce_holdout/real_scarce_report
