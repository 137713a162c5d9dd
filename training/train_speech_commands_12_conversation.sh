#!/usr/bin/env bash
# Recipe of the conversation fine-tune (issue 22, item 3; training/studies/DEFAULT_MODEL_STUDY.md, eighth
# step): the on/off fine-tune (train_speech_commands_12_onoff.sh's model, START) fine-tuned again with the
# same recipe and data plus windows of continuous speech as `_unknown_` (`--conversation`): the learn side
# of training/conversation_split.json that the package bundles for training (speech_app/data/
# conversation_data/train: 8.9 min, 38 LibriSpeech speakers and a LibriVox reader; the package's
# calibration speech and the benchmark's measuring speakers are never trained on), cut into one-second
# windows every half second, SHARE of the `_unknown_` draws (the classes keep their shares).
# 2 x 100 batches (the on/off recipe's schedule and learning rate otherwise; 3 x 100 was measured too).
# Usage: START=... [OUT=...] [SHARE=0.3] [EPOCHS=2 STEPS=100 LR=5e-4] training/train_speech_commands_12_conversation.sh [extra speech-app train flags]
set -euo pipefail
cd "$(dirname "$0")/.."
START=${START:?the model to fine-tune (the on/off fine-tune)}
OUT=${OUT:-runs/conversation/speech_commands_12.safetensors}
REPORT_DIR=${REPORT_DIR:-$(dirname "$OUT")/report}
SHARE=${SHARE:-0.3}
export EPOCHS=${EPOCHS:-2}
CONVERSATION_DIR=${CONVERSATION_DIR:-speech_app/data/conversation_data/train}
START="$START" OUT="$OUT" REPORT_DIR="$REPORT_DIR" exec training/train_speech_commands_12_onoff.sh \
  --conversation "$CONVERSATION_DIR" --conversation-share "$SHARE" "$@"
