#!/usr/bin/env bash
# Recipe of the base of the shipped model's two fine-tunes, itself shipped until the one-epoch fine-tune
# replaced it (the fine-tune recipes take it from the project's history, commit 9ea2327, unless a
# retrained one is there): the standard 12-class Speech Commands task
# (yes no up down left right on off stop go _silence_ _unknown_), trained from scratch on the real
# clips in ../shared/data plus synthetic speech: 300 clips of every command, and 600 more of the
# three scarce words (on, off, stop: about 21 real training clips each) with RHVoice's voices too.
# Synthetic clips are at most half of a word's draws (about 18% for the plentiful words); validation
# is real speech only. Every training clip is also played at a random speed (0.9-1.1x): a new voice
# from a real one, which the scarce words need most. Only voices whose licence allows shipping the
# model are used; pico and rhvoice are optional Debian non-free packages
# (../shared/docs/tts-engines.md says how to install them). The same seeds and the same installed voices give the same clips.
# training/studies/SYNTHETIC_STUDY.md compares this recipe with real-only and scarce-words-only ones.
# It writes where the fine-tune recipes look for the base (BASE in speech_commands_12_common.sh), never
# over the shipped model.
# Usage: [DATA_DIR=...] [SYNTH_DIR=...] [OUT=...] training/train_speech_commands_12_base.sh [extra speech-app train flags, e.g. --resume]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=training/speech_commands_12_common.sh
source training/speech_commands_12_common.sh  # installed_engines
DATA_DIR=${DATA_DIR:-../shared/data/speech_commands}
SYNTH_DIR=${SYNTH_DIR:-runs/synth}
OUT=${OUT:-runs/speech_commands_12_base.safetensors}
REPORT_DIR=${REPORT_DIR:-runs/base/report}
SYNTH_FLAGS=(--noise "$DATA_DIR/_background_noise_" --commercial-voices)
[ -d "$SYNTH_DIR/commands" ] || speech-app synth --words yes,no,up,down,left,right,on,off,stop,go \
    --out "$SYNTH_DIR/commands" --per-word 300 --engines "$COMMAND_ENGINES" --seed 1 "${SYNTH_FLAGS[@]}"
[ -d "$SYNTH_DIR/scarce" ] || speech-app synth --words on,off,stop --out "$SYNTH_DIR/scarce" --per-word 600 \
    --engines "$ENGINES" --seed 3 "${SYNTH_FLAGS[@]}"
mkdir -p "$(dirname "$OUT")"
exec speech-app train "$DATA_DIR" \
  --words yes,no,up,down,left,right,on,off,stop,go --synthetic "$SYNTH_DIR/commands" --synthetic "$SYNTH_DIR/scarce" \
  --out "$OUT" --report-dir "$REPORT_DIR" \
  --epochs 22 --patience 10 --batch-size 128 --learning-rate 2e-3 --seed 0 --speed-perturb 0.1 \
  "$@"
