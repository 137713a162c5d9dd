#!/usr/bin/env bash
# Recipe of the one-epoch fine-tune: the standard 12-class Speech Commands task
# (yes no up down left right on off stop go _silence_ _unknown_), in two stages. It was shipped until
# the weight average of it and the multi-epoch candidate replaced it (train_speech_commands_12_soup.sh,
# whose main ingredient it is).
# Its one epoch of fine-tuning warms the learning rate up over all of its 114 batches
# (--warmup-steps 114: the schedule it was made with, before warm-up became 5% of a run), so it ends
# at its peak. The multi-epoch candidate that did not pass the shipping rule is
# train_speech_commands_12_multi_epoch.sh (training/studies/DEFAULT_MODEL_STUDY.md).
#
# 1. The base: the previous shipped model (training/train_speech_commands_12_base.sh: 22 epochs from
#    scratch on the real clips plus synthetic speech of the commands, speed perturbation 0.9-1.1x),
#    taken from the project's history (commit 9ea2327) so that this stage needs no retraining.
# 2. Fine-tuning it (training/studies/DEFAULT_MODEL_STUDY.md says why) on what it lacked:
#    - the real clips of stop now in ../shared/data (909, from 629 speakers; the base had 27);
#    - `_unknown_` drawn evenly across all the other words (--even-unknown) and three times as large
#      (--unknown-percent 30), with synthetic speech of the 18 scarce other words and of near misses
#      (of/off, top/stop, goal/go, town/down, lift/left, yet/yes, cup/up, stock/stop, own/on, won/one);
#    - the development test's speakers (training/DEVTEST.md) kept out of training and validation.
# Synthetic clips are made first, under runs/synth/, if absent; only voices whose licence allows
# shipping the model are used (pico and rhvoice are optional Debian non-free packages,
# ../shared/docs/tts-engines.md). The same seeds and installed voices give the same clips.
# Usage: [DATA_DIR=...] [SYNTH_DIR=...] [OUT=...] training/train_speech_commands_12.sh [extra speech-app train flags, e.g. --resume]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=training/speech_commands_12_common.sh
source training/speech_commands_12_common.sh
OUT=${OUT:-runs/one_epoch/speech_commands_12.safetensors}
REPORT_DIR=${REPORT_DIR:-runs/one_epoch/report}
# float32: the shipped ingredients were trained before bfloat16 became the CPU default (training/studies/PRECISION.md)
prepare_base_and_synth
mkdir -p "$(dirname "$OUT")"
exec speech-app train "$DATA_DIR" \
  --words "$COMMANDS" \
  --synthetic "$SYNTH_DIR/commands" --synthetic "$SYNTH_DIR/unknown" \
  --init-from "$BASE" --testing-list training/devtest_list.txt --validation-percent 25 \
  --unknown-percent 30 --even-unknown \
  --out "$OUT" --report-dir "$REPORT_DIR" \
  --epochs 1 --warmup-steps 114 --patience 1 --batch-size 128 --learning-rate 1e-3 --seed 0 --speed-perturb 0.1 --precision float32 \
  "$@"
