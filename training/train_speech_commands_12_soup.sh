#!/usr/bin/env bash
# Recipe of the shipped model: the standard 12-class Speech Commands task
# (yes no up down left right on off stop go _silence_ _unknown_) as a weight average ("model soup")
# of two fine-tunes of the same base (training/studies/DEFAULT_MODEL_STUDY.md, "Averaging the two fine-tunes"):
#   0.7 x the one-epoch fine-tune        (train_speech_commands_12.sh; shipped before this one)
#   0.3 x the multi-epoch fine-tune      (train_speech_commands_12_multi_epoch.sh, its last epoch)
# Every float tensor is averaged; the batch-norm step counter and the training history come from the
# one-epoch model (training/average_models.py). The weight 0.3 was chosen between two values (0.3 and
# 0.5) on the development test, which is therefore mildly optimistic for this model.
# Each ingredient is trained first, with its own recipe, if its file is absent. A retrained ingredient
# differs from the shipped one by run-to-run noise (the study measured it); to rebuild the shipped
# file exactly, put the committed one-epoch model there first:
#   git show 2b19af5:model/speech_commands_12.safetensors > runs/one_epoch/speech_commands_12.safetensors
# (the multi-epoch ingredient is not committed: it is the study's run A; its recipe took 27 min).
# Usage: [ONE_EPOCH=...] [MULTI_EPOCH=...] [WEIGHT=0.3] [OUT=...] training/train_speech_commands_12_soup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ONE_EPOCH=${ONE_EPOCH:-runs/one_epoch/speech_commands_12.safetensors}
MULTI_EPOCH=${MULTI_EPOCH:-runs/multi_epoch/speech_commands_12.safetensors}
WEIGHT=${WEIGHT:-0.3}  # the multi-epoch model's share
OUT=${OUT:-model/speech_commands_12.safetensors}
PYTHON=${PYTHON:-python}
[ -f "$ONE_EPOCH" ] || OUT="$ONE_EPOCH" REPORT_DIR="$(dirname "$ONE_EPOCH")/report" training/train_speech_commands_12.sh
[ -f "$MULTI_EPOCH" ] || OUT="$MULTI_EPOCH" REPORT_DIR="$(dirname "$MULTI_EPOCH")/report" \
    training/train_speech_commands_12_multi_epoch.sh
exec "$PYTHON" training/average_models.py "$ONE_EPOCH" "$MULTI_EPOCH" --weight "$WEIGHT" --out "$OUT" \
    --note "Weight average: $(awk "BEGIN{print 1-$WEIGHT}") x one-epoch fine-tune + $WEIGHT x multi-epoch fine-tune of the same base (training/train_speech_commands_12_soup.sh)"
