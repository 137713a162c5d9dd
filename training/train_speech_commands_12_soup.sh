#!/usr/bin/env bash
# Recipe of the shipped model: the standard 12-class Speech Commands task
# (yes no up down left right on off stop go _silence_ _unknown_), in three steps:
# 1. a weight average ("model soup") of two fine-tunes of the same base (shipped before issue 22;
#    training/studies/DEFAULT_MODEL_STUDY.md, "Averaging the two fine-tunes"), written to AVERAGE:
#      0.7 x the one-epoch fine-tune        (train_speech_commands_12.sh)
#      0.3 x the multi-epoch fine-tune      (train_speech_commands_12_multi_epoch.sh, its last epoch)
# 2. the average fine-tuned with the real on/off of ../shared/data/on_off_extra
#    (train_speech_commands_12_onoff.sh: 3 x 100 batches; the study's seventh step), written to ONOFF;
# 3. that fine-tuned again with windows of continuous speech as `_unknown_`
#    (train_speech_commands_12_conversation.sh: 2 x 100 batches; the study's eighth step), written to OUT.
# Every float tensor is averaged; the batch-norm step counter and the training history come from the
# one-epoch model (training/average_models.py). The weight 0.3 was chosen between two values (0.3 and
# 0.5) on the development test, which is therefore mildly optimistic for this model.
# Each ingredient is trained first, with its own recipe, if its file is absent. A retrained ingredient
# differs from the shipped one by run-to-run noise (the study measured it); to rebuild the shipped
# file exactly, put the committed one-epoch model there first:
#   git show 2b19af5:model/speech_commands_12.safetensors > runs/one_epoch/speech_commands_12.safetensors
# (the multi-epoch ingredient is not committed: it is the study's run A; its recipe took 27 min).
# The average alone (the model shipped before the on/off fine-tune) is in the project's history:
#   git show 48fabcf:model/speech_commands_12.safetensors > runs/soup/speech_commands_12.safetensors
# and so is the on/off fine-tune (shipped before the conversation fine-tune):
#   git show bc2d534:model/speech_commands_12.safetensors > runs/onoff/speech_commands_12.safetensors
# Usage: [ONE_EPOCH=...] [MULTI_EPOCH=...] [WEIGHT=0.3] [AVERAGE=...] [ONOFF=...] [OUT=...] training/train_speech_commands_12_soup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ONE_EPOCH=${ONE_EPOCH:-runs/one_epoch/speech_commands_12.safetensors}
MULTI_EPOCH=${MULTI_EPOCH:-runs/multi_epoch/speech_commands_12.safetensors}
WEIGHT=${WEIGHT:-0.3}  # the multi-epoch model's share
AVERAGE=${AVERAGE:-runs/soup/speech_commands_12.safetensors}
ONOFF=${ONOFF:-runs/onoff/speech_commands_12.safetensors}
OUT=${OUT:-model/speech_commands_12.safetensors}
PYTHON=${PYTHON:-python}
if [ ! -f "$AVERAGE" ] && [ ! -f "$ONOFF" ]; then  # step 1 (when step 2 needs it), each ingredient trained first if absent
  [ -f "$ONE_EPOCH" ] || OUT="$ONE_EPOCH" REPORT_DIR="$(dirname "$ONE_EPOCH")/report" training/train_speech_commands_12.sh
  [ -f "$MULTI_EPOCH" ] || OUT="$MULTI_EPOCH" REPORT_DIR="$(dirname "$MULTI_EPOCH")/report" \
      training/train_speech_commands_12_multi_epoch.sh
  mkdir -p "$(dirname "$AVERAGE")"
  "$PYTHON" training/average_models.py "$ONE_EPOCH" "$MULTI_EPOCH" --weight "$WEIGHT" --out "$AVERAGE" \
      --note "Weight average: $(awk "BEGIN{print 1-$WEIGHT}") x one-epoch fine-tune + $WEIGHT x multi-epoch fine-tune of the same base (training/train_speech_commands_12_soup.sh)"
fi
# step 2, if its model is absent
[ -f "$ONOFF" ] || START="$AVERAGE" OUT="$ONOFF" REPORT_DIR="$(dirname "$ONOFF")/report" training/train_speech_commands_12_onoff.sh
# step 3
START="$ONOFF" OUT="$OUT" REPORT_DIR="runs/conversation/report" exec training/train_speech_commands_12_conversation.sh
