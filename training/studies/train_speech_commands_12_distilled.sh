#!/usr/bin/env bash
# Recipe of a distilled candidate (training/studies/DEFAULT_MODEL_STUDY.md, "Fourth step: an ensemble distilled
# into one model"): the shipped weight average (training/train_speech_commands_12_soup.sh) fine-tuned for
# EPOCHS x STEPS batches on the multi-epoch recipe's data, learning from the labels and, with weight
# DISTILL_WEIGHT, from the averaged probabilities (temperature TEMPERATURE) of three teachers that
# score better together than any of them alone on the development test:
#   the one-epoch fine-tune (training/train_speech_commands_12.sh),
#   the multi-epoch fine-tune A, last epoch (training/train_speech_commands_12_multi_epoch.sh),
#   run B, last epoch (the same recipe with EPOCHS=6 STEPS=100).
# Each teacher and the starting model are trained first with their own recipes if absent. float32, as
# the study's runs were made (before `--precision` existed).
# Usage: [STUDENT=...] [OUT=...] [EPOCHS=3 STEPS=125] [LR=5e-4] [DISTILL_WEIGHT=0.7] [TEMPERATURE=2] [REVERB=0] [TEACHERS=A,B,..]
#        training/studies/train_speech_commands_12_distilled.sh [extra speech-app train flags, e.g. --resume]
set -euo pipefail
cd "$(dirname "$0")/../.."  # the repository root
# shellcheck source=training/speech_commands_12_common.sh
source training/speech_commands_12_common.sh
ONE_EPOCH=${ONE_EPOCH:-runs/one_epoch/speech_commands_12.safetensors}
MULTI_EPOCH=${MULTI_EPOCH:-runs/multi_epoch/speech_commands_12.safetensors}
RUN_B=${RUN_B:-runs/main/speech_commands_12_last.safetensors}
STUDENT=${STUDENT:-runs/soup/speech_commands_12.safetensors}
OUT=${OUT:-runs/distilled/speech_commands_12.safetensors}
REPORT_DIR=${REPORT_DIR:-runs/distilled/report}
EPOCHS=${EPOCHS:-3}
STEPS=${STEPS:-125}
LR=${LR:-5e-4}
DISTILL_WEIGHT=${DISTILL_WEIGHT:-0.7}
TEMPERATURE=${TEMPERATURE:-2}
REVERB=${REVERB:-0}  # share of training clips played through a synthetic room
TEACHERS=${TEACHERS-$ONE_EPOCH,$MULTI_EPOCH,$RUN_B}  # TEACHERS= (empty): the same fine-tune without teachers
DISTILL=()
[ -z "$TEACHERS" ] || DISTILL=(--teacher "$TEACHERS" --distill-weight "$DISTILL_WEIGHT" --distill-temperature "$TEMPERATURE")
[ -f "$STUDENT" ] || ONE_EPOCH="$ONE_EPOCH" MULTI_EPOCH="$MULTI_EPOCH" OUT="$STUDENT" training/train_speech_commands_12_soup.sh
[ -f "$RUN_B" ] || EPOCHS=6 STEPS=100 OUT="$RUN_B" REPORT_DIR="$(dirname "$RUN_B")/report" \
    training/train_speech_commands_12_multi_epoch.sh
mkdir -p "$(dirname "$OUT")"
exec speech-app train "$DATA_DIR" \
  --words "$COMMANDS" \
  --synthetic "$SYNTH_DIR/commands" --synthetic "$SYNTH_DIR/unknown" \
  --synthetic "$SYNTH_DIR/onoff_voices" --synthetic "$SYNTH_DIR/near_misses" \
  --init-from "$STUDENT" "${DISTILL[@]}" --reverb "$REVERB" \
  --testing-list training/devtest_list.txt --validation-percent 25 --unknown-percent 30 --even-unknown \
  --out "$OUT" --report-dir "$REPORT_DIR" \
  --epochs "$EPOCHS" --steps-per-epoch "$STEPS" --patience "$EPOCHS" --keep last --batch-size 128 --learning-rate "$LR" \
  --seed 0 --speed-perturb 0.1 --precision float32 \
  "$@"
