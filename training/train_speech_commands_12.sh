#!/usr/bin/env bash
# Recipe of the shipped model: the standard 12-class Speech Commands task
# (yes no up down left right on off stop go _silence_ _unknown_) on the real clips in ../shared/data.
# Usage: [DATA_DIR=...] training/train_speech_commands_12.sh [extra speech-app train flags, e.g. --resume]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${DATA_DIR:-../shared/data/speech_commands}
exec speech-app train "$DATA_DIR" \
  --words yes,no,up,down,left,right,on,off,stop,go \
  --out model/speech_commands_12.safetensors \
  --report-dir training/reports/speech_commands_12 \
  --epochs 22 --patience 10 --batch-size 128 --learning-rate 2e-3 --seed 0 \
  "$@"
