#!/usr/bin/env bash
# Recipe of the on/off fine-tune (issue 22; training/studies/DEFAULT_MODEL_STUDY.md, seventh step): the
# weight average (train_speech_commands_12_soup.sh's average, START) fine-tuned for EPOCHS x STEPS
# batches of 128 with the real on/off of ../shared/data/on_off_extra as a second data folder: its
# one-clip speakers outside the development test and the three people's own takes (the development
# test keeps the other half of the one-clip speakers, training/DEVTEST.md). The rest is the
# multi-epoch recipe's data: `_unknown_` drawn evenly across the other words, with synthetic speech
# of the scarce other words and near misses; the development test's speakers kept out.
# The learning rate warms up over 5% of the batches to LR, then decays (cosine) to 2% of it; the
# last epoch is kept. The model's metadata then names the start's training data as well.
# Usage: START=... [OUT=...] [EXTRA_DIR=...] [EPOCHS=3 STEPS=100 LR=5e-4] training/train_speech_commands_12_onoff.sh [extra speech-app train flags, e.g. --resume]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=training/speech_commands_12_common.sh
source training/speech_commands_12_common.sh
START=${START:?the model to fine-tune (the weight average)}
EXTRA_DIR=${EXTRA_DIR:-$(dirname "$DATA_DIR")/on_off_extra}
OUT=${OUT:-runs/onoff/speech_commands_12.safetensors}
REPORT_DIR=${REPORT_DIR:-$(dirname "$OUT")/report}
EPOCHS=${EPOCHS:-3}
STEPS=${STEPS:-100}
LR=${LR:-5e-4}
MORE_NEAR_MISSES=dawn,gown,noun,cough,loft,so,low,dough,goat,pup,spot,shop,note,new,let,ride
[ -d "$SYNTH_DIR/unknown" ] || speech-app synth --words "$OTHER_WORDS,$NEAR_MISSES" --out "$SYNTH_DIR/unknown" \
    --per-word 60 --engines "$ENGINES" --seed 5 "${SYNTH_FLAGS[@]}"
[ -d "$SYNTH_DIR/near_misses" ] || speech-app synth --words "$MORE_NEAR_MISSES" --out "$SYNTH_DIR/near_misses" \
    --per-word 60 --engines "$ENGINES" --seed 9 "${SYNTH_FLAGS[@]}"
mkdir -p "$(dirname "$OUT")"
speech-app train "$DATA_DIR" "$EXTRA_DIR" \
  --words "$COMMANDS" \
  --synthetic "$SYNTH_DIR/unknown" --synthetic "$SYNTH_DIR/near_misses" \
  --init-from "$START" --testing-list training/devtest_list.txt --validation-percent 25 \
  --unknown-percent 30 --even-unknown \
  --out "$OUT" --report-dir "$REPORT_DIR" \
  --epochs "$EPOCHS" --steps-per-epoch "$STEPS" --patience "$EPOCHS" --keep last --batch-size 128 \
  --learning-rate "$LR" --seed 0 --speed-perturb 0.1 --precision bfloat16 \
  "$@"
# the weights learned from the start's data too: the card lists its voices (training/inherit_trained_on.py)
"${PYTHON:-python}" training/inherit_trained_on.py "$START" "$OUT"
